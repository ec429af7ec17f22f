//! What every database and broker capability shares: a version's pools (one per destination
//! and credentials, so a thousand invocations share a handful of connections rather than open a
//! thousand), the per-instance cap on open connections, and the approval of a destination by
//! the version's `allowed_outbound_hosts` before anything is opened. A pool is made only for an
//! approved destination and connects to exactly the address approved.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vireo_core::ConnectionLimits;
use vireo_core::egress::{Destination, Scheme};

use super::network::{Approver, Refusal};

/// A version's pools of one kind, by destination and credentials; at most
/// `max_pools_per_version` of them, so a guest cycling connection strings cannot pile them up.
pub(crate) struct Pools<P> {
    pools: Mutex<HashMap<String, P>>,
    max: usize,
}

impl<P: Clone> Pools<P> {
    pub fn new(limits: &ConnectionLimits) -> Self {
        Self {
            pools: Mutex::default(),
            max: limits.max_pools_per_version,
        }
    }

    /// The pool for `key` (the connection string and the approved address), made on first use.
    pub fn get_or_make(
        &self,
        key: String,
        make: impl FnOnce() -> Result<P, String>,
    ) -> Result<P, String> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        if pools.len() >= self.max {
            return Err(format!(
                "the version already has pools for {} destinations (connections.max_pools_per_version)",
                self.max
            ));
        }
        let pool = make()?;
        pools.insert(key, pool.clone());
        Ok(pool)
    }
}

/// The connections one instance may hold open at once.
#[derive(Clone)]
pub(crate) struct InstanceSlots(Arc<Semaphore>);

impl InstanceSlots {
    pub fn new(limits: &ConnectionLimits) -> Self {
        Self(Arc::new(Semaphore::new(limits.max_open_per_instance)))
    }

    /// A slot for one more open connection, held until the guest drops it.
    pub fn take(&self, limits: &ConnectionLimits) -> Result<OwnedSemaphorePermit, String> {
        self.0.clone().try_acquire_owned().map_err(|_| {
            format!(
                "the instance already holds {} open connections (connections.max_open_per_instance)",
                limits.max_open_per_instance
            )
        })
    }
}

/// The one address a connection to `scheme://host:port` goes to, if the version's grants allow
/// it; the error says why not, without the connection string (it may carry a password).
pub(crate) async fn approve(
    approver: &Approver,
    scheme: Scheme,
    host: &str,
    port: u16,
    limits: &ConnectionLimits,
) -> Result<SocketAddr, String> {
    let destination = Destination::parse(host);
    let deadline = tokio::time::Instant::now() + limits.connect_timeout();
    let scheme_name = scheme.name();
    match approver.approve(scheme, &destination, port, deadline).await {
        Ok(addresses) => addresses
            .into_iter()
            .next()
            .ok_or_else(|| format!("{destination} has no address")),
        Err(Refusal::NotAllowed) => Err(format!(
            "{scheme_name}://{destination}:{port} is not in the version's allowed_outbound_hosts"
        )),
        Err(Refusal::NotPublic) => Err(format!(
            "{destination} resolves to an address that is not public; name the address itself in allowed_outbound_hosts"
        )),
        Err(Refusal::ResolveTimeout) => Err(format!("resolving {destination} timed out")),
        Err(Refusal::Resolve(e)) => Err(format!("resolving {destination}: {e}")),
    }
}

/// Bytes a result may still grow by before it passes `max_result_bytes`.
pub(crate) struct ResultBudget {
    left: usize,
    max: usize,
}

impl ResultBudget {
    pub fn new(limits: &ConnectionLimits) -> Self {
        Self {
            left: limits.max_result_bytes,
            max: limits.max_result_bytes,
        }
    }

    pub fn spend(&mut self, bytes: usize) -> Result<(), String> {
        self.left = self.left.checked_sub(bytes).ok_or_else(|| {
            format!(
                "the result is larger than {} bytes (connections.max_result_bytes)",
                self.max
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_pools_per_version: 2,
            max_open_per_instance: 1,
            max_result_bytes: 10,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn a_version_has_at_most_its_pools() {
        let pools = Pools::new(&limits());
        assert_eq!(pools.get_or_make("a".into(), || Ok(1)), Ok(1));
        assert_eq!(pools.get_or_make("a".into(), || Ok(9)), Ok(1), "reused");
        assert_eq!(pools.get_or_make("b".into(), || Ok(2)), Ok(2));
        let refused = pools.get_or_make("c".into(), || Ok(3)).unwrap_err();
        assert!(refused.contains("max_pools_per_version"), "{refused}");
    }

    #[test]
    fn an_instance_holds_at_most_its_connections() {
        let slots = InstanceSlots::new(&limits());
        let held = slots.take(&limits()).unwrap();
        assert!(slots.take(&limits()).is_err());
        drop(held);
        assert!(slots.take(&limits()).is_ok());
    }

    #[test]
    fn results_stop_at_their_byte_limit() {
        let mut budget = ResultBudget::new(&limits());
        budget.spend(6).unwrap();
        budget.spend(4).unwrap();
        assert!(budget.spend(1).unwrap_err().contains("max_result_bytes"));
    }
}
