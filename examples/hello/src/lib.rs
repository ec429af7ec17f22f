//! The smallest Vireo function: answers every request with a greeting, `Hello` unless the
//! `GREETING` environment variable says otherwise (`vireo deploy … --env GREETING=Hi`).

use std::io::Write as _;

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasi::http::proxy::export!(Hello);

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        // Lands in the function's logs: `vireo logs hello`.
        println!("hello called: {}", request.path_with_query().unwrap_or_default());

        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));

        let mut out = body.write().expect("stream is taken once");
        let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
        writeln!(out, "{greeting}, Vireo!").expect("write body");
        out.flush().expect("flush body");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}
