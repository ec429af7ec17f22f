//! Who may call an admin route. Every `/v1` route (but the OpenAPI document) needs
//! `Authorization: Bearer <key>`; a route naming a namespace the key does not cover answers 404,
//! exactly as if it did not exist, so keys learn nothing about other tenants. Each route's
//! [`Requirement`] is written beside it in `routes.rs`; its [`Guard`] enforces it.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vireo_core::auth::KEY_PREFIX;
use vireo_core::time::now_micros;
use vireo_core::{Action, AuthError, Caller, Name, Principal, StoreError};

use crate::error::ApiError;
use crate::extract::rejected;
use crate::limits;
use crate::state::Access;

/// What an admin route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requirement {
    /// An admin key.
    Admin,
    /// This action in the route's `{namespace}`.
    Namespace(Action),
    /// Any valid key; the handler checks the namespace of what it finds.
    Key,
}

/// One admin route's requirement, with what checking it needs.
#[derive(Clone)]
pub(crate) struct Guard {
    pub access: Access,
    pub requirement: Requirement,
}

/// Authenticates and authorizes a call of a guarded route, then hands the `Caller` to the
/// handler.
pub(crate) async fn guard(
    State(Guard {
        access,
        requirement,
    }): State<Guard>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match authenticate(&access, request.headers()) {
        Ok(Some(caller)) => caller,
        Ok(None) => return unauthorized(AuthError::Missing).into_response(),
        Err(error) => return unauthorized(error).into_response(),
    };
    let params = match params {
        Ok(params) => params,
        Err(rejection) => {
            let message = rejection.body_text();
            return rejected(&rejection, rejection.status(), "invalid_path", message)
                .into_response();
        }
    };
    let namespace = params
        .iter()
        .find(|(name, _)| *name == "namespace")
        .map(|(_, value)| Name::parse("namespace", value));
    let namespace = match namespace.transpose() {
        Ok(namespace) => namespace,
        Err(invalid) => return ApiError::from(invalid).into_response(),
    };
    let allowed = match (requirement, &namespace) {
        (Requirement::Admin, Some(ns)) if !caller.sees(ns) => Err(hidden(ns)),
        (Requirement::Admin, _) => permit(&caller, Action::Admin, "an admin key"),
        (Requirement::Namespace(action), Some(ns)) => authorize(&caller, action, ns),
        _ => Ok(()),
    };
    if let Err(refused) = allowed {
        return refused.into_response();
    }
    let budget = match &namespace {
        Some(ns) => match limits::key_budget(&access, &caller, ns) {
            Ok(budget) => budget,
            Err(limited) => return limited.into_response(),
        },
        None => None,
    };
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Some(budget) = budget {
        limits::describe(response.headers_mut(), budget);
    }
    response
}

/// The caller a bearer token names; `None` without one.
fn authenticate(access: &Access, headers: &HeaderMap) -> Result<Option<Caller>, AuthError> {
    match bearer(headers) {
        Some(token) => access.directory.authenticate(token, now_micros()).map(Some),
        None => Ok(None),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who invokes a function: a Vireo key is checked (and removed, so the guest never sees it);
/// any other `Authorization` is the function's own business and passes through untouched.
pub fn invoker(access: &Access, headers: &mut HeaderMap) -> Result<Principal, ApiError> {
    let Some(token) = bearer(headers) else {
        return Ok(Principal::Anonymous);
    };
    let vireo_shaped = token.starts_with(KEY_PREFIX);
    let principal = match access.directory.authenticate(token, now_micros()) {
        Ok(caller) => Principal::Key(caller),
        Err(error) if vireo_shaped => return Err(unauthorized(error)),
        Err(_) => return Ok(Principal::Anonymous),
    };
    headers.remove(header::AUTHORIZATION);
    Ok(principal)
}

/// 404 for namespaces the caller may not see, 403 for what its role may not do there.
pub fn authorize(caller: &Caller, action: Action, namespace: &Name) -> Result<(), ApiError> {
    if !caller.sees(namespace) {
        return Err(hidden(namespace));
    }
    permit(
        caller,
        action,
        &format!("a key allowed to {action:?} in {namespace}").to_lowercase(),
    )
}

fn permit(caller: &Caller, action: Action, needed: &str) -> Result<(), ApiError> {
    if caller.role.permits(action) {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this {} key may not do that; it needs {needed}",
                caller.role.as_str()
            ),
        ))
    }
}

/// The same answer a namespace that does not exist gets.
pub fn hidden(namespace: &Name) -> ApiError {
    StoreError::NamespaceNotFound(namespace.clone()).into()
}

pub fn unauthorized(error: AuthError) -> ApiError {
    let mut refused = ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        error.to_string(),
    );
    refused.ask_for_a_key();
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_tokens_count() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
