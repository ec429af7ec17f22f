//! The settings a version is deployed with, their defaults, and their validation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cors::CorsSettings;
use crate::names::{Name, is_env_var_name};
use crate::secrets::SecretName;
use crate::tenancy::RateLimit;
use crate::variables::VariableValue;

pub const DEFAULT_MEMORY_MIB: u32 = 128;
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_ENV_VARS: usize = 256;
const MAX_ENV_BYTES: usize = 64 * 1024;
const MAX_INSTANCE_REUSE: u32 = 100_000;
const MAX_MIN_INSTANCES: u32 = 64;
const MAX_SECRET_GRANTS: usize = 64;
/// Key-value stores, buckets and SQLite databases a version may be granted, each.
const MAX_KV_GRANTS: usize = 64;

/// Settings of one immutable version. Missing fields take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VersionSettings {
    /// Linear-memory limit per instance, in MiB (default 128).
    pub memory_mib: u32,
    /// Wall-clock limit per invocation, in milliseconds (default 10000).
    pub timeout_ms: u64,
    /// Environment variables the guest sees.
    pub env: BTreeMap<String, String>,
    /// Secrets of the namespace the guest sees as environment variables of the same names,
    /// decrypted when the version loads. A name may not be in `env` too.
    pub secrets: BTreeSet<SecretName>,
    /// How many invocations of this version may run at once; none means only the server's limits.
    pub max_concurrency: Option<u32>,
    /// How many sequential requests one instance may serve (default 1: a fresh instance per
    /// request). Above 1, state in the guest's globals survives between requests of this version.
    pub instance_reuse: u32,
    /// Instances kept instantiated and ready; above 0 the version is also never scaled to zero.
    pub min_instances: u32,
    /// Who may invoke: anyone (`public`, the default) or only invoker, developer and admin keys
    /// of the function's namespace (`key`).
    pub invoke_auth: InvokeAuth,
    /// Requests per second to this function from all callers together; none means unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Browser cross-origin access: Vireo answers preflights and adds the CORS headers; none
    /// leaves CORS to the function.
    pub cors: Option<CorsSettings>,
    /// Origins the function may send HTTP requests to, and databases it may connect to, as
    /// `scheme://host[:port]` patterns (`https://api.example.com`, `http://*.internal:8080`,
    /// `postgres://10.0.0.5:5432`, `redis://127.0.0.1:6379`, port `*` for any). Empty (the
    /// default) allows no outgoing connections.
    pub allowed_outbound_hosts: Vec<String>,
    /// Link imports of packages Vireo knows but does not implement yet (Spin's, wasi:keyvalue,
    /// wasi:config, …) as traps instead of refusing the component: for components built from
    /// SDK worlds that import more than they call. A call to one traps (a 500).
    pub allow_unimplemented_imports: bool,
    /// Configuration the guest reads through `wasi:config/store` and `fermyon:spin/variables`:
    /// text, or bound to a secret of the namespace (`{"secret": "NAME"}`).
    pub variables: BTreeMap<String, VariableValue>,
    /// Key-value stores of the namespace the function may open (`default` included only when
    /// listed): through `wasi:keyvalue` and Spin's key-value. None by default.
    #[schema(value_type = Vec<String>)]
    pub key_value_stores: BTreeSet<Name>,
    /// Buckets of the namespace the function may open through `wasi:blobstore`. None by
    /// default.
    #[schema(value_type = Vec<String>)]
    pub buckets: BTreeSet<Name>,
    /// SQLite databases of the namespace the function may open through Spin's sqlite
    /// interfaces (`default` included only when listed). None by default; refused on a server
    /// whose store is PostgreSQL.
    #[schema(value_type = Vec<String>)]
    pub sqlite_databases: BTreeSet<Name>,
    /// Hand requests over as Spin's HTTP trigger does: the whole path a route matched (not the
    /// part after it) and Spin's `spin-*` headers (`spin-path-info`, `spin-full-url`, …). Set
    /// for functions deployed from a Spin application manifest.
    pub spin_http: bool,
}

/// Who may invoke a version: anyone, callers with a key of the namespace, or callers with a
/// valid bearer JWT of an identity provider (`{"jwt": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvokeAuth {
    #[default]
    Public,
    Key,
    Jwt(crate::jwt::JwtAuth),
}

impl InvokeAuth {
    /// A JWT setting must name its issuer and one source of keys.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Jwt(jwt) => jwt.validate(),
            Self::Public | Self::Key => Ok(()),
        }
    }
}

