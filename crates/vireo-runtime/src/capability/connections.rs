//! What every database and broker capability shares: a version's pools (one per destination
//! and credentials, so a thousand invocations share a handful of connections rather than open a
//! thousand), the per-instance cap on open connections, and the approval of a destination by
//! the version's `allowed_outbound_hosts` before anything is opened. A pool is made only for an
//! approved destination and connects to exactly the address approved.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deadpool::Runtime;
use deadpool::managed::{Manager, Object, Pool, PoolError, Timeouts};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vireo_core::egress::{Destination, Scheme};
use vireo_core::{BoxError, ConnectionLimits};

use super::network::{Approver, Refusal};
use super::trust::OutboundTrust;
use super::{Capability, Grants, Invocation, Package};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

/// Connections the host holds open to databases and brokers, idle or lent, by kind
/// (`postgres`, `mysql`, `redis`, `mqtt`).
pub const OUTBOUND_CONNECTIONS_METRIC: &str = "vireo_outbound_connections";
/// How long one call on a lent connection (a query, a command, a publish) took, by kind.
pub const OUTBOUND_CALL_DURATION_METRIC: &str = "vireo_outbound_call_duration_seconds";

/// One protocol of outbound connections: its interfaces and what makes its connections.
pub(crate) trait Protocol {
    const NAME: &str;
    const PACKAGES: &[Package];
    /// Makes and recycles its pooled connections.
    type Manager: Manager;

    fn link(linker: &mut wasmtime::component::Linker<Host>) -> wasmtime::Result<()>;
}

/// The capability of one protocol's connections, in the `[connections]` limits; every
/// protocol has the same lifetimes: pools per version, slots per instance.
pub(crate) struct Outbound<P> {
    limits: ConnectionLimits,
    trust: OutboundTrust,
    protocol: std::marker::PhantomData<P>,
}

impl<P: Protocol> Capability for Outbound<P> {
    const NAME: &str = P::NAME;
    const PACKAGES: &[Package] = P::PACKAGES;
    type Version = Arc<Destinations<P::Manager>>;
    type Instance = Active<P::Manager>;

    fn new(settings: &EngineSettings, _: &HostServices) -> Self {
        Self {
            limits: settings.connections,
            trust: settings.outbound_trust.clone(),
            protocol: std::marker::PhantomData,
        }
    }

    fn link(linker: &mut wasmtime::component::Linker<Host>) -> wasmtime::Result<()> {
        P::link(linker)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(Destinations::new(
            grants,
            self.limits,
            self.trust.clone(),
            P::NAME,
        ))
    }

    fn instance(destinations: &Self::Version, _: &LogCapture) -> Self::Instance {
        destinations.instance()
    }

    fn arm(active: &mut Self::Instance, invocation: &Invocation) {
        active.tally = invocation.outbound.clone();
    }
}

/// What one invocation did over its database and broker connections, counted as it goes.
#[derive(Debug, Default)]
pub(crate) struct CallTally {
    calls: AtomicU64,
    bytes: AtomicU64,
}

/// What an invocation did over database and broker connections: the calls it made (queries,
/// statements, commands, publishes) and the bytes of the results it read and the messages it
/// published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundUse {
    pub calls: u64,
    pub bytes: u64,
}

