//! Routes: a function published at a path of the server, optionally on one host name or every
//! subdomain of one (`api.example.com/orders/*` → `orders@prod`). Hosts are claimed per
//! namespace by an admin, so one tenant cannot route another's domain. The table is compiled
//! once per change and matched in memory: the most specific host first (exact, then the
//! longest wildcard, then routes for any host), within it an exact path before the longest
//! prefix.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::names::{Name, VersionSelector};
use crate::settings::InvokeAuth;
use crate::store::StoreError;

/// Paths Vireo answers itself; no route may claim them or anything under them.
pub const RESERVED_PATHS: [&str; 6] = ["/fn", "/v1", "/metrics", "/healthz", "/readyz", "/ui"];

/// The request header that carries the original request target (path and query) to a function
/// reached through a route, since the function sees only the path after the matched prefix.
pub const ORIGINAL_URL_HEADER: &str = "x-vireo-original-url";

/// The host names [`HostPattern::parse`] takes, as the OpenAPI document gives them (it checks
/// lengths besides).
pub const HOST_PATTERN: &str =
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$";

/// Longest host or path a route may name.
const MAX_PATTERN_LEN: usize = 1024;

/// A host name, or every subdomain of one (`*.example.com`, not `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    Subdomains(String),
}

/// An exact path, or a prefix (`/orders/*`: `/orders` and everything under it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathPattern {
    Exact(String),
    /// Without the trailing `/*`; empty for `/*`.
    Prefix(String),
}

/// What a route matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoutePattern {
    pub host: Option<HostPattern>,
    pub path: PathPattern,
}

/// A route pattern or host that cannot be used; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRoute(pub String);

impl HostPattern {
    /// `api.example.com` or `*.example.com`, case-insensitive; no port.
    pub fn parse(host: &str) -> Result<Self, InvalidRoute> {
        let host = host.to_ascii_lowercase();
        let (pattern, name) = match host.strip_prefix("*.") {
            Some(rest) => (Self::Subdomains(format!(".{rest}")), rest),
            None => (Self::Exact(host.clone()), host.as_str()),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(InvalidRoute(format!(
                "{host:?} is not a host name (letters, digits, dashes and dots; `*.` in front for every subdomain)"
            )));
        }
        Ok(pattern)
    }

    /// Whether a request's host (lowercase, without port) is this one.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == host,
            Self::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }

    /// Whether an owner of `self` may route `other`: the same host, or one under its wildcard.
    pub fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Subdomains(_), Self::Exact(host)) => self.matches(host),
            (Self::Subdomains(a), Self::Subdomains(b)) => b.ends_with(a.as_str()),
            (Self::Exact(_), Self::Subdomains(_)) => false,
        }
    }

    /// Whether two claims would route some host in common.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(host) => f.write_str(host),
            Self::Subdomains(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl PathPattern {
    /// `/hello` or `/orders/*` (`/*`: every path).
    pub fn parse(path: &str) -> Result<Self, InvalidRoute> {
        if !path.starts_with('/') {
            return Err(InvalidRoute(format!("the path {path:?} must start with /")));
        }
        let pattern = match path.strip_suffix("/*") {
            Some(prefix) => Self::Prefix(prefix.to_string()),
            None => Self::Exact(path.to_string()),
        };
        let literal = match &pattern {
            Self::Exact(path) | Self::Prefix(path) => path,
        };
        if literal.contains('*') || literal.contains('?') || literal.contains('#') {
            return Err(InvalidRoute(format!(
                "{path:?}: only a trailing /* is a wildcard, and a route has no query"
            )));
        }
        if literal.ends_with('/') && literal.len() > 1 {
            return Err(InvalidRoute(format!(
                "{path:?} ends with /; write it without, or /* for everything under it"
            )));
        }
        if literal
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return Err(InvalidRoute(format!("{path:?} has a . or .. segment")));
        }
        let reserved = RESERVED_PATHS
            .iter()
            .find(|reserved| literal == *reserved || literal.starts_with(&format!("{reserved}/")));
        if let Some(reserved) = reserved {
            return Err(InvalidRoute(format!(
                "{reserved} and the paths under it are Vireo's own; choose another path"
            )));
        }
        Ok(pattern)
    }

    /// What follows the pattern in `path`, if it matches: empty for an exact match.
    fn rest<'a>(&self, path: &'a str) -> Option<&'a str> {
        match self {
            Self::Exact(exact) => (path == exact).then_some(""),
            Self::Prefix(prefix) => {
                let after = path.strip_prefix(prefix.as_str())?;
                match after.strip_prefix('/') {
                    Some(rest) => Some(rest),
                    None => after.is_empty().then_some(""),
                }
            }
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(path) => f.write_str(path),
            Self::Prefix(prefix) => write!(f, "{prefix}/*"),
        }
    }
}

