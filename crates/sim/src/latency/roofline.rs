//! Analytic roofline step time: a step costs the larger of its compute time (FLOPs at the achieved fraction
//! of peak) and its memory time (weights + KV bytes at the achieved fraction of HBM bandwidth), plus
//! tensor-parallel all-reduces and a fixed per-step overhead.
//!
//! Everything that depends only on model, GPU and TP is folded into per-unit constants at construction, so
//! a step costs a handful of multiply-adds (plus one `exp` for MoE expert coverage).

use super::{LatencyModel, RequestOverheads, StepBatch};
use crate::catalog::{GpuProfile, ModelArch};

/// Default fixed cost of one engine step, µs: scheduler bookkeeping, input preparation, sampling, CUDA-graph
/// launch and output processing that happen once per step regardless of batch size (vLLM V1 on a fast host
/// spends a few hundred µs per step outside the GPU kernels).
pub const DEFAULT_STEP_OVERHEAD_US: f64 = 250.0;

/// Roofline latency model for one model on `tp` GPUs of one type, with all per-token costs precomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofline {
    /// µs of prefill compute per prompt token (all linear layers).
    pf_us_per_token: f64,
    /// µs of prefill compute per prefilling sequence (LM head on its last token).
    pf_us_per_seq: f64,
    /// µs of prefill attention compute per (query token, attended token) pair.
    pf_us_per_pair: f64,
    /// µs of decode compute per decoding sequence (linear layers + LM head).
    dc_us_per_seq: f64,
    /// µs of decode attention compute per attended token.
    dc_us_per_pair: f64,
    /// Per-GPU bytes of weights read every step whatever the batch (everything but routed experts).
    fixed_weight_bytes: f64,
    /// Per-GPU bytes of one routed expert summed over all MoE layers (0 for dense models).
    expert_bytes: f64,
    /// Routed experts per MoE layer.
    experts: f64,
    /// ln of the chance that one token misses a given expert, ln((N−k)/N); for expected distinct experts.
    ln_expert_miss: f64,
    /// Per-GPU KV bytes per token (read or written), full-attention layers.
    kv_bytes_per_token: f64,
    /// Per-GPU KV bytes a sequence reads in its sliding-window layers (the window, at most).
    sliding_bytes_per_seq: f64,
    /// Per-GPU activation bytes per token moved between layers.
    act_bytes_per_token: f64,
    /// µs per byte of achieved memory bandwidth.
    us_per_byte: f64,
    /// µs of all-reduce transfer per token in the step (all layers; 0 at TP 1).
    comm_us_per_token: f64,
    /// µs of all-reduce latency per step (all layers; 0 at TP 1).
    comm_us_fixed: f64,
    /// Fixed per-step overhead, µs.
    step_overhead_us: f64,
}

/// Where one step's time goes, µs (unrounded); for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepBreakdown {
    /// FLOPs at the achieved fraction of peak.
    pub compute_us: f64,
    /// Bytes at the achieved fraction of HBM bandwidth.
    pub memory_us: f64,
    /// Tensor-parallel all-reduces.
    pub comm_us: f64,
    /// Fixed per-step overhead.
    pub overhead_us: f64,
}

impl StepBreakdown {
    /// Step time: the slower of compute and memory, plus communication and overhead.
    pub fn total_us(&self) -> f64 {
        self.compute_us.max(self.memory_us) + self.comm_us + self.overhead_us
    }
}

/// GPUs of one node, for telling NVLink from scale-out traffic.
pub const GPUS_PER_NODE: f64 = 8.0;

