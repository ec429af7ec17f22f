//! Routes: functions published at paths and hosts of their own, matched most specific first,
//! refused on conflict or on a host the namespace does not hold, counted per route, and
//! followed by every node of a cluster within a second.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Server, ServerBuilder, Store, eventually, guest};

/// `GET path` with `Host: host`; the status, the version header and the body.
async fn get(server: &Server, host: &str, path: &str) -> (u16, Option<String>, String) {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let version = response
        .headers()
        .get("x-vireo-version")
        .map(|v| v.to_str().unwrap().to_string());
    (
        response.status().as_u16(),
        version,
        response.text().await.unwrap(),
    )
}

fn is_hello(body: &str) -> bool {
    body == "Hello, Vireo!\n"
}

#[tokio::test]
async fn requests_take_the_most_specific_route_and_see_the_path_after_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("orders", "echo", json!({})).await;
    server.deploy_ok("hello", "hello", json!({})).await;
    server.cli_ok(&["hosts", "claim", "api.example.com", "--for", "default"]);
    let added = server.cli_ok(&[
        "routes",
        "add",
        "api.example.com/orders/*",
        "--function",
        "orders@latest",
    ]);
    assert_eq!(
        added,
        "route api.example.com/orders/* -> default/orders@latest\n"
    );
    server.cli_ok(&["routes", "add", "/hello", "--function", "hello"]);
    server.cli_ok(&["routes", "add", "/orders/*", "--function", "hello@1"]);

    // The host's prefix route: the function sees the rest of the path and the original URL.
    let (status, version, body) = get(&server, "api.example.com:8080", "/orders/42?x=1").await;
    assert_eq!((status, version.as_deref()), (200, Some("1")), "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/42");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["headers"]["x-vireo-original-url"], "/orders/42?x=1");
    let (_, _, body) = get(&server, "API.example.com", "/orders").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["path"], "/");
    // Another host falls back to the routes for any host.
    assert!(is_hello(&get(&server, "other.org", "/orders/42").await.2));
    assert!(is_hello(&get(&server, "api.example.com", "/hello").await.2));

    // Unmatched: 404 JSON; Vireo's own paths stay Vireo's.
    let (status, _, body) = get(&server, "api.example.com", "/ordersx").await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(is_hello(
        &get(&server, "api.example.com", "/fn/default/hello/")
            .await
            .2
    ));
    assert_eq!(get(&server, "api.example.com", "/healthz").await.0, 200);
    for reserved in ["/v1/x", "/fn/*", "/metrics", "/healthz", "/ui/*"] {
        let refused = server.cli(&["routes", "add", reserved, "--function", "hello"]);
        assert!(!refused.status.success(), "{reserved} was taken");
        let message = String::from_utf8_lossy(&refused.stderr);
        assert!(message.contains("Vireo's own"), "{message}");
    }

    // A conflicting route is refused, naming the route it conflicts with.
    let conflict = server.cli(&["routes", "add", "/hello", "--function", "orders"]);
    let message = String::from_utf8_lossy(&conflict.stderr);
    assert!(
        message.contains("409") && message.contains("/hello already goes to default/hello"),
        "{message}"
    );
    let listed = server.cli_ok(&["routes", "ls"]);
    for route in ["/hello", "/orders/*", "api.example.com/orders/*"] {
        assert!(listed.contains(route), "{listed}");
    }

    // Each route counts its requests.
    let metrics = server.metrics_text().await;
    assert!(
        metrics.lines().any(|line| line.starts_with(
            "vireo_route_requests_total{namespace=\"default\",route=\"api.example.com/orders/*\",status=\"200\"}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(
        "vireo_route_request_duration_seconds_count{namespace=\"default\",route=\"/hello\"}"
    ));

    // Removing takes effect at once, without a restart.
    assert_eq!(
        server.cli_ok(&["routes", "rm", "/hello"]),
        "route /hello removed\n"
    );
    assert_eq!(get(&server, "other.org", "/hello").await.0, 404);
    // And a deleted function's routes go with it.
    let deleted = server
        .admin()
        .delete(server.url("/v1/namespaces/default/functions/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(is_hello(
        &get(&server, "api.example.com", "/orders/42").await.2
    ));
}

#[tokio::test]
async fn a_namespace_cannot_route_a_host_another_claims() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let keys = [
        server.developer_key_for_new_namespace("team-a"),
        server.developer_key_for_new_namespace("team-b"),
    ];
    let clients = keys.each_ref().map(|key| Server::client_with_key(key));
    for (client, namespace) in clients.iter().zip(["team-a", "team-b"]) {
        let deployed = server
            .deploy_with(client, namespace, "site", guest("hello"), json!({}))
            .await;
        assert_eq!(deployed.status(), 201);
    }
    let add = |client: &reqwest::Client, namespace: &str, route: &str| {
        client
            .post(server.url(&format!("/v1/namespaces/{namespace}/routes")))
            .json(&json!({"route": route, "function": "site"}))
            .send()
    };
    let status = |response: reqwest::Response| response.status().as_u16();

    // Only an admin claims hosts; a claim keeps other namespaces off the host.
    let claim = clients[1]
        .put(server.url("/v1/hosts/a.example.com"))
        .json(&json!({"namespace": "team-b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), 403);
    server.cli_ok(&["hosts", "claim", "a.example.com", "--for", "team-a"]);
    let taken = server.cli(&["hosts", "claim", "*.example.com", "--for", "team-b"]);
    assert!(String::from_utf8_lossy(&taken.stderr).contains("409"));

    let refused = add(&clients[1], "team-b", "a.example.com/*").await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "host_not_claimed");
    // Nor may it add the route in the other namespace, or one for every host.
    assert_eq!(
        status(add(&clients[1], "team-a", "a.example.com/*").await.unwrap()),
        404
    );
    assert_eq!(status(add(&clients[1], "team-b", "/*").await.unwrap()), 403);

    assert_eq!(
        status(add(&clients[0], "team-a", "a.example.com/*").await.unwrap()),
        201
    );
    let (code, _, body) = get(&server, "a.example.com", "/anything").await;
    assert_eq!(code, 200);
    assert!(is_hello(&body));
    // Its route is not team-b's to remove.
    let removed = clients[1]
        .delete(server.url("/v1/namespaces/team-b/routes"))
        .query(&[("route", "a.example.com/*")])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 404);
    let hosts = server.cli_ok(&["hosts", "ls"]);
    assert!(
        hosts.contains("a.example.com") && hosts.contains("team-a"),
        "{hosts}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn route_changes_reach_every_node_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let first = ServerBuilder::new(Store::postgres(dir.path())).start();
    let second = first.second_node().start();
    first.deploy_ok("hello", "hello", json!({})).await;
    // Loaded on the second node first, so the wait below is for the route alone.
    let warm = reqwest::get(second.url("/fn/default/hello/"))
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    first.cli_ok(&["routes", "add", "/greet/*", "--function", "hello"]);
    let serves = |expected: u16| {
        let second = &second;
        eventually(Duration::from_secs(1), move || async move {
            match get(second, "example.org", "/greet/x").await {
                (status, _, _) if status == expected => Ok(()),
                other => Err(format!("the second node answered {other:?}")),
            }
        })
    };
    serves(200).await;
    first.cli_ok(&["routes", "rm", "/greet/*"]);
    serves(404).await;
}
