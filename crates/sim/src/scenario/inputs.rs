//! What a prediction was made for, read back from a resolved scenario: shown in `blis run`'s JSON and
//! in the controller's `normalizedInputs`, so a result can be read on its own.

use serde::Serialize;

use super::Resolved;

/// The resolved inputs a prediction was made for, so a result can be read on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inputs {
    /// Model name.
    pub model: String,
    /// GPU profile.
    pub gpu: String,
    /// GPUs per replica.
    pub tensor_parallelism: u32,
    /// Replicas.
    pub replicas: u32,
    /// Step-time model.
    pub latency_model: String,
    /// The vLLM release whose defaults filled the knobs left out.
    pub vllm_version: String,
    /// `--max-num-seqs`.
    pub max_num_seqs: u32,
    /// `--max-num-batched-tokens`.
    pub max_num_batched_tokens: u32,
    /// `--block-size`.
    pub block_size: u32,
    /// KV blocks per replica.
    pub kv_blocks: u32,
    /// `--max-model-len`.
    pub max_model_len: u32,
    /// Prefix caching on.
    pub prefix_caching: bool,
    /// Chunked prefill on.
    pub chunked_prefill: bool,
    /// `--long-prefill-token-threshold`.
    pub long_prefill_token_threshold: u32,
    /// `--async-scheduling`.
    pub async_scheduling: bool,
}

impl Inputs {
    /// The inputs of a resolved scenario.
    pub fn of(r: &Resolved) -> Self {
        let i = &r.instance;
        Self {
            model: r.model.name.clone(),
            gpu: r.gpu.name.clone(),
            tensor_parallelism: r.tensor_parallelism,
            replicas: r.replicas,
            latency_model: r.latency.name().to_string(),
            vllm_version: r.vllm_version.to_string(),
            max_num_seqs: i.max_num_seqs,
            max_num_batched_tokens: i.max_num_batched_tokens,
            block_size: i.block_size,
            kv_blocks: i.total_blocks,
            max_model_len: i.max_model_len,
            prefix_caching: i.prefix_caching,
            chunked_prefill: i.chunked_prefill,
            long_prefill_token_threshold: i.long_prefill_token_threshold,
            async_scheduling: i.async_scheduling,
        }
    }
}
