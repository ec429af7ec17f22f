//! Weighted aliases: an alias may send its traffic to several versions by weight (a canary).
//! Without a sticky key each request draws at random; with one, the key picks the version by
//! weighted rendezvous hashing, so a key stays on its version while the weights stay, and when
//! a canary's share rises only keys moving *to* it change version, never the reverse.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The header that names the version that ran on every answer, and that a caller allowed to
/// invoke may send to reach one version of a split alias (even one at 0 %).
pub const VERSION_HEADER: &str = "x-vireo-version";

/// At most this many versions behind one alias.
pub const MAX_SPLIT_VERSIONS: usize = 8;

/// One version behind an alias and its share of the traffic, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedVersion {
    pub version: u32,
    pub weight: u8,
}

/// Where a sticky alias finds a caller's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StickyKey {
    /// A request header, such as `x-user-id`.
    Header(String),
    /// A cookie, such as `session`.
    Cookie(String),
}

/// What an alias points at: one version, or several by weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    pub versions: Vec<WeightedVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyKey>,
}

/// An alias target that cannot be stored; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSplit(String);

impl AliasTarget {
    /// All traffic to `version`.
    pub fn single(version: u32) -> Self {
        Self {
            versions: vec![WeightedVersion {
                version,
                weight: 100,
            }],
            sticky: None,
        }
    }

    /// Whether all traffic goes to one version, with nothing else to remember.
    pub fn is_single(&self) -> bool {
        self.versions.len() == 1 && self.sticky.is_none()
    }

    pub fn validate(&self) -> Result<(), InvalidSplit> {
        let count = self.versions.len();
        if count == 0 || count > MAX_SPLIT_VERSIONS {
            return Err(InvalidSplit(format!(
                "an alias points at 1 to {MAX_SPLIT_VERSIONS} versions, not {count}"
            )));
        }
        for (i, arm) in self.versions.iter().enumerate() {
            if self.versions[..i].iter().any(|o| o.version == arm.version) {
                return Err(InvalidSplit(format!(
                    "version {} is named twice",
                    arm.version
                )));
            }
        }
        let total: u32 = self.versions.iter().map(|arm| u32::from(arm.weight)).sum();
        if total != 100 {
            return Err(InvalidSplit(format!(
                "the weights of an alias's versions must sum to 100, not {total}"
            )));
        }
        if let Some(StickyKey::Header(name) | StickyKey::Cookie(name)) = &self.sticky
            && (name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err())
        {
            return Err(InvalidSplit(format!(
                "{name:?} is not a valid sticky header or cookie name"
            )));
        }
        Ok(())
    }

    /// The version with the largest share (the newest on a tie): what the alias names where
    /// one version must stand for it (listings, `resolve`).
    pub fn primary(&self) -> u32 {
        self.versions
            .iter()
            .max_by_key(|arm| (arm.weight, arm.version))
            .map_or(0, |arm| arm.version)
    }

    pub fn contains(&self, version: u32) -> bool {
        self.versions.iter().any(|arm| arm.version == version)
    }

    /// The version a request with these headers goes to.
    pub fn choose(&self, headers: &HeaderMap) -> u32 {
        match self
            .sticky
            .as_ref()
            .and_then(|sticky| sticky_key(sticky, headers))
        {
            Some(key) => self.choose_for_key(key.as_bytes()),
            None => self.choose_at_random(fastrand::u8(0..100)),
        }
    }

    /// Weighted rendezvous hashing: each version scores `-ln(u) / weight`, with `u` a uniform
    /// number fixed by the key and the version; the lowest score wins. A version wins with
    /// probability weight / 100, and a key moves from version A to B only when B's weight
    /// grew relative to A's: raising a canary's share (the others shrinking in proportion)
    /// only moves keys to the canary, never back.
    pub fn choose_for_key(&self, key: &[u8]) -> u32 {
        self.versions
            .iter()
            .filter(|arm| arm.weight > 0)
            .map(|arm| {
                (
                    rendezvous_score(key, arm.version) / f64::from(arm.weight),
                    arm,
                )
            })
            .min_by(|(a, _), (b, _)| a.total_cmp(b))
            .map_or_else(|| self.primary(), |(_, arm)| arm.version)
    }

    /// `draw` is uniform in 0..100.
    fn choose_at_random(&self, draw: u8) -> u32 {
        let mut below = 0u32;
        for arm in &self.versions {
            below += u32::from(arm.weight);
            if u32::from(draw) < below {
                return arm.version;
            }
        }
        self.primary()
    }
}

