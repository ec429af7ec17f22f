//! Which API key the CLI sends: `--api-key` / `VIREO_API_KEY`, else, for the server on this
//! machine that uses the data directory, the admin key its first start wrote to
//! `<data>/admin.key`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

const ADMIN_KEY_FILE: &str = "admin.key";
/// Where `vireo serve` keeps its data unless told otherwise (relative to where it runs).
const DEFAULT_DATA_DIR: &str = ".vireo";

pub fn api_key(explicit: Option<&str>, server: &reqwest::Url) -> anyhow::Result<Option<String>> {
    if let Some(key) = explicit.filter(|key| !key.is_empty()) {
        return Ok(Some(key.to_string()));
    }
    // The local admin key goes only to the server that wrote it.
    if !owns_the_admin_key(server) {
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

/// The admin key the server using the data directory `data` wrote at its first start.
pub fn admin_key_in(data: &Path) -> anyhow::Result<String> {
    let file = data.join(ADMIN_KEY_FILE);
    let key = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the admin key {}", file.display()))?;
    Ok(key.trim().to_string())
}

/// Where a server on this machine wrote its admin key: `$VIREO_DATA/admin.key`.
fn admin_key_file() -> PathBuf {
    data_dir().join(ADMIN_KEY_FILE)
}

fn data_dir() -> PathBuf {
    std::env::var_os("VIREO_DATA").map_or_else(|| DEFAULT_DATA_DIR.into(), PathBuf::from)
}

/// Where the server using the data directory listens, as it wrote at start.
fn key_owner() -> Option<SocketAddr> {
    let written = std::fs::read_to_string(data_dir().join(vireo_server::ADDRESS_FILE)).ok()?;
    written.trim().parse().ok()
}

/// `server` is the one using the data directory: on this machine, on the port it listens on.
fn owns_the_admin_key(server: &reqwest::Url) -> bool {
    is_loopback(server) && key_owner().is_some_and(|owner| listens_for(owner, server))
}

/// A server listening on `owner` answers `server`: the same port, and an address it covers.
fn listens_for(owner: SocketAddr, server: &reqwest::Url) -> bool {
    let ip = owner.ip();
    server.port_or_known_default() == Some(owner.port())
        && (ip.is_loopback() || ip.is_unspecified())
}

/// What to do when no key was found for `server`, and where the CLI looked.
pub fn no_key_hint(server: &reqwest::Url) -> String {
    let file = admin_key_file();
    let local_key = match key_owner() {
        _ if !is_loopback(server) => format!(
            "the local admin key in {} goes only to a server on this machine",
            file.display()
        ),
        Some(owner) if !listens_for(owner, server) => format!(
            "the local admin key in {} belongs to the server on {owner}",
            file.display()
        ),
        Some(_) => format!("there is no {}", file.display()),
        None => format!(
            "no server runs with the data directory {} (its admin key goes only to it)",
            data_dir().display()
        ),
    };
    let profiles = crate::profiles::file().map_or_else(
        |_| "no profile".to_string(),
        |path| format!("no profile in {}", path.display()),
    );
    format!(
        "no API key was sent: pass --api-key KEY, set VIREO_API_KEY or save one with `vireo login \
         --server URL` ({profiles}; {local_key})"
    )
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
    fn the_admin_key_goes_to_the_port_its_server_listens_on() {
        let url = |text: &str| text.parse::<reqwest::Url>().unwrap();
        let owner = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(listens_for(
            owner("127.0.0.1:8080"),
            &url("http://127.0.0.1:8080")
        ));
        assert!(listens_for(
            owner("0.0.0.0:8080"),
            &url("http://localhost:8080/")
        ));
        assert!(listens_for(owner("[::]:80"), &url("http://[::1]")));
        assert!(!listens_for(
            owner("127.0.0.1:8080"),
            &url("http://127.0.0.1:9090")
        ));
        assert!(!listens_for(
            owner("10.1.2.3:8080"),
            &url("http://127.0.0.1:8080")
        ));
    }

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
