//! How many outgoing requests functions may make, so that no invocation can take the server's
//! file descriptors: per invocation, how many may be open at once and how many it may send in
//! all; server-wide, how many connections may be open at once. A request over a limit fails in
//! the function with `connection-limit-reached` before anything is opened.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits; the server fills them from its `[egress]` configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressLimits {
    /// Outgoing requests one invocation may have open at once.
    pub concurrent_per_invocation: usize,
    /// Outgoing requests one invocation may send in all.
    pub requests_per_invocation: u32,
    /// Outgoing connections open at once, all invocations together.
    pub max_connections: usize,
}

impl Default for EgressLimits {
    fn default() -> Self {
        Self {
            concurrent_per_invocation: 16,
            requests_per_invocation: 256,
            max_connections: 1024,
        }
    }
}

/// The server-wide count of open outgoing connections, shared by every version's policy.
#[derive(Clone)]
pub(crate) struct ServerConnections(Arc<Semaphore>);

impl ServerConnections {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Requests,
    Concurrent,
    Server,
}

/// One invocation's share of outgoing requests.
pub(crate) struct InvocationBudget {
    limits: EgressLimits,
    open: Arc<Semaphore>,
    sent: u32,
    server: ServerConnections,
}

/// Held by an outgoing request until its connection is closed.
pub(crate) struct ConnectionSlot {
    _invocation: OwnedSemaphorePermit,
    _server: OwnedSemaphorePermit,
}

impl InvocationBudget {
    pub fn new(limits: EgressLimits, server: ServerConnections) -> Self {
        Self {
            limits,
            open: Arc::new(Semaphore::new(limits.concurrent_per_invocation)),
            sent: 0,
            server,
        }
    }

    /// A slot for one more request, or the limit it would exceed. Refused requests are not
    /// counted as sent.
    pub fn take(&mut self) -> Result<ConnectionSlot, Exceeded> {
        if self.sent >= self.limits.requests_per_invocation {
            return Err(Exceeded::Requests);
        }
        let invocation = self
            .open
            .clone()
            .try_acquire_owned()
            .map_err(|_| Exceeded::Concurrent)?;
        let server = self
            .server
            .0
            .clone()
            .try_acquire_owned()
            .map_err(|_| Exceeded::Server)?;
        self.sent += 1;
        Ok(ConnectionSlot {
            _invocation: invocation,
            _server: server,
        })
    }

    /// Why a request was refused, naming the setting that bounds it.
    pub fn describe(&self, exceeded: Exceeded) -> String {
        let limits = &self.limits;
        match exceeded {
            Exceeded::Requests => format!(
                "the invocation has sent its {} outgoing requests (egress.max_requests_per_invocation)",
                limits.requests_per_invocation
            ),
            Exceeded::Concurrent => format!(
                "the invocation has {} outgoing requests open (egress.max_concurrent_per_invocation)",
                limits.concurrent_per_invocation
            ),
            Exceeded::Server => format!(
                "all {} outgoing connections of the server are open (egress.max_connections)",
                limits.max_connections
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrent: usize, requests: u32, server: usize) -> EgressLimits {
        EgressLimits {
            concurrent_per_invocation: concurrent,
            requests_per_invocation: requests,
            max_connections: server,
        }
    }

    #[test]
    fn an_invocation_holds_at_most_its_concurrent_limit() {
        let mut budget = InvocationBudget::new(limits(2, 10, 100), ServerConnections::new(100));
        let first = budget.take().unwrap();
        let _second = budget.take().unwrap();
        assert_eq!(budget.take().err(), Some(Exceeded::Concurrent));
        drop(first);
        assert!(budget.take().is_ok(), "a closed connection frees its slot");
    }

    #[test]
    fn an_invocation_sends_at_most_its_total_and_refusals_do_not_count() {
        let mut budget = InvocationBudget::new(limits(1, 3, 100), ServerConnections::new(100));
        let held = budget.take().unwrap();
        assert_eq!(budget.take().err(), Some(Exceeded::Concurrent));
        drop(held);
        for _ in 0..2 {
            budget.take().unwrap();
        }
        assert_eq!(budget.take().err(), Some(Exceeded::Requests));
        assert!(
            budget
                .describe(Exceeded::Requests)
                .contains("its 3 outgoing")
        );
    }

    #[test]
    fn invocations_share_the_servers_connections() {
        let server = ServerConnections::new(3);
        let mut first = InvocationBudget::new(limits(2, 10, 3), server.clone());
        let mut second = InvocationBudget::new(limits(2, 10, 3), server);
        let _a = (first.take().unwrap(), first.take().unwrap());
        let b = second.take().unwrap();
        assert_eq!(second.take().err(), Some(Exceeded::Server));
        drop(b);
        assert!(second.take().is_ok());
    }
}
