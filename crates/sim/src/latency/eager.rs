//! vLLM's `--enforce-eager` mode: without CUDA graphs every layer's kernels are launched from the CPU
//! on every step, which adds a roughly constant time per layer to each engine step on top of what the
//! graph-captured step model predicts; and without the compiled model the prompt work of a step runs
//! unfused kernels, which on some GPUs makes it measurably slower.

use super::{LatencyModel, RequestOverheads, StepBatch};
use std::sync::Arc;

/// A step-time model plus the eager-mode costs: a launch cost on every step and a slowdown of the
/// prompt part of steps that compute prompt tokens.
pub struct Eager {
    inner: Arc<dyn LatencyModel>,
    extra_us: i64,
    prefill_slowdown: f64,
    name: String,
}

impl Eager {
    /// `inner` with `us_per_layer` × `layers` added to each step (rounded to whole µs), and the prompt part
    /// of a step (its time minus that of the same step without its prompt tokens) made
    /// `prefill_slowdown` longer.
    pub fn new(inner: Arc<dyn LatencyModel>, us_per_layer: f64, layers: u32, prefill_slowdown: f64) -> Eager {
        let extra_us = (us_per_layer * f64::from(layers)).round().max(0.0) as i64;
        let name = format!("{}+eager", inner.name());
        Eager { inner, extra_us, prefill_slowdown: prefill_slowdown.max(0.0), name }
    }

    /// The time each step gains, µs.
    pub fn extra_us(&self) -> i64 {
        self.extra_us
    }
}

impl LatencyModel for Eager {
    fn step_time_us(&self, batch: &StepBatch) -> i64 {
        let t = self.inner.step_time_us(batch);
        let mut extra = self.extra_us;
        if self.prefill_slowdown > 0.0 && batch.prefill_tokens > 0 {
            let decodes = if batch.decode_seqs > 0 {
                self.inner.step_time_us(&StepBatch::decode(batch.decode_seqs, batch.decode_context))
            } else {
                0
            };
            extra += (self.prefill_slowdown * (t - decodes).max(0) as f64).round() as i64;
        }
        t.saturating_add(extra)
    }

    /// The inner model's decode run (its fast path, if it has one) with the launch cost on each step:
    /// timed in short stretches without a horizon, which then applies to the longer steps.
    fn decode_run(
        &self,
        seqs: u32,
        context: u64,
        start: i64,
        horizon: i64,
        max_steps: usize,
        ends: &mut Vec<i64>,
    ) {
        const STRETCH: usize = 8;
        let (mut t, mut ctx, mut left) = (start, context, max_steps);
        while left > 0 {
            let from = ends.len();
            let k = left.min(STRETCH);
            self.inner.decode_run(seqs, ctx, 0, i64::MAX, k, ends);
            let mut inner_end = 0;
            for idx in from..from + k {
                let last = t >= horizon;
                let dt = ends[idx] - inner_end;
                inner_end = ends[idx];
                t += dt.saturating_add(self.extra_us);
                ends[idx] = t;
                if last {
                    ends.truncate(idx + 1);
                    return;
                }
            }
            left -= k;
            ctx += k as u64 * u64::from(seqs);
        }
    }

    fn request_overheads(&self) -> RequestOverheads {
        self.inner.request_overheads()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{gpu, model};
    use crate::latency::{build, LatencyKind};

    /// Llama-3.1-8B's layer count and its calibrated (CUDA-graph) model on `gpu`.
    fn graphs_on(gpu: &str) -> (u32, Arc<dyn LatencyModel>) {
        let g = gpu::builtin(gpu).expect("built-in");
        let m = model::builtin("llama-3.1-8b-instruct").expect("built-in");
        (m.layers, Arc::from(build(LatencyKind::Calibrated, &m, &g, 1)))
    }

    #[test]
    fn every_step_gains_the_same_launch_time() {
        let (layers, graphs) = graphs_on("H100");
        let eager = Eager::new(graphs.clone(), 33.0, layers, 0.0);
        assert_eq!(eager.extra_us(), 33 * i64::from(layers));
        let steps = [
            StepBatch { decode_seqs: 1, decode_context: 100, ..Default::default() },
            StepBatch { decode_seqs: 64, decode_context: 64 * 8000, ..Default::default() },
            StepBatch {
                prefill_seqs: 1,
                prefill_tokens: 8000,
                prefill_attention: 3.2e7,
                ..Default::default()
            },
        ];
        for b in &steps {
            assert_eq!(eager.step_time_us(b) - graphs.step_time_us(b), eager.extra_us(), "{b:?}");
        }
        assert_eq!(eager.request_overheads(), graphs.request_overheads());
    }

    #[test]
    fn a_decode_run_equals_its_steps_timed_one_by_one() {
        let (layers, graphs) = graphs_on("H100");
        let eager = Eager::new(graphs, 33.0, layers, 0.07);
        for (seqs, start) in [(1u32, 100u64), (6, 6 * 8100), (64, 64 * 1500)] {
            crate::latency::assert_decode_run_matches_steps(&eager, seqs, start, 200, "eager");
        }
    }

    #[test]
    fn the_prompt_part_of_a_step_is_slowed_and_decodes_are_not() {
        let (layers, graphs) = graphs_on("A100");
        let eager = Eager::new(graphs.clone(), 60.0, layers, 0.07);
        let decode = StepBatch::decode(8, 8 * 8100);
        assert_eq!(eager.step_time_us(&decode) - graphs.step_time_us(&decode), eager.extra_us());
        let mixed = StepBatch {
            prefill_seqs: 1,
            prefill_tokens: 8000,
            prefill_attention: 8000.0 * 4000.5,
            long_prompt_tokens: u64::from(crate::latency::long_prompt_tokens(0, 8000)),
            ..decode
        };
        let prompt_part = graphs.step_time_us(&mixed) - graphs.step_time_us(&decode);
        assert!(prompt_part > 100_000, "an 8k prompt step on A100 takes hundreds of ms: {prompt_part}");
        let gained = eager.step_time_us(&mixed) - graphs.step_time_us(&mixed) - eager.extra_us();
        assert_eq!(gained, (0.07 * prompt_part as f64).round() as i64);
        // Prompt-only steps: the whole step is prompt work.
        let alone = StepBatch { decode_seqs: 0, decode_context: 0, ..mixed };
        let gained = eager.step_time_us(&alone) - graphs.step_time_us(&alone) - eager.extra_us();
        assert_eq!(gained, (0.07 * graphs.step_time_us(&alone) as f64).round() as i64);
    }
}
