//! Admission and flow control in front of the endpoint picker.
//!
//! Admission, in order: a token bucket (cost = prompt tokens), probabilistic admission (requests
//! below an exempt priority admitted with a probability falling from 1 to 0 along a curve as a load
//! signal, by default the pool's saturation, goes from a band's `start` to its `full`), then either the flow-control queue (priority bands,
//! strict priority between bands, FCFS inside, per-band and global caps, queue TTL, dispatch only
//! while the pool is not saturated) or, without flow control, the endpoint picker's default of
//! shedding negative-priority requests while the pool is saturated.

use std::collections::VecDeque;

use super::router::{FlowControl, LoadSignal};
use crate::workload::Request;

/// Token-bucket admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    /// Bucket size (tokens).
    pub capacity: f64,
    /// Refill rate (tokens per second).
    pub refill_per_s: f64,
}

/// How the shed probability rises from 0 at `start` to 1 at `full`, on `x = (signal - start) / (full - start)`
/// clamped to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Curve {
    /// `x`.
    Linear,
    /// `x^exponent`: above 1 sheds gently first, below 1 sheds early.
    Power {
        /// Exponent (> 0).
        exponent: f64,
    },
    /// A logistic step around `x = 0.5` with `steepness`, rescaled to be exactly 0 at `x = 0` and 1 at
    /// `x = 1`.
    Logistic {
        /// Slope of the step (> 0).
        steepness: f64,
    },
}

impl Curve {
    /// Shed probability at the normalised load `x` (clamped to [0, 1]); monotone, 0 at 0, 1 at 1.
    pub fn shed(self, x: f64) -> f64 {
        let x = if x.is_nan() { 1.0 } else { x.clamp(0.0, 1.0) };
        let y = match self {
            Curve::Linear => x,
            Curve::Power { exponent } => x.powf(exponent),
            Curve::Logistic { steepness } => {
                let s = |z: f64| 1.0 / (1.0 + (-steepness * (z - 0.5)).exp());
                let (lo, hi) = (s(0.0), s(1.0));
                (s(x) - lo) / (hi - lo).max(1e-12)
            }
        };
        y.clamp(0.0, 1.0)
    }
}

/// Where one priority band's shedding starts and ends, in the signal's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Signal value at which shedding starts.
    pub start: f64,
    /// Signal value at which every request of the band is shed.
    pub full: f64,
}

/// Probabilistic admission: requests below `exempt_priority` are admitted with probability
/// `1 - curve((signal - start) / (full - start))`, with `start`/`full` per priority band.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilistic {
    /// What load means.
    pub signal: LoadSignal,
    /// Shape of the shed probability between `start` and `full`.
    pub curve: Curve,
    /// The ramp of bands without their own.
    pub ramp: Ramp,
    /// Ramps of particular priorities.
    pub bands: Vec<(i32, Ramp)>,
    /// Requests at or above this priority are always admitted.
    pub exempt_priority: i32,
}

impl Probabilistic {
    /// Probability of admitting a request of `priority` at load `signal`.
    pub fn admit_probability(&self, priority: i32, signal: f64) -> f64 {
        if priority >= self.exempt_priority {
            return 1.0;
        }
        let r = self.bands.iter().find(|(p, _)| *p == priority).map_or(self.ramp, |(_, r)| *r);
        let span = (r.full - r.start).max(1e-9);
        1.0 - self.curve.shed((signal - r.start) / span)
    }
}

/// Gateway settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayConfig {
    /// Priority of each class (by class index).
    pub class_priority: Vec<i32>,
    /// Token bucket, if any.
    pub token_bucket: Option<TokenBucket>,
    /// Probabilistic admission, if any.
    pub probabilistic: Option<Probabilistic>,
    /// Interval between dispatch attempts while requests are queued (µs).
    pub dispatch_interval_us: i64,
}

/// The token bucket's state.
pub struct Bucket {
    cfg: TokenBucket,
    tokens: f64,
    at: i64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(cfg: TokenBucket) -> Self {
        Self { cfg, tokens: cfg.capacity, at: 0 }
    }

