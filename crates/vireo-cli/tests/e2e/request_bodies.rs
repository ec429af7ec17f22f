//! Request bodies a client breaks: one that trickles is answered 408 and its connection closed
//! (async accepts, deploy uploads, secrets, functions reading it), one that keeps a modest pace
//! is read whole, and a malformed chunked body is the client's fault (400), not the function's.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, read_answer};

/// A body may keep its reader waiting 1 s, plus a second per 1000 bytes it delivers.
const CONFIG: &str = "[limits]\nbody_read_timeout_ms = 1000\nbody_min_bytes_per_sec = 1000\n";
const GRACE: Duration = Duration::from_millis(1000);

/// How the server answered a request whose body was sent slowly.
struct Answer {
    status: u16,
    headers: String,
    body: Value,
    /// From the end of the head to the answer.
    after: Duration,
    /// The server closed the connection after answering.
    closed: bool,
}

/// Sends `head`, then `body` in `chunk`-byte pieces every `every` until it is sent or the server
/// answers; reads the answer and whether the connection is closed after it.
fn send_paced(address: &str, head: &str, body: Vec<u8>, chunk: usize, every: Duration) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream.write_all(head.as_bytes()).expect("write head");
    let started = Instant::now();
    let answered = Arc::new(AtomicBool::new(false));
    let mut writer = stream.try_clone().expect("clone stream");
    let stop = answered.clone();
    let sender = std::thread::spawn(move || {
        for piece in body.chunks(chunk) {
            // A slow client, which is what is tested: the pause is the pace, not a wait for state.
            std::thread::sleep(every);
            if stop.load(Ordering::Relaxed) || writer.write_all(piece).is_err() {
                return;
            }
        }
    });
    let (status, headers, body) = read_answer(&mut stream);
    let after = started.elapsed();
    answered.store(true, Ordering::Relaxed);
    let mut rest = [0u8; 64];
    let closed = matches!(stream.read(&mut rest), Ok(0) | Err(_));
    let _ = stream.shutdown(Shutdown::Both);
    sender.join().expect("sender thread");
    Answer {
        status,
        headers,
        body,
        after,
        closed,
    }
}

fn invocation_id(answer: &Answer) -> String {
    answer
        .headers
        .lines()
        .find_map(|line| line.strip_prefix("x-vireo-invocation-id:"))
        .expect("every answer on /fn carries the invocation id")
        .trim()
        .to_string()
}

fn trickle(address: &str, head: &str, body: Vec<u8>) -> Answer {
    send_paced(address, head, body, 1, Duration::from_millis(100))
}

fn assert_timed_out(what: &str, answer: &Answer) {
    assert_eq!(answer.status, 408, "{what}: {}", answer.body);
    assert_eq!(answer.body["error"]["code"], "request_timeout", "{what}");
    assert!(
        answer.headers.contains("content-type: application/json"),
        "{what}: {}",
        answer.headers
    );
    assert!(
        answer.after >= GRACE && answer.after < Duration::from_secs(10),
        "{what}: answered after {:?}",
        answer.after
    );
    assert!(answer.closed, "{what}: the connection was left open");
}

