//! One pool's serving resolved: its GPU, tensor parallelism, step-time model and vLLM engine knobs
//! (batching, KV blocks derived from memory, prefix caching, offload), shared by the single-pool
//! scenario and every pool of a cluster.

use std::sync::Arc;

use super::spec::{HardwareSpec, VllmSpec};
use super::vllm_defaults::{engine_defaults, VllmVersion, DEFAULT_VERSION};
use crate::catalog::capacity::kv_capacity;
use crate::catalog::gpu::{self, GpuProfile};
use crate::catalog::model::ModelArch;
use crate::error::InvalidInput;
use crate::latency::{self, LatencyKind, LatencyModel};
use crate::sim::InstanceConfig;

/// vLLM's default GPU memory fraction.
pub const DEFAULT_GPU_MEMORY_UTILIZATION: f64 = 0.9;
/// vLLM's default KV block size.
pub const DEFAULT_BLOCK_SIZE: u32 = 16;
/// Block sizes vLLM accepts on GPUs.
pub const BLOCK_SIZES: [u32; 6] = [1, 8, 16, 32, 64, 128];

pub(super) fn positive_int(
    v: Option<i64>,
    field: &str,
    default: u32,
    fix: &str,
) -> Result<u32, InvalidInput> {
    match v {
        None => Ok(default),
        Some(x) if x >= 1 && x <= i64::from(u32::MAX) => Ok(x as u32),
        Some(x) => Err(InvalidInput::new(field, format!("must be at least 1 (got {x})"), fix)),
    }
}

/// Hardware and vLLM knobs of one pool, resolved.
#[derive(Clone)]
pub(super) struct Serving {
    pub(super) gpu: GpuProfile,
    pub(super) tp: u32,
    pub(super) latency_kind: LatencyKind,
    /// The vLLM release whose defaults filled the knobs left out.
    pub(super) version: VllmVersion,
    pub(super) instance: InstanceConfig,
    pub(super) latency: Arc<dyn LatencyModel>,
    /// KV bytes one token occupies on each GPU (at the serving's KV cache dtype).
    pub(super) kv_bytes_per_token: f64,
}

