//! What a deploy's settings mean: the fields it gives over the latest version's settings (or
//! the defaults, for a function's first version or when it asks to start from them), so a
//! plain redeploy never drops a setting such as `invoke_auth` or a rate limit.

use serde_json::{Map, Value};
use vireo_core::VersionSettings;
pub use vireo_core::settings::SettingChange;

use crate::error::ApiError;

/// `given` (a JSON object of settings) over `base`, validated as settings.
pub fn settings_over(base: &VersionSettings, given: &[u8]) -> Result<VersionSettings, ApiError> {
    let invalid =
        |detail: String| ApiError::invalid_settings(format!("invalid settings JSON: {detail}"));
    let given: Map<String, Value> = if given.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        serde_json::from_slice(given).map_err(|e| invalid(e.to_string()))?
    };
    let mut merged = vireo_core::settings::settings_object(base);
    merged.extend(given);
    serde_json::from_value(Value::Object(merged)).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vireo_core::InvokeAuth;

    use super::*;

    #[test]
    fn given_fields_replace_the_base_and_the_rest_is_kept() {
        let base = VersionSettings {
            invoke_auth: InvokeAuth::Key,
            memory_mib: 256,
            ..VersionSettings::default()
        };
        let merged = settings_over(&base, br#"{"timeout_ms": 500}"#).unwrap();
        assert_eq!(
            merged,
            VersionSettings {
                timeout_ms: 500,
                ..base.clone()
            }
        );
        assert_eq!(settings_over(&base, b"").unwrap(), base);
        assert_eq!(
            base.changes_to(&merged),
            [SettingChange {
                setting: "timeout_ms".to_string(),
                from: json!(10_000),
                to: json!(500),
            }]
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let base = VersionSettings::default();
        for bad in [
            &b"[1]"[..],
            b"{\"memory\": 1}",
            b"{\"memory_mib\": \"x\"}",
            b"{",
        ] {
            let error = settings_over(&base, bad).unwrap_err();
            assert_eq!(error.code, "invalid_settings");
            assert!(
                error.message.contains("invalid settings JSON"),
                "{}",
                error.message
            );
        }
    }
}
