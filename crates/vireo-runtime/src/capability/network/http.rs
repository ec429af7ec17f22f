//! Outgoing HTTP (`wasi:http/outgoing-handler`): the send hook of one instance. A request goes
//! out only to addresses the version's policy approved, carries the invocation's trace, and
//! counts against the invocation's and the server's limits (`limits.rs`).

use std::pin::Pin;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tracing::Instrument as _;
use vireo_core::egress::{Destination, Scheme};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::limits::{ConnectionSlot, Exceeded, InvocationBudget};
use super::policy::{OutboundPolicy, Refusal};
use super::send;
use super::trace::OutgoingTrace;
use crate::logs::LogCapture;

type SendResult = wasmtime_wasi_http::Result<(http::Response<WasiBody>, send::ConnectionFuture)>;

/// The `wasi:http` hooks of one instance: its version's policy, and the trace and share of
/// outgoing requests of the invocation it is serving.
pub(crate) struct HttpHooks {
    policy: Arc<OutboundPolicy>,
    trace: Option<OutgoingTrace>,
    budget: InvocationBudget,
    /// The invocation's captured output, where it learns why requests were refused.
    notes: LogCapture,
    /// The limits this invocation has been told about, each once.
    reported: Vec<Exceeded>,
}

impl HttpHooks {
    pub fn new(policy: Arc<OutboundPolicy>, notes: LogCapture) -> Self {
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
        self.policy.over_limit(&why);
        self.notes.note(&format!(
            "outgoing requests refused with connection-limit-reached: {why}"
        ));
    }
}

impl WasiHttpHooks for HttpHooks {
    /// A certificate the server's trust refuses is `tls-certificate-error` (not the generic
    /// `tls-protocol-error`), and the invocation's log says why.
    fn p2_error_from_tls(&mut self, error: &std::io::Error) -> ErrorCode {
        self.notes
            .note(&format!("an outgoing TLS handshake failed: {error}"));
        let refused_certificate = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)));
        match refused_certificate {
            true => ErrorCode::TlsCertificateError,
            false => ErrorCode::TlsProtocolError,
        }
    }

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
                let (response, connection) = send_approved(&policy, request, options).await?;
                Ok((response, holding(slot, connection)))
            }
            .in_current_span(),
        )
    }
}

/// Sends `request` if `policy` approves its destination, to the addresses it approved.
async fn send_approved(
    policy: &OutboundPolicy,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> SendResult {
    let uri = request.uri();
    // Only an http or https entry grants an HTTP request, whatever else the list names.
    let scheme = uri
        .scheme_str()
        .and_then(Scheme::parse)
        .filter(|scheme| scheme.is_http())
        .ok_or(Error::HttpProtocolError)?;
    let host = Destination::parse(uri.host().ok_or(Error::HttpRequestUriInvalid)?);
    let port = uri
        .port_u16()
        .or(scheme.default_port())
        .ok_or(Error::HttpRequestUriInvalid)?;

    let timeouts = send::Timeouts::new(options);
    let deadline = tokio::time::Instant::now() + timeouts.connect;
    let addresses = policy
        .approver()
        .approve(scheme, &host, port, deadline)
        .await
        .map_err(|refusal| match refusal {
            Refusal::NotAllowed => Error::HttpRequestDenied,
            Refusal::NotPublic => Error::DestinationIpProhibited,
            Refusal::ResolveTimeout => Error::DnsTimeout,
            Refusal::Resolve(e) => Error::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            },
        })?;
    let tls_name = match (scheme, host) {
        (Scheme::Https, Destination::Ip(ip)) => Some(ServerName::from(ip)),
        (Scheme::Https, Destination::Name(name)) => Some(ServerName::try_from(name)?),
        _ => None,
    };
    let tls = tls_name.map(|name| (name, policy.tls()));
    send::send(request, &addresses, tls, deadline, timeouts).await
}

/// The connection future, holding `slot` until the connection is closed (or dropped, with the
/// response it belongs to).
fn holding(slot: ConnectionSlot, connection: send::ConnectionFuture) -> send::ConnectionFuture {
    Box::new(async move {
        let _slot = slot;
        Pin::from(connection).await
    })
}
