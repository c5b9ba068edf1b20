//! llm-d-benchmark / inference-perf configs: the `load` section (type, stages, interval, request
//! timeout, worker limits) and the `data` section (`shared_prefix`, `random` / `synthetic`), as
//! inference-perf runs them:
//!
//! - a `poisson` stage sends exactly `int(rate x duration)` requests, a Poisson count per one-second
//!   slot spread over the slot; a `constant` stage sends the same number with exponential gaps
//!   rescaled to the duration;
//! - a stage ends only when every request it sent has finished; the next starts `interval` seconds
//!   later, plus the 1 s by which a stage's timer starts after the stage;
//! - `shared_prefix` builds `num_groups x num_prompts_per_group` prompts once, shuffles them, and every
//!   stage sends them in that order from the first;
//! - `num_workers x worker_max_concurrency` requests at most are in flight (`num_workers` defaults
//!   to the host's CPU count, which a profile does not record); `request_timeout` bounds a whole
//!   request.

use serde_json::{Map, Value};

use super::{check_keys, Imported};
use blis_sim::error::InvalidInput;
use blis_sim::workload::{
    ArrivalProcess, ArrivalSpec, BetweenStagesSpec, ClassSpec, ClientSpec, LengthDist, PrefixSpec,
    PromptOrder, StageSpec, WorkloadSpec,
};

/// The delay between a stage's start and its timer's start (inference-perf starts the timer 1 s out).
pub const TIMER_START_S: f64 = 1.0;
/// inference-perf's default `interval` between stages (s).
pub const DEFAULT_INTERVAL_S: f64 = 1.0;
/// inference-perf's default `worker_max_concurrency`.
pub const DEFAULT_WORKER_MAX_CONCURRENCY: i64 = 100;

const TOP: &[&str] =
    &["api", "data", "load", "metrics", "report", "storage", "server", "tokenizer", "circuit_breakers"];
const LOAD: &[&str] = &[
    "type",
    "interval",
    "stages",
    "sweep",
    "num_workers",
    "worker_max_concurrency",
    "worker_max_tcp_connections",
    "trace",
    "circuit_breakers",
    "request_timeout",
    "lora_traffic_split",
    "base_seed",
];
const DATA: &[&str] = &[
    "type",
    "path",
    "input_distribution",
    "output_distribution",
    "shared_prefix",
    "trace",
    "corpus_file_path",
    "multimodal",
    "otel_trace_replay",
    "weka_trace_replay",
    "conversation_replay",
    "visionarena",
    "use_chat_template",
];
const SHARED_PREFIX: &[&str] = &[
    "num_groups",
    "num_unique_system_prompts",
    "num_prompts_per_group",
    "num_users_per_system_prompt",
    "system_prompt_len",
    "question_len",
    "output_len",
    "seed",
    "question_distribution",
    "output_distribution",
    "enable_multi_turn_chat",
    "multimodal",
];
const DISTRIBUTION: &[&str] = &["min", "max", "mean", "std_dev", "total_count", "type", "variance", "skew"];
const API: &[&str] = &[
    "type",
    "streaming",
    "headers",
    "slo_unit",
    "slo_ttft_header",
    "slo_tpot_header",
    "response_format",
    "session_id_header_key",
    "session_token_header_key",
];
const SERVER: &[&str] = &["type", "model_name", "base_url", "ignore_eos", "api_key", "cert_path", "key_path"];

fn bad(field: &str, problem: impl Into<String>, fix: &str) -> InvalidInput {
    InvalidInput::new(field, problem, fix)
}

/// A number, rejecting llm-d-benchmark's unfilled `REPLACE_ENV_*` placeholders by name.
fn number(v: &Value, field: &str) -> Result<f64, InvalidInput> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| bad(field, "is not a number", "give a number")),
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
            bad(
                field,
                format!("{s:?} is not a number"),
                "give a number (fill llm-d-benchmark's REPLACE_ENV placeholders first)",
            )
        }),
        other => Err(bad(field, format!("{other} is not a number"), "give a number")),
    }
}