impl Default for VersionSettings {
    fn default() -> Self {
        Self {
            memory_mib: DEFAULT_MEMORY_MIB,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            env: BTreeMap::new(),
            secrets: BTreeSet::new(),
            max_concurrency: None,
            instance_reuse: 1,
            min_instances: 0,
            invoke_auth: InvokeAuth::Public,
            rate_limit: None,
            cors: None,
            allowed_outbound_hosts: Vec::new(),
            allow_unimplemented_imports: false,
            variables: BTreeMap::new(),
            key_value_stores: BTreeSet::new(),
            buckets: BTreeSet::new(),
            sqlite_databases: BTreeSet::new(),
            spin_http: false,
        }
    }
}

/// The server-wide bounds that settings must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingsLimits {
    pub max_memory_mib: u32,
    pub max_timeout_ms: u64,
}

/// Settings outside what the server allows; the message names the field and the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSettings(String);

impl VersionSettings {
    /// Every secret the version is given: as environment variables and bound to variables.
    pub fn granted_secrets(&self) -> BTreeSet<SecretName> {
        let bound = crate::variables::secrets(&self.variables);
        self.secrets.iter().chain(bound).cloned().collect()
    }

    /// The settings' own bounds. Whether the runtime can grant what they ask
    /// (`allowed_outbound_hosts`) is its capabilities' check, at deploy too.
    pub fn validate(&self, limits: &SettingsLimits) -> Result<(), InvalidSettings> {
        let fail = |message: String| Err(InvalidSettings(message));
        if self.memory_mib == 0 || self.memory_mib > limits.max_memory_mib {
            return fail(format!(
                "memory_mib must be between 1 and {} (this server's maximum), got {}",
                limits.max_memory_mib, self.memory_mib
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > limits.max_timeout_ms {
            return fail(format!(
                "timeout_ms must be between 1 and {} (this server's maximum), got {}",
                limits.max_timeout_ms, self.timeout_ms
            ));
        }
        if self.max_concurrency == Some(0) {
            return fail("max_concurrency must be at least 1 when set".to_string());
        }
        if self.instance_reuse == 0 || self.instance_reuse > MAX_INSTANCE_REUSE {
            return fail(format!(
                "instance_reuse must be between 1 and {MAX_INSTANCE_REUSE}, got {}",
                self.instance_reuse
            ));
        }
        if self.min_instances > MAX_MIN_INSTANCES {
            return fail(format!(
                "min_instances must be at most {MAX_MIN_INSTANCES}, got {}",
                self.min_instances
            ));
        }
        self.invoke_auth.validate().map_err(InvalidSettings)?;
        if let Some(limit) = &self.rate_limit {
            limit
                .validate("rate_limit")
                .map_err(|e| InvalidSettings(e.to_string()))?;
        }
        if let Some(cors) = &self.cors {
            cors.validate()
                .map_err(|e| InvalidSettings(e.to_string()))?;
        }
        if self.env.len() > MAX_ENV_VARS {
            return fail(format!(
                "at most {MAX_ENV_VARS} environment variables are allowed"
            ));
        }
        let env_bytes: usize = self.env.iter().map(|(k, v)| k.len() + v.len()).sum();
        if env_bytes > MAX_ENV_BYTES {
            return fail(format!(
                "environment variables may total at most {MAX_ENV_BYTES} bytes"
            ));
        }
        if let Some(key) = self.env.keys().find(|k| !is_env_var_name(k)) {
            return fail(format!(
                "invalid environment variable name {key:?}: use letters, digits and _, not starting with a digit"
            ));
        }
        if let Some(key) = self
            .env
            .iter()
            .find(|(_, v)| v.contains('\0'))
            .map(|(k, _)| k)
        {
            return fail(format!("environment variable {key:?} contains a NUL byte"));
        }
        if self.secrets.len() > MAX_SECRET_GRANTS {
            return fail(format!(
                "at most {MAX_SECRET_GRANTS} secrets may be granted to a version"
            ));
        }
        crate::variables::check(&self.variables).map_err(InvalidSettings)?;
        if self.key_value_stores.len() > MAX_KV_GRANTS {
            return fail(format!(
                "at most {MAX_KV_GRANTS} key-value stores may be granted to a version"
            ));
        }
        if self.buckets.len() > MAX_KV_GRANTS {
            return fail(format!(
                "at most {MAX_KV_GRANTS} buckets may be granted to a version"
            ));
        }
        if self.sqlite_databases.len() > MAX_KV_GRANTS {
            return fail(format!(
                "at most {MAX_KV_GRANTS} SQLite databases may be granted to a version"
            ));
        }
        if self.granted_secrets().len() > MAX_SECRET_GRANTS {
            return fail(format!(
                "at most {MAX_SECRET_GRANTS} secrets may be granted to a version (secrets and variables together)"
            ));
        }
        // One name, one value: a clash would leave the function guessing which one it sees.
        if let Some(name) = self
            .secrets
            .iter()
            .find(|s| self.env.contains_key(s.as_str()))
        {
            return fail(format!(
                "{name} is both an environment variable (env) and a granted secret (secrets); keep one"
            ));
        }
        Ok(())
    }
}

/// A setting one version has differently from another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettingChange {
    pub setting: String,
    #[schema(value_type = Object)]
    pub from: Value,
    #[schema(value_type = Object)]
    pub to: Value,
}

impl VersionSettings {
    /// The settings that differ from `self` in `after`, in field order.
    pub fn changes_to(&self, after: &VersionSettings) -> Vec<SettingChange> {
        changes_between(&settings_object(self), &settings_object(after))
    }
}

/// The fields that differ between two settings objects as the API shows them (`before` may
/// come from a server that knows other fields), in `after`'s order; a field `after` lacks is not
/// a change.
pub fn changes_between(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<SettingChange> {
    after
        .iter()
        .filter_map(|(setting, to)| {
            let from = before.get(setting).cloned().unwrap_or(Value::Null);
            (&from != to).then(|| SettingChange {
                setting: setting.clone(),
                from,
                to: to.clone(),
            })
        })
        .collect()
}

/// The settings as the API shows them.
pub fn settings_object(settings: &VersionSettings) -> Map<String, Value> {
    match serde_json::to_value(settings).expect("settings serialize as JSON") {
        Value::Object(fields) => fields,
        _ => unreachable!("settings serialize as an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SettingsLimits = SettingsLimits {
        max_memory_mib: 1024,
        max_timeout_ms: 900_000,
    };

    #[test]
    fn defaults_are_valid() {
        let settings: VersionSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, VersionSettings::default());
        assert_eq!(settings.memory_mib, 128);
        assert_eq!(settings.timeout_ms, 10_000);
        settings.validate(&LIMITS).unwrap();
    }

    #[test]
    fn out_of_bounds_settings_name_the_field() {
        let cases = [
            (
                VersionSettings {
                    memory_mib: 0,
                    ..Default::default()
                },
                "memory_mib",
            ),
            (
                VersionSettings {
                    memory_mib: 4096,
                    ..Default::default()
                },
                "memory_mib",
            ),
            (
                VersionSettings {
                    timeout_ms: 0,
                    ..Default::default()
                },
                "timeout_ms",
            ),
            (
                VersionSettings {
                    max_concurrency: Some(0),
                    ..Default::default()
                },
                "max_concurrency",
            ),
            (
                VersionSettings {
                    instance_reuse: 0,
                    ..Default::default()
                },
                "instance_reuse",
            ),
            (
                VersionSettings {
                    min_instances: 65,
                    ..Default::default()
                },
                "min_instances",
            ),
            (
                VersionSettings {
                    env: [("1X".into(), "v".into())].into(),
                    ..Default::default()
                },
                "environment variable name",
            ),
            (
                VersionSettings {
                    env: [("DB_PASSWORD".into(), "v".into())].into(),
                    secrets: [SecretName::parse("DB_PASSWORD").unwrap()].into(),
                    ..Default::default()
                },
                "both an environment variable (env) and a granted secret",
            ),
        ];
        for (settings, field) in cases {
            let err = settings.validate(&LIMITS).unwrap_err();
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn secrets_are_granted_by_valid_name() {
        let settings: VersionSettings =
            serde_json::from_str(r#"{"secrets": ["DB_PASSWORD", "API_TOKEN"]}"#).unwrap();
        assert_eq!(settings.secrets.len(), 2);
        settings.validate(&LIMITS).unwrap();
        let err =
            serde_json::from_str::<VersionSettings>(r#"{"secrets": ["db-password"]}"#).unwrap_err();
        assert!(err.to_string().contains("invalid secret name"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<VersionSettings>(r#"{"memory": 3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
