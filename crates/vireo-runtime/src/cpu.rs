//! Guest CPU time-slicing. Guests run on the server's async worker threads, so a guest that
//! computes without pause would hold a thread until its timeout and stall every other request.
//! Instead each guest runs for at most one slice (an epoch tick) at a time; at the end of a
//! slice it gives its thread back and waits for its next turn.
//!
//! Turns are handed out by [`CpuScheduler`]: at most `slots` guests that have already used a
//! whole slice run at once, and a freed slot goes to the waiting namespace that has been served
//! the fewest slices, within it to its least-served waiting function, and within a function
//! first come first served (start-time fair queueing, as CPU schedulers do it). So a function
//! that floods the server with CPU-bound invocations gets one share, not one share per
//! invocation, and a namespace gets one share however many functions it runs. A guest's first
//! slice needs no turn: short invocations (most of them) never wait here.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use vireo_core::Name;

/// Hands out turns to run one more slice, fairly across namespaces and functions.
#[derive(Debug)]
pub(crate) struct CpuScheduler {
    queues: Mutex<Queues>,
}

/// The right to run guest code until the next slice ends; dropping it passes the slot on.
#[derive(Debug)]
pub(crate) struct Slot {
    /// `None` once the slot was handed back to the scheduler by other means.
    scheduler: Option<Arc<CpuScheduler>>,
    namespace: Name,
    function: Name,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.release(&self.namespace, &self.function);
        }
    }
}

impl CpuScheduler {
    /// `slots` guests past their first slice may run at once: one per worker thread keeps every
    /// core busy while leaving each thread free to serve other work between slices.
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(Queues {
                free: slots.max(1),
                namespaces: Fair::default(),
            }),
        })
    }

    /// A turn of `function` in `namespace`: a free slot now, else a place in the queue, taken
    /// at once so that a guest can queue before it passes on the slot it holds.
    pub fn turn(self: &Arc<Self>, namespace: &Name, function: &Name) -> Turn {
        let mut queues = self.lock();
        if queues.free > 0 {
            queues.free -= 1;
            queues.namespaces.granted(namespace, |functions| {
                functions.granted(function, |_| ());
            });
            return Turn::Granted(self.slot(namespace, function));
        }
        let (sender, receiver) = oneshot::channel();
        queues.namespaces.waits(namespace, |functions| {
            functions.waits(function, |waiters| waiters.push_back(sender));
        });
        Turn::Queued(receiver)
    }

    /// Takes back the slot `namespace/function` held and gives it to the next waiter, else
    /// marks it free.
    fn release(self: &Arc<Self>, namespace: &Name, function: &Name) {
        let mut queues = self.lock();
        queues.namespaces.released(namespace, |functions| {
            functions.released(function, |_| ());
        });
        while let Some((namespace, function, waiter)) = queues.next_waiter() {
            match waiter.send(self.slot(&namespace, &function)) {
                Ok(()) => {
                    queues.namespaces.granted(&namespace, |functions| {
                        functions.granted(&function, |_| ());
                    });
                    return;
                }
                // That waiter gave up; the slot it did not take must not release again.
                Err(mut unclaimed) => {
                    unclaimed.scheduler = None;
                    queues.namespaces.forget_if_idle(&namespace, |functions| {
                        functions.forget_if_idle(&function, |_| ());
                    });
                }
            }
        }
        queues.free += 1;
    }

    fn slot(self: &Arc<Self>, namespace: &Name, function: &Name) -> Slot {
        Slot {
            scheduler: Some(self.clone()),
            namespace: namespace.clone(),
            function: function.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.lock().free
    }
}

/// A slot granted at once, or a place in the queue.
#[derive(Debug)]
pub(crate) enum Turn {
    Granted(Slot),
    Queued(oneshot::Receiver<Slot>),
}

impl Turn {
    pub async fn wait(self) -> Slot {
        match self {
            Turn::Granted(slot) => slot,
            // A queued sender is only ever consumed by handing it a slot; a waiter that is
            // dropped instead makes `release` skip it.
            Turn::Queued(receiver) => receiver.await.expect("the scheduler never drops a waiter"),
        }
    }
}

type Waiters = VecDeque<oneshot::Sender<Slot>>;

#[derive(Debug)]
struct Queues {
    free: usize,
    namespaces: Fair<Fair<Waiters>>,
}

impl Queues {
    /// The first waiter of the least-served waiting function of the least-served waiting
    /// namespace, taken out of the queue.
    fn next_waiter(&mut self) -> Option<(Name, Name, oneshot::Sender<Slot>)> {
        let namespace = self.namespaces.least_served()?;
        let functions = self.namespaces.take_waiter(&namespace);
        let function = functions.least_served()?;
        let waiter = functions.take_waiter(&function).pop_front()?;
        Some((namespace, function, waiter))
    }
}

