//! `vllm serve` command lines: the engine arguments that change serving behaviour become scenario
//! knobs, vLLM's defaults stand for the rest, and anything not modelled is reported, never dropped
//! silently. Arguments that do not change serving behaviour (ports, logging, parsers) are accepted
//! quietly.

use serde_json::Value;

use super::shell::{self, Env, Script};
use blis_sim::scenario::spec::{KvCacheDtype, VllmSpec};

/// What a vLLM command line says about one replica.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VllmArgs {
    /// The served model (positional argument of `vllm serve`, or `--model`).
    pub model: Option<String>,
    /// `--tensor-parallel-size`.
    pub tensor_parallel: Option<i64>,
    /// `--data-parallel-size`.
    pub data_parallel: Option<i64>,
    /// `--data-parallel-size-local`.
    pub data_parallel_local: Option<i64>,
    /// `--enable-expert-parallel`: MoE experts sharded over the TP x DP GPUs instead of replicated.
    pub expert_parallel: bool,
    /// How requests reach the DP ranks: `internal` (vLLM's own balancer behind one port, the
    /// default), `hybrid` (`--data-parallel-hybrid-lb`: per node) or `external`
    /// (`--data-parallel-external-lb` / `--data-parallel-multi-port-external-lb`: one port per rank).
    pub data_parallel_lb: Option<&'static str>,
    /// Engine knobs the simulator models.
    pub vllm: VllmSpec,
    /// Whether `--kv-transfer-config` names a P/D connector (NIXL, P2P NCCL, Mooncake, or LMCache in a
    /// producer / consumer role).
    pub pd_connector: bool,
    /// `--kv-transfer-config` names `LMCacheConnectorV1` in role `kv_both`: KV offloading / sharing,
    /// whose size and backends come from the container's `LMCACHE_*` env (see `workload::lmcache`).
    pub lmcache: bool,
    /// Arguments not understood or not modelled, in words.
    pub warnings: Vec<String>,
}

