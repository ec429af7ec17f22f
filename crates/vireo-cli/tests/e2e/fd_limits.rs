//! No invocation can take the server's file descriptors: outgoing requests over the
//! per-invocation limits (open at once, sent in all) or the server-wide connection cap fail in
//! the function with `ConnectionLimitReached` and the record says why, while the listener keeps
//! accepting — also when the process is started with only 256 descriptors, and when incoming
//! connections alone exhaust them for a while.

use std::collections::HashSet;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

use crate::support::{DEADLINE, Server, eventually, invocation_id};

const REFUSED: &str = "outgoing requests refused over a limit";

/// A loopback HTTP server that answers each request once released (at once if started
/// released) and keeps the connection open until the client closes it; it counts the
/// connections open now and the most ever open at once.
struct Upstream {
    port: u16,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
}

impl Upstream {
    async fn start(released: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (release, released_rx) = watch::channel(released);
        let (counted, highest) = (open.clone(), most.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let now = counted.fetch_add(1, Ordering::SeqCst) + 1;
                highest.fetch_max(now, Ordering::SeqCst);
                let (counted, mut released) = (counted.clone(), released_rx.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if released.wait_for(|go| *go).await.is_ok() {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        let _ = stream.write_all(answer.as_bytes()).await;
                        // Open until the client closes it.
                        while let Ok(1..) = stream.read(&mut chunk).await {}
                    }
                    counted.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            port,
            open,
            most,
            release,
        }
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    fn release(&self) {
        self.release.send_replace(true);
    }

    /// Waits until exactly `count` connections are open.
    async fn holds(&self, count: usize) {
        eventually(DEADLINE, || async {
            match self.open() {
                open if open == count => Ok(()),
                open => Err(format!("{open} connections open, waiting for {count}")),
            }
        })
        .await;
    }
}

/// Deploys the `conn-flood` fixture as `flood`, granted the upstream, with time to wait for it.
async fn deploy_flood(server: &Server, upstream: &Upstream) {
    let granted = format!("http://127.0.0.1:{}", upstream.port);
    let settings = json!({"allowed_outbound_hosts": [granted], "timeout_ms": 120_000});
    server.deploy_ok("flood", "conn-flood", settings).await;
}

/// Starts a flood of `n` requests in `mode`; resolves to its tally and invocation id.
fn flood(
    server: &Server,
    upstream: &Upstream,
    n: u32,
    mode: &str,
) -> tokio::task::JoinHandle<(Value, String)> {
    let url = server.url(&format!(
        "/fn/default/flood/?n={n}&mode={mode}&url=http://127.0.0.1:{}/",
        upstream.port
    ));
    tokio::spawn(async move {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200);
        let id = invocation_id(&response);
        (response.json().await.unwrap(), id)
    })
}

/// `count` hello requests at once, each on a connection of its own: all must answer 200.
async fn hellos_all_answer(server: &Server, count: usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let requests = (0..count).map(|_| client.get(server.url("/fn/default/hello/")).send());
    for response in futures::future::join_all(requests).await {
        let response = response.expect("the server accepts the connection");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "Hello, Vireo!\n");
    }
}

/// Asserts that the invocation's own log (its record's lines) says its requests were refused
/// and `why`.
async fn assert_refusal_noted(server: &Server, id: &str, why: &str) {
    server.invocation(id).await;
    let path = format!("/v1/namespaces/default/functions/flood/logs?invocation={id}");
    let (status, page) = server.get_json(&path).await;
    assert_eq!(status, 200, "{page}");
    let note = format!("[vireo: outgoing requests refused with connection-limit-reached: {why}]");
    let lines = page["lines"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l["line"] == note),
        "no {note:?} in {page:#}"
    );
}

/// The invocations the server refused outgoing requests of, by the ids in its log lines.
fn refused_invocations(server: &Server) -> HashSet<String> {
    server
        .log_lines(REFUSED)
        .iter()
        .filter_map(|line| {
            let at = line.find("invocation_id=")? + "invocation_id=".len();
            let id = &line[at..];
            Some(id[..id.find([' ', '}', ':']).unwrap_or(id.len())].to_string())
        })
        .collect()
}

#[tokio::test]
async fn an_invocation_over_its_concurrent_limit_gets_errors_while_hello_is_served() {
    let upstream = Upstream::start(false).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).descriptor_limit(256).start();
    deploy_flood(&server, &upstream).await;
    server.deploy_ok("hello", "hello", json!({})).await;

    // Four times the descriptors the process has.
    let flooding = flood(&server, &upstream, 1000, "concurrent");
    upstream.holds(16).await;
    hellos_all_answer(&server, 100).await;
    upstream.release();

    // Requests the guest starts after the held 16 were answered and closed may go too (a slow
    // machine may still be starting them then), so the split is not fixed; what holds is that
    // never more than 16 were open and every other request was refused with the limit's code.
    let (tally, id) = flooding.await.unwrap();
    let (ok, failed) = (
        tally["ok"].as_u64().unwrap(),
        tally["failed"].as_u64().unwrap(),
    );
    assert!(ok >= 16 && failed > 0, "{tally}");
    assert_eq!(ok + failed, 1000, "{tally}");
    assert_eq!(
        tally["errors"],
        json!({"ConnectionLimitReached": failed}),
        "{tally}"
    );
    assert_eq!(
        upstream.most(),
        16,
        "never more than the invocation's limit"
    );
    let why = "the invocation has 16 outgoing requests open (egress.max_concurrent_per_invocation)";
    assert_refusal_noted(&server, &id, why).await;
    assert_eq!(server.log_lines(REFUSED).len(), 1, "logged once");
    hellos_all_answer(&server, 10).await;
}

