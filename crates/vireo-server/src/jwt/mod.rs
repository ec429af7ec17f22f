//! Bearer JWTs for versions with `invoke_auth = {"jwt": ...}`: RS256, ES256 or EdDSA tokens
//! verified against the issuer's keys (inline, or a key set fetched from its URL and kept),
//! with `exp`, `nbf`, `iss` and `aud` checked allowing a little clock skew, and the settings'
//! required claims. The verified claims reach the function in `x-vireo-jwt-claims`. Refusals
//! log the token's `kid` and the expected issuer, never the token.

mod key_sets;

use base64::Engine as _;
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use vireo_core::InvokeError;
use vireo_core::jwt::{CLAIMS_HEADER, CLOCK_SKEW_SECS, JwtAuth};

use key_sets::KeySets;

/// The only algorithms accepted: public-key ones, so a key set never doubles as a secret.
const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

pub struct JwtVerifier {
    key_sets: KeySets,
}

impl JwtVerifier {
    pub fn new() -> Self {
        Self {
            key_sets: KeySets::new(),
        }
    }

    /// Verifies the request's bearer token; on success the claims replace it (the token stays
    /// only with `forward_token`).
    pub async fn admit(&self, auth: &JwtAuth, headers: &mut HeaderMap) -> Result<(), InvokeError> {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                InvokeError::InvalidToken(
                    "this function needs a bearer JWT: send `Authorization: Bearer <token>`"
                        .to_string(),
                )
            })?;
        let claims = self.verify(auth, token).await.map_err(|reason| {
            let kid = decode_header(token).ok().and_then(|header| header.kid);
            tracing::info!(kid, issuer = auth.issuer, %reason, "bearer token refused");
            InvokeError::InvalidToken(reason)
        })?;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).unwrap_or_default());
        let value = http::HeaderValue::from_str(&encoded)
            .map_err(|_| InvokeError::InvalidToken("the token's claims are too odd".into()))?;
        headers.insert(CLAIMS_HEADER, value);
        if !auth.forward_token {
            headers.remove(http::header::AUTHORIZATION);
        }
        Ok(())
    }

    /// The token's claims, or why it is refused.
    async fn verify(&self, auth: &JwtAuth, token: &str) -> Result<Value, String> {
        let header = decode_header(token).map_err(|e| format!("not a usable JWT: {e}"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(format!(
                "tokens signed with {:?} are not accepted; only RS256, ES256 and EdDSA",
                header.alg
            ));
        }
        let kid = header.kid.as_deref();
        let jwk = match &auth.jwks_url {
            Some(url) => self.key_sets.find(url, kid).await?,
            None => inline_key(&auth.keys, kid)?,
        };
        if let Some(declared) = jwk.common.key_algorithm
            && declared != header.alg.into()
        {
            return Err(format!(
                "the key is for {declared:?}, the token says {:?}",
                header.alg
            ));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| format!("the issuer's key is unusable: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&auth.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        if auth.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&auth.audiences);
        }
        let claims = decode::<Value>(token, &key, &validation)
            .map_err(|e| refusal(e.kind()))?
            .claims;
        for (name, wanted) in &auth.required_claims {
            let holds = match claims.get(name) {
                Some(Value::Array(values)) => values.contains(wanted),
                Some(value) => value == wanted,
                None => false,
            };
            if !holds {
                return Err(format!("the token's {name} claim is not {wanted}"));
            }
        }
        Ok(claims)
    }
}

/// The key `kid` among the settings' own keys.
fn inline_key(keys: &[Value], kid: Option<&str>) -> Result<Jwk, String> {
    let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": keys }))
        .map_err(|e| format!("the function's keys are not JSON Web Keys: {e}"))?;
    key_sets::pick(&set, kid)
        .ok_or_else(|| format!("no key with kid {kid:?} among the function's keys"))
}

/// What a caller is told about a token that failed validation.
fn refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_string(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidIssuer => "the token is from another issuer".to_string(),
        ErrorKind::InvalidAudience => "the token is for another audience".to_string(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_string(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit the key".to_string(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        other => format!("the token is invalid: {other:?}"),
    }
}
