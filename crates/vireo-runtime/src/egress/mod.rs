//! Outgoing HTTP from functions. A request leaves only when its scheme, host and port match the
//! version's `allowed_outbound_hosts`; a host name must resolve to public addresses only (a
//! private or loopback destination must be named as an IP literal by the pattern), and the
//! connection goes to exactly the addresses checked. Requests carry the invocation's trace, and
//! count against the invocation's and the server's limits (`limits.rs`).

mod addresses;
mod limits;
mod send;
mod trace;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tracing::Instrument as _;
use vireo_core::Name;
use vireo_core::egress::{AllowList, Destination, Scheme};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use limits::EgressLimits;
pub(crate) use limits::ServerConnections;
pub(crate) use trace::OutgoingTrace;

use crate::logs::LogCapture;
use limits::{ConnectionSlot, Exceeded, InvocationBudget};

type SendResult = wasmtime_wasi_http::Result<(http::Response<WasiBody>, send::ConnectionFuture)>;

/// A version's outgoing-HTTP policy, shared by its instances.
pub struct EgressPolicy {
    namespace: Name,
    function: Name,
    allowed: AllowList,
    limits: EgressLimits,
    connections: ServerConnections,
}

impl EgressPolicy {
    pub fn new(
        namespace: Name,
        function: Name,
        allowed: AllowList,
        limits: EgressLimits,
        connections: ServerConnections,
    ) -> Self {
        Self {
            namespace,
            function,
            allowed,
            limits,
            connections,
        }
    }

    /// A fresh share of outgoing requests for one invocation.
    fn budget(&self) -> InvocationBudget {
        InvocationBudget::new(self.limits, self.connections.clone())
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

/// The `wasi:http` hooks of one instance: its version's policy, and the trace and share of
/// outgoing requests of the invocation it is serving.
pub(crate) struct Egress {
    policy: Arc<EgressPolicy>,
    trace: Option<OutgoingTrace>,
    budget: InvocationBudget,
    /// The invocation's captured output, where it learns why requests were refused.
    notes: LogCapture,
    /// The limits this invocation has been told about, each once.
    reported: Vec<Exceeded>,
}

impl Egress {
    pub fn new(policy: Arc<EgressPolicy>, notes: LogCapture) -> Self {
        Self {
            budget: policy.budget(),
            policy,
            trace: None,
            notes,
            reported: Vec::new(),
        }
    }

    /// A (reused or pre-instantiated) instance serves a new invocation: its trace, and a fresh
    /// share of outgoing requests.
    pub fn start_invocation(&mut self, trace: Option<OutgoingTrace>) {
        self.trace = trace;
        self.budget = self.policy.budget();
        self.reported.clear();
    }

    /// Logs a refusal over a limit, once per limit and invocation: in the server's log and in
    /// the invocation's own, so its record says why its requests failed.
    fn over_limit(&mut self, exceeded: Exceeded) {
        if self.reported.contains(&exceeded) {
            return;
        }
        self.reported.push(exceeded);
        let why = self.budget.describe(exceeded);
        tracing::warn!(
            namespace = %self.policy.namespace,
            function = %self.policy.function,
            reason = %why,
            "outgoing requests refused over a limit"
        );
        self.notes.note(&format!(
            "outgoing requests refused with connection-limit-reached: {why}"
        ));
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        // Taken here, not in the future below, so a function that fires many requests at once
        // finds out at once which of them may go.
        let slot = match self.budget.take() {
            Ok(slot) => slot,
            Err(exceeded) => {
                self.over_limit(exceeded);
                return Box::new(std::future::ready(Err(Error::ConnectionLimitReached)));
            }
        };
        if let Some(trace) = &self.trace {
            trace.apply(request.headers_mut());
        }
        let policy = self.policy.clone();
        // wasi:http runs this on a task of its own; the invocation's span goes with it.
        Box::new(
            async move {
                let (response, connection) = policy.send(request, options).await?;
                Ok((response, holding(slot, connection)))
            }
            .in_current_span(),
        )
    }
}

/// The connection future, holding `slot` until the connection is closed (or dropped, with the
/// response it belongs to).
fn holding(slot: ConnectionSlot, connection: send::ConnectionFuture) -> send::ConnectionFuture {
    Box::new(async move {
        let _slot = slot;
        Pin::from(connection).await
    })
}
