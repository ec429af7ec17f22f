//! Outbound-host patterns (`allowed_outbound_hosts`): the origins a function may send HTTP
//! requests to, and the databases, brokers and TCP services it may connect to.
//!
//! A pattern is `scheme://host[:port]`: the scheme is `http`, `https`, `postgres`, `mysql`,
//! `redis`, `rediss`, `mqtt`, `mqtts` or `tcp`, and says what the entry grants (an `https`
//! entry never lets a PostgreSQL client through); the port defaults to the scheme's (80, 443,
//! 5432, 3306, 6379, 6379, 1883, 8883; a `tcp` entry must name its port) and `*` means any port; the host is a DNS name, a name whose leftmost
//! label is `*` (`*.example.com`: any name under `example.com`, at any depth, not
//! `example.com` itself), or an IP literal (`127.0.0.1`, `[::1]`). Names match names and IP
//! literals match IP literals only, so a request to `http://127.0.0.1` needs a pattern naming
//! that address: which addresses a matched name may resolve to is the runtime's check.

use std::fmt;
use std::net::IpAddr;

/// Patterns a version may list, and the length of one.
pub const MAX_PATTERNS: usize = 64;
const MAX_PATTERN_LEN: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    Postgres,
    Mysql,
    Redis,
    /// Redis over TLS.
    Rediss,
    Mqtt,
    /// MQTT over TLS.
    Mqtts,
    /// Plain TCP (`wasi:sockets`).
    Tcp,
}

impl Scheme {
    /// Every scheme with its names; `postgresql` is PostgreSQL's own alias.
    const NAMES: [(&str, Scheme); 10] = [
        ("http", Self::Http),
        ("https", Self::Https),
        ("postgres", Self::Postgres),
        ("postgresql", Self::Postgres),
        ("mysql", Self::Mysql),
        ("redis", Self::Redis),
        ("rediss", Self::Rediss),
        ("mqtt", Self::Mqtt),
        ("mqtts", Self::Mqtts),
        ("tcp", Self::Tcp),
    ];

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, scheme)| *scheme)
    }

    /// The port a URL of this scheme means when it names none; `tcp` has none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::Http => Some(80),
            Self::Https => Some(443),
            Self::Postgres => Some(5432),
            Self::Mysql => Some(3306),
            Self::Redis | Self::Rediss => Some(6379),
            Self::Mqtt => Some(1883),
            Self::Mqtts => Some(8883),
            Self::Tcp => None,
        }
    }

    /// The scheme as a URL writes it.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, scheme)| *scheme == self)
            .map_or("", |(name, _)| name)
    }

    /// Whether this is a scheme of HTTP requests.
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Https)
    }
}

/// The host a request is addressed to: an IP literal or a (lowercased) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Ip(IpAddr),
    Name(String),
}

