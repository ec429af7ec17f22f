//! Weighted aliases: a split draws by weight, sticky keys keep their version and only move to
//! a version whose share rises, the version header reaches a 0 % version for invokers only,
//! and every answer, record, metric and usage row says which version ran.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::support::{Server, eventually, invocation_id, stdout_json};

/// `app` with two versions that answer alike (version 2 only differs in its environment).
async fn two_versions(server: &Server) {
    server.deploy_ok("app", "hello", json!({})).await;
    let second = server
        .deploy_ok("app", "hello", json!({"env": {"RELEASE": "2"}}))
        .await;
    assert_eq!(second["version"], 2);
}

/// The version an answer names; the answer must be a success.
fn version_of(response: &reqwest::Response) -> u32 {
    assert_eq!(response.status(), 200, "{response:?}");
    response
        .headers()
        .get("x-vireo-version")
        .expect("every answer names the version that ran")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends `total` GETs of `url`, each with the headers `headers(n)`; the version each ran.
async fn versions_of(
    url: &str,
    total: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<u32> {
    let client = reqwest::Client::new();
    let mut answered: Vec<(usize, u32)> = futures::stream::iter(0..total)
        .map(|n| {
            let mut request = client.get(url);
            for (name, value) in headers(n) {
                request = request.header(name, value);
            }
            async move { (n, version_of(&request.send().await.unwrap())) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    answered.sort_unstable();
    answered.into_iter().map(|(_, version)| version).collect()
}

#[tokio::test]
async fn a_split_draws_by_weight_and_every_answer_names_its_version() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    two_versions(&server).await;
    let set = server.cli_ok(&["alias", "app", "prod", "1=90", "2=10"]);
    assert_eq!(set, "alias default/app@prod -> 1 (90 %), 2 (10 %)\n");
    let listed = server.cli_ok(&["ls"]);
    assert!(listed.contains("prod=1:90%+2:10%"), "{listed}");

    let url = server.url("/fn/default/app@prod/");
    let ran = versions_of(&url, 2_000, |_| Vec::new()).await;
    let on_canary = ran.iter().filter(|&&v| v == 2).count();
    assert_eq!(ran.iter().filter(|&&v| v == 1).count() + on_canary, 2_000);
    // 10 % ± 3 % of 2,000.
    assert!(
        (140..=260).contains(&on_canary),
        "{on_canary} of 2000 ran the 10 % version"
    );

    // The record, the metrics and usage say which version ran.
    let response = reqwest::get(&url).await.unwrap();
    let ran = version_of(&response);
    let record = server.invocation(&invocation_id(&response)).await;
    assert_eq!(record["version"], ran);
    let metrics = server.metrics_text().await;
    for version in ["1", "2"] {
        assert!(
            metrics.lines().any(|line| line.starts_with(&format!(
                "vireo_invocations_total{{namespace=\"default\",function=\"app\",version=\"{version}\",status=\"ok\""
            ))),
            "no invocation count for version {version}"
        );
    }
    let usage = eventually(Duration::from_secs(10), || async {
        let usage = stdout_json(&server.cli(&["usage", "--by", "version", "-o", "json"]));
        let requests: BTreeMap<String, u64> = usage["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let key = row["key"].as_str().unwrap().to_string();
                (key, row["requests"].as_u64().unwrap())
            })
            .collect();
        match requests.values().sum::<u64>() {
            2_001 => Ok(requests),
            recorded => Err(format!(
                "{recorded} of 2001 invocations in usage: {requests:?}"
            )),
        }
    })
    .await;
    assert_eq!(usage["app@2"], on_canary as u64 + u64::from(ran == 2));

    // Promoting sends everything to the new version at once.
    assert_eq!(
        server.cli_ok(&["alias", "app", "prod", "2"]),
        "alias default/app@prod -> 2\n"
    );
    let ran = versions_of(&url, 50, |_| Vec::new()).await;
    assert!(ran.iter().all(|&v| v == 2), "{ran:?}");
    let (_, function) = server
        .get_json("/v1/namespaces/default/functions/app")
        .await;
    assert_eq!(function["aliases"]["prod"], 2);
    assert!(function.get("splits").is_none(), "{function}");

    // A direct version number names its version too.
    let response = reqwest::get(server.url("/fn/default/app@1/"))
        .await
        .unwrap();
    assert_eq!(version_of(&response), 1);
}

#[tokio::test]
async fn sticky_keys_keep_their_version_and_only_move_to_a_rising_share() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    two_versions(&server).await;
    let url = server.url("/fn/default/app@prod/");
    let user = |n: usize| vec![("x-user-id", format!("user-{n}"))];

    server.cli_ok(&[
        "alias",
        "app",
        "prod",
        "1=90",
        "2=10",
        "--sticky-header",
        "x-user-id",
    ]);
    let first = versions_of(&url, 300, user).await;
    assert!(first.contains(&1) && first.contains(&2), "{first:?}");
    assert_eq!(
        versions_of(&url, 300, user).await,
        first,
        "keys kept their version"
    );

    server.cli_ok(&[
        "alias",
        "app",
        "prod",
        "1=50",
        "2=50",
        "--sticky-header",
        "x-user-id",
    ]);
    let raised = versions_of(&url, 300, user).await;
    let moved = |from: u32, to: u32| {
        first
            .iter()
            .zip(&raised)
            .filter(|&(&before, &after)| before == from && after == to)
            .count()
    };
    assert_eq!(moved(2, 1), 0, "no key went back to the old version");
    let moved_on = moved(1, 2);
    assert!(moved_on > 60, "only {moved_on} of about 120 keys moved on");

    // The cookie works the same way.
    server.cli_ok(&[
        "alias",
        "app",
        "prod",
        "1=50",
        "2=50",
        "--sticky-cookie",
        "session",
    ]);
    let session = |n: usize| vec![("cookie", format!("theme=dark; session=s{n}"))];
    let by_cookie = versions_of(&url, 100, session).await;
    assert_eq!(versions_of(&url, 100, session).await, by_cookie);
    let (_, function) = server
        .get_json("/v1/namespaces/default/functions/app")
        .await;
    assert_eq!(
        function["splits"]["prod"]["sticky"],
        json!({"cookie": "session"})
    );
}

#[tokio::test]
async fn the_version_header_reaches_a_zero_share_version_only_for_invokers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    two_versions(&server).await;
    server.cli_ok(&["alias", "app", "prod", "1=100", "2=0"]);
    let url = server.url("/fn/default/app@prod/");
    let ran = versions_of(&url, 40, |_| Vec::new()).await;
    assert!(ran.iter().all(|&v| v == 1), "a 0 % version ran: {ran:?}");

    let key = |role: &str| {
        let created = server.cli_ok(&[
            "keys", "create", "--role", role, "-n", "default", "-o", "json",
        ]);
        let created: Value = serde_json::from_str(&created).unwrap();
        created["key"].as_str().unwrap().to_string()
    };
    let invoker = Server::client_with_key(&key("invoker"));
    let viewer = Server::client_with_key(&key("viewer"));
    let ask = |client: &reqwest::Client, version: &str| {
        client.get(&url).header("x-vireo-version", version).send()
    };

    let smoke = ask(&invoker, "2").await.unwrap();
    assert_eq!(version_of(&smoke), 2);
    let anonymous = ask(&reqwest::Client::new(), "2").await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-vireo-version"),
        "{body}"
    );
    assert_eq!(ask(&viewer, "2").await.unwrap().status(), 403);
    // Only versions of the alias: version 3 does not exist, version 1 of app@2 is not its own.
    assert_eq!(ask(&invoker, "3").await.unwrap().status(), 404);
    let other = invoker
        .get(server.url("/fn/default/app@2/"))
        .header("x-vireo-version", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // An async request may ask for a version only with the same right; it is checked when the
    // request is accepted, since delivery runs as Vireo.
    let ask_async = |client: &reqwest::Client| {
        client
            .post(&url)
            .header("prefer", "respond-async")
            .header("x-vireo-version", "2")
            .send()
    };
    assert_eq!(
        ask_async(&reqwest::Client::new()).await.unwrap().status(),
        401
    );
    let accepted = ask_async(&invoker).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let id = invocation_id(&accepted);
    assert_eq!(async_version(&server, &id).await, 2);
}

/// The version an async invocation's execution ran, once its record is written.
async fn async_version(server: &Server, id: &str) -> u64 {
    eventually(Duration::from_secs(60), || async move {
        let invocation = server.invocation(id).await;
        let ran = &invocation["execution"]["version"];
        ran.as_u64()
            .ok_or_else(|| format!("no execution recorded yet: {invocation}"))
    })
    .await
}

#[tokio::test]
async fn async_invocations_resolve_the_split_each_time() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    two_versions(&server).await;
    server.cli_ok(&["alias", "app", "prod", "1=50", "2=50"]);
    let urls = [server.url("/fn/default/app@prod/")];
    let ids = crate::support::submit_async(&urls, 40).await;
    server.all_succeeded("app", 40).await;
    let mut ran = BTreeMap::<u64, usize>::new();
    for id in &ids {
        *ran.entry(async_version(&server, id).await).or_default() += 1;
    }
    // Both versions ran: the chance that 40 fair draws all land on one is 2 in 10^12.
    assert_eq!(ran.keys().copied().collect::<Vec<_>>(), [1, 2], "{ran:?}");
}

