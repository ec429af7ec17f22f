//! A namespace's event sources: what each reads and invokes, its state on this node (running,
//! paused or failing with its last error) and its counters; writers pause and resume them. The
//! list, pause and resume are the admin API handlers' own.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::response::Redirect;
use maud::{Markup, html};
use serde::Deserialize;
use vireo_core::{Action, Catalog, Name};

use super::error::UiError;
use super::layout::{empty, stamp};
use super::session::Viewer;
use crate::api::sources::{SourceView, list, pause, resume};
use crate::auth::authorize;
use crate::extract::{NamespacePath, SourcePath};
use crate::state::SourceServices;

/// The namespace's sources as listed by the API.
pub(crate) async fn of_namespace(
    catalog: Arc<dyn Catalog>,
    services: SourceServices,
    namespace: &Name,
) -> Result<Vec<SourceView>, UiError> {
    let listed = list(
        State(catalog),
        State(services),
        NamespacePath(namespace.clone()),
    )
    .await?;
    Ok(listed.0.sources)
}

/// The sources' table for the namespace page.
pub(crate) fn table(viewer: &Viewer, namespace: &Name, sources: &[SourceView]) -> Markup {
    let writable = viewer.may_write(namespace);
    html! {
        @if sources.is_empty() {
            (empty("No event sources.", html! {
                "Turn a broker's messages into async invocations with "
                code { "vireo sources add NAME --kind redis --url URL --stream STREAM --function FN" } "."
            }))
        } @else {
            div.scroll { table #sources {
                thead { tr {
                    th { "Source" } th { "Kind" } th { "Function" } th { "Stream" } th { "State" }
                    th { "Received" } th { "Acknowledged" } th { "Ack/s" } th { "Filtered" } th { "Refused" } th { "Lag" }
                    @if writable { th {} }
                } }
                tbody {
                    @for source in sources {
                        tr data-source=(source.name) {
                            td { (source.name) }
                            td { (source.kind.as_str()) }
                            td { (source.function) }
                            td { code { (source.stream) } }
                            td.state {
                                span.{ "state-" (source.state) } { (source.state) }
                                @if let Some(error) = &source.last_error {
                                    p.last-error {
                                        (error)
                                        @if let Some(at) = &source.last_error_at { " (" (stamp(at)) ")" }
                                    }
                                }
                            }
                            td.num { (source.received) }
                            td.num { (source.acknowledged) }
                            td.num { (format!("{:.1}", source.acknowledged_per_second)) }
                            td.num { (source.filtered) }
                            td.num { (source.refused) }
                            td.num { @if let Some(lag) = source.lag { (lag) } }
                            @if writable {
                                td {
                                    form.inline method="post" action={ "/ui/ns/" (namespace) "/sources/" (source.name) } {
                                        (viewer.csrf.field())
                                        input type="hidden" name="paused" value=(!source.paused);
                                        button type="submit" { @if source.paused { "Resume" } @else { "Pause" } }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct PauseForm {
    paused: bool,
}

/// Pauses or resumes a source, as `POST …/sources/{name}/pause|resume`.
pub(crate) async fn set_paused(
    viewer: Viewer,
    State(services): State<SourceServices>,
    path: SourcePath,
    Form(form): Form<PauseForm>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &path.namespace)?;
    let back = format!("/ui/ns/{}#sources", path.namespace);
    // The answer is the changed source, which the page it returns to lists.
    let _changed = if form.paused {
        pause(State(services), path).await?
    } else {
        resume(State(services), path).await?
    };
    Ok(Redirect::to(&back))
}