impl RoutePattern {
    /// `[HOST]/PATH`: `/hello`, `api.example.com/orders/*`, `*.example.com/*`.
    pub fn parse(pattern: &str) -> Result<Self, InvalidRoute> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(InvalidRoute(format!(
                "a route is at most {MAX_PATTERN_LEN} characters"
            )));
        }
        let (host, path) = match pattern.find('/') {
            Some(0) => (None, pattern),
            Some(at) => (Some(HostPattern::parse(&pattern[..at])?), &pattern[at..]),
            None => {
                return Err(InvalidRoute(format!(
                    "{pattern:?} has no path; write HOST/PATH or /PATH"
                )));
            }
        };
        Ok(Self {
            host,
            path: PathPattern::parse(path)?,
        })
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            write!(f, "{host}")?;
        }
        write!(f, "{}", self.path)
    }
}

/// A route of a namespace to one of its functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub namespace: Name,
    pub pattern: RoutePattern,
    pub function: Name,
    pub selector: VersionSelector,
    /// Who may call the function through this route, instead of the version's own
    /// `invoke_auth`; `None` keeps the version's.
    pub invoke_auth: Option<InvokeAuth>,
    pub created_at_us: i64,
}

/// A host an admin let a namespace route (and so no other namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostClaim {
    #[schema(value_type = String)]
    pub host: String,
    #[schema(value_type = String)]
    pub namespace: Name,
    pub created_at_us: i64,
}

/// Where routes and host claims are kept. Adding a route checks, in the same transaction, that
/// its host is claimed by its namespace and that no route has the same pattern.
#[async_trait::async_trait]
pub trait RouteStore: Send + Sync + 'static {
    /// `RouteExists` (naming the route it conflicts with), `HostNotClaimed`, or the function
    /// missing.
    async fn add_route(&self, route: &HttpRoute) -> Result<(), StoreError>;
    /// The routes of one namespace, or of all.
    async fn list_routes(&self, namespace: Option<&Name>) -> Result<Vec<HttpRoute>, StoreError>;
    async fn delete_route(
        &self,
        namespace: &Name,
        pattern: &RoutePattern,
    ) -> Result<(), StoreError>;
    /// Lets `namespace` route `host` (and, for `*.x`, its subdomains); `HostTaken` if another
    /// namespace's claim overlaps it.
    async fn claim_host(
        &self,
        host: &HostPattern,
        namespace: &Name,
        at_us: i64,
    ) -> Result<(), StoreError>;
    async fn list_host_claims(&self) -> Result<Vec<HostClaim>, StoreError>;
    /// Releases a claim; `HostInUse` while routes of the namespace use it.
    async fn release_host(&self, host: &HostPattern) -> Result<(), StoreError>;
}

/// A request a route takes: the route and the path the function sees (without the leading /).
#[derive(Debug)]
pub struct RouteMatch<'a> {
    pub route: &'a HttpRoute,
    pub rest: &'a str,
}

/// The routes of every namespace, ordered for matching.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Exact hosts, then wildcards longest suffix first, then routes for any host (`None`).
    tiers: Vec<(Option<HostPattern>, Vec<HttpRoute>)>,
}

impl RouteTable {
    pub fn new(routes: Vec<HttpRoute>) -> Self {
        let mut by_host: BTreeMap<Option<HostPattern>, Vec<HttpRoute>> = BTreeMap::new();
        for route in routes {
            by_host
                .entry(route.pattern.host.clone())
                .or_default()
                .push(route);
        }
        let mut tiers: Vec<_> = by_host.into_iter().collect();
        tiers.sort_by_key(|(host, _)| match host {
            Some(HostPattern::Exact(_)) => (0, 0),
            Some(HostPattern::Subdomains(suffix)) => (1, usize::MAX - suffix.len()),
            None => (2, 0),
        });
        for (_, routes) in &mut tiers {
            // Exact paths first, then prefixes longest first.
            routes.sort_by_key(|route| match &route.pattern.path {
                PathPattern::Exact(_) => (0, 0),
                PathPattern::Prefix(prefix) => (1, usize::MAX - prefix.len()),
            });
        }
        Self { tiers }
    }

    /// The route a request for `host` (lowercase, no port) and `path` takes, if any.
    pub fn find<'a>(&'a self, host: &str, path: &'a str) -> Option<RouteMatch<'a>> {
        self.tiers
            .iter()
            .filter(|(pattern, _)| pattern.as_ref().is_none_or(|p| p.matches(host)))
            .find_map(|(_, routes)| {
                routes.iter().find_map(|route| {
                    let rest = route.pattern.path.rest(path)?;
                    Some(RouteMatch { route, rest })
                })
            })
    }
}

