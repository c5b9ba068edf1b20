//! Step-time models: how long one engine step (one forward pass over a continuous batch) takes, behind one
//! trait so the scheduler does not care whether the time is analytic or calibrated.

pub mod calibrated;
pub mod eager;
pub mod roofline;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::calibration::LONG_CONTEXT_TOKENS;
use crate::catalog::{GpuProfile, ModelArch};
pub use calibrated::Calibrated;
pub use eager::Eager;
pub use roofline::Roofline;

/// Shape of one engine step (one forward pass), in tokens; built by the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepBatch {
    /// Requests computing prompt tokens this step.
    pub prefill_seqs: u32,
    /// Σ new prompt tokens computed this step.
    pub prefill_tokens: u64,
    /// Σ over prefill requests of `t_i * (c_i + (t_i + 1) / 2)`: query tokens × average attended context,
    /// `c_i` = tokens already in KV before this chunk (cached prefix included).
    pub prefill_attention: f64,
    /// Prompt tokens computed this step at a position beyond [`LONG_CONTEXT_TOKENS`] in their sequence:
    /// Σ over prefill requests of [`long_prompt_tokens`]; zero for prompts within the threshold.
    pub long_prompt_tokens: u64,
    /// Requests generating one token this step.
    pub decode_seqs: u32,
    /// Σ over decoding requests of their context length (tokens in KV before this step).
    pub decode_context: u64,
}

impl StepBatch {
    /// A decode-only step of `seqs` requests holding `context` tokens in KV between them.
    pub fn decode(seqs: u32, context: u64) -> StepBatch {
        StepBatch { decode_seqs: seqs, decode_context: context, ..StepBatch::default() }
    }

    /// Tokens run through the model this step (prompt tokens plus one per decoding request).
    pub fn total_tokens(&self) -> u64 {
        self.prefill_tokens.saturating_add(u64::from(self.decode_seqs))
    }
}

/// Query tokens of a prompt chunk that sit beyond [`LONG_CONTEXT_TOKENS`] in their sequence: the
/// positions `p` (1-based) in `(max(before, L), before + chunk]`, for a chunk of `chunk` tokens computed with
/// `before` tokens already in KV. Summed over any split of a prompt into chunks it gives the whole prompt's
/// value, so chunked prefill does not change the total.
pub fn long_prompt_tokens(before: u32, chunk: u32) -> u32 {
    tokens_beyond(LONG_CONTEXT_TOKENS as u32, before, chunk)
}

/// [`long_prompt_tokens`] for a threshold of `threshold` tokens.
fn tokens_beyond(threshold: u32, before: u32, chunk: u32) -> u32 {
    before.saturating_add(chunk).saturating_sub(before.max(threshold))
}

/// Per-request costs outside the engine step (tokenisation, detokenisation, streaming); non-blocking.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestOverheads {
    /// Added once before the request can produce its first token (arrival to enqueue).
    pub before_first_token_us: i64,
    /// Added to every output token's timestamp (detokenise and stream).
    pub per_output_token_us: i64,
    /// Added once after the last token (response completion).
    pub after_last_token_us: i64,
}

/// A step-time model: the simulator asks it how long each engine step takes.
pub trait LatencyModel: Send + Sync {
    /// Wall time of one engine step in µs, always >= 1. Called once per step (hot path: O(1), no allocation).
    fn step_time_us(&self, batch: &StepBatch) -> i64;
    /// Appends to `ends` the end times of successive decode-only steps of `seqs` requests, the first
    /// starting at `start` with `context` tokens in KV and each next one with `seqs` more: at most
    /// `max_steps` of them, the last of them the first one starting at or after `horizon`. The times
    /// are those of [`LatencyModel::step_time_us`] for the same steps; a model may override this
    /// with a cheaper loop (a decode run's hot path).
    fn decode_run(
        &self,
        seqs: u32,
        context: u64,
        start: i64,
        horizon: i64,
        max_steps: usize,
        ends: &mut Vec<i64>,
    ) {
        let (mut t, mut ctx) = (start, context);
        for _ in 0..max_steps {
            let last = t >= horizon;
            t += self.step_time_us(&StepBatch::decode(seqs, ctx));
            ends.push(t);
            if last {
                break;
            }
            ctx += u64::from(seqs);
        }
    }
    /// Per-request costs outside the engine steps.
    fn request_overheads(&self) -> RequestOverheads;
    /// Short name for reports and logs.
    fn name(&self) -> &str;
}

/// Which latency model a scenario uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LatencyKind {
    /// Analytic roofline from model FLOPs/bytes and GPU peaks ([`Roofline`]).
    #[default]
    Roofline,
    /// Roofline-shaped basis terms with coefficients fitted to real measurements ([`Calibrated`]); the
    /// default when the GPU profile carries a calibration.
    Calibrated,
}

/// Builds the latency model of `kind` for `model` on `tp` x `gpu`.
pub fn build(kind: LatencyKind, model: &ModelArch, gpu: &GpuProfile, tp: u32) -> Box<dyn LatencyModel> {
    match kind {
        LatencyKind::Roofline => Box::new(Roofline::new(model, gpu, tp)),
        LatencyKind::Calibrated => match &gpu.calibration {
            Some(c) => Box::new(Calibrated::new(model, gpu, tp, &c.coefficients)),
            None => Box::new(Roofline::new(model, gpu, tp)),
        },
    }
}

