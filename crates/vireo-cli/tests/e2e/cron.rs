//! Cron schedules fire on time, at most once per slot (across a crash too), and follow their
//! missed-slot policy after downtime.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::support::{DEADLINE, Server, eventually, stdout_json};

/// A short misfire grace, so a few seconds of downtime count as missed slots.
pub(crate) const CONFIG: &str = "[cron]\ntick_ms = 100\nmisfire_grace_ms = 1000\n";

/// The slot (`ce-time`) of each cron delivery of `probe` logged so far, with when it ran and
/// how many deliveries it had.
async fn fired_slots(server: &Server) -> BTreeMap<String, (i64, usize)> {
    let (_, page) = server
        .get_json("/v1/namespaces/default/functions/probe/logs")
        .await;
    let mut slots = BTreeMap::new();
    for line in page["lines"].as_array().unwrap() {
        let text = line["line"].as_str().unwrap();
        if !text.contains("ce-type=dev.vireo.schedule.fired") {
            continue;
        }
        let slot = text
            .split(' ')
            .find_map(|field| field.strip_prefix("ce-time="))
            .unwrap()
            .to_string();
        let entry = slots
            .entry(slot)
            .or_insert((line["at_us"].as_i64().unwrap(), 0));
        entry.1 += 1;
    }
    slots
}

/// The fired slots, once `done` holds for them.
pub(crate) async fn until_slots(
    server: &Server,
    done: impl Fn(&BTreeMap<String, (i64, usize)>) -> bool,
) -> BTreeMap<String, (i64, usize)> {
    let done = &done;
    eventually(DEADLINE, || async move {
        let slots = fired_slots(server).await;
        if done(&slots) {
            Ok(slots)
        } else {
            Err(format!("fired so far: {slots:?}"))
        }
    })
    .await
}

async fn until_fired(server: &Server, count: usize) -> BTreeMap<String, (i64, usize)> {
    until_slots(server, |slots| slots.len() >= count).await
}

pub(crate) fn micros(rfc3339: &str) -> i64 {
    let time = humantime::parse_rfc3339(rfc3339).unwrap();
    i64::try_from(
        time.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

pub(crate) fn add_every_second(server: &Server, missed: &str) {
    let added = stdout_json(&server.cli(&[
        "cron",
        "add",
        "probe",
        "--schedule",
        "* * * * * *",
        "--payload",
        "{\"tick\":1}",
        "--missed",
        missed,
        "-o",
        "json",
    ]));
    assert_eq!(added["schedule"], "* * * * * *");
}

#[tokio::test]
async fn a_seconds_schedule_fires_every_slot_on_time() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(CONFIG).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    add_every_second(&server, "skip");

    let slots = until_fired(&server, 3).await;
    let times: Vec<i64> = slots.keys().map(|slot| micros(slot)).collect();
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1_000_000,
            "consecutive seconds: {slots:?}"
        );
    }
    for (slot, (ran_at, deliveries)) in &slots {
        assert_eq!(*deliveries, 1, "{slot} fired once");
        // Generous for a loaded CI machine; the scheduler ticks every 100 ms here.
        let late = ran_at - micros(slot);
        assert!(
            (0..2_000_000).contains(&late),
            "{slot} ran {late} µs after its slot"
        );
    }
    let listed = stdout_json(&server.cli(&["cron", "ls", "-o", "json"]));
    let schedule = &listed["schedules"][0];
    assert_eq!(schedule["name"], "probe");
    assert!(schedule["next_fire_at"].is_string());
    assert!(schedule["last_invocation_id"].is_string());

    let paused = stdout_json(&server.cli(&["cron", "pause", "probe", "-o", "json"]));
    assert_eq!(paused["paused"], true);
    let removed = server.cli(&["cron", "rm", "probe"]);
    assert!(removed.status.success());
    let listed = stdout_json(&server.cli(&["cron", "ls", "-o", "json"]));
    assert_eq!(listed["schedules"], json!([]));
}

/// Crashes right after a slot of a 5-second schedule fired and restarts 7.5 s after it, so
/// the next slot passes while no server runs; returns the slots delivered up to the first
/// regular one after the restart.
async fn crash_across_a_slot(missed: &str) -> (i64, BTreeMap<String, (i64, usize)>) {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::builder(data.path()).config(CONFIG).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let added = stdout_json(&server.cli(&[
        "cron",
        "add",
        "probe",
        "--schedule",
        "*/5 * * * * *",
        "--missed",
        missed,
        "-o",
        "json",
    ]));
    assert_eq!(added["missed"], missed);
    let fired = until_fired(&server, 1).await;
    server.kill();
    let slot = micros(fired.keys().next().unwrap());

    // The outage under test, not a wait for something: no server runs until 7.5 s after the
    // slot, so the next slot (at 5 s) passes while it is down.
    let restart_at = std::time::UNIX_EPOCH + Duration::from_micros((slot + 7_500_000) as u64);
    if let Ok(outage) = restart_at.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(outage).await;
    }
    let server = Server::builder(data.path()).config(CONFIG).start();
    let regular = slot + 10_000_000;
    let slots = until_slots(&server, |slots| slots.keys().any(|s| micros(s) >= regular)).await;
    (slot, slots)
}

#[tokio::test]
async fn slots_fire_at_most_once_across_a_crash_and_missed_slots_follow_the_policy() {
    let (skip, catch_up) = tokio::join!(
        crash_across_a_slot("skip"),
        crash_across_a_slot("catch-up-one")
    );
    for (missed, (slot, slots)) in [("skip", skip), ("catch-up-one", catch_up)] {
        for (at, (_, deliveries)) in &slots {
            assert_eq!(
                *deliveries, 1,
                "{missed}: slot {at} fired {deliveries} times"
            );
        }
        let times: Vec<i64> = slots.keys().map(|s| micros(s)).collect();
        let expected = if missed == "skip" {
            vec![slot, slot + 10_000_000]
        } else {
            vec![slot, slot + 5_000_000, slot + 10_000_000]
        };
        assert_eq!(times, expected, "{missed}: {slots:?}");
    }
}

#[tokio::test]
async fn rm_says_what_went_with_the_function_schedules_included() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("hello", "hello", json!({})).await;
    server.deploy_ok("other", "hello", json!({})).await;
    let ok = |args: &[&str]| server.cli_ok(args);
    ok(&["alias", "hello", "prod", "1"]);
    ok(&[
        "cron",
        "add",
        "hello@prod",
        "--schedule",
        "0 0 * * *",
        "--name",
        "nightly",
    ]);
    ok(&["cron", "add", "other", "--schedule", "0 0 * * *"]);

    let said = ok(&["rm", "hello"]);
    assert_eq!(
        said,
        "removed default/hello: 1 version, alias prod, schedule nightly, and its invocation \
         records, logs and async invocations\n"
    );
    let left = stdout_json(&server.cli(&["cron", "ls", "-o", "json"]));
    let names: Vec<&str> = left["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["other"],
        "only the removed function's schedule went"
    );
}
