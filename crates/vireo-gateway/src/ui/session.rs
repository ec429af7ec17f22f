//! Logging in and out, and who a request's session cookie stands for. The cookie holds the key's
//! id and the session's end, signed with a key every node derives from the master key, so a
//! session opened on one node works on all; the key itself never reaches the browser after the
//! login form. Each request checks the key again, so revoking it ends its sessions at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Form, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cookie::{Cookie, CookieJar, Key, SameSite};
use maud::html;
use serde::Deserialize;
use vireo_core::time::now_micros;
use vireo_core::{Action, Caller, Catalog, Directory, Name};

use super::csrf::{self, CsrfToken};
use super::error::UiError;
use super::layout;
use crate::auth::authorize;
use crate::extract::FunctionPath;
use crate::state::AppState;

const SESSION_COOKIE: &str = "vireo_session";

/// What the composition root decides about the dashboard.
#[derive(Clone)]
pub struct UiSettings {
    /// Signs the session and CSRF cookies; derived from the master key, so equal on every node.
    pub cookie_key: [u8; 64],
    /// How long a session lasts after logging in.
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
}

/// The signing key and the keys' directory, shared by the dashboard's handlers.
pub(crate) struct Sessions {
    key: Key,
    ttl: Duration,
    secure: bool,
    directory: Arc<Directory>,
}

impl Sessions {
    pub fn new(settings: UiSettings, directory: Arc<Directory>) -> Self {
        Self {
            key: Key::from(&settings.cookie_key),
            ttl: settings.session_ttl,
            secure: settings.secure_cookies,
            directory,
        }
    }

    /// The value of a cookie this server signed, if the request carries it untampered.
    pub fn signed_value(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        let mut jar = CookieJar::new();
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for cookie in Cookie::split_parse_encoded(value.to_owned()).flatten() {
                jar.add_original(cookie);
            }
        }
        jar.signed(&self.key)
            .get(name)
            .map(|cookie| cookie.value().to_owned())
    }

    /// A `Set-Cookie` value for a signed cookie under `/ui`, or one removing it (`None`).
    pub fn set_cookie(&self, name: &'static str, value: Option<String>) -> HeaderValue {
        let mut jar = CookieJar::new();
        let mut cookie = Cookie::build((name, value.clone().unwrap_or_default()))
            .path("/ui")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict);
        cookie = match value {
            Some(_) => cookie.max_age(cookie_duration(self.ttl)),
            None => cookie.max_age(cookie::time::Duration::ZERO),
        };
        jar.signed_mut(&self.key).add(cookie);
        let signed = jar
            .get(name)
            .expect("the cookie was just added")
            .encoded()
            .to_string();
        HeaderValue::from_str(&signed).expect("an encoded cookie is a valid header value")
    }

    /// The caller a request's session stands for, if it has a live one.
    fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let value = self.signed_value(headers, SESSION_COOKIE)?;
        let (key_id, ends_at) = value.split_once('.')?;
        let now = now_micros();
        if ends_at.parse::<i64>().ok()? <= now {
            return None;
        }
        self.directory.caller(key_id, now).ok()
    }
}

fn cookie_duration(ttl: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

/// The logged-in caller of a dashboard request, with the CSRF token its forms carry. Without a
/// live session, pages redirect to the login form.
pub(crate) struct Viewer {
    pub caller: Caller,
    pub csrf: CsrfToken,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.caller.role.permits(Action::Admin)
    }

    /// Whether the caller may change things in `namespace`: the buttons that do are shown only
    /// then (the handlers check again).
    pub fn may_write(&self, namespace: &Name) -> bool {
        self.caller.may(Action::Write, namespace)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, UiError> {
        let sessions = sessions(parts);
        let caller = sessions.caller(&parts.headers).ok_or(UiError::LoggedOut)?;
        let csrf = csrf::token(&sessions, &parts.headers).ok_or(UiError::LoggedOut)?;
        Ok(Self { caller, csrf })
    }
}

/// A function the session's key may read, checked to exist: what every page about one function
/// starts from.
pub(crate) struct SeenFunction {
    pub viewer: Viewer,
    pub namespace: Name,
    pub function: Name,
}

impl FromRequestParts<AppState> for SeenFunction {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let FunctionPath {
            namespace,
            function,
        } = FunctionPath::from_request_parts(parts, state).await?;
        authorize(&viewer.caller, Action::Read, &namespace)?;
        let catalog = Arc::<dyn Catalog>::from_ref(state);
        catalog.get_function(&namespace, &function).await?;
        Ok(Self {
            viewer,
            namespace,
            function,
        })
    }
}

fn sessions(parts: &Parts) -> Arc<Sessions> {
    parts
        .extensions
        .get::<Arc<Sessions>>()
        .expect("the dashboard router adds its sessions to every request")
        .clone()
}

/// The login form; it sets the CSRF cookie its post needs.
pub(crate) async fn login_page(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
) -> Response {
    let (token, set_cookie) = csrf::token_or_new(&sessions, &headers);
    let mut response = login_form(&token, None).into_response();
    if let Some(set_cookie) = set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie);
    }
    response
}

fn login_form(csrf: &CsrfToken, refused: Option<&str>) -> Html<String> {
    layout::page(
        "Log in",
        None,
        html! {
            h1 { "Log in to Vireo" }
            @if let Some(refused) = refused {
                p.error role="alert" { (refused) }
            }
            form.login method="post" action="/ui/login" {
                (csrf.field())
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="off" required autofocus;
                button type="submit" { "Log in" }
            }
            p.hint {
                "Use a key made with " code { "vireo keys create" } ". The key is sent once; the "
                "browser keeps only a session cookie."
            }
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
}

pub(crate) async fn log_in(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let now = now_micros();
    let caller = match sessions.directory.authenticate(form.key.trim(), now) {
        Ok(caller) => caller,
        Err(refused) => {
            let (token, _) = csrf::token_or_new(&sessions, &headers);
            let message = format!("That key was not accepted: {refused}");
            return (StatusCode::UNAUTHORIZED, login_form(&token, Some(&message))).into_response();
        }
    };
    let ttl_us = i64::try_from(sessions.ttl.as_micros()).unwrap_or(i64::MAX);
    let session = format!("{}.{}", caller.key_id, now.saturating_add(ttl_us));
    let mut response = Redirect::to("/ui").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        sessions.set_cookie(SESSION_COOKIE, Some(session)),
    );
    // A fresh token for the new session, so one planted before the login is worth nothing.
    headers.append(header::SET_COOKIE, csrf::new_cookie(&sessions).1);
    response
}

pub(crate) async fn log_out(Extension(sessions): Extension<Arc<Sessions>>) -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        sessions.set_cookie(SESSION_COOKIE, None),
    );
    headers.append(header::SET_COOKIE, csrf::removal(&sessions));
    response
}
