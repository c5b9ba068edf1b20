//! vLLM `benchmark_serving.py` runs on its random dataset: `--random-input-len` (1024),
//! `--random-output-len` (128), `--random-prefix-len` (0), `--random-range-ratio`, `--request-rate`
//! (inf: all at once), `--burstiness` (1: Poisson; gaps are gamma with shape `burstiness`, so their
//! coefficient of variation is `1/sqrt(burstiness)`), `--num-prompts` (1000), `--max-concurrency`
//! (none). Given as a mapping (dashes or underscores), as the command line, or as the result JSON the
//! script wrote (its prompt and output lengths are then the recorded totals over the completed
//! requests).

use serde_json::{Map, Value};

use super::{check_keys, Imported};
use blis_sim::error::InvalidInput;
use blis_sim::workload::{
    ArrivalProcess, ArrivalSpec, ClassSpec, ClientSpec, LengthDist, PrefixSpec, WorkloadSpec,
};

/// Parameters that shape the simulated load.
const MODELLED: &[&str] = &[
    "dataset_name",
    "random_input_len",
    "random_output_len",
    "random_prefix_len",
    "random_range_ratio",
    "request_rate",
    "burstiness",
    "num_prompts",
    "max_concurrency",
    "ignore_eos",
];
/// Parameters and result fields without effect on the simulated load.
const INERT: &[&str] = &[
    "backend",
    "base_url",
    "host",
    "port",
    "endpoint",
    "model",
    "model_id",
    "tokenizer",
    "tokenizer_id",
    "seed",
    "save_result",
    "result_dir",
    "result_filename",
    "metadata",
    "percentile_metrics",
    "metric_percentiles",
    "disable_tqdm",
    "profile",
    "trust_remote_code",
    "date",
    "timestamp",
    "label",
    "goodput",
    "dataset_path",
    "served_model_name",
    "logprobs",
    "tokenizer_mode",
    "request_goodput",
    "request_goodput:",
    "duration",
    "completed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "output_throughput",
    "total_token_throughput",
    "input_lens",
    "output_lens",
    "ttfts",
    "itls",
    "generated_texts",
    "errors",
];

fn bad(field: &str, problem: impl Into<String>, fix: &str) -> InvalidInput {
    InvalidInput::new(field, problem, fix)
}

/// The parameters as a mapping with underscore keys, from a mapping or a command line.
fn parameters(v: &Value) -> Result<Map<String, Value>, InvalidInput> {
    let norm = |k: &str| k.trim_start_matches('-').replace('-', "_");
    match v {
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (norm(k), v.clone())).collect()),
        Value::String(line) => {
            let words = shlex::split(line).ok_or_else(|| {
                bad("", "is not a valid command line (unbalanced quotes)", "quote the arguments properly")
            })?;
            let mut out = Map::new();
            let mut it = words.iter().peekable();
            while let Some(w) = it.next() {
                let Some(flag) = w.strip_prefix("--") else { continue };
                let (key, value) = match flag.split_once('=') {
                    Some((k, v)) => (norm(k), Value::String(v.to_string())),
                    None => match it.peek() {
                        Some(next) if !next.starts_with("--") => {
                            (norm(flag), Value::String(it.next().cloned().unwrap_or_default()))
                        }
                        _ => (norm(flag), Value::Bool(true)),
                    },
                };
                out.insert(key, value);
            }
            Ok(out)
        }
        _ => Err(bad("", "is neither a mapping nor a command line", "give the benchmark_serving parameters")),
    }
}

fn number(m: &Map<String, Value>, key: &str) -> Result<Option<f64>, InvalidInput> {
    let field = key.replace('_', "-");
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("inf") => Ok(Some(f64::INFINITY)),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| bad(&field, format!("{s:?} is not a number"), "give a number")),
        Some(other) => Err(bad(&field, format!("{other} is not a number"), "give a number")),
    }
}

fn positive(m: &Map<String, Value>, key: &str) -> Result<Option<f64>, InvalidInput> {
    match number(m, key)? {
        Some(x) if x.is_nan() || x <= 0.0 => {
            Err(bad(&key.replace('_', "-"), format!("must be > 0 (got {x})"), "give a positive number"))
        }
        x => Ok(x),
    }
}

