//! Outbound Redis for functions: Spin's `fermyon:spin/redis@2.0.0`. A guest opens a
//! `redis://[user:password@]host[:port][/db]` address; the host checks its host and port against
//! the version's `allowed_outbound_hosts` (`redis://host:port`) and lends the guest a
//! connection from the version's pool for that destination and credentials. Every command is
//! bounded in time and in the bytes it returns; a command that times out closes its connection
//! rather than hand a blocked one to the next borrower. Commands that would turn a pooled
//! connection into something else (subscriptions, `MONITOR`, replication) are refused.

mod pool;
mod spin;

use pool::{Connections, Tls};
use redis::aio::ConnectionLike as _;
use redis::{ConnectionAddr, IntoConnectionInfo as _, Value};
use vireo_core::egress::Scheme;
use wasmtime::component::Linker;

use super::Package;
use super::connections::{Active, Asked, Lent, Protocol, ResultBudget};
use crate::host::Host;

/// Commands a guest may not run on a pooled connection: they leave it subscribed, streaming or
/// closed for whoever borrows it next.
const REFUSED_COMMANDS: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "MONITOR",
    "SYNC",
    "PSYNC",
    "REPLICAOF",
    "SLAVEOF",
    "QUIT",
    "RESET",
    "HELLO",
    "SHUTDOWN",
];

/// Why a Redis call failed, before it is said in the interface's error type.
#[derive(Debug)]
pub(crate) enum Failure {
    InvalidAddress,
    TypeError,
    Other(String),
}

/// Redis connections.
pub(crate) struct Redis;

/// A connection lent to the guest.
pub type Connection = Lent<Connections>;

impl Protocol for Redis {
    const NAME: &str = "redis";
    const PACKAGES: &[Package] = &[Package::interfaces("fermyon:spin", "2.0", &["redis"])];
    type Manager = Connections;

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        spin::link(linker)
    }
}

impl Active<Connections> {
    /// A connection to `address`, if the version may connect there.
    async fn open(&self, address: &str) -> Result<Connection, Failure> {
        let (scheme, plain) = match address.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("rediss") => {
                (Scheme::Rediss, format!("redis://{rest}"))
            }
            _ => (Scheme::Redis, address.to_string()),
        };
        let info = plain
            .as_str()
            .into_connection_info()
            .map_err(|_| Failure::InvalidAddress)?;
        let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(Failure::InvalidAddress);
        };
        let tls = match scheme {
            Scheme::Rediss => Some(Tls {
                name: super::server_name(&host).map_err(Failure::Other)?,
                config: self.destinations.trust.config(),
            }),
            _ => None,
        };
        let asked = Asked {
            scheme,
            host: &host,
            port,
            address,
        };
        self.lend(asked, |approved| {
            Ok(Connections::new(
                info.redis_settings().clone(),
                approved,
                tls,
            ))
        })
        .await
        .map_err(Failure::Other)
    }

    /// Runs `command`, within the time and result limits.
    async fn run(
        &self,
        connection: &mut Connection,
        command: redis::Cmd,
    ) -> Result<Value, Failure> {
        let limits = &self.destinations.limits;
        let sending = async |pooled: &mut redis::aio::MultiplexedConnection| {
            pooled.req_packed_command(&command).await
        };
        let broken = |result: &redis::RedisResult<Value>, _: &_| {
            result.as_ref().is_err_and(|e| e.is_unrecoverable_error())
        };
        let result = match connection.call(limits, sending, broken, |_| {}).await {
            Ok(sent) => sent.map_err(failure),
            Err(cut) => Err(Failure::Other(cut.to_string())),
        };
        let value = result?;
        size(&value, &mut connection.budget(limits)).map_err(Failure::Other)?;
        Ok(value)
    }
}

/// A command the guest named, unless it is one a pooled connection cannot serve.
fn guest_command(name: &str) -> Result<redis::Cmd, Failure> {
    if REFUSED_COMMANDS
        .iter()
        .any(|refused| refused.eq_ignore_ascii_case(name))
    {
        return Err(Failure::Other(format!(
            "{name} is not allowed on a pooled connection"
        )));
    }
    Ok(redis::cmd(name))
}

/// Counts the bytes of `value` against the result limit.
fn size(value: &Value, budget: &mut ResultBudget) -> Result<(), String> {
    match value {
        Value::BulkString(bytes) => budget.spend(bytes.len()),
        Value::SimpleString(text) => budget.spend(text.len()),
        Value::Array(values) | Value::Set(values) => {
            budget.spend(8 * values.len())?;
            values.iter().try_for_each(|value| size(value, budget))
        }
        Value::Map(pairs) => pairs.iter().try_for_each(|(key, value)| {
            size(key, budget)?;
            size(value, budget)
        }),
        _ => budget.spend(8),
    }
}

/// A failed command: `type-error` for a value of the wrong type (the WIT's `incr` on a value
/// that is not a number among them), the server's message otherwise.
fn failure(error: redis::RedisError) -> Failure {
    let wrong_type = error.kind() == redis::ErrorKind::UnexpectedReturnType
        || error.code() == Some("WRONGTYPE")
        || error.detail().is_some_and(|d| d.contains("not an integer"));
    if wrong_type {
        Failure::TypeError
    } else {
        Failure::Other(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use vireo_core::ConnectionLimits;

    use super::*;

    #[test]
    fn commands_that_would_spoil_a_pooled_connection_are_refused() {
        assert!(guest_command("subscribe").is_err());
        assert!(guest_command("MONITOR").is_err());
        assert!(guest_command("GET").is_ok());
    }

    #[test]
    fn nested_replies_count_every_byte() {
        let limits = ConnectionLimits {
            max_result_bytes: 20,
            ..ConnectionLimits::default()
        };
        let reply = Value::Array(vec![Value::BulkString(vec![0; 4])]);
        assert!(size(&reply, &mut ResultBudget::new(&limits, Default::default())).is_ok());
        let big = Value::Array(vec![Value::BulkString(vec![0; 13])]);
        assert!(size(&big, &mut ResultBudget::new(&limits, Default::default())).is_err());
    }
}
