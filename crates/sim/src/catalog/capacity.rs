//! KV cache capacity: how many KV blocks one replica gets after weights and runtime reserves, as vLLM
//! sizes it at start-up.

use super::gpu::GpuProfile;
use super::model::ModelArch;
use crate::error::InvalidInput;

/// Bytes in one GiB.
const GIB: f64 = (1u64 << 30) as f64;
/// Activation (profiling peak) reserve per replica for dense models, GiB.
pub const ACTIVATION_RESERVE_DENSE_GIB: f64 = 5.5;
/// Activation reserve per replica for MoE models, GiB.
pub const ACTIVATION_RESERVE_MOE_GIB: f64 = 8.0;
/// Largest tensor parallelism searched when suggesting a TP that fits.
const MAX_SUGGESTED_TP: u32 = 64;
/// Manifest path of the tensor-parallelism field, named by the "does not fit" error.
const TP_FIELD: &str = "spec.hardware.tensorParallelism";

/// The KV cache size of one replica and the memory budget it came from (all GiB figures are per replica,
/// summed over its `tp` GPUs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KvCapacity {
    /// KV blocks available to the scheduler (every GPU holds its shard of each block, so this is also
    /// the block count of each GPU).
    pub blocks: u64,
    /// Model weights.
    pub weights_gib: f64,
    /// Activation reserve.
    pub activation_gib: f64,
    /// Memory vLLM may use: device memory × utilisation × TP.
    pub available_gib: f64,
    /// Bytes one block occupies on one GPU.
    pub bytes_per_block: f64,
}

/// Non-torch runtime memory (CUDA context, NCCL buffers, CUDA graphs) per replica, GiB.
fn non_torch_gib(tp: u32) -> f64 {
    if tp == 1 {
        0.15
    } else {
        0.6 * f64::from(tp)
    }
}

/// Blocks that fit at `tp`, or None when the reserves exceed the budget or not even one block fits.
fn blocks_at(
    model: &ModelArch,
    gpu: &GpuProfile,
    tp: u32,
    util: f64,
    block_size: u32,
) -> (Option<u64>, KvCapacity) {
    let available_gib = gpu.memory_gib * util * f64::from(tp);
    let weights_gib = model.weight_bytes() / GIB;
    let activation_gib =
        if model.is_moe() { ACTIVATION_RESERVE_MOE_GIB } else { ACTIVATION_RESERVE_DENSE_GIB };
    let bytes_per_block = (model.kv_bytes_per_token(tp) * f64::from(block_size)).floor();
    let free_gib = available_gib - weights_gib - activation_gib - non_torch_gib(tp);
    let cap = KvCapacity { blocks: 0, weights_gib, activation_gib, available_gib, bytes_per_block };
    if !(free_gib > 0.0 && bytes_per_block > 0.0) {
        return (None, cap);
    }
    // Every GPU holds its shard of every block, so the replica's free memory holds `free / (tp x the
    // per-GPU block size)` blocks (vLLM sizes the cache per worker: per-GPU free over per-GPU bytes).
    let blocks = (free_gib * GIB / (bytes_per_block * f64::from(tp))).floor();
    if blocks < 1.0 {
        return (None, cap);
    }
    // Saturating float-to-int conversion; block counts are far below u64::MAX.
    let blocks = blocks as u64;
    (Some(blocks), KvCapacity { blocks, ..cap })
}