fn opt_number(m: &Map<String, Value>, key: &str, field: &str) -> Result<Option<f64>, InvalidInput> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => number(v, &format!("{field}.{key}")).map(Some),
    }
}

fn positive(m: &Map<String, Value>, key: &str, field: &str) -> Result<Option<f64>, InvalidInput> {
    match opt_number(m, key, field)? {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(bad(&format!("{field}.{key}"), format!("must be > 0 (got {x})"), "give a positive number"))
        }
        x => Ok(x),
    }
}

fn section<'a>(
    doc: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, InvalidInput> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(bad(key, "is not a mapping", "give the section as a mapping")),
    }
}

fn flag(m: &Map<String, Value>, key: &str, default: bool) -> bool {
    match m.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "1"),
        _ => default,
    }
}

/// An inference-perf `Distribution` (defaults min 10, max 1024, mean 512, std_dev 200, normal).
fn distribution(v: &Value, field: &str, warnings: &mut Vec<String>) -> Result<LengthDist, InvalidInput> {
    if let Ok(x) = number(v, field) {
        return Ok(LengthDist::Fixed { value: x.max(1.0) });
    }
    let Some(m) = v.as_object() else {
        return Err(bad(
            field,
            "is neither a number nor a distribution",
            "give a token count or {mean, std_dev, min, max}",
        ));
    };
    check_keys(m, field, DISTRIBUTION, warnings);
    let min = opt_number(m, "min", field)?.unwrap_or(10.0).max(1.0);
    let max = opt_number(m, "max", field)?.unwrap_or(1024.0).max(min);
    let mean = opt_number(m, "mean", field)?.unwrap_or(512.0);
    let std_dev = opt_number(m, "std_dev", field)?
        .or(opt_number(m, "variance", field)?.map(f64::sqrt))
        .unwrap_or(200.0);
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("normal");
    Ok(match kind {
        "fixed" => LengthDist::Fixed { value: mean.max(1.0) },
        "uniform" => LengthDist::Uniform { min, max },
        "lognormal" => LengthDist::Lognormal {
            mean: Some(mean),
            std_dev: Some(std_dev),
            mu: None,
            sigma: None,
            min: Some(min),
            max: Some(max),
        },
        "normal" | "skew_normal" | "poisson" => {
            if kind != "normal" {
                warnings.push(format!(
                    "workload profile: {field} is {kind}; modelled as a normal distribution of the same mean and spread"
                ));
            }
            let std_dev = if kind == "poisson" { mean.max(0.0).sqrt() } else { std_dev };
            LengthDist::Normal { mean, std_dev, min: Some(min), max: Some(max) }
        }
        other => {
            return Err(bad(
                &format!("{field}.type"),
                format!("unknown distribution type {other:?}"),
                "use normal, skew_normal, lognormal, uniform, poisson or fixed",
            ))
        }
    })
}