/// Reads benchmark_serving parameters (or its result JSON).
pub fn import(v: &Value) -> Result<Imported, InvalidInput> {
    let m = parameters(v)?;
    let mut warnings = Vec::new();
    let known: Vec<&str> = MODELLED.iter().chain(INERT).copied().collect();
    let measured = |k: &str| {
        ["mean_", "median_", "std_", "p"].iter().any(|p| k.starts_with(p))
            && (k.ends_with("_ms") || k.contains("ttft") || k.contains("tpot") || k.contains("itl"))
    };
    let unknown: Map<String, Value> =
        m.iter().filter(|(k, _)| !measured(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    check_keys(&unknown, "", &known, &mut warnings);
    if let Some(d) = m.get("dataset_name").and_then(Value::as_str) {
        if d != "random" {
            return Err(bad(
                "dataset-name",
                format!("{d} prompts need the dataset's lengths"),
                "replay a trace of the run's lengths with spec.workload.trace, or use the random dataset",
            ));
        }
    }
    // A result file records what was sent: mean lengths over the completed requests.
    let completed = number(&m, "completed")?.filter(|&c| c > 0.0);
    let recorded = |total: &str| -> Result<Option<f64>, InvalidInput> {
        Ok(completed.zip(number(&m, total)?).map(|(c, t)| (t / c).round()))
    };
    let prefix = number(&m, "random_prefix_len")?.unwrap_or(0.0).max(0.0).floor() as u32;
    // Prompts are the shared prefix followed by `random_input_len` random tokens.
    let input = match positive(&m, "random_input_len")? {
        Some(x) => x,
        None => recorded("total_input_tokens")?.map_or(1024.0, |t| (t - f64::from(prefix)).max(1.0)),
    };
    let output = match positive(&m, "random_output_len")? {
        Some(x) => x,
        None => recorded("total_output_tokens")?.unwrap_or(128.0),
    };
    let lengths = |len: f64| match number(&m, "random_range_ratio") {
        Ok(Some(r)) if r > 0.0 && r < 1.0 => {
            LengthDist::Uniform { min: (len * (1.0 - r)).floor().max(1.0), max: (len * (1.0 + r)).ceil() }
        }
        _ => LengthDist::Fixed { value: len.max(1.0) },
    };
    if number(&m, "random_range_ratio")?.is_some_and(|r| r > 0.0 && r < 1.0) {
        warnings.push(
            "workload profile: random-range-ratio r read as lengths uniform in [len (1 - r), len (1 + r)] (vLLM since mid 2025; earlier releases drew from [len r, len])"
                .into(),
        );
    }
    let rate = positive(&m, "request_rate")?.unwrap_or(f64::INFINITY);
    let burstiness = positive(&m, "burstiness")?.unwrap_or(1.0);
    let prompts = positive(&m, "num_prompts")?.unwrap_or(1000.0).floor() as u64;
    let concurrency = positive(&m, "max_concurrency")?.map(|c| c.floor() as i64);
    if m.get("ignore_eos").is_some_and(|v| v == &Value::Bool(false)) {
        warnings.push("workload profile: ignore-eos off: real outputs may stop early; the twin generates the full length".into());
    }
    let arrival = if rate.is_finite() {
        let cv = 1.0 / burstiness.sqrt();
        let poisson = (burstiness - 1.0).abs() < 1e-12;
        ArrivalSpec {
            process: if poisson { ArrivalProcess::Poisson } else { ArrivalProcess::Gamma },
            rate_per_second: Some(rate),
            stages: None,
            cv: (!poisson).then_some(cv),
            between_stages: None,
        }
    } else {
        warnings.push("workload profile: request-rate inf: every prompt is sent at once (1 µs apart)".into());
        ArrivalSpec {
            process: ArrivalProcess::Constant,
            rate_per_second: Some(1e6),
            stages: None,
            cv: None,
            between_stages: None,
        }
    };
    let class = ClassSpec {
        name: "random".into(),
        weight: None,
        arrival: None,
        input_tokens: Some(lengths(input)),
        output_tokens: Some(lengths(output)),
        prefix: (prefix > 0).then_some(PrefixSpec {
            groups: 1,
            tokens: prefix,
            questions_per_group: None,
            order: None,
        }),
        session: None,
        slo: None,
        priority: 0,
    };
    Ok(Imported {
        workload: WorkloadSpec {
            duration_seconds: None,
            max_requests: Some(prompts.max(1)),
            arrival: Some(arrival),
            classes: vec![class],
            trace: None,
            client: concurrency.map(|c| ClientSpec { max_in_flight: Some(c.max(1)), timeout_seconds: None }),
            profile: None,
        },
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_of_the_exp7_runs() {
        let got = import(&Value::from(
            "python benchmark_serving.py --dataset-name random --random-input-len 8000 --random-output-len 200 --num-prompts 200 --request-rate 3.6 --burstiness 100 --ignore-eos",
        ))
        .unwrap();
        let w = got.workload;
        assert_eq!(w.max_requests, Some(200));
        let a = w.arrival.unwrap();
        assert_eq!((a.process, a.rate_per_second), (ArrivalProcess::Gamma, Some(3.6)));
        assert!((a.cv.unwrap() - 0.1).abs() < 1e-12, "burstiness 100 -> cv 0.1");
        assert_eq!(w.classes[0].input_tokens, Some(LengthDist::Fixed { value: 8000.0 }));
        assert_eq!(w.classes[0].output_tokens, Some(LengthDist::Fixed { value: 200.0 }));
        assert!(w.client.is_none());
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    }

    #[test]
    fn result_json_gives_the_recorded_lengths() {
        let path = crate::shared(
            "validation/cluster/llmd-benchmark-2025-exp-7/data/openshift/exp-7/H100/llm-d-1p1d/benchmark_2025-05-13_04-37-51.json",
        );
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("shared data missing: {path}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let got = import(&doc).unwrap();
        let w = got.workload;
        assert_eq!(w.max_requests, Some(200));
        assert_eq!(w.classes[0].input_tokens, Some(LengthDist::Fixed { value: 7999.0 }));
        assert_eq!(w.classes[0].output_tokens, Some(LengthDist::Fixed { value: 200.0 }));
        assert!(got.warnings.is_empty(), "result figures are known keys: {:?}", got.warnings);
    }

    #[test]
    fn mapping_with_concurrency_prefix_and_unknown_keys() {
        let doc = serde_json::json!({
            "random-input-len": 1000, "random_output_len": "50", "random-prefix-len": 200,
            "request-rate": "inf", "max-concurrency": 8, "num-prompts": 30, "mystery": 1
        });
        let got = import(&doc).unwrap();
        let w = got.workload;
        assert_eq!(w.client.unwrap().max_in_flight, Some(8));
        assert_eq!(w.classes[0].prefix.as_ref().map(|p| p.tokens), Some(200));
        assert_eq!(w.classes[0].input_tokens, Some(LengthDist::Fixed { value: 1000.0 }), "after the prefix");
        assert!(got.warnings.iter().any(|x| x.contains("mystery")));
        let e = import(&serde_json::json!({"dataset-name": "sharegpt"})).unwrap_err();
        assert_eq!(e.field, "dataset-name");
    }
}