/// The version header on what Vireo answers for a version: a version that traps (500) and a
/// version's rate limit (429) name the version, so a failing canary shows itself; a caller
/// refused before it may call learns no version.
#[tokio::test]
async fn failures_and_refusals_after_the_pick_name_the_version() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("app", "hello", json!({})).await;
    server.deploy_ok("app", "panic", json!({})).await;
    server.cli_ok(&["alias", "app", "prod", "1=50", "2=50"]);
    let client = reqwest::Client::new();
    let url = server.url("/fn/default/app@prod/");
    let mut seen = BTreeMap::new();
    for _ in 0..40 {
        let response = client.get(&url).send().await.unwrap();
        let version = response
            .headers()
            .get("x-vireo-version")
            .map(|v| v.to_str().unwrap().to_string());
        *seen
            .entry((response.status().as_u16(), version))
            .or_insert(0) += 1;
    }
    let pairs: Vec<_> = seen.keys().cloned().collect();
    assert_eq!(
        pairs,
        vec![(200, Some("1".to_string())), (500, Some("2".to_string()))],
        "{seen:?}"
    );

    server
        .deploy_ok(
            "limited",
            "hello",
            json!({"rate_limit": {"per_second": 1, "burst": 1}}),
        )
        .await;
    let limited = server.url("/fn/default/limited/");
    let answers = futures::future::join_all((0..5).map(|_| client.get(&limited).send())).await;
    let refused: Vec<_> = answers
        .iter()
        .map(|answer| answer.as_ref().unwrap())
        .filter(|answer| answer.status() == 429)
        .collect();
    assert!(!refused.is_empty(), "5 calls at once passed a limit of 1");
    for answer in refused {
        assert_eq!(answer.headers()["x-vireo-version"], "1");
    }

    server
        .deploy_ok("private", "hello", json!({"invoke_auth": "key"}))
        .await;
    let anonymous = client
        .get(server.url("/fn/default/private/"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().get("x-vireo-version").is_none());
}
