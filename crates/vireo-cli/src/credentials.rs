//! Which API key the CLI sends: `--api-key` / `VIREO_API_KEY`, else, for a server on this machine,
//! the admin key its first start wrote to `<data>/admin.key`.

use std::path::PathBuf;

use anyhow::Context as _;

const ADMIN_KEY_FILE: &str = "admin.key";
/// Where `vireo serve` keeps its data unless told otherwise (relative to where it runs).
const DEFAULT_DATA_DIR: &str = ".vireo";

pub fn api_key(explicit: Option<&str>, server: &reqwest::Url) -> anyhow::Result<Option<String>> {
    if let Some(key) = explicit.filter(|key| !key.is_empty()) {
        return Ok(Some(key.to_string()));
    }
    // The local admin key is never sent anywhere but to this machine.
    if !is_loopback(server) {
        return Ok(None);
    }
    let file = admin_key_file();
    match std::fs::read_to_string(&file) {
        Ok(key) => Ok(Some(key.trim().to_string())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read the admin key {}", file.display()))
        }
    }
}

/// Where a server on this machine wrote its admin key: `$VIREO_DATA/admin.key`.
fn admin_key_file() -> PathBuf {
    std::env::var_os("VIREO_DATA")
        .map_or_else(|| DEFAULT_DATA_DIR.into(), PathBuf::from)
        .join(ADMIN_KEY_FILE)
}

/// What to do when no key was found for `server`, and where the CLI looked.
pub fn no_key_hint(server: &reqwest::Url) -> String {
    let file = admin_key_file();
    let looked = if is_loopback(server) {
        format!("and there is no {}", file.display())
    } else {
        format!(
            "(the local admin key in {} goes only to a server on this machine)",
            file.display()
        )
    };
    format!("no API key was sent: pass --api-key KEY or set VIREO_API_KEY {looked}")
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_servers_get_the_local_admin_key() {
        for (url, local) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.9.9.9", true),
            ("http://localhost:1", true),
            ("http://[::1]:8080", true),
            ("http://10.0.0.1", false),
            ("http://vireo.example.com", false),
        ] {
            assert_eq!(is_loopback(&url.parse().unwrap()), local, "{url}");
        }
    }
}
