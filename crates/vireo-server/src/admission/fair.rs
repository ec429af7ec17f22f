//! The server-wide concurrency limit, shared fairly: when invocations wait for a slot, freed
//! slots go to the waiting functions in turn, so one flooded function cannot starve the rest.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// A slot of the global limit; freeing it hands it to the next function in turn.
pub struct Slot<K: Clone + Eq + Hash> {
    gate: Arc<FairGate<K>>,
}

impl<K: Clone + Eq + Hash> Drop for Slot<K> {
    fn drop(&mut self) {
        self.gate.release();
    }
}

pub struct FairGate<K> {
    slots: usize,
    state: Mutex<State<K>>,
}

struct State<K> {
    free: usize,
    next_ticket: u64,
    /// Waiters per function, oldest first.
    waiting: HashMap<K, VecDeque<(u64, oneshot::Sender<()>)>>,
    /// Functions with waiters, in the order they get the next freed slot.
    turn: VecDeque<K>,
}

impl<K: Clone + Eq + Hash> FairGate<K> {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots,
            state: Mutex::new(State {
                free: slots,
                next_ticket: 0,
                waiting: HashMap::new(),
                turn: VecDeque::new(),
            }),
        })
    }

    /// Slots held now.
    pub fn in_use(&self) -> usize {
        self.slots - self.lock().free
    }

    /// Waits for a slot for `key`'s function; cancel-safe (dropping the future gives back a slot
    /// that was granted meanwhile).
    pub async fn acquire(self: &Arc<Self>, key: &K) -> Slot<K> {
        let (ticket, granted) = {
            let mut state = self.lock();
            if state.free > 0 && state.turn.is_empty() {
                state.free -= 1;
                return Slot { gate: self.clone() };
            }
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            let (grant, granted) = oneshot::channel();
            let queue = state.waiting.entry(key.clone()).or_default();
            let first_waiter = queue.is_empty();
            queue.push_back((ticket, grant));
            if first_waiter {
                state.turn.push_back(key.clone());
            }
            (ticket, granted)
        };
        let mut waiter = Waiter {
            gate: self.clone(),
            key: key.clone(),
            ticket,
            granted: Some(granted),
        };
        waiter.wait().await;
        Slot { gate: self.clone() }
    }

    fn release(&self) {
        let mut state = self.lock();
        while let Some(key) = state.turn.pop_front() {
            let Some(queue) = state.waiting.get_mut(&key) else {
                continue;
            };
            let Some((_, grant)) = queue.pop_front() else {
                continue;
            };
            if queue.is_empty() {
                state.waiting.remove(&key);
            } else {
                state.turn.push_back(key);
            }
            if grant.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One queued acquisition. If it is dropped before its grant is taken, it leaves the queue, or
/// gives back the slot it was granted.
struct Waiter<K: Clone + Eq + Hash> {
    gate: Arc<FairGate<K>>,
    key: K,
    ticket: u64,
    granted: Option<oneshot::Receiver<()>>,
}

impl<K: Clone + Eq + Hash> Waiter<K> {
    async fn wait(&mut self) {
        if let Some(granted) = self.granted.as_mut() {
            // The sender lives in the queue until it is used, so this only ends with a grant.
            let _ = granted.await;
        }
        self.granted = None;
    }
}

impl<K: Clone + Eq + Hash> Drop for Waiter<K> {
    fn drop(&mut self) {
        let Some(mut granted) = self.granted.take() else {
            return;
        };
        let mut state = self.gate.lock();
        if let Some(queue) = state.waiting.get_mut(&self.key)
            && let Some(at) = queue.iter().position(|(ticket, _)| *ticket == self.ticket)
        {
            queue.remove(at);
            if queue.is_empty() {
                state.waiting.remove(&self.key);
                state.turn.retain(|k| k != &self.key);
            }
            return;
        }
        drop(state);
        // Granted while being cancelled: pass the slot on.
        if granted.try_recv().is_ok() {
            self.gate.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn freed_slots_go_to_waiting_functions_in_turn() {
        let gate = FairGate::new(1);
        let held = gate.acquire(&"a").await;
        let (order, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        // Three waiters of `a` queue before one of `b`; `b` must not wait for all of them.
        for key in ["a", "a", "a", "b"] {
            let gate = gate.clone();
            let order = order.clone();
            waiters.push(tokio::spawn(async move {
                let slot = gate.acquire(&key).await;
                order.send(key).unwrap();
                drop(slot);
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        let mut seen = Vec::new();
        while let Ok(key) = finished.try_recv() {
            seen.push(key);
        }
        assert_eq!(seen, ["a", "b", "a", "a"]);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_gives_its_place_or_slot_back() {
        let gate = FairGate::new(1);
        let held = gate.acquire(&"a").await;
        let abandoned = tokio::time::timeout(Duration::from_millis(10), gate.acquire(&"b")).await;
        assert!(abandoned.is_err(), "no slot was free");
        drop(held);
        // The abandoned waiter left the queue, so the slot is free again at once.
        let again = tokio::time::timeout(Duration::from_secs(5), gate.acquire(&"c")).await;
        assert!(again.is_ok());
    }
}
