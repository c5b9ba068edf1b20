//! Pool state over time (queue depth, running batch, KV utilisation, replicas) at a bounded size, so a
//! report can plot a run of any length: the simulator samples at fixed simulated times, samples fall
//! into equal-width buckets, and when there would be more than [`MAX_BUCKETS`] the buckets are merged
//! in pairs and both the width and the sampling interval double.

/// Most buckets a series holds, whatever the run's length.
pub const MAX_BUCKETS: usize = 512;

/// Width of a bucket before any merge (µs).
pub const BASE_WIDTH_US: i64 = 100_000;

/// Samples per bucket (the sampling interval is the bucket width over this).
pub const SAMPLES_PER_BUCKET: i64 = 4;

/// One pool's state at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolSample {
    /// Requests waiting in the pool's replica queues.
    pub waiting: u32,
    /// Requests in the running batches.
    pub running: u32,
    /// KV blocks in use on serving (active or draining) replicas.
    pub kv_used: u64,
    /// KV blocks of those replicas.
    pub kv_total: u64,
    /// Replicas serving (routable).
    pub active: u32,
}

/// One pool over one bucket: sums over its samples (for means) and peaks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolBucket {
    /// Σ waiting.
    pub waiting_sum: u64,
    /// Peak waiting.
    pub waiting_max: u32,
    /// Σ running.
    pub running_sum: u64,
    /// Σ KV blocks in use.
    pub kv_used_sum: u64,
    /// Σ KV blocks present.
    pub kv_total_sum: u64,
    /// Peak KV utilisation of one sample.
    pub kv_util_max: f64,
    /// Σ active replicas.
    pub active_sum: u64,
    /// Peak active replicas.
    pub active_max: u32,
}

impl PoolBucket {
    fn add(&mut self, s: &PoolSample) {
        self.waiting_sum += u64::from(s.waiting);
        self.waiting_max = self.waiting_max.max(s.waiting);
        self.running_sum += u64::from(s.running);
        self.kv_used_sum += s.kv_used;
        self.kv_total_sum += s.kv_total;
        if s.kv_total > 0 {
            self.kv_util_max = self.kv_util_max.max(s.kv_used as f64 / s.kv_total as f64);
        }
        self.active_sum += u64::from(s.active);
        self.active_max = self.active_max.max(s.active);
    }

    fn merge(&mut self, o: &PoolBucket) {
        self.waiting_sum += o.waiting_sum;
        self.waiting_max = self.waiting_max.max(o.waiting_max);
        self.running_sum += o.running_sum;
        self.kv_used_sum += o.kv_used_sum;
        self.kv_total_sum += o.kv_total_sum;
        self.kv_util_max = self.kv_util_max.max(o.kv_util_max);
        self.active_sum += o.active_sum;
        self.active_max = self.active_max.max(o.active_max);
    }

    /// Mean KV utilisation over the bucket (blocks in use over blocks present), 0 without replicas.
    pub fn kv_util_mean(&self) -> f64 {
        if self.kv_total_sum == 0 {
            0.0
        } else {
            self.kv_used_sum as f64 / self.kv_total_sum as f64
        }
    }
}

/// One bucket of the whole cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Samples taken in it.
    pub samples: u32,
    /// Σ requests queued at the gateway (flow control).
    pub gateway_sum: u64,
    /// Peak requests queued at the gateway.
    pub gateway_max: u64,
    /// Per pool, by pool index.
    pub pools: Vec<PoolBucket>,
}

impl Bucket {
    /// Mean of a per-sample sum over the bucket's samples.
    pub fn mean(&self, sum: u64) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            sum as f64 / f64::from(self.samples)
        }
    }

    fn merge(&mut self, o: &Bucket) {
        self.samples += o.samples;
        self.gateway_sum += o.gateway_sum;
        self.gateway_max = self.gateway_max.max(o.gateway_max);
        for (a, b) in self.pools.iter_mut().zip(&o.pools) {
            a.merge(b);
        }
    }
}

/// The cluster's state over time: bucket `i` covers `[i * width_us, (i + 1) * width_us)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Bucket width (µs).
    pub width_us: i64,
    /// Buckets from time 0, at most [`MAX_BUCKETS`].
    pub buckets: Vec<Bucket>,
    pools: usize,
    next_us: i64,
}