/// The table every request is matched against, swapped whole when routes change.
#[derive(Debug, Default)]
pub struct LiveRoutes(RwLock<Arc<RouteTable>>);

impl LiveRoutes {
    pub fn current(&self) -> Arc<RouteTable> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, table: RouteTable) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pattern: &str, function: &str) -> HttpRoute {
        HttpRoute {
            namespace: Name::default_namespace(),
            pattern: RoutePattern::parse(pattern).unwrap(),
            function: Name::parse("function", function).unwrap(),
            selector: VersionSelector::Number(1),
            invoke_auth: None,
            created_at_us: 0,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(vec![
            route("/*", "catch-all"),
            route("/hello", "hello"),
            route("/orders/*", "orders-any-host"),
            route("api.example.com/orders/*", "orders"),
            route("api.example.com/orders/special", "special"),
            route("api.example.com/orders/archive/*", "archive"),
            route("*.example.com/orders/*", "tenant-orders"),
            route("*.eu.example.com/orders/*", "eu-orders"),
        ])
    }

    /// The function a request reaches, and the path it sees.
    fn reach(host: &str, path: &str) -> Option<(String, String)> {
        let table = table();
        let found = table.find(host, path)?;
        Some((found.route.function.to_string(), found.rest.to_string()))
    }

    fn at(function: &str, rest: &str) -> Option<(String, String)> {
        Some((function.to_string(), rest.to_string()))
    }

    #[test]
    fn the_most_specific_route_wins() {
        // An exact host before a wildcard, a wildcard before any host.
        assert_eq!(reach("api.example.com", "/orders/42"), at("orders", "42"));
        assert_eq!(
            reach("shop.example.com", "/orders/42"),
            at("tenant-orders", "42")
        );
        assert_eq!(reach("a.eu.example.com", "/orders/1"), at("eu-orders", "1"));
        assert_eq!(
            reach("other.org", "/orders/42"),
            at("orders-any-host", "42")
        );
        // An exact path before the longest prefix, the longest prefix before a shorter one.
        assert_eq!(
            reach("api.example.com", "/orders/special"),
            at("special", "")
        );
        assert_eq!(
            reach("api.example.com", "/orders/archive/7"),
            at("archive", "7")
        );
        assert_eq!(reach("api.example.com", "/orders"), at("orders", ""));
        // A host's routes that do not match fall through to less specific hosts.
        assert_eq!(reach("api.example.com", "/hello"), at("hello", ""));
        assert_eq!(reach("other.org", "/ordersx"), at("catch-all", "ordersx"));
        // A wildcard is for subdomains, not the domain itself.
        assert_eq!(
            reach("example.com", "/orders/1"),
            at("orders-any-host", "1")
        );
    }

    #[test]
    fn nothing_matches_without_a_route() {
        let table = RouteTable::new(vec![route("api.example.com/orders/*", "orders")]);
        assert!(table.find("api.example.com", "/other").is_none());
        assert!(table.find("else.example.com", "/orders/1").is_none());
    }

    #[test]
    fn patterns_parse_and_print_back() {
        for pattern in [
            "/hello",
            "/orders/*",
            "/*",
            "api.example.com/x",
            "*.example.com/a/*",
        ] {
            assert_eq!(RoutePattern::parse(pattern).unwrap().to_string(), pattern);
        }
        assert_eq!(
            RoutePattern::parse("API.Example.com/x")
                .unwrap()
                .to_string(),
            "api.example.com/x"
        );
        for bad in [
            "hello",
            "api.example.com",
            "/a/*/b",
            "/a*",
            "/a/",
            "/a/../b",
            "bad host/x",
            "-x.com/a",
            "/fn/x",
            "/v1",
            "/metrics",
            "/healthz",
            "/ui/*",
        ] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn the_documented_host_pattern_agrees_with_the_parser() {
        let documented = regex::Regex::new(HOST_PATTERN).unwrap();
        for host in [
            "api.example.com",
            "*.example.com",
            "localhost",
            "A-1.b",
            "x",
            "-a.com",
            "a-.com",
            "a..b",
            "*.",
            "a b",
            "*x.com",
            "a.*.com",
        ] {
            assert_eq!(
                documented.is_match(host),
                HostPattern::parse(host).is_ok(),
                "{host}"
            );
        }
    }

    #[test]
    fn a_claim_covers_its_host_and_its_subdomains() {
        let host = |h: &str| HostPattern::parse(h).unwrap();
        assert!(host("*.example.com").covers(&host("api.example.com")));
        assert!(host("*.example.com").covers(&host("*.eu.example.com")));
        assert!(!host("*.example.com").covers(&host("example.com")));
        assert!(!host("api.example.com").covers(&host("*.example.com")));
        assert!(host("api.example.com").overlaps(&host("*.example.com")));
        assert!(!host("a.example.com").overlaps(&host("b.example.com")));
    }
}
