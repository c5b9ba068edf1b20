//! CPU KV offload tier (vLLM's OffloadingConnector with a CPU backend).
//!
//! Full prompt blocks are copied to a fixed-size CPU block pool as they enter the GPU prefix cache
//! (asynchronous device-to-host copies: no step time). When a new request is admitted, its prompt blocks
//! are looked up on the GPU first and then, past the first GPU miss, on the CPU; consecutive CPU hits are
//! loaded back (host-to-device) instead of being recomputed, and the load time is added to the step that
//! admits the request. The CPU pool evicts least-recently stored or hit content first.

use std::collections::{HashMap, VecDeque};

/// Effective host-to-device bandwidth per GPU for KV loads, GB/s (PCIe Gen5 x16 after protocol
/// overhead; each GPU of a TP group loads its own shard in parallel).
pub const H2D_GBPS: f64 = 40.0;
/// Fixed cost of one load (transfer launch and synchronisation), µs.
pub const LOAD_LATENCY_US: f64 = 20.0;

/// The CPU block pool of one replica: an LRU set of block content hashes.
#[derive(Debug, Clone)]
pub struct CpuTier {
    capacity: usize,
    /// Hash → stamp of its latest use; an entry of `order` is live only if its stamp matches.
    stamp: HashMap<u64, u64>,
    order: VecDeque<(u64, u64)>,
    clock: u64,
    /// µs to load one block.
    block_load_us: f64,
    /// Blocks stored, loaded.
    pub stored: u64,
    /// Blocks loaded back to the GPU.
    pub loaded: u64,
}

impl CpuTier {
    /// A pool of `capacity` blocks; `block_bytes_per_gpu` is one block's size on one GPU.
    pub fn new(capacity: u32, block_bytes_per_gpu: f64) -> CpuTier {
        CpuTier {
            capacity: capacity as usize,
            stamp: HashMap::new(),
            order: VecDeque::new(),
            clock: 0,
            block_load_us: block_bytes_per_gpu / (H2D_GBPS * 1e3),
            stored: 0,
            loaded: 0,
        }
    }

    /// Blocks the pool holds.
    pub fn len(&self) -> usize {
        self.stamp.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.stamp.is_empty()
    }

    /// Whether `hash` is on the CPU.
    pub fn contains(&self, hash: u64) -> bool {
        self.stamp.contains_key(&hash)
    }

    /// Stores (or refreshes) a block's content.
    pub fn store(&mut self, hash: u64) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        if self.stamp.insert(hash, self.clock).is_none() {
            self.stored += 1;
        }
        self.order.push_back((hash, self.clock));
        while self.stamp.len() > self.capacity {
            let Some((h, s)) = self.order.pop_front() else { break };
            if self.stamp.get(&h) == Some(&s) {
                self.stamp.remove(&h);
            }
        }
        // Keep the lazy-deletion queue bounded.
        if self.order.len() > 4 * self.capacity + 1024 {
            let stamp = &self.stamp;
            self.order.retain(|(h, s)| stamp.get(h) == Some(s));
        }
    }

    /// Time to load `blocks` blocks back to the GPU, µs (0 for none); counts them and refreshes nothing
    /// (the loaded content enters the GPU prefix cache, whose stores refresh it).
    pub fn load_us(&mut self, blocks: u32) -> f64 {
        if blocks == 0 {
            return 0.0;
        }
        self.loaded += u64::from(blocks);
        LOAD_LATENCY_US + f64::from(blocks) * self.block_load_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_keeps_the_most_recent_blocks() {
        let mut t = CpuTier::new(2, 1e6);
        t.store(1);
        t.store(2);
        t.store(1); // refresh 1
        t.store(3); // evicts 2
        assert!(t.contains(1) && t.contains(3) && !t.contains(2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.stored, 3);
        assert!(t.load_us(2) > LOAD_LATENCY_US);
        assert_eq!(t.load_us(0), 0.0);
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let mut t = CpuTier::new(0, 1e6);
        t.store(1);
        assert!(t.is_empty());
    }
}
