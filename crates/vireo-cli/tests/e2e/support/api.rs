//! The admin API and the invoke path over HTTP, as the tests call them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use serde_json::Value;

use super::guests::guest;
use super::{DEADLINE, Server, eventually};

impl Server {
    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.admin()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// An HTTP client that sends `key` with every request.
    pub fn client_with_key(key: &str) -> reqwest::Client {
        Self::keyed_client(key).build().expect("HTTP client")
    }

    /// An HTTP client with the admin key, for the admin API; it trusts the certificate of an
    /// HTTPS server.
    pub fn admin(&self) -> reqwest::Client {
        let mut client = Self::keyed_client(&self.admin_key);
        if let Some(cert) = &self.ca_cert {
            let pem = std::fs::read(cert).expect("read the server's certificate");
            let root = reqwest::Certificate::from_pem(&pem).expect("a PEM certificate");
            client = client.tls_certs_only([root]);
        }
        client.build().expect("HTTP client")
    }

    fn keyed_client(key: &str) -> reqwest::ClientBuilder {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}")
                .parse()
                .expect("a key fits in a header"),
        );
        reqwest::Client::builder().default_headers(headers)
    }

    /// A `/v1` call with an optional JSON body; the status and the JSON answer (null if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.admin().request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin API request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn deploy(
        &self,
        name: &str,
        component: Vec<u8>,
        settings: Value,
    ) -> reqwest::Response {
        self.deploy_with(&self.admin(), "default", name, component, settings)
            .await
    }

    /// Deploys into `namespace` with `client` (and whatever key it sends).
    pub async fn deploy_with(
        &self,
        client: &reqwest::Client,
        namespace: &str,
        name: &str,
        component: Vec<u8>,
        settings: Value,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("settings", settings.to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name("c.wasm"),
            );
        client
            .post(self.url(&format!(
                "/v1/namespaces/{namespace}/functions/{name}/versions"
            )))
            .multipart(form)
            .send()
            .await
            .expect("deploy request")
    }

    /// Deploys and asserts a new version was created; returns the version view.
    pub async fn deploy_ok(&self, name: &str, fixture: &str, settings: Value) -> Value {
        let response = self.deploy(name, guest(fixture), settings).await;
        let status = response.status();
        let body: Value = response.json().await.expect("deploy answers JSON");
        assert_eq!(status, 201, "deploy {name}: {body}");
        body
    }

    /// Deploys the `spin-outbound` fixture as `name`, allowed to connect to `hosts` only.
    pub async fn deploy_outbound(&self, name: &str, hosts: &[String]) -> Value {
        self.deploy_ok(
            name,
            "spin-outbound",
            serde_json::json!({"allowed_outbound_hosts": hosts}),
        )
        .await
    }

    /// What the `spin-outbound` fixture deployed as `function` answers for `path`, given the
    /// connection string `address` and `body`.
    pub async fn outbound(&self, function: &str, path: &str, address: &str, body: &str) -> String {
        let response = self.outbound_call(function, path, address, body).await;
        response.text().await.expect("the fixture's answer")
    }

    /// The same, with the invocation's record.
    pub async fn outbound_recorded(
        &self,
        function: &str,
        path: &str,
        address: &str,
        body: &str,
    ) -> (String, Value) {
        let response = self.outbound_call(function, path, address, body).await;
        let id = invocation_id(&response);
        let answer = response.text().await.expect("the fixture's answer");
        (answer, self.invocation(&id).await)
    }

    async fn outbound_call(
        &self,
        function: &str,
        path: &str,
        address: &str,
        body: &str,
    ) -> reqwest::Response {
        let response = reqwest::Client::new()
            .post(self.url(&format!("/fn/default/{function}{path}")))
            .header("address", address)
            .body(body.to_string())
            .send()
            .await
            .expect("a call to the outbound fixture");
        assert_eq!(response.status(), 200, "{path}");
        response
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.admin().get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `function`'s async invocations by status, once `done` holds for them.
    pub async fn queue_counts_until(
        &self,
        function: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let (path, done) = (
            format!("/v1/namespaces/default/functions/{function}/queue"),
            &done,
        );
        eventually(within, || {
            let path = path.clone();
            async move {
                let (_, counts) = self.get_json(&path).await;
                if done(&counts) {
                    Ok(counts)
                } else {
                    Err(counts.to_string())
                }
            }
        })
        .await
    }

    /// Waits until `function` has `done` succeeded async invocations while more are still
    /// queued or running: the moment to crash a node in the middle of a batch.
    pub async fn midway_through_the_queue(&self, function: &str, done: u64) {
        let counts = self
            .queue_counts_until(function, DEADLINE, |c| {
                c["succeeded"].as_u64().unwrap() >= done
            })
            .await;
        let left = counts["queued"].as_u64().unwrap() + counts["running"].as_u64().unwrap();
        assert!(left > 0, "nothing left to interrupt: {counts}");
    }

    /// Waits until `function` has `done` succeeded invocations of the `total` messages a source
    /// delivers: the moment to crash a node while the rest flow. Those may wait at the broker
    /// rather than in the queue, which then looks idle between two of the source's batches.
    pub async fn midway_through_a_source(&self, function: &str, done: u64, total: u64) {
        let counts = self
            .queue_counts_until(function, DEADLINE, |c| {
                c["succeeded"].as_u64().unwrap() >= done
            })
            .await;
        let succeeded = counts["succeeded"].as_u64().unwrap();
        assert!(succeeded < total, "nothing left to interrupt: {counts}");
    }

    /// Waits until all `total` async invocations of `function` succeeded, and asserts that
    /// nothing else is left: none queued, running, failed or dead.
    pub async fn all_succeeded(&self, function: &str, total: u64) {
        let counts = self
            .queue_counts_until(function, Duration::from_secs(180), |c| {
                c["succeeded"].as_u64().unwrap() == total
            })
            .await;
        assert_eq!(
            counts,
            serde_json::json!({"queued": 0, "running": 0, "succeeded": total, "failed": 0, "dead": 0})
        );
    }

    /// One GET of `path` (which must answer 200), its record, and what the record metered of
    /// `kind` (see [`metered`]).
    pub async fn metered_call(&self, path: &str, kind: &str) -> (Value, (u64, u64, u64)) {
        let response = reqwest::get(self.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        let record = self.invocation(&invocation_id(&response)).await;
        let counts = metered(&record, kind);
        (record, counts)
    }

    /// The invocation record, once the batching writer has committed it.
    pub async fn invocation(&self, id: &str) -> Value {
        eventually(DEADLINE, || async move {
            match self.get_json(&format!("/v1/invocations/{id}")).await {
                (200, body) => Ok(body),
                (status, body) => Err(format!("invocation {id} not recorded: {status} {body}")),
            }
        })
        .await
    }
}

/// Submits `total` async invocations, 32 at a time, spread over `urls` in turn; each must be
/// accepted (202). A 503 `not_stored` (the store too busy to take it in time) is sent again
/// after a short pause, as a client backs off (a bounded retry, not a wait for a condition):
/// it was not accepted. Returns their ids.
pub async fn submit_async(urls: &[String], total: usize) -> BTreeSet<String> {
    const TRIES: usize = 10;
    let client = reqwest::Client::new();
    let ids: BTreeSet<String> = futures::stream::iter(0..total)
        .map(|n| {
            let client = client.clone();
            let url = urls[n % urls.len()].clone();
            async move {
                for _ in 0..TRIES {
                    let response = client
                        .post(&url)
                        .header("prefer", "respond-async")
                        .body(format!("job {n}"))
                        .send()
                        .await
                        .unwrap();
                    match response.status().as_u16() {
                        202 => return invocation_id(&response),
                        503 => {
                            let body: Value = response.json().await.unwrap();
                            assert_eq!(body["error"]["code"], "not_stored", "{body}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("job {n} answered {other}"),
                    }
                }
                panic!("job {n} was not stored in {TRIES} tries");
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(ids.len(), total, "every invocation got its own id");
    ids
}

/// The reads, writes and bytes of `kind` (`kv`, `object`) counted in an invocation record or
/// in usage totals.
pub fn metered(counted: &Value, kind: &str) -> (u64, u64, u64) {
    let field = |name: &str| {
        counted[format!("{kind}_{name}")]
            .as_u64()
            .unwrap_or_else(|| panic!("no {kind}_{name} in {counted}"))
    };
    (field("reads"), field("writes"), field("bytes"))
}

/// The invocation id header of a response.
pub fn invocation_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-vireo-invocation-id")
        .expect("every invocation response carries x-vireo-invocation-id")
        .to_str()
        .expect("ASCII id")
        .to_string()
}

/// Starts a GET of `slow_path` on a function deployed with `max_concurrency: 1` and returns once
/// it is running, proven by a probe (`probe_path`, same function) being refused with 429. A
/// slow request that lost the race to a probe is started again.
pub async fn start_holding_the_only_slot(
    server: &Server,
    slow_path: &str,
    probe_path: &str,
) -> (
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    reqwest::Response,
) {
    let deadline = Instant::now() + DEADLINE;
    let mut slow = tokio::spawn(reqwest::get(server.url(slow_path)));
    loop {
        assert!(
            Instant::now() < deadline,
            "the slow invocation never held the slot"
        );
        if slow.is_finished() {
            let lost = slow.await.unwrap().unwrap();
            assert_eq!(
                lost.status(),
                429,
                "the slow request finished before being observed"
            );
            slow = tokio::spawn(reqwest::get(server.url(slow_path)));
            continue;
        }
        let probe = reqwest::get(server.url(probe_path)).await.unwrap();
        if probe.status() == 429 {
            return (slow, probe);
        }
    }
}
