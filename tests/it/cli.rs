//! The `blis` command line: the quickstart, determinism of JSON output, and bad input handling.

use std::process::Output;

use crate::common;

use common::blis;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_file(name: &str, text: &str) -> common::TempFile {
    common::TempFile::new("blis-cli-test-", name, text)
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

/// Sizes that would exhaust the machine's memory are refused before the run allocates anything,
/// with exit 2 and the field and the limit named.
#[test]
fn hostile_sizes_exit_2_naming_the_field_and_the_limit() {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.yaml")).unwrap();
    let profile = "gpu: huge\n    profile: {name: huge, memoryGib: 1e12, tflopsBf16: 989, hbmTbps: 3.35, nvlinkGbps: 450, dollarsPerGpuHour: 2}";
    let cases = [
        ("replicas", base.replace("replicas: 1", "replicas: 100000000"), "spec.replicas", "10000"),
        ("memory", base.replace("gpu: H100-SXM-80GB", profile), "spec.hardware", "200000000"),
        ("rate", base.replace("ratePerSecond: 12", "ratePerSecond: 1e12"), "ratePerSecond", "20000000"),
    ];
    for (name, text, field, limit) in cases {
        let p = temp_file(&format!("hostile-{name}.yaml"), &text);
        let o = blis(&["run", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: expected exit 2, stderr: {err}");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{name}: {err}"));
        assert!(line.contains(field) && line.contains(limit), "{name}: {line}");
    }
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

#[test]
fn gate_passes_an_example_meeting_its_slos_and_fails_one_that_misses() {
    let o = blis(&["gate", "examples/quickstart.yaml"]);
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("PASS quickstart classSLO[chat]: slo_attainment predicted"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");

    // The failing scenario's misses are named with class, metric, predicted value and limit.
    let o = blis(&["gate", "examples/quickstart.yaml", "examples/gate-fails.yaml"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(fails.iter().all(|l| l.starts_with("FAIL gate-fails ")), "{out}");
    let ttft = fails.iter().find(|l| l.contains("maxTtftP90Ms")).unwrap_or_else(|| panic!("{out}"));
    assert!(ttft.contains("ttft_p90_ms predicted ") && ttft.ends_with("limit <= 300"), "{ttft}");
    assert!(fails.iter().any(|l| l.starts_with("FAIL gate-fails classSLO[chat]: slo_attainment")), "{out}");
    assert!(out.contains("PASS gate-fails maxDollarsPerHour"), "{out}");
    assert!(out.lines().last().unwrap().ends_with("FAILED"), "{out}");
}

#[test]
fn gate_json_and_junit_have_one_entry_per_gate() {
    let o = blis(&["gate", "--output", "json", "examples/gate-fails.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let gates = v["scenarios"][0]["gates"].as_array().unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["total"], gates.len());
    let failed: Vec<&str> =
        gates.iter().filter(|g| g["passed"] == false).map(|g| g["gate"].as_str().unwrap()).collect();
    assert_eq!(v["failed"], failed.len());
    assert!(failed.contains(&"maxTtftP90Ms"), "{v}");
    let ttft = gates.iter().find(|g| g["gate"] == "maxTtftP90Ms").unwrap();
    assert!(ttft["predicted"].as_f64().unwrap() > ttft["limit"].as_f64().unwrap());

    let o = blis(&["gate", "--output", "junit", "examples/quickstart.yaml", "examples/gate-fails.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    let mut reader = quick_xml::Reader::from_str(&xml);
    reader.config_mut().check_end_names = true;
    let (mut cases, mut failures) = (0, 0);
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("invalid XML: {e}\n{xml}")) {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().into_inner() {
                    "testcase" => cases += 1,
                    "failure" => failures += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // quickstart: 2 class SLOs; gate-fails: 2 class SLOs + 2 gates.
    assert_eq!(cases, 6, "{xml}");
    assert_eq!(failures, failed.len(), "{xml}");
}

#[test]
fn gate_exits_2_on_malformed_input() {
    let bad = temp_file(
        "gate-bad.yaml",
        "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nspec: [oops\n",
    );
    let o = blis(&["gate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    assert!(stderr(&o).starts_with("error:") && stderr(&o).contains("fix:"), "{}", stderr(&o));
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/gate-fails.yaml")).unwrap();
    let bad_gate = temp_file("gate-bad-limit.yaml", &base.replace("maxTtftP90Ms: 300", "maxTtftP90Ms: -5"));
    let o = blis(&["gate", bad_gate.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("spec.gates.maxTtftP90Ms"), "{}", stderr(&o));
    assert_eq!(blis(&["gate"]).status.code(), Some(2), "a path is required");
    assert_eq!(blis(&["gate", "--output", "xml", "examples/quickstart.yaml"]).status.code(), Some(2));
}

/// A reader that closes the pipe early (`blis run ... | head -1`) ends `blis` quietly with
/// status 0, not with a panic about a broken pipe.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_blis"))
        .args(["run", "--output", "json", "examples/quickstart.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn blis");
    // Close the read end before blis writes anything.
    drop(child.stdout.take());
    let status = child.wait().expect("wait for blis");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert!(status.success(), "status {status:?}, stderr: {err}");
}