/// How one flag is read.
#[derive(Clone, Copy)]
enum Flag {
    /// Takes a value and sets a knob.
    Value(fn(&mut VllmArgs, &str) -> Result<(), String>),
    /// A switch: sets a knob to `true` (or `false` in its `--no-` form).
    Switch(fn(&mut VllmArgs, bool)),
    /// Takes a value that does not change serving behaviour.
    InertValue,
    /// A switch that does not change serving behaviour.
    InertSwitch,
    /// Takes a value that changes serving behaviour in a way the simulator does not model (why).
    UnmodelledValue(&'static str),
    /// A switch that changes serving behaviour in a way the simulator does not model (why).
    UnmodelledSwitch(&'static str),
}

fn int(v: &str) -> Result<i64, String> {
    v.trim().parse().map_err(|_| "is not an integer".to_string())
}

fn float(v: &str) -> Result<f64, String> {
    v.trim().parse().map_err(|_| "is not a number".to_string())
}

/// Reads a `--kv-cache-dtype` choice.
fn kv_cache_dtype(v: &str) -> Result<KvCacheDtype, String> {
    serde_json::from_value(Value::String(v.trim().to_ascii_lowercase())).map_err(|_| {
        "is not a KV cache dtype vLLM knows (auto, bfloat16, fp8, fp8_e4m3, fp8_e5m2, fp8_inc, fp8_ds_mla)"
            .to_string()
    })
}

/// Reads vLLM's memory sizes (`40`, `40GiB`, `40GB`) as GiB.
fn gib(v: &str) -> Result<f64, String> {
    let t = v.trim();
    let num = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[num.len()..];
    let x = float(num)?;
    match unit.to_ascii_lowercase().as_str() {
        "" | "g" | "gb" | "gib" => Ok(x),
        "m" | "mb" | "mib" => Ok(x / 1024.0),
        "t" | "tb" | "tib" => Ok(x * 1024.0),
        _ => Err("is not a size".to_string()),
    }
}

/// `--kv-transfer-config`: P/D connectors mark the replica as a P/D participant; the offloading
/// connector's CPU size becomes `cpuOffloadGib`.
fn kv_transfer(a: &mut VllmArgs, v: &str) -> Result<(), String> {
    let cfg: Value = serde_json::from_str(v).map_err(|e| format!("is not JSON: {e}"))?;
    let connector = cfg.get("kv_connector").and_then(Value::as_str).unwrap_or("");
    let extra = cfg.get("kv_connector_extra_config");
    match connector {
        "OffloadingConnector" => {
            let bytes = extra.and_then(|e| e.get("cpu_bytes_to_use")).and_then(Value::as_f64);
            let blocks = extra.and_then(|e| e.get("num_cpu_blocks")).and_then(Value::as_f64);
            match (bytes, blocks) {
                (Some(b), _) => a.vllm.cpu_offload_gib = Some(b / 1073741824.0),
                (None, Some(n)) => a.warnings.push(format!(
                    "--kv-transfer-config OffloadingConnector sizes its CPU tier as num_cpu_blocks {n}, which is \
                     not read; CPU offload is not simulated: give its size in spec.vllm.cpuOffloadGib"
                )),
                (None, None) => a.warnings.push(
                    "--kv-transfer-config OffloadingConnector without cpu_bytes_to_use: CPU offload size \
                     unknown, offload not modelled"
                        .into(),
                ),
            }
        }
        "NixlConnector" | "P2pNcclConnector" | "MooncakeConnector" => {
            a.pd_connector = true;
        }
        // LMCache alone offloads and shares KV; it only transfers prefill KV to decode when the
        // engine is given a producer or consumer role (LMCache's disaggregated prefill).
        "LMCacheConnectorV1" => match cfg.get("kv_role").and_then(Value::as_str) {
            Some("kv_producer" | "kv_consumer") => a.pd_connector = true,
            _ => a.lmcache = true,
        },
        "MultiConnector" => {
            let parts = extra.and_then(|e| e.get("connectors")).and_then(Value::as_array);
            for c in parts.into_iter().flatten() {
                kv_transfer(a, &c.to_string())?;
            }
        }
        other => a.warnings.push(format!("--kv-transfer-config connector {other:?} is not modelled")),
    }
    Ok(())
}

/// Every flag the importer knows, by its long name without dashes. The `--no-` form of a switch is
/// derived, and `_` may stand for `-` as vLLM allows.
fn flags() -> &'static [(&'static str, Flag)] {
    use Flag::*;
    &[
        ("model", Value(|a, v| set(&mut a.model, Ok(v.to_string())))),
        ("max-num-seqs", Value(|a, v| set(&mut a.vllm.max_num_seqs, int(v)))),
        ("max-num-batched-tokens", Value(|a, v| set(&mut a.vllm.max_num_batched_tokens, int(v)))),
        ("gpu-memory-utilization", Value(|a, v| set(&mut a.vllm.gpu_memory_utilization, float(v)))),
        ("block-size", Value(|a, v| set(&mut a.vllm.block_size, int(v)))),
        ("max-model-len", Value(|a, v| set(&mut a.vllm.max_model_len, parse_len(v)))),
        ("enable-prefix-caching", Switch(|a, on| a.vllm.enable_prefix_caching = Some(on))),
        ("enable-chunked-prefill", Switch(|a, on| a.vllm.enable_chunked_prefill = Some(on))),
        ("async-scheduling", Switch(|a, on| a.vllm.async_scheduling = Some(on))),
        ("long-prefill-token-threshold", Value(|a, v| set(&mut a.vllm.long_prefill_token_threshold, int(v)))),
        ("num-gpu-blocks-override", Value(|a, v| set(&mut a.vllm.kv_blocks, int(v)))),
        ("tensor-parallel-size", Value(|a, v| set(&mut a.tensor_parallel, int(v)))),
        ("data-parallel-size", Value(|a, v| set(&mut a.data_parallel, int(v)))),
        ("data-parallel-size-local", Value(|a, v| set(&mut a.data_parallel_local, int(v)))),
        (
            "pipeline-parallel-size",
            Value(|a, v| {
                if int(v)? > 1 {
                    a.warnings.push(format!("--pipeline-parallel-size {v} is not modelled; treated as 1"));
                }
                Ok(())
            }),
        ),
        ("kv-cache-dtype", Value(|a, v| set(&mut a.vllm.kv_cache_dtype, kv_cache_dtype(v)))),
        ("kv-offloading-size", Value(|a, v| set(&mut a.vllm.cpu_offload_gib, gib(v)))),
        ("kv-offloading-backend", InertValue),
        ("kv-transfer-config", Value(kv_transfer)),
        ("enforce-eager", Switch(|a, on| a.vllm.enforce_eager = Some(on))),
        ("enable-expert-parallel", Switch(|a, on| a.expert_parallel = on)),
        ("data-parallel-hybrid-lb", Switch(|a, on| a.data_parallel_lb = on.then_some("hybrid"))),
        ("data-parallel-external-lb", Switch(|a, on| a.data_parallel_lb = on.then_some("external"))),
        (
            "data-parallel-multi-port-external-lb",
            Switch(|a, on| a.data_parallel_lb = on.then_some("external")),
        ),
        ("kv-cache-memory-bytes", Value(kv_cache_memory_bytes)),
        // Accepted without effect on the simulated serving behaviour.
        ("port", InertValue),
        ("host", InertValue),
        ("served-model-name", InertValue),
        ("tokenizer", InertValue),
        ("revision", InertValue),
        ("download-dir", InertValue),
        ("dtype", Value(dtype)),
        ("trust-remote-code", InertSwitch),
        ("disable-log-requests", InertSwitch),
        ("enable-log-requests", InertSwitch),
        ("disable-log-stats", InertSwitch),
        ("disable-uvicorn-access-log", InertSwitch),
        ("disable-access-log-for-endpoints", InertValue),
        ("uvicorn-log-level", InertValue),
        ("api-key", InertValue),
        ("kv-events-config", InertValue),
        ("prefix-caching-hash-algo", InertValue),
        ("seed", InertValue),
        ("data-parallel-address", InertValue),
        ("data-parallel-rpc-port", InertValue),
        ("data-parallel-start-rank", InertValue),
        ("data-parallel-rank", InertValue),
        ("data-parallel-supervisor-port", InertValue),
        ("enable-auto-tool-choice", InertSwitch),
        ("tool-call-parser", InertValue),
        ("reasoning-parser", InertValue),
        ("chat-template", InertValue),
        ("otlp-traces-endpoint", InertValue),
        ("collect-detailed-traces", InertValue),
        ("disable-fastapi-docs", InertSwitch),
        ("no-enable-log-requests", InertSwitch),
        // Change serving behaviour; not modelled (each gives a warning saying so).
        (
            "quantization",
            UnmodelledValue("weights are sized from the model's config.json quantization_config"),
        ),
        (
            "compilation-config",
            UnmodelledValue("step times assume vLLM's default compilation and CUDA graphs"),
        ),
        ("speculative-config", UnmodelledValue("speculative decoding is not simulated")),
        ("hf-overrides", UnmodelledValue("the model's config.json is read as published")),
        (
            "all2all-backend",
            UnmodelledValue("expert all-to-all is timed from link bandwidth, not per backend"),
        ),
        ("moe-backend", UnmodelledValue("MoE kernels are timed by the roofline, not per backend")),
        ("enable-dbo", UnmodelledSwitch("dual-batch overlap of compute and all-to-all is not simulated")),
        ("dbo-decode-token-threshold", UnmodelledValue("dual-batch overlap is not simulated")),
        ("dbo-prefill-token-threshold", UnmodelledValue("dual-batch overlap is not simulated")),
        ("enable-eplb", UnmodelledSwitch("expert load balancing (redundant experts) is not simulated")),
        ("eplb-config", UnmodelledValue("expert load balancing (redundant experts) is not simulated")),
        (
            "max-num-partial-prefills",
            UnmodelledValue("the scheduler admits partial prefills as vLLM's default"),
        ),
        ("scheduling-policy", UnmodelledValue("the engine schedules first come, first served")),
        ("cpu-offload-gb", UnmodelledValue("weight offload to CPU is not simulated")),
        ("swap-space", UnmodelledValue("CPU swap space is not simulated (preemption recomputes)")),
        ("enable-lora", UnmodelledSwitch("LoRA adapters are not simulated")),
        ("max-loras", UnmodelledValue("LoRA adapters are not simulated")),
        ("max-lora-rank", UnmodelledValue("LoRA adapters are not simulated")),
        ("lora-modules", UnmodelledValue("LoRA adapters are not simulated")),
        ("disable-hybrid-kv-cache-manager", UnmodelledSwitch("the KV cache is one pool of blocks")),
    ]
}

