//! A bucket's objects: folders (common prefixes under `/`) and objects, paged by the listing's
//! cursor and narrowed by a prefix; each object downloads through the session (the browser holds
//! no key for the object route) and, for writers, deletes. The listing, read and delete are the
//! admin API handlers' own.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{Html, Redirect, Response};
use maud::html;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use vireo_core::{Action, BucketId, ObjectStore};

use super::error::UiError;
use super::layout::{self, Listing, PAGE_ROWS, bytes, cursor_pager, empty, time, with_query};
use super::session::Viewer;
use crate::GatewayLimits;
use crate::api::buckets::{ObjectListParams, list_objects};
use crate::api::objects::{delete_object, read_object};
use crate::auth::authorize;
use crate::extract::{ApiQuery, BucketPath, ObjectPath, checked_object_key};

/// Folders are the keys' parts between slashes.
const FOLDER: &str = "/";

pub(crate) fn bucket_url(bucket: &BucketId) -> String {
    format!("/ui/ns/{}/buckets/{}", bucket.namespace, bucket.bucket)
}

pub(crate) async fn objects(
    viewer: Viewer,
    State(store): State<Arc<dyn ObjectStore>>,
    BucketPath(bucket): BucketPath,
    Query(Listing { prefix, cursor }): Query<Listing>,
) -> Result<Html<String>, UiError> {
    authorize(&viewer.caller, Action::Read, &bucket.namespace)?;
    let params = ObjectListParams {
        prefix: Some(prefix.clone()),
        delimiter: Some(FOLDER.into()),
        limit: Some(u32::try_from(PAGE_ROWS).expect("a page is small")),
        cursor: cursor.clone(),
    };
    let page = list_objects(State(store), BucketPath(bucket.clone()), ApiQuery(params))
        .await?
        .0;
    let here = bucket_url(&bucket);
    let writable = viewer.may_write(&bucket.namespace);
    let folder = |path: &str| with_query(&here, &[("prefix", Some(path))]);
    // The folders above this prefix, each a link: `a/`, `a/b/`, …
    let parents: Vec<(&str, &str)> = prefix
        .match_indices(FOLDER)
        .map(|(end, _)| {
            let path = &prefix[..=end];
            let name = path[..end].rsplit(FOLDER).next().unwrap_or_default();
            (name, path)
        })
        .collect();
    let body = html! {
        p.crumbs {
            a href={ "/ui/ns/" (bucket.namespace) } { (bucket.namespace) } " / "
            a href=(here) { (bucket.bucket) } " / "
            @for (name, path) in &parents { a href=(folder(path)) { (name) } " / " }
        }
        h1 { "Bucket " (bucket.bucket) }
        form.filters method="get" action=(here) {
            label { "Key prefix " input type="text" name="prefix" value=(prefix); }
            button type="submit" { "Filter" }
        }
        @if page.objects.is_empty() && page.common_prefixes.is_empty() {
            @if prefix.is_empty() {
                (empty("This bucket is empty.", html! {
                    "Upload with " code { "vireo objects put " (bucket.bucket) " KEY FILE" }
                    "; functions granted the bucket write to it too."
                }))
            } @else {
                (empty("No objects under this prefix.", html! {
                    a href=(here) { "Show the whole bucket" } "."
                }))
            }
        } @else {
            div.scroll { table #objects {
                thead { tr {
                    th { "Key" } th { "Size" } th { "Type" } th { "ETag" } th { "Written" } th {}
                    @if writable { th {} }
                } }
                tbody {
                    @for path in &page.common_prefixes {
                        tr.folder data-prefix=(path) {
                            td { a href=(folder(path)) { (path.strip_prefix(prefix.as_str()).unwrap_or(path)) } }
                            td {} td { "folder" } td {} td {} td {}
                            @if writable { td {} }
                        }
                    }
                    @for object in &page.objects {
                        tr data-key=(object.key) {
                            td.key title=(object.key) { (object.key.strip_prefix(prefix.as_str()).unwrap_or(&object.key)) }
                            td.num { (bytes(object.size)) }
                            td { (object.content_type) }
                            td { code title=(object.etag) { (&object.etag[..12.min(object.etag.len())]) } }
                            td { (time(object.created_at_us)) }
                            td { a.download href=(with_query(&format!("{here}/object"), &[("key", Some(&object.key))])) { "Download" } }
                            @if writable {
                                td {
                                    form.inline method="post" action={ (here) "/delete" } {
                                        (viewer.csrf.field())
                                        input type="hidden" name="key" value=(object.key);
                                        input type="hidden" name="prefix" value=(prefix);
                                        button.danger type="submit" { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        (cursor_pager(&folder(&prefix), cursor.is_some(), page.next_cursor.map(|next| {
            with_query(&here, &[("prefix", Some(&prefix)), ("cursor", Some(&next))])
        })))
    };
    Ok(layout::page(bucket.bucket.as_str(), Some(&viewer), body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectKey {
    key: String,
}

/// The object's bytes, streamed, as a download: never shown in the dashboard's own origin,
/// whatever its content type claims.
pub(crate) async fn download(
    viewer: Viewer,
    State(store): State<Arc<dyn ObjectStore>>,
    BucketPath(bucket): BucketPath,
    Query(ObjectKey { key }): Query<ObjectKey>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    authorize(&viewer.caller, Action::Read, &bucket.namespace)?;
    checked_object_key(&key)?;
    let file_name = key.rsplit(FOLDER).next().unwrap_or(&key).to_string();
    let mut response =
        read_object(&store, ObjectPath { bucket, key }, &Method::GET, &headers).await?;
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        utf8_percent_encode(&file_name, NON_ALPHANUMERIC)
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("percent-encoded text is a valid header value"),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    key: String,
    #[serde(default)]
    prefix: String,
}

pub(crate) async fn delete(
    viewer: Viewer,
    State(store): State<Arc<dyn ObjectStore>>,
    State(limits): State<GatewayLimits>,
    BucketPath(bucket): BucketPath,
    Form(form): Form<DeleteForm>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &bucket.namespace)?;
    checked_object_key(&form.key)?;
    let back = with_query(&bucket_url(&bucket), &[("prefix", Some(&form.prefix))]);
    delete_object(
        State(store),
        State(limits),
        ObjectPath {
            bucket,
            key: form.key,
        },
    )
    .await?;
    Ok(Redirect::to(&back))
}
