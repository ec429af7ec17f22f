//! Outgoing HTTP from functions. A request leaves only when its scheme, host and port match the
//! version's `allowed_outbound_hosts`; a host name must resolve to public addresses only (a
//! private or loopback destination must be named as an IP literal by the pattern), and the
//! connection goes to exactly the addresses checked. Requests carry the invocation's trace.

mod addresses;
mod send;
mod trace;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tracing::Instrument as _;
use vireo_core::Name;
use vireo_core::egress::{AllowList, Destination, Scheme};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub(crate) use trace::OutgoingTrace;

type SendResult = wasmtime_wasi_http::Result<(http::Response<WasiBody>, send::ConnectionFuture)>;

/// A version's outgoing-HTTP policy, shared by its instances.
pub struct EgressPolicy {
    namespace: Name,
    function: Name,
    allowed: AllowList,
}

impl EgressPolicy {
    pub fn new(namespace: Name, function: Name, allowed: AllowList) -> Self {
        Self {
            namespace,
            function,
            allowed,
        }
    }

    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendResult {
        let uri = request.uri();
        let scheme = uri
            .scheme_str()
            .and_then(Scheme::parse)
            .ok_or(Error::HttpProtocolError)?;
        let host = Destination::parse(uri.host().ok_or(Error::HttpRequestUriInvalid)?);
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        if !self.allowed.allows(scheme, &host, port) {
            self.refused(&host, port, "not in allowed_outbound_hosts");
            return Err(Error::HttpRequestDenied);
        }

        let timeouts = send::Timeouts::new(options);
        let deadline = tokio::time::Instant::now() + timeouts.connect;
        let addresses = match &host {
            // The matching pattern named this very address.
            Destination::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Destination::Name(name) => self.resolve(name, port, deadline).await?,
        };
        let tls_name = match (scheme, host) {
            (Scheme::Http, _) => None,
            (Scheme::Https, Destination::Ip(ip)) => Some(ServerName::from(ip)),
            (Scheme::Https, Destination::Name(name)) => Some(ServerName::try_from(name)?),
        };
        send::send(request, &addresses, tls_name, deadline, timeouts).await
    }

    /// The addresses of a granted name, all of them public: one private answer among public
    /// ones refuses the request, so no resolver answer can smuggle in an internal address.
    async fn resolve(
        &self,
        name: &str,
        port: u16,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<SocketAddr>, Error> {
        let resolved: Vec<SocketAddr> =
            tokio::time::timeout_at(deadline, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| Error::DnsTimeout)?
                .map_err(|e| Error::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                })?
                .collect();
        if let Some(private) = resolved.iter().find(|a| !addresses::is_public(a.ip())) {
            let reason = format!("resolves to the non-public address {}", private.ip());
            self.refused(name, port, &reason);
            return Err(Error::DestinationIpProhibited);
        }
        Ok(resolved)
    }

    /// Logs a refusal: where to, never the path, headers or body (they may carry secrets).
    fn refused(&self, host: impl std::fmt::Display, port: u16, reason: &str) {
        tracing::info!(
            namespace = %self.namespace,
            function = %self.function,
            destination = %format_args!("{host}:{port}"),
            reason,
            "outgoing request refused"
        );
    }
}

/// The `wasi:http` hooks of one instance: its version's policy and the trace of the invocation
/// it is serving.
pub(crate) struct Egress {
    policy: Arc<EgressPolicy>,
    trace: Option<OutgoingTrace>,
}

impl Egress {
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self {
            policy,
            trace: None,
        }
    }

    /// A (reused or pre-instantiated) instance serves a new invocation, with its trace.
    pub fn set_trace(&mut self, trace: Option<OutgoingTrace>) {
        self.trace = trace;
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if let Some(trace) = &self.trace {
            trace.apply(request.headers_mut());
        }
        let policy = self.policy.clone();
        // wasi:http runs this on a task of its own; the invocation's span goes with it.
        Box::new(async move { policy.send(request, options).await }.in_current_span())
    }
}
