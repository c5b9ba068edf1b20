//! Streaming summary: per-class counters and bounded-error quantile sketches fed one completed
//! request at a time, so a run keeps no per-request records and its memory does not grow with the
//! number of requests.
//!
//! Counts, token sums, means, throughput, goodput and SLO attainment are exact (means up to the
//! order of floating-point summation); each percentile is within [`RELATIVE_ACCURACY`] of a value
//! between the two order statistics the exact summary interpolates (a DDSketch, whose error bound
//! holds for any distribution, so an SLO comparison cannot flip on a dense region of values).
//! Exact mode ([`SummaryMode::Exact`]) keeps every record and is the oracle the bound is tested
//! against.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

use super::record::RequestRecord;
use super::summary::{Acc, Dist};
use crate::handoff::{self, Feeder};
use crate::workload::Slo;

/// Relative accuracy of every streamed percentile: within ±0.5 % of the exact value.
pub const RELATIVE_ACCURACY: f64 = 0.005;

/// Most bins one sketch keeps: at 0.5 % accuracy (about 1 % wide bins), 4096 bins span a ratio of
/// about 10^17 between the smallest and largest nonzero latency, beyond any run; a sketch holds only the
/// bins between the two (a few hundred to a few thousand 8-byte counters).
const MAX_BINS: u32 = 4096;

/// Smallest latency (ms) told apart from zero (1 ns); below it a value counts as zero.
const MIN_VALUE_MS: f64 = 1e-6;

/// How a run turns completed requests into its summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SummaryMode {
    /// Keep a record of every completed request; percentiles are exact (interpolated between ranks).
    #[default]
    Exact,
    /// Keep counters and quantile sketches only: memory independent of the number of requests,
    /// percentiles within 0.5 % (see `metrics::stream`).
    Streaming,
}

/// One latency metric's sketch and exact sum (ms).
#[derive(Clone)]
struct Latency {
    sketch: DDSketch,
    sum: f64,
}

impl Latency {
    fn new() -> Self {
        Self { sketch: DDSketch::new(Config::new(RELATIVE_ACCURACY, MAX_BINS, MIN_VALUE_MS)), sum: 0.0 }
    }

    fn add(&mut self, ms: f64) {
        self.sketch.add(ms);
        self.sum += ms;
    }

    fn dist(&self) -> Dist {
        let n = self.sketch.count();
        if n == 0 {
            return Dist::default();
        }
        let q = |p: f64| self.sketch.quantile(p).ok().flatten().unwrap_or(0.0);
        Dist { mean: self.sum / n as f64, p50: q(0.5), p90: q(0.9), p99: q(0.99) }
    }
}

/// The streamed figures of one class (or of the whole run).
#[derive(Clone)]
pub(super) struct ClassStream {
    /// Counters, exactly as the exact summary keeps them.
    pub(super) acc: Acc,
    /// TTFT, per-request mean ITL, E2E and queueing time.
    latency: [Latency; 4],
}

impl ClassStream {
    fn new() -> Self {
        Self { acc: Acc::new(), latency: std::array::from_fn(|_| Latency::new()) }
    }

    fn add(&mut self, r: &RequestRecord, slo: Option<&Slo>) {
        self.acc.add(r, slo);
        let ms = |us: i64| us as f64 / 1000.0;
        self.latency[0].add(ms(r.ttft_us));
        if let Some(m) = r.itl_mean_us() {
            self.latency[1].add(m / 1000.0);
        }
        self.latency[2].add(ms(r.e2e_us));
        self.latency[3].add(ms(r.queue_us));
    }

    /// TTFT, ITL, E2E and queueing distributions.
    pub(super) fn dists(&self) -> [Dist; 4] {
        std::array::from_fn(|k| self.latency[k].dist())
    }

    /// `n + 1` points (ms, fraction) of the distribution function of TTFT (`metric` 0) or ITL (1).
    pub(super) fn quantile_points(&self, metric: usize, n: usize) -> Vec<(f64, f64)> {
        let s = &self.latency[metric].sketch;
        if s.count() == 0 {
            return Vec::new();
        }
        let n = n.max(1);
        (0..=n)
            .map(|k| {
                let q = k as f64 / n as f64;
                (s.quantile(q).ok().flatten().unwrap_or(0.0), q)
            })
            .collect()
    }
}

/// The streamed summary of a run: the whole run and each class.
#[derive(Clone)]
pub struct StreamSummary {
    slos: Vec<Option<Slo>>,
    overall: ClassStream,
    /// Per class, when there is more than one (a single class is the whole run).
    classes: Vec<ClassStream>,
    first_arrival_us: Option<i64>,
}

impl std::fmt::Debug for StreamSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSummary").field("completed", &self.completed()).finish_non_exhaustive()
    }
}

impl StreamSummary {
    /// An empty summary for a workload whose classes have these SLOs (one entry per class).
    pub fn new(slos: &[Option<Slo>]) -> Self {
        let per_class = if slos.len() > 1 { slos.len() } else { 0 };
        Self {
            slos: slos.to_vec(),
            overall: ClassStream::new(),
            classes: (0..per_class).map(|_| ClassStream::new()).collect(),
            first_arrival_us: None,
        }
    }

