//! The API keys, for admin keys only: who holds what role where, creating one (shown once), and
//! revoking one (which also ends its dashboard sessions, as sessions check their key on every
//! request).

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use maud::html;
use serde::Deserialize;
use vireo_core::time::now_micros;
use vireo_core::{Directory, Role};

use super::error::UiError;
use super::functions::PageParam;
use super::layout::{self, page_of, pager, stamp};
use super::session::Viewer;
use crate::api::keys::{CreateKey, KeyView, issue};

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
                        td { (stamp(&key.created_at)) }
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
        h2 { "New key" }
        form.filters #new-key method="post" action="/ui/keys" {
            (viewer.csrf.field())
            label { "Role " select name="role" {
                @for role in [Role::Viewer, Role::Invoker, Role::Developer, Role::Admin] {
                    option value=(role.as_str()) { (role.as_str()) }
                }
            } }
            label { "Namespaces " input type="text" name="namespaces" placeholder="team-a, team-b"; }
            label { "Expires " input type="text" name="expires" size="8" placeholder="30d"; }
            label { "Note " input type="text" name="description" maxlength="200"; }
            button type="submit" { "Create" }
        }
    };
    Ok(layout::page("API keys", Some(&viewer), body))
}

#[derive(Deserialize)]
pub(crate) struct NewKey {
    role: String,
    #[serde(default)]
    namespaces: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    description: String,
}

/// Creates a key and shows it, once, in the answer to the form (never in a URL).
pub(crate) async fn create(
    viewer: Viewer,
    State(directory): State<Arc<Directory>>,
    Form(form): Form<NewKey>,
) -> Result<Html<String>, UiError> {
    admin_only(&viewer)?;
    let role = Role::parse(&form.role).ok_or_else(|| {
        UiError::Page(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a role", form.role),
        )
    })?;
    let given = |value: String| Some(value.trim().to_string()).filter(|v| !v.is_empty());
    let request = CreateKey {
        role,
        namespaces: form
            .namespaces
            .split(',')
            .map(str::trim)
            .filter(|ns| !ns.is_empty())
            .map(str::to_string)
            .collect(),
        expires: given(form.expires),
        description: given(form.description),
    };
    let created = issue(&directory, request).await?;
    let body = html! {
        h1 { "Key created" }
        p { "This is the only time the key is shown: copy it now. Vireo keeps only its hash." }
        pre #created-key { (created.key) }
        p { (created.view.role.as_str()) " key " code { (created.view.id) } }
        p { a href="/ui/keys" { "Back to the keys" } }
    };
    Ok(layout::page("Key created", Some(&viewer), body))
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
