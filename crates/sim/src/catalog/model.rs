//! Model architectures: the shape facts (from a Hugging Face `config.json`) that set weight memory, KV
//! cache size per token, and FLOPs/bytes per step.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::InvalidInput;

/// Parameter counts of a model by the role they play in a step (see [`ModelArch::param_groups`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamGroups {
    /// Attention projections, all layers.
    pub attention: f64,
    /// Dense MLPs, all dense layers.
    pub dense_mlp: f64,
    /// MoE parameters every token uses: shared experts and routers.
    pub always_moe: f64,
    /// All routed experts.
    pub experts_all: f64,
    /// The top-k routed experts one token goes through.
    pub experts_active: f64,
    /// Routed experts per MoE layer (0 for dense models).
    pub experts: f64,
    /// Routed experts per token (0 for dense models).
    pub top_k: f64,
    /// Engines the routed experts are sharded over (expert parallelism across DP ranks; 1 = each
    /// engine holds them all).
    pub expert_shards: f64,
    /// LM head matrix.
    pub lm_head: f64,
    /// Norm weights.
    pub norms: f64,
}

/// Mixture-of-experts layout: how many experts, how many a token uses, their sizes, and which layers have them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoeArch {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Routed experts each token uses.
    pub top_k: u32,
    /// Intermediate size of one routed expert.
    pub expert_intermediate: u32,
    /// Total intermediate size of the always-on shared expert(s); 0 if none.
    #[serde(default)]
    pub shared_intermediate: u32,
    /// Number of layers with an MoE MLP.
    pub moe_layers: u32,
    /// Number of layers with a dense MLP.
    #[serde(default)]
    pub dense_layers: u32,
    /// Intermediate size of the dense-layer MLP.
    #[serde(default)]
    pub dense_intermediate: u32,
}

/// Multi-head latent attention (DeepSeek-style): the KV cache holds one compressed latent per token and layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MlaArch {
    /// Rank of the compressed KV latent.
    pub kv_lora_rank: u32,
    /// Width of the decoupled RoPE key part.
    pub qk_rope_head_dim: u32,
    /// Rank of the compressed query (0 = queries projected directly).
    #[serde(default)]
    pub q_lora_rank: u32,
    /// Per-head width of the non-RoPE query/key part.
    #[serde(default)]
    pub qk_nope_head_dim: u32,
    /// Per-head width of values.
    #[serde(default)]
    pub v_head_dim: u32,
}

/// A decoder-only transformer's architecture, enough to size its weights and KV cache and to count the work
/// of one forward pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelArch {
    /// Model name (Hugging Face id where known).
    pub name: String,
    /// Transformer layers.
    pub layers: u32,
    /// Hidden (model) width.
    pub hidden: u32,
    /// Attention (query) heads.
    pub heads: u32,
    /// Key/value heads (GQA); equal to `heads` for plain multi-head attention.
    pub kv_heads: u32,
    /// Per-head width.
    pub head_dim: u32,
    /// MLP intermediate size (dense models; for MoE models the config's `intermediate_size`).
    pub intermediate: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// Longest context the model supports, in tokens (rope scaling applied as vLLM does).
    pub max_position_embeddings: u64,
    /// Bytes per activation element (model dtype: 2 for bf16/fp16); also the KV cache element width.
    pub activation_bytes: f64,
    /// Bytes per weight parameter after quantisation (FP8 = 1, 4-bit = 0.5, else the dtype width).
    pub weight_bytes_per_param: f64,
    /// Bytes per routed-expert parameter when the experts are quantised apart from the rest (MXFP4
    /// experts of gpt-oss: 4.25 bits with their scales); absent = `weightBytesPerParam`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_weight_bytes_per_param: Option<f64>,
    /// Sliding-window attention span in tokens, for the layers that use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<u32>,
    /// Layers with sliding-window attention (their KV is bounded by the window per sequence).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sliding_layers: u32,
    /// Whether the output projection shares the input embedding matrix.
    #[serde(default)]
    pub tied_embeddings: bool,
    /// Mixture-of-experts layout, if the model has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeArch>,
    /// Multi-head latent attention parameters, if the model uses MLA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaArch>,
    /// Bytes per KV cache element when the serving engine stores KV in another dtype than the model's
    /// (vLLM `--kv-cache-dtype`); a serving choice, so never read from a config.
    #[serde(skip)]
    pub kv_cache_bytes: Option<f64>,
    /// Engines (data-parallel ranks) the routed experts are sharded over under expert parallelism:
    /// each engine holds and reads 1/shards of them. A serving choice, so never read from a config.
    #[serde(skip)]
    pub expert_shards: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Keys looked up in `config.json`, first non-zero wins.
const KEYS_LAYERS: &[&str] = &["num_hidden_layers", "n_layer", "num_layers"];
const KEYS_HIDDEN: &[&str] = &["hidden_size", "n_embd", "d_model"];
const KEYS_HEADS: &[&str] = &["num_attention_heads", "n_head"];
const KEYS_KV_HEADS: &[&str] = &["num_key_value_heads", "num_kv_heads", "multi_query_group_num"];
const KEYS_INTERMEDIATE: &[&str] = &["intermediate_size", "ffn_hidden_size", "ffn_dim"];
const KEYS_VOCAB: &[&str] = &["vocab_size", "padded_vocab_size"];
const KEYS_MAX_POS: &[&str] =
    &["max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"];
const KEYS_EXPERTS: &[&str] =
    &["num_experts", "moe_num_experts", "n_routed_experts", "num_local_experts", "num_routed_experts"];

/// Reads a non-negative integer (JSON integer, or a float with no fraction); anything else is "absent".
fn as_count(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f >= 0.0 && f.fract() == 0.0 && f < 1e18).then_some(f as u64)
}

/// First non-zero count among `keys`.
fn first_count(cfg: &Map<String, Value>, keys: &[&str]) -> Option<u64> {
    keys.iter().filter_map(|k| cfg.get(*k).and_then(as_count)).find(|&n| n > 0)
}

