//! The client (load generator) as part of the model: a bounded number of requests in flight, taken in
//! order, and a whole-request deadline after which the client gives up on a request.
//!
//! A request is *held* from the moment it is sent until it finishes or its deadline passes. With every
//! slot held, the next request waits in the client and leaves when one frees: at a completion (the
//! simulator reports it), or at the earliest deadline. Deadlines are evaluated lazily: a held request
//! whose deadline is at or before a send time has timed out by then.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::spec::ClientSpec;

/// A held request: when the client gives up on it, and which gated arrival feed sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    /// The client's deadline (µs); `i64::MAX` without a timeout.
    pub(crate) deadline_us: i64,
    /// Index of the arrival feed whose drained stage waits for it.
    pub(crate) feed: Option<usize>,
}

/// In-flight bookkeeping of the client.
pub(crate) struct Client {
    cap: usize,
    timeout_us: Option<i64>,
    held: HashMap<u64, Held>,
    /// Deadlines of held requests (stale entries of finished ones are dropped when they reach the top).
    deadlines: BinaryHeap<Reverse<(i64, u64)>>,
    /// No waiting request leaves before this time (the last slot release).
    floor_us: i64,
    /// Requests whose deadline passed before they finished.
    timed_out: u64,
}

impl Client {
    /// The client of a validated spec (`None`: unbounded, no timeout).
    pub(crate) fn new(spec: Option<&ClientSpec>) -> Self {
        let cap = spec.and_then(|c| c.max_in_flight).map_or(usize::MAX, |n| n.max(1) as usize);
        let timeout_us = spec.and_then(|c| c.timeout_seconds).map(|s| super::arrival::secs_to_us(s).max(1));
        Self {
            cap,
            timeout_us,
            held: HashMap::new(),
            deadlines: BinaryHeap::new(),
            floor_us: i64::MIN,
            timed_out: 0,
        }
    }

    /// Whether the client bounds anything (otherwise nothing needs to be tracked for it).
    pub(crate) fn is_bounded(&self) -> bool {
        self.cap != usize::MAX || self.timeout_us.is_some()
    }

    /// The request timeout (µs), if any.
    pub(crate) fn timeout_us(&self) -> Option<i64> {
        self.timeout_us
    }

    /// When a request due at `due_us` leaves the client: at once when a slot is free, else when the
    /// earliest deadline frees one; `None` while every slot is held by requests without a deadline.
    pub(crate) fn send_time(&self, due_us: i64) -> Option<i64> {
        let t = due_us.max(self.floor_us);
        if self.held.len() < self.cap {
            return Some(t);
        }
        // The earliest deadline frees a slot (at once when it has already passed by `t`).
        let Reverse((first, _)) = self.deadlines.peek()?;
        (*first != i64::MAX).then(|| t.max(*first))
    }

    /// Requests whose deadline is at or before `t` time out: they are handed to `out` with their
    /// deadline and stop holding a slot.
    pub(crate) fn expire(&mut self, t: i64, out: &mut Vec<(i64, Held)>) {
        while let Some(&Reverse((d, id))) = self.deadlines.peek() {
            if d > t {
                break;
            }
            self.deadlines.pop();
            if let Some(h) = self.held.remove(&id) {
                self.timed_out += 1;
                self.floor_us = self.floor_us.max(d);
                out.push((d, h));
            }
        }
    }

    /// Notes a request sent at `t` (hold a slot until it finishes or times out).
    pub(crate) fn on_send(&mut self, id: u64, t: i64, feed: Option<usize>) {
        let deadline_us = self.timeout_us.map_or(i64::MAX, |d| t.saturating_add(d));
        self.held.insert(id, Held { deadline_us, feed });
        self.deadlines.push(Reverse((deadline_us, id)));
    }

    /// Notes that request `id` finished at `t`; returns what it held, or `None` when it was not held
    /// (never tracked, or already timed out).
    pub(crate) fn on_done(&mut self, id: u64, t: i64) -> Option<Held> {
        let h = self.held.get(&id).copied()?;
        if h.deadline_us < t {
            // Finished after the deadline: the client had given up; expiry accounts for it.
            return None;
        }
        self.held.remove(&id);
        self.floor_us = self.floor_us.max(t);
        while let Some(&Reverse((_, top))) = self.deadlines.peek() {
            if self.held.contains_key(&top) {
                break;
            }
            self.deadlines.pop();
        }
        Some(h)
    }

    /// Requests in flight (held) now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Requests that timed out so far.
    pub(crate) fn timed_out(&self) -> u64 {
        self.timed_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(cap: Option<i64>, timeout: Option<f64>) -> Client {
        Client::new(Some(&ClientSpec { max_in_flight: cap, timeout_seconds: timeout }))
    }

    #[test]
    fn a_full_client_waits_for_a_completion() {
        let mut c = client(Some(2), None);
        assert_eq!(c.send_time(5), Some(5));
        c.on_send(0, 5, None);
        c.on_send(1, 6, None);
        assert_eq!(c.send_time(7), None, "both slots held, no deadline");
        assert!(c.on_done(0, 100).is_some());
        assert_eq!(c.send_time(7), Some(100), "leaves when the slot frees");
        assert_eq!(c.send_time(150), Some(150));
        assert_eq!(c.held(), 1);
    }

    #[test]
    fn deadlines_free_slots_and_count_timeouts() {
        let mut c = client(Some(1), Some(1.0));
        c.on_send(0, 0, Some(3));
        assert_eq!(c.send_time(10), Some(1_000_000), "the deadline frees the slot");
        let mut out = Vec::new();
        c.expire(1_000_000, &mut out);
        assert_eq!(out, vec![(1_000_000, Held { deadline_us: 1_000_000, feed: Some(3) })]);
        assert_eq!(c.timed_out(), 1);
        assert!(c.on_done(0, 2_000_000).is_none(), "a late completion is not counted twice");
        assert_eq!(c.send_time(10), Some(1_000_000));
    }

    #[test]
    fn unbounded_client_tracks_nothing() {
        let c = Client::new(None);
        assert!(!c.is_bounded());
        assert_eq!(c.send_time(42), Some(42));
    }
}