#[tokio::test]
async fn trickling_bodies_get_408_and_lose_their_connection_while_others_are_served() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(CONFIG).start();
    server.deploy_ok("echo", "echo", json!({})).await;
    server.deploy_ok("hello", "hello", json!({})).await;
    let key = &server.admin_key;
    let boundary = "vireo-test-boundary";
    let form_start =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"component\"\r\n\r\n");
    let mut upload = form_start.into_bytes();
    upload.resize(100_000, 0);
    let requests = [
        (
            "async accept",
            "POST /fn/default/echo/ HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\nContent-Length: 1000\r\n\r\n".to_string(),
            vec![b'a'; 1000],
        ),
        (
            "function reading its body",
            "POST /fn/default/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".to_string(),
            vec![b'a'; 1000],
        ),
        (
            "deploy upload",
            format!("POST /v1/namespaces/default/functions/slow/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n", upload.len()),
            upload,
        ),
        (
            "secret value",
            format!("PUT /v1/namespaces/default/secrets/SLOW HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"),
            [b"{\"value\":\"".as_slice(), &[b'v'; 990]].concat(),
        ),
    ];
    let slow: Vec<_> = requests
        .into_iter()
        .map(|(what, head, body)| {
            let address = server.address();
            (
                what,
                std::thread::spawn(move || trickle(&address, &head, body)),
            )
        })
        .collect();

    // Meanwhile everyone else is served, promptly.
    for _ in 0..5 {
        let started = Instant::now();
        let response = reqwest::get(server.url("/fn/default/hello/"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < GRACE,
            "hello took {:?}",
            started.elapsed()
        );
    }

    let mut answers = Vec::new();
    for (what, thread) in slow {
        let answer = tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
        assert_timed_out(what, &answer);
        answers.push((what, answer));
    }

    // The function saw its body fail: the record blames the client, not the guest.
    let direct = &answers[1].1;
    let record = server.invocation(&invocation_id(direct)).await;
    assert_eq!(record["status"], "client_error", "{record}");
    assert_eq!(record["http_status"], 408, "{record}");
    // Nothing was stored, deployed or set from a body that never arrived.
    let (_, counts) = server
        .get_json("/v1/namespaces/default/functions/echo/queue")
        .await;
    assert_eq!(counts["queued"], 0, "{counts}");
    let (status, _) = server
        .get_json("/v1/namespaces/default/functions/slow")
        .await;
    assert_eq!(status, 404);
    let (_, secrets) = server.get_json("/v1/namespaces/default/secrets").await;
    assert_eq!(secrets["secrets"], json!([]), "{secrets}");
}

#[tokio::test]
async fn a_slow_body_that_keeps_the_minimum_pace_is_read_whole() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(CONFIG).start();
    server.deploy_ok("echo", "echo", json!({})).await;
    // 4000 bytes at 2000 bytes a second: twice the grace in all, but twice the minimum pace.
    let head = "POST /fn/default/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n";
    let address = server.address();
    let answer = tokio::task::spawn_blocking(move || {
        send_paced(
            &address,
            head,
            vec![b'p'; 4000],
            200,
            Duration::from_millis(100),
        )
    })
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.headers);
    assert!(
        answer.after > GRACE,
        "sent within the grace: {:?}",
        answer.after
    );
    let record = server.invocation(&invocation_id(&answer)).await;
    assert_eq!(record["status"], "ok", "{record}");
    assert_eq!(
        record["request_bytes"], 4000,
        "the function read it all: {record}"
    );
}

/// A chunk size line that is not hex, after one good chunk.
const MALFORMED: &str = "5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n";

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_fault() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("echo", "echo", json!({})).await;
    let address = server.address();
    let send = |extra: &'static str| {
        let address = address.clone();
        tokio::task::spawn_blocking(move || {
            let head = format!(
                "POST /fn/default/echo/ HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
            );
            send_paced(
                &address,
                &head,
                MALFORMED.into(),
                MALFORMED.len(),
                Duration::ZERO,
            )
        })
    };

    let direct = send("").await.unwrap();
    assert_eq!(direct.status, 400, "{}", direct.body);
    assert_eq!(direct.body["error"]["code"], "bad_request");
    let message = direct.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("chunk"), "{message}");
    let record = server.invocation(&invocation_id(&direct)).await;
    assert_eq!(record["status"], "client_error", "{record}");
    assert_eq!(record["http_status"], 400, "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        !error.contains("guest") && error.contains("chunk"),
        "{error}"
    );

    let accepted = send("Prefer: respond-async\r\n").await.unwrap();
    assert_eq!(accepted.status, 400, "{}", accepted.body);
    assert_eq!(accepted.body["error"]["code"], "bad_request");
    let (_, counts) = server
        .get_json("/v1/namespaces/default/functions/echo/queue")
        .await;
    assert_eq!(counts["queued"], 0, "{counts}");
}
