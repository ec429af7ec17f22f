//! Answers with a JSON description of the request it received: method, path, query, headers,
//! body, and the environment variables the function was deployed with. `?status=N` (200–599)
//! makes it answer with that status, e.g. to see a failing async invocation retried.

use std::io::{Read as _, Write as _};

use serde_json::{Map, Value, json};
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};

wasi::http::proxy::export!(Echo);

struct Echo;

impl wasi::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let described = describe(&request);
        let mut body = serde_json::to_vec_pretty(&described).expect("JSON value serialises");
        body.push(b'\n');

        let headers = Fields::from_list(&[("content-type".into(), b"application/json".to_vec())])
            .expect("static header is valid");
        let response = OutgoingResponse::new(headers);
        response
            .set_status_code(requested_status(&request))
            .expect("the status is checked to be valid");
        let outgoing = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));

        let mut out = outgoing.write().expect("stream is taken once");
        // The stream accepts at most 4 KiB per write; write_all chunks for us.
        out.write_all(&body).expect("write body");
        out.flush().expect("flush body");
        drop(out);
        OutgoingBody::finish(outgoing, None).expect("finish body");
    }
}

fn describe(request: &IncomingRequest) -> Value {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (path_with_query.clone(), None),
    };
    let mut headers = Map::new();
    for (name, value) in request.headers().entries() {
        headers.insert(name, Value::String(String::from_utf8_lossy(&value).into_owned()));
    }
    let env: Map<String, Value> = std::env::vars().map(|(k, v)| (k, Value::String(v))).collect();
    json!({
        "method": method_name(&request.method()),
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&read_body(request)),
        "env": env,
    })
}

/// `?status=N` when N is a valid status, otherwise 200.
fn requested_status(request: &IncomingRequest) -> u16 {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let query = path_with_query.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("status="))
        .and_then(|code| code.parse().ok())
        .filter(|code| (200..=599).contains(code))
        .unwrap_or(200)
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let Ok(body) = request.consume() else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().expect("stream is taken once");
        stream.read_to_end(&mut bytes).expect("read request body");
    }
    IncomingBody::finish(body);
    bytes
}