/// What a namespace or function is owed: how many slices it was granted and when last, how
/// many of its guests hold or wait for a slot.
#[derive(Debug, Default)]
struct Share<T> {
    served: u64,
    /// The grant number of its last grant (0: none yet); among equally served shares the one
    /// granted longest ago goes first, so equals take turns.
    last_grant: u64,
    holding: usize,
    waiting: usize,
    inner: T,
}

/// Shares by name, and the virtual time: the `served` count of the share granted last. A share
/// that starts waiting (or waits again after idling) starts at that time, so it neither jumps
/// the queue with an old low count nor pays for slices it never asked for.
#[derive(Debug, Default)]
struct Fair<T> {
    clock: u64,
    grants: u64,
    shares: BTreeMap<Name, Share<T>>,
}

impl<T: Default> Fair<T> {
    fn share(&mut self, name: &Name) -> &mut Share<T> {
        let clock = self.clock;
        self.shares.entry(name.clone()).or_insert_with(|| Share {
            served: clock,
            ..Share::default()
        })
    }

    fn waits(&mut self, name: &Name, inner: impl FnOnce(&mut T)) {
        let share = self.share(name);
        share.waiting += 1;
        inner(&mut share.inner);
    }

    fn granted(&mut self, name: &Name, inner: impl FnOnce(&mut T)) {
        self.grants += 1;
        let grant = self.grants;
        let share = self.share(name);
        let served = share.served;
        share.served += 1;
        share.holding += 1;
        share.last_grant = grant;
        inner(&mut share.inner);
        self.clock = served;
    }

    fn released(&mut self, name: &Name, inner: impl FnOnce(&mut T)) {
        if let Some(share) = self.shares.get_mut(name) {
            share.holding = share.holding.saturating_sub(1);
            inner(&mut share.inner);
        }
        self.forget_if_idle(name, |_| ());
    }

    /// Drops a share that neither holds nor waits for a slot, so the map only holds the active.
    fn forget_if_idle(&mut self, name: &Name, inner: impl FnOnce(&mut T)) {
        if let Some(share) = self.shares.get_mut(name) {
            inner(&mut share.inner);
            if share.holding == 0 && share.waiting == 0 {
                self.shares.remove(name);
            }
        }
    }

    /// The waiting share with the fewest slices served (ties: the one granted longest ago).
    fn least_served(&self) -> Option<Name> {
        self.shares
            .iter()
            .filter(|(_, share)| share.waiting > 0)
            .min_by_key(|(_, share)| (share.served, share.last_grant))
            .map(|(name, _)| name.clone())
    }

    /// One waiter of `name` leaves the queue; its inner queue, to take the waiter from.
    fn take_waiter(&mut self, name: &Name) -> &mut T {
        let share = self.share(name);
        share.waiting = share.waiting.saturating_sub(1);
        &mut share.inner
    }
}

/// One invocation's share of the CPU: the slot it holds between slices, and the thread CPU
/// time its guest has used.
#[derive(Debug)]
pub(crate) struct GuestCpu {
    scheduler: Arc<CpuScheduler>,
    namespace: Name,
    function: Name,
    held: Mutex<Option<Slot>>,
    /// Set while the guest waits at the end of a slice, so that wait is not mistaken for the
    /// guest blocking on I/O (which gives its slot up).
    between_slices: AtomicBool,
    cpu_ns: AtomicU64,
}

impl GuestCpu {
    pub fn new(scheduler: Arc<CpuScheduler>, namespace: Name, function: Name) -> Arc<Self> {
        Arc::new(Self {
            scheduler,
            namespace,
            function,
            held: Mutex::new(None),
            between_slices: AtomicBool::new(false),
            cpu_ns: AtomicU64::new(0),
        })
    }

    /// Called when a slice ends: queues for the next turn, passes on the slot it held (which
    /// comes back at once if this guest's tenant and function are next in line), gives the
    /// thread back so the runtime can poll for I/O, then waits for its turn. Queueing before
    /// passing the slot on is what makes turns alternate between tenants: a guest is never
    /// missing from the queue at the moment its own slot is handed out.
    pub async fn next_slice(self: Arc<Self>) {
        self.between_slices.store(true, Ordering::Relaxed);
        let turn = self.scheduler.turn(&self.namespace, &self.function);
        self.give_up_slot();
        tokio::task::yield_now().await;
        let slot = turn.wait().await;
        *self.held() = Some(slot);
        // The turn may have been handed over from a guest on this very thread; yielding once
        // more lets the runtime poll for I/O before another slice of guest code runs.
        tokio::task::yield_now().await;
        self.between_slices.store(false, Ordering::Relaxed);
    }

    /// After each poll of the invocation: counts the CPU time the poll used, and gives up the
    /// slot if the guest is blocked on something other than its next turn (or has finished).
    pub fn after_poll(&self, cpu: Duration, pending: bool) {
        let nanos = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_ns.fetch_add(nanos, Ordering::Relaxed);
        if !pending || !self.between_slices.load(Ordering::Relaxed) {
            self.give_up_slot();
        }
    }

    pub fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    fn give_up_slot(&self) {
        let slot = self.held().take();
        drop(slot);
    }