/// Reads an inference-perf config (already parsed from YAML). Field paths in errors are relative to
/// the config.
pub fn import(doc: &Value) -> Result<Imported, InvalidInput> {
    let Some(doc) = doc.as_object() else {
        return Err(bad(
            "",
            "is not a mapping",
            "give the inference-perf config (load, data, api, server, ...)",
        ));
    };
    let mut warnings = Vec::new();
    check_keys(doc, "", TOP, &mut warnings);
    let mut unmodelled: Vec<String> = ["metrics", "report", "storage", "tokenizer", "circuit_breakers"]
        .iter()
        .filter(|k| doc.contains_key(**k))
        .map(|k| k.to_string())
        .collect();

    // Client side: API and server.
    if let Some(api) = section(doc, "api")? {
        check_keys(api, "api", API, &mut warnings);
        if !flag(api, "streaming", false) {
            warnings.push(
                "workload profile: api.streaming is off, so inference-perf measured no time to first token; the twin still predicts it"
                    .into(),
            );
        }
        unmodelled.extend(api.keys().filter(|k| *k != "streaming").map(|k| format!("api.{k}")));
    }
    if let Some(server) = section(doc, "server")? {
        check_keys(server, "server", SERVER, &mut warnings);
        if !flag(server, "ignore_eos", true) {
            warnings.push(
                "workload profile: server.ignore_eos is false: real outputs may stop early, the twin generates the full output length"
                    .into(),
            );
        }
        unmodelled.extend(server.keys().filter(|k| *k != "ignore_eos").map(|k| format!("server.{k}")));
    }

    let Some(load) = section(doc, "load")? else {
        return Err(bad("load", "is missing", "give the load section (type, stages, interval)"));
    };
    let Some(data) = section(doc, "data")? else {
        return Err(bad("data", "is missing", "give the data section (type shared_prefix or random)"));
    };
    let (arrival, max_in_flight) = load_section(load, &mut warnings, &mut unmodelled)?;
    let class = data_section(data, &mut warnings)?;
    let timeout = positive(load, "request_timeout", "load")?;
    if !unmodelled.is_empty() {
        warnings.push(format!(
            "workload profile: read but without effect on the simulated load: {}",
            unmodelled.join(", ")
        ));
    }
    let client = (max_in_flight.is_some() || timeout.is_some())
        .then_some(ClientSpec { max_in_flight, timeout_seconds: timeout });
    Ok(Imported {
        workload: WorkloadSpec {
            duration_seconds: None,
            max_requests: None,
            arrival: Some(arrival),
            classes: vec![class],
            trace: None,
            client,
            profile: None,
        },
        warnings,
    })
}

