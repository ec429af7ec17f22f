//! The manifest's event sources, named in the namespace (see `named.rs` for what is done).

use serde_json::{Value, json};
use vireo_core::{Name, SourceKind};

use super::named::{self, Change, Listed};
use crate::client::Client;
use crate::manifest::EventSourceSpec;
use crate::views::{SourceList, SourceView};

pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &[EventSourceSpec],
    dry_run: bool,
) -> anyhow::Result<Vec<Change>> {
    let base = format!("/v1/namespaces/{}/sources", client.namespace());
    let existing = client
        .get_if_found::<SourceList>(&base)
        .await?
        .map(|list| list.sources)
        .unwrap_or_default();
    let wanted: Vec<Value> = wanted
        .iter()
        .map(|source| create_body(function, source))
        .collect();
    let kind = ("source", base.as_str());
    named::reconcile_posted(client, function, kind, (&wanted, &existing), same, dry_run).await
}

impl Listed for SourceView {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self) -> &str {
        &self.function
    }
}

/// The API's body creating the source.
fn create_body(function: &Name, source: &EventSourceSpec) -> Value {
    let target = match &source.alias {
        Some(alias) => format!("{function}@{alias}"),
        None => function.to_string(),
    };
    let spec = source.spec();
    json!({
        "name": source.name,
        "function": target,
        "kind": spec.kind.as_str(),
        "url": spec.url,
        "stream": spec.stream,
        "subject": spec.subject,
        "password_secret": spec.password_secret,
        "batch_size": spec.batch_size,
        "batch_window_ms": spec.batch_window_ms,
        "filter": spec.filter,
        // As the server shows it: an MQTT source's QoS is 1 unless set.
        "qos": (spec.kind == SourceKind::Mqtt).then(|| spec.qos.unwrap_or(1)),
    })
}

/// Whether the existing source is the one `body` would create.
fn same(body: &Value, view: &SourceView) -> bool {
    body["function"] == view.function.as_str()
        && body["kind"] == view.kind.as_str()
        && body["url"] == view.url.as_str()
        && body["stream"] == view.stream.as_str()
        && body["subject"] == json!(view.subject)
        && body["password_secret"] == json!(view.password_secret)
        && body["batch_size"] == view.batch_size
        && body["batch_window_ms"] == json!(view.batch_window_ms)
        && body["filter"] == json!(view.filter)
        && body["qos"] == json!(view.qos)
}