/// `--dtype`: the model dtype; only a width other than 16 bits would change what is simulated.
fn dtype(a: &mut VllmArgs, v: &str) -> Result<(), String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "auto" | "bfloat16" | "float16" | "half" | "bf16" | "fp16" => Ok(()),
        other => {
            a.warnings.push(format!(
                "vLLM argument --dtype {other} is not modelled: activations and KV are sized from the model's config.json"
            ));
            Ok(())
        }
    }
}

/// `--kv-cache-memory-bytes`: a fixed KV budget per GPU instead of the memory-utilisation share.
fn kv_cache_memory_bytes(a: &mut VllmArgs, v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        a.warnings.push(
            "vLLM argument --kv-cache-memory-bytes has an empty value (an unset variable); vLLM sizes the KV \
             cache from --gpu-memory-utilization, as simulated"
                .into(),
        );
        return Ok(());
    }
    a.warnings.push(format!(
        "vLLM argument --kv-cache-memory-bytes {v} is not modelled: KV blocks are derived from --gpu-memory-utilization"
    ));
    Ok(())
}

/// Stores a parsed value.
fn set<T>(slot: &mut Option<T>, v: Result<T, String>) -> Result<(), String> {
    *slot = Some(v?);
    Ok(())
}

/// `--max-model-len` accepts `32768`, `32k`, `1m`.
fn parse_len(v: &str) -> Result<i64, String> {
    let t = v.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(x) = t.strip_suffix('k') {
        (x, 1000.0)
    } else if let Some(x) = t.strip_suffix('m') {
        (x, 1e6)
    } else {
        (t.as_str(), 1.0)
    };
    Ok((float(num)? * mult).round() as i64)
}

