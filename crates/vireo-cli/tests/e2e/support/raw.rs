//! Raw HTTP/1.1 over a socket, for what a well-behaved client would not send (a huge declared
//! body, a body larger than the limit) or would not let us see (an answer before the body is
//! through).

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use super::DEADLINE;

/// Sends raw bytes and returns the status code of the answer; used where a well-behaved client
/// would not send what we need to (a huge declared body, a body larger than the limit).
pub fn raw_status(address: &str, head: &str, body: Vec<u8>) -> u16 {
    let (mut stream, sender) = send_raw(address, head, body);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// Reads one HTTP/1.1 answer whole, its body sized by `Content-Length` or chunked: its status,
/// its head (lowercased) and its body as JSON (null if it is none). Reading a streamed answer to
/// its last chunk keeps the connection open until the function has sent all of it, as a real
/// client would.
pub fn read_answer(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut answer = Vec::new();
    let head_end = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        read_more(
            stream,
            &mut answer,
            "the connection closed without an answer",
        );
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        read_chunked(stream, answer.split_off(head_end))
    } else {
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| {
                value.trim().parse().expect("numeric content-length")
            });
        while answer.len() < head_end + length {
            read_more(
                stream,
                &mut answer,
                "the connection closed inside the answer",
            );
        }
        answer[head_end..head_end + length].to_vec()
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, head, body)
}

/// Appends what the next read gives to `answer`; `closed` when the peer closed instead.
fn read_more(stream: &mut TcpStream, answer: &mut Vec<u8>, closed: &str) {
    let mut buf = [0u8; 4096];
    let read = stream.read(&mut buf).expect("read the answer");
    assert!(read > 0, "{closed}");
    answer.extend_from_slice(&buf[..read]);
}

/// The data of a chunked body, `raw` being what was read of it so far, up to its last chunk.
fn read_chunked(stream: &mut TcpStream, mut raw: Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
            read_more(
                stream,
                &mut raw,
                "the connection closed inside a chunk's size",
            );
            continue;
        };
        let size_line = String::from_utf8_lossy(&raw[at..at + line]).into_owned();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("a chunk size, not {size_line:?}"));
        let data = at + line + 2;
        while raw.len() < data + size + 2 {
            read_more(stream, &mut raw, "the connection closed inside a chunk");
        }
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[data..data + size]);
        at = data + size + 2;
    }
}

/// Like `raw_status`, with the answer's head (lowercased) and JSON body too.
pub fn raw_response(address: &str, head: &str, body: Vec<u8>) -> (u16, String, Value) {
    let (mut stream, sender) = send_raw(address, head, body);
    let answer = read_answer(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    answer
}

/// Sends `head` in one write, then `body` on the side: the server may answer and stop reading
/// before the body is through.
fn send_raw(address: &str, head: &str, body: Vec<u8>) -> (TcpStream, std::thread::JoinHandle<()>) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    (stream, sender)
}