    fn held(&self) -> MutexGuard<'_, Option<Slot>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs `guest`, counting the thread CPU time of each poll into `cpu` and giving up its slot
/// whenever the guest waits for anything but its next turn.
pub(crate) async fn metered<F: Future>(guest: F, cpu: Arc<GuestCpu>) -> F::Output {
    let mut guest = std::pin::pin!(guest);
    std::future::poll_fn(|cx| {
        let started = thread_cpu_time();
        let poll = guest.as_mut().poll(cx);
        cpu.after_poll(thread_cpu_time().saturating_sub(started), poll.is_pending());
        poll
    })
    .await
}

/// CPU time this thread has used (one `clock_gettime` call).
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::*;

    fn name(s: &str) -> Name {
        Name::parse("name", s).unwrap()
    }

    type Waiting = std::pin::Pin<Box<dyn Future<Output = Slot>>>;

    /// A turn of `ns/f` that has to wait.
    fn queued(scheduler: &Arc<CpuScheduler>, ns: &str, f: &str) -> Waiting {
        let turn = scheduler.turn(&name(ns), &name(f));
        assert!(matches!(turn, Turn::Queued(_)), "no slot is free");
        Box::pin(turn.wait())
    }

    fn granted(scheduler: &Arc<CpuScheduler>, ns: &str, f: &str) -> Slot {
        match scheduler.turn(&name(ns), &name(f)) {
            Turn::Granted(slot) => slot,
            Turn::Queued(_) => panic!("a slot is free"),
        }
    }

    /// Queues waiters in the given order behind the one slot, then passes the slot on from
    /// waiter to waiter and returns who was served in what order.
    fn served_order(waiters: &[(&str, &str)]) -> Vec<String> {
        let scheduler = CpuScheduler::new(1);
        let mut slot = granted(&scheduler, "x", "x");
        let mut pending: Vec<(String, Waiting)> = waiters
            .iter()
            .map(|(ns, f)| (format!("{ns}/{f}"), queued(&scheduler, ns, f)))
            .collect();
        let mut order = Vec::new();
        while !pending.is_empty() {
            drop(slot);
            let (index, next) = pending
                .iter_mut()
                .enumerate()
                .find_map(|(i, (_, turn))| turn.now_or_never().map(|slot| (i, slot)))
                .expect("a released slot goes to a waiter");
            order.push(pending.remove(index).0);
            slot = next;
        }
        order
    }

    #[test]
    fn free_slots_are_taken_at_once_and_come_back_when_dropped() {
        let scheduler = CpuScheduler::new(2);
        let a = granted(&scheduler, "ns", "f");
        let b = granted(&scheduler, "ns", "f");
        assert_eq!(scheduler.free(), 0);
        drop((a, b));
        assert_eq!(scheduler.free(), 2);
    }

    #[test]
    fn a_flooding_function_gets_one_turn_per_round() {
        let order = served_order(&[
            ("a", "flood"),
            ("a", "flood"),
            ("a", "flood"),
            ("a", "other"),
        ]);
        assert_eq!(order, ["a/flood", "a/other", "a/flood", "a/flood"]);
    }

    #[test]
    fn namespaces_take_turns_before_functions() {
        let order = served_order(&[
            ("a", "f1"),
            ("a", "f2"),
            ("a", "f3"),
            ("b", "g"),
            ("b", "g"),
        ]);
        assert_eq!(order, ["a/f1", "b/g", "a/f2", "b/g", "a/f3"]);
    }

    #[test]
    fn a_guest_that_queues_before_passing_its_slot_on_alternates_with_another_tenant() {
        let scheduler = CpuScheduler::new(1);
        let mut holder = "lone";
        let mut slot = granted(&scheduler, holder, "f");
        let mut waiting = vec![("flood", queued(&scheduler, "flood", "f"))];
        let mut served = Vec::new();
        for _ in 0..4 {
            // As at the end of a slice: queue for the next turn, then pass the slot on.
            waiting.push((holder, queued(&scheduler, holder, "f")));
            drop(slot);
            let (index, next) = waiting
                .iter_mut()
                .enumerate()
                .find_map(|(i, (_, turn))| turn.now_or_never().map(|slot| (i, slot)))
                .expect("a released slot goes to a waiter");
            holder = waiting.remove(index).0;
            served.push(holder);
            slot = next;
        }
        assert_eq!(served, ["flood", "lone", "flood", "lone"]);
    }

    #[test]
    fn a_slot_skips_waiters_that_gave_up() {
        let scheduler = CpuScheduler::new(1);
        let held = granted(&scheduler, "x", "x");
        let gone = queued(&scheduler, "a", "f");
        let waiting = queued(&scheduler, "b", "g");
        drop(gone);
        drop(held);
        assert_eq!(
            scheduler.free(),
            0,
            "the slot went to the waiter still there"
        );
        drop(waiting);
        assert_eq!(
            scheduler.free(),
            1,
            "a slot handed to a dropped waiter comes back"
        );
    }
}