/// The load section: the arrival process with its stages, and the in-flight bound when the profile
/// fixes the worker count.
fn load_section(
    load: &Map<String, Value>,
    warnings: &mut Vec<String>,
    unmodelled: &mut Vec<String>,
) -> Result<(ArrivalSpec, Option<i64>), InvalidInput> {
    check_keys(load, "load", LOAD, warnings);
    let kind = load.get("type").and_then(Value::as_str).unwrap_or("constant");
    if load.get("sweep").is_some_and(|s| !s.is_null()) {
        return Err(bad(
            "load.sweep",
            "is probed against the live server at run time, so its stages are unknown beforehand",
            "list the stages the sweep chose under load.stages",
        ));
    }
    let interval = opt_number(load, "interval", "load")?.unwrap_or(DEFAULT_INTERVAL_S);
    if !(interval.is_finite() && interval >= 0.0) {
        return Err(bad(
            "load.interval",
            format!("must be >= 0 (got {interval})"),
            "give the pause between stages in seconds",
        ));
    }
    let process = match kind {
        "poisson" => ArrivalProcess::PoissonPerSecond,
        "constant" => ArrivalProcess::NormalizedExponential,
        "concurrent" => ArrivalProcess::NormalizedExponential,
        "trace_replay" | "trace_session_replay" => {
            return Err(bad(
                "load.type",
                format!("{kind} replays a trace file"),
                "replay the trace with spec.workload.trace instead",
            ))
        }
        other => {
            return Err(bad(
                "load.type",
                format!("unknown load type {other:?}"),
                "use poisson, constant or concurrent",
            ))
        }
    };
    let stages_v = load.get("stages").and_then(Value::as_array).cloned().unwrap_or_default();
    if stages_v.is_empty() {
        return Err(bad("load.stages", "is empty", "list the load stages ({rate, duration} each)"));
    }
    let mut stages = Vec::with_capacity(stages_v.len());
    let mut concurrency: Option<i64> = None;
    for (i, s) in stages_v.iter().enumerate() {
        let field = format!("load.stages[{i}]");
        let Some(m) = s.as_object() else {
            return Err(bad(&field, "is not a mapping", "give {rate, duration}"));
        };
        if kind == "concurrent" {
            check_keys(m, &field, &["num_requests", "concurrency_level"], warnings);
            let n = positive(m, "num_requests", &field)?.ok_or_else(|| {
                bad(&format!("{field}.num_requests"), "is missing", "give the stage's request count")
            })?;
            let c = positive(m, "concurrency_level", &field)?.ok_or_else(|| {
                bad(&format!("{field}.concurrency_level"), "is missing", "give the stage's concurrency")
            })? as i64;
            if concurrency.is_some_and(|x| x != c) {
                return Err(bad(
                    &format!("{field}.concurrency_level"),
                    "differs from an earlier stage's; one client bound is modelled per run",
                    "split the profile into one run per concurrency level",
                ));
            }
            concurrency = Some(c);
            // Every request is due at once; the client's bound paces them.
            stages.push(StageSpec {
                rate_per_second: n * 1000.0,
                duration_seconds: 0.001,
                requests: Some(n as i64),
            });
            continue;
        }
        check_keys(m, &field, &["rate", "duration", "num_requests", "concurrency_level"], warnings);
        let rate = positive(m, "rate", &field)?.ok_or_else(|| {
            bad(&format!("{field}.rate"), "is missing", "give the stage's rate (requests per second)")
        })?;
        let duration = positive(m, "duration", &field)?.ok_or_else(|| {
            bad(&format!("{field}.duration"), "is missing", "give the stage's duration in seconds")
        })?;
        // inference-perf sends int(rate x duration) requests in every stage.
        let n = (rate * duration).floor() as i64;
        if n < 1 {
            return Err(bad(
                &field,
                format!("sends no request ({rate} x {duration} < 1)"),
                "raise rate or duration",
            ));
        }
        stages.push(StageSpec { rate_per_second: rate, duration_seconds: duration, requests: Some(n) });
    }
    let workers = opt_number(load, "num_workers", "load")?;
    let per_worker = opt_number(load, "worker_max_concurrency", "load")?.map(|x| x as i64);
    let max_in_flight = match (concurrency, workers) {
        (Some(c), _) => Some(c),
        (None, Some(w)) if w >= 1.0 => {
            Some((w as i64) * per_worker.unwrap_or(DEFAULT_WORKER_MAX_CONCURRENCY).max(1))
        }
        (None, _) => {
            warnings.push(format!(
                "workload profile: load.num_workers not set: inference-perf runs one worker per host CPU with {} requests in flight each; the host is not recorded, so the client is modelled without an in-flight bound",
                per_worker.unwrap_or(DEFAULT_WORKER_MAX_CONCURRENCY)
            ));
            None
        }
    };
    for k in ["worker_max_tcp_connections", "base_seed", "circuit_breakers"] {
        if load.contains_key(k) {
            unmodelled.push(format!("load.{k}"));
        }
    }
    if load.get("lora_traffic_split").is_some_and(|v| !v.is_null()) {
        warnings.push(
            "workload profile: load.lora_traffic_split not modelled (every request goes to the base model)"
                .into(),
        );
    }
    let n_stages = stages.len();
    warnings.push(format!(
        "workload profile: {n_stages} {kind} stages, each drained before the next, then interval {interval} s + {TIMER_START_S} s until its timer starts"
    ));
    Ok((
        ArrivalSpec {
            process,
            rate_per_second: None,
            stages: Some(stages),
            cv: None,
            between_stages: Some(BetweenStagesSpec {
                drain: true,
                pause_seconds: Some(interval + TIMER_START_S),
            }),
        },
        max_in_flight,
    ))
}