/// First non-zero count among `keys`, or an error naming the first key.
fn required(name: &str, cfg: &Map<String, Value>, keys: &[&str]) -> Result<u64, InvalidInput> {
    first_count(cfg, keys).ok_or_else(|| {
        let alternatives =
            if keys.len() > 1 { format!(" (nor any of {})", keys[1..].join(", ")) } else { String::new() };
        InvalidInput::new(
            keys[0],
            format!("the config.json of {name} has no positive {}{alternatives}", keys[0]),
            "add it to the config.json",
        )
    })
}

/// Narrows a count to `u32`, naming the key if it does not fit.
fn to_u32(key: &str, n: u64) -> Result<u32, InvalidInput> {
    u32::try_from(n).map_err(|_| {
        InvalidInput::new(key, format!("{n} is implausibly large"), "check the config.json value")
    })
}

/// Bytes per element of a dtype name (`bfloat16`, `float32`, `fp8`, ...); None if unknown.
fn dtype_bytes(dtype: &str) -> Option<f64> {
    let d = dtype.trim().trim_start_matches("torch.").to_ascii_lowercase();
    match d.as_str() {
        "float32" | "fp32" | "f32" | "float" => Some(4.0),
        "float16" | "fp16" | "f16" | "half" | "bfloat16" | "bf16" => Some(2.0),
        "int8" | "uint8" | "fp8" | "float8" | "float8_e4m3fn" | "float8_e5m2" | "int4" | "nf4" => Some(1.0),
        _ => None,
    }
}

/// MXFP4: 4-bit E2M1 values with one 8-bit E8M0 scale per 32, in bytes per parameter.
pub const MXFP4_BYTES_PER_PARAM: f64 = 4.25 / 8.0;

/// Quantised weight widths in bytes from `quantization_config`, if the config declares one: (every
/// quantised parameter, the routed experts when only they are quantised).
fn quantized_weight_bytes(cfg: &Map<String, Value>) -> Option<(Option<f64>, Option<f64>)> {
    let q = cfg.get("quantization_config")?.as_object()?;
    let method = q.get("quant_method").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    if method == "mxfp4" {
        // gpt-oss: the expert MLPs only; attention, router, embeddings and LM head stay 16-bit.
        return Some((None, Some(MXFP4_BYTES_PER_PARAM)));
    }
    if let Some(bits) =
        ["bits", "w_bit", "weight_bits"].iter().find_map(|k| q.get(*k).and_then(as_count)).filter(|&b| b > 0)
    {
        return Some((Some(bits as f64 / 8.0), None));
    }
    if method.contains("fp8") {
        return Some((Some(1.0), None));
    }
    if let Some(groups) = q.get("config_groups").and_then(Value::as_object) {
        let bits = groups
            .values()
            .filter_map(|g| g.get("weights")?.get("num_bits").and_then(as_count))
            .find(|&b| b > 0);
        if let Some(bits) = bits {
            return Some((Some(bits as f64 / 8.0), None));
        }
    }
    None
}

/// Sliding-window layers and their window: from `layer_types` (gpt-oss, Gemma), from
/// `use_sliding_window` with `max_window_layers` (Qwen2), or every layer when a window is set
/// without either (Mistral v0.1). Windows at least as long as the context do not count.
fn sliding(cfg: &Map<String, Value>, layers: u32, max_pos: u64) -> (Option<u32>, u32) {
    let Some(w) = cfg.get("sliding_window").and_then(as_count).filter(|&w| w > 0 && w < max_pos) else {
        return (None, 0);
    };
    let n = if let Some(types) = cfg.get("layer_types").and_then(Value::as_array) {
        types.iter().filter(|t| t.as_str().is_some_and(|t| t.contains("sliding"))).count() as u32
    } else {
        match cfg.get("use_sliding_window").and_then(Value::as_bool) {
            Some(false) => 0,
            Some(true) => layers.saturating_sub(
                first_count(cfg, &["max_window_layers"]).unwrap_or(0).min(u64::from(layers)) as u32,
            ),
            None => layers,
        }
    };
    if n == 0 {
        return (None, 0);
    }
    (u32::try_from(w).ok(), n.min(layers))
}

/// Weight width implied by a model name such as `...-w4a16` (4 bits) or `...-FP8-dynamic` (1 byte).
fn name_weight_bytes(name: &str) -> Option<f64> {
    let lower = name.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    for (i, _) in lower.match_indices('w') {
        let digits: String = lower[i + 1..].chars().take_while(char::is_ascii_digit).collect();
        let after = i + 1 + digits.len();
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if at_word_start && !digits.is_empty() && bytes.get(after) == Some(&b'a') {
            let a_digits = lower[after + 1..].chars().take_while(char::is_ascii_digit).count();
            if a_digits > 0 {
                if let Ok(bits) = digits.parse::<u32>() {
                    if bits > 0 && bits <= 32 {
                        return Some(f64::from(bits) / 8.0);
                    }
                }
            }
        }
    }
    lower.contains("fp8").then_some(1.0)
}

/// Context length after rope scaling, following vLLM: linear/dynamic/yarn/default/mrope scale it (yarn from
/// `original_max_position_embeddings`); llama3/su/longrope do not; gemma3 is left alone.
fn scaled_max_positions(cfg: &Map<String, Value>, max_pos: u64) -> u64 {
    let model_type = cfg.get("model_type").and_then(Value::as_str).unwrap_or("");
    let Some(rs) = cfg.get("rope_scaling").and_then(Value::as_object) else { return max_pos };
    if model_type.starts_with("gemma3") {
        return max_pos;
    }
    let kind = rs.get("rope_type").or_else(|| rs.get("type")).and_then(Value::as_str).unwrap_or("");
    let factor = rs.get("factor").and_then(Value::as_f64).unwrap_or(0.0);
    if !(factor.is_finite() && factor > 1.0) {
        return max_pos;
    }
    let base = match kind {
        "yarn" => rs.get("original_max_position_embeddings").and_then(as_count).unwrap_or(max_pos),
        "linear" | "dynamic" | "default" | "mrope" => max_pos,
        _ => return max_pos,
    };
    let scaled = (base as f64 * factor).round();
    if scaled.is_finite() && scaled < 1e15 {
        (scaled as u64).max(max_pos)
    } else {
        max_pos
    }
}

