//! The web dashboard under `/ui`: HTML rendered here (maud escapes every value it writes), over
//! the same core seams the admin API handlers use, so it shows what the API answers and changes
//! only what the API could. The browser holds a signed session cookie, never a key; every state
//! change carries a CSRF token (`csrf.rs`); the pages load scripts and styles only from
//! `/ui/assets`, under a Content-Security-Policy that forbids inline ones.

mod activity;
mod assets;
mod buckets;
mod csrf;
mod error;
mod functions;
mod invocations;
mod key_value;
mod keys;
mod layout;
mod logs;
mod queue;
mod session;
mod sources;
mod split;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use session::Sessions;
pub use session::UiSettings;
use vireo_core::Directory;

use crate::state::AppState;

/// What the pages may load: scripts, styles, images and connections only from this server, no
/// inline script or style, no framing, forms posting only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// The dashboard's routes; `None` when it is turned off.
pub(crate) fn router(state: &AppState) -> Option<Router<AppState>> {
    let directory = Arc::<Directory>::from_ref(state);
    let sessions = Arc::new(Sessions::new(state.ui_settings()?, directory));
    let pages = Router::new()
        .route("/ui", get(functions::namespaces))
        .route("/ui/", get(functions::namespaces))
        .route("/ui/login", get(session::login_page).post(session::log_in))
        .route("/ui/logout", post(session::log_out))
        .route("/ui/keys", get(keys::list).post(keys::create))
        .route("/ui/keys/{key_id}/revoke", post(keys::revoke))
        .route("/ui/invocations/{id}", get(invocations::detail))
        .route("/ui/ns/{namespace}", get(functions::list))
        .route("/ui/ns/{namespace}/usage", get(usage::report))
        .route(
            "/ui/ns/{namespace}/sources/{name}",
            post(sources::set_paused),
        )
        .route("/ui/ns/{namespace}/kv/{store}", get(key_value::keys))
        .route("/ui/ns/{namespace}/kv/{store}/value", get(key_value::value))
        .route(
            "/ui/ns/{namespace}/kv/{store}/delete",
            post(key_value::delete),
        )
        .route("/ui/ns/{namespace}/buckets/{bucket}", get(buckets::objects))
        .route(
            "/ui/ns/{namespace}/buckets/{bucket}/object",
            get(buckets::download),
        )
        .route(
            "/ui/ns/{namespace}/buckets/{bucket}/delete",
            post(buckets::delete),
        )
        .route(
            "/ui/ns/{namespace}/schedules/{name}",
            post(functions::pause_schedule),
        )
        .route("/ui/ns/{namespace}/fn/{function}", get(functions::page))
        .route(
            "/ui/ns/{namespace}/fn/{function}/split",
            post(split::split_alias),
        )
        .route(
            "/ui/ns/{namespace}/fn/{function}/activity",
            get(activity::chart_data),
        )
        .route(
            "/ui/ns/{namespace}/fn/{function}/aliases/{alias}",
            post(functions::move_alias),
        )
        .route(
            "/ui/ns/{namespace}/fn/{function}/invocations",
            get(invocations::table),
        )
        .route("/ui/ns/{namespace}/fn/{function}/logs", get(logs::tail))
        .route(
            "/ui/ns/{namespace}/fn/{function}/logs/stream",
            get(logs::stream),
        )
        .route(
            "/ui/ns/{namespace}/fn/{function}/dlq",
            get(queue::dead_letters),
        )
        .route(
            "/ui/ns/{namespace}/fn/{function}/dlq/redrive",
            post(queue::redrive),
        )
        .layer(from_fn_with_state(sessions.clone(), csrf::verify))
        .layer(Extension(sessions));
    Some(
        pages
            .route("/ui/assets/{file}", get(assets::serve))
            .layer(from_fn(security_headers)),
    )
}

/// Headers every dashboard answer carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// How often the pages that show live numbers ask again.
pub(crate) const REFRESH: Duration = Duration::from_secs(2);