impl CallTally {
    pub(crate) fn used(&self) -> OutboundUse {
        OutboundUse {
            calls: self.calls.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn called(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn moved(&self, bytes: usize) {
        self.bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// A version's connections of one kind (`M` makes them): where it may connect, and its pools.
pub(crate) struct Destinations<M: Manager> {
    approver: Approver,
    pools: Pools<Counted<M>>,
    pub limits: ConnectionLimits,
    /// Whom connections over TLS trust.
    pub trust: OutboundTrust,
    kind: &'static str,
}

/// An instance's share of its version's connections, the ones it holds, and the tally of the
/// invocation it serves.
pub(crate) struct Active<M: Manager> {
    pub destinations: Arc<Destinations<M>>,
    slots: InstanceSlots,
    tally: Arc<CallTally>,
}

/// A connection lent to the guest, with its instance slot; `None` once it was closed after a
/// failed call. Dropping it returns the connection to its pool (or closes it, when the pool
/// keeps none idle) and frees the slot.
pub struct Lent<M: Manager> {
    pub object: Option<Object<M>>,
    pool: Counted<M>,
    /// `connections.idle_timeout_secs` is not 0: the connection goes back to the pool.
    keep_idle: bool,
    tally: Arc<CallTally>,
    _slot: OwnedSemaphorePermit,
}

/// Where a guest asks to connect: the scheme, host and port its address names, and the
/// address itself (with any credentials), which with the approved address keys the pool.
pub(crate) struct Asked<'a> {
    pub scheme: Scheme,
    pub host: &'a str,
    pub port: u16,
    pub address: &'a str,
}

impl<M: Manager> Destinations<M> {
    pub fn new(
        grants: &Grants,
        limits: ConnectionLimits,
        trust: OutboundTrust,
        kind: &'static str,
    ) -> Self {
        Self {
            approver: grants.approver(),
            pools: Pools::new(&limits),
            limits,
            trust,
            kind,
        }
    }

    /// The instance's share, with no connections held yet.
    pub fn instance(self: &Arc<Self>) -> Active<M> {
        Active {
            slots: InstanceSlots::new(&self.limits),
            destinations: self.clone(),
            tally: Arc::default(),
        }
    }
}

impl<M: Manager> Active<M>
where
    M::Error: std::fmt::Display + Into<BoxError>,
{
    /// Lends a connection to `asked` if the version may connect there: the slot first, then
    /// the grant, and only then the pool (made by `manager` for the approved address) and
    /// a connection from it. The error says why, without the address.
    pub async fn lend(
        &self,
        asked: Asked<'_>,
        manager: impl FnOnce(SocketAddr) -> Result<M, String>,
    ) -> Result<Lent<M>, String> {
        let destinations = &self.destinations;
        let limits = &destinations.limits;
        let slot = self.slots.take(limits)?;
        let approved = approve(
            &destinations.approver,
            asked.scheme,
            asked.host,
            asked.port,
            limits,
        )
        .await?;
        let pool =
            destinations
                .pools
                .get_or_make(format!("{approved} {}", asked.address), || {
                    Ok(Counted::new(
                        pool(manager(approved)?, limits)?,
                        destinations.kind,
                    ))
                })?;
        let idle = limits.idle_timeout();
        pool.inner.retain(|_, metrics| metrics.last_used() < idle);
        let object = pool.inner.get().await;
        pool.recount();
        Ok(Lent {
            object: Some(object.map_err(unavailable)?),
            pool,
            keep_idle: limits.idle_timeout_secs > 0,
            tally: self.tally.clone(),
            _slot: slot,
        })
    }
}

/// Why no connection could be had: a client's error with its causes (a failed TLS handshake
/// says why only in its source), or the pool's (a timeout).
fn unavailable<E: std::fmt::Display + Into<BoxError>>(error: PoolError<E>) -> String {
    match error {
        PoolError::Backend(error) => {
            let error: BoxError = error.into();
            vireo_core::causes(error.as_ref())
        }
        other => other.to_string(),
    }
}

/// Why a call on a lent connection did not run to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cut {
    #[error("the connection was closed after a failed call")]
    Closed,
    #[error("the call took longer than {0} ms (connections.call_timeout_ms)")]
    Late(u64),
}

impl<M: Manager> Lent<M> {
    /// Runs `work` on the lent connection within the call timeout. A call that takes longer is
    /// abandoned (`stop` first gets the connection, to stop the server's side of it) and the
    /// connection closed, never lent again; so is one whose result `broken` says left it
    /// unusable.
    pub async fn call<T>(
        &mut self,
        limits: &ConnectionLimits,
        work: impl AsyncFnOnce(&mut M::Type) -> T,
        broken: impl FnOnce(&T, &M::Type) -> bool,
        stop: impl FnOnce(&M::Type),
    ) -> Result<T, Cut> {
        let connection = self.object.as_deref_mut().ok_or(Cut::Closed)?;
        self.tally.called();
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(limits.call_timeout(), work(connection)).await;
        self.pool.durations.record(started.elapsed());
        let (result, close) = match outcome {
            Ok(result) => {
                let close = broken(&result, connection);
                (Ok(result), close)
            }
            Err(_) => {
                stop(connection);
                (Err(Cut::Late(limits.call_timeout_ms)), true)
            }
        };
        if close {
            self.close();
        }
        result
    }

    /// Takes the connection out of the pool for good: dropping it closes it.
    fn close(&mut self) {
        self.object.take().map(Object::take);
        self.pool.recount();
    }

    /// The budget of one call's result, whose bytes count for the invocation.
    pub fn budget(&self, limits: &ConnectionLimits) -> ResultBudget {
        ResultBudget::new(limits, self.tally.clone())
    }

    /// Counts `bytes` sent for the invocation (a published message).
    pub fn sent(&self, bytes: usize) {
        self.tally.moved(bytes);
    }
}

/// A pool of `limits.pool_size` connections made by `manager`, whose waits, connects and
/// recycles give up after the connect timeout.
fn pool<M: Manager>(manager: M, limits: &ConnectionLimits) -> Result<Pool<M>, String> {
    let timeout = Some(limits.connect_timeout());
    Pool::builder(manager)
        .max_size(limits.pool_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: timeout,
            create: timeout,
            recycle: timeout,
        })
        .build()
        .map_err(|e| e.to_string())
}

/// A pool that keeps `vireo_outbound_connections` up to date with the connections it holds:
/// counted after whatever may open or close one (a borrow, the idle sweep, a connection closed
/// after a failed call), and uncounted when the pool and every connection lent from it are gone.
struct Counted<M: Manager> {
    inner: Pool<M>,
    open: Arc<OpenCount>,
    durations: metrics::Histogram,
}

/// The connections a pool was last counted holding, and the gauge they are in.
struct OpenCount {
    counted: AtomicUsize,
    gauge: metrics::Gauge,
}

impl<M: Manager> Drop for Lent<M> {
    fn drop(&mut self) {
        if !self.keep_idle {
            self.close();
        }
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.gauge.decrement(*self.counted.get_mut() as f64);
    }
}

impl<M: Manager> Clone for Counted<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            open: self.open.clone(),
            durations: self.durations.clone(),
        }
    }
}

