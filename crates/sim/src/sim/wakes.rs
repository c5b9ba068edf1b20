//! When each replica's step (or decode run) in flight ends, with the earliest at hand.
//!
//! A replica has at most one pending step end, and it moves (earlier, when an arrival cuts a decode
//! run) or vanishes (the replica goes idle). Kept in the event heap, every move left a stale event
//! behind to pop and skip; kept here, a move is one update of a tournament tree (O(log replicas))
//! and the earliest end is read at its root.

/// No pending step end.
const NONE: i64 = i64::MAX;

/// Pending step ends per replica, ordered by (time, replica index).
#[derive(Debug, Default)]
pub struct Wakes {
    /// Per leaf (replica index; leaves past the replicas stay [`NONE`]): its pending step end.
    time: Vec<i64>,
    /// Inner nodes `1..cap` of a complete binary tree over the `cap` leaves (node `k`'s children are
    /// `2k` and `2k + 1`, leaf `i` is node `cap + i`): the replica index winning below each.
    winner: Vec<u32>,
}

impl Wakes {
    /// Room for replica `i` (replicas are added in index order).
    pub fn add(&mut self, i: u32) {
        let cap = self.time.len();
        if (i as usize) < cap {
            return;
        }
        let cap = (i as usize + 1).next_power_of_two();
        self.time.resize(cap, NONE);
        self.winner = vec![0; cap];
        for k in (1..cap).rev() {
            self.winner[k] = self.better(self.node(2 * k), self.node(2 * k + 1));
        }
    }

    /// Sets replica `i`'s pending step end (`None`: it has none).
    pub fn set(&mut self, i: u32, at: Option<i64>) {
        let t = at.unwrap_or(NONE);
        debug_assert!(t != NONE || at.is_none(), "a step end at the end of time");
        let leaf = i as usize;
        if self.time[leaf] == t {
            return;
        }
        self.time[leaf] = t;
        let cap = self.time.len();
        let mut k = (cap + leaf) / 2;
        while k >= 1 {
            let w = self.better(self.node(2 * k), self.node(2 * k + 1));
            if self.winner[k] == w && w != i {
                // The winner here is unchanged and is not the moved leaf: nothing above changes.
                break;
            }
            self.winner[k] = w;
            k /= 2;
        }
    }

    /// The earliest pending step end and its replica (the lower index among equal times).
    pub fn peek(&self) -> Option<(i64, u32)> {
        if self.time.is_empty() {
            return None;
        }
        let w = self.node(1);
        let t = self.time[w as usize];
        (t != NONE).then_some((t, w))
    }

    /// The replica index winning at node `k` (a leaf is its own winner).
    fn node(&self, k: usize) -> u32 {
        let cap = self.time.len();
        if k >= cap {
            (k - cap) as u32
        } else {
            self.winner[k]
        }
    }

    fn better(&self, a: u32, b: u32) -> u32 {
        if (self.time[b as usize], b) < (self.time[a as usize], a) {
            b
        } else {
            a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random sets and clears against a plain scan: the root is always the (time, index) minimum.
    #[test]
    fn the_root_is_the_earliest_end_by_time_then_index() {
        let mut w = Wakes::default();
        assert_eq!(w.peek(), None);
        let mut model: Vec<Option<i64>> = Vec::new();
        let mut x = 11u64;
        for round in 0..20_000u64 {
            x = crate::rng::mix2(x, round);
            // Replicas join over time (also past a power of two), as autoscaling adds them.
            if model.len() < 37 && x % 97 == 0 || model.is_empty() {
                w.add(model.len() as u32);
                model.push(None);
            }
            let i = (x >> 8) as usize % model.len();
            // Few distinct times, so equal times are common.
            let at = if x % 5 == 0 { None } else { Some(((x >> 20) % 16) as i64 - 3) };
            w.set(i as u32, at);
            model[i] = at;
            let want = model.iter().enumerate().filter_map(|(i, t)| t.map(|t| (t, i as u32))).min();
            assert_eq!(w.peek(), want, "round {round}");
        }
    }
}
