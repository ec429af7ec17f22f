//! The API keys, for admin keys only: who holds what role where, and revoking one (which also
//! ends its dashboard sessions, as sessions check their key on every request).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use maud::html;
use vireo_core::Directory;
use vireo_core::time::now_micros;

use super::error::UiError;
use super::functions::PageParam;
use super::layout::{self, page_of, pager};
use super::session::Viewer;
use crate::api::keys::KeyView;

fn admin_only(viewer: &Viewer) -> Result<(), UiError> {
    if viewer.is_admin() {
        Ok(())
    } else {
        Err(UiError::Page(
            StatusCode::FORBIDDEN,
            "Only an admin key may see and revoke API keys.".into(),
        ))
    }
}

pub(crate) async fn list(
    viewer: Viewer,
    State(directory): State<Arc<Directory>>,
    Query(PageParam { page }): Query<PageParam>,
) -> Result<Html<String>, UiError> {
    admin_only(&viewer)?;
    let keys = directory.list_keys();
    let total = keys.len();
    let keys: Vec<KeyView> = page_of(&keys, page)
        .iter()
        .cloned()
        .map(KeyView::from)
        .collect();
    let body = html! {
        h1 { "API keys" }
        p.hint { "Create keys with " code { "vireo keys create" } "; a key is shown once, when it is made." }
        div.scroll { table #keys {
            thead { tr { th { "Id" } th { "Role" } th { "Namespaces" } th { "Note" } th { "Created" } th { "State" } th {} } }
            tbody {
                @for key in &keys {
                    tr {
                        td { code { (key.id) } }
                        td { (key.role.as_str()) }
                        td { @if key.namespaces.is_empty() { "all" } @else { (key.namespaces.join(", ")) } }
                        td { (key.description.as_deref().unwrap_or("")) }
                        td { time datetime=(key.created_at) { (key.created_at) } }
                        td { (key.state) }
                        td {
                            @if key.state == "active" && key.id != viewer.caller.key_id {
                                form.inline method="post" action={ "/ui/keys/" (key.id) "/revoke" } {
                                    (viewer.csrf.field())
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        (pager(page, total, |p| format!("/ui/keys?page={p}")))
    };
    Ok(layout::page("API keys", Some(&viewer), body))
}

pub(crate) async fn revoke(
    viewer: Viewer,
    State(directory): State<Arc<Directory>>,
    Path(key_id): Path<String>,
) -> Result<Redirect, UiError> {
    admin_only(&viewer)?;
    let revoked = directory.revoke_key(&key_id, now_micros()).await?;
    tracing::info!(key_id = %revoked.id, by = %viewer.caller.key_id, "API key revoked from the dashboard");
    Ok(Redirect::to("/ui/keys"))
}
