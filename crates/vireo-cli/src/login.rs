//! `vireo login`, `vireo logout` and `vireo profiles`: saving, removing and listing the named
//! connections of `profiles.rs`.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::output::{self, Format};
use crate::profiles::{DEFAULT_PROFILE, Profile, Profiles};

/// What `login` needs from the global options.
pub struct LoginTarget<'a> {
    pub server: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub ca_cert: Option<&'a std::path::Path>,
}

#[derive(Deserialize)]
struct NamespaceList {
    namespaces: Vec<NamespaceName>,
}

#[derive(Deserialize)]
struct NamespaceName {
    name: String,
}

/// Checks the key against the server, then saves the profile.
pub async fn login(format: Format, target: LoginTarget<'_>) -> anyhow::Result<()> {
    let Some(server) = target.server else {
        bail!("pass the server to log in to: vireo login --server https://vireo.example.com");
    };
    let name = target.profile.unwrap_or(DEFAULT_PROFILE);
    let api_key = match target.api_key.filter(|key| !key.is_empty()) {
        Some(key) => key.to_string(),
        None => read_key(server)?,
    };
    let namespace = target.namespace.unwrap_or("default");
    let client = Client::new(server, namespace, Some(&api_key), target.ca_cert)?;
    let listed = client
        .json(client.request(Method::GET, "/v1/namespaces"))
        .await
        .with_context(|| format!("checking the API key with {server}"))?;
    let listed: NamespaceList = output::decode(listed)?;
    let usable: Vec<String> = listed.namespaces.into_iter().map(|ns| ns.name).collect();

    // Absolute, so the profile works from any directory.
    let ca_cert = target
        .ca_cert
        .map(|path| {
            std::fs::canonicalize(path)
                .with_context(|| format!("finding the CA certificate {}", path.display()))
        })
        .transpose()?;
    let mut profiles = Profiles::load()?;
    profiles.profiles.insert(
        name.to_string(),
        Profile {
            server: server.to_string(),
            api_key,
            namespace: target.namespace.map(str::to_string),
            ca_cert,
        },
    );
    let path = profiles.save()?;
    let answer = json!({"profile": name, "server": server, "namespaces": usable, "file": path});
    output::emit(format, answer, |_: serde_json::Value| {
        format!(
            "logged in to {server} as profile {name}; this key can use namespaces {} (saved in {})\n",
            if usable.is_empty() {
                "(none yet)".to_string()
            } else {
                usable.join(", ")
            },
            path.display()
        )
    })
}

/// The key from standard input: asked for without echo at a terminal, else its first line.
fn read_key(server: &str) -> anyhow::Result<String> {
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for {server}: "))
            .context("reading the API key")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the API key from standard input")?;
        line
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        bail!("no API key given: pass --api-key KEY, set VIREO_API_KEY, or type it when asked");
    }
    Ok(key)
}

pub fn logout(format: Format, profile: Option<&str>) -> anyhow::Result<()> {
    let name = profile.unwrap_or(DEFAULT_PROFILE);
    let mut profiles = Profiles::load()?;
    if profiles.profiles.remove(name).is_none() {
        // Says which exist, or how to make one.
        profiles.chosen(Some(name))?;
    }
    let path = profiles.save()?;
    let answer = json!({"removed": name, "file": path});
    output::emit(format, answer, |_: serde_json::Value| {
        format!(
            "removed profile {name} and its key from {}\n",
            path.display()
        )
    })
}

pub fn list(format: Format) -> anyhow::Result<()> {
    let profiles = Profiles::load()?;
    let shown: Vec<serde_json::Value> = profiles
        .profiles
        .iter()
        .map(|(name, profile)| {
            json!({
                "name": name,
                "server": profile.server,
                "namespace": profile.namespace,
                "key": key_shown(&profile.api_key),
            })
        })
        .collect();
    output::emit(
        format,
        json!({"profiles": shown}),
        |_: serde_json::Value| {
            if profiles.profiles.is_empty() {
                return "no profiles yet: vireo login --server URL\n".to_string();
            }
            output::table(
                ["NAME", "SERVER", "NAMESPACE", "KEY"],
                profiles.profiles.iter().map(|(name, profile)| {
                    [
                        name.clone(),
                        profile.server.clone(),
                        output::or_dash(profile.namespace.as_deref()),
                        key_shown(&profile.api_key),
                    ]
                }),
            )
        },
    )
}

/// A key as listings show it: its public id part (`vireo_<id>_…`), never its secret.
fn key_shown(key: &str) -> String {
    // The id is the part before the first `_` after the prefix; the secret may hold `_` too.
    match key
        .strip_prefix("vireo_")
        .and_then(|rest| rest.split_once('_'))
    {
        Some((id, _)) => format!("vireo_{id}_…"),
        None => "…".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_show_a_keys_id_and_never_its_secret() {
        assert_eq!(key_shown("vireo_abc123_s3cr3t"), "vireo_abc123_…");
        assert_eq!(key_shown("vireo_abc123_s3_cr_3t"), "vireo_abc123_…");
        assert_eq!(key_shown("some-other-key"), "…");
        assert_eq!(key_shown("vireo_nosecret"), "…");
    }
}