impl<M: Manager> Counted<M> {
    fn new(inner: Pool<M>, kind: &'static str) -> Self {
        Self {
            inner,
            open: Arc::new(OpenCount {
                counted: AtomicUsize::new(0),
                gauge: metrics::gauge!(OUTBOUND_CONNECTIONS_METRIC, "kind" => kind),
            }),
            durations: metrics::histogram!(OUTBOUND_CALL_DURATION_METRIC, "kind" => kind),
        }
    }

    /// Moves the gauge by what the pool opened or closed since it was last counted.
    fn recount(&self) {
        let now = self.inner.status().size;
        let before = self.open.counted.swap(now, Ordering::AcqRel);
        self.open.gauge.increment(now as f64 - before as f64);
    }
}

/// A version's pools of one kind, by destination and credentials; at most
/// `max_pools_per_version` of them, so a guest cycling connection strings cannot pile them up.
struct Pools<P> {
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
async fn approve(
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

/// What a result may still grow by: rows before `max_rows`, bytes before `max_result_bytes`;
/// what it spends counts in the invocation's tally.
pub(crate) struct ResultBudget {
    rows: usize,
    left: usize,
    limits: ConnectionLimits,
    tally: Arc<CallTally>,
}

impl ResultBudget {
    pub fn new(limits: &ConnectionLimits, tally: Arc<CallTally>) -> Self {
        Self {
            rows: 0,
            left: limits.max_result_bytes,
            limits: *limits,
            tally,
        }
    }

    /// One more row.
    pub fn row(&mut self) -> Result<(), String> {
        self.rows += 1;
        if self.rows > self.limits.max_rows {
            return Err(format!(
                "the query returned more than {} rows (connections.max_rows)",
                self.limits.max_rows
            ));
        }
        Ok(())
    }

    pub fn spend(&mut self, bytes: usize) -> Result<(), String> {
        self.tally.moved(bytes);
        self.left = self.left.checked_sub(bytes).ok_or_else(|| {
            format!(
                "the result is larger than {} bytes (connections.max_result_bytes)",
                self.limits.max_result_bytes
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
    fn results_stop_at_their_byte_and_row_limits_and_count_their_bytes() {
        let tally = Arc::new(CallTally::default());
        let mut budget = ResultBudget::new(&limits(), tally.clone());
        budget.spend(6).unwrap();
        budget.spend(4).unwrap();
        assert!(budget.spend(1).unwrap_err().contains("max_result_bytes"));
        assert_eq!(
            tally.used(),
            OutboundUse {
                calls: 0,
                bytes: 11
            }
        );
        let limits = ConnectionLimits {
            max_rows: 2,
            ..limits()
        };
        let mut budget = ResultBudget::new(&limits, Arc::default());
        budget.row().unwrap();
        budget.row().unwrap();
        assert!(budget.row().unwrap_err().contains("max_rows"));
    }
}