#[tokio::test]
async fn floods_share_a_cap_below_the_descriptor_limit_and_the_listener_keeps_accepting() {
    let upstream = Upstream::start(false).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).descriptor_limit(256).start();
    let capped = server.logged("outgoing connections capped").await;
    assert!(
        capped.contains("max_connections=64"),
        "a quarter of 256: {capped}"
    );
    deploy_flood(&server, &upstream).await;
    server.deploy_ok("hello", "hello", json!({})).await;

    let floods: Vec<_> = (0..8)
        .map(|_| flood(&server, &upstream, 100, "concurrent"))
        .collect();
    // Each flood starts all its requests before awaiting one and holds what it got until all
    // have answered, so once all eight have been refused some, the cap is taken.
    eventually(DEADLINE, || async {
        match refused_invocations(&server).len() {
            8 => Ok(()),
            seen => Err(format!("{seen} of 8 floods refused so far")),
        }
    })
    .await;
    // The slots are taken; their connections may still be on their way.
    upstream.holds(64).await;
    server
        .logged("all 64 outgoing connections of the server are open")
        .await;
    hellos_all_answer(&server, 100).await;
    upstream.release();

    let mut sent = 0;
    for flooding in floods {
        let (tally, _) = flooding.await.unwrap();
        let ok = tally["ok"].as_u64().unwrap();
        assert!(ok <= 16, "{tally}");
        assert_eq!(ok + tally["failed"].as_u64().unwrap(), 100, "{tally}");
        assert_eq!(tally["errors"].as_object().unwrap().len(), 1, "{tally}");
        sent += ok;
    }
    assert!(sent >= 64, "{sent}");
    assert_eq!(upstream.most(), 64, "never more than the cap");
}

#[tokio::test]
async fn a_configured_server_cap_refuses_the_invocation_that_would_exceed_it() {
    let upstream = Upstream::start(false).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[egress]\nmax_connections = 20\n")
        .start();
    deploy_flood(&server, &upstream).await;

    let first = flood(&server, &upstream, 16, "concurrent");
    upstream.holds(16).await;
    // Its fifth request is its last and the first over the cap.
    let second = flood(&server, &upstream, 5, "concurrent");
    upstream.holds(20).await;
    server.logged(REFUSED).await;
    upstream.release();

    let (tally, _) = first.await.unwrap();
    assert_eq!(tally, json!({"ok": 16, "failed": 0, "errors": {}}));
    let (tally, id) = second.await.unwrap();
    assert_eq!(
        tally,
        json!({"ok": 4, "failed": 1, "errors": {"ConnectionLimitReached": 1}})
    );
    let why = "all 20 outgoing connections of the server are open (egress.max_connections)";
    assert_refusal_noted(&server, &id, why).await;
}

#[tokio::test]
async fn an_invocation_sends_at_most_its_total() {
    let upstream = Upstream::start(true).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    deploy_flood(&server, &upstream).await;

    let (tally, id) = flood(&server, &upstream, 300, "sequential").await.unwrap();
    assert_eq!(
        tally,
        json!({"ok": 256, "failed": 44, "errors": {"ConnectionLimitReached": 44}})
    );
    let why =
        "the invocation has sent its 256 outgoing requests (egress.max_requests_per_invocation)";
    assert_refusal_noted(&server, &id, why).await;
    // A new invocation has a new budget.
    let (tally, _) = flood(&server, &upstream, 10, "sequential").await.unwrap();
    assert_eq!(tally["ok"], 10);
}

#[tokio::test]
async fn the_listener_accepts_again_once_descriptors_are_free() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).descriptor_limit(256).start();
    server.deploy_ok("hello", "hello", json!({})).await;

    // More idle connections than the process has descriptors: the kernel completes them into
    // the listen backlog, the server accepts until it runs out.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(server.address()).unwrap())
        .collect();
    let failing = server.logged("accepting connections failed").await;
    assert!(failing.contains("Too many open files"), "{failing}");
    let waiting = tokio::spawn(reqwest::get(server.url("/fn/default/hello/")));
    drop(idle);

    let response = waiting
        .await
        .unwrap()
        .expect("answered once descriptors freed");
    assert_eq!(response.status(), 200);
    hellos_all_answer(&server, 20).await;
    let warnings = server.log_lines("accepting connections failed").len();
    assert!(
        warnings <= 5,
        "warned {warnings} times: at most once a second"
    );
}