pub(super) fn resolve_serving(
    model: &ModelArch,
    hw: &HardwareSpec,
    v: &VllmSpec,
    prefix: &str,
    latency_model: Option<LatencyKind>,
    warnings: &mut Vec<String>,
) -> Result<Serving, InvalidInput> {
    let f = |x: &str| format!("{prefix}.{x}");
    // The KV cache dtype sizes every KV byte below: capacity, offload blocks, step-time reads.
    let model = &model.with_kv_cache_bytes(v.kv_cache_dtype.unwrap_or_default().element_bytes());
    // Hardware.
    let gpu = match &hw.profile {
        Some(p) => {
            p.validate().map_err(|e| e.under(&f("hardware.profile")))?;
            p.clone()
        }
        None => gpu::builtin(&hw.gpu).ok_or_else(|| {
            InvalidInput::new(
                f("hardware.gpu"),
                format!("unknown GPU {:?}", hw.gpu),
                format!(
                    "use a built-in GPU profile ({}); or describe {:?} in a HardwareProfile of that name (kubectl apply; its spec.gpu gives memoryGib, tflopsBf16, hbmTbps, nvlinkGbps, dollarsPerGpuHour) or inline under hardware.profile",
                    gpu::builtin_names().join(", "),
                    hw.gpu
                ),
            )
        })?,
    };
    let tp = positive_int(
        hw.tensor_parallelism,
        &f("hardware.tensorParallelism"),
        1,
        "set the number of GPUs per replica (1, 2, 4 or 8)",
    )?;
    if model.heads % tp != 0 {
        return Err(InvalidInput::new(
            f("hardware.tensorParallelism"),
            format!("{tp} does not divide the model's {} attention heads", model.heads),
            "use a tensor parallelism that divides the number of attention heads (e.g. 1, 2, 4, 8)",
        ));
    }

    // vLLM knobs: what is left out gets the release's defaults on this GPU.
    let version = VllmVersion::parse(v.version.as_deref().unwrap_or(DEFAULT_VERSION), &f("vllm.version"))?;
    let defaults = engine_defaults(version, &gpu);
    let block_size = positive_int(
        v.block_size,
        &f("vllm.blockSize"),
        DEFAULT_BLOCK_SIZE,
        "use one of 1, 8, 16, 32, 64, 128",
    )?;
    if !BLOCK_SIZES.contains(&block_size) {
        return Err(InvalidInput::new(
            f("vllm.blockSize"),
            format!("{block_size} is not a block size vLLM supports"),
            "use one of 1, 8, 16, 32, 64, 128",
        ));
    }
    let util = v.gpu_memory_utilization.unwrap_or(DEFAULT_GPU_MEMORY_UTILIZATION);
    if !(util > 0.0 && util <= 1.0) {
        return Err(InvalidInput::new(
            f("vllm.gpuMemoryUtilization"),
            format!("must be in (0, 1] (got {util})"),
            "use a fraction such as 0.9",
        ));
    }
    let max_num_seqs = positive_int(
        v.max_num_seqs,
        &f("vllm.maxNumSeqs"),
        defaults.max_num_seqs,
        "set maxNumSeqs to 1 or more, or leave it out for vLLM's default",
    )?;
    let threshold = match v.long_prefill_token_threshold {
        None => 0,
        Some(x) if (0..=i64::from(u32::MAX)).contains(&x) => x as u32,
        Some(x) => {
            return Err(InvalidInput::new(
                f("vllm.longPrefillTokenThreshold"),
                format!("must be >= 0 (got {x})"),
                "use 0 to disable the cap, or a positive token count",
            ))
        }
    };
    let caching = v.enable_prefix_caching.unwrap_or(defaults.prefix_caching);

    // KV capacity: explicit override, or derived from memory (which also checks the model fits).
    let derived = kv_capacity(model, &gpu, tp, util, block_size);
    let total_blocks = match v.kv_blocks {
        Some(b) => {
            let b = positive_int(
                Some(b),
                &f("vllm.kvBlocks"),
                0,
                "set kvBlocks to 1 or more, or leave it out to derive it from GPU memory",
            )?;
            derived?; // The weights must still fit.
            b
        }
        None => {
            let cap = derived?;
            warnings.push(format!(
                "{prefix}: KV blocks derived from memory: {} blocks of {block_size} tokens per replica ({:.1} GiB weights, {:.1} GiB free for KV)",
                cap.blocks,
                cap.weights_gib,
                cap.blocks as f64 * cap.bytes_per_block / f64::from(1u32 << 30)
            ));
            u32::try_from(cap.blocks).unwrap_or(u32::MAX)
        }
    };
    // Per-GPU bytes of one block of the full-attention layers (the unit of the block pool).
    let block_bytes = model.kv_bytes_per_token(tp) * f64::from(block_size);
    let window_blocks = window_blocks(model, tp, block_size, block_bytes);
    if window_blocks > 0 {
        warnings.push(format!(
            "{prefix}: {} sliding-window layers keep up to {} tokens of KV per running sequence: {window_blocks} blocks per sequence, taken when it is scheduled and freed when it stops running (vLLM's hybrid KV allocator)",
            model.sliding_layers,
            model.sliding_window.unwrap_or(0),
        ));
    }
    // Tokens one sequence can hold beside its window blocks.
    let kv_tokens = u64::from(total_blocks.saturating_sub(window_blocks)) * u64::from(block_size);
    if kv_tokens == 0 {
        return Err(InvalidInput::new(
            f(if v.kv_blocks.is_some() { "vllm.kvBlocks" } else { "vllm.gpuMemoryUtilization" }),
            format!(
                "{total_blocks} KV blocks leave no room for a sequence beside its {window_blocks} sliding-window blocks"
            ),
            "give the KV cache more blocks (more memory, a higher gpuMemoryUtilization or tensorParallelism)",
        ));
    }
    let max_model_len = match v.max_model_len {
        Some(x) => {
            let m = positive_int(
                Some(x),
                &f("vllm.maxModelLen"),
                0,
                "set maxModelLen to 1 or more, or leave it out to use the model's context length",
            )?;
            if u64::from(m) > kv_tokens {
                return Err(InvalidInput::new(
                    f("vllm.maxModelLen"),
                    format!("{m} tokens do not fit in the replica's KV cache ({kv_tokens} tokens)"),
                    "lower maxModelLen, raise gpuMemoryUtilization or tensorParallelism, or use a GPU with more memory",
                ));
            }
            m
        }
        None => {
            let native = model.max_position_embeddings.clamp(1, u64::from(u32::MAX));
            if native > kv_tokens {
                warnings.push(format!(
                    "{prefix}: maxModelLen capped from the model's {native} to the KV capacity of {kv_tokens} tokens"
                ));
                kv_tokens as u32
            } else {
                native as u32
            }
        }
    };
    let chunked = v.enable_chunked_prefill.unwrap_or_else(|| defaults.chunked_prefill(max_model_len));
    let max_num_batched_tokens = match v.max_num_batched_tokens {
        Some(x) => {
            let b = positive_int(
                Some(x),
                &f("vllm.maxNumBatchedTokens"),
                0,
                "set maxNumBatchedTokens to 1 or more, or leave it out for vLLM's default",
            )?;
            if !chunked && b < max_model_len {
                return Err(InvalidInput::new(
                    f("vllm.maxNumBatchedTokens"),
                    format!(
                        "{b} is below maxModelLen {max_model_len}, which vLLM requires when chunked prefill is off"
                    ),
                    "raise maxNumBatchedTokens to at least maxModelLen, lower maxModelLen, or enable chunked prefill",
                ));
            }
            b
        }
        None if chunked => defaults.max_num_batched_tokens,
        None => max_model_len.max(defaults.max_num_batched_tokens.max(2048)),
    };

    // CPU KV offload tier: GiB per replica over the replica's bytes per block (all TP shards).
    let cpu_offload_blocks = match v.cpu_offload_gib {
        None => 0,
        Some(g) if g.is_finite() && g >= 0.0 => {
            let b = (g * f64::from(1u32 << 30) / (block_bytes * f64::from(tp)).max(1.0)).floor();
            if g > 0.0 {
                warnings.push(format!("{prefix}: CPU KV offload tier: {b} blocks ({g} GiB)"));
            }
            b.min(f64::from(u32::MAX)) as u32
        }
        Some(g) => {
            return Err(InvalidInput::new(
                f("vllm.cpuOffloadGib"),
                format!("must be >= 0 (got {g})"),
                "give the CPU memory for offloaded KV in GiB, or 0 for none",
            ))
        }
    };
    let latency_kind =
        match (latency_model, &gpu.calibration) {
            (Some(LatencyKind::Calibrated), None) => return Err(InvalidInput::new(
                "spec.latencyModel",
                format!("GPU profile {} has no calibration", gpu.name),
                "use latencyModel: roofline, or give the profile coefficients (blis calibrate, --profile)",
            )),
            (Some(k), _) => k,
            (None, Some(_)) => LatencyKind::Calibrated,
            (None, None) => {
                warnings.push(format!(
                "{prefix}: GPU profile {} has no calibration: using the uncalibrated roofline latency model",
                gpu.name
            ));
                LatencyKind::Roofline
            }
        };
    if latency_kind == LatencyKind::Calibrated {
        if let Some(c) = &gpu.calibration {
            c.validate().map_err(|e| e.under(&f("hardware.profile.calibration")))?;
            if let Some(w) = c.transfer_note() {
                warnings.push(format!("{prefix}: {w}"));
            }
        }
    }
    let mut latency: Arc<dyn LatencyModel> = Arc::from(latency::build(latency_kind, model, &gpu, tp));
    if v.enforce_eager == Some(true) {
        match gpu.eager_us_per_layer {
            Some(us) => {
                let slowdown = gpu.eager_prefill_slowdown.unwrap_or(0.0);
                let eager = latency::Eager::new(latency, us, model.layers, slowdown);
                let prompt = if slowdown > 0.0 {
                    format!(", and its prompt work {:.0} % longer (measured on {})", slowdown * 100.0, gpu.name)
                } else {
                    String::new()
                };
                warnings.push(format!(
                    "{prefix}: vllm.enforceEager (no CUDA graphs): every step takes {:.2} ms longer ({us} µs per layer x {} layers, the launch cost measured on {}){prompt}",
                    eager.extra_us() as f64 / 1000.0,
                    model.layers,
                    gpu.name
                ));
                latency = Arc::new(eager);
            }
            None => warnings.push(format!(
                "{prefix}: vllm.enforceEager (no CUDA graphs) is not modelled on {}: no eager launch cost is measured for it (eagerUsPerLayer), so steps are predicted as with CUDA graphs",
                gpu.name
            )),
        }
    }
    Ok(Serving {
        gpu,
        tp,
        latency_kind,
        version,
        instance: InstanceConfig {
            max_num_seqs,
            max_num_batched_tokens,
            long_prefill_token_threshold: threshold,
            chunked_prefill: chunked,
            max_model_len,
            block_size,
            total_blocks,
            window_blocks,
            prefix_caching: caching,
            async_scheduling: v.async_scheduling.unwrap_or(defaults.async_scheduling),
            cpu_offload_blocks,
            kv_block_bytes_per_gpu: block_bytes,
        },
        latency,
        kv_bytes_per_token: model.kv_bytes_per_token(tp),
    })
}

/// Blocks of the block pool a running sequence holds for its sliding-window layers: the window's
/// tokens plus the block being written (`ceil(window / block) + 1` blocks of those layers, as vLLM's
/// sliding-window manager keeps them), in units of a full-attention block (`block_bytes` per GPU).
/// 0 without sliding layers.
fn window_blocks(model: &ModelArch, tp: u32, block_size: u32, block_bytes: f64) -> u32 {
    let Some(window) = model.sliding_window.filter(|&w| w > 0) else {
        return 0;
    };
    let per_seq = model.sliding_kv_bytes_per_seq(tp);
    if per_seq <= 0.0 || block_bytes <= 0.0 {
        return 0;
    }
    let tokens = (window.div_ceil(block_size) + 1) * block_size;
    let bytes = per_seq / f64::from(window) * f64::from(tokens);
    (bytes / block_bytes).ceil().min(f64::from(u32::MAX)) as u32
}