/// Derives the KV block count of one replica of `model` on `tp` x `gpu` (vLLM's start-up profiling, as the
/// reference planner models it), or explains which tensor parallelism would fit.
pub fn kv_capacity(
    model: &ModelArch,
    gpu: &GpuProfile,
    tp: u32,
    gpu_memory_utilization: f64,
    block_size: u32,
) -> Result<KvCapacity, InvalidInput> {
    if tp == 0 {
        return Err(InvalidInput::new(
            TP_FIELD,
            "must be >= 1 (got 0)",
            "set tensorParallelism to 1 or more",
        ));
    }
    if !(gpu_memory_utilization.is_finite() && gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0)
    {
        return Err(InvalidInput::new(
            "gpuMemoryUtilization",
            format!("must be in (0, 1] (got {gpu_memory_utilization})"),
            "use vLLM's default 0.9",
        ));
    }
    if block_size == 0 {
        return Err(InvalidInput::new("blockSize", "must be >= 1 (got 0)", "use vLLM's default 16"));
    }
    model.validate().map_err(|e| e.under("model"))?;
    gpu.validate().map_err(|e| e.under("gpu"))?;

    let (blocks, cap) = blocks_at(model, gpu, tp, gpu_memory_utilization, block_size);
    if blocks.is_some() {
        return Ok(cap);
    }
    let reserves = cap.activation_gib + non_torch_gib(tp);
    let problem = format!(
        "{} needs {:.1} GiB of weights (plus {:.1} GiB of activation and runtime reserves); {} x {} at \
         gpuMemoryUtilization {:.2} leaves {:.1} GiB",
        model.name, cap.weights_gib, reserves, tp, gpu.name, gpu_memory_utilization, cap.available_gib
    );
    // vLLM needs the attention heads to split evenly across the GPUs.
    let fitting_tp = (tp + 1..=MAX_SUGGESTED_TP)
        .filter(|t| model.heads % t == 0)
        .find(|&t| blocks_at(model, gpu, t, gpu_memory_utilization, block_size).0.is_some());
    let fix = match fitting_tp {
        Some(t) => format!("set tensorParallelism to {t} or more (or a GPU with more memory)"),
        None => "use a GPU with more memory or a quantised model".to_string(),
    };
    Err(InvalidInput::new(TP_FIELD, problem, fix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{gpu, model};

    fn cap(m: &str, g: &str, tp: u32) -> Result<KvCapacity, InvalidInput> {
        kv_capacity(&model::builtin(m).unwrap(), &gpu::builtin(g).unwrap(), tp, 0.9, 16)
    }

    fn within(actual: f64, expected: f64, tol: f64) {
        assert!((actual - expected).abs() / expected <= tol, "got {actual}, expected {expected}");
    }

    #[test]
    fn reference_worked_examples() {
        for (m, tp, weights, per_block, blocks) in [
            ("Qwen/Qwen3-14B", 1, 27.51, 2_621_440.0, 15_909.0),
            ("meta-llama/Llama-3.1-8B-Instruct", 1, 14.96, 2_097_152.0, 26_312.0),
            // vLLM reported 30,251 and 30,425 blocks for this model at TP 4 on H100 (validation runs
            // train-60/61); summing the four GPUs' memory but not their shards gave 4x as many.
            ("meta-llama/Llama-3.1-70B-Instruct", 4, 131.42, 1_310_720.0, 30_450.0),
        ] {
            let c = cap(m, "H100", tp).unwrap();
            within(c.weights_gib, weights, 0.005);
            assert_eq!(c.bytes_per_block, per_block, "{m}");
            within(c.blocks as f64, blocks, 0.005);
            assert_eq!(c.available_gib, 72.0 * f64::from(tp));
            assert_eq!(c.activation_gib, 5.5);
        }
    }

    #[test]
    fn moe_uses_larger_activation_reserve() {
        let c = cap("mixtral-8x7b-v0.1", "H100", 2).unwrap();
        assert_eq!(c.activation_gib, 8.0);
        assert!(c.blocks > 0);
    }

    #[test]
    fn too_big_names_the_tp_that_fits() {
        let e = cap("meta-llama/Llama-3.1-70B-Instruct", "H100", 1).unwrap_err();
        assert_eq!(e.field, "spec.hardware.tensorParallelism");
        assert!(e.problem.contains("131.4 GiB of weights"), "{}", e.problem);
        assert!(
            e.problem.contains("1 x H100-SXM-80GB at gpuMemoryUtilization 0.90 leaves 72.0 GiB"),
            "{}",
            e.problem
        );
        assert_eq!(e.fix, "set tensorParallelism to 2 or more (or a GPU with more memory)");
        let e = cap("meta-llama/Llama-3.1-70B-Instruct", "L40S", 2).unwrap_err();
        assert!(e.fix.starts_with("set tensorParallelism to 4"), "{}", e.fix);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        assert_eq!(cap("qwen3-14b", "H100", 0).unwrap_err().field, TP_FIELD);
        let m = model::builtin("qwen3-14b").unwrap();
        let g = gpu::builtin("H100").unwrap();
        assert_eq!(kv_capacity(&m, &g, 1, 1.5, 16).unwrap_err().field, "gpuMemoryUtilization");
        assert_eq!(kv_capacity(&m, &g, 1, f64::NAN, 16).unwrap_err().field, "gpuMemoryUtilization");
        assert_eq!(kv_capacity(&m, &g, 1, 0.9, 0).unwrap_err().field, "blockSize");
        let bad = ModelArch { heads: 0, ..m };
        assert_eq!(kv_capacity(&bad, &g, 1, 0.9, 16).unwrap_err().field, "model.heads");
    }

    #[test]
    fn more_tp_or_memory_gives_more_blocks() {
        let one = cap("qwen3-14b", "H100", 1).unwrap().blocks;
        let two = cap("qwen3-14b", "H100", 2).unwrap().blocks;
        let h200 = cap("qwen3-14b", "H200", 1).unwrap().blocks;
        assert!(two > 2 * one && h200 > one);
    }
}