/// `-ln(u)` for `u` in (0, 1) derived from the key and version: stable across nodes and
/// releases, as SHA-256 is.
fn rendezvous_score(key: &[u8], version: u32) -> f64 {
    let digest = Sha256::new()
        .chain_update(version.to_be_bytes())
        .chain_update(key)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 random bits, offset by half a step so u is never 0.
    let u = ((u64::from_be_bytes(first) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -u.ln()
}

/// The caller's key, when it sent one.
fn sticky_key<'a>(sticky: &StickyKey, headers: &'a HeaderMap) -> Option<&'a str> {
    match sticky {
        StickyKey::Header(name) => headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty()),
        StickyKey::Cookie(name) => headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(cookie, _)| cookie == name)
            .map(|(_, value)| value)
            .filter(|v| !v.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(weights: &[(u32, u8)]) -> AliasTarget {
        AliasTarget {
            versions: weights
                .iter()
                .map(|&(version, weight)| WeightedVersion { version, weight })
                .collect(),
            sticky: Some(StickyKey::Header("x-user-id".into())),
        }
    }

    #[test]
    fn invalid_splits_are_refused() {
        assert!(split(&[(7, 95), (8, 5)]).validate().is_ok());
        assert!(split(&[(7, 100), (8, 0)]).validate().is_ok());
        assert!(split(&[(7, 90), (8, 5)]).validate().is_err());
        assert!(split(&[(7, 50), (7, 50)]).validate().is_err());
        assert!(split(&[]).validate().is_err());
        let mut bad_key = split(&[(7, 100)]);
        bad_key.sticky = Some(StickyKey::Header("bad header".into()));
        assert!(bad_key.validate().is_err());
    }

    #[test]
    fn the_primary_version_has_the_largest_share() {
        assert_eq!(split(&[(7, 95), (8, 5)]).primary(), 7);
        assert_eq!(split(&[(7, 50), (8, 50)]).primary(), 8);
    }

    #[test]
    fn keys_spread_by_weight_and_keep_their_version() {
        let canary = split(&[(7, 90), (8, 10)]);
        let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let on_new = keys
            .iter()
            .filter(|k| canary.choose_for_key(k.as_bytes()) == 8)
            .count();
        assert!((800..=1200).contains(&on_new), "{on_new} of 10000 on 10 %");
        for key in &keys[..100] {
            let first = canary.choose_for_key(key.as_bytes());
            assert_eq!(canary.choose_for_key(key.as_bytes()), first);
        }
    }

    /// Each plan raises version 8's share while the others keep their proportions.
    fn assert_keys_only_move_to_8(steps: &[AliasTarget]) {
        let mut moved = 0;
        for key in (0..5_000).map(|i| format!("k{i}")) {
            for pair in steps.windows(2) {
                let before = pair[0].choose_for_key(key.as_bytes());
                let after = pair[1].choose_for_key(key.as_bytes());
                assert!(after == before || after == 8, "{key}: {before} -> {after}");
                moved += usize::from(after != before);
            }
        }
        assert!(moved > 0, "no key moved at all");
    }

    #[test]
    fn raising_the_canary_only_moves_keys_to_it() {
        assert_keys_only_move_to_8(&[
            split(&[(7, 95), (8, 5)]),
            split(&[(7, 80), (8, 20)]),
            split(&[(7, 50), (8, 50)]),
            split(&[(7, 0), (8, 100)]),
        ]);
        assert_keys_only_move_to_8(&[
            split(&[(6, 60), (7, 30), (8, 10)]),
            split(&[(6, 40), (7, 20), (8, 40)]),
            split(&[(6, 20), (7, 10), (8, 70)]),
        ]);
    }

    #[test]
    fn random_draws_follow_the_weights() {
        let canary = split(&[(7, 95), (8, 5)]);
        let on_new = (0..100u8)
            .filter(|&draw| canary.choose_at_random(draw) == 8)
            .count();
        assert_eq!(on_new, 5);
        assert_eq!(split(&[(7, 100), (8, 0)]).choose_at_random(99), 7);
    }

    #[test]
    fn the_key_comes_from_the_header_or_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user-id", "alice".parse().unwrap());
        headers.insert(http::header::COOKIE, "a=1; session=s42".parse().unwrap());
        let header = StickyKey::Header("x-user-id".into());
        let cookie = StickyKey::Cookie("session".into());
        assert_eq!(sticky_key(&header, &headers), Some("alice"));
        assert_eq!(sticky_key(&cookie, &headers), Some("s42"));
        assert_eq!(
            sticky_key(&StickyKey::Cookie("none".into()), &headers),
            None
        );
    }
}