/// Expert-parallel all-to-all of one engine on `tp` GPUs, as (µs per token, µs per step): each MoE
/// layer dispatches every token's activations to its top-k experts and combines them back, over the
/// `shards x tp` GPUs of the expert-parallel group; the part leaving an 8-GPU node crosses the
/// scale-out network. Zero without expert parallelism.
pub fn expert_all_to_all(model: &ModelArch, gpu: &GpuProfile, tp: u32) -> (f64, f64) {
    let g = model.param_groups();
    let group = g.expert_shards * f64::from(tp.max(1));
    if g.expert_shards <= 1.0 || g.top_k == 0.0 {
        return (0.0, 0.0);
    }
    let (_, moe_layers) = model.layer_split();
    let moe_layers = f64::from(moe_layers);
    let remote = (group - 1.0) / group;
    let off_node = (1.0 - GPUS_PER_NODE / group).max(0.0);
    let bytes =
        2.0 * g.top_k * f64::from(model.hidden) * model.activation_bytes * remote / f64::from(tp.max(1));
    let us_per_byte = (1.0 - off_node) / (gpu.nvlink_gbps * 1e3).max(f64::MIN_POSITIVE)
        + off_node / (gpu.scale_out_gbps * 1e3).max(f64::MIN_POSITIVE);
    (moe_layers * bytes * us_per_byte, moe_layers * 2.0 * gpu.all_reduce_latency_us)
}

impl Roofline {
    /// Precomputes the per-token costs of `model` on `tp` x `gpu`. Degenerate inputs (zeros) give degenerate
    /// but finite-or-clamped times rather than panics; validate the inputs first for meaningful numbers.
    pub fn new(model: &ModelArch, gpu: &GpuProfile, tp: u32) -> Roofline {
        let tp_f = f64::from(tp.max(1));
        let h = f64::from(model.hidden);
        let layers = f64::from(model.layers);
        // Parameters every token multiplies through (GEMMs): attention projections, dense MLPs, and for MoE
        // the top-k routed experts, the shared expert(s) and the router.
        let g = model.param_groups();
        let (attn_params, dense_mlp_params, always_moe_params) = (g.attention, g.dense_mlp, g.always_moe);
        let (expert_params, active_expert_params, experts, top_k) =
            (g.experts_all, g.experts_active, g.experts, g.top_k);
        let lm_head_params = g.lm_head;
        let linear_flops_per_token =
            2.0 * (attn_params + dense_mlp_params + always_moe_params + active_expert_params);
        let lm_head_flops = 2.0 * lm_head_params;
        // Attention FLOPs per (query, key) pair over all layers: QK^T and AV, 2 FLOPs per multiply-add each.
        let attn_flops_per_pair = layers
            * match &model.mla {
                // Absorbed MLA attends in the latent space: QK over rank + rope, AV over rank.
                Some(m) => {
                    2.0 * f64::from(model.heads)
                        * (2.0 * f64::from(m.kv_lora_rank) + f64::from(m.qk_rope_head_dim))
                }
                None => 4.0 * f64::from(model.heads) * f64::from(model.head_dim),
            };

        let peak_tflops = if model.weight_bytes_per_param == 1.0 && gpu.has_fp8() {
            gpu.tflops_fp8
        } else {
            gpu.tflops_bf16
        };
        // FLOPs per µs of the whole TP group at full peak.
        let flops_per_us = tp_f * peak_tflops * 1e6;
        let pf_rate = flops_per_us * gpu.mfu_prefill;
        let dc_rate = flops_per_us * gpu.mfu_decode;

        let wbpp = model.weight_bytes_per_param;
        let norms = g.norms;
        // The embedding lookup is a gather (negligible); the LM head matrix is read in full.
        let fixed_weight_bytes =
            (attn_params + dense_mlp_params + always_moe_params + lm_head_params + norms) * wbpp / tp_f;
        let expert_bytes = expert_params * model.expert_weight_bytes() / tp_f;
        // Under expert parallelism an engine holds experts / shards of them, which the tokens of all
        // shards (about shards x its own) reach.
        let shards = g.expert_shards;
        let ln_expert_miss =
            if experts > 0.0 { ((experts - top_k).max(0.0) / experts).ln() * shards } else { 0.0 };

        let bytes_per_us = gpu.hbm_tbps * 1e6 * gpu.hbm_efficiency;

        // Two all-reduces per layer (after attention and after the MLP), each of tokens × hidden activations;
        // a ring moves 2(TP−1)/TP of the message through each GPU's link.
        let (comm_us_per_token, comm_us_fixed) = if tp > 1 {
            let ring = 2.0 * (tp_f - 1.0) / tp_f;
            let link_bytes_per_us = gpu.nvlink_gbps * 1e3;
            let all_reduces = 2.0 * layers;
            (
                all_reduces * h * model.activation_bytes * ring / link_bytes_per_us,
                all_reduces * gpu.all_reduce_latency_us,
            )
        } else {
            (0.0, 0.0)
        };
        let (ep_us_per_token, ep_us_fixed) = expert_all_to_all(model, gpu, tp);

        Roofline {
            pf_us_per_token: linear_flops_per_token / pf_rate,
            pf_us_per_seq: lm_head_flops / pf_rate,
            pf_us_per_pair: attn_flops_per_pair / pf_rate,
            dc_us_per_seq: (linear_flops_per_token + lm_head_flops) / dc_rate,
            dc_us_per_pair: attn_flops_per_pair / dc_rate,
            fixed_weight_bytes,
            expert_bytes,
            experts: experts / shards,
            ln_expert_miss,
            kv_bytes_per_token: model.kv_bytes_per_token(tp.max(1)),
            sliding_bytes_per_seq: model.sliding_kv_bytes_per_seq(tp.max(1)),
            act_bytes_per_token: layers * h * model.activation_bytes,
            us_per_byte: 1.0 / bytes_per_us,
            comm_us_per_token: comm_us_per_token + ep_us_per_token,
            comm_us_fixed: comm_us_fixed + ep_us_fixed,
            step_overhead_us: DEFAULT_STEP_OVERHEAD_US,
        }
    }

