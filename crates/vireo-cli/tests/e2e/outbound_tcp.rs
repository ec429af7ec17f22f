//! Functions open TCP connections through `wasi:sockets` (Rust's `std::net` in a Spin SDK 5
//! component), to what their `tcp://` grants name and nowhere else: refused destinations and
//! name lookups never reach the network, and an invocation's connects are bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{DEADLINE, Server, eventually};

/// An echo server on a free loopback port that counts the connections it accepts.
async fn echo_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut received = Vec::new();
                if stream.read_to_end(&mut received).await.is_ok() {
                    let _ = stream.write_all(&received).await;
                }
            });
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn granted_destinations_echo_and_everything_else_is_refused_before_connecting() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[egress]\nmax_requests_per_invocation = 3\n")
        .start();
    let (granted, granted_accepts) = echo_server().await;
    let (by_name, by_name_accepts) = echo_server().await;
    let (other, other_accepts) = echo_server().await;
    server
        .deploy_ok(
            "tcp",
            "spin-outbound",
            json!({"allowed_outbound_hosts": [
                format!("tcp://127.0.0.1:{granted}"),
                format!("tcp://localhost:{by_name}"),
            ]}),
        )
        .await;
    server
        .deploy_ok(
            "http-only",
            "spin-outbound",
            json!({"allowed_outbound_hosts": [format!("http://127.0.0.1:{other}")]}),
        )
        .await;

    let echo = |function: &'static str, to: String| {
        let server = &server;
        async move {
            server
                .outbound(function, &format!("/tcp/echo?to={to}"), "", "ping")
                .await
        }
    };
    assert_eq!(echo("tcp", format!("127.0.0.1:{granted}")).await, "ok ping");
    assert_eq!(echo("tcp", format!("localhost:{by_name}")).await, "ok ping");
    assert_eq!(granted_accepts.load(Ordering::SeqCst), 1);
    assert_eq!(by_name_accepts.load(Ordering::SeqCst), 1);

    for (function, to) in [
        // A port no entry grants, on a granted address and on a granted name.
        ("tcp", format!("127.0.0.1:{other}")),
        ("tcp", format!("localhost:{other}")),
        // A name no entry covers: not even looked up.
        ("tcp", format!("vireo-test.invalid:{granted}")),
        // A private address, never granted.
        ("tcp", format!("10.255.255.1:{granted}")),
        // An http:// entry grants no socket.
        ("http-only", format!("127.0.0.1:{other}")),
    ] {
        let refused = echo(function, to.clone()).await;
        assert!(
            refused.starts_with("error "),
            "{function} to {to}: {refused}"
        );
    }
    assert_eq!(
        other_accepts.load(Ordering::SeqCst),
        0,
        "nothing refused connected"
    );
    assert_eq!(granted_accepts.load(Ordering::SeqCst), 1);

    // An invocation connects at most egress.max_requests_per_invocation times; the next gets its own.
    let flood = format!("/tcp/flood?to=127.0.0.1:{granted}&count=5");
    assert_eq!(server.outbound("tcp", &flood, "", "").await, "ok 3");
    assert_eq!(server.outbound("tcp", &flood, "", "").await, "ok 3");
    // A connect completes in the kernel before the echo server's accept loop counts it.
    eventually(DEADLINE, || {
        let accepted = granted_accepts.load(Ordering::SeqCst);
        async move {
            if accepted == 7 {
                Ok(())
            } else {
                Err(format!("{accepted} of 7 connections accepted"))
            }
        }
    })
    .await;
}
