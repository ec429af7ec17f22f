//! The gateway's router in process (`tower::ServiceExt::oneshot`, no port, no server) over
//! in-memory fakes of the core seams: who may call which route, the error envelope of every kind
//! of bad request, and a few handlers end to end. The real store, runtime and binary are tested
//! in their own crates and in vireo-cli's e2e suite.

mod dashboard;
mod fakes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use vireo_core::auth::generate_key;
use vireo_core::{
    ApiKey, Directory, KeyValueLimits, Name, NamespaceQuotas, PricePlan, RateLimit, Role,
    TenantStore,
};
use vireo_gateway::{AppState, GatewayLimits, Pace, SharedState, SourceServices};

use fakes::World;

/// Namespaces every test starts with.
const NAMESPACES: [&str; 2] = ["mine", "theirs"];

struct Gateway {
    router: Router,
    world: Arc<World>,
    directory: Arc<Directory>,
    admin: String,
}

/// An answer: status, headers and the JSON body (null when it is none).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{} without an error envelope: {}", self.status, self.body))
    }
}

impl Gateway {
    async fn new() -> Self {
        Self::with_quotas(NamespaceQuotas::default()).await
    }

    /// A gateway whose namespaces all have `quotas`.
    async fn with_quotas(quotas: NamespaceQuotas) -> Self {
        let world = Arc::new(World::with_warm_versions(vec![2]));
        for namespace in NAMESPACES {
            world
                .create_namespace(&name(namespace), &quotas, 0)
                .await
                .unwrap();
        }
        let directory = Arc::new(Directory::load(world.clone(), None).await.unwrap());
        let (_, log_events) = tokio::sync::watch::channel(0);
        let state = AppState::new(SharedState {
            catalog: world.clone(),
            records: world.clone(),
            deployer: world.clone(),
            invoker: world.clone(),
            queue: world.clone(),
            schedules: world.clone(),
            sources: SourceServices {
                store: world.clone(),
                probe: world.clone(),
                monitor: world.clone(),
                secrets: world.clone(),
            },
            http_routes: world.clone(),
            published: Arc::default(),
            secrets: world.clone(),
            key_value: world.clone(),
            objects: Arc::new(fakes::NoBuckets),
            sqlite: None,
            submitter: world.clone(),
            log_events,
            shutdown: CancellationToken::new(),
            nodes: world.clone(),
            store_health: tokio::sync::watch::channel(Ok(())).1,
            limits: GatewayLimits {
                max_upload_bytes: 1 << 20,
                max_request_body_bytes: 1 << 20,
                max_url_bytes: 8 << 10,
                max_header_bytes: 16 << 10,
                body_pace: Pace {
                    grace: Duration::from_secs(5),
                    min_bytes_per_sec: 1000,
                },
                key_value: KeyValueLimits {
                    max_key_bytes: 16,
                    max_value_bytes: 64,
                },
                objects: Default::default(),
                max_pending_per_namespace: 100,
            },
            pricing: PricePlan::default(),
            directory: directory.clone(),
            key_buckets: Arc::default(),
            render_metrics: Arc::new(|| "vireo_up 1\n".to_string()),
            ui: Some(vireo_gateway::UiSettings {
                cookie_key: [7; 64],
                session_ttl: Duration::from_secs(60),
                secure_cookies: false,
            }),
            presign_key: vireo_gateway::PresignKey::new([9; 32]),
        });
        let mut gateway = Self {
            router: vireo_gateway::router(state),
            world,
            directory,
            admin: String::new(),
        };
        gateway.admin = gateway.key(Role::Admin, &[]).await;
        gateway
    }

