//! Where a version may connect. A destination is approved only when its scheme, host and port
//! match the version's `allowed_outbound_hosts`; a host name must resolve to public addresses
//! only (a private or loopback destination must be named literally by the pattern: an IP
//! literal, or `localhost` for loopback, which is never resolved), and
//! the approval is the list of addresses checked, so a connection goes to exactly those. Every
//! outgoing connection, whatever its protocol, asks here.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use vireo_core::egress::{self, AllowList, Destination, InvalidPattern, Scheme};
use vireo_core::{Name, VersionSettings};

use super::addresses;
use std::sync::Arc;

use super::limits::{EgressLimits, InvocationBudget, ServerConnections};

/// The one name that stands for an address: loopback, on IPv4 then IPv6.
const LOCALHOST: &str = "localhost";

/// The first address of a resolver's answer that is not public, which refuses the whole answer.
fn first_not_public(resolved: &[SocketAddr]) -> Option<std::net::IpAddr> {
    resolved
        .iter()
        .map(SocketAddr::ip)
        .find(|ip| !addresses::is_public(*ip))
}

/// Settings whose `allowed_outbound_hosts` cannot be granted; the message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidOutbound {
    #[error(
        "allowed_outbound_hosts may list at most {} patterns",
        egress::MAX_PATTERNS
    )]
    TooMany,
    #[error(transparent)]
    Pattern(#[from] InvalidPattern),
}

/// The version's outgoing allow-list: the one rule deploy checks and load applies, so a version
/// that deployed also loads.
pub(crate) fn allowed(settings: &VersionSettings) -> Result<AllowList, InvalidOutbound> {
    if settings.allowed_outbound_hosts.len() > egress::MAX_PATTERNS {
        return Err(InvalidOutbound::TooMany);
    }
    Ok(AllowList::parse(&settings.allowed_outbound_hosts)?)
}

/// Why a destination was not approved.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No pattern of the version matches it.
    NotAllowed,
    /// A name resolved to an address that is not public.
    NotPublic,
    /// Resolving the name took longer than the connection may.
    ResolveTimeout,
    Resolve(std::io::Error),
}

/// A version's outgoing policy for HTTP, shared by its instances: where it may go, and how many
/// requests it may have open.
pub(crate) struct OutboundPolicy {
    approver: Approver,
    limits: EgressLimits,
    connections: ServerConnections,
    /// How HTTPS verifies the servers it reaches.
    tls: Arc<rustls::ClientConfig>,
}

impl OutboundPolicy {
    pub fn new(
        approver: Approver,
        limits: EgressLimits,
        connections: ServerConnections,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Self {
            approver,
            limits,
            connections,
            tls,
        }
    }

    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// A fresh share of outgoing connections for one invocation.
    pub fn budget(&self) -> InvocationBudget {
        InvocationBudget::new(self.limits, self.connections.clone())
    }

    pub fn approver(&self) -> &Approver {
        &self.approver
    }

    /// Logs a refusal over a limit, naming whose.
    pub fn over_limit(&self, why: &str) {
        tracing::warn!(
            namespace = %self.approver.namespace,
            function = %self.approver.function,
            reason = %why,
            "outgoing requests refused over a limit"
        );
    }
}

/// Where a version may connect, whatever the protocol: the one check every outgoing
/// connection passes.
pub(crate) struct Approver {
    namespace: Name,
    function: Name,
    allowed: AllowList,
}

impl Approver {
    pub fn new((namespace, function): (Name, Name), allowed: AllowList) -> Self {
        Self {
            namespace,
            function,
            allowed,
        }
    }

    /// The addresses a connection to `scheme://host:port` may go to, resolved before `deadline`.
    pub async fn approve(
        &self,
        scheme: Scheme,
        host: &Destination,
        port: u16,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        if !self.allowed.allows(scheme, host, port) {
            self.refused(host, port, "not in allowed_outbound_hosts");
            return Err(Refusal::NotAllowed);
        }
        match host {
            // The matching pattern named this very address.
            Destination::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
            // A pattern naming `localhost` names loopback as literally as `127.0.0.1` does (Spin
            // users write it); it is never resolved, so no resolver can point it elsewhere.
            Destination::Name(name) if name == LOCALHOST => Ok(vec![
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            ]),
            Destination::Name(name) => self.resolve(name, port, deadline).await,
        }
    }

    /// The addresses of a granted name, all of them public: one private answer among public
    /// ones refuses the connection, so no resolver answer can smuggle in an internal address.
    async fn resolve(
        &self,
        name: &str,
        port: u16,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let resolved: Vec<SocketAddr> =
            tokio::time::timeout_at(deadline, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| Refusal::ResolveTimeout)?
                .map_err(Refusal::Resolve)?
                .collect();
        if let Some(private) = first_not_public(&resolved) {
            let reason = format!("resolves to the non-public address {private}");
            self.refused(name, port, &reason);
            return Err(Refusal::NotPublic);
        }
        Ok(resolved)
    }

    /// Logs a socket connect that no grant allows.
    pub fn refused_address(&self, address: SocketAddr) {
        self.refused(
            address.ip(),
            address.port(),
            "not in allowed_outbound_hosts",
        );
    }

    /// Logs a refusal: where to, never the path, headers, body or connection string (they may
    /// carry secrets).
    fn refused(&self, host: impl std::fmt::Display, port: u16, reason: &str) {
        tracing::info!(
            namespace = %self.namespace,
            function = %self.function,
            destination = %format_args!("{host}:{port}"),
            reason,
            "outgoing connection refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(patterns: &[&str]) -> VersionSettings {
        VersionSettings {
            allowed_outbound_hosts: patterns.iter().map(|p| p.to_string()).collect(),
            ..VersionSettings::default()
        }
    }

    #[test]
    fn one_non_public_address_refuses_a_names_whole_answer() {
        let at = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 80);
        assert_eq!(first_not_public(&[at("93.184.215.14")]), None);
        for rebound in ["127.0.0.1", "10.0.0.5", "::1", "169.254.169.254"] {
            let answer = [at("93.184.215.14"), at(rebound)];
            assert_eq!(
                first_not_public(&answer),
                Some(rebound.parse().unwrap()),
                "{rebound}"
            );
        }
    }

    #[test]
    fn an_invalid_entry_is_named() {
        let err = allowed(&settings(&["https://ok.example.com", "api.example.com"])).unwrap_err();
        assert!(err.to_string().contains("\"api.example.com\""), "{err}");
    }

    #[test]
    fn at_most_max_patterns_are_granted() {
        let many: Vec<String> = (0..=egress::MAX_PATTERNS)
            .map(|i| format!("https://h{i}.example.com"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(allowed(&settings(&many)), Err(InvalidOutbound::TooMany));
        assert!(allowed(&settings(&many[1..])).is_ok());
    }
}
