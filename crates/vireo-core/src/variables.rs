//! Configuration variables: named values a version's function reads through `wasi:config/store`
//! or `fermyon:spin/variables`, given as text or bound to a secret of the namespace (opened when
//! the version loads, like a granted secret).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secrets::SecretName;

const MAX_VARIABLES: usize = 256;
const MAX_VARIABLE_BYTES: usize = 64 * 1024;
const MAX_NAME_LEN: usize = 128;

/// A variable's value: `"text"`, or `{"secret": "NAME"}` for a secret of the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum VariableValue {
    Text(String),
    Secret(SecretRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[schema(value_type = String)]
    pub secret: SecretName,
}

/// Spin's rule, so a Spin application's names carry over: lowercase ASCII letters, digits and
/// `_`, starting with a letter.
pub fn is_variable_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The variables' own bounds; the message names what is wrong.
pub fn check(variables: &BTreeMap<String, VariableValue>) -> Result<(), String> {
    if variables.len() > MAX_VARIABLES {
        return Err(format!("at most {MAX_VARIABLES} variables are allowed"));
    }
    if let Some(name) = variables.keys().find(|name| !is_variable_name(name)) {
        return Err(format!(
            "invalid variable name {name:?}: use lowercase letters, digits and _, starting with a letter (at most {MAX_NAME_LEN})"
        ));
    }
    let bytes: usize = variables
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    VariableValue::Text(text) => text.len(),
                    VariableValue::Secret(_) => 0,
                }
        })
        .sum();
    if bytes > MAX_VARIABLE_BYTES {
        return Err(format!(
            "variables may total at most {MAX_VARIABLE_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The secrets the variables are bound to.
pub fn secrets(variables: &BTreeMap<String, VariableValue>) -> impl Iterator<Item = &SecretName> {
    variables.values().filter_map(|value| match value {
        VariableValue::Secret(bound) => Some(&bound.secret),
        VariableValue::Text(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_text_or_a_secret_reference() {
        let parsed: BTreeMap<String, VariableValue> = serde_json::from_str(
            r#"{"api_url": "https://api.example.com", "db_password": {"secret": "DB_PASSWORD"}}"#,
        )
        .unwrap();
        assert_eq!(
            parsed["api_url"],
            VariableValue::Text("https://api.example.com".into())
        );
        assert_eq!(
            secrets(&parsed).map(SecretName::as_str).collect::<Vec<_>>(),
            ["DB_PASSWORD"]
        );
        check(&parsed).unwrap();
        assert!(serde_json::from_str::<VariableValue>(r#"{"secret": "x-y"}"#).is_err());
        assert!(serde_json::from_str::<VariableValue>(r#"{"secret": "A", "extra": 1}"#).is_err());
        assert!(serde_json::from_str::<VariableValue>("42").is_err());
    }

    #[test]
    fn names_follow_spins_rule() {
        for good in ["a", "api_url", "x9", "db_password_2"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "Api", "9x", "_x", "a-b", "a.b", &"a".repeat(129)] {
            assert!(!is_variable_name(bad), "{bad}");
        }
        let named =
            |name: &str| BTreeMap::from([(name.to_string(), VariableValue::Text("v".into()))]);
        assert!(
            check(&named("API"))
                .unwrap_err()
                .contains("invalid variable name")
        );
        let big = BTreeMap::from([("big".to_string(), VariableValue::Text("x".repeat(70_000)))]);
        assert!(check(&big).unwrap_err().contains("at most"));
    }
}
