//! The HTTP client for one Vireo server and namespace: builds URLs, and turns transport failures
//! and the server's JSON errors into messages that say what went wrong.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use reqwest::{Method, RequestBuilder, Response, StatusCode, redirect};
use serde::Deserialize;
use serde_json::Value;
use vireo_core::Name;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Without a trailing slash, so paths can be appended.
    base: String,
    namespace: Name,
    /// When no key is sent: what to do about it, added to a 401's message.
    no_key: Option<String>,
}

impl Client {
    /// `api_key` (if any) goes with every request as `Authorization: Bearer`; `ca_cert` (PEM)
    /// is trusted besides the system's roots, for a server with a self-signed certificate.
    pub fn new(
        server: &str,
        namespace: &str,
        api_key: Option<&str>,
        ca_cert: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let namespace = Name::parse("namespace", namespace)?;
        if !server.contains("://") {
            // `127.0.0.1:8080` or `localhost:8080`: the scheme is what is missing.
            bail!("invalid server URL {server:?}: it needs a scheme, e.g. http://{server}");
        }
        let url = reqwest::Url::parse(server)
            .with_context(|| format!("invalid server URL {server:?}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("invalid server URL {server:?}: it must start with http:// or https://");
        }
        let mut headers = reqwest::header::HeaderMap::new();
        let key = crate::credentials::api_key(api_key, &url)?;
        let no_key = key.is_none().then(|| crate::credentials::no_key_hint(&url));
        if let Some(key) = key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .context("the API key contains characters that cannot be sent in a header")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        install_tls_provider();
        let mut http = reqwest::Client::builder();
        for root in extra_roots(ca_cert)? {
            http = http.add_root_certificate(root);
        }
        let http = http
            .default_headers(headers)
            .user_agent(concat!("vireo/", env!("CARGO_PKG_VERSION")))
            // A function's redirect is part of its answer, shown as is (like curl without -L).
            .redirect(redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Self {
            http,
            base: url.as_str().trim_end_matches('/').to_string(),
            namespace,
            no_key,
        })
    }

    /// The same connection, working in `namespace`.
    pub fn in_namespace(&self, namespace: &Name) -> Self {
        Self {
            namespace: namespace.clone(),
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn namespace(&self) -> &Name {
        &self.namespace
    }

    /// `namespace/function`, the way messages name a function.
    pub fn qualified(&self, function: &Name) -> String {
        format!("{}/{function}", self.namespace)
    }

    /// The admin API path of the namespace's functions.
    pub fn functions_path(&self) -> String {
        format!("/v1/namespaces/{}/functions", self.namespace)
    }

    /// The admin API path of one function, followed by `rest` (e.g. `/versions`).
    pub fn function_path(&self, function: &Name, rest: &str) -> String {
        format!("{}/{function}{rest}", self.functions_path())
    }

    /// A request to `path` on the server.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends a request; any HTTP answer is `Ok`, whatever its status.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        request.send().await.map_err(|err| {
            if let Some(refused) = certificate_refused(&err) {
                anyhow!(
                    "the certificate of the Vireo server at {} is not trusted ({refused}); for a \
                     self-signed or private CA certificate, pass it with --ca-cert FILE or \
                     VIREO_CA_CERT",
                    self.base
                )
            } else if err.is_connect() {
                let mut cause: &dyn std::error::Error = &err;
                while let Some(source) = cause.source() {
                    cause = source;
                }
                anyhow!(
                    "cannot reach the Vireo server at {} ({cause}); is it running? Start one with \
                     `vireo serve`, or point --server / VIREO_URL at it",
                    self.base
                )
            } else {
                anyhow::Error::new(err)
            }
        })
    }

    /// Sends a request that must succeed and answer JSON.
    pub async fn json(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        read_json(self.success(request).await?).await
    }

    /// GETs `path`, decoded into the view `T`; `None` when the server has nothing there (404).
    pub async fn get_if_found<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<Option<T>> {
        let response = self.send(self.request(Method::GET, path)).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(failure_message(status, &body));
        }
        crate::output::decode(read_json(response).await?).map(Some)
    }

    /// Sends a request that must succeed; for answers without a body (204).
    pub async fn no_content(&self, request: RequestBuilder) -> anyhow::Result<()> {
        self.success(request).await.map(drop)
    }

    /// Sends a request; a 4xx/5xx answer becomes an error carrying the server's message.
    pub async fn success(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = failure_message(status, &body);
        match &self.no_key {
            Some(hint) if status == StatusCode::UNAUTHORIZED => Err(anyhow!("{message}; {hint}")),
            None if status == StatusCode::NOT_FOUND => match self.other_namespaces().await {
                Some(hint) => Err(anyhow!("{message}; {hint}")),
                None => Err(anyhow!(message)),
            },
            _ => Err(anyhow!(message)),
        }
    }

    /// After a 404: when this namespace is not one the key can use (it does not exist, or the
    /// key does not act in it: the server answers both alike), the namespaces it can use.
    async fn other_namespaces(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Listed {
            namespaces: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        let response = self
            .send(self.request(Method::GET, "/v1/namespaces"))
            .await
            .ok()?;
        let listed: Listed = response.error_for_status().ok()?.json().await.ok()?;
        let names: Vec<String> = listed.namespaces.into_iter().map(|n| n.name).collect();
        namespace_hint(self.namespace.as_str(), &names)
    }
}

