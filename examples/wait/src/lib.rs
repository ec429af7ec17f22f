//! Answers after waiting `?ms=N` milliseconds (default 20, at most 10,000), like a function
//! that spends its time waiting on a backend. The wait is a `wasi:clocks` pollable, so the host
//! runs other invocations meanwhile: what bounds this function's throughput is its
//! `max_concurrency`, not the CPU.

use std::io::Write as _;

use wasi::clocks::monotonic_clock;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasi::http::proxy::export!(Wait);

const DEFAULT_MS: u64 = 20;
const MAX_MS: u64 = 10_000;

struct Wait;

impl wasi::exports::http::incoming_handler::Guest for Wait {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let ms = requested_ms(&request.path_with_query().unwrap_or_default());
        monotonic_clock::subscribe_duration(ms * 1_000_000).block();

        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));

        let mut out = body.write().expect("stream is taken once");
        writeln!(out, "waited {ms} ms").expect("write body");
        out.flush().expect("flush body");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

/// The `ms` query parameter, capped at `MAX_MS`; `DEFAULT_MS` when absent or not a number.
fn requested_ms(path_with_query: &str) -> u64 {
    path_with_query
        .split_once('?')
        .into_iter()
        .flat_map(|(_, query)| query.split('&'))
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|value| value.parse::<u64>().ok())
        .map_or(DEFAULT_MS, |ms| ms.min(MAX_MS))
}