impl ModelArch {
    /// Extracts the architecture from a Hugging Face `config.json` (multimodal `text_config` merged over the
    /// top level), naming the missing key when the config lacks a required field.
    pub fn from_hf_config(name: &str, cfg: &Value) -> Result<ModelArch, InvalidInput> {
        let Some(top) = cfg.as_object() else {
            return Err(InvalidInput::new(
                "config.json",
                format!("the config of {name} is not a JSON object"),
                "pass the model's config.json content",
            ));
        };
        let mut merged = top.clone();
        if let Some(text) = top.get("text_config").and_then(Value::as_object) {
            for (k, v) in text {
                merged.insert(k.clone(), v.clone());
            }
        }
        let c = &merged;

        let layers = to_u32(KEYS_LAYERS[0], required(name, c, KEYS_LAYERS)?)?;
        let hidden = to_u32(KEYS_HIDDEN[0], required(name, c, KEYS_HIDDEN)?)?;
        let heads = to_u32(KEYS_HEADS[0], required(name, c, KEYS_HEADS)?)?;
        let intermediate = to_u32(KEYS_INTERMEDIATE[0], required(name, c, KEYS_INTERMEDIATE)?)?;
        let vocab = to_u32(KEYS_VOCAB[0], required(name, c, KEYS_VOCAB)?)?;
        let max_pos = required(name, c, KEYS_MAX_POS)?;
        let kv_heads = to_u32(KEYS_KV_HEADS[0], first_count(c, KEYS_KV_HEADS).unwrap_or(u64::from(heads)))?;
        let head_dim =
            to_u32("head_dim", first_count(c, &["head_dim"]).unwrap_or(u64::from(hidden / heads)))?;

        let activation_bytes = ["torch_dtype", "dtype"]
            .iter()
            .filter_map(|k| c.get(*k).and_then(Value::as_str))
            .find_map(dtype_bytes)
            .unwrap_or(2.0);
        let (quantized, expert_quantized) = quantized_weight_bytes(c).unwrap_or((None, None));
        let weight_bytes_per_param =
            quantized.or_else(|| name_weight_bytes(name)).unwrap_or(activation_bytes);
        let tied_embeddings = c.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false);

        let experts = first_count(c, KEYS_EXPERTS).unwrap_or(0);
        let moe = if experts >= 2 {
            let top_k = required(name, c, &["num_experts_per_tok", "moe_topk"])?;
            let expert_intermediate =
                first_count(c, &["moe_intermediate_size"]).unwrap_or(u64::from(intermediate));
            let model_type = c.get("model_type").and_then(Value::as_str).unwrap_or("");
            let shared_intermediate = first_count(c, &["shared_expert_intermediate_size"])
                .or_else(|| {
                    first_count(c, &["n_shared_experts", "num_shared_experts"])
                        .map(|n| n * expert_intermediate)
                })
                // Llama 4 always has one shared expert of the routed experts' size; its config has no key for it.
                .unwrap_or(if model_type.starts_with("llama4") { expert_intermediate } else { 0 });
            let dense_intermediate =
                first_count(c, &["intermediate_size_mlp"]).unwrap_or(u64::from(intermediate));
            let first_dense = first_count(c, &["first_k_dense_replace"]).unwrap_or(0).min(u64::from(layers));
            let step = first_count(c, &["interleave_moe_layer_step", "decoder_sparse_step"]).unwrap_or(1);
            let freq = first_count(c, &["moe_layer_freq"]).unwrap_or(1);
            let dense_only: Vec<u64> = c
                .get("mlp_only_layers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(as_count).collect())
                .unwrap_or_default();
            let moe_layers = (first_dense..u64::from(layers))
                .filter(|i| (i + 1) % step == 0 && i % freq == 0 && !dense_only.contains(i))
                .count() as u32;
            Some(MoeArch {
                experts: to_u32("num_experts", experts)?,
                top_k: to_u32("num_experts_per_tok", top_k)?,
                expert_intermediate: to_u32("moe_intermediate_size", expert_intermediate)?,
                shared_intermediate: to_u32("shared_expert_intermediate_size", shared_intermediate)?,
                moe_layers,
                dense_layers: layers - moe_layers,
                dense_intermediate: to_u32("intermediate_size_mlp", dense_intermediate)?,
            })
        } else {
            None
        };

        let mla = match first_count(c, &["kv_lora_rank"]) {
            Some(kv_lora_rank) => Some(MlaArch {
                kv_lora_rank: to_u32("kv_lora_rank", kv_lora_rank)?,
                qk_rope_head_dim: to_u32(
                    "qk_rope_head_dim",
                    first_count(c, &["qk_rope_head_dim"]).unwrap_or(0),
                )?,
                q_lora_rank: to_u32("q_lora_rank", first_count(c, &["q_lora_rank"]).unwrap_or(0))?,
                qk_nope_head_dim: to_u32(
                    "qk_nope_head_dim",
                    first_count(c, &["qk_nope_head_dim"]).unwrap_or(u64::from(head_dim)),
                )?,
                v_head_dim: to_u32(
                    "v_head_dim",
                    first_count(c, &["v_head_dim"]).unwrap_or(u64::from(head_dim)),
                )?,
            }),
            None => None,
        };

        let (sliding_window, sliding_layers) = sliding(c, layers, max_pos);
        let arch = ModelArch {
            name: name.to_string(),
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            intermediate,
            vocab,
            max_position_embeddings: scaled_max_positions(c, max_pos),
            activation_bytes,
            weight_bytes_per_param,
            expert_weight_bytes_per_param: expert_quantized,
            sliding_window,
            sliding_layers,
            tied_embeddings,
            moe,
            mla,
            kv_cache_bytes: None,
            expert_shards: None,
        };
        arch.validate()?;
        Ok(arch)
    }