    /// Adds one completed request.
    pub fn add(&mut self, r: &RequestRecord) {
        let c = usize::from(r.class);
        let slo = self.slos.get(c).and_then(|s| s.as_ref()).filter(|s| !s.is_empty());
        self.overall.add(r, slo);
        if let Some(cs) = self.classes.get_mut(c) {
            cs.add(r, slo);
        }
        self.first_arrival_us = Some(self.first_arrival_us.map_or(r.arrival_us, |a| a.min(r.arrival_us)));
    }

    /// Completed requests.
    pub fn completed(&self) -> u64 {
        self.overall.acc.completed
    }

    /// Earliest arrival of a completed request (µs).
    pub fn first_arrival_us(&self) -> Option<i64> {
        self.first_arrival_us
    }

    /// The whole run's figures.
    pub(super) fn overall(&self) -> &ClassStream {
        &self.overall
    }

    /// Class `c`'s figures.
    pub(super) fn class(&self, c: usize) -> Option<&ClassStream> {
        if self.classes.is_empty() {
            (c == 0).then_some(&self.overall)
        } else {
            self.classes.get(c)
        }
    }
}

/// Where the engine hands each completed request's record in streaming mode.
pub trait RecordSink {
    /// Takes one completed request.
    fn add(&mut self, r: RequestRecord);
}

impl RecordSink for StreamSummary {
    fn add(&mut self, r: RequestRecord) {
        StreamSummary::add(self, &r);
    }
}

/// Records summarised on a second thread, in completion order (see [`summarised_behind`]).
pub struct SummarisedBehind {
    feeder: Feeder<RequestRecord>,
}

impl RecordSink for SummarisedBehind {
    fn add(&mut self, r: RequestRecord) {
        // The summarising thread outlives every sink (it ends when the sink is dropped).
        self.feeder.push(r);
    }
}

/// Runs `f` with a sink whose records are added to `summary` on a second thread, in the order `f`
/// gives them, so `summary` ends exactly as if `f` had added them itself (every sum in the same
/// order); the sketch work then overlaps the simulation.
pub fn summarised_behind<R>(summary: &mut StreamSummary, f: impl FnOnce(&mut SummarisedBehind) -> R) -> R {
    let (feeder, mut drain) = handoff::pipe(usize::MAX);
    std::thread::scope(|s| {
        s.spawn(move || {
            while let Some(r) = drain.next_item() {
                summary.add(&r);
            }
        });
        // Dropping the sink on return hands over the last records and ends the thread.
        f(&mut SummarisedBehind { feeder })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summary::percentile;
    use proptest::prelude::*;
    use rand::Rng;
    use rand_distr::{Distribution, Exp, LogNormal, Normal};

    /// `n` latencies (ms) of distribution `shape` drawn from `seed`: uniform, exponential, lognormal
    /// with a heavy tail, bimodal, integer microseconds with many ties and zeros, and constant.
    fn values(shape: u8, seed: u64, n: usize) -> Vec<f64> {
        let mut rng = crate::rng::stream(seed, "stream-test");
        let exp = Exp::new(1.0 / 80.0).expect("rate");
        let logn = LogNormal::new(3.0, 1.5).expect("lognormal");
        let fast = Normal::new(20.0_f64, 3.0).expect("normal");
        let slow = Normal::new(900.0_f64, 150.0).expect("normal");
        (0..n)
            .map(|_| match shape {
                0 => rng.random_range(0.5..2000.0),
                1 => exp.sample(&mut rng),
                2 => logn.sample(&mut rng),
                3 if rng.random_bool(0.8) => fast.sample(&mut rng).max(0.001),
                3 => slow.sample(&mut rng).max(0.001),
                4 => rng.random_range(0..40_i64) as f64 / 1000.0,
                _ => 37.5,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every streamed percentile is within the relative accuracy of the order statistic of rank
        /// floor(p (n - 1)), the lower of the two the exact summary interpolates; the mean is exact up
        /// to summation order.
        #[test]
        fn sketch_percentiles_are_within_their_bound_of_the_exact_ones(
            shape in 0u8..6,
            seed in any::<u64>(),
            n in 1usize..5000,
        ) {
            let mut vals = values(shape, seed, n);
            let mut lat = Latency::new();
            vals.iter().for_each(|&v| lat.add(v));
            let d = lat.dist();
            vals.sort_by(f64::total_cmp);
            let mean = vals.iter().sum::<f64>() / n as f64;
            prop_assert!((d.mean - mean).abs() <= 1e-9 * mean.abs().max(1e-12));
            for (p, got) in [(50.0, d.p50), (90.0, d.p90), (99.0, d.p99)] {
                let want = vals[(p / 100.0 * (n - 1) as f64) as usize];
                let slack = RELATIVE_ACCURACY * want.abs() * (1.0 + 1e-9) + 1e-12;
                prop_assert!(
                    (got - want).abs() <= slack,
                    "shape {shape} n {n} p{p}: streamed {got}, order statistic {want}"
                );
                // So against the interpolated exact percentile the error is at most the bound plus
                // the gap to the next order statistic.
                let exact = percentile(&vals, p);
                let hi = vals[((p / 100.0 * (n - 1) as f64).ceil() as usize).min(n - 1)];
                prop_assert!((got - exact).abs() <= slack + (hi - want));
            }
        }
    }
}
