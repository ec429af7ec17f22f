//! Presigned URLs: `/presigned/{namespace}/{bucket}/{key…}?expires=…&signature=…` lets whoever
//! holds the URL do one thing to one object — read it (`GET`/`HEAD`) or write it (`PUT`) —
//! until it expires, with no API key, so a browser can upload or download directly. The
//! signature is HMAC-SHA256, under a key every node derives from the shared master key, of the
//! method, the expiry and the object's name; changing any of them breaks it. Answers carry
//! `Access-Control-Allow-Origin: *` (the URL is the credential, so any page may use it) and
//! preflight requests are answered here.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use sha2::Sha256;
use vireo_core::{BucketId, ObjectStore};

use crate::GatewayLimits;
use crate::api::objects::{read_object, write_object};
use crate::error::ApiError;
use crate::extract::{ApiQuery, ObjectPath};
use crate::state::AppState;

/// The longest a URL may stay valid, as S3 allows.
pub const MAX_EXPIRY_SECS: u64 = 7 * 24 * 3600;
/// Where presigned URLs are served.
const PREFIX: &str = "/presigned";
/// Left as they are in a key's path: unreserved characters and the `/` between its parts.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The key presigned URLs are signed with: the same on every node that shares a master key.
#[derive(Clone)]
pub struct PresignKey(Arc<[u8; 32]>);

impl PresignKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Arc::new(key))
    }

    fn mac(&self, method: &Method, expires: u64, bucket: &BucketId, key: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length");
        // The key last: nothing before it holds a newline, so no two names sign alike.
        mac.update(
            format!(
                "{method}\n{expires}\n{}\n{}\n",
                bucket.namespace, bucket.bucket
            )
            .as_bytes(),
        );
        mac.update(key.as_bytes());
        mac
    }

    /// The path and query that let `method` on the object until `expires` (Unix seconds).
    pub fn sign(&self, method: &Method, expires: u64, bucket: &BucketId, key: &str) -> String {
        let signature = hex::encode(
            self.mac(method, expires, bucket, key)
                .finalize()
                .into_bytes(),
        );
        format!(
            "{PREFIX}/{}/{}/{}?expires={expires}&signature={signature}",
            bucket.namespace,
            bucket.bucket,
            utf8_percent_encode(key, KEY_PATH)
        )
    }

    fn verify(
        &self,
        method: &Method,
        signed: &Signed,
        bucket: &BucketId,
        key: &str,
    ) -> Result<(), ApiError> {
        let signature = hex::decode(&signed.signature).unwrap_or_default();
        self.mac(method, signed.expires, bucket, key)
            .verify_slice(&signature)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "invalid_signature",
                    format!(
                        "the URL's signature does not match: the URL was changed, or it was not signed for {method}"
                    ),
                )
            })?;
        let now = vireo_core::time::now_micros().unsigned_abs() / 1_000_000;
        if signed.expires <= now {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "url_expired",
                format!(
                    "the URL expired at {}; ask for a new one",
                    vireo_core::time::rfc3339(
                        i64::try_from(signed.expires)
                            .unwrap_or(i64::MAX)
                            .saturating_mul(1_000_000)
                    )
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    expires: u64,
    signature: String,
}

/// The presigned object routes, open to anyone holding a valid URL.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{PREFIX}/{{namespace}}/{{bucket}}/{{*key}}"),
            any(object),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn(allow_any_origin))
}

async fn object(
    State(objects): State<Arc<dyn ObjectStore>>,
    State(limits): State<GatewayLimits>,
    State(signer): State<PresignKey>,
    path: ObjectPath,
    ApiQuery(signed): ApiQuery<Signed>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let method = parts.method;
    // A HEAD is allowed by a URL signed for GET.
    let signed_for = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    if ![Method::GET, Method::PUT].contains(&signed_for) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on a presigned URL: GET, HEAD or PUT"),
        ));
    }
    signer.verify(&signed_for, &signed, &path.bucket, &path.key)?;
    if method == Method::PUT {
        write_object(&objects, &limits, path, &parts.headers, body).await
    } else {
        read_object(&objects, path, &method, &parts.headers).await
    }
}

/// Lets pages of any origin use presigned URLs, answering their preflight requests here. A
/// preflight's requested headers are allowed as asked (`x-vireo-meta-*` names vary), since the
/// URL, not the page, is what grants access.
async fn allow_any_origin(request: Request, next: Next) -> Response {
    let preflight = (request.method() == Method::OPTIONS).then(|| {
        request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(
                "content-type, range, if-none-match",
            ))
    });
    let mut response = match preflight {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => next.run(request).await,
    };
    let mut allowed = vec![
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
        (
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag, content-length, content-range, x-vireo-created-at-us"),
        ),
    ];
    if let Some(asked) = preflight {
        allowed.extend([
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, PUT"),
            ),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, asked),
            (header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(600)),
        ]);
    }
    response.headers_mut().extend(allowed);
    response
}

#[cfg(test)]
mod tests {
    use vireo_core::Name;

    use super::*;

    fn bucket() -> BucketId {
        BucketId::new(
            Name::parse("n", "team").unwrap(),
            Name::parse("b", "up").unwrap(),
        )
    }

    #[test]
    fn a_signature_covers_the_method_expiry_and_name() {
        let signer = PresignKey::new([7; 32]);
        let url = signer.sign(&Method::PUT, 4_000_000_000, &bucket(), "a b/c.png");
        let (path, query) = url.split_once('?').unwrap();
        assert_eq!(path, "/presigned/team/up/a%20b/c.png");
        let signature = query.split_once("&signature=").unwrap().1.to_string();
        let signed = Signed {
            expires: 4_000_000_000,
            signature,
        };
        assert!(
            signer
                .verify(&Method::PUT, &signed, &bucket(), "a b/c.png")
                .is_ok()
        );
        for (method, key) in [(Method::GET, "a b/c.png"), (Method::PUT, "a b/c.pn")] {
            let refused = signer.verify(&method, &signed, &bucket(), key).unwrap_err();
            assert_eq!(refused.code, "invalid_signature");
        }
        let later = Signed {
            expires: 4_000_000_001,
            ..signed
        };
        let refused = signer.verify(&Method::PUT, &later, &bucket(), "a b/c.png");
        assert_eq!(refused.unwrap_err().code, "invalid_signature");
        let other = PresignKey::new([8; 32]);
        let refused = other.verify(&Method::PUT, &later, &bucket(), "a b/c.png");
        assert_eq!(refused.unwrap_err().code, "invalid_signature");
    }

    #[test]
    fn an_expired_url_is_refused_even_when_signed() {
        let signer = PresignKey::new([7; 32]);
        let url = signer.sign(&Method::GET, 1_000, &bucket(), "k");
        let signature = url.split_once("&signature=").unwrap().1.to_string();
        let signed = Signed {
            expires: 1_000,
            signature,
        };
        let refused = signer
            .verify(&Method::GET, &signed, &bucket(), "k")
            .unwrap_err();
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::FORBIDDEN, "url_expired")
        );
    }
}