    /// Checks the figures the formulas divide by or multiply with, naming the bad field.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let counts = [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("kvHeads", self.kv_heads),
            ("headDim", self.head_dim),
            ("intermediate", self.intermediate),
            ("vocab", self.vocab),
        ];
        for (field, v) in counts {
            if v == 0 {
                return Err(InvalidInput::new(
                    field,
                    "must be > 0",
                    "take the value from the model's config.json",
                ));
            }
        }
        if self.kv_heads > self.heads {
            return Err(InvalidInput::new(
                "kvHeads",
                format!("{} KV heads exceed {} attention heads", self.kv_heads, self.heads),
                "set kvHeads to at most heads",
            ));
        }
        for (field, v) in [
            ("activationBytes", self.activation_bytes),
            ("weightBytesPerParam", self.weight_bytes_per_param),
            ("expertWeightBytesPerParam", self.expert_weight_bytes()),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 8.0) {
                return Err(InvalidInput::new(
                    field,
                    format!("must be in (0, 8] bytes (got {v})"),
                    "use 2 for bf16/fp16, 1 for FP8/INT8, 0.5 for 4-bit",
                ));
            }
        }
        if let Some(m) = &self.moe {
            let bad = |field: &str, problem: String| {
                Err(InvalidInput::new(field, problem, "fix the MoE layout").under("moe"))
            };
            if m.experts < 2 {
                return bad("experts", format!("an MoE model needs >= 2 experts (got {})", m.experts));
            }
            if m.top_k == 0 || m.top_k > m.experts {
                return bad("topK", format!("must be in 1..={} (got {})", m.experts, m.top_k));
            }
            if m.expert_intermediate == 0 {
                return bad("expertIntermediate", "must be > 0".to_string());
            }
            if m.moe_layers + m.dense_layers != self.layers {
                return bad(
                    "moeLayers",
                    format!(
                        "moeLayers {} + denseLayers {} != layers {}",
                        m.moe_layers, m.dense_layers, self.layers
                    ),
                );
            }
            if m.dense_layers > 0 && m.dense_intermediate == 0 {
                return bad("denseIntermediate", "must be > 0 when there are dense layers".to_string());
            }
        }
        if let Some(m) = &self.mla {
            if m.kv_lora_rank == 0 {
                return Err(InvalidInput::new("kvLoraRank", "must be > 0", "omit mla for non-MLA models")
                    .under("mla"));
            }
        }
        Ok(())
    }

    /// Whether the model routes tokens to experts (changes activation reserve and weight reads).
    pub fn is_moe(&self) -> bool {
        self.moe.is_some()
    }

    /// Attention projection parameters of one layer (Q, K, V, O; MLA uses its low-rank projections).
    pub fn attention_params_per_layer(&self) -> f64 {
        let h = f64::from(self.hidden);
        let heads = f64::from(self.heads);
        match &self.mla {
            Some(m) => {
                let qk = f64::from(m.qk_nope_head_dim) + f64::from(m.qk_rope_head_dim);
                let q = if m.q_lora_rank > 0 {
                    h * f64::from(m.q_lora_rank) + f64::from(m.q_lora_rank) * heads * qk
                } else {
                    h * heads * qk
                };
                let kv_a = h * (f64::from(m.kv_lora_rank) + f64::from(m.qk_rope_head_dim));
                let kv_b = f64::from(m.kv_lora_rank)
                    * heads
                    * (f64::from(m.qk_nope_head_dim) + f64::from(m.v_head_dim));
                let o = heads * f64::from(m.v_head_dim) * h;
                q + kv_a + kv_b + o
            }
            None => {
                let q_dim = heads * f64::from(self.head_dim);
                let kv_dim = f64::from(self.kv_heads) * f64::from(self.head_dim);
                h * q_dim + 2.0 * h * kv_dim + q_dim * h
            }
        }
    }

    /// Parameters of one dense (gated, 3-matrix) MLP layer.
    pub fn dense_mlp_params(&self) -> f64 {
        let i = match &self.moe {
            Some(m) => m.dense_intermediate,
            None => self.intermediate,
        };
        3.0 * f64::from(self.hidden) * f64::from(i)
    }

    /// Layers with a dense MLP and layers with an MoE MLP.
    pub fn layer_split(&self) -> (u32, u32) {
        match &self.moe {
            Some(m) => (m.dense_layers, m.moe_layers),
            None => (self.layers, 0),
        }
    }

    /// The parameter groups step-time models read or multiply through, over all layers: both latency
    /// models derive their per-token FLOPs and per-step weight bytes from these.
    pub fn param_groups(&self) -> ParamGroups {
        let h = f64::from(self.hidden);
        let layers = f64::from(self.layers);
        let (dense_layers, moe_layers) = self.layer_split();
        let moe_layers = f64::from(moe_layers);
        let (always_moe, experts_all, experts_active, experts, top_k) = match &self.moe {
            Some(m) => {
                let n = f64::from(m.experts);
                let one_expert = 3.0 * h * f64::from(m.expert_intermediate);
                let shared_and_router = 3.0 * h * f64::from(m.shared_intermediate) + n * h;
                (
                    moe_layers * shared_and_router,
                    moe_layers * one_expert,
                    moe_layers * one_expert * f64::from(m.top_k),
                    n,
                    f64::from(m.top_k),
                )
            }
            None => (0.0, 0.0, 0.0, 0.0, 0.0),
        };
        ParamGroups {
            attention: layers * self.attention_params_per_layer(),
            dense_mlp: f64::from(dense_layers) * self.dense_mlp_params(),
            always_moe,
            experts_all,
            experts_active,
            experts,
            top_k,
            expert_shards: f64::from(self.expert_shards.unwrap_or(1).max(1)),
            lm_head: f64::from(self.vocab) * h,
            norms: (2.0 * layers + 1.0) * h,
        }
    }

    /// Total parameter count (embeddings, attention, norms, gated MLPs, experts with routers, LM head), as the
    /// llm-d capacity planner counts it.
    pub fn param_count(&self) -> f64 {
        let h = f64::from(self.hidden);
        let embed = f64::from(self.vocab) * h;
        let (dense_layers, moe_layers) = self.layer_split();
        let per_layer = self.attention_params_per_layer() + 2.0 * h;
        let mut total =
            embed + f64::from(self.layers) * per_layer + f64::from(dense_layers) * self.dense_mlp_params();
        if let Some(m) = &self.moe {
            let n = f64::from(m.experts);
            let moe_mlp = 3.0 * h * f64::from(m.expert_intermediate) * n
                + 3.0 * h * f64::from(m.shared_intermediate)
                + n * h;
            total += f64::from(moe_layers) * moe_mlp;
        }
        if !self.tied_embeddings {
            total += embed;
        }
        total + h
    }

    /// Bytes of weights held across all GPUs of one replica.
    pub fn weight_bytes(&self) -> f64 {
        let g = self.param_groups();
        if self.expert_weight_bytes_per_param.is_none() && g.expert_shards == 1.0 {
            return self.param_count() * self.weight_bytes_per_param;
        }
        // `experts_all` is one routed expert summed over the MoE layers.
        let experts = g.experts_all * g.experts;
        let held = experts / g.expert_shards;
        (self.param_count() - experts) * self.weight_bytes_per_param + held * self.expert_weight_bytes()
    }

    /// Bytes per routed-expert parameter.
    pub fn expert_weight_bytes(&self) -> f64 {
        self.expert_weight_bytes_per_param.unwrap_or(self.weight_bytes_per_param)
    }

    /// KV bytes one sequence keeps on each GPU for its sliding-window layers (at most the window).
    pub fn sliding_kv_bytes_per_seq(&self, tp: u32) -> f64 {
        match self.sliding_window {
            Some(w) if self.sliding_layers > 0 => {
                let kv_heads_per_gpu = (f64::from(self.kv_heads) / f64::from(tp.max(1))).max(1.0);
                f64::from(self.sliding_layers)
                    * f64::from(w)
                    * 2.0
                    * f64::from(self.head_dim)
                    * kv_heads_per_gpu
                    * self.kv_element_bytes()
            }
            _ => 0.0,
        }
    }

    /// This model served with its routed experts sharded over `shards` engines (expert parallelism
    /// across `shards` data-parallel ranks).
    pub fn with_expert_shards(&self, shards: u32) -> ModelArch {
        ModelArch { expert_shards: (shards > 1).then_some(shards), ..self.clone() }
    }

    /// Bytes of one KV cache element: vLLM's default `kv-cache-dtype auto` keeps the model dtype, so FP8-weight
    /// models with bf16 activations still store 2-byte KV unless the engine is told otherwise.
    pub fn kv_element_bytes(&self) -> f64 {
        self.kv_cache_bytes.unwrap_or(self.activation_bytes)
    }

    /// This model served with its KV cache stored at `bytes` per element (`None`: the model dtype).
    pub fn with_kv_cache_bytes(&self, bytes: Option<f64>) -> ModelArch {
        ModelArch { kv_cache_bytes: bytes, ..self.clone() }
    }

    /// KV cache bytes one token occupies on each GPU at tensor parallelism `tp` (KV heads are split across GPUs,
    /// replicated when fewer than `tp`; an MLA latent is replicated, not split).
    /// Sliding-window layers are left out: their KV is bounded by the window per sequence
    /// ([`ModelArch::sliding_kv_bytes_per_seq`]).
    pub fn kv_bytes_per_token(&self, tp: u32) -> f64 {
        let layers = f64::from(self.layers - self.sliding_layers.min(self.layers));
        match &self.mla {
            Some(m) => {
                layers * (f64::from(m.kv_lora_rank) + f64::from(m.qk_rope_head_dim)) * self.kv_element_bytes()
            }
            None => {
                let kv_heads_per_gpu = (f64::from(self.kv_heads) / f64::from(tp.max(1))).max(1.0);
                layers * 2.0 * f64::from(self.head_dim) * kv_heads_per_gpu * self.kv_element_bytes()
            }
        }
    }
}

