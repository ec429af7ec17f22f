//! CSRF protection for every state change of the dashboard: each form carries a random token
//! that must equal the one in the browser's signed, HttpOnly, SameSite=Strict cookie. Another
//! site can make a browser post, but cannot read the cookie to put its token in the form, so a
//! post without the matching token is refused here, before any handler runs.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use subtle::ConstantTimeEq as _;

use super::error::UiError;
use super::session::Sessions;

const CSRF_COOKIE: &str = "vireo_csrf";
/// The form field that carries the token.
const FIELD: &str = "csrf";
/// The dashboard's forms are small; a larger body is refused unread.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The token a session's forms carry.
#[derive(Clone)]
pub(crate) struct CsrfToken(String);

impl CsrfToken {
    /// The hidden form field carrying the token.
    pub fn field(&self) -> Markup {
        html! { input type="hidden" name=(FIELD) value=(self.0); }
    }
}

/// The request's token, if its cookie carries one this server signed.
pub(crate) fn token(sessions: &Sessions, headers: &HeaderMap) -> Option<CsrfToken> {
    sessions.signed_value(headers, CSRF_COOKIE).map(CsrfToken)
}

/// The request's token, or a new one with the `Set-Cookie` that hands it to the browser.
pub(crate) fn token_or_new(
    sessions: &Sessions,
    headers: &HeaderMap,
) -> (CsrfToken, Option<HeaderValue>) {
    match token(sessions, headers) {
        Some(token) => (token, None),
        None => {
            let (token, cookie) = new_cookie(sessions);
            (token, Some(cookie))
        }
    }
}

/// A fresh random token and its cookie.
pub(crate) fn new_cookie(sessions: &Sessions) -> (CsrfToken, HeaderValue) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let cookie = sessions.set_cookie(CSRF_COOKIE, Some(token.clone()));
    (CsrfToken(token), cookie)
}

pub(crate) fn removal(sessions: &Sessions) -> HeaderValue {
    sessions.set_cookie(CSRF_COOKIE, None)
}

/// Lets reads through; a request that changes state must be a form whose token matches the
/// cookie's, or it is answered 403 without reaching its handler.
pub(crate) async fn verify(
    State(sessions): State<Arc<Sessions>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return UiError::Page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That form was too large.".into(),
        )
        .into_response();
    };
    let expected = token(&sessions, &parts.headers);
    let presented = form_field(&bytes, FIELD);
    let matches = match (&expected, &presented) {
        (Some(expected), Some(presented)) => {
            bool::from(expected.0.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    };
    if !matches {
        return UiError::Page(
            StatusCode::FORBIDDEN,
            "This form's CSRF token is missing or does not match this browser's session: reload \
             the page and try again."
                .into(),
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The first value of `name` in a URL-encoded form.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(field, value)| (field == name).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_form() {
        assert_eq!(
            form_field(b"version=2&csrf=a%2Bb", FIELD).as_deref(),
            Some("a+b")
        );
        assert_eq!(form_field(b"version=2", FIELD), None);
        assert_eq!(form_field(b"\xff=&&", FIELD), None);
    }
}
