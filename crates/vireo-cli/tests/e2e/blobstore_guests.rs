//! Functions use buckets through `wasi:blobstore`: only the buckets their version is granted,
//! only their namespace's, streaming both ways within the object size limit and the quota; a
//! function notified of its own writes is stopped by the loop guard.

use std::time::Duration;

use serde_json::json;

use crate::buckets::{create_bucket, object_url, put};
use crate::support::{Server, eventually, guest, metered, stdout_json};

/// What the `blobs` fixture deployed as `function` in `namespace` answers for `path`.
async fn call(server: &Server, namespace: &str, function: &str, path: &str) -> String {
    let url = server.url(&format!("/fn/{namespace}/{function}{path}"));
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap().trim_end().to_string()
}

#[tokio::test]
async fn a_function_writes_reads_ranges_lists_copies_and_deletes_in_its_granted_buckets() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;
    create_bucket(&admin, &server, "archive").await;
    let file = crate::support::guests().join("blobs.wasm");
    server.cli_ok(&[
        "deploy",
        "blobs",
        file.to_str().unwrap(),
        "--bucket",
        "uploads",
        "--bucket",
        "archive",
    ]);
    let blobs = |path: &'static str| call(&server, "default", "blobs", path);

    assert_eq!(
        blobs("/write?key=notes/a.txt&value=hello-world").await,
        "ok"
    );
    assert_eq!(blobs("/read?key=notes/a.txt").await, "ok hello-world");
    assert_eq!(
        blobs("/read?key=notes/a.txt&start=6&end=10").await,
        "ok world"
    );
    assert_eq!(
        blobs("/read-sync?key=notes/a.txt&start=0&end=4").await,
        "ok hello"
    );
    assert_eq!(
        blobs("/read?key=notes/a.txt&start=6&end=1000").await,
        "ok world",
        "a range past the end is cut at it"
    );
    // What the function wrote is an object like any other, for the API too.
    let response = admin
        .get(object_url(&server, "uploads", "notes/a.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hello-world");
    let (status, _) = put(&admin, &server, "uploads", "notes/b.txt", b"bee".to_vec()).await;
    assert_eq!(status, 200);

    assert_eq!(
        blobs("/info?key=notes/a.txt").await,
        "ok name=notes/a.txt container=uploads size=11"
    );
    assert_eq!(blobs("/has?key=notes/b.txt").await, "ok true");
    assert_eq!(blobs("/has?key=notes/none").await, "ok false");
    assert_eq!(blobs("/bucket").await, "ok name=uploads");
    assert_eq!(blobs("/exists?bucket=archive").await, "ok true");

    // Listed in pages of two through the name stream.
    assert_eq!(blobs("/write?key=notes/c.txt&value=sea").await, "ok");
    assert_eq!(
        blobs("/list").await,
        "ok notes/a.txt,notes/b.txt,notes/c.txt"
    );

    // Copied within and across buckets, moved, deleted.
    assert_eq!(
        blobs("/copy?key=notes/a.txt&to=old/a.txt&to-bucket=archive").await,
        "ok"
    );
    assert_eq!(
        blobs("/read?bucket=archive&key=old/a.txt").await,
        "ok hello-world"
    );
    assert_eq!(blobs("/move?key=notes/b.txt&to=notes/bee.txt").await, "ok");
    assert_eq!(blobs("/has?key=notes/b.txt").await, "ok false");
    assert_eq!(blobs("/read?key=notes/bee.txt").await, "ok bee");
    assert_eq!(blobs("/delete?key=notes/c.txt").await, "ok");
    assert_eq!(blobs("/list").await, "ok notes/a.txt,notes/bee.txt");
    assert_eq!(
        blobs("/delete-many?keys=notes/a.txt,notes/bee.txt").await,
        "ok"
    );
    assert_eq!(blobs("/list").await, "ok");
    assert_eq!(blobs("/clear?bucket=archive").await, "ok");
    assert_eq!(blobs("/list?bucket=archive").await, "ok");

    // A read of what is not there, and a function may not delete a bucket.
    assert!(
        blobs("/read?key=gone")
            .await
            .starts_with("error object \"gone\" does not exist"),
    );

    // Streaming: 5 MiB written and read back in 64 KiB chunks, through the API too.
    assert_eq!(blobs("/write?key=big.bin&bytes=5242880").await, "ok");
    assert_eq!(blobs("/count?key=big.bin").await, "ok 5242880");
    let response = admin
        .head(object_url(&server, "uploads", "big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-length"], "5242880");
}

