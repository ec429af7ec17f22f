//! The network capability: a function reaches only the origins its `allowed_outbound_hosts`
//! grant, a name only at public addresses, with the caller's trace, and within its share of
//! outgoing requests, which each invocation gets afresh.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use vireo_core::VersionSettings;
use vireo_runtime::{EgressLimits, EngineSettings};
use wasmtime_wasi_http::io::TokioIo;

use crate::support::TestHost;

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A loopback HTTP server that answers `upstream saw PATH`, counting the connections it
/// accepts and keeping each request's `traceparent`.
struct Upstream {
    port: u16,
    connections: Arc<AtomicUsize>,
    traceparents: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let traceparents = Arc::new(Mutex::new(Vec::new()));
        let (counted, kept) = (connections.clone(), traceparents.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let kept = kept.clone();
                let answer = service_fn(move |request: http::Request<Incoming>| {
                    if let Some(traceparent) = request.headers().get("traceparent") {
                        let traceparent = traceparent.to_str().unwrap().to_string();
                        kept.lock().unwrap().push(traceparent);
                    }
                    let body = format!("upstream saw {}", request.uri());
                    async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), answer);
                tokio::spawn(connection);
            }
        });
        Self {
            port,
            connections,
            traceparents,
        }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn allowing(origins: &[&str]) -> VersionSettings {
    VersionSettings {
        allowed_outbound_hosts: origins.iter().map(|origin| origin.to_string()).collect(),
        ..VersionSettings::default()
    }
}

#[tokio::test]
async fn a_granted_origin_is_reached_with_the_callers_trace() {
    let upstream = Upstream::start().await;
    let host = TestHost::new();
    let fetch = host
        .deploy("fetch", allowing(&[&upstream.origin()]), &[])
        .await
        .unwrap();

    let url = format!("{}/hello?x=1", upstream.origin());
    let headers = [("x-fetch-url", url.as_str()), ("traceparent", CALLER)];
    let answer = host.get(&fetch, "/", &headers).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "upstream saw /hello?x=1")
    );

    let sent = upstream.traceparents.lock().unwrap().clone();
    let [sent] = sent.as_slice() else {
        panic!("one request with a traceparent, got {sent:?}");
    };
    let (sent, caller): (Vec<&str>, Vec<&str>) =
        (sent.split('-').collect(), CALLER.split('-').collect());
    assert_eq!(sent[1], caller[1], "the caller's trace id");
    assert_ne!(sent[2], caller[2], "a span of its own");
}

#[tokio::test]
async fn what_is_not_granted_is_refused_before_connecting() {
    let upstream = Upstream::start().await;
    let host = TestHost::new();
    let ungranted = host.deploy("fetch", allowing(&[]), &[]).await.unwrap();
    let by_name = format!("http://localhost:{}", upstream.port);
    let named = host
        .deploy("fetch", allowing(&[&by_name]), &[])
        .await
        .unwrap();

    let answer = host
        .get(&ungranted, "/", &[("x-fetch-url", &upstream.origin())])
        .await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("HttpRequestDenied"), "{}", answer.body);

    // `localhost` names loopback, but only by that name: the address is not granted by it.
    let answer = host
        .get(&named, "/", &[("x-fetch-url", &upstream.origin())])
        .await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("HttpRequestDenied"), "{}", answer.body);

    assert_eq!(upstream.connections(), 0, "no connection was opened");
}

#[tokio::test]
async fn deploy_refuses_an_allow_list_it_cannot_grant() {
    let host = TestHost::new();
    let refused = host
        .deploy("fetch", allowing(&["api.example.com"]), &[])
        .await
        .err()
        .expect("a pattern without a scheme is refused");
    assert!(refused.contains("\"api.example.com\""), "{refused}");
    assert!(refused.contains("scheme"), "{refused}");
}

#[tokio::test]
async fn each_invocation_gets_its_own_share_of_requests() {
    let upstream = Upstream::start().await;
    let host = TestHost::with(EngineSettings {
        egress: EgressLimits {
            requests_per_invocation: 2,
            ..EgressLimits::default()
        },
        ..EngineSettings::default()
    });
    let settings = VersionSettings {
        instance_reuse: 2,
        ..allowing(&[&upstream.origin()])
    };
    let flood = host.deploy("conn-flood", settings, &[]).await.unwrap();

    let path = format!("/?url={}/&n=3&mode=sequential", upstream.origin());
    let first = host.get(&flood, &path, &[]).await;
    let second = host.get(&flood, &path, &[]).await;
    assert_eq!(
        second.completion.init,
        Duration::ZERO,
        "the second invocation ran on the first one's instance"
    );
    for answer in [&first, &second] {
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (
                200,
                r#"{"ok":2,"failed":1,"errors":{"ConnectionLimitReached":1}}"#
            )
        );
        assert_eq!(
            answer.output(),
            [
                "[vireo: outgoing requests refused with connection-limit-reached: the invocation \
              has sent its 2 outgoing requests (egress.max_requests_per_invocation)]"
            ]
        );
    }
    assert_eq!(upstream.connections(), 4);
}
