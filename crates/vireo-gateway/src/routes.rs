//! The admin API in one table: each row a handler and what it asks of its caller. A handler's
//! `#[utoipa::path]` names its method and path, the one place they are written (utoipa needs
//! them there to describe the operation); the router, the guard in front of every route and the
//! OpenAPI document all take them from this table. A new admin route is a handler and a row.

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, get};
use axum::{Json, response::IntoResponse};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;
use vireo_core::Action;

use crate::auth::{self, Guard, Requirement};
use crate::state::{Access, AppState};
use crate::{api, openapi, probes};

/// Where the OpenAPI document is served, to anyone.
const OPENAPI_PATH: &str = "/v1/openapi.json";

/// One admin route: its handler and what it needs of a caller.
struct AdminRoute {
    route: Route,
    needs: Requirement,
    body: BodyLimit,
}

/// How large a route's request body may be.
#[derive(Clone, Copy)]
enum BodyLimit {
    /// axum's default (2 MB): JSON bodies are small.
    Json,
    /// A component upload: the server's upload limit.
    Upload,
    /// A key-value value: the server's value limit.
    Value,
    /// An object: streamed to the store, which enforces the server's object limit as it
    /// reads.
    Streamed,
}

enum Route {
    /// Described in the OpenAPI document.
    Documented(UtoipaMethodRouter<AppState>),
    /// Outside the API the document describes.
    Undocumented(&'static str, MethodRouter<AppState>),
}

fn documented(route: UtoipaMethodRouter<AppState>, needs: Requirement) -> AdminRoute {
    AdminRoute {
        route: Route::Documented(route),
        needs,
        body: BodyLimit::Json,
    }
}

fn undocumented(
    path: &'static str,
    handler: MethodRouter<AppState>,
    needs: Requirement,
) -> AdminRoute {
    AdminRoute {
        route: Route::Undocumented(path, handler),
        needs,
        body: BodyLimit::Json,
    }
}

impl AdminRoute {
    fn takes(self, body: BodyLimit) -> Self {
        Self { body, ..self }
    }
}

/// Every admin route. `Admin`: an admin key; `Namespace(action)`: a key allowed that action in
/// the route's `{namespace}`; `Key`: any valid key (the handler checks what it finds).
fn table() -> Vec<AdminRoute> {
    use Action::{Read, Write};
    use Requirement::{Admin, Key, Namespace};
    vec![
        documented(routes!(api::namespaces::list), Key),
        documented(routes!(api::namespaces::create), Admin),
        documented(routes!(api::namespaces::get), Namespace(Read)),
        documented(routes!(api::namespaces::set_quotas), Admin),
        documented(routes!(api::namespaces::delete), Admin),
        documented(routes!(api::keys::create), Admin),
        documented(routes!(api::keys::list), Admin),
        documented(routes!(api::keys::revoke), Admin),
        documented(routes!(api::nodes::list), Admin),
        documented(routes!(api::functions::list), Namespace(Read)),
        documented(routes!(api::functions::create), Namespace(Write)),
        documented(routes!(api::functions::get), Namespace(Read)),
        documented(routes!(api::functions::delete), Namespace(Write)),
        documented(routes!(api::versions::deploy), Namespace(Write)).takes(BodyLimit::Upload),
        documented(routes!(api::versions::list), Namespace(Read)),
        documented(routes!(api::versions::get), Namespace(Read)),
        documented(routes!(api::aliases::set), Namespace(Write)),
        documented(routes!(api::aliases::delete), Namespace(Write)),
        documented(routes!(api::invocations::list), Namespace(Read)),
        documented(routes!(api::invocations::get), Key),
        documented(routes!(api::logs::read), Namespace(Read)),
        documented(routes!(api::queue::counts), Namespace(Read)),
        documented(routes!(api::queue::dead), Namespace(Read)),
        documented(routes!(api::queue::redrive), Namespace(Write)),
        documented(routes!(api::queue::policy), Namespace(Read)),
        documented(routes!(api::queue::set_policy), Namespace(Write)),
        documented(routes!(api::schedules::create), Namespace(Write)),
        documented(routes!(api::schedules::list), Namespace(Read)),
        documented(routes!(api::schedules::get), Namespace(Read)),
        documented(routes!(api::schedules::delete), Namespace(Write)),
        documented(routes!(api::schedules::pause), Namespace(Write)),
        documented(routes!(api::schedules::resume), Namespace(Write)),
        documented(routes!(api::sources::create), Namespace(Write)),
        documented(routes!(api::sources::list), Namespace(Read)),
        documented(routes!(api::sources::get), Namespace(Read)),
        documented(routes!(api::sources::delete), Namespace(Write)),
        documented(routes!(api::sources::pause), Namespace(Write)),
        documented(routes!(api::sources::resume), Namespace(Write)),
        documented(routes!(api::usage::report), Key),
        documented(routes!(api::secrets::set), Namespace(Write)),
        documented(routes!(api::secrets::list), Namespace(Read)),
        documented(routes!(api::secrets::delete), Namespace(Write)),
        documented(routes!(api::metrics::namespace), Namespace(Read)),
        documented(routes!(api::key_value::list_stores), Namespace(Read)),
        documented(routes!(api::key_value::create_store), Namespace(Write)),
        documented(routes!(api::key_value::delete_store), Namespace(Write)),
        documented(routes!(api::key_value::list_keys), Namespace(Read)),
        documented(routes!(api::key_value::get_value), Namespace(Read)),
        documented(routes!(api::key_value::set_value), Namespace(Write)).takes(BodyLimit::Value),
        documented(routes!(api::key_value::delete_value), Namespace(Write)),
        documented(routes!(api::sqlite::list), Namespace(Read)),
        documented(routes!(api::sqlite::create), Namespace(Write)),
        documented(routes!(api::sqlite::delete), Namespace(Write)),
        documented(routes!(api::sqlite::execute), Namespace(Write)),
        documented(routes!(api::http_routes::add), Namespace(Write)),
        documented(routes!(api::http_routes::list), Namespace(Read)),
        documented(routes!(api::http_routes::delete), Namespace(Write)),
        documented(routes!(api::http_routes::hosts), Admin),
        documented(routes!(api::http_routes::claim), Admin),
        documented(routes!(api::http_routes::release), Admin),
        documented(routes!(api::buckets::list_buckets), Namespace(Read)),
        documented(routes!(api::buckets::create_bucket), Namespace(Write)),
        documented(routes!(api::buckets::delete_bucket), Namespace(Write)),
        documented(routes!(api::buckets::list_objects), Namespace(Read)),
        documented(routes!(api::objects::get_object), Namespace(Read)),
        documented(routes!(api::objects::put_object), Namespace(Write)).takes(BodyLimit::Streamed),
        documented(routes!(api::objects::delete_object), Namespace(Write)),
        documented(routes!(api::presign::presign), Namespace(Write)),
        documented(routes!(api::buckets::list_notifications), Namespace(Read)),
        documented(routes!(api::buckets::set_notification), Namespace(Write)),
        documented(routes!(api::buckets::delete_notification), Namespace(Write)),
        undocumented("/metrics", get(probes::metrics), Admin),
    ]
}

/// The admin API: every route of the table behind its guard, and the document describing them.
pub(crate) fn admin(state: &AppState) -> Router<AppState> {
    let access = Access::from_ref(state);
    let limits = state.limits();
    let upload_limit = usize::try_from(limits.max_upload_bytes + api::versions::FORM_OVERHEAD)
        .unwrap_or(usize::MAX);
    let mut router = OpenApiRouter::with_openapi(openapi::frame());
    for AdminRoute { route, needs, body } in table() {
        let guard = Guard {
            access: access.clone(),
            requirement: needs,
        };
        let guarded = |handler: MethodRouter<AppState>| {
            let handler = match body {
                BodyLimit::Json => handler,
                BodyLimit::Upload => handler.layer(DefaultBodyLimit::max(upload_limit)),
                BodyLimit::Value => {
                    handler.layer(DefaultBodyLimit::max(limits.key_value.max_value_bytes))
                }
                BodyLimit::Streamed => handler.layer(DefaultBodyLimit::disable()),
            };
            handler.route_layer(from_fn_with_state(guard, auth::guard))
        };
        router = match route {
            Route::Documented((schemas, mut paths, handler)) => {
                openapi::add_errors(&mut paths, needs);
                router.routes((schemas, paths, guarded(handler)))
            }
            Route::Undocumented(path, handler) => router.route(path, guarded(handler)),
        };
    }
    let (router, mut document) = router.split_for_parts();
    openapi::complete(&mut document);
    router.route(
        OPENAPI_PATH,
        get(move || {
            let document = document.clone();
            async move { Json(document).into_response() }
        }),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    /// The requirement the table gives `method path`, if it routes it.
    fn requirement(method: &Method, path: &str) -> Option<Requirement> {
        table().into_iter().find_map(|row| {
            let routed = match &row.route {
                Route::Documented((_, paths, _)) => paths.paths.get(path).is_some_and(|item| {
                    let operation = match *method {
                        Method::GET => &item.get,
                        Method::POST => &item.post,
                        Method::PUT => &item.put,
                        Method::DELETE => &item.delete,
                        _ => return false,
                    };
                    operation.is_some()
                }),
                Route::Undocumented(routed, _) => *routed == path && *method == Method::GET,
            };
            routed.then_some(row.needs)
        })
    }

    #[test]
    fn every_route_has_the_intended_rule() {
        use Requirement::*;
        let get = Method::GET;
        let post = Method::POST;
        let ns = "/v1/namespaces/{namespace}/functions/{function}";
        assert_eq!(requirement(&get, "/metrics"), Some(Admin));
        assert_eq!(requirement(&get, "/v1/keys"), Some(Admin));
        assert_eq!(requirement(&post, "/v1/namespaces"), Some(Admin));
        assert_eq!(requirement(&get, "/v1/namespaces"), Some(Key));
        assert_eq!(
            requirement(&Method::DELETE, "/v1/namespaces/{namespace}"),
            Some(Admin)
        );
        assert_eq!(
            requirement(&get, "/v1/namespaces/{namespace}"),
            Some(Namespace(Action::Read))
        );
        assert_eq!(requirement(&get, ns), Some(Namespace(Action::Read)));
        assert_eq!(
            requirement(&Method::DELETE, ns),
            Some(Namespace(Action::Write))
        );
        // The document is open to all, and an unlisted route does not exist.
        assert_eq!(requirement(&get, OPENAPI_PATH), None);
        assert_eq!(requirement(&get, "/v1/something-new"), None);
    }

    #[test]
    fn reads_are_gets_and_everything_else_writes() {
        for row in table() {
            let (Route::Documented((_, paths, _)), Requirement::Namespace(action)) =
                (&row.route, row.needs)
            else {
                continue;
            };
            for (path, item) in &paths.paths {
                let reads = item.get.is_some();
                let expected = if reads { Action::Read } else { Action::Write };
                assert_eq!(action, expected, "{path}");
            }
        }
    }
}