/// Finds a flag by exact name or, as Python's argparse allows, by an unambiguous prefix. Returns its
/// canonical name and whether the `--no-` form was used.
fn lookup(name: &str) -> Option<(&'static str, Flag, bool)> {
    let name = name.replace('_', "-");
    let table = flags();
    for (negated, n) in [(false, name.as_str()), (true, name.strip_prefix("no-").unwrap_or(""))] {
        if n.is_empty() {
            continue;
        }
        if let Some((k, f)) = table.iter().find(|(k, _)| *k == n) {
            return Some((k, *f, negated));
        }
        let hits: Vec<_> = table.iter().filter(|(k, _)| k.starts_with(n)).collect();
        if let [(k, f)] = hits[..] {
            return Some((k, *f, negated));
        }
    }
    None
}

/// A flag name as shown in a warning: at most 60 characters of letters, digits, `-` and `_`.
fn shorten_flag(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(60).collect()
}

/// Reads the arguments after `vllm serve` (or of `python -m vllm.entrypoints.openai.api_server`).
pub fn parse(args: &[String]) -> VllmArgs {
    let mut out = VllmArgs::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].trim();
        i += 1;
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-').filter(|s| !s.is_empty()))
        else {
            if out.model.is_none() && !arg.is_empty() {
                out.model = Some(arg.to_string());
            } else if !arg.is_empty() {
                // Values are never echoed: they may be filled from env or Secrets (tokens, URLs
                // with passwords) the reader of the warning may not see.
                out.warnings
                    .push("a positional vLLM argument (after the model) is not understood; ignored".into());
            }
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let name = match name {
            "tp" => "tensor-parallel-size",
            "dp" => "data-parallel-size",
            "dpl" => "data-parallel-size-local",
            "pp" => "pipeline-parallel-size",
            n => n,
        };
        let Some((canonical, flag, negated)) = lookup(name) else {
            // Unknown: take a following non-flag token as its value so it is not read as the model.
            // Only the flag's name is shown, never its value.
            if inline.is_none() && i < args.len() && !args[i].starts_with('-') {
                i += 1;
            }
            let shown = shorten_flag(name);
            out.warnings.push(format!("vLLM argument --{shown} is not modelled; ignored"));
            continue;
        };
        match flag {
            Flag::Value(_) | Flag::InertValue | Flag::UnmodelledValue(_) => {
                let value = match inline {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => {
                        out.warnings.push(format!("vLLM argument --{canonical} has no value; ignored"));
                        continue;
                    }
                };
                match flag {
                    Flag::Value(set) => {
                        if let Err(e) = set(&mut out, &value) {
                            out.warnings.push(format!("vLLM argument --{canonical} {e}; ignored"));
                        }
                    }
                    // Only the flag's name is shown: its value may come from env or a Secret.
                    Flag::UnmodelledValue(why) => {
                        out.warnings.push(format!("vLLM argument --{canonical} is not modelled: {why}"))
                    }
                    _ => {}
                }
            }
            Flag::Switch(set) => {
                let on = match inline.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") | Some("1") => true,
                    Some(_) => false,
                };
                set(&mut out, on != negated);
            }
            Flag::InertSwitch => {}
            // `--no-X` (or `--X=false`) keeps vLLM's default, which is what is simulated.
            Flag::UnmodelledSwitch(why) => {
                let on =
                    !matches!(inline.as_deref().map(str::to_ascii_lowercase).as_deref(), Some("false" | "0"));
                if on != negated {
                    out.warnings.push(format!("vLLM argument --{canonical} is not modelled: {why}"))
                }
            }
        }
    }
    out
}

