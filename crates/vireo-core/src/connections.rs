//! Bounds on the connections the host opens for functions to databases and brokers
//! (`[connections]` in the server's config): the host owns them, pools them per version and
//! destination, and a guest can take no more than these limits give it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Connections one pool (a version, destination and credentials) may hold open.
    pub pool_size: usize,
    /// A pooled connection unused this long is closed; 0 closes each connection once its
    /// invocation is done with it (no pooling).
    pub idle_timeout_secs: u64,
    /// Connecting, or waiting for a free pooled connection, gives up after this long.
    pub connect_timeout_ms: u64,
    /// One query or command gives up after this long (the invocation's timeout bounds it too);
    /// its connection is then closed, never returned to the pool.
    pub call_timeout_ms: u64,
    /// Connections one instance may hold open at once.
    pub max_open_per_instance: usize,
    /// Destinations (distinct connection strings) one version may have pools for.
    pub max_pools_per_version: usize,
    /// Rows one query may return.
    pub max_rows: usize,
    /// Bytes of values one query or command may return.
    pub max_result_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            pool_size: 8,
            idle_timeout_secs: 60,
            connect_timeout_ms: 5_000,
            call_timeout_ms: 30_000,
            max_open_per_instance: 4,
            max_pools_per_version: 16,
            max_rows: 10_000,
            max_result_bytes: 16 << 20,
        }
    }
}

impl ConnectionLimits {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// The name of the first limit that is zero, which would refuse every connection.
    pub fn first_zero(&self) -> Option<&'static str> {
        [
            ("connections.pool_size", self.pool_size as u64),
            ("connections.connect_timeout_ms", self.connect_timeout_ms),
            ("connections.call_timeout_ms", self.call_timeout_ms),
            (
                "connections.max_open_per_instance",
                self.max_open_per_instance as u64,
            ),
            (
                "connections.max_pools_per_version",
                self.max_pools_per_version as u64,
            ),
            ("connections.max_rows", self.max_rows as u64),
            ("connections.max_result_bytes", self.max_result_bytes as u64),
        ]
        .into_iter()
        .find(|(_, value)| *value == 0)
        .map(|(name, _)| name)
    }
}