/// What to say when `namespace` is not among the `visible` ones.
fn namespace_hint(namespace: &str, visible: &[String]) -> Option<String> {
    match visible {
        _ if visible.iter().any(|name| name == namespace) => None,
        [] => None,
        [only] => Some(format!(
            "the only namespace this API key can use is {only}: pass -n {only}"
        )),
        several => Some(format!(
            "the namespaces this API key can use are {}: pass -n with one of them",
            several.join(", ")
        )),
    }
}

/// Makes ring the process's TLS crypto provider, before any HTTP client is built: reqwest
/// (here and in the OTLP exporter) is built without one of its own so that aws-lc is left out,
/// and panics without one. Installing it again does nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of `ca_cert`, a PEM file of one or more.
fn extra_roots(ca_cert: Option<&Path>) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let Some(file) = ca_cert else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(file)
        .with_context(|| format!("cannot read the CA certificate {}", file.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("the CA certificate {} is not valid PEM", file.display()))?;
    if roots.is_empty() {
        bail!(
            "the CA certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            file.display()
        );
    }
    Ok(roots)
}

/// Why the server's certificate was refused, if that is why `err` happened. rustls's error
/// travels inside `io::Error`s, whose `source` skips what they wrap, hence `get_ref`.
fn certificate_refused(err: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = cause {
        if let Some(refused @ rustls::Error::InvalidCertificate(reason)) = error.downcast_ref() {
            return Some(match reason {
                // What `openssl req -x509` makes unless told otherwise.
                rustls::CertificateError::Other(other)
                    if other.to_string().contains("CaUsedAsEndEntity") =>
                {
                    format!(
                        "{refused}: it is marked as a CA certificate (basicConstraints CA:TRUE), \
                         which cannot be a server's own; make it with CA:FALSE"
                    )
                }
                _ => refused.to_string(),
            });
        }
        cause = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped),
            None => error.source(),
        };
    }
    None
}

pub async fn read_json(response: Response) -> anyhow::Result<Value> {
    response
        .json()
        .await
        .context("reading the server's JSON answer")
}

/// The message of Vireo's error body, `{"error":{"code":..,"message":..}}`, if `body` is one.
pub fn api_error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorDetail,
    }
    #[derive(Deserialize)]
    struct ErrorDetail {
        message: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error.message)
}

/// Describes a failed admin API call; other bodies (say, from a proxy) are quoted, shortened.
fn failure_message(status: StatusCode, body: &str) -> String {
    if let Some(message) = api_error_message(body.as_bytes()) {
        return format!("{message} (HTTP {status})");
    }
    let body = body.trim();
    if body.is_empty() {
        return format!("the server answered HTTP {status}");
    }
    const SHOWN: usize = 200;
    match body.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("the server answered HTTP {status}: {}…", &body[..cut]),
        None => format!("the server answered HTTP {status}: {body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_the_key_does_not_act_in_gets_a_hint() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            namespace_hint("default", &names(&["default", "team"])),
            None
        );
        assert_eq!(namespace_hint("default", &[]), None);
        assert_eq!(
            namespace_hint("default", &names(&["team"])).as_deref(),
            Some("the only namespace this API key can use is team: pass -n team")
        );
        assert_eq!(
            namespace_hint("default", &names(&["a", "b"])).as_deref(),
            Some("the namespaces this API key can use are a, b: pass -n with one of them")
        );
    }

    #[test]
    fn server_errors_show_their_message_and_status() {
        let body =
            r#"{"error":{"code":"not_found","message":"function default/x does not exist"}}"#;
        assert_eq!(
            failure_message(StatusCode::NOT_FOUND, body),
            "function default/x does not exist (HTTP 404 Not Found)"
        );
        assert_eq!(
            failure_message(StatusCode::BAD_GATEWAY, " "),
            "the server answered HTTP 502 Bad Gateway"
        );
        let long = failure_message(StatusCode::BAD_GATEWAY, &"x".repeat(500));
        assert!(long.ends_with(&format!("{}…", "x".repeat(200))), "{long}");
        assert_eq!(api_error_message(b"{\"error\":\"nope\"}"), None);
    }

    #[test]
    fn paths_are_built_under_the_namespace() {
        let client = Client::new("http://127.0.0.1:8080/", "team-a", None, None).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:8080");
        let hello = Name::parse("function", "hello").unwrap();
        assert_eq!(
            client.function_path(&hello, "/logs"),
            "/v1/namespaces/team-a/functions/hello/logs"
        );
        assert_eq!(client.qualified(&hello), "team-a/hello");
    }

    #[test]
    fn bad_servers_and_namespaces_are_refused() {
        assert!(
            Client::new("ftp://example.com", "default", None, None)
                .err()
                .unwrap()
                .to_string()
                .contains("https://")
        );
        assert!(Client::new("localhost:8080", "default", None, None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let err = Client::new("https://127.0.0.1:8443", "default", None, Some(&not_pem))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        let err = Client::new("http://127.0.0.1:8080", "Team", None, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("invalid namespace name"), "{err}");
    }
}