/// Bundled configs: (name shown to users, `config.json` content). Lookup also accepts the file stem (the
/// part of the name after `/`, lower-cased).
const BUNDLED: &[(&str, &str)] = &[
    ("codellama/CodeLlama-34b-Instruct-hf", include_str!("../../data/models/codellama-34b-instruct-hf.json")),
    ("deepseek-ai/DeepSeek-R1-0528", include_str!("../../data/models/deepseek-r1-0528.json")),
    ("deepseek-ai/DeepSeek-V2-Lite", include_str!("../../data/models/deepseek-v2-lite.json")),
    ("glm-5.2-fp8", include_str!("../../data/models/glm-5.2-fp8.json")),
    ("openai/gpt-oss-120b", include_str!("../../data/models/gpt-oss-120b.json")),
    ("openai/gpt-oss-20b", include_str!("../../data/models/gpt-oss-20b.json")),
    ("meta-llama/Llama-2-70b-hf", include_str!("../../data/models/llama-2-70b-hf.json")),
    ("meta-llama/Llama-2-7b-hf", include_str!("../../data/models/llama-2-7b-hf.json")),
    ("meta-llama/Llama-3.1-70B-Instruct", include_str!("../../data/models/llama-3.1-70b-instruct.json")),
    ("meta-llama/Llama-3.1-8B-Instruct", include_str!("../../data/models/llama-3.1-8b-instruct.json")),
    ("meta-llama/Llama-3.3-70B-Instruct", include_str!("../../data/models/llama-3.3-70b-instruct.json")),
    (
        "RedHatAI/Llama-4-Scout-17B-16E-Instruct-FP8-dynamic",
        include_str!("../../data/models/llama-4-scout-17b-16e-instruct-fp8-dynamic.json"),
    ),
    (
        "mistralai/Mistral-Nemo-Instruct-2407",
        include_str!("../../data/models/mistral-nemo-instruct-2407.json"),
    ),
    (
        "mistralai/Mixtral-8x22B-Instruct-v0.1",
        include_str!("../../data/models/mixtral-8x22b-instruct-v0.1.json"),
    ),
    ("mistralai/Mixtral-8x22B-v0.1", include_str!("../../data/models/mixtral-8x22b-v0.1.json")),
    ("mistralai/Mixtral-8x7B-v0.1", include_str!("../../data/models/mixtral-8x7b-v0.1.json")),
    ("facebook/opt-125m", include_str!("../../data/models/opt-125m.json")),
    ("Qwen/Qwen2.5-7B-Instruct", include_str!("../../data/models/qwen2.5-7b-instruct.json")),
    ("Qwen/Qwen3-0.6B", include_str!("../../data/models/qwen3-0.6b.json")),
    ("Qwen/Qwen3-14B", include_str!("../../data/models/qwen3-14b.json")),
    ("Qwen/Qwen3-30B-A3B", include_str!("../../data/models/qwen3-30b-a3b.json")),
    ("Qwen/Qwen3-32B", include_str!("../../data/models/qwen3-32b.json")),
    ("01-ai/Yi-34B", include_str!("../../data/models/yi-34b.json")),
];