impl Default for Series {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Series {
    /// An empty series of `pools` pools; the first sample is due at time 0.
    pub fn new(pools: usize) -> Self {
        Self { width_us: BASE_WIDTH_US, buckets: Vec::new(), pools, next_us: 0 }
    }

    /// When the next sample is due (µs).
    pub fn next_due(&self) -> i64 {
        self.next_us
    }

    /// Records the sample due at [`Series::next_due`]: the gateway queue and one sample per pool.
    pub fn record(&mut self, gateway: u64, pools: &[PoolSample]) {
        let t = self.next_us;
        let mut i = (t / self.width_us) as usize;
        while i >= MAX_BUCKETS {
            self.halve();
            i = (t / self.width_us) as usize;
        }
        while self.buckets.len() <= i {
            self.buckets.push(Bucket { pools: vec![PoolBucket::default(); self.pools], ..Bucket::default() });
        }
        let b = &mut self.buckets[i];
        b.samples += 1;
        b.gateway_sum += gateway;
        b.gateway_max = b.gateway_max.max(gateway);
        for (pb, s) in b.pools.iter_mut().zip(pools) {
            pb.add(s);
        }
        self.next_us = t + self.width_us / SAMPLES_PER_BUCKET;
    }

    /// Merges buckets in pairs and doubles the width and the sampling interval.
    fn halve(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                a.merge(&b);
            }
            self.buckets.push(a);
        }
        self.width_us *= 2;
    }

    /// Drops the buckets that start after `end_us` (autoscaler ticks sampled after the work ended).
    pub fn truncate_after(&mut self, end_us: i64) {
        let keep = (end_us.max(0) / self.width_us) as usize + 1;
        self.buckets.truncate(keep);
    }

    /// Start of bucket `i` (µs).
    pub fn start_us(&self, i: usize) -> i64 {
        i as i64 * self.width_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: u32) -> PoolSample {
        PoolSample { waiting: v, running: 2 * v, kv_used: u64::from(v), kv_total: 100, active: 1 }
    }

    #[test]
    fn any_run_length_stays_bounded_and_keeps_every_sample() {
        for samples in [1u32, 7, 2048, 2049, 20_000] {
            let mut s = Series::new(1);
            let mut total = 0u64;
            for k in 0..samples {
                let v = k % 13;
                total += u64::from(v);
                s.record(u64::from(k % 3), &[sample(v)]);
            }
            assert!(s.buckets.len() <= MAX_BUCKETS, "{} buckets for {samples} samples", s.buckets.len());
            assert_eq!(s.buckets.iter().map(|b| u64::from(b.samples)).sum::<u64>(), u64::from(samples));
            assert_eq!(s.buckets.iter().map(|b| b.pools[0].waiting_sum).sum::<u64>(), total);
            // Every bucket covers the samples whose time falls in it.
            let interval = s.width_us / SAMPLES_PER_BUCKET;
            assert!(s.next_due() >= s.start_us(s.buckets.len() - 1));
            assert!(s.next_due() - interval < s.start_us(s.buckets.len()));
            let peak = s.buckets.iter().map(|b| b.pools[0].waiting_max).max();
            assert_eq!(peak, Some((samples - 1).min(12)));
        }
    }

    #[test]
    fn merged_means_are_sample_weighted() {
        let mut s = Series::new(1);
        for k in 0..(SAMPLES_PER_BUCKET as u32 * MAX_BUCKETS as u32 + 1) {
            s.record(0, &[sample(if k < 4 { 10 } else { 0 })]);
        }
        assert_eq!(s.width_us, 2 * BASE_WIDTH_US);
        let b = &s.buckets[0];
        assert_eq!(b.samples, 8);
        assert_eq!(b.mean(b.pools[0].waiting_sum), 5.0);
        assert!((b.pools[0].kv_util_mean() - 0.05).abs() < 1e-12);
        assert!((b.pools[0].kv_util_max - 0.1).abs() < 1e-12);
        s.truncate_after(3 * BASE_WIDTH_US);
        assert_eq!(s.buckets.len(), 2);
    }
}
