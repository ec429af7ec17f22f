//! `wasi:sockets` TCP for functions, within the version's `tcp://host:port` grants, so socket
//! code from any toolchain (Rust's `std::net`, Python's `socket`) reaches what it was granted and
//! nothing else. A version without a `tcp://` entry gets no sockets and no name lookups at all.
//!
//! Two checks, because WASI splits the work: a name lookup is answered only for a name some
//! `tcp://` entry covers (at any port), and the name is remembered; a connect is allowed only to
//! an address an entry names literally, or to one that a remembered name resolves to (public
//! addresses only, `localhost` as loopback, the rules HTTP follows) at a port an entry grants
//! for it. Each invocation may connect at most `egress.max_requests_per_invocation` times. No
//! listening, accepting or UDP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vireo_core::egress::{AllowList, Destination, Scheme};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, HostNetwork, IpAddress, Network,
};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView, WasiSocketsView as _};

use super::network::Approver;
use crate::host::Host;

/// What a version may do with sockets: `Some` only when it has a `tcp://` entry.
pub(crate) struct SocketGrant {
    approver: Approver,
    allowed: AllowList,
    max_connects: u32,
    resolve_timeout: Duration,
}

impl SocketGrant {
    pub fn new(
        approver: Approver,
        allowed: AllowList,
        max_connects: u32,
        resolve_timeout: Duration,
    ) -> Option<Arc<Self>> {
        allowed.has(Scheme::Tcp).then(|| {
            Arc::new(Self {
                approver,
                allowed,
                max_connects,
                resolve_timeout,
            })
        })
    }
}

/// One instance's sockets: the names it looked up and the connects of its invocation.
pub(crate) struct Sockets {
    grant: Arc<SocketGrant>,
    looked_up: Mutex<Vec<String>>,
    connects: AtomicU32,
}

impl Sockets {
    pub fn new(grant: Arc<SocketGrant>) -> Arc<Self> {
        Arc::new(Self {
            grant,
            looked_up: Mutex::default(),
            connects: AtomicU32::new(0),
        })
    }

    /// A new invocation: its connects count from zero.
    pub fn arm(&self) {
        self.connects.store(0, Ordering::Relaxed);
    }

    /// Whether the guest may look `name` up; a covered name is remembered for the connect.
    fn may_look_up(&self, name: &str) -> bool {
        match Destination::parse(name) {
            Destination::Ip(_) => true,
            Destination::Name(name) => {
                let covered = self
                    .grant
                    .allowed
                    .names(Scheme::Tcp, &Destination::Name(name.clone()));
                if covered {
                    let mut looked_up = self.looked_up.lock().unwrap_or_else(|e| e.into_inner());
                    if !looked_up.contains(&name) {
                        looked_up.push(name);
                    }
                }
                covered
            }
        }
    }

    /// Whether the guest may use `address` as `usage`.
    async fn may(self: Arc<Self>, address: SocketAddr, usage: SocketAddrUse) -> bool {
        match usage {
            // The implicit bind before a connect: any local address, an ephemeral port.
            SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
            SocketAddrUse::TcpConnect => self.may_connect(address).await,
            _ => false,
        }
    }

    async fn may_connect(&self, address: SocketAddr) -> bool {
        let grant = &self.grant;
        if self.connects.fetch_add(1, Ordering::Relaxed) >= grant.max_connects {
            return false;
        }
        let port = address.port();
        if grant
            .allowed
            .allows(Scheme::Tcp, &Destination::Ip(address.ip()), port)
        {
            return true;
        }
        let names = self
            .looked_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let deadline = tokio::time::Instant::now() + grant.resolve_timeout;
        for name in names {
            let destination = Destination::Name(name);
            if !grant.allowed.allows(Scheme::Tcp, &destination, port) {
                continue;
            }
            // Refusals are logged by the approver.
            if let Ok(approved) = grant
                .approver
                .approve(Scheme::Tcp, &destination, port, deadline)
                .await
                && approved.contains(&address)
            {
                return true;
            }
        }
        grant.approver.refused_address(address);
        false
    }

    /// The check wasmtime-wasi asks before a socket binds or connects. Its future must be
    /// `Sync`, which the resolver's is not: the check runs as a task, awaited by handle.
    pub fn check(
        sockets: Arc<Self>,
    ) -> impl Fn(
        SocketAddr,
        SocketAddrUse,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>
    + Send
    + Sync
    + 'static {
        move |address, usage| {
            let checked = tokio::spawn(sockets.clone().may(address, usage));
            Box::pin(async move { checked.await.unwrap_or(false) })
        }
    }
}

/// `wasi:sockets/ip-name-lookup` as wasmtime-wasi serves it, behind the grant's name check.
struct GuardedLookup;

impl HasData for GuardedLookup {
    type Data<'a> = LookupView<'a>;
}

struct LookupView<'a> {
    sockets: WasiSocketsCtxView<'a>,
    grant: Option<Arc<Sockets>>,
}

/// Replaces wasmtime-wasi's name lookup, which the WASI linker added, with the guarded one.
pub(crate) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = ip_name_lookup::add_to_linker::<Host, GuardedLookup>(linker, |host| {
        let grant = host.capabilities.wasi.sockets.clone();
        LookupView {
            sockets: host.sockets(),
            grant,
        }
    });
    linker.allow_shadowing(false);
    linked
}

impl ip_name_lookup::Host for LookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        match &self.grant {
            Some(sockets) if !sockets.may_look_up(&name) => Err(ErrorCode::AccessDenied.into()),
            // Without a grant lookups are switched off in the context: wasmtime-wasi refuses.
            _ => self.sockets.resolve_addresses(network, name),
        }
    }
}

impl HostResolveAddressStream for LookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        self.sockets.resolve_next_address(stream)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.sockets.subscribe(stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

/// The lookup's errors are converted as wasmtime-wasi converts them.
impl network::Host for LookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.sockets.convert_error_code(error)
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        self.sockets.network_error_code(error)
    }
}

impl HostNetwork for LookupView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        HostNetwork::drop(&mut self.sockets, network)
    }
}