#[tokio::test]
async fn a_bucket_not_granted_or_of_another_namespace_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;
    create_bucket(&admin, &server, "private").await;
    let (status, _) = put(&admin, &server, "private", "secret", b"s3cr3t".to_vec()).await;
    assert_eq!(status, 200);
    server
        .deploy_ok("blobs", "blobs", json!({"buckets": ["uploads"]}))
        .await;
    let blobs = |path: &'static str| call(&server, "default", "blobs", path);

    let denied = "error access denied: bucket \"private\" is not granted to this function";
    assert_eq!(blobs("/read?bucket=private&key=secret").await, denied);
    assert_eq!(blobs("/exists?bucket=private").await, denied);
    assert_eq!(
        blobs("/copy?bucket=private&key=secret&to=stolen&to-bucket=uploads").await,
        denied
    );
    assert_eq!(
        blobs("/copy?key=x&to=planted&to-bucket=private").await,
        denied
    );
    assert!(
        blobs("/create?bucket=private")
            .await
            .starts_with("error access denied"),
        "{}",
        blobs("/create?bucket=private").await
    );
    server.deploy_ok("bare", "blobs", json!({})).await;
    assert_eq!(
        call(&server, "default", "bare", "/list").await,
        "error access denied: bucket \"uploads\" is not granted to this function",
        "denied by default"
    );

    // Another namespace granted a bucket of the same name reaches its own, which is empty.
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/v1/namespaces",
            Some(json!({"name": "team"})),
        )
        .await;
    assert_eq!(status, 201);
    let deployed = server
        .deploy_with(
            &admin,
            "team",
            "blobs",
            guest("blobs"),
            json!({"buckets": ["private"]}),
        )
        .await;
    assert_eq!(deployed.status(), 201);
    assert!(
        call(&server, "team", "blobs", "/read?bucket=private&key=secret")
            .await
            .starts_with("error bucket team/private does not exist"),
    );
    assert_eq!(
        call(&server, "team", "blobs", "/create?bucket=private").await,
        "ok"
    );
    assert_eq!(
        call(&server, "team", "blobs", "/list?bucket=private").await,
        "ok"
    );
}

#[tokio::test]
async fn a_function_write_obeys_the_size_limit_and_the_quota_and_stores_nothing_past_them() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[objects]\nmax_object_bytes = 200000\n")
        .start();
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;
    server
        .deploy_ok("blobs", "blobs", json!({"buckets": ["uploads"]}))
        .await;
    let blobs = |path: &'static str| call(&server, "default", "blobs", path);

    let refused = blobs("/write?key=big&bytes=200001").await;
    assert!(
        refused.starts_with("error the object is larger than the limit of 200000 bytes"),
        "{refused}"
    );
    assert_eq!(blobs("/has?key=big").await, "ok false");
    assert_eq!(blobs("/write?key=fits&bytes=200000").await, "ok");

    server.cli_ok(&["ns", "quota", "default", "--max-object-bytes", "300000"]);
    let refused = blobs("/write?key=more&bytes=150000").await;
    assert!(
        refused.contains("max_object_bytes quota of 300000"),
        "{refused}"
    );
    assert_eq!(blobs("/has?key=more").await, "ok false");
    assert_eq!(blobs("/write?key=more&bytes=100000").await, "ok");
    assert_eq!(blobs("/list").await, "ok fits,more");
}

#[tokio::test]
async fn a_function_notified_of_its_own_writes_is_stopped_by_the_loop_guard() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    create_bucket(&admin, &server, "uploads").await;
    server
        .deploy_ok("blobs", "blobs", json!({"buckets": ["uploads"]}))
        .await;
    server.cli_ok(&[
        "buckets",
        "notify",
        "uploads",
        "--function",
        "blobs",
        "--events",
        "created",
    ]);
    let (status, _) = put(&admin, &server, "uploads", "a", b"start".to_vec()).await;
    assert_eq!(status, 200);

    // Each delivery writes `<key>+`, one event deeper; the write at depth 8 triggers nothing.
    let chain: Vec<String> = (0..=8).map(|n| format!("a{}", "+".repeat(n))).collect();
    let settled = || async {
        let counts = stdout_json(&server.cli(&["queue", "blobs", "-o", "json"]));
        let listed = call(&server, "default", "blobs", "/list?page=100").await;
        let idle = counts["queued"] == 0 && counts["running"] == 0;
        match (idle, counts["succeeded"].as_u64()) {
            (true, Some(8)) => Ok(listed),
            _ => Err(format!("{counts} {listed}")),
        }
    };
    let listed = eventually(Duration::from_secs(30), settled).await;
    assert_eq!(listed, format!("ok {}", chain.join(",")));
    let counts = stdout_json(&server.cli(&["queue", "blobs", "-o", "json"]));
    assert_eq!(
        counts,
        json!({"queued": 0, "running": 0, "succeeded": 8, "failed": 0, "dead": 0}),
        "eight deliveries, each once, and none after the guard"
    );
}

#[tokio::test]
async fn records_and_usage_count_each_invocations_bucket_operations() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    create_bucket(&server.admin(), &server, "uploads").await;
    server
        .deploy_ok("blobs", "blobs", json!({"buckets": ["uploads"]}))
        .await;
    let call = |path: &'static str| server.metered_call(path, "object");
    // Opening the bucket is a read; the write of 100,000 bytes a write.
    let (wrote, counts) = call("/fn/default/blobs/write?key=m&bytes=100000").await;
    assert_eq!(counts, (1, 1, 100_000), "{wrote}");
    // The open and the read of ten bytes.
    let (read, counts) = call("/fn/default/blobs/read?key=m&start=0&end=9").await;
    assert_eq!(counts, (2, 0, 10), "{read}");
    // A copy reads and writes its bytes.
    let (copied, counts) = call("/fn/default/blobs/copy?key=m&to=n").await;
    assert_eq!(counts, (1, 1, 200_000), "{copied}");

    let usage = stdout_json(&server.cli(&["usage", "-o", "json"]));
    assert_eq!(
        metered(&usage["totals"], "object"),
        (4, 2, 300_010),
        "{usage}"
    );
}