/// Lower-cased file stem of a model name: the part after the last `/`.
fn stem(name: &str) -> String {
    name.trim().rsplit('/').next().unwrap_or("").to_ascii_lowercase()
}

/// The bundled architectures, all parsed (for tests: lookups parse only what they need, see
/// [`bundled_by_stem`]); a bundled config that fails to parse is a build defect, left out.
#[cfg(test)]
fn table() -> &'static [ModelArch] {
    static TABLE: OnceLock<Vec<ModelArch>> = OnceLock::new();
    TABLE.get_or_init(|| {
        BUNDLED
            .iter()
            .filter_map(|(name, json)| {
                let v: Value = serde_json::from_str(json).ok()?;
                ModelArch::from_hf_config(name, &v).ok()
            })
            .collect()
    })
}

/// The first bundled architecture whose name has file stem `wanted` and parses, as in `table`, parsing
/// only the configs of that stem (each at most once per process): a lookup does not parse the whole
/// bundle.
fn bundled_by_stem(wanted: &str) -> Option<&'static ModelArch> {
    static PARSED: [OnceLock<Option<ModelArch>>; BUNDLED.len()] = [const { OnceLock::new() }; BUNDLED.len()];
    BUNDLED.iter().zip(&PARSED).filter(|((name, _), _)| stem(name) == wanted).find_map(
        |((name, json), cell)| {
            cell.get_or_init(|| {
                let v: Value = serde_json::from_str(json).ok()?;
                ModelArch::from_hf_config(name, &v).ok()
            })
            .as_ref()
        },
    )
}

/// Quantised-checkpoint suffixes (lower case, longest first) and the weight width they imply.
const QUANT_SUFFIXES: &[(&str, f64)] = &[
    ("-quantized.w4a16", 0.5),
    ("-quantized.w8a8", 1.0),
    ("-fp8-dynamic", 1.0),
    ("-fp8-block", 1.0),
    ("-gptq-int4", 0.5),
    ("-awq-int4", 0.5),
    ("-w4a16", 0.5),
    ("-w8a8", 1.0),
    ("-nvfp4", 4.5 / 8.0),
    ("-mxfp4", MXFP4_BYTES_PER_PARAM),
    ("-fp8", 1.0),
    ("-awq", 0.5),
    ("-gptq", 0.5),
    ("-int4", 0.5),
    ("-int8", 1.0),
];

/// Looks up a bundled model by Hugging Face id or file stem, case-insensitively (`Qwen/Qwen3-14B`, `qwen3-14b`).
pub fn builtin(name: &str) -> Option<ModelArch> {
    builtin_noting(name).map(|(m, _)| m)
}

/// [`builtin`], also finding a quantised checkpoint of a bundled model by its name
/// (`RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic` is Llama-3.3-70B-Instruct with 1-byte weights),
/// with a note saying so.
pub fn builtin_noting(name: &str) -> Option<(ModelArch, Option<String>)> {
    let wanted = stem(name);
    if wanted.is_empty() {
        return None;
    }
    if let Some(m) = bundled_by_stem(&wanted) {
        return Some((m.clone(), None));
    }
    let (suffix, bytes) = QUANT_SUFFIXES.iter().find(|(s, _)| wanted.ends_with(s))?;
    let base = &wanted[..wanted.len() - suffix.len()];
    let m = bundled_by_stem(base)?;
    let note = format!(
        "model {name:?} read as {} with {bytes} bytes per weight ({} checkpoint)",
        m.name,
        suffix.trim_start_matches('-')
    );
    Some((
        ModelArch {
            name: name.trim().to_string(),
            weight_bytes_per_param: *bytes,
            expert_weight_bytes_per_param: None,
            ..m.clone()
        },
        Some(note),
    ))
}