    /// Refills to `now` and takes `cost` tokens if there are enough.
    pub fn try_take(&mut self, now: i64, cost: f64) -> bool {
        let dt = (now - self.at).max(0) as f64 / 1e6;
        self.tokens = (self.tokens + dt * self.cfg.refill_per_s).min(self.cfg.capacity);
        self.at = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

struct Band {
    priority: i32,
    cap: u64,
    q: VecDeque<(Request, i64)>,
}

/// The flow-control queue.
pub struct FlowQueue {
    cfg: FlowControl,
    bands: Vec<Band>,
    len: u64,
}

impl FlowQueue {
    /// An empty queue.
    pub fn new(cfg: FlowControl) -> Self {
        let mut bands: Vec<Band> =
            cfg.bands.iter().map(|&(priority, cap)| Band { priority, cap, q: VecDeque::new() }).collect();
        bands.sort_by_key(|b| std::cmp::Reverse(b.priority));
        Self { cfg, bands, len: 0 }
    }

    /// Requests queued.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a request; gives it back when its band or the whole queue is full.
    pub fn push(&mut self, req: Request, priority: i32, now: i64) -> Result<(), Request> {
        if self.cfg.max_requests > 0 && self.len >= self.cfg.max_requests {
            return Err(req);
        }
        let k = match self.bands.iter().position(|b| b.priority == priority) {
            Some(k) => k,
            None => {
                let k = self.bands.iter().position(|b| b.priority < priority).unwrap_or(self.bands.len());
                self.bands.insert(k, Band { priority, cap: self.cfg.default_band_max, q: VecDeque::new() });
                k
            }
        };
        let b = &mut self.bands[k];
        if b.cap > 0 && b.q.len() as u64 >= b.cap {
            return Err(req);
        }
        b.q.push_back((req, now));
        self.len += 1;
        Ok(())
    }

    /// Removes requests whose queue time reached the TTL at `now`, into `out`.
    pub fn expire(&mut self, now: i64, out: &mut Vec<Request>) {
        let Some(ttl) = self.cfg.ttl_us else {
            return;
        };
        for b in &mut self.bands {
            while b.q.front().is_some_and(|(_, t)| now - t >= ttl) {
                let (r, _) = b.q.pop_front().expect("front exists");
                out.push(r);
                self.len -= 1;
            }
        }
    }

    /// The next request to dispatch (highest band, oldest first).
    pub fn pop(&mut self) -> Option<Request> {
        let b = self.bands.iter_mut().find(|b| !b.q.is_empty())?;
        self.len -= 1;
        b.q.pop_front().map(|(r, _)| r)
    }

    /// Puts a request back at the head of its band (dispatch failed).
    pub fn push_front(&mut self, req: Request, priority: i32, now: i64) {
        if let Some(b) = self.bands.iter_mut().find(|b| b.priority == priority) {
            b.q.push_front((req, now));
            self.len += 1;
        }
    }

    /// Priority of the band the next request would come from.
    pub fn head_priority(&self) -> Option<i32> {
        self.bands.iter().find(|b| !b.q.is_empty()).map(|b| b.priority)
    }

    /// The enqueue time of the request at the head of the highest non-empty band.
    pub fn head_time(&self) -> Option<i64> {
        self.bands.iter().find_map(|b| b.q.front().map(|(_, t)| *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::PromptLayout;

    fn req(id: u64) -> Request {
        Request {
            id,
            arrival_us: 0,
            class: 0,
            input_tokens: 10,
            output_tokens: 10,
            prompt: PromptLayout { prefix_key: 0, prefix_len: 0, body_key: id, body_shared: false },
            session: None,
            warm_tokens: 0,
        }
    }

    #[test]
    fn strict_priority_caps_and_ttl() {
        let cfg = FlowControl {
            enabled: true,
            ttl_us: Some(100),
            max_requests: 0,
            bands: vec![(0, 2), (10, 5)],
            default_band_max: 1,
        };
        let mut q = FlowQueue::new(cfg);
        q.push(req(1), 0, 0).unwrap();
        q.push(req(2), 0, 0).unwrap();
        assert!(q.push(req(3), 0, 0).is_err());
        q.push(req(4), 10, 50).unwrap();
        q.push(req(5), -5, 50).unwrap();
        assert!(q.push(req(6), -5, 50).is_err());
        assert_eq!(q.pop().unwrap().id, 4);
        let mut out = Vec::new();
        q.expire(120, &mut out);
        assert_eq!(out.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(q.pop().unwrap().id, 5);
        assert!(q.is_empty());
    }

    fn linear(start: f64, full: f64) -> Probabilistic {
        Probabilistic {
            signal: LoadSignal::Saturation,
            curve: Curve::Linear,
            ramp: Ramp { start, full },
            bands: Vec::new(),
            exempt_priority: 0,
        }
    }

    #[test]
    fn probabilistic_ramp() {
        let p = linear(0.8, 1.2);
        assert_eq!(p.admit_probability(5, 9.0), 1.0);
        assert_eq!(p.admit_probability(-1, 0.5), 1.0);
        assert!((p.admit_probability(-1, 1.0) - 0.5).abs() < 1e-9);
        assert_eq!(p.admit_probability(-1, 2.0), 0.0);
    }

    proptest::proptest! {
        /// Every curve and band: the admit probability stays in [0, 1], never rises with load, is 1
        /// below `start` and 0 at or above `full`, and exempt priorities are always admitted.
        #[test]
        fn admission_curve_properties(
            kind in 0u8..3, knob in 0.05f64..20.0, start in 0.0f64..10.0, span in 0.01f64..10.0,
            band_start in 0.0f64..10.0, prio in -20i32..20, exempt in -5i32..5,
            loads in proptest::collection::vec(-5.0f64..30.0, 2..20),
        ) {
            let curve = match kind {
                0 => Curve::Linear,
                1 => Curve::Power { exponent: knob },
                _ => Curve::Logistic { steepness: knob },
            };
            let p = Probabilistic {
                signal: LoadSignal::QueueDepth,
                curve,
                ramp: Ramp { start, full: start + span },
                bands: vec![(-10, Ramp { start: band_start, full: band_start + span })],
                exempt_priority: exempt,
            };
            let mut loads = loads;
            loads.sort_by(f64::total_cmp);
            let mut last = 1.0f64;
            let ramp = if prio == -10 { p.bands[0].1 } else { p.ramp };
            for &l in &loads {
                let a = p.admit_probability(prio, l);
                proptest::prop_assert!((0.0..=1.0).contains(&a), "{a}");
                if prio >= exempt {
                    proptest::prop_assert_eq!(a, 1.0);
                }
                proptest::prop_assert!(a <= last + 1e-12, "not monotone: {a} after {last} at {l}");
                if prio < exempt && l <= ramp.start {
                    proptest::prop_assert!((a - 1.0).abs() < 1e-9);
                }
                if prio < exempt && l >= ramp.full {
                    proptest::prop_assert!(a.abs() < 1e-9);
                }
                last = a;
            }
        }
    }
}