    /// The same model with a different fixed per-step overhead (µs, clamped to >= 0).
    pub fn with_step_overhead_us(mut self, overhead_us: f64) -> Roofline {
        self.step_overhead_us = if overhead_us.is_finite() { overhead_us.max(0.0) } else { 0.0 };
        self
    }

    /// Per-GPU weight bytes one step reads when it runs `tokens` tokens: everything except routed experts, plus
    /// the expected number of distinct experts the tokens touch, N·(1 − ((N−k)/N)^T), in each MoE layer.
    pub fn weight_bytes_read(&self, tokens: u64) -> f64 {
        if self.expert_bytes == 0.0 || tokens == 0 {
            return self.fixed_weight_bytes;
        }
        let distinct = self.experts * (1.0 - (self.ln_expert_miss * tokens as f64).exp());
        self.fixed_weight_bytes + self.expert_bytes * distinct
    }

    /// Compute, memory, communication and overhead time of one step.
    pub fn breakdown(&self, b: &StepBatch) -> StepBreakdown {
        let prefill_tokens = b.prefill_tokens as f64;
        let prefill_seqs = f64::from(b.prefill_seqs);
        let decode_seqs = f64::from(b.decode_seqs);
        let decode_context = b.decode_context as f64;
        let prefill_pairs = b.prefill_attention.max(0.0);
        let tokens = b.total_tokens();

        let compute_us = prefill_tokens * self.pf_us_per_token
            + prefill_seqs * self.pf_us_per_seq
            + prefill_pairs * self.pf_us_per_pair
            + decode_seqs * self.dc_us_per_seq
            + (decode_context + decode_seqs) * self.dc_us_per_pair;

        // KV tokens read by prefill: Σ(c_i + t_i) estimated from the attention sum, exact for a single request
        // up to half a token: seqs × Σ(t_i(c_i + (t_i+1)/2)) / Σt_i + Σt_i / 2.
        let prefill_kv_read = if b.prefill_tokens > 0 {
            prefill_seqs * prefill_pairs / prefill_tokens + prefill_tokens / 2.0
        } else {
            0.0
        };
        // KV reads of the contexts plus writes of the new tokens.
        let kv_tokens = prefill_kv_read + decode_context + tokens as f64;
        // An empty step runs no forward pass and reads no weights.
        let weight_bytes = if tokens > 0 { self.weight_bytes_read(tokens) } else { 0.0 };
        let sliding = (prefill_seqs + decode_seqs) * self.sliding_bytes_per_seq;
        let bytes = weight_bytes
            + kv_tokens * self.kv_bytes_per_token
            + sliding
            + tokens as f64 * self.act_bytes_per_token;
        let memory_us = bytes * self.us_per_byte;

        let comm_us =
            if tokens > 0 { self.comm_us_fixed + tokens as f64 * self.comm_us_per_token } else { 0.0 };
        StepBreakdown { compute_us, memory_us, comm_us, overhead_us: self.step_overhead_us }
    }
}