    /// A new key of `role` in `namespaces`.
    async fn key(&self, role: Role, namespaces: &[&str]) -> String {
        let generated = generate_key();
        let key = ApiKey {
            id: generated.id,
            role,
            namespaces: namespaces.iter().map(|ns| name(ns)).collect(),
            description: None,
            created_at_us: 0,
            expires_at_us: None,
            revoked_at_us: None,
            secret_sha256: generated.secret_sha256,
        };
        self.directory.create_key(key).await.unwrap();
        generated.key
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `method path` with `key` (if any) and a JSON `body` (if any).
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// A `/v1` call with raw bytes as the body, of `content_type` if given.
    async fn send_bytes(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &'static str,
    ) -> Answer {
        let mut request =
            Request::post(path).header(header::AUTHORIZATION, format!("Bearer {}", self.admin));
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// Every documented operation, as (method, path template), from the served document.
    async fn operations(&self) -> Vec<(Method, String)> {
        let document = self.call(Method::GET, "/v1/openapi.json", None, None).await;
        assert_eq!(
            document.status,
            StatusCode::OK,
            "the document is open to all"
        );
        let paths = document.body["paths"].as_object().expect("paths").clone();
        let mut operations = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("a path item").keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                operations.push((method, path.clone()));
            }
        }
        assert!(operations.len() > 30, "{} operations", operations.len());
        operations
    }
}

fn name(value: &str) -> Name {
    Name::parse("namespace", value).unwrap()
}

/// A concrete path for a template, with `namespace` for `{namespace}`.
fn concrete(template: &str, namespace: &str) -> String {
    template
        .replace("{namespace}", namespace)
        .replace("{function}", "f")
        .replace("{version}", "1")
        .replace("{alias}", "prod")
        .replace("{name}", "n")
        .replace("{store}", "default")
        .replace("{key}", "k")
        .replace("{id}", "0190a4b2-6f0e-7a4c-9d3e-2b1c0f5e6d7a")
}

