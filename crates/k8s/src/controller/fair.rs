//! The permits to run a simulation (`--max-concurrent` of them), handed out round-robin across
//! namespaces: a namespace with hundreds of scenarios waiting does not hold back another
//! namespace's one; within a namespace, first come first served. Shared by scenarios and sweeps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Waiting items queued per key and taken one key at a time, in turn: the `n`-th item of a key is
/// taken within `n` turns of every key that has items waiting.
#[derive(Debug)]
pub struct RoundRobin<T> {
    queues: HashMap<String, VecDeque<T>>,
    /// Keys with items waiting, in the order of their next turn.
    turns: VecDeque<String>,
}

impl<T> Default for RoundRobin<T> {
    fn default() -> Self {
        Self { queues: HashMap::new(), turns: VecDeque::new() }
    }
}

impl<T> RoundRobin<T> {
    /// Queues `item` behind the other items of `key`.
    pub fn push(&mut self, key: &str, item: T) {
        let queue = self.queues.entry(key.to_string()).or_default();
        if queue.is_empty() {
            self.turns.push_back(key.to_string());
        }
        queue.push_back(item);
    }

    /// The first item of the key whose turn it is (that key's turn then passes to the back).
    pub fn pop(&mut self) -> Option<T> {
        let key = self.turns.pop_front()?;
        let queue = self.queues.get_mut(&key).expect("a key in turn has a queue");
        let item = queue.pop_front().expect("a key in turn has an item");
        if queue.is_empty() {
            self.queues.remove(&key);
        } else {
            self.turns.push_back(key);
        }
        Some(item)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// Number of items waiting.
    pub fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

/// A fixed number of permits, granted in [`RoundRobin`] order of the waiters' namespaces.
#[derive(Debug)]
pub struct FairPermits(Mutex<State>);

#[derive(Debug)]
struct State {
    free: usize,
    waiting: RoundRobin<oneshot::Sender<()>>,
}

/// A granted permit; dropping it hands it to the next waiter.
#[derive(Debug)]
pub struct Permit(Arc<FairPermits>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// An acquire that has not been granted yet; dropped (the caller gave up), a permit that reached
/// it meanwhile is passed on.
struct Pending {
    owner: Arc<FairPermits>,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.owner.release();
            }
        }
    }
}

impl FairPermits {
    /// `n` permits (at least one).
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Self(Mutex::new(State { free: n.max(1), waiting: RoundRobin::default() })))
    }

    /// Waits for a permit for work of `namespace`.
    pub async fn acquire(self: &Arc<Self>, namespace: &str) -> Permit {
        let rx = {
            let mut s = self.0.lock().expect("lock");
            if s.free > 0 && s.waiting.is_empty() {
                s.free -= 1;
                return Permit(self.clone());
            }
            let (tx, rx) = oneshot::channel();
            s.waiting.push(namespace, tx);
            rx
        };
        let mut pending = Pending { owner: self.clone(), rx: Some(rx) };
        let granted = pending.rx.as_mut().expect("set above").await;
        pending.rx = None;
        // The sender is dropped only after a send (or with the whole structure, which `self` keeps).
        debug_assert!(granted.is_ok());
        Permit(self.clone())
    }

    /// Number of acquires waiting.
    pub fn waiting(&self) -> usize {
        self.0.lock().expect("lock").waiting.len()
    }

    /// Hands a returned permit to the next waiter still waiting, or keeps it free.
    fn release(&self) {
        let mut s = self.0.lock().expect("lock");
        while let Some(tx) = s.waiting.pop() {
            if tx.send(()).is_ok() {
                return;
            }
        }
        s.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_robin_takes_keys_in_turn_and_each_key_in_order() {
        let mut rr = RoundRobin::default();
        for i in 0..5 {
            rr.push("big", format!("big{i}"));
        }
        rr.push("small", "small0".to_string());
        rr.push("other", "other0".to_string());
        rr.push("small", "small1".to_string());
        assert_eq!(rr.len(), 8);
        let order: Vec<String> = std::iter::from_fn(|| rr.pop()).collect();
        assert_eq!(
            order,
            ["big0", "small0", "other0", "big1", "small1", "big2", "big3", "big4"],
            "one per key per turn"
        );
        assert!(rr.is_empty() && rr.pop().is_none());
    }

    #[test]
    fn no_key_waits_more_than_one_turn_of_every_other_key() {
        // A seeded mix of keys and arrival order: the n-th item of a key comes out within n turns.
        let mut rr = RoundRobin::default();
        let mut state = 7u64;
        let mut per_key = HashMap::<String, usize>::new();
        for _ in 0..500 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // A skewed mix: key k0 gets about half of the items.
            let k = if state >> 63 == 0 { 0 } else { (state >> 33) % 6 };
            let key = format!("k{k}");
            let n = per_key.entry(key.clone()).or_default();
            rr.push(&key, (key.clone(), *n));
            *n += 1;
        }
        let keys = per_key.len();
        let mut taken = 0usize;
        while let Some((_, n)) = rr.pop() {
            assert!(taken <= (n + 1) * keys, "item {n} of its key taken {taken}th");
            taken += 1;
        }
        assert_eq!(taken, 500);
    }

    #[tokio::test]
    async fn permits_go_round_robin_across_namespaces() {
        let permits = FairPermits::new(1);
        let held = permits.acquire("a").await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (i, ns) in ["a", "a", "a", "a", "b", "c"].into_iter().enumerate() {
            let (p, tx) = (permits.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = p.acquire(ns).await;
                tx.send(format!("{ns}{i}")).unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            // Queued in this order.
            while permits.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(s) = rx.recv().await {
            order.push(s);
        }
        assert_eq!(order, ["a0", "b4", "c5", "a1", "a2", "a3"]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_passes_its_permit_on() {
        let permits = FairPermits::new(1);
        let held = permits.acquire("a").await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), permits.acquire("b")).await;
        assert!(gave_up.is_err());
        assert_eq!(permits.waiting(), 1, "the abandoned waiter is skipped when its turn comes");
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(1), permits.acquire("c")).await;
        assert!(again.is_ok(), "the permit was lost");
    }
}