/// Test helper for every model with a decode-run fast path: the first `n` step times of a decode run of
/// `seqs` sequences from `start` context tokens equal each step timed on its own.
#[cfg(test)]
pub(crate) fn assert_decode_run_matches_steps(
    lm: &dyn LatencyModel,
    seqs: u32,
    start: u64,
    n: usize,
    what: &str,
) {
    let mut ends = Vec::new();
    lm.decode_run(seqs, start, 1000, i64::MAX, n, &mut ends);
    assert_eq!(ends.len(), n, "{what}");
    let times: Vec<i64> = ends.iter().scan(1000, |t, &e| Some(e - std::mem::replace(t, e))).collect();
    // A horizon ends the run with the first step starting at or after it, and changes no time.
    if n > 1 {
        let starts: Vec<i64> = std::iter::once(1000).chain(ends.iter().copied()).take(n).collect();
        for horizon in [i64::MIN, 1000, ends[n / 2 - 1], ends[n / 2 - 1] + 1, ends[n - 2], ends[n - 1]] {
            let mut cut = Vec::new();
            lm.decode_run(seqs, start, 1000, horizon, n, &mut cut);
            let want = (starts.iter().filter(|&&s| s < horizon).count() + 1).min(n);
            assert_eq!(cut[..], ends[..want], "{what}: horizon {horizon}");
        }
    }
    for (j, &dt) in times.iter().enumerate() {
        let ctx = start + j as u64 * u64::from(seqs);
        assert_eq!(
            dt,
            lm.step_time_us(&StepBatch::decode(seqs, ctx)),
            "{what}: {seqs} seqs, step {j}, context {ctx}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{gpu, model};

    #[test]
    fn build_roofline_and_kind_serde() {
        let m = model::builtin("llama-3.1-8b-instruct").unwrap();
        let g = gpu::builtin("H100").unwrap();
        let lm = build(LatencyKind::Roofline, &m, &g, 1);
        assert_eq!(lm.name(), "roofline");
        assert_eq!(lm.request_overheads(), RequestOverheads::default());
        assert!(lm.step_time_us(&StepBatch::default()) >= 1);
        assert_eq!(serde_json::to_string(&LatencyKind::Roofline).unwrap(), "\"roofline\"");
        let k: LatencyKind = serde_yaml::from_str("roofline").unwrap();
        assert_eq!(k, LatencyKind::Roofline);
    }

    /// The long-prompt tokens are exactly zero for every chunk that ends within the threshold, whatever
    /// tokens it starts from.
    #[test]
    fn long_prompt_tokens_are_zero_within_the_threshold() {
        let l = LONG_CONTEXT_TOKENS as u32;
        for before in (0..=l).step_by(7).chain([l - 1, l]) {
            for chunk in (0..=l - before).step_by(5).chain([l - before]) {
                assert_eq!(long_prompt_tokens(before, chunk), 0, "{before} + {chunk}");
            }
        }
        assert_eq!(long_prompt_tokens(l, 1), 1);
        assert_eq!(long_prompt_tokens(l - 1, 2), 1);
        assert_eq!(long_prompt_tokens(u32::MAX - 1, 5), 1, "saturates, no overflow");
    }

    /// Brute force over small thresholds: the positions beyond the threshold, counted one by one.
    #[test]
    fn long_prompt_tokens_match_a_brute_force_count() {
        for threshold in [0u32, 1, 2, 5, 16, 33] {
            for before in 0..60u32 {
                for chunk in 0..60u32 {
                    let want = (before + 1..=before + chunk).filter(|&p| p > threshold).count();
                    assert_eq!(
                        tokens_beyond(threshold, before, chunk) as usize,
                        want,
                        "{threshold}: {before} + {chunk}"
                    );
                }
            }
        }
    }

    /// Chunked prefill does not change the total: any split of a prompt into chunks sums to the
    /// whole prompt's count (splits drawn from a fixed stream, prompts around the threshold).
    #[test]
    fn long_prompt_tokens_are_invariant_under_chunking() {
        let mut x = 0x5eedu64;
        for prompt in [1u32, 2047, 2048, 2049, 4096, 8000, 10_000, 131_072] {
            let whole = long_prompt_tokens(0, prompt);
            assert_eq!(whole, prompt.saturating_sub(LONG_CONTEXT_TOKENS as u32));
            for _ in 0..50 {
                let (mut before, mut sum) = (0u32, 0u32);
                while before < prompt {
                    x = crate::rng::mix2(x, u64::from(before));
                    let chunk = (1 + (x % 3000) as u32).min(prompt - before);
                    sum += long_prompt_tokens(before, chunk);
                    before += chunk;
                }
                assert_eq!(sum, whole, "prompt {prompt}");
            }
        }
    }

    #[test]
    fn total_tokens_counts_decodes_once() {
        let b = StepBatch { prefill_tokens: 100, decode_seqs: 7, ..Default::default() };
        assert_eq!(b.total_tokens(), 107);
    }
}
