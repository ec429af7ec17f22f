//! The admin API keeps its contract: every error is the JSON envelope with the right status, and
//! the OpenAPI document lists, for every operation, the errors it can answer and the pattern of
//! every name it takes.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, raw_response};

/// One request and what it must be answered.
struct Case {
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(method: Method, path: &'static str, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path,
        content_type: None,
        body: Vec::new(),
        status,
        code,
    }
}

fn json_case(
    method: Method,
    path: &'static str,
    body: &str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        ..case(method, path, status, code)
    }
}

/// Sends a case as raw bytes (so a server that answers before the body is through is heard) and
/// checks the answer is the envelope with `want`.
fn assert_answered(address: &str, key: Option<&str>, case: Case) {
    let what = format!("{} {}", case.method, case.path);
    let mut head = format!("{} {} HTTP/1.1\r\nHost: x\r\n", case.method, case.path);
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    if let Some(content_type) = case.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", case.body.len()));
    let (status, head, body) = raw_response(address, &head, case.body);
    assert_eq!(status, case.status, "{what}: {body}");
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{what}: {head}"
    );
    assert_eq!(body["error"]["code"], case.code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: no message in {body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{what}: {body}");
    if status == 405 {
        assert!(head.contains("\r\nallow: "), "{what}: 405 without Allow");
    }
    if case.path.starts_with("/fn/") {
        assert!(
            head.contains("\r\nx-vireo-invocation-id: "),
            "{what}: {head}"
        );
    }
}

#[tokio::test]
async fn every_error_is_the_json_envelope_with_the_right_status() {
    let data = tempfile::tempdir().unwrap();
    let config = "[limits]\nmax_upload_mib = 1\n";
    let server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("echo", "echo", json!({})).await;
    let big = format!("{{\"name\":\"{}\"}}", "a".repeat(3 << 20));
    let cases = [
        // Malformed JSON, on several routes.
        json_case(Method::POST, "/v1/namespaces", "{", 400, "invalid_json"),
        json_case(
            Method::PUT,
            "/v1/namespaces/default/secrets/DB",
            "{\"value\":",
            400,
            "invalid_json",
        ),
        json_case(Method::POST, "/v1/keys", "not json", 400, "invalid_json"),
        // Well-formed JSON of the wrong shape.
        json_case(
            Method::POST,
            "/v1/namespaces",
            "[\"a\"]",
            422,
            "invalid_body",
        ),
        json_case(
            Method::PUT,
            "/v1/namespaces/default/quotas",
            "{\"max_functions\":\"x\"}",
            422,
            "invalid_body",
        ),
        json_case(
            Method::PUT,
            "/v1/namespaces/default/quotas",
            "[null, null]",
            422,
            "invalid_body",
        ),
        json_case(
            Method::PUT,
            "/v1/namespaces/default/quotas",
            "{\"max_kv_bytes\":9223372036854775808}",
            400,
            "invalid_request",
        ),
        json_case(
            Method::POST,
            "/v1/namespaces",
            "{\"name\":\"x\",\"quotas\":[null, null]}",
            422,
            "invalid_body",
        ),
        json_case(
            Method::POST,
            "/v1/namespaces/default/schedules",
            "{\"unknown\":1}",
            422,
            "invalid_body",
        ),
        // The wrong content type, or none.
        Case {
            content_type: Some("text/plain"),
            body: b"{\"name\":\"x\"}".to_vec(),
            ..case(
                Method::POST,
                "/v1/namespaces",
                415,
                "unsupported_media_type",
            )
        },
        Case {
            body: b"{\"version\":1}".to_vec(),
            ..case(
                Method::PUT,
                "/v1/namespaces/default/functions/echo/aliases/prod",
                415,
                "unsupported_media_type",
            )
        },
        json_case(
            Method::POST,
            "/v1/namespaces/default/functions/echo/versions",
            "{}",
            415,
            "unsupported_media_type",
        ),
        // Larger than the route takes.
        json_case(
            Method::POST,
            "/v1/namespaces",
            &big,
            413,
            "payload_too_large",
        ),
        Case {
            content_type: Some("multipart/form-data; boundary=b"),
            body: [
                b"--b\r\nContent-Disposition: form-data; name=\"component\"\r\n\r\n".as_slice(),
                // Over the 1 MiB limit, under what the declared length alone refuses.
                &vec![0u8; 3 << 19],
                b"\r\n--b--\r\n",
            ]
            .concat(),
            ..case(
                Method::POST,
                "/v1/namespaces/default/functions/echo/versions",
                413,
                "payload_too_large",
            )
        },
        // No such route.
        case(Method::GET, "/v1/nothing-here", 404, "not_found"),
        case(Method::GET, "/elsewhere", 404, "not_found"),
        case(
            Method::GET,
            "/v1/namespaces/default/functions/echo/nothing",
            404,
            "not_found",
        ),
        // A method the route does not take.
        case(Method::PATCH, "/v1/keys", 405, "method_not_allowed"),
        case(Method::DELETE, "/v1/usage", 405, "method_not_allowed"),
        case(
            Method::PUT,
            "/v1/namespaces/default/functions/echo/versions",
            405,
            "method_not_allowed",
        ),
        case(Method::POST, "/v1/openapi.json", 405, "method_not_allowed"),
        // Bad names and ids, in the path and the query.
        case(Method::GET, "/v1/namespaces/Bad_Name", 400, "invalid_name"),
        case(
            Method::GET,
            "/v1/namespaces/default/functions/-echo",
            400,
            "invalid_name",
        ),
        case(
            Method::GET,
            "/v1/namespaces/default/functions/echo/versions/a_b",
            400,
            "invalid_name",
        ),
        case(
            Method::DELETE,
            "/v1/namespaces/default/secrets/1BAD",
            400,
            "invalid_name",
        ),
        case(Method::GET, "/v1/namespaces/%FF", 400, "invalid_path"),
        case(
            Method::GET,
            "/v1/invocations/not-a-uuid",
            400,
            "invalid_request",
        ),
        case(Method::GET, "/v1/usage?namespace=NOPE", 400, "invalid_name"),
        case(
            Method::GET,
            "/v1/namespaces/default/functions/echo/invocations?limit=many",
            400,
            "invalid_query",
        ),
        case(
            Method::GET,
            "/v1/namespaces/default/functions/echo/logs?unknown=1",
            400,
            "invalid_query",
        ),
        // Things that do not exist.
        case(Method::GET, "/v1/namespaces/nowhere", 404, "not_found"),
        case(
            Method::DELETE,
            "/v1/keys/000000000000000000",
            404,
            "not_found",
        ),
    ];
    let address = server.address();
    for case in cases {
        assert_answered(&address, Some(&server.admin_key), case);
    }
    // Without a key, and on the invocation path.
    assert_answered(
        &address,
        None,
        case(Method::GET, "/v1/keys", 401, "unauthorized"),
    );
    assert_answered(
        &address,
        None,
        case(Method::GET, "/fn/default/%FF/", 400, "invalid_path"),
    );
}

/// The statuses an operation documents, as strings.
fn documented(operation: &Value) -> BTreeSet<String> {
    operation["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_openapi_document_lists_every_error_and_name_pattern() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let document: Value = reqwest::get(server.url("/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemes = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["scheme"], "bearer", "{schemes}");
    // `vireo config` posts a deploy form without a component: the document must allow it.
    let form = &document["components"]["schemas"]["DeployForm"];
    assert!(
        form["properties"]["component"].is_object() && form.get("required").is_none(),
        "{form}"
    );
    let mut operation_ids = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            operations += 1;
            let what = format!("{method} {path}");
            let statuses = documented(operation);
            let must = |status: &str, why: &str| {
                assert!(
                    statuses.contains(status),
                    "{what} does not list {status} ({why})"
                );
            };
            must("401", "every documented route needs a key");
            must("500", "every route reads or writes the store");
            if path.contains("{namespace}") {
                must("429", "the key's rate limit in the namespace");
            }
            // Any key may list the namespaces it covers and read its invocations by id.
            let any_key = (method == "get" && path == "/v1/namespaces")
                || path.starts_with("/v1/invocations/");
            if !any_key {
                must("403", "a role that may not do this");
            }
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for parameter in &parameters {
                let name = parameter["name"].as_str().unwrap();
                let place = parameter["in"].as_str().unwrap();
                let is_name = place == "path"
                    || ["namespace", "function", "invocation", "before"].contains(&name);
                if is_name {
                    let pattern = parameter["schema"]["pattern"].as_str().unwrap_or_default();
                    assert!(
                        pattern.starts_with('^') && pattern.ends_with('$'),
                        "{what}: {place} parameter {name} has no anchored pattern: {parameter}"
                    );
                }
            }
            if parameters.iter().any(|p| p["in"] == "path") {
                must("400", "an invalid name in the path");
                must("404", "a name that does not exist");
            }
            if parameters.iter().any(|p| p["in"] == "query") {
                must("400", "an invalid query parameter");
            }
            if let Some(content) = operation["requestBody"]["content"].as_object() {
                for status in ["400", "408", "413", "415"] {
                    must(status, "a request body");
                }
                if content.contains_key("application/json") {
                    must("422", "JSON of the wrong shape");
                }
            }
            for status in statuses.iter().filter(|s| s.as_str() >= "400") {
                let schema =
                    &operation["responses"][status]["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorBody",
                    "{what}: {status} is not the error envelope"
                );
            }
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(
                operation_ids.insert(id.to_string()),
                "{what}: operationId {id} is used twice"
            );
        }
    }
    assert!(operations >= 35, "only {operations} operations documented");
    let name = &document["components"]["schemas"]["CreateNamespace"]["properties"]["name"];
    assert_eq!(name["pattern"], "^[a-z0-9][a-z0-9-]{0,62}$", "{name}");
    // A u32 is documented with its whole range, not as an int32.
    let quota =
        &document["components"]["schemas"]["NamespaceQuotas"]["properties"]["max_functions"];
    assert_eq!(quota["format"], "uint32", "{quota}");
    assert_eq!(quota["maximum"], u32::MAX, "{quota}");
    assert!(
        !document.to_string().contains("u-int"),
        "utoipa's format names remain"
    );
}
