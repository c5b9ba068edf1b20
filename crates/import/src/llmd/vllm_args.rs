//! `vllm serve` command lines: the engine arguments that change serving behaviour become scenario
//! knobs, vLLM's defaults stand for the rest, and anything unknown is reported, never dropped silently.

use serde_json::Value;

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
    /// Engine knobs the simulator models.
    pub vllm: VllmSpec,
    /// Whether `--kv-transfer-config` names a P/D connector (NIXL, LMCache, P2P...).
    pub pd_connector: bool,
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
            match bytes {
                Some(b) => a.vllm.cpu_offload_gib = Some(b / 1073741824.0),
                None => a.warnings.push(
                    "--kv-transfer-config OffloadingConnector without cpu_bytes_to_use: CPU offload size \
                     unknown, offload not modelled"
                        .into(),
                ),
            }
        }
        "NixlConnector" | "P2pNcclConnector" | "LMCacheConnectorV1" | "MooncakeConnector" => {
            a.pd_connector = true;
        }
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
        // Accepted without effect on the simulated serving behaviour.
        ("port", InertValue),
        ("host", InertValue),
        ("served-model-name", InertValue),
        ("tokenizer", InertValue),
        ("revision", InertValue),
        ("download-dir", InertValue),
        ("dtype", InertValue),
        ("quantization", InertValue),
        ("trust-remote-code", InertSwitch),
        ("enforce-eager", InertSwitch),
        ("disable-log-requests", InertSwitch),
        ("enable-log-requests", InertSwitch),
        ("disable-log-stats", InertSwitch),
        ("disable-uvicorn-access-log", InertSwitch),
        ("disable-access-log-for-endpoints", InertValue),
        ("uvicorn-log-level", InertValue),
        ("api-key", InertValue),
        ("kv-events-config", InertValue),
        ("prefix-caching-hash-algo", InertValue),
        ("compilation-config", InertValue),
        ("seed", InertValue),
        ("enable-expert-parallel", InertSwitch),
        ("data-parallel-address", InertValue),
        ("data-parallel-rpc-port", InertValue),
        ("data-parallel-start-rank", InertValue),
        ("data-parallel-hybrid-lb", InertSwitch),
        ("enable-auto-tool-choice", InertSwitch),
        ("tool-call-parser", InertValue),
        ("reasoning-parser", InertValue),
        ("chat-template", InertValue),
    ]
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
            Flag::Value(_) | Flag::InertValue => {
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
                if let Flag::Value(set) = flag {
                    if let Err(e) = set(&mut out, &value) {
                        out.warnings.push(format!("vLLM argument --{canonical} {e}; ignored"));
                    }
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
        }
    }
    out
}

/// Expands Kubernetes `$(VAR)` references in container args from the container's literal env values.
pub fn expand_env(arg: &str, env: &[(String, String)]) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// The arguments of the vLLM server in a container's `command` + `args`: after `vllm serve`, after
/// the OpenAI API server module, or inside a shell command string (`sh -c "vllm serve ..."`).
/// None when the container does not run vLLM.
pub fn server_args(command: &[String], args: &[String]) -> Option<Vec<String>> {
    let all: Vec<String> = command.iter().chain(args).cloned().collect();
    if let Some(p) = all.iter().position(|t| t == "serve") {
        if p > 0 && all[p - 1].ends_with("vllm") {
            return Some(all[p + 1..].to_vec());
        }
    }
    if let Some(p) = all.iter().position(|t| t.starts_with("vllm.entrypoints")) {
        return Some(all[p + 1..].to_vec());
    }
    // A shell script: split the line that starts vLLM.
    for t in &all {
        if t.contains("vllm serve") || t.contains("vllm.entrypoints") {
            let line = t.lines().find(|l| l.contains("vllm serve") || l.contains("vllm.entrypoints"))?;
            let mut joined = line.to_string();
            // Continuation lines (`\` at the end) belong to the same command.
            let mut rest = t.lines().skip_while(|l| !std::ptr::eq(*l, line)).skip(1);
            while joined.trim_end().ends_with('\\') {
                joined = joined.trim_end().trim_end_matches('\\').to_string();
                match rest.next() {
                    Some(l) => joined.push_str(l),
                    None => break,
                }
            }
            let words = shlex::split(&joined)?;
            return server_args(&words, &[]);
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
        let bad = parse(&s(&["--max-num-seqs", "many"]));
        assert_eq!(bad.vllm.max_num_seqs, None);
        assert!(bad.warnings[0].contains("not an integer"));
    }

    #[test]
    fn finds_the_server_in_commands() {
        let got = server_args(&s(&["vllm", "serve"]), &s(&["m", "--block-size", "32"])).unwrap();
        assert_eq!(got, s(&["m", "--block-size", "32"]));
        let got =
            server_args(&s(&["python3", "-m", "vllm.entrypoints.openai.api_server"]), &s(&["--model", "x"]));
        assert_eq!(got.unwrap(), s(&["--model", "x"]));
        let sh = "set -e\nexec vllm serve org/model \\\n  --max-num-seqs 64 --port 8000\necho done";
        let got = server_args(&s(&["/bin/sh", "-c"]), &s(&[sh])).unwrap();
        assert_eq!(got, s(&["org/model", "--max-num-seqs", "64", "--port", "8000"]));
        assert_eq!(server_args(&s(&["envoy"]), &s(&["--config", "x"])), None);
        assert_eq!(expand_env("--x=$(A)", &[("A".into(), "1".into())]), "--x=1");
    }
}
