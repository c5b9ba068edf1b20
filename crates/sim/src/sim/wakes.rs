//! When each replica's step (or decode run) in flight ends, with the earliest at hand.
//!
//! A replica has at most one pending step end, and it moves (earlier, when an arrival cuts a decode
//! run) or vanishes (the replica goes idle). Kept in the event heap, every move left a stale event
//! behind to pop and skip; kept here, a move is one update of a tournament tree (O(log replicas))
//! and the earliest end is read at its root.

/// The key of "no pending step end": above every real key.
const NONE: u128 = u128::MAX;

/// Pending step ends per replica, ordered by (time, replica index).
#[derive(Debug, Default)]
pub struct Wakes {
    /// A complete binary tree over `cap` leaves (a power of two, `tree.len() == 2 * cap`): leaf `i`
    /// (node `cap + i`) holds replica `i`'s key, every inner node `k` the least key of its children
    /// `2k` and `2k + 1`, so node 1 holds the earliest. Leaves past the replicas stay [`NONE`].
    tree: Vec<u128>,
}

/// The key of a step end of replica `i` at `t`: the time with its sign bit flipped (so signed order
/// is unsigned order) above the replica index, compared as one integer.
fn key(t: i64, i: u32) -> u128 {
    (u128::from(t as u64 ^ (1 << 63)) << 32) | u128::from(i)
}

impl Wakes {
    /// Room for replica `i` (replicas are added in index order).
    pub fn add(&mut self, i: u32) {
        let cap = self.tree.len() / 2;
        if (i as usize) < cap {
            return;
        }
        let new_cap = (i as usize + 1).next_power_of_two();
        let mut tree = vec![NONE; 2 * new_cap];
        tree[new_cap..new_cap + cap].copy_from_slice(&self.tree[cap..]);
        for k in (1..new_cap).rev() {
            tree[k] = tree[2 * k].min(tree[2 * k + 1]);
        }
        self.tree = tree;
    }

    /// Sets replica `i`'s pending step end (`None`: it has none).
    pub fn set(&mut self, i: u32, at: Option<i64>) {
        let k = at.map_or(NONE, |t| key(t, i));
        debug_assert!(at != Some(i64::MAX), "a step end at the end of time");
        let mut n = self.tree.len() / 2 + i as usize;
        if self.tree[n] == k {
            return;
        }
        self.tree[n] = k;
        while n > 1 {
            let parent = n / 2;
            let least = self.tree[n].min(self.tree[n ^ 1]);
            if self.tree[parent] == least {
                // Nothing above changes.
                break;
            }
            self.tree[parent] = least;
            n = parent;
        }
    }

    /// The earliest pending step end and its replica (the lower index among equal times).
    pub fn peek(&self) -> Option<(i64, u32)> {
        let &k = self.tree.get(1)?;
        (k != NONE).then_some((((k >> 32) as u64 ^ (1 << 63)) as i64, k as u32))
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
