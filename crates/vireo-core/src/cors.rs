//! Per-function CORS: Vireo answers browsers' preflights for a function that configures CORS,
//! without running it, and adds the `Access-Control-*` headers to its answers to allowed
//! origins. Without a configuration, requests (preflights included) reach the function as they
//! are, so it may do CORS itself.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

const DEFAULT_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins allowed to call, e.g. `https://app.example.com`, or `*` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for (default GET, HEAD, POST, PUT, PATCH, DELETE).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (default: none beyond the CORS-safelisted ones).
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers the browser lets the page read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer, seconds.
    #[serde(default)]
    pub max_age_secs: Option<u32>,
    /// Whether the page may send cookies; not allowed with the `*` origin.
    #[serde(default)]
    pub allow_credentials: bool,
}

/// CORS settings that cannot work; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCors(String);

impl CorsSettings {
    pub fn validate(&self) -> Result<(), InvalidCors> {
        let fail = |message: String| Err(InvalidCors(message));
        if self.allow_origins.is_empty() {
            return fail("cors.allow_origins must name at least one origin (or \"*\")".into());
        }
        for origin in &self.allow_origins {
            if origin != "*" && !valid_origin(origin) {
                return fail(format!(
                    "cors.allow_origins: {origin:?} is not an origin like https://app.example.com (scheme, host, optional port; no path)"
                ));
            }
        }
        if self.allow_credentials && self.allow_origins.iter().any(|o| o == "*") {
            return fail("cors.allow_credentials cannot be combined with the \"*\" origin".into());
        }
        let tokens = self
            .allow_methods
            .iter()
            .chain(&self.allow_headers)
            .chain(&self.expose_headers);
        if let Some(bad) = tokens.into_iter().find(|t| !valid_token(t)) {
            return fail(format!(
                "cors: {bad:?} is not a valid method or header name"
            ));
        }
        Ok(())
    }

    /// The origin to echo back, when it is an allowed one.
    fn allowed_origin<'a>(&self, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        self.allow_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(text))
            .then_some(origin)
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`),
    /// or `None` when the request is not one. A disallowed origin or method gets 403.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<http::response::Parts> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let requested = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .unwrap_or_default();
        let method_ok = if self.allow_methods.is_empty() {
            DEFAULT_METHODS.split(", ").any(|m| m == requested)
        } else {
            self.allow_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(requested))
        };
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts
            .headers
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        let origin = self.allowed_origin(headers.get(header::ORIGIN));
        let Some(origin) = origin.filter(|_| method_ok) else {
            parts.status = StatusCode::FORBIDDEN;
            return Some(parts);
        };
        parts.status = StatusCode::NO_CONTENT;
        let methods = if self.allow_methods.is_empty() {
            DEFAULT_METHODS.to_string()
        } else {
            self.allow_methods.join(", ")
        };
        self.common(origin.clone(), &mut parts.headers);
        insert(
            &mut parts.headers,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &methods,
        );
        if !self.allow_headers.is_empty() {
            insert(
                &mut parts.headers,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &self.allow_headers.join(", "),
            );
        }
        if let Some(age) = self.max_age_secs {
            parts
                .headers
                .insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        Some(parts)
    }

    /// Adds the `Access-Control-*` headers to a function's answer to a request from `origin`
    /// (its `Origin` header), if that is allowed.
    pub fn decorate(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) {
        let Some(origin) = self.allowed_origin(origin) else {
            return;
        };
        self.common(origin.clone(), response);
        if !self.expose_headers.is_empty() {
            insert(
                response,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                &self.expose_headers.join(", "),
            );
        }
        response.append(header::VARY, HeaderValue::from_static("Origin"));
    }

    fn common(&self, origin: HeaderValue, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// Validation keeps every value a valid header value, so this cannot fail for stored settings.
fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

fn valid_token(token: &str) -> bool {
    !token.is_empty() && header::HeaderName::from_bytes(token.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CorsSettings {
        CorsSettings {
            allow_origins: vec!["https://app.example.com".into()],
            allow_methods: vec![],
            allow_headers: vec!["x-token".into()],
            expose_headers: vec!["x-total".into()],
            max_age_secs: Some(600),
            allow_credentials: true,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn preflights_from_allowed_origins_are_answered() {
        let request = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
        ]);
        let answer = settings().preflight(&Method::OPTIONS, &request).unwrap();
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert_eq!(
            answer.headers["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert_eq!(answer.headers["access-control-allow-headers"], "x-token");
        assert_eq!(answer.headers["access-control-max-age"], "600");
        assert_eq!(answer.headers["access-control-allow-credentials"], "true");

        let other = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ]);
        let refused = settings().preflight(&Method::OPTIONS, &other).unwrap();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(!refused.headers.contains_key("access-control-allow-origin"));
        let plain_options = headers(&[("origin", "https://app.example.com")]);
        assert!(
            settings()
                .preflight(&Method::OPTIONS, &plain_options)
                .is_none()
        );
    }

    #[test]
    fn answers_to_allowed_origins_get_the_headers() {
        let mut response = HeaderMap::new();
        let allowed = HeaderValue::from_static("https://app.example.com");
        settings().decorate(Some(&allowed), &mut response);
        assert_eq!(response["access-control-expose-headers"], "x-total");
        let mut untouched = HeaderMap::new();
        let evil = HeaderValue::from_static("https://evil.example");
        settings().decorate(Some(&evil), &mut untouched);
        settings().decorate(None, &mut untouched);
        assert!(untouched.is_empty());
    }

    #[test]
    fn bad_settings_are_named() {
        let mut bad = settings();
        bad.allow_origins = vec!["*".into()];
        let refused = |bad: &CorsSettings| bad.validate().unwrap_err().to_string();
        assert!(refused(&bad).contains("allow_credentials"));
        bad.allow_origins = vec!["app.example.com/path".into()];
        assert!(refused(&bad).contains("not an origin"));
        assert!(settings().validate().is_ok());
    }
}
