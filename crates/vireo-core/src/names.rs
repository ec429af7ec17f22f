//! Validated names for namespaces, functions and aliases, and the `@version` selector.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The rule for every namespace and function name: `[a-z0-9][a-z0-9-]{0,62}`.
pub const NAME_RULE: &str = "[a-z0-9][a-z0-9-]{0,62}";
/// The same rule anchored, as the OpenAPI document gives it (aliases and version selectors
/// follow it too; they are further checked not to be, or to be, all digits).
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// A name that is not a valid namespace, function or alias name; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {value:?}: names must match {NAME_RULE}{extra}")]
pub struct InvalidName {
    pub kind: &'static str,
    pub value: String,
    extra: &'static str,
}

/// A namespace or function name: `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn parse(kind: &'static str, value: &str) -> Result<Self, InvalidName> {
        let bytes = value.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidName {
                kind,
                value: value.to_string(),
                extra: "",
            })
        }
    }

    /// The namespace every installation has.
    pub fn default_namespace() -> Self {
        Self("default".to_string())
    }

    /// The key-value store every namespace has without creating it.
    pub fn default_kv_store() -> Self {
        Self("default".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("function", &value)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An alias of a function (`prod`, `canary`): a valid name that is not all digits, so that
/// `@3` always means version 3. `latest` is managed by Vireo and cannot be set by hand.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AliasName(String);

impl AliasName {
    pub const LATEST: &'static str = "latest";

    pub fn parse(value: &str) -> Result<Self, InvalidName> {
        let name = Name::parse("alias", value)?;
        if name.0.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidName {
                kind: "alias",
                value: value.to_string(),
                extra: " and must not be all digits (those select a version)",
            });
        }
        Ok(Self(name.0))
    }

    pub fn latest() -> Self {
        Self(Self::LATEST.to_string())
    }

    pub fn is_latest(&self) -> bool {
        self.0 == Self::LATEST
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AliasName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AliasName> for String {
    fn from(alias: AliasName) -> Self {
        alias.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub(crate) fn is_env_var_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Which version of a function a request addresses: `hello`, `hello@3` or `hello@prod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    Number(u32),
    Alias(AliasName),
}

impl VersionSelector {
    /// Splits `function[@selector]`; no selector means the `latest` alias.
    pub fn split_target(target: &str) -> Result<(Name, VersionSelector), InvalidName> {
        let (function, selector) = match target.split_once('@') {
            Some((function, selector)) => (function, selector.parse()?),
            None => (target, VersionSelector::Alias(AliasName::latest())),
        };
        Ok((Name::parse("function", function)?, selector))
    }
}

impl FromStr for VersionSelector {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(VersionSelector::Number)
                .map_err(|_| InvalidName {
                    kind: "version",
                    value: s.to_string(),
                    extra: " (version numbers are 1 to 4294967295)",
                });
        }
        AliasName::parse(s).map(VersionSelector::Alias)
    }
}

impl fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSelector::Number(n) => write!(f, "{n}"),
            VersionSelector::Alias(alias) => write!(f, "{alias}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "hello", "0", "hello-world-2", &"a".repeat(63)] {
            assert!(Name::parse("function", ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", "-a", "Hello", "a_b", "a.b", "a/b", "ä", &"a".repeat(64)] {
            let err = Name::parse("function", bad).unwrap_err();
            assert!(err.to_string().contains(NAME_RULE), "{err}");
        }
    }

    #[test]
    fn the_pattern_is_the_rule() {
        assert_eq!(NAME_PATTERN, format!("^{NAME_RULE}$"));
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        for sample in [
            "a",
            "0",
            "a-b",
            "-a",
            "A",
            "a_b",
            "",
            &"a".repeat(63),
            &"a".repeat(64),
        ] {
            assert_eq!(
                pattern.is_match(sample),
                Name::parse("function", sample).is_ok(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn aliases_cannot_look_like_versions() {
        assert!(AliasName::parse("prod").is_ok());
        assert!(AliasName::parse("v2").is_ok());
        assert!(
            AliasName::parse("2")
                .unwrap_err()
                .to_string()
                .contains("all digits")
        );
    }

    #[test]
    fn targets_split_into_function_and_selector() {
        let (name, selector) = VersionSelector::split_target("hello").unwrap();
        assert_eq!(name.as_str(), "hello");
        assert_eq!(selector, VersionSelector::Alias(AliasName::latest()));
        let (_, selector) = VersionSelector::split_target("hello@3").unwrap();
        assert_eq!(selector, VersionSelector::Number(3));
        let (_, selector) = VersionSelector::split_target("hello@prod").unwrap();
        assert_eq!(
            selector,
            VersionSelector::Alias(AliasName::parse("prod").unwrap())
        );
        assert!(VersionSelector::split_target("hello@").is_err());
        assert!(VersionSelector::split_target("hello@99999999999").is_err());
        assert!(VersionSelector::split_target("Hello@1").is_err());
    }
}
