//! JSON Web Key Sets fetched from their issuers' URLs, kept in memory per URL. A token whose
//! `kid` is not in the kept set makes one fetch, at most every [`REFETCH_INTERVAL`] per URL, so
//! a flood of tokens with made-up kids cannot turn into a flood of fetches; a set is also
//! fetched again once it is [`MAX_AGE`] old.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Mutex;

/// The least time between two fetches of one URL.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long a fetched set is used before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(600);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set taken.
const MAX_SET_BYTES: usize = 256 * 1024;

#[derive(Default)]
struct Kept {
    set: Option<Arc<JwkSet>>,
    fetched_at: Option<Instant>,
}

pub struct KeySets {
    http: reqwest::Client,
    /// One entry per URL, each behind its own lock so concurrent misses fetch once.
    kept: std::sync::Mutex<HashMap<String, Arc<Mutex<Kept>>>>,
}

impl KeySets {
    pub fn new() -> Self {
        // reqwest's rustls needs a process-wide provider: ring, as for the server's own TLS.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            http,
            kept: std::sync::Mutex::default(),
        }
    }

    /// The key `kid` (or, without a kid, the only key) of the set at `url`.
    pub async fn find(&self, url: &str, kid: Option<&str>) -> Result<Jwk, String> {
        let entry = self
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(url.to_string())
            .or_default()
            .clone();
        let mut kept = entry.lock().await;
        let fresh = kept.fetched_at.is_some_and(|at| at.elapsed() < MAX_AGE);
        if let Some(set) = kept.set.as_ref().filter(|_| fresh)
            && let Some(key) = pick(set, kid)
        {
            return Ok(key);
        }
        let may_fetch = kept
            .fetched_at
            .is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL);
        if may_fetch {
            kept.fetched_at = Some(Instant::now());
            match self.fetch(url).await {
                Ok(set) => kept.set = Some(Arc::new(set)),
                Err(error) => tracing::warn!(jwks_url = url, %error, "fetching a key set failed"),
            }
        }
        let Some(set) = &kept.set else {
            return Err(format!("the key set at {url} could not be fetched"));
        };
        pick(set, kid).ok_or_else(|| match kid {
            Some(kid) => format!("no key with kid {kid:?} in the issuer's key set"),
            None => "the token names no kid and the key set has more than one key".to_string(),
        })
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_SET_BYTES {
                return Err(format!("the key set is larger than {MAX_SET_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("not a JSON Web Key Set: {e}"))
    }
}

/// The key `kid` of `set`, or its only key when the token names none.
pub fn pick(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}
