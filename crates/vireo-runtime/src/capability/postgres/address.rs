//! The connection string a guest opens, as Spin takes it: a `postgres://user:password@host:port/db`
//! URL or a `host=… port=… user=…` key-value string. Exactly one TCP host is accepted (no unix
//! sockets, no `hostaddr`: the host decides which address a connection goes to, after the
//! version's grants approve the host and port the string names).
//!
//! `sslmode=require` connects over TLS and verifies the server's certificate against the name
//! the string gives (as libpq's `verify-full`). `prefer`, the default, connects without TLS: it
//! would take TLS whenever the server offers it and then refuse a certificate nobody set up to
//! be verified, failing connections that work without it.

use std::net::SocketAddr;
use std::str::FromStr;

use tokio_postgres::config::{Host, SslMode};

/// PostgreSQL's port when a connection string names none.
const DEFAULT_PORT: u16 = 5432;

/// A parsed connection string and the host and port it names.
#[derive(Debug)]
pub(super) struct Address {
    pub config: tokio_postgres::Config,
    pub host: String,
    pub port: u16,
}

/// Parses `text`; the error never quotes it (it may carry a password).
pub(super) fn parse(text: &str) -> Result<Address, String> {
    let config = tokio_postgres::Config::from_str(text)
        .map_err(|e| format!("invalid connection string: {e}"))?;
    if !config.get_hostaddrs().is_empty() {
        return Err(
            "hostaddr is not accepted: the host connects to the address it approves".into(),
        );
    }
    let host = match config.get_hosts() {
        [Host::Tcp(host)] => host.clone(),
        [Host::Unix(_)] => return Err("unix sockets are not accepted: name a TCP host".into()),
        [] => return Err("the connection string names no host".into()),
        _ => return Err("the connection string must name exactly one host".into()),
    };
    let port = match config.get_ports() {
        [] => DEFAULT_PORT,
        [port] => *port,
        _ => return Err("the connection string must name at most one port".into()),
    };
    Ok(Address { config, host, port })
}

impl Address {
    /// The configuration that connects to `approved` (and nowhere else) within `timeout`.
    pub fn to(&self, approved: SocketAddr, timeout: std::time::Duration) -> tokio_postgres::Config {
        let mut config = self.config.clone();
        config
            .hostaddr(approved.ip())
            .connect_timeout(timeout)
            .application_name("vireo-function");
        if config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Disable);
        }
        // The approved port is the string's (or the default, when it names none).
        if config.get_ports().is_empty() {
            config.port(approved.port());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_value_strings_name_their_host_and_port() {
        let url = parse("postgres://ada:secret@db.example.com:6432/app").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("db.example.com", 6432));
        let kv = parse("host=127.0.0.1 user=ada dbname=app").unwrap();
        assert_eq!((kv.host.as_str(), kv.port), ("127.0.0.1", 5432));
    }

    #[test]
    fn the_configuration_connects_to_the_approved_address_only() {
        let approved: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        for text in [
            "postgres://ada@localhost:5432/app",
            "host=localhost user=ada",
        ] {
            let config = parse(text)
                .unwrap()
                .to(approved, std::time::Duration::from_secs(1));
            assert_eq!(config.get_hostaddrs(), [approved.ip()], "{text}");
            assert_eq!(config.get_ports(), [5432], "{text}");
            assert_eq!(config.get_hosts().len(), 1, "{text}");
        }
    }

    #[test]
    fn only_sslmode_require_asks_for_tls() {
        let approved: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        let timeout = std::time::Duration::from_secs(1);
        for (text, mode) in [
            ("postgres://h/db", SslMode::Disable),
            ("postgres://h/db?sslmode=prefer", SslMode::Disable),
            ("postgres://h/db?sslmode=require", SslMode::Require),
            ("host=h sslmode=require", SslMode::Require),
        ] {
            let config = parse(text).unwrap().to(approved, timeout);
            assert_eq!(config.get_ssl_mode(), mode, "{text}");
        }
    }

    #[test]
    fn strings_that_would_choose_their_own_address_are_refused() {
        for (bad, why) in [
            ("host=a.example.com hostaddr=10.0.0.1", "hostaddr"),
            ("host=/var/run/postgresql", "unix sockets"),
            ("host=a,b", "exactly one host"),
            ("user=ada", "no host"),
            (
                "postgres://ada:hunter2@h:notaport/db",
                "invalid connection string",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("hunter2"), "{err} quotes the password");
        }
    }
}
