//! The `blis` command line: the quickstart, determinism of JSON output, and bad input handling.

use std::path::PathBuf;
use std::process::{Command, Output};

fn blis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blis"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("blis runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("blis-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write temp file");
    p
}

#[test]
fn quickstart_prints_the_prediction_table() {
    let o = blis(&["run", "examples/quickstart.yaml"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    for needle in ["Scenario quickstart", "TTFT", "ITL", "E2E", "Throughput", "Cost", "chat"] {
        assert!(out.contains(needle), "table lacks {needle:?}:\n{out}");
    }
}

#[test]
fn embedded_quickstart_runs_without_a_file() {
    let o = blis(&["run", "--output", "json"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["scenarios"][0]["name"], "quickstart");
}

#[test]
fn json_is_byte_identical_for_a_seed_and_differs_for_another() {
    let a = blis(&["run", "--output", "json", "examples/quickstart.yaml"]);
    let b = blis(&["run", "--output", "json", "examples/quickstart.yaml"]);
    let c = blis(&["run", "--output", "json", "--seed", "7", "examples/quickstart.yaml"]);
    assert!(a.status.success() && b.status.success() && c.status.success());
    assert_eq!(a.stdout, b.stdout, "same file and seed must give byte-identical JSON");
    assert_ne!(a.stdout, c.stdout, "another seed must change the prediction");
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).expect("JSON");
    let s = &v["scenarios"][0];
    for key in ["ttft_ms", "itl_ms", "e2e_ms", "queue_ms"] {
        for p in ["mean", "p50", "p90", "p99"] {
            assert!(s[key][p].is_number(), "missing {key}.{p}");
        }
    }
    assert!(s["throughput"]["requests_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["requests"]["completed"].as_u64().unwrap() > 0);
    assert!(s["cost"]["dollars_per_hour"].as_f64().unwrap() > 0.0);
    assert_eq!(s["seed"], 42);
    assert_eq!(v["scenarios"][0]["classes"].as_array().unwrap().len(), 2);
}

#[test]
fn every_scenario_in_a_multi_document_file_runs() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.yaml")).unwrap();
    let second = text.replace("name: quickstart", "name: quickstart-2").replace("replicas: 1", "replicas: 2");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\ndata: {}\n";
    let p = temp_file("multi.yaml", &format!("{text}\n---\n{cm}---\n{second}"));
    let o = blis(&["run", "--output", "json", p.to_str().unwrap()]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> =
        v["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["quickstart", "quickstart-2"]);
}

/// Each bad input exits with status 2 and one line naming the field and the fix, never a panic.
#[test]
fn bad_input_exits_2_naming_the_field_and_fix() {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.yaml")).unwrap();
    let cases: [(&str, String, &str); 7] = [
        (
            "unknown-model",
            base.replace("meta-llama/Llama-3.1-8B-Instruct", "acme/NoSuchModel-9B"),
            "spec.model.name",
        ),
        ("unknown-gpu", base.replace("gpu: H100-SXM-80GB", "gpu: TPU-v9"), "spec.hardware.gpu"),
        ("negative-rate", base.replace("ratePerSecond: 12", "ratePerSecond: -3"), "ratePerSecond"),
        (
            "tp-too-small",
            base.replace("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"),
            "spec.hardware.tensorParallelism",
        ),
        (
            "zero-budget",
            base.replace("maxNumBatchedTokens: 2048", "maxNumBatchedTokens: 0"),
            "spec.vllm.maxNumBatchedTokens",
        ),
        ("unknown-field", base.replace("replicas: 1", "replicas: 1\n  replicaz: 2"), "replicaz"),
        ("bad-yaml", base.replace("spec:", "spec: [oops"), "document"),
    ];
    for (name, text, field) in cases {
        let p = temp_file(&format!("{name}.yaml"), &text);
        let o = blis(&["run", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: expected exit 2, stderr: {err}");
        assert!(!err.contains("panicked"), "{name}: panicked: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{name}: no error line: {err}"));
        assert!(line.contains(field), "{name}: error does not name {field}: {line}");
        assert!(line.contains("fix:"), "{name}: error gives no fix: {line}");
    }
    let o = blis(&["run", "no/such/file.yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_help_explains_the_scenario_format() {
    let o = blis(&["run", "--help"]);
    assert!(o.status.success());
    let out = stdout(&o);
    for needle in ["--output", "--seed", "maxNumBatchedTokens", "normalizedExponential", "trace", "exit"] {
        assert!(out.to_lowercase().contains(&needle.to_lowercase()), "help lacks {needle}");
    }
}
