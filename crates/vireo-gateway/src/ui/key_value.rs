//! A key-value store's keys, paged by the listing's cursor and narrowed by a prefix; one key's
//! value (as text when it is UTF-8, else as the hex of its first bytes); and, for writers,
//! deleting a key. The listing, read and delete are the admin API handlers' own.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::response::{Html, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use vireo_core::{Action, KeyValueStore, KvStoreId};

use super::error::UiError;
use super::layout::{self, Listing, PAGE_ROWS, bytes, cursor_pager, empty, with_query};
use super::session::Viewer;
use crate::GatewayLimits;
use crate::api::key_value::{KeyListParams, delete_value, list_keys, read_value};
use crate::auth::authorize;
use crate::extract::{ApiQuery, KvKeyPath, KvStorePath};

/// The bytes of a value that is not text the page shows, as hex.
const HEX_PREVIEW: usize = 256;

fn store_url(store: &KvStoreId) -> String {
    format!("/ui/ns/{}/kv/{}", store.namespace, store.store)
}

fn value_url(store: &KvStoreId, key: &str) -> String {
    with_query(
        &format!("{}/value", store_url(store)),
        &[("key", Some(key))],
    )
}

fn crumbs(store: &KvStoreId) -> Markup {
    html! {
        p.crumbs {
            a href={ "/ui/ns/" (store.namespace) } { (store.namespace) } " / "
            a href=(store_url(store)) { (store.store) } " / "
        }
    }
}

/// A writer's button deleting `key`; the listing returns to `prefix`.
fn delete_button(viewer: &Viewer, store: &KvStoreId, key: &str, prefix: &str) -> Markup {
    html! {
        form.inline method="post" action={ (store_url(store)) "/delete" } {
            (viewer.csrf.field())
            input type="hidden" name="key" value=(key);
            input type="hidden" name="prefix" value=(prefix);
            button.danger type="submit" { "Delete" }
        }
    }
}

pub(crate) async fn keys(
    viewer: Viewer,
    State(stores): State<Arc<dyn KeyValueStore>>,
    KvStorePath(store): KvStorePath,
    Query(Listing { prefix, cursor }): Query<Listing>,
) -> Result<Html<String>, UiError> {
    authorize(&viewer.caller, Action::Read, &store.namespace)?;
    let params = KeyListParams {
        prefix: Some(prefix.clone()),
        limit: Some(u32::try_from(PAGE_ROWS).expect("a page is small")),
        cursor: cursor.clone(),
    };
    let page = list_keys(State(stores), KvStorePath(store.clone()), ApiQuery(params))
        .await?
        .0;
    let here = store_url(&store);
    let writable = viewer.may_write(&store.namespace);
    let body = html! {
        (crumbs(&store))
        h1 { "Key-value store " (store.store) }
        form.filters method="get" action=(here) {
            label { "Key prefix " input type="text" name="prefix" value=(prefix); }
            button type="submit" { "Filter" }
        }
        @if page.keys.is_empty() {
            @if prefix.is_empty() {
                (empty("This store holds no keys.", html! {
                    "Functions granted it with " code { "vireo deploy … --kv " (store.store) }
                    " write here; so does " code { "vireo kv set " (store.store) " KEY VALUE" } "."
                }))
            } @else {
                (empty("No keys start with this prefix.", html! {
                    a href=(here) { "Show every key" } "."
                }))
            }
        } @else {
            div.scroll { table #keys {
                thead { tr { th { "Key" } @if writable { th {} } } }
                tbody {
                    @for key in &page.keys {
                        tr data-key=(key) {
                            td { a href=(value_url(&store, key)) { (key) } }
                            @if writable { td { (delete_button(&viewer, &store, key, &prefix)) } }
                        }
                    }
                }
            } }
        }
        (cursor_pager(&with_query(&here, &[("prefix", Some(&prefix))]), cursor.is_some(),
            page.next_cursor.map(|next| with_query(&here, &[("prefix", Some(&prefix)), ("cursor", Some(&next))]))))
    };
    Ok(layout::page(store.store.as_str(), Some(&viewer), body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyParam {
    key: String,
}

pub(crate) async fn value(
    viewer: Viewer,
    State(stores): State<Arc<dyn KeyValueStore>>,
    State(limits): State<GatewayLimits>,
    KvStorePath(store): KvStorePath,
    Query(KeyParam { key }): Query<KeyParam>,
) -> Result<Html<String>, UiError> {
    authorize(&viewer.caller, Action::Read, &store.namespace)?;
    let path = KvKeyPath { store, key };
    let value = read_value(stores.as_ref(), &limits, &path).await?;
    let KvKeyPath { store, key } = path;
    let body = html! {
        (crumbs(&store))
        h1 { "Key " code { (key) } }
        p #value-size { (bytes(value.len() as u64)) }
        @match std::str::from_utf8(&value) {
            Ok(text) => { pre #value { (text) } }
            Err(_) => {
                p.hint {
                    "Not UTF-8 text: the first " (HEX_PREVIEW.min(value.len())) " bytes in hex."
                }
                pre #value.hex { (hex_preview(&value)) }
            }
        }
        @if viewer.may_write(&store.namespace) { (delete_button(&viewer, &store, &key, "")) }
    };
    Ok(layout::page("Key", Some(&viewer), body))
}

/// The first bytes of `value` in hex, 16 to a line.
fn hex_preview(value: &[u8]) -> String {
    let mut text = String::new();
    for line in value[..HEX_PREVIEW.min(value.len())].chunks(16) {
        let pairs: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(text, "{}", pairs.join(" "));
    }
    if value.len() > HEX_PREVIEW {
        text.push('…');
    }
    text
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    key: String,
    #[serde(default)]
    prefix: String,
}

pub(crate) async fn delete(
    viewer: Viewer,
    State(stores): State<Arc<dyn KeyValueStore>>,
    State(limits): State<GatewayLimits>,
    KvStorePath(store): KvStorePath,
    Form(form): Form<DeleteForm>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &store.namespace)?;
    let back = with_query(&store_url(&store), &[("prefix", Some(&form.prefix))]);
    delete_value(
        State(stores),
        State(limits),
        KvKeyPath {
            store,
            key: form.key,
        },
    )
    .await?;
    Ok(Redirect::to(&back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_value_is_previewed_in_hex_lines() {
        assert_eq!(hex_preview(&[0, 255, 16]), "00 ff 10\n");
        let long = vec![0xab_u8; HEX_PREVIEW + 1];
        let preview = hex_preview(&long);
        assert_eq!(preview.lines().count(), HEX_PREVIEW / 16 + 1);
        assert!(preview.ends_with('…'), "{preview}");
    }
}