/// The data section: one client class with the profile's prompt and output lengths.
fn data_section(data: &Map<String, Value>, warnings: &mut Vec<String>) -> Result<ClassSpec, InvalidInput> {
    check_keys(data, "data", DATA, warnings);
    let kind = data.get("type").and_then(Value::as_str).unwrap_or("mock");
    let class = |name: &str, input, output, prefix| ClassSpec {
        name: name.into(),
        weight: None,
        arrival: None,
        input_tokens: Some(input),
        output_tokens: Some(output),
        prefix,
        session: None,
        slo: None,
        priority: 0,
    };
    match kind {
        "shared_prefix" => {
            let Some(sp) = section(data, "shared_prefix")? else {
                return Err(bad("data.shared_prefix", "is missing", "give num_groups, num_prompts_per_group, system_prompt_len, question_len, output_len"));
            };
            let f = "data.shared_prefix";
            check_keys(sp, f, SHARED_PREFIX, warnings);
            let count = |keys: [&str; 2], default: f64| -> Result<u32, InvalidInput> {
                let v = match opt_number(sp, keys[0], f)? {
                    Some(x) => Some(x),
                    None => opt_number(sp, keys[1], f)?,
                };
                let x = v.unwrap_or(default);
                if !(x.is_finite() && x >= 1.0) {
                    return Err(bad(&format!("{f}.{}", keys[0]), format!("must be >= 1 (got {x})"), "give a positive count"));
                }
                Ok(x as u32)
            };
            let groups = count(["num_groups", "num_unique_system_prompts"], 10.0)?;
            let per_group = count(["num_prompts_per_group", "num_users_per_system_prompt"], 10.0)?;
            let system = count(["system_prompt_len", "system_prompt_len"], 100.0)?;
            let question = match (sp.get("question_len"), sp.get("question_distribution")) {
                (Some(v), _) if !v.is_null() => distribution(v, &format!("{f}.question_len"), warnings)?,
                (_, Some(v)) if !v.is_null() => distribution(v, &format!("{f}.question_distribution"), warnings)?,
                _ => LengthDist::Fixed { value: 50.0 },
            };
            let output = match (sp.get("output_len"), sp.get("output_distribution")) {
                (Some(v), _) if !v.is_null() => distribution(v, &format!("{f}.output_len"), warnings)?,
                (_, Some(v)) if !v.is_null() => distribution(v, &format!("{f}.output_distribution"), warnings)?,
                _ => LengthDist::Fixed { value: 50.0 },
            };
            if flag(sp, "enable_multi_turn_chat", false) {
                warnings.push(
                    "workload profile: data.shared_prefix.enable_multi_turn_chat not modelled: each request is one prompt of the set, without earlier turns"
                        .into(),
                );
            }
            warnings.push(format!(
                "workload profile: {} prompts ({groups} system prompts of {system} tokens x {per_group} questions), shuffled once and sent in order from the first at every stage; nominal token counts (real tokenisation adds a few %)",
                u64::from(groups) * u64::from(per_group)
            ));
            Ok(class(
                "shared-prefix",
                question,
                output,
                Some(PrefixSpec {
                    groups,
                    tokens: system,
                    questions_per_group: Some(per_group),
                    order: Some(PromptOrder::Cycle),
                }),
            ))
        }
        "random" | "synthetic" => {
            let mut need = |key: &str| -> Result<LengthDist, InvalidInput> {
                match data.get(key) {
                    Some(v) if !v.is_null() => distribution(v, &format!("data.{key}"), warnings),
                    _ => Err(bad(&format!("data.{key}"), "is missing", "give {mean, std_dev, min, max}")),
                }
            };
            let input = need("input_distribution")?;
            let output = need("output_distribution")?;
            if data.get("trace").is_some_and(|t| !t.is_null()) {
                warnings.push("workload profile: data.trace (lengths from a trace file) not read: lengths follow the distributions".into());
            }
            Ok(class(kind, input, output, None))
        }
        other => Err(bad(
            "data.type",
            format!("{other} data needs the dataset itself (its prompt and output lengths)"),
            "replay a trace of the run's lengths with spec.workload.trace, or use shared_prefix / random data",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guide() -> Value {
        let path = crate::shared(
            "validation/cluster/llmd-guide-optimized-baseline-qwen3-32b/llm-d-benchmark-workload-profiles/guide_optimized-baseline_1.yaml.in",
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the shared profile is missing: {path}: {e}"));
        serde_yaml::from_str(&text).unwrap()
    }

    #[test]
    fn the_optimized_baseline_guide_profile() {
        let got = import(&guide()).unwrap();
        let w = &got.workload;
        let a = w.arrival.as_ref().unwrap();
        assert_eq!(a.process, ArrivalProcess::PoissonPerSecond);
        let stages = a.stages.as_ref().unwrap();
        let sizes: Vec<i64> = stages.iter().map(|s| s.requests.unwrap()).collect();
        assert_eq!(
            sizes,
            vec![750, 60, 200, 300, 760, 748, 750, 750, 735, 1520, 1548, 1518, 1470, 1508, 1485, 1482, 1500]
        );
        let b = a.between_stages.as_ref().unwrap();
        assert!(b.drain);
        assert_eq!(b.pause_seconds, Some(31.0));
        let c = &w.classes[0];
        let p = c.prefix.as_ref().unwrap();
        assert_eq!(
            (p.groups, p.tokens, p.questions_per_group, p.order),
            (150, 6000, Some(5), Some(PromptOrder::Cycle))
        );
        assert_eq!(c.input_tokens, Some(LengthDist::Fixed { value: 1200.0 }));
        assert_eq!(c.output_tokens, Some(LengthDist::Fixed { value: 1000.0 }));
        let client = w.client.as_ref().unwrap();
        assert_eq!((client.max_in_flight, client.timeout_seconds), (None, Some(300.0)));
        assert!(got.warnings.iter().any(|w| w.contains("num_workers")), "{:?}", got.warnings);
        assert!(
            got.warnings.iter().any(|w| w.contains("report") && w.contains("storage")),
            "{:?}",
            got.warnings
        );
        blis_sim::workload::validate(w).unwrap();
    }

    #[test]
    fn unknown_keys_are_listed_not_dropped() {
        let mut doc = guide();
        doc["load"]["warmup_magic"] = Value::from(3);
        doc["data"]["shared_prefix"]["question_len_std"] = Value::from(9);
        doc["extra"] = Value::from("x");
        let got = import(&doc).unwrap();
        for key in ["load.warmup_magic", "data.shared_prefix.question_len_std", "extra"] {
            assert!(got.warnings.iter().any(|w| w.contains(key)), "{key} not listed in {:?}", got.warnings);
        }
    }

    #[test]
    fn worker_limits_timeouts_and_random_data() {
        let doc: Value = serde_yaml::from_str(
            r#"
load:
  type: constant
  num_workers: 4
  worker_max_concurrency: 8
  request_timeout: 45
  stages: [{rate: 2.5, duration: 9}]
data:
  type: random
  input_distribution: {mean: 800, std_dev: 100, min: 100, max: 2000, total_count: 500}
  output_distribution: {mean: 200, type: fixed}
"#,
        )
        .unwrap();
        let w = import(&doc).unwrap().workload;
        let a = w.arrival.unwrap();
        assert_eq!(a.process, ArrivalProcess::NormalizedExponential);
        assert_eq!(a.stages.unwrap()[0].requests, Some(22), "int(2.5 x 9)");
        assert_eq!(a.between_stages.unwrap().pause_seconds, Some(2.0), "default interval 1 s + timer start");
        assert_eq!(w.client, Some(ClientSpec { max_in_flight: Some(32), timeout_seconds: Some(45.0) }));
        assert_eq!(w.classes[0].output_tokens, Some(LengthDist::Fixed { value: 200.0 }));
        assert!(matches!(w.classes[0].input_tokens, Some(LengthDist::Normal { mean, .. }) if mean == 800.0));
    }

    #[test]
    fn what_cannot_be_simulated_is_an_error_naming_the_field() {
        let field = |yaml: &str| import(&serde_yaml::from_str(yaml).unwrap()).unwrap_err().field;
        assert_eq!(
            field("load: {type: poisson, stages: [{rate: 1, duration: 5}]}\ndata: {type: shareGPT}"),
            "data.type"
        );
        assert_eq!(field("load: {type: poisson, stages: [{rate: REPLACE_ENV_RATE, duration: 5}]}\ndata: {type: random}"), "load.stages[0].rate");
        assert_eq!(field("load: {type: trace_replay}\ndata: {type: random}"), "load.type");
        assert_eq!(field("load: {type: poisson, sweep: {type: linear}}\ndata: {type: random}"), "load.sweep");
        assert_eq!(field("data: {type: random}"), "load");
    }
}
