//! Optional export of the server's spans to an OpenTelemetry collector over OTLP/HTTP, and the
//! link between an invocation's span and the `traceparent` its function receives.

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use vireo_core::TraceContext;

/// The span exporter; dropping it sends the spans still batched. Its HTTP client blocks, so it
/// is built and shut down on threads of its own, never on the async runtime's.
pub struct Exporter(Option<SdkTracerProvider>);

impl Exporter {
    /// Spans are batched and sent from a background thread to `endpoint` (`.../v1/traces`).
    pub fn start(endpoint: &str, service_name: &str) -> anyhow::Result<Self> {
        let (endpoint, service_name) = (endpoint.to_string(), service_name.to_string());
        std::thread::spawn(move || {
            let exporter = SpanExporter::builder()
                .with_http()
                .with_endpoint(&endpoint)
                .build()
                .with_context(|| format!("setting up OTLP export to {endpoint}"))?;
            Ok(Self(Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(service_name).build())
                    .build(),
            )))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("setting up OTLP export panicked"))?
    }

    pub fn provider(&self) -> Option<&SdkTracerProvider> {
        self.0.as_ref()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let flushed = std::thread::spawn(move || provider.shutdown()).join();
            if !matches!(flushed, Ok(Ok(()))) {
                eprintln!("vireo: the last spans could not be exported");
            }
        }
    }
}

/// Makes `span` a child of the caller's trace and returns the context the function gets: the
/// exported span's ids when spans are exported, else `fallback` (already a child or a root).
pub fn link(
    span: &tracing::Span,
    caller: Option<TraceContext>,
    fallback: TraceContext,
) -> TraceContext {
    if let Some(caller) = caller {
        let remote = SpanContext::new(
            TraceId::from(caller.trace_id_value()),
            SpanId::from(caller.span_id_value()),
            if caller.sampled() {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            TraceState::default(),
        );
        // Without an exporting layer the span has no OpenTelemetry data; nothing to link then.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    let context = span.context();
    let exported = context.span().span_context().clone();
    if exported.is_valid() {
        TraceContext::new(
            u128::from_be_bytes(exported.trace_id().to_bytes()),
            u64::from_be_bytes(exported.span_id().to_bytes()),
            exported.is_sampled(),
        )
    } else {
        fallback
    }
}