/// Whether a word names a shell that runs its `-c` script.
fn is_shell(w: &str) -> bool {
    matches!(w.rsplit('/').next(), Some("sh" | "bash" | "dash" | "zsh" | "ash"))
}

/// The vLLM server arguments among `words`: after `vllm serve`, or after the OpenAI API server module.
fn after_vllm(words: &[String]) -> Option<Vec<String>> {
    if let Some(p) = words.windows(2).position(|w| w[0].rsplit('/').next() == Some("vllm") && w[1] == "serve")
    {
        return Some(words[p + 2..].to_vec());
    }
    let p = words.iter().position(|t| t.starts_with("vllm.entrypoints"))?;
    Some(words[p + 1..].to_vec())
}

/// Reads the vLLM command line of a container: `command` + `args` with Kubernetes `$(VAR)`
/// references expanded from `env`, the server found directly (`vllm serve ...`, `python -m
/// vllm.entrypoints...`) or inside a shell script (`sh -c "..."`, read with [`shell::Script`] and the
/// variables of `env`). None when the container does not run vLLM.
pub fn from_container(command: &[String], args: &[String], env: &Env) -> Option<VllmArgs> {
    let all: Vec<String> = command.iter().chain(args).map(|a| shell::expand_k8s(a, env)).collect();
    if let Some(server) = after_vllm(&all) {
        return Some(parse(&server));
    }
    // A shell script: the word after `-c` (or any word holding a vLLM command).
    let script_at = all
        .iter()
        .position(|w| is_shell(w))
        .and_then(|s| all[s + 1..].iter().position(|w| w == "-c").map(|c| s + 1 + c + 1))
        .filter(|i| *i < all.len());
    let scripts: Vec<&String> = match script_at {
        Some(i) => vec![&all[i]],
        None => all.iter().filter(|w| w.contains("vllm")).collect(),
    };
    for text in scripts {
        let script = Script::read(text, env);
        if let Some(server) = script.find(|w| after_vllm(w).is_some()).and_then(|w| after_vllm(&w)) {
            let mut out = parse(&server);
            let mut notes: Vec<String> =
                script.warnings.iter().map(|w| format!("launch script: {w}")).collect();
            notes.dedup();
            notes.append(&mut out.warnings);
            out.warnings = notes;
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn warnings_never_echo_argument_values() {
        // Values filled from env or Secrets: tokens, URLs with passwords.
        let a = parse(&s(&[
            "meta-llama/Llama-3.1-8B-Instruct",
            "https://user:hunter2@example.com",
            "--hf-token",
            "hf_SENTINEL",
            "--api-key=SENTINEL2",
            "--max-num-seqs",
            "SENTINEL3",
            "--swap-space",
            "SENTINEL4GiB",
        ]));
        assert_eq!(a.model.as_deref(), Some("meta-llama/Llama-3.1-8B-Instruct"));
        assert!(a.warnings.len() >= 4, "{:?}", a.warnings);
        let all = a.warnings.join("\n");
        assert!(all.contains("--hf-token") && all.contains("--max-num-seqs"), "{all}");
        for secret in ["hunter2", "SENTINEL"] {
            assert!(!all.contains(secret), "echoed {secret}: {all}");
        }
    }

    #[test]
    fn behavioural_flags_become_knobs() {
        let a = parse(&s(&[
            "Qwen/Qwen3-32B",
            "--max-num-seqs",
            "128",
            "--max-num-batched-tokens=8192",
            "--gpu-memory-utilization",
            "0.95",
            "--block-size=64",
            "--max-model-len",
            "32k",
            "--no-enable-prefix-caching",
            "--enable-chunked-prefill",
            "--long-prefill-token-threshold",
            "512",
            "-tp",
            "4",
            "--data-parallel-size=2",
            "--kv-offloading-size",
            "40",
        ]));
        assert_eq!(a.model.as_deref(), Some("Qwen/Qwen3-32B"));
        assert_eq!((a.tensor_parallel, a.data_parallel), (Some(4), Some(2)));
        let v = &a.vllm;
        assert_eq!(
            (v.max_num_seqs, v.max_num_batched_tokens, v.block_size),
            (Some(128), Some(8192), Some(64))
        );
        assert_eq!((v.gpu_memory_utilization, v.max_model_len), (Some(0.95), Some(32000)));
        assert_eq!((v.enable_prefix_caching, v.enable_chunked_prefill), (Some(false), Some(true)));
        assert_eq!((v.long_prefill_token_threshold, v.cpu_offload_gib), (Some(512), Some(40.0)));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn abbreviations_unknowns_and_connectors() {
        // `--max-num-seq` is how a real GAIE manifest spells it (argparse prefix matching).
        let a = parse(&s(&[
            "--model",
            "m",
            "--max-num-seq",
            "1024",
            "--enable-lora",
            "--max-loras",
            "2",
            "--kv-cache-dtype",
            "fp8",
            "--kv-transfer-config",
            r#"{"kv_connector":"NixlConnector","kv_role":"kv_both"}"#,
        ]));
        assert_eq!((a.model.as_deref(), a.vllm.max_num_seqs), (Some("m"), Some(1024)));
        assert!(a.pd_connector);
        let w = a.warnings.join("\n");
        assert!(w.contains("--enable-lora") && w.contains("--max-loras") && !w.contains('2'), "{w}");
        assert_eq!(a.warnings.len(), 2, "{w}");
        // The `--no-` form of an unmodelled switch keeps vLLM's default: nothing to report.
        let keep = parse(&s(&["m", "--no-disable-hybrid-kv-cache-manager", "--enable-lora=false"]));
        assert!(keep.warnings.is_empty(), "{:?}", keep.warnings);
        let off = parse(&s(&["m", "--disable-hybrid-kv-cache-manager"]));
        assert_eq!(off.warnings.len(), 1, "{:?}", off.warnings);
        assert_eq!(a.vllm.kv_cache_dtype, Some(KvCacheDtype::Fp8));
        let e5 = parse(&s(&["--kv-cache-dtype=fp8_e5m2"]));
        assert_eq!((e5.vllm.kv_cache_dtype, e5.warnings.len()), (Some(KvCacheDtype::Fp8E5m2), 0));
        let odd = parse(&s(&["--kv-cache-dtype", "int3"]));
        assert_eq!(odd.vllm.kv_cache_dtype, None);
        assert!(
            odd.warnings[0].contains("--kv-cache-dtype") && odd.warnings[0].contains("fp8_e4m3"),
            "{:?}",
            odd.warnings
        );
        let off = parse(&s(&[
            "--kv-transfer-config",
            r#"{"kv_connector":"OffloadingConnector","kv_role":"kv_both",
                "kv_connector_extra_config":{"cpu_bytes_to_use":21474836480}}"#,
        ]));
        assert_eq!(off.vllm.cpu_offload_gib, Some(20.0));
        // LMCache alone is KV offloading / sharing; with a producer or consumer role it is P/D.
        let lm = |role: &str| {
            parse(&s(&[
                "--kv-transfer-config",
                &format!(r#"{{"kv_connector":"LMCacheConnectorV1","kv_role":"{role}"}}"#),
            ]))
        };
        let (both, producer, consumer) = (lm("kv_both"), lm("kv_producer"), lm("kv_consumer"));
        assert_eq!((both.lmcache, both.pd_connector), (true, false));
        assert_eq!((producer.lmcache, producer.pd_connector), (false, true));
        assert_eq!((consumer.lmcache, consumer.pd_connector), (false, true));
        // The CPU tier in blocks is named in the warning, not silently dropped.
        let nb = parse(&s(&[
            "--kv-transfer-config",
            r#"{"kv_connector":"OffloadingConnector","kv_connector_extra_config":{"num_cpu_blocks":41000}}"#,
        ]));
        assert_eq!(nb.vllm.cpu_offload_gib, None);
        assert!(nb.warnings[0].contains("num_cpu_blocks 41000") && nb.warnings[0].contains("cpuOffloadGib"));
        let bad = parse(&s(&["--max-num-seqs", "many"]));
        assert_eq!(bad.vllm.max_num_seqs, None);
        assert!(bad.warnings[0].contains("not an integer"));
    }

    #[test]
    fn finds_the_server_in_commands() {
        let none = Env::new();
        let got = from_container(&s(&["vllm", "serve"]), &s(&["m", "--block-size", "32"]), &none).unwrap();
        assert_eq!((got.model.as_deref(), got.vllm.block_size), (Some("m"), Some(32)));
        let got = from_container(
            &s(&["python3", "-m", "vllm.entrypoints.openai.api_server"]),
            &s(&["--model", "x"]),
            &none,
        );
        assert_eq!(got.unwrap().model.as_deref(), Some("x"));
        let sh = "set -e\nexec vllm serve org/model \\\n  --max-num-seqs 64 --port 8000\necho done";
        let got = from_container(&s(&["/bin/sh", "-c"]), &s(&[sh]), &none).unwrap();
        assert_eq!((got.model.as_deref(), got.vllm.max_num_seqs), (Some("org/model"), Some(64)));
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        assert_eq!(from_container(&s(&["envoy"]), &s(&["--config", "x"]), &none), None);
        // Kubernetes references are expanded before the shell runs.
        let env: Env = [("N".to_string(), "8".to_string())].into();
        let got = from_container(&s(&["vllm", "serve"]), &s(&["m", "--max-num-seqs=$(N)"]), &env).unwrap();
        assert_eq!(got.vllm.max_num_seqs, Some(8));
    }

    #[test]
    fn wide_ep_script_gives_dp_ep_and_names_what_is_not_modelled() {
        let script = "START_RANK=$(( ${LWS_WORKER_INDEX:-0} * DP_SIZE_LOCAL ))\nexec vllm serve m \\\n \
            --enforce-eager --enable-expert-parallel --data-parallel-hybrid-lb \\\n \
            --tensor-parallel-size $TP_SIZE --data-parallel-size $((LWS_GROUP_SIZE * DP_SIZE_LOCAL)) \\\n \
            --data-parallel-size-local $DP_SIZE_LOCAL --data-parallel-start-rank $START_RANK \\\n \
            --enable-dbo --kv-cache-memory-bytes=${KV_CACHE_MEMORY_BYTES-}";
        let env: Env = [("LWS_GROUP_SIZE", "2"), ("DP_SIZE_LOCAL", "8"), ("TP_SIZE", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let a = from_container(&s(&["/bin/bash", "-c"]), &s(&[script]), &env).unwrap();
        assert_eq!((a.tensor_parallel, a.data_parallel, a.data_parallel_local), (Some(1), Some(16), Some(8)));
        assert!(a.expert_parallel);
        assert_eq!((a.data_parallel_lb, a.vllm.enforce_eager), (Some("hybrid"), Some(true)));
        let w = a.warnings.join("\n");
        assert!(w.contains("--enable-dbo is not modelled") && w.contains("empty value"), "{w}");
        assert_eq!(a.warnings.len(), 2, "{w}");
    }
}
