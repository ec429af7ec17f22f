//! `invoke_auth = {"jwt": {...}}`: what a version asks of the bearer tokens its callers send.
//! The settings only; verifying signatures is the server's (it holds the key sets).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The header the verified claims reach the function in: base64url (unpadded) JSON.
pub const CLAIMS_HEADER: &str = "x-vireo-jwt-claims";

/// Seconds a token's `exp` and `nbf` may be off, for clocks that differ a little.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// Where a version's callers' tokens come from and what they must say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtAuth {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Tokens must name one of these in `aud` (not checked when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// An http(s) URL serving the issuer's JSON Web Key Set, fetched when first needed, kept,
    /// and fetched again (at most every few seconds) when a token names an unknown `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The public keys as JSON Web Keys, instead of `jwks_url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
    /// Claims every token must have with these values (or, for an array claim, contain them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub required_claims: BTreeMap<String, serde_json::Value>,
    /// Leave the `Authorization` header for the function too (it is removed by default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forward_token: bool,
}

impl JwtAuth {
    /// The settings' own shape; whether the keys are usable is checked when they are parsed.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuer.trim().is_empty() {
            return Err("invoke_auth.jwt.issuer must not be empty".to_string());
        }
        match (&self.jwks_url, self.keys.is_empty()) {
            (Some(url), true) if url.starts_with("https://") || url.starts_with("http://") => {
                Ok(())
            }
            (Some(url), true) => Err(format!(
                "invoke_auth.jwt.jwks_url must be an http(s) URL, got {url:?}"
            )),
            (None, false) => Ok(()),
            _ => Err("invoke_auth.jwt needs exactly one of jwks_url and keys".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(jwks_url: Option<&str>, keys: Vec<serde_json::Value>) -> JwtAuth {
        JwtAuth {
            issuer: "https://id.example.com".into(),
            audiences: vec![],
            jwks_url: jwks_url.map(str::to_string),
            keys,
            required_claims: BTreeMap::new(),
            forward_token: false,
        }
    }

    #[test]
    fn one_source_of_keys_is_needed() {
        assert!(
            jwt(Some("https://id.example.com/jwks"), vec![])
                .validate()
                .is_ok()
        );
        assert!(
            jwt(None, vec![serde_json::json!({"kty": "OKP"})])
                .validate()
                .is_ok()
        );
        assert!(jwt(None, vec![]).validate().is_err());
        assert!(jwt(Some("file:///etc/keys"), vec![]).validate().is_err());
        let both = jwt(Some("https://a/"), vec![serde_json::json!({})]);
        assert!(both.validate().is_err());
    }
}
