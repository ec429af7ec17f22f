//! The invocation's W3C trace on the function's outgoing requests: a `traceparent` in the same
//! trace with a new span id, and the caller's `tracestate`, unless the function set its own.

use http::{HeaderMap, HeaderValue};
use vireo_core::TraceContext;
use vireo_core::trace::TRACEPARENT;

const TRACESTATE: &str = "tracestate";

#[derive(Debug, Clone)]
pub(crate) struct OutgoingTrace {
    /// The context the function received: the invocation is its parent.
    context: TraceContext,
    state: Option<HeaderValue>,
}

impl OutgoingTrace {
    /// The trace of an incoming request, if it carries a valid `traceparent` (Vireo gives every
    /// invocation one).
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let context = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse)?;
        Some(Self {
            context,
            state: headers.get(TRACESTATE).cloned(),
        })
    }

    /// Adds the trace to an outgoing request. A `traceparent` the function set stays, and its
    /// `tracestate` with it: the function may be continuing a trace of its own.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if headers.contains_key(TRACEPARENT) {
            return;
        }
        let child = HeaderValue::from_str(&self.context.child().to_string())
            .expect("a traceparent is ASCII");
        headers.insert(TRACEPARENT, child);
        if let Some(state) = &self.state
            && !headers.contains_key(TRACESTATE)
        {
            headers.insert(TRACESTATE, state.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn incoming(state: Option<&str>) -> OutgoingTrace {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(CALLER));
        if let Some(state) = state {
            headers.insert(TRACESTATE, HeaderValue::from_str(state).unwrap());
        }
        OutgoingTrace::of(&headers).unwrap()
    }

    #[test]
    fn outgoing_requests_continue_the_trace_with_a_new_span() {
        let mut headers = HeaderMap::new();
        incoming(Some("vendor=1")).apply(&mut headers);
        let sent = headers[TRACEPARENT].to_str().unwrap();
        let (caller, sent) = (
            TraceContext::parse(CALLER).unwrap(),
            TraceContext::parse(sent).unwrap(),
        );
        assert_eq!(sent.trace_id(), caller.trace_id());
        assert_ne!(sent.span_id(), caller.span_id());
        assert!(sent.sampled());
        assert_eq!(headers[TRACESTATE], "vendor=1");
    }

    #[test]
    fn the_functions_own_trace_headers_stay() {
        let own = "00-11111111111111111111111111111111-2222222222222222-00";
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(own));
        incoming(Some("vendor=1")).apply(&mut headers);
        assert_eq!(headers[TRACEPARENT], own);
        assert!(!headers.contains_key(TRACESTATE));

        let mut headers = HeaderMap::new();
        headers.insert(TRACESTATE, HeaderValue::from_static("mine=2"));
        incoming(Some("vendor=1")).apply(&mut headers);
        assert_eq!(headers[TRACESTATE], "mine=2");
        assert!(headers.contains_key(TRACEPARENT));
    }

    #[test]
    fn no_tracestate_without_one() {
        let mut headers = HeaderMap::new();
        incoming(None).apply(&mut headers);
        assert!(!headers.contains_key(TRACESTATE));
        assert!(OutgoingTrace::of(&HeaderMap::new()).is_none());
    }
}