impl LatencyModel for Roofline {
    fn step_time_us(&self, batch: &StepBatch) -> i64 {
        let t = self.breakdown(batch).total_us().floor();
        // NaN (degenerate inputs) maps to 0 and then to the 1 µs floor; huge values saturate.
        (t as i64).max(1)
    }

    fn request_overheads(&self) -> RequestOverheads {
        RequestOverheads::default()
    }

    fn name(&self) -> &str {
        "roofline"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{gpu, model};

    fn roofline(m: &str, g: &str, tp: u32) -> Roofline {
        Roofline::new(&model::builtin(m).unwrap(), &gpu::builtin(g).unwrap(), tp)
    }

    fn decode(seqs: u32, ctx_each: u64) -> StepBatch {
        StepBatch {
            decode_seqs: seqs,
            decode_context: u64::from(seqs).saturating_mul(ctx_each),
            ..Default::default()
        }
    }

    fn prefill(tokens: u64, cached: u64) -> StepBatch {
        let t = tokens as f64;
        StepBatch {
            prefill_seqs: 1,
            prefill_tokens: tokens,
            prefill_attention: t * (cached as f64 + (t + 1.0) / 2.0),
            ..Default::default()
        }
    }

    #[test]
    fn llama_8b_decode_and_prefill_are_realistic() {
        let r = roofline("llama-3.1-8b-instruct", "H100", 1);
        let d = r.step_time_us(&decode(1, 1000));
        assert!((3_000..=10_000).contains(&d), "decode step {d} µs");
        let p = r.step_time_us(&prefill(2048, 0));
        assert!((20_000..=120_000).contains(&p), "prefill step {p} µs");
        // Single decode is memory bound; a long prefill is compute bound.
        let bd = r.breakdown(&decode(1, 1000));
        assert!(bd.memory_us > bd.compute_us);
        let bp = r.breakdown(&prefill(2048, 0));
        assert!(bp.compute_us > bp.memory_us);
    }

    #[test]
    fn monotone_in_every_batch_dimension() {
        for (m, tp) in [("llama-3.1-8b-instruct", 1), ("mixtral-8x7b-v0.1", 2), ("deepseek-v2-lite", 1)] {
            let r = roofline(m, "H100", tp);
            let mut last = 0;
            for seqs in [0, 1, 2, 8, 32, 64, 128, 256, 512] {
                let t = r.step_time_us(&decode(seqs, 1000));
                assert!(t >= last, "{m}: decode_seqs {seqs}: {t} < {last}");
                last = t;
            }
            let mut last = 0;
            for ctx in [0, 100, 1_000, 10_000, 100_000, 1_000_000] {
                let t =
                    r.step_time_us(&StepBatch { decode_seqs: 16, decode_context: ctx, ..Default::default() });
                assert!(t >= last, "{m}: decode_context {ctx}");
                last = t;
            }
            let mut last = 0;
            for tokens in [0, 1, 16, 128, 512, 2048, 8192] {
                let t = r.step_time_us(&prefill(tokens, 500));
                assert!(t >= last, "{m}: prefill_tokens {tokens}");
                last = t;
            }
        }
    }

    #[test]
    fn tensor_parallelism_speeds_up_70b_decode() {
        let one = roofline("llama-3.1-70b-instruct", "H100", 1).step_time_us(&decode(8, 2000));
        let two = roofline("llama-3.1-70b-instruct", "H100", 2).step_time_us(&decode(8, 2000));
        let four = roofline("llama-3.1-70b-instruct", "H100", 4).step_time_us(&decode(8, 2000));
        assert!(two < one && four < two, "{one} {two} {four}");
        assert!(roofline("llama-3.1-70b-instruct", "H100", 1).breakdown(&decode(8, 2000)).comm_us == 0.0);
        assert!(roofline("llama-3.1-70b-instruct", "H100", 2).breakdown(&decode(8, 2000)).comm_us > 0.0);
    }

    #[test]
    fn fp8_weights_speed_up_memory_bound_decode() {
        let bf16 = model::builtin("llama-3.1-8b-instruct").unwrap();
        let fp8 = ModelArch { weight_bytes_per_param: 1.0, ..bf16.clone() };
        let h100 = gpu::builtin("H100").unwrap();
        let a = Roofline::new(&bf16, &h100, 1).step_time_us(&decode(4, 1000));
        let b = Roofline::new(&fp8, &h100, 1).step_time_us(&decode(4, 1000));
        assert!(b < a, "fp8 {b} vs bf16 {a}");
        assert!((b as f64) < 0.7 * a as f64);
        // FP8 prefill runs at the FP8 peak on H100 but not on A100 (no FP8 support).
        let pf = prefill(4096, 0);
        assert!(
            Roofline::new(&fp8, &h100, 1).breakdown(&pf).compute_us
                < Roofline::new(&bf16, &h100, 1).breakdown(&pf).compute_us
        );
        let a100 = gpu::builtin("A100").unwrap();
        assert_eq!(
            Roofline::new(&fp8, &a100, 1).breakdown(&pf).compute_us,
            Roofline::new(&bf16, &a100, 1).breakdown(&pf).compute_us
        );
    }

    #[test]
    fn moe_reads_more_experts_with_more_tokens() {
        let r = roofline("mixtral-8x7b-v0.1", "H100", 2);
        let one = r.weight_bytes_read(1);
        let many = r.weight_bytes_read(512);
        assert!(one < many, "{one} vs {many}");
        // With 512 tokens all 8 experts are touched: the full model is read (minus the embedding gather).
        let m = model::builtin("mixtral-8x7b-v0.1").unwrap();
        let full = (m.param_count() - f64::from(m.vocab) * f64::from(m.hidden)) * 2.0 / 2.0;
        assert!((many - full).abs() / full < 1e-6, "{many} vs {full}");
        // One token with top-2 reads 2 of 8 experts.
        assert!(one < 0.4 * many);
        let dense = roofline("llama-3.1-8b-instruct", "H100", 1);
        assert_eq!(dense.weight_bytes_read(1), dense.weight_bytes_read(512));
    }

    #[test]
    fn slower_gpus_are_slower() {
        let b = decode(32, 2000);
        let h100 = roofline("qwen3-14b", "H100", 1).step_time_us(&b);
        let h200 = roofline("qwen3-14b", "H200", 1).step_time_us(&b);
        let a100 = roofline("qwen3-14b", "A100", 1).step_time_us(&b);
        let l40s = roofline("qwen3-14b", "L40S", 1).step_time_us(&b);
        assert!(h200 < h100 && h100 < a100 && a100 < l40s, "{h200} {h100} {a100} {l40s}");
    }

    #[test]
    fn cached_prefix_costs_attention_but_not_linear_work() {
        let r = roofline("qwen3-14b", "H100", 1);
        let cold = r.breakdown(&prefill(512, 0));
        let warm = r.breakdown(&prefill(512, 8000));
        assert!(warm.compute_us > cold.compute_us);
        assert!(warm.compute_us < r.breakdown(&prefill(8512, 0)).compute_us);
    }

    #[test]
    fn overhead_and_degenerate_inputs() {
        let r = roofline("llama-3.1-8b-instruct", "H100", 1);
        assert_eq!(r.step_time_us(&StepBatch::default()), DEFAULT_STEP_OVERHEAD_US as i64);
        let r0 = r.clone().with_step_overhead_us(-5.0);
        assert_eq!(r0.step_time_us(&StepBatch::default()), 1);
        let r1 = r.clone().with_step_overhead_us(1000.0);
        assert_eq!(r1.step_time_us(&decode(1, 10)) - r.step_time_us(&decode(1, 10)), 750);
        // Zeroed architecture: no panic, still >= 1.
        let mut m = model::builtin("llama-3.1-8b-instruct").unwrap();
        m.heads = 0;
        m.hidden = 0;
        let g = gpu::GpuProfile { hbm_tbps: 0.0, ..gpu::builtin("H100").unwrap() };
        let weird = Roofline::new(&m, &g, 0);
        assert!(weird.step_time_us(&decode(3, 100)) >= 1);
        let huge = StepBatch {
            prefill_tokens: u64::MAX,
            prefill_seqs: u32::MAX,
            prefill_attention: f64::MAX,
            ..decode(u32::MAX, u64::MAX)
        };
        assert!(r.step_time_us(&huge) >= 1);
    }
}
