//! Named connections (server, API key, namespace) kept in `~/.config/vireo/profiles.toml`, mode
//! 0600, so a key need not be exported in every shell: `vireo login` writes one, `--profile NAME`
//! (or `VIREO_PROFILE`) picks one, and the profile `default` is used when none is named.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";
/// The server the CLI talks to when neither a flag, the environment nor a profile names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub server: String,
    pub api_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Extra certificate authorities for an `https://` server (`--ca-cert` at login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profiles {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// `$XDG_CONFIG_HOME/vireo/profiles.toml`, else `~/.config/vireo/profiles.toml`.
pub fn file() -> anyhow::Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|home| !home.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("neither XDG_CONFIG_HOME nor HOME is set: no place for profiles"),
        },
    };
    Ok(config.join("vireo").join("profiles.toml"))
}

impl Profiles {
    /// The profiles saved so far; none when the file does not exist.
    pub fn load() -> anyhow::Result<Self> {
        let path = file()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        };
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Writes the file whole, readable by this user only (it holds keys).
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = file()?;
        let dir = path.parent().expect("the file is in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        let text = toml::to_string(self).context("encoding the profiles")?;
        let partial = path.with_extension("toml.partial");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&partial, &path));
        written.with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The profile `--profile` names (it must exist), else `default` if there is one.
    pub fn chosen(&self, named: Option<&str>) -> anyhow::Result<Option<(&str, &Profile)>> {
        match named {
            Some(name) => match self.profiles.get_key_value(name) {
                Some((name, profile)) => Ok(Some((name, profile))),
                None if self.profiles.is_empty() => bail!(
                    "there is no profile {name:?}: create it with `vireo login --profile {name} --server URL`"
                ),
                None => bail!(
                    "there is no profile {name:?}; the profiles are {}",
                    self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            },
            None => Ok(self
                .profiles
                .get_key_value(DEFAULT_PROFILE)
                .map(|(name, profile)| (name.as_str(), profile))),
        }
    }
}

/// Where and as whom a command connects: each from its flag or variable, else the profile,
/// else the default.
#[derive(Debug, PartialEq)]
pub struct Connection {
    pub server: String,
    pub namespace: String,
    pub api_key: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

/// What the command line and the environment gave.
#[derive(Default)]
pub struct Given<'a> {
    pub server: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub ca_cert: Option<&'a std::path::Path>,
}

impl Connection {
    pub fn resolve(given: Given<'_>, profile: Option<&Profile>) -> Self {
        let Given {
            server,
            namespace,
            api_key,
            ca_cert,
        } = given;
        Self {
            server: server
                .or(profile.map(|p| p.server.as_str()))
                .unwrap_or(DEFAULT_SERVER)
                .to_string(),
            namespace: namespace
                .or(profile.and_then(|p| p.namespace.as_deref()))
                .unwrap_or("default")
                .to_string(),
            api_key: api_key
                .or(profile.map(|p| p.api_key.as_str()))
                .map(str::to_string),
            ca_cert: ca_cert
                .or(profile.and_then(|p| p.ca_cert.as_deref()))
                .map(std::path::Path::to_path_buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            server: "https://vireo.example.com".into(),
            api_key: "vireo_a_b".into(),
            namespace: Some("team".into()),
            ca_cert: Some("/etc/vireo/ca.pem".into()),
        }
    }

    #[test]
    fn flags_and_variables_come_before_the_profile_and_it_before_the_defaults() {
        let from_profile = Connection::resolve(Given::default(), Some(&profile()));
        assert_eq!(
            from_profile,
            Connection {
                server: "https://vireo.example.com".into(),
                namespace: "team".into(),
                api_key: Some("vireo_a_b".into()),
                ca_cert: Some("/etc/vireo/ca.pem".into()),
            }
        );
        let flags = Given {
            server: Some("http://h:1"),
            namespace: Some("x"),
            api_key: Some("k"),
            ca_cert: Some(std::path::Path::new("ca.pem")),
        };
        assert_eq!(
            Connection::resolve(flags, Some(&profile())),
            Connection {
                server: "http://h:1".into(),
                namespace: "x".into(),
                api_key: Some("k".into()),
                ca_cert: Some("ca.pem".into()),
            }
        );
        let bare = Connection::resolve(Given::default(), None);
        assert_eq!(
            (
                bare.server.as_str(),
                bare.namespace.as_str(),
                bare.api_key,
                bare.ca_cert
            ),
            (DEFAULT_SERVER, "default", None, None)
        );
    }

    #[test]
    fn a_named_profile_must_exist_and_default_is_used_unnamed() {
        let mut profiles = Profiles::default();
        assert_eq!(profiles.chosen(None).unwrap(), None);
        let err = profiles.chosen(Some("prod")).unwrap_err().to_string();
        assert!(err.contains("vireo login --profile prod"), "{err}");
        profiles.profiles.insert("default".into(), profile());
        profiles.profiles.insert("staging".into(), profile());
        assert_eq!(profiles.chosen(None).unwrap().unwrap().0, "default");
        assert_eq!(
            profiles.chosen(Some("staging")).unwrap().unwrap().0,
            "staging"
        );
        let err = profiles.chosen(Some("prod")).unwrap_err().to_string();
        assert!(err.contains("the profiles are default, staging"), "{err}");
    }
}