/// Names (Hugging Face ids where known) of the bundled models, for help texts and error messages.
pub fn builtin_names() -> Vec<&'static str> {
    BUNDLED.iter().map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    #[test]
    fn every_bundled_config_parses() {
        for (name, json) in BUNDLED {
            let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}"));
            ModelArch::from_hf_config(name, &v).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(table().len(), BUNDLED.len());
        for (name, _) in BUNDLED {
            let first = table().iter().find(|m| stem(&m.name) == stem(name));
            assert_eq!(bundled_by_stem(&stem(name)), first, "{name}");
        }
        assert_eq!(builtin_names().len(), BUNDLED.len());
    }

    #[test]
    fn lookup_by_id_or_stem() {
        for (query, expect) in [
            ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
            ("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct"),
            ("QWEN/QWEN3-14B", "Qwen/Qwen3-14B"),
            ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
            ("codellama/CodeLlama-34b-Instruct-hf", "codellama/CodeLlama-34b-Instruct-hf"),
            ("01-ai/Yi-34B", "01-ai/Yi-34B"),
            ("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-v0.1"),
            (
                "RedHatAI/Llama-4-Scout-17B-16E-Instruct-FP8-dynamic",
                "RedHatAI/Llama-4-Scout-17B-16E-Instruct-FP8-dynamic",
            ),
            ("glm-5.2-fp8", "glm-5.2-fp8"),
        ] {
            assert_eq!(builtin(query).map(|m| m.name), Some(expect.to_string()), "{query}");
        }
        assert!(builtin("unknown/model").is_none());
        assert!(builtin("").is_none());
        assert!(builtin("/").is_none());
    }

    #[test]
    fn experiment_models_resolve() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/validation/experiments");
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir} must be readable: {e}"));
        let mut checked = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                if let Some(model) = line.strip_prefix("model:") {
                    let model = model.trim().trim_matches('"');
                    assert!(builtin(model).is_some(), "{}: model {model} is not bundled", path.display());
                    checked += 1;
                }
                if let Some(gpu) = line.strip_prefix("gpu:") {
                    let gpu = gpu.trim().trim_matches('"');
                    assert!(
                        crate::catalog::gpu::builtin(gpu).is_some(),
                        "{}: GPU {gpu} unknown",
                        path.display()
                    );
                }
            }
        }
        assert!(checked > 0);
    }

    #[test]
    fn dense_fields() {
        let m = builtin("Qwen/Qwen3-14B").unwrap();
        assert_eq!((m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim), (40, 5120, 40, 8, 128));
        assert_eq!((m.intermediate, m.vocab, m.max_position_embeddings), (17408, 151936, 40960));
        assert_eq!((m.activation_bytes, m.weight_bytes_per_param), (2.0, 2.0));
        assert!(!m.is_moe() && !m.tied_embeddings && m.mla.is_none());
        let l = builtin("llama-2-7b-hf").unwrap();
        assert_eq!((l.kv_heads, l.head_dim), (32, 128));
        let q = builtin("Qwen/Qwen3-32B").unwrap();
        assert_eq!((q.layers, q.hidden, q.heads, q.head_dim, q.intermediate), (64, 5120, 64, 128, 25600));
        // Qwen3-32B has 32.8B parameters (q/o projections are 8192 wide, not hidden-wide).
        assert!(rel(q.param_count(), 32.76e9) < 0.01, "{}", q.param_count());
        let l70 = builtin("meta-llama/Llama-3.3-70B-Instruct").unwrap();
        assert!(rel(l70.param_count(), 70.55e9) < 0.005, "{}", l70.param_count());
        assert_eq!(l70.max_position_embeddings, 131072, "llama3 rope scaling does not extend the context");
    }

    #[test]
    fn param_counts_match_published_sizes() {
        for (name, billions) in [
            ("llama-3.1-8b-instruct", 8.03),
            ("llama-2-7b-hf", 6.74),
            ("qwen2.5-7b-instruct", 7.62),
            ("mixtral-8x7b-v0.1", 46.7),
            ("qwen3-30b-a3b", 30.5),
            ("deepseek-v2-lite", 15.7),
            ("llama-4-scout-17b-16e-instruct-fp8-dynamic", 107.8),
        ] {
            let m = builtin(name).unwrap();
            assert!(rel(m.param_count() / 1e9, billions) < 0.02, "{name}: {}", m.param_count() / 1e9);
        }
    }

    #[test]
    fn moe_and_mla_fields() {
        let mx = builtin("mixtral-8x7b-v0.1").unwrap().moe.unwrap();
        assert_eq!(
            (mx.experts, mx.top_k, mx.expert_intermediate, mx.moe_layers, mx.dense_layers),
            (8, 2, 14336, 32, 0)
        );
        let scout = builtin("llama-4-scout-17b-16e-instruct-fp8-dynamic").unwrap();
        assert_eq!(scout.weight_bytes_per_param, 1.0);
        assert_eq!(scout.activation_bytes, 2.0);
        assert_eq!(scout.kv_element_bytes(), 2.0);
        let sm = scout.moe.as_ref().unwrap();
        assert_eq!((sm.experts, sm.top_k, sm.moe_layers, sm.shared_intermediate), (16, 1, 48, 8192));
        let ds = builtin("deepseek-v2-lite").unwrap();
        let dm = ds.moe.as_ref().unwrap();
        assert_eq!((dm.experts, dm.top_k, dm.moe_layers, dm.dense_layers), (64, 6, 26, 1));
        assert_eq!(
            (dm.expert_intermediate, dm.shared_intermediate, dm.dense_intermediate),
            (1408, 2816, 10944)
        );
        let mla = ds.mla.as_ref().unwrap();
        assert_eq!((mla.kv_lora_rank, mla.qk_rope_head_dim), (512, 64));
        // MLA latent is not split across TP ranks.
        assert_eq!(ds.kv_bytes_per_token(1), 27.0 * 576.0 * 2.0);
        assert_eq!(ds.kv_bytes_per_token(4), ds.kv_bytes_per_token(1));
        let glm = builtin("glm-5.2-fp8").unwrap();
        assert_eq!(glm.weight_bytes_per_param, 1.0);
        assert_eq!(glm.moe.as_ref().unwrap().dense_layers, 3);
    }

    #[test]
    fn kv_bytes_per_token_splits_heads() {
        let m = builtin("llama-3.1-70b-instruct").unwrap();
        assert_eq!(m.kv_bytes_per_token(1), 80.0 * 2.0 * 128.0 * 8.0 * 2.0);
        assert_eq!(m.kv_bytes_per_token(4), m.kv_bytes_per_token(1) / 4.0);
        // 8 KV heads on 16 GPUs: each GPU still holds one head.
        assert_eq!(m.kv_bytes_per_token(16), m.kv_bytes_per_token(8));
    }

    #[test]
    fn quantisation_width_detection() {
        let base = serde_json::json!({
            "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128,
            "vocab_size": 100, "max_position_embeddings": 1024, "torch_dtype": "bfloat16"
        });
        let with = |extra: Value| {
            let mut v = base.clone();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let m = ModelArch::from_hf_config("x", &base).unwrap();
        assert_eq!((m.weight_bytes_per_param, m.kv_heads, m.head_dim), (2.0, 4, 16));
        let m =
            ModelArch::from_hf_config("x", &with(serde_json::json!({"quantization_config": {"bits": 4}})))
                .unwrap();
        assert_eq!(m.weight_bytes_per_param, 0.5);
        let m = ModelArch::from_hf_config(
            "x",
            &with(serde_json::json!({"quantization_config": {"quant_method": "fp8"}})),
        )
        .unwrap();
        assert_eq!(m.weight_bytes_per_param, 1.0);
        let m = ModelArch::from_hf_config("org/Llama-3.3-70B-Instruct-quantized.w4a16", &base).unwrap();
        assert_eq!(m.weight_bytes_per_param, 0.5);
        let m = ModelArch::from_hf_config("org/Qwen2.5-7B-Instruct-FP8-dynamic", &base).unwrap();
        assert_eq!(m.weight_bytes_per_param, 1.0);
        let m = ModelArch::from_hf_config("x", &with(serde_json::json!({"torch_dtype": "float32"}))).unwrap();
        assert_eq!(m.activation_bytes, 4.0);
    }

    #[test]
    fn rope_scaling_and_text_config() {
        let v = serde_json::json!({
            "model_type": "wrapper",
            "text_config": {
                "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
                "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 4096,
                "rope_scaling": {"type": "linear", "factor": 4.0}
            }
        });
        let m = ModelArch::from_hf_config("x", &v).unwrap();
        assert_eq!((m.layers, m.kv_heads, m.max_position_embeddings), (2, 2, 16384));
        assert_eq!(builtin("deepseek-v2-lite").unwrap().max_position_embeddings, 163840);
    }

    #[test]
    fn missing_keys_are_named() {
        let v = serde_json::json!({"hidden_size": 64, "num_attention_heads": 4});
        let e = ModelArch::from_hf_config("x", &v).unwrap_err();
        assert_eq!(e.field, "num_hidden_layers");
        assert_eq!(e.fix, "add it to the config.json");
        let v = serde_json::json!({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
            "intermediate_size": 128, "max_position_embeddings": 1024});
        assert_eq!(ModelArch::from_hf_config("x", &v).unwrap_err().field, "vocab_size");
        let e = ModelArch::from_hf_config("x", &Value::Null).unwrap_err();
        assert_eq!(e.field, "config.json");
        let v = serde_json::json!({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
            "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 1024, "num_local_experts": 8});
        assert_eq!(ModelArch::from_hf_config("x", &v).unwrap_err().field, "num_experts_per_tok");
    }

    /// E.15: the guides' models, quantised checkpoints by name, MXFP4 experts, sliding windows, MLA.
    #[test]
    fn guide_models_and_quantisation() {
        let gb = |m: &ModelArch| m.weight_bytes() / 1e9;
        let q = builtin("Qwen/Qwen3-0.6B").unwrap();
        assert!((1.1..1.6).contains(&gb(&q)) && q.tied_embeddings, "{}", gb(&q));
        assert_eq!(q.kv_bytes_per_token(1), 114_688.0);
        let (m, note) = builtin_noting("Qwen/Qwen3-30B-A3B-FP8").unwrap();
        assert_eq!((m.name.as_str(), m.weight_bytes_per_param), ("Qwen/Qwen3-30B-A3B-FP8", 1.0));
        assert!((29.0..33.0).contains(&gb(&m)) && note.unwrap().contains("Qwen/Qwen3-30B-A3B"), "{}", gb(&m));
        let l = builtin("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic").unwrap();
        assert!((69.0..74.0).contains(&gb(&l)), "{}", gb(&l));
        let oss = builtin("openai/gpt-oss-120b").unwrap();
        assert_eq!(
            (oss.weight_bytes_per_param, oss.expert_weight_bytes_per_param),
            (2.0, Some(MXFP4_BYTES_PER_PARAM))
        );
        assert!((60.0..70.0).contains(&gb(&oss)), "MXFP4 experts, 16-bit attention: {}", gb(&oss));
        assert_eq!((oss.sliding_window, oss.sliding_layers), (Some(128), 18));
        // Only the 18 full-attention layers hold KV per token; the sliding ones a window per sequence.
        assert_eq!(oss.kv_bytes_per_token(1), 18.0 * 2.0 * 8.0 * 64.0 * 2.0);
        assert_eq!(oss.sliding_kv_bytes_per_seq(1), 18.0 * 128.0 * 2.0 * 8.0 * 64.0 * 2.0);
        let r1 = builtin("deepseek-ai/DeepSeek-R1-0528").unwrap();
        assert_eq!(r1.kv_bytes_per_token(8), 70_272.0, "MLA latent, replicated over TP");
        assert!((640.0..720.0).contains(&gb(&r1)), "{}", gb(&r1));
        // Expert parallelism over 16 ranks: each holds a sixteenth of the routed experts.
        let ep = r1.with_expert_shards(16);
        assert!(gb(&ep) < gb(&r1) / 10.0 && gb(&ep) > 30.0, "{}", gb(&ep));
        assert!(builtin("Qwen/Qwen3-0.6B-FP9").is_none());
        // The v0.2 modelservice P/D example's model: OPT's `ffn_dim` read as the MLP size.
        let opt = builtin("facebook/opt-125m").unwrap();
        assert_eq!(
            (
                opt.layers,
                opt.hidden,
                opt.heads,
                opt.kv_heads,
                opt.intermediate,
                opt.vocab,
                opt.max_position_embeddings
            ),
            (12, 768, 12, 12, 3072, 50272, 2048)
        );
        // 125 M parameters; the gated-MLP count gives about 0.15 G (2-byte weights: 0.25-0.32 GB).
        assert!((0.24..0.33).contains(&gb(&opt)), "{}", gb(&opt));
    }

    #[test]
    fn json_schema_names_camel_case_fields() {
        let schema = serde_json::to_value(schemars::schema_for!(ModelArch)).unwrap();
        let text = schema.to_string();
        assert!(
            text.contains("kvHeads")
                && text.contains("weightBytesPerParam")
                && text.contains("expertIntermediate")
        );
    }

    #[test]
    fn serde_round_trip() {
        let m = builtin("deepseek-v2-lite").unwrap();
        let yaml = serde_yaml::to_string(&m).unwrap();
        assert!(yaml.contains("kvLoraRank"));
        let back: ModelArch = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, m);
    }
}