impl Destination {
    /// The host of a URL, IPv6 literals in brackets as URLs write them.
    pub fn parse(host: &str) -> Self {
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match unbracketed.parse() {
            Ok(ip) => Self::Ip(ip),
            Err(_) => Self::Name(host.to_ascii_lowercase()),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.suffix`: names ending in `.suffix`.
    Under(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: Scheme,
    host: HostPattern,
    /// `None` is any port.
    port: Option<u16>,
}

/// An allow-list entry that is not a valid pattern; the message quotes it and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed_outbound_hosts entry {pattern:?}: {reason}")]
pub struct InvalidPattern {
    pattern: String,
    reason: &'static str,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, InvalidPattern> {
        let fail = |reason| InvalidPattern {
            pattern: text.to_string(),
            reason,
        };
        if text.len() > MAX_PATTERN_LEN {
            return Err(fail("longer than 300 characters"));
        }
        let (scheme, authority) = text
            .split_once("://")
            .ok_or_else(|| fail("a scheme is required, e.g. https://api.example.com"))?;
        let scheme = Scheme::parse(scheme).ok_or_else(|| {
            fail("the scheme must be http, https, postgres, mysql, redis, rediss, mqtt, mqtts or tcp")
        })?;
        if authority.contains(['/', '?', '#', '@']) {
            return Err(fail(
                "only scheme://host[:port] is allowed: no path, query or user",
            ));
        }
        let (host, port) = split_port(authority)
            .ok_or_else(|| fail("an IPv6 address must be written in brackets, e.g. [::1]"))?;
        let port =
            match port {
                None => Some(scheme.default_port().ok_or_else(|| {
                    fail("a tcp entry must name its port, e.g. tcp://10.0.0.5:7000")
                })?),
                Some("*") => None,
                Some(port) => Some(
                    port.parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| fail("the port must be 1-65535 or *"))?,
                ),
            };
        Ok(Self {
            scheme,
            host: parse_host(host).map_err(fail)?,
            port,
        })
    }

    fn matches(&self, scheme: Scheme, host: &Destination, port: u16) -> bool {
        self.names(scheme, host) && self.port.is_none_or(|p| p == port)
    }

    /// Whether it names `host` for `scheme`, at some port.
    fn names(&self, scheme: Scheme, host: &Destination) -> bool {
        let host_matches = match (&self.host, host) {
            (HostPattern::Exact(pattern), Destination::Name(name)) => pattern == name,
            (HostPattern::Under(suffix), Destination::Name(name)) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostPattern::Ip(pattern), Destination::Ip(ip)) => pattern == ip,
            _ => false,
        };
        self.scheme == scheme && host_matches
    }
}

/// `host` and the text after its port colon; `None` for an unbracketed IPv6 address.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let rest = &authority[end + 1..];
        return match rest.strip_prefix(':') {
            Some(port) => Some((&authority[..=end], Some(port))),
            None if rest.is_empty() => Some((authority, None)),
            None => None,
        };
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, &'static str> {
    if let Some(inner) = host.strip_prefix('[') {
        let ip: std::net::Ipv6Addr = inner
            .strip_suffix(']')
            .and_then(|ip| ip.parse().ok())
            .ok_or("invalid IPv6 address")?;
        return ip_pattern(IpAddr::V6(ip));
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return ip_pattern(IpAddr::V4(ip));
    }
    let host = host.to_ascii_lowercase();
    match host.strip_prefix("*.") {
        Some(suffix) if valid_name(suffix) => Ok(HostPattern::Under(suffix.to_string())),
        Some(_) => Err("`*.` must be followed by a valid host name"),
        None if host.contains('*') => {
            Err("`*` is only allowed as the whole leftmost label (*.example.com)")
        }
        None if valid_name(&host) => Ok(HostPattern::Exact(host)),
        None => Err("the host must be a DNS name, *.name, or an IP address"),
    }
}

/// Addresses that are nobody's destination: connecting to them reaches this machine or many.
fn ip_pattern(ip: IpAddr) -> Result<HostPattern, &'static str> {
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err("unspecified, multicast and broadcast addresses cannot be destinations");
    }
    Ok(HostPattern::Ip(ip))
}

/// Letters, digits and inner hyphens in labels of 1-63 characters; the last label not all
/// digits, so that forms like `127.1` that resolvers read as addresses are not names.
fn valid_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()))
}

/// A version's parsed `allowed_outbound_hosts`; empty allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Pattern>);

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<Self, InvalidPattern> {
        entries
            .iter()
            .map(|entry| Pattern::parse(entry))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a request to `scheme://host:port` is allowed.
    pub fn allows(&self, scheme: Scheme, host: &Destination, port: u16) -> bool {
        self.0.iter().any(|p| p.matches(scheme, host, port))
    }

    /// Whether some entry names `host` for `scheme`, at any port: a name worth looking up.
    pub fn names(&self, scheme: Scheme, host: &Destination) -> bool {
        self.0.iter().any(|p| p.names(scheme, host))
    }

    /// Whether any entry is for `scheme`.
    pub fn has(&self, scheme: Scheme) -> bool {
        self.0.iter().any(|p| p.scheme == scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> AllowList {
        AllowList::parse(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn allows(list: &AllowList, scheme: Scheme, host: &str, port: u16) -> bool {
        list.allows(scheme, &Destination::parse(host), port)
    }

    #[test]
    fn names_are_covered_at_any_port_and_schemes_are_told_apart() {
        let l = list(&[
            "tcp://db.example.com:7000",
            "tcp://*.cache.example.com:11211",
        ]);
        let name = |host: &str| Destination::parse(host);
        assert!(l.names(Scheme::Tcp, &name("db.example.com")));
        assert!(l.names(Scheme::Tcp, &name("a.cache.example.com")));
        assert!(!l.names(Scheme::Tcp, &name("cache.example.com")));
        assert!(!l.names(Scheme::Http, &name("db.example.com")));
        assert!(l.has(Scheme::Tcp));
        assert!(!l.has(Scheme::Postgres));
    }

    #[test]
    fn exact_names_match_scheme_host_and_default_port() {
        let l = list(&["https://api.example.com"]);
        assert!(allows(&l, Scheme::Https, "api.example.com", 443));
        assert!(allows(&l, Scheme::Https, "API.Example.com", 443));
        assert!(!allows(&l, Scheme::Http, "api.example.com", 80));
        assert!(!allows(&l, Scheme::Https, "api.example.com", 8443));
        assert!(!allows(&l, Scheme::Https, "example.com", 443));
        assert!(!allows(&l, Scheme::Https, "x.api.example.com", 443));
    }

    #[test]
    fn wildcards_match_names_below_the_suffix_only() {
        let l = list(&["http://*.internal:8080"]);
        assert!(allows(&l, Scheme::Http, "db.internal", 8080));
        assert!(allows(&l, Scheme::Http, "a.b.internal", 8080));
        assert!(!allows(&l, Scheme::Http, "internal", 8080));
        assert!(!allows(&l, Scheme::Http, "evilinternal", 8080));
        assert!(!allows(&l, Scheme::Http, ".internal", 8080));
        assert!(!allows(&l, Scheme::Http, "db.internal", 80));
    }

    #[test]
    fn ip_literals_match_only_the_same_address() {
        let l = list(&["http://127.0.0.1:8080", "http://[::1]:*"]);
        assert!(allows(&l, Scheme::Http, "127.0.0.1", 8080));
        assert!(!allows(&l, Scheme::Http, "127.0.0.2", 8080));
        assert!(!allows(&l, Scheme::Http, "localhost", 8080));
        assert!(allows(&l, Scheme::Http, "[::1]", 1234));
        assert!(allows(&l, Scheme::Http, "[0:0::1]", 1));
        // A name pattern never matches an address, whatever it resolves to.
        assert!(!allows(
            &list(&["http://localhost"]),
            Scheme::Http,
            "127.0.0.1",
            80
        ));
    }

    #[test]
    fn an_empty_list_allows_nothing() {
        assert!(!allows(
            &AllowList::default(),
            Scheme::Https,
            "example.com",
            443
        ));
    }

    #[test]
    fn bad_patterns_are_named_with_the_reason() {
        for (bad, reason) in [
            ("api.example.com", "scheme is required"),
            ("ftp://example.com", "http, https, postgres"),
            ("tcp://example.com", "must name its port"),
            ("https://example.com/path", "no path"),
            ("https://user@example.com", "no path"),
            ("https://example.com:0", "port"),
            ("https://example.com:99999", "port"),
            ("https://example.com:", "port"),
            ("https://*", "leftmost label"),
            ("https://*.", "followed by a valid host name"),
            ("https://a.*.example.com", "leftmost label"),
            ("https://*example.com", "leftmost label"),
            ("https://", "DNS name"),
            ("https://exa_mple.com", "DNS name"),
            ("https://-x.com", "DNS name"),
            ("http://127.1", "DNS name"),
            ("http://::1", "IPv6"),
            ("http://[::1", "IPv6"),
            ("http://[zz]:80", "IPv6"),
            ("http://0.0.0.0", "cannot be destinations"),
            ("http://[::]", "cannot be destinations"),
            ("http://224.0.0.1", "cannot be destinations"),
            ("http://255.255.255.255", "cannot be destinations"),
        ] {
            let err = Pattern::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")),
                "{err} should quote {bad}"
            );
            assert!(err.contains(reason), "{bad}: {err} should say {reason}");
        }
        assert!(Pattern::parse(&format!("https://{}.com", "a".repeat(300))).is_err());
    }

    #[test]
    fn any_port_and_explicit_ports_parse() {
        let l = list(&["HTTPS://Example.COM:*", "http://example.org:8080"]);
        assert!(allows(&l, Scheme::Https, "example.com", 1));
        assert!(allows(&l, Scheme::Http, "example.org", 8080));
        assert!(!allows(&l, Scheme::Http, "example.org", 80));
    }

    #[test]
    fn database_and_broker_entries_grant_their_scheme_only() {
        let l = list(&[
            "postgres://db.example.com",
            "redis://127.0.0.1:6380",
            "mqtts://*.example.com",
            "tcp://10.0.0.5:7000",
            "POSTGRESQL://pg.example.com:6432",
        ]);
        assert!(allows(&l, Scheme::Postgres, "db.example.com", 5432));
        assert!(allows(&l, Scheme::Postgres, "pg.example.com", 6432));
        assert!(!allows(&l, Scheme::Postgres, "db.example.com", 5433));
        assert!(!allows(&l, Scheme::Mysql, "db.example.com", 5432));
        assert!(!allows(&l, Scheme::Https, "db.example.com", 5432));
        assert!(allows(&l, Scheme::Redis, "127.0.0.1", 6380));
        assert!(!allows(&l, Scheme::Rediss, "127.0.0.1", 6380));
        assert!(allows(&l, Scheme::Mqtts, "broker.example.com", 8883));
        assert!(allows(&l, Scheme::Tcp, "10.0.0.5", 7000));
        assert!(!allows(&l, Scheme::Tcp, "10.0.0.5", 7001));
        assert_eq!(Scheme::parse("Redis"), Some(Scheme::Redis));
        assert!(Scheme::Https.is_http() && !Scheme::Postgres.is_http());
        assert_eq!(Scheme::Postgres.name(), "postgres");
        assert_eq!(Scheme::Tcp.name(), "tcp");
    }

    #[test]
    fn destinations_print_as_urls_write_them() {
        assert_eq!(Destination::parse("[::1]").to_string(), "[::1]");
        assert_eq!(Destination::parse("10.0.0.1").to_string(), "10.0.0.1");
        assert_eq!(Destination::parse("Example.com").to_string(), "example.com");
    }
}