#[tokio::test]
async fn every_route_but_the_document_needs_a_key() {
    let gateway = Gateway::new().await;
    let mut routes = gateway.operations().await;
    routes.push((Method::GET, "/metrics".to_string()));
    for (method, template) in routes {
        let path = concrete(&template, "mine");
        let answer = gateway.call(method.clone(), &path, None, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(answer.code(), "unauthorized", "{method} {path}");
        assert_eq!(
            answer.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"vireo\""
        );
        let forged = gateway
            .call(
                method.clone(),
                &path,
                Some("vireo_0123456789abcdef01_forged"),
                None,
            )
            .await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}

#[tokio::test]
async fn another_tenants_namespace_answers_as_if_it_did_not_exist() {
    let gateway = Gateway::new().await;
    let developer = gateway.key(Role::Developer, &["mine"]).await;
    let mut checked = 0;
    for (method, template) in gateway.operations().await {
        if !template.contains("{namespace}") {
            continue;
        }
        for namespace in ["theirs", "nowhere"] {
            let path = concrete(&template, namespace);
            let answer = gateway
                .call(method.clone(), &path, Some(&developer), None)
                .await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(
                answer.body["error"]["message"],
                format!("namespace {namespace} does not exist"),
                "{method} {path}: another tenant's namespace reads like a missing one"
            );
        }
        checked += 1;
    }
    assert!(checked > 25, "only {checked} namespaced routes");
}

#[tokio::test]
async fn roles_are_held_to_what_they_may_do() {
    let gateway = Gateway::new().await;
    let viewer = gateway.key(Role::Viewer, &["mine"]).await;
    let invoker = gateway.key(Role::Invoker, &["mine"]).await;
    let developer = gateway.key(Role::Developer, &["mine"]).await;
    let functions = "/v1/namespaces/mine/functions";
    let create = json!({"name": "f"});

    let read = gateway
        .call(Method::GET, functions, Some(&viewer), None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let written = gateway
        .call(Method::POST, functions, Some(&viewer), Some(create.clone()))
        .await;
    assert_eq!(written.status, StatusCode::FORBIDDEN);
    assert_eq!(written.code(), "forbidden");
    let read = gateway
        .call(Method::GET, functions, Some(&invoker), None)
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN);
    let written = gateway
        .call(Method::POST, functions, Some(&developer), Some(create))
        .await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);

    for (method, path) in [
        (Method::GET, "/v1/keys"),
        (Method::GET, "/metrics"),
        (Method::POST, "/v1/namespaces"),
        (Method::DELETE, "/v1/namespaces/mine"),
        (Method::PUT, "/v1/namespaces/mine/quotas"),
    ] {
        let refused = gateway
            .call(method.clone(), path, Some(&developer), None)
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(refused.code(), "forbidden");
    }
    let metrics = gateway
        .call(Method::GET, "/metrics", Some(&gateway.admin), None)
        .await;
    assert_eq!(metrics.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_bodies_are_answered_in_the_envelope() {
    let gateway = Gateway::new().await;
    let functions = "/v1/namespaces/mine/functions";
    for (content_type, body, status, code) in [
        (
            Some("application/json"),
            "{\"name\":",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            None,
            "{\"name\":\"f\"}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Some("application/json"),
            "{\"nome\":\"f\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("application/json"),
            "[\"f\"]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("application/json"),
            "{\"name\":\"Not A Name\"}",
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
    ] {
        let answer = gateway.send_bytes(functions, content_type, body).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.code(), code, "{body}");
    }
}

#[tokio::test]
async fn bad_path_parameters_are_answered_in_the_envelope() {
    let gateway = Gateway::new().await;
    let admin = Some(gateway.admin.as_str());
    for (method, path, code) in [
        (Method::GET, "/v1/namespaces/Mine/functions", "invalid_name"),
        (
            Method::GET,
            "/v1/namespaces/mine/functions/F_1",
            "invalid_name",
        ),
        (
            Method::GET,
            "/v1/namespaces/mine/functions/f/versions/-1",
            "invalid_name",
        ),
        (
            Method::DELETE,
            "/v1/namespaces/mine/functions/f/aliases/latest",
            "invalid_request",
        ),
        (
            Method::GET,
            "/v1/namespaces/mine/schedules/Nightly",
            "invalid_name",
        ),
        (
            Method::DELETE,
            "/v1/namespaces/mine/secrets/1st",
            "invalid_name",
        ),
        (Method::GET, "/v1/invocations/not-a-uuid", "invalid_request"),
        (
            Method::GET,
            "/v1/namespaces/mine/functions/%FF",
            "invalid_path",
        ),
    ] {
        let answer = gateway.call(method.clone(), path, admin, None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            answer.body
        );
        assert_eq!(answer.code(), code, "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_answered_in_the_envelope() {
    let gateway = Gateway::new().await;
    let missing = gateway.call(Method::GET, "/v2/functions", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
    let wrong = gateway
        .call(Method::PATCH, "/v1/namespaces", Some(&gateway.admin), None)
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.code(), "method_not_allowed");
    let allowed = wrong.headers[header::ALLOW].to_str().unwrap();
    assert!(
        allowed.contains("GET") && allowed.contains("POST"),
        "{allowed}"
    );
}

#[tokio::test]
async fn functions_are_created_listed_shown_and_deleted() {
    let gateway = Gateway::new().await;
    let admin = Some(gateway.admin.as_str());
    let functions = "/v1/namespaces/mine/functions";
    let hello = "/v1/namespaces/mine/functions/hello";
    let create = || {
        gateway.call(
            Method::POST,
            functions,
            admin,
            Some(json!({"name": "hello"})),
        )
    };
    let created = create().await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["url"], "/fn/mine/hello");
    let again = create().await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "conflict");

    let listed = gateway.call(Method::GET, functions, admin, None).await;
    assert_eq!(listed.body["functions"][0]["name"], "hello");
    let shown = gateway.call(Method::GET, hello, admin, None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["warm_versions"], json!([2]), "from the deployer");
    let elsewhere = gateway
        .call(Method::GET, "/v1/namespaces/theirs/functions", admin, None)
        .await;
    assert_eq!(elsewhere.body["functions"], json!([]));

    let deleted = gateway.call(Method::DELETE, hello, admin, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = gateway.call(Method::GET, hello, admin, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body["error"]["message"],
        "function mine/hello does not exist"
    );
}

#[tokio::test]
async fn a_key_lists_only_the_namespaces_it_covers() {
    let gateway = Gateway::new().await;
    let viewer = gateway.key(Role::Viewer, &["theirs"]).await;
    let listed = gateway
        .call(Method::GET, "/v1/namespaces", Some(&viewer), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let names: Vec<&str> = listed.body["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| ns["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["theirs"]);
    let all = gateway
        .call(Method::GET, "/v1/namespaces", Some(&gateway.admin), None)
        .await;
    assert_eq!(
        all.body["namespaces"].as_array().unwrap().len(),
        NAMESPACES.len()
    );
}

#[tokio::test]
async fn a_keys_rate_limit_holds_in_each_namespace() {
    let quotas = NamespaceQuotas {
        key_rate_limit: Some(RateLimit {
            per_second: 1,
            burst: 2,
        }),
        ..NamespaceQuotas::default()
    };
    let gateway = Gateway::with_quotas(quotas).await;
    let key = gateway.key(Role::Viewer, &["mine"]).await;
    let functions = "/v1/namespaces/mine/functions";
    for remaining in ["1", "0"] {
        let allowed = gateway.call(Method::GET, functions, Some(&key), None).await;
        assert_eq!(allowed.status, StatusCode::OK);
        assert_eq!(allowed.headers["ratelimit-limit"], "2");
        assert_eq!(allowed.headers["ratelimit-remaining"], remaining);
    }
    let limited = gateway.call(Method::GET, functions, Some(&key), None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn an_invocation_reaches_the_invoker_without_the_vireo_key() {
    let gateway = Gateway::new().await;
    let invoker = gateway.key(Role::Invoker, &["mine"]).await;
    let request = Request::post("/fn/mine/hello@prod/some/path?x=1")
        .header(header::AUTHORIZATION, format!("Bearer {invoker}"))
        .body(Body::from("payload"))
        .unwrap();
    let answer = gateway.send(request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers.contains_key("x-vireo-invocation-id"));
    let calls = gateway.world.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (call.namespace.as_str(), call.function.as_str()),
        ("mine", "hello")
    );
    assert_eq!(call.uri, "/some/path?x=1");
    assert_eq!(call.authorization, None, "the guest never sees a Vireo key");
    assert!(call.by_key.is_some(), "the call runs as the key's caller");

    let forged = Request::get("/fn/mine/hello")
        .header(
            header::AUTHORIZATION,
            "Bearer vireo_0123456789abcdef01_forged",
        )
        .body(Body::empty())
        .unwrap();
    let refused = gateway.send(forged).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.code(), "unauthorized");
    assert!(refused.headers.contains_key("x-vireo-invocation-id"));
    let own_token = Request::get("/fn/mine/hello")
        .header(header::AUTHORIZATION, "Bearer the-functions-own-token")
        .body(Body::empty())
        .unwrap();
    assert_eq!(gateway.send(own_token).await.status, StatusCode::OK);
    let calls = gateway.world.calls();
    assert_eq!(
        calls.len(),
        2,
        "a forged Vireo key never reaches the invoker"
    );
    assert_eq!(
        calls[1].authorization.as_deref(),
        Some("Bearer the-functions-own-token"),
        "any other token is the function's business"
    );
}

/// `method path` with `key` and raw bytes as the body.
async fn send_raw(
    gateway: &Gateway,
    method: Method,
    path: &str,
    key: &str,
    body: Vec<u8>,
) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::from(body))
        .unwrap();
    gateway.send(request).await
}

/// The raw value at `path`, or the error answer.
async fn value_at(gateway: &Gateway, path: &str) -> Result<Vec<u8>, Answer> {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", gateway.admin))
        .body(Body::empty())
        .unwrap();
    let response = gateway.router.clone().oneshot(request).await.unwrap();
    if response.status() != StatusCode::OK {
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        return Err(Answer {
            status,
            headers: HeaderMap::new(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        });
    }
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    Ok(response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec())
}

#[tokio::test]
async fn key_value_keys_are_one_percent_decoded_segment_within_the_limits() {
    let gateway = Gateway::new().await;
    let admin = gateway.admin.clone();
    let keys = "/v1/namespaces/mine/kv/default/keys";
    // The limits here: keys up to 16 bytes, values up to 64.
    for (encoded, key) in [
        ("a%2Fb", "a/b"),
        ("user%3A42", "user:42"),
        ("two%20words", "two words"),
        ("%C3%BC%F0%9F%99%82", "ü🙂"),
    ] {
        let path = format!("{keys}/{encoded}");
        let stored = send_raw(
            &gateway,
            Method::PUT,
            &path,
            &admin,
            key.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(stored.status, StatusCode::CREATED, "{key}: {}", stored.body);
        assert_eq!(
            value_at(&gateway, &path).await.ok().unwrap(),
            key.as_bytes()
        );
    }
    let listed = gateway.call(Method::GET, keys, Some(&admin), None).await;
    assert_eq!(
        listed.body,
        json!({"keys": ["a/b", "two words", "user:42", "ü🙂"], "next_cursor": null})
    );
    // `a/b` was stored under its own name, not as a key `b` below some `a`.
    let missing = value_at(&gateway, &format!("{keys}/b")).await.unwrap_err();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let long_key = format!("{keys}/{}", "k".repeat(17));
    let refused = send_raw(&gateway, Method::PUT, &long_key, &admin, b"v".to_vec()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.code(), "invalid_key");
    let nul = send_raw(
        &gateway,
        Method::PUT,
        &format!("{keys}/a%00b"),
        &admin,
        vec![],
    )
    .await;
    assert_eq!(nul.code(), "invalid_key");
    let large = send_raw(
        &gateway,
        Method::PUT,
        &format!("{keys}/big"),
        &admin,
        vec![7; 65],
    )
    .await;
    assert_eq!(
        large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        large.body
    );
    assert_eq!(large.code(), "payload_too_large");
    assert!(
        value_at(&gateway, &format!("{keys}/big")).await.is_err(),
        "nothing stored"
    );
    let most = send_raw(
        &gateway,
        Method::PUT,
        &format!("{keys}/big"),
        &admin,
        vec![7; 64],
    )
    .await;
    assert_eq!(most.status, StatusCode::CREATED);
}

#[tokio::test]
async fn key_value_stores_are_read_by_viewers_and_written_by_developers() {
    let gateway = Gateway::new().await;
    let viewer = gateway.key(Role::Viewer, &["mine"]).await;
    let developer = gateway.key(Role::Developer, &["mine"]).await;
    let stores = "/v1/namespaces/mine/kv";
    let create = json!({"name": "sessions"});
    let refused = gateway
        .call(Method::POST, stores, Some(&viewer), Some(create.clone()))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let created = gateway
        .call(Method::POST, stores, Some(&developer), Some(create.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "sessions");
    let again = gateway
        .call(Method::POST, stores, Some(&developer), Some(create))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let key = "/v1/namespaces/mine/kv/sessions/keys/s1";
    let written = send_raw(&gateway, Method::PUT, key, &viewer, b"x".to_vec()).await;
    assert_eq!(written.status, StatusCode::FORBIDDEN);
    let written = send_raw(&gateway, Method::PUT, key, &developer, b"x".to_vec()).await;
    assert_eq!(written.status, StatusCode::CREATED);
    let replaced = send_raw(&gateway, Method::PUT, key, &developer, b"xy".to_vec()).await;
    assert_eq!(replaced.status, StatusCode::NO_CONTENT);
    let listed = gateway.call(Method::GET, stores, Some(&viewer), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["bytes_used"], 4, "{}", listed.body);
    assert_eq!(listed.body["max_kv_bytes"], Value::Null);

    let page = |query: &'static str| {
        let gateway = &gateway;
        let viewer = viewer.clone();
        async move {
            let path = format!("/v1/namespaces/mine/kv/sessions/keys{query}");
            gateway.call(Method::GET, &path, Some(&viewer), None).await
        }
    };
    assert_eq!(page("?limit=0").await.code(), "invalid_query");
    assert_eq!(page("?limit=1001").await.code(), "invalid_query");
    assert_eq!(page("?cursor=not*a*cursor").await.code(), "invalid_cursor");
    assert_eq!(page("?limit=1").await.body["keys"], json!(["s1"]));

    let default = gateway
        .call(
            Method::DELETE,
            "/v1/namespaces/mine/kv/default",
            Some(&developer),
            None,
        )
        .await;
    assert_eq!(default.status, StatusCode::CONFLICT);
    assert!(
        default.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be deleted")
    );
    let gone = gateway
        .call(
            Method::DELETE,
            "/v1/namespaces/mine/kv/sessions",
            Some(&developer),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(page("").await.status, StatusCode::NOT_FOUND);
}
