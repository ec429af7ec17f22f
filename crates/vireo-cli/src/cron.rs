//! `vireo cron`: schedules that invoke a function at cron slots, as async invocations.

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};
use vireo_core::Name;

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};
use crate::views::{ScheduleList, ScheduleView};

#[derive(Subcommand)]
pub enum CronCommand {
    /// Invoke a function on a schedule.
    Add {
        /// The function to invoke: NAME, NAME@VERSION or NAME@ALIAS.
        #[arg(value_name = "NAME[@VERSION|@ALIAS]", value_parser = args::target)]
        target: String,
        /// Five fields (`*/5 * * * *`), or six with leading seconds (`*/10 * * * * *`).
        #[arg(long, value_name = "EXPR")]
        schedule: String,
        /// IANA time zone the schedule is read in, e.g. Europe/Berlin [default: UTC]
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// Body of each invocation (sent as JSON when it parses as JSON).
        #[arg(long, value_name = "TEXT", default_value = "")]
        payload: String,
        /// Name of the schedule [default: the function's name]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Slots missed while no server ran.
        #[arg(long, value_enum, default_value_t = Missed::Skip)]
        missed: Missed,
    },
    /// List the namespace's schedules with their next fire time and last run.
    Ls,
    /// Delete a schedule.
    Rm { name: String },
    /// Stop firing until resumed.
    Pause { name: String },
    /// Fire again from the next slot (slots passed while paused do not fire).
    Resume { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Missed {
    /// Fire nothing for missed slots.
    Skip,
    /// Fire the most recent missed slot once.
    CatchUpOne,
}

pub async fn run(client: &Client, format: Format, command: CronCommand) -> anyhow::Result<()> {
    let base = format!("/v1/namespaces/{}/schedules", client.namespace());
    let schedule = |name: &str| format!("{base}/{name}");
    match command {
        CronCommand::Add {
            target,
            schedule: expression,
            tz,
            payload,
            name,
            missed,
        } => {
            let missed = match missed {
                Missed::Skip => "skip",
                Missed::CatchUpOne => "catch-up-one",
            };
            let body = json!({
                "function": target, "schedule": expression, "time_zone": tz,
                "payload": payload, "name": name, "missed": missed,
            });
            let answer = client
                .json(client.request(Method::POST, &base).json(&body))
                .await
                .with_context(|| format!("adding a schedule for {target}"))?;
            output::emit(format, answer, |created: ScheduleView| {
                format!(
                    "schedule {} added: {} ({}), next {}\n",
                    created.name,
                    created.schedule,
                    created.time_zone,
                    next(&created)
                )
            })
        }
        CronCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, &base))
                .await
                .context("listing schedules")?;
            output::emit(format, answer, |list: ScheduleList| {
                schedules_table(&list.schedules)
            })
        }
        CronCommand::Rm { name } => {
            client
                .no_content(client.request(Method::DELETE, &schedule(&name)))
                .await
                .with_context(|| format!("deleting schedule {name}"))?;
            if format == Format::Json {
                return output::write_stdout(b"{}\n");
            }
            output::write_stdout(format!("schedule {name} deleted\n").as_bytes())
        }
        CronCommand::Pause { name } => toggle(client, format, &schedule(&name), "pause").await,
        CronCommand::Resume { name } => toggle(client, format, &schedule(&name), "resume").await,
    }
}

async fn toggle(client: &Client, format: Format, path: &str, action: &str) -> anyhow::Result<()> {
    let answer = client
        .json(client.request(Method::POST, &format!("{path}/{action}")))
        .await
        .with_context(|| format!("{action} {path}"))?;
    output::emit(format, answer, |s: ScheduleView| {
        format!("schedule {}: {}, next {}\n", s.name, state(&s), next(&s))
    })
}

fn state(schedule: &ScheduleView) -> &'static str {
    if schedule.paused { "paused" } else { "active" }
}

fn next(schedule: &ScheduleView) -> String {
    match (schedule.paused, schedule.next_fire_at_us) {
        (true, _) => "paused".to_string(),
        (false, Some(at)) => output::timestamp(at),
        (false, None) => "never".to_string(),
    }
}

fn last(schedule: &ScheduleView) -> String {
    match (&schedule.last_invocation_id, &schedule.last_status) {
        (Some(id), Some(status)) => format!("{status} ({id})"),
        (Some(id), None) => id.clone(),
        _ => "-".to_string(),
    }
}

pub fn schedules_table(schedules: &[ScheduleView]) -> String {
    output::table(
        [
            "NAME", "FUNCTION", "SCHEDULE", "ZONE", "NEXT", "LAST", "MISSED",
        ],
        schedules.iter().map(|s| {
            [
                s.name.clone(),
                s.function.clone(),
                s.schedule.clone(),
                s.time_zone.clone(),
                next(s),
                last(s),
                s.missed.clone(),
            ]
        }),
    )
}

/// The namespace's schedules that invoke `function` (through any alias or version), as JSON.
pub async fn schedules_of(client: &Client, function: &Name) -> anyhow::Result<Vec<Value>> {
    let listed = client
        .json(client.request(
            Method::GET,
            &format!("/v1/namespaces/{}/schedules", client.namespace()),
        ))
        .await
        .with_context(|| format!("listing the schedules of {}", client.qualified(function)))?;
    let Value::Array(schedules) = listed["schedules"].clone() else {
        bail!("the server's answer has no list of schedules");
    };
    Ok(schedules
        .into_iter()
        .filter(|schedule| {
            schedule["function"]
                .as_str()
                .and_then(|target| target.split('@').next())
                == Some(function.as_str())
        })
        .collect())
}
