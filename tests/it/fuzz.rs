//! Hostile input: a seeded mutation fuzzer over every example manifest (scenarios, sweeps, the llm-d
//! example folders and the shared llm-d manifests). Each case mutates one file of one corpus entry
//! (type swaps, extreme and non-finite numbers, deep nesting, empty / huge / unicode strings, removed,
//! duplicated and unknown keys, huge lists) and sends it through the entry points the CLI and the
//! controller use: read (files and folders, with their llm-d imports) -> validate -> resolve ->
//! budget -> a simulation bounded in events and requests; and the controller's own decoding of the
//! object's JSON, its name checks and `prepare` against the same objects. Asserted: no panic, and
//! every error names a field ([`names_a_field`]). `BLIS_FUZZ_CASES` (default 300) and
//! `BLIS_FUZZ_SEED` (default 15) choose the run; `hack/test.sh` runs 10,000 cases in release.

use std::collections::{BTreeSet, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_yaml::{Mapping, Value};

use blis_import::load;
use blis_k8s::api::{ScenarioSpec, SimulationSweepSpec};
use blis_k8s::controller::scenario::steps::{self as scenario_steps, Referenced};
use blis_k8s::controller::sweep::steps as sweep_steps;
use blis_k8s::controller::watched;
use blis_sim::error::InvalidInput;
use blis_sim::scenario::budget::{self, Budget};
use blis_sim::scenario::limits::{LimitObserver, RunLimits};
use blis_sim::scenario::{self as sim_scenario, RunError};
use blis_sim::sim::{SimError, SimOptions};

/// Most simulated events of one case's run (keeps 10,000 cases fast; the bound is what is tested).
const MAX_EVENTS: u64 = 20_000;
/// Most finished requests of one case's run.
const MAX_REQUESTS: u64 = 200;
/// The budget a case must fit to be simulated at all (tighter than the CLI's: a fuzz run stays small).
const FUZZ_BUDGET: Budget = Budget {
    max_replicas: 256,
    max_kv_blocks: 2_000_000,
    max_requests: 20_000_000,
    max_memory_bytes: 256.0 * 1024.0 * 1024.0,
};

/// SplitMix64: a small deterministic generator (the same seed gives the same cases everywhere).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One thing to mutate: a scenario file, a sweep file, or a folder (llm-d objects + scenarios).
struct Entry {
    /// Where the (copied) entry lives: the file itself, or the folder.
    root: PathBuf,
    /// The YAML files that may be mutated, with their original text.
    files: Vec<(PathBuf, String)>,
    kind: EntryKind,
    /// The objects the unmutated folder deploys: what the controller finds in the API (a mutated
    /// object file is read by the CLI's path; rendering a folder twice per case would be slow).
    objects: blis_import::Objects,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum EntryKind {
    Scenarios,
    Sweep,
    Folder,
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(src).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// A small workload added to a shared llm-d folder (which holds no scenario of its own).
const SHARED_SCENARIO: &str = "apiVersion: twin.blis.dev/v1alpha1\nkind: SimulationScenario\nmetadata: {name: fuzz}\nspec:\n  workload:\n    maxRequests: 40\n    arrival: {process: poisson, ratePerSecond: 4}\n    classes:\n    - name: chat\n      inputTokens: {distribution: fixed, value: 100}\n      outputTokens: {distribution: fixed, value: 10}\n";

/// Every example and shared manifest, copied under `tmp` (cases write their mutations there).
fn corpus(tmp: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut singles = Vec::new();
    for dir in ["examples", "examples/admission-case-study", "examples/sweeps"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        singles.extend(files);
    }
    for (i, src) in singles.iter().enumerate() {
        let text = std::fs::read_to_string(src).unwrap();
        let kind = if text.contains("kind: SimulationSweep") {
            EntryKind::Sweep
        } else if text.contains("kind: SimulationScenario") {
            EntryKind::Scenarios
        } else {
            continue;
        };
        let dst = tmp.join(format!("single-{i}")).join(src.file_name().unwrap());
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(&dst, &text).unwrap();
        out.push(Entry { root: dst.clone(), files: vec![(dst, text)], kind, objects: Default::default() });
    }
    let mut folders: Vec<(PathBuf, bool)> = Vec::new();
    for (base, shared) in [(repo("examples/llm-d"), false), (repo("../shared/llm-d-manifests"), true)] {
        assert!(base.is_dir(), "{} is missing: the fuzz corpus needs it", base.display());
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        folders.extend(dirs.into_iter().map(|d| (d, shared)));
    }
    for (i, (src, shared)) in folders.iter().enumerate() {
        let dst = tmp.join(format!("folder-{i}"));
        copy_dir(src, &dst);
        if *shared {
            std::fs::write(dst.join("zz-fuzz-scenario.yaml"), SHARED_SCENARIO).unwrap();
        }
        let mut paths = Vec::new();
        yaml_files(&dst, &mut paths);
        let files = paths
            .into_iter()
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                // Templates are text, not YAML trees: they are read as they are.
                let is_yaml = serde_yaml::Deserializer::from_str(&text)
                    .all(|d| <Value as serde::Deserialize>::deserialize(d).is_ok());
                is_yaml.then_some((p, text))
            })
            .collect();
        let objects =
            blis_import::folder::read(std::slice::from_ref(&dst)).expect("an example folder reads").objects;
        out.push(Entry { root: dst, files, kind: EntryKind::Folder, objects });
    }
    out
}

/// Every string key of `v`, recursively, and the keys a sweep's or search's `path: a.b.c` names.
fn keys_of(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                if let Some(k) = k.as_str() {
                    out.insert(k.to_string());
                    if let (Some("path"), Some(p)) = (Some(k), x.as_str()) {
                        out.extend(p.split('.').map(|seg| seg.split('[').next().unwrap_or("").to_string()));
                    }
                }
                keys_of(x, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|x| keys_of(x, out)),
        Value::Tagged(t) => keys_of(&t.value, out),
        _ => {}
    }
}

/// The documents of `text` up to the first that does not parse (the deserializer does not move on
/// after an error).
fn docs_of(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map_while(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .collect()
}

/// The field names the input formats know: every key of the corpus and every property of the CRDs.
fn vocabulary(corpus: &[Entry]) -> HashSet<String> {
    let mut out = HashSet::new();
    for e in corpus {
        for (_, text) in &e.files {
            docs_of(text).iter().for_each(|d| keys_of(d, &mut out));
        }
    }
    for crd in blis_k8s::api::crds() {
        let v: Value = serde_yaml::to_value(&crd).unwrap();
        collect_properties(&v, &mut out);
    }
    out
}

fn collect_properties(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Mapping(m) => {
            if let Some(Value::Mapping(props)) = m.get("properties") {
                out.extend(props.keys().filter_map(|k| k.as_str().map(str::to_string)));
            }
            m.values().for_each(|x| collect_properties(x, out));
        }
        Value::Sequence(s) => s.iter().for_each(|x| collect_properties(x, out)),
        _ => {}
    }
}

/// Whether an input error names a field. Its `field` is a chain of places separated by ": " (file,
/// object, then the field); the last one must be a field path: keys joined by `.`, each optionally
/// followed by `[index]`, whose last key is a name the input formats know (`vocab`: keys of the
/// corpus and of the mutated input, properties of the CRDs). Text that is not YAML (a syntax error,
/// an unrendered template) has no tree and so no path: there the problem must give the line and
/// column instead.
fn names_a_field(e: &InvalidInput, vocab: &HashSet<String>) -> bool {
    if e.problem.contains("not valid YAML") || e.problem.contains("is a Helm template") {
        return e.problem.contains("line ") && e.problem.contains("column ");
    }
    // `release x: values`, `spec.parameters[2]: spec.<the user's path>`: some part is a known field.
    e.field.split(": ").map(str::trim).any(|part| {
        last_key(part).is_some_and(|k| vocab.contains(k) || IMPORTER_KEYS.contains(&k)) || is_label_key(part)
    })
}

/// Keys the importers read that no file of the corpus happens to set.
const IMPORTER_KEYS: &[&str] = &["chartVersion"];

/// Whether `s` is a Kubernetes label key with a prefix (`nvidia.com/gpu.product`): a field of a
/// selector, named as the object writes it.
fn is_label_key(s: &str) -> bool {
    s.split_once('/').is_some_and(|(prefix, name)| {
        prefix.contains('.')
            && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    })
}

/// The last key of a field path (`a.b[0].c` -> `c`, `a.b[3]` -> `b`), or `None` when `s` is not a path.
fn last_key(s: &str) -> Option<&str> {
    let mut last = None;
    for seg in s.split('.') {
        let key = seg.split('[').next()?;
        let indexes = &seg[key.len()..];
        let ok_key =
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let ok_idx = indexes.split_inclusive(']').all(|i| {
            i.strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        });
        if !ok_key || !ok_idx {
            return None;
        }
        last = Some(key);
    }
    last
}

// ---- mutations ----

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0.0",
    "1",
    "0.5",
    "3000000000",
    "5000000000",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    BIG_INT,
    "1e12",
    "1e308",
    "-1e308",
    "1e-300",
    "-1e-300",
    ".nan",
    ".inf",
    "-.inf",
    "100000000",
    "1e9",
];

/// An integer past every Rust integer type: no YAML value holds it, so it is put into the text
/// after serialization (in place of this marker).
const BIG_INT: &str = "__BIG_INT__";

fn huge_string(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => String::new(),
        1 => "x".repeat(100_000),
        2 => "ユニコード🦀\u{202e}é\u{0}".to_string(),
        3 => "a/b/../../etc/passwd".to_string(),
        4 => "${HOME} {{ .Values.x }} $(VAR)".to_string(),
        _ => " \t\n".to_string(),
    }
}

fn scalar(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 | 1 => match *rng.pick(NUMBERS) {
            BIG_INT => Value::String(BIG_INT.into()),
            n => serde_yaml::from_str(n).unwrap(),
        },
        2 => Value::String(huge_string(rng)),
        3 => Value::Bool(rng.below(2) == 0),
        4 => Value::Null,
        _ => Value::String(rng.pick(NUMBERS).to_string()),
    }
}

/// Paths to every node of `v` (as child indexes), for picking one.
fn nodes(v: &Value, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(at.clone());
    let children: Vec<&Value> = match v {
        Value::Mapping(m) => m.values().collect(),
        Value::Sequence(s) => s.iter().collect(),
        _ => return,
    };
    for (i, c) in children.into_iter().enumerate() {
        at.push(i);
        nodes(c, at, out);
        at.pop();
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    let Some((first, rest)) = path.split_first() else { return v };
    let child = match v {
        Value::Mapping(m) => m.values_mut().nth(*first).unwrap(),
        Value::Sequence(s) => &mut s[*first],
        _ => unreachable!("paths lead through containers"),
    };
    node_mut(child, rest)
}

/// Applies one random mutation to a random node of `doc`.
fn mutate(doc: &mut Value, rng: &mut Rng) {
    let mut all = Vec::new();
    nodes(doc, &mut Vec::new(), &mut all);
    let path = rng.pick(&all).clone();
    let node = node_mut(doc, &path);
    match rng.below(10) {
        // Type swap or extreme value.
        0..=2 => *node = scalar(rng),
        3 => {
            *node = match rng.below(3) {
                0 => Value::Sequence(vec![scalar(rng)]),
                1 => Value::Mapping(Mapping::new()),
                _ => Value::Sequence(Vec::new()),
            }
        }
        // A number scaled to an extreme or negated.
        4 => {
            if let Some(f) = node.as_f64() {
                let k = *rng.pick(&[1e6, -1.0, 1e12, 0.0, 1e-9, 1e300]);
                *node = if node.is_i64() && f * k == (f * k).trunc() && (f * k).abs() < 9e18 {
                    Value::Number(((f * k) as i64).into())
                } else {
                    Value::Number((f * k).into())
                };
            } else {
                *node = scalar(rng);
            }
        }
        // Deep nesting.
        5 => {
            let depth = *rng.pick(&[20, 130, 200]);
            let mut v = node.clone();
            for _ in 0..depth {
                let mut m = Mapping::new();
                m.insert("a".into(), v);
                v = Value::Mapping(m);
            }
            *node = v;
        }
        // A key removed, or an unknown key added.
        6 => match node {
            Value::Mapping(m) if !m.is_empty() => {
                let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
                m.remove(&k);
            }
            Value::Mapping(m) => {
                m.insert("zzUnknownField".into(), scalar(rng));
            }
            Value::Sequence(s) if !s.is_empty() => {
                s.remove(rng.below(s.len()));
            }
            _ => *node = Value::Null,
        },
        7 => match node {
            Value::Mapping(m) => {
                m.insert("zzUnknownField".into(), scalar(rng));
            }
            _ => *node = scalar(rng),
        },
        // A list grown huge (thousands of classes, pools, candidates...).
        8 => match node {
            Value::Sequence(s) if !s.is_empty() => {
                let first = s[0].clone();
                let n = *rng.pick(&[2, 50, 5000]);
                s.extend(std::iter::repeat_n(first, n));
            }
            _ => *node = Value::Sequence(vec![Value::Null; 3]),
        },
        // A huge or strange string in place of a string.
        _ => *node = Value::String(huge_string(rng)),
    }
}

/// `text` with 1-3 mutations of its documents, plus sometimes one at the text level (a duplicated
/// line: duplicate keys or broken YAML).
fn mutated_text(text: &str, rng: &mut Rng) -> String {
    let mut docs = docs_of(text);
    if docs.is_empty() {
        docs.push(Value::Null);
    }
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(docs.len());
        mutate(&mut docs[i], rng);
    }
    let mut out: String =
        docs.iter().map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap())).collect();
    out = out.replace(BIG_INT, "99999999999999999999999");
    if rng.below(10) == 0 {
        let lines: Vec<&str> = out.lines().collect();
        let i = rng.below(lines.len());
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l.insert(i, lines[i].to_string());
        out = l.join("\n");
    }
    out
}

// ---- one case ----

/// What a case ended with (its digest is compared across two runs of the same seed).
#[derive(Debug, Default, Clone, PartialEq)]
struct CaseResult {
    /// Input errors seen, as "field: problem".
    errors: Vec<String>,
    /// Errors that do not name a field.
    fieldless: Vec<String>,
    /// Simulations that ran to the end or to their bound.
    simulated: usize,
    /// Failures of a run that are not input errors nor its bounds.
    engine: Vec<String>,
    /// Failures of an external renderer ([`external`]).
    external: usize,
}

/// Whether `e` is a failure of an external renderer (`kubectl kustomize`, `helm template`) passed
/// on as it is: its message is the tool's, located by the tool (counted, reported, not asserted).
fn external(e: &InvalidInput) -> bool {
    e.problem.contains("kustomize failed") || e.problem.contains("helm template failed")
}

impl CaseResult {
    fn check(&mut self, e: &InvalidInput, vocab: &HashSet<String>) {
        if external(e) {
            // The tool's own message carries its clock and process id: kept apart, by count.
            self.external += 1;
            return;
        }
        let s = format!("{}: {}", e.field, e.problem);
        if !names_a_field(e, vocab) {
            self.fieldless.push(s.chars().take(400).collect());
        }
        self.errors.push(s.chars().take(200).collect());
    }
}

/// A bounded run of `r`: the fuzz budget first, then at most [`MAX_EVENTS`] events and
/// [`MAX_REQUESTS`] requests.
fn bounded_run(
    r: &sim_scenario::Resolved,
    trace: Option<std::sync::Arc<blis_sim::workload::Trace>>,
    out: &mut CaseResult,
    vocab: &HashSet<String>,
) {
    let estimate = budget::estimate(r, trace.as_deref());
    if let Err(e) = Budget::default().check(&estimate) {
        out.check(&e, vocab);
        return;
    }
    if FUZZ_BUDGET.check(&estimate).is_err() {
        return; // valid, but too big to simulate 10,000 times
    }
    let opts = SimOptions { max_events: Some(MAX_EVENTS), ..SimOptions::default() };
    let limits = RunLimits {
        deadline: Instant::now() + Duration::from_secs(3600),
        wall: Duration::from_secs(3600),
        max_requests: MAX_REQUESTS,
    };
    let mut obs = LimitObserver::new(None, Some(limits));
    match sim_scenario::simulate(r, trace, &opts, &mut obs) {
        Ok(_)
        | Err(RunError::Sim(SimError::TooManyEvents(_)))
        | Err(RunError::Sim(SimError::Cancelled { .. })) => out.simulated += 1,
        Err(RunError::Invalid(e)) => out.check(&e, vocab),
        Err(RunError::Sim(e)) => out.engine.push(format!("{}: {e}", r.name)),
    }
}

/// The CLI's path: read the file or folder (imports included), resolve, run bounded.
fn cli_path(entry: &Entry, out: &mut CaseResult, vocab: &HashSet<String>) {
    match entry.kind {
        EntryKind::Sweep => {
            let file = match blis_plan::sweep::load_sweep(&entry.root) {
                Ok(f) => f,
                Err(e) => return out.check(&e, vocab),
            };
            let candidates = match blis_plan::sweep::plan(&file.spec) {
                Ok(c) => c,
                Err(e) => return out.check(&e, vocab),
            };
            for c in candidates.iter().take(2) {
                match blis_import::resolve(&c.name, &c.spec) {
                    Ok(r) => bounded_run(&r, file.trace.clone(), out, vocab),
                    Err(e) => out.check(&e, vocab),
                }
            }
        }
        EntryKind::Scenarios | EntryKind::Folder => {
            let loaded = match load::load_paths(std::slice::from_ref(&entry.root)) {
                Ok(l) => l,
                Err(e) => return out.check(&e, vocab),
            };
            for l in loaded {
                match blis_import::resolve(&l.manifest.metadata.name, &l.manifest.spec) {
                    Ok(r) => bounded_run(&r, l.trace.clone(), out, vocab),
                    Err(e) => out.check(&e, vocab),
                }
            }
        }
    }
}

/// The controller's path: each object's spec as the API server would hold it (JSON), decoded as
/// the controller decodes it, its names checked, then `prepare` against the folder's objects.
fn controller_path(entry: &Entry, out: &mut CaseResult, vocab: &HashSet<String>) {
    let refs = Referenced { objects: entry.objects.clone(), ..Default::default() };
    let mut paths = Vec::new();
    if entry.root.is_dir() {
        yaml_files(&entry.root, &mut paths);
    } else {
        paths.push(entry.root.clone());
    }
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        for doc in docs_of(&text) {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind != "SimulationScenario" && kind != "SimulationSweep" {
                continue;
            }
            let Some(spec) = doc.get("spec") else { continue };
            // What the API server stores is JSON (no NaN, string keys only).
            let Ok(json) = serde_json::to_string(spec) else { continue };
            let name = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("fuzz")
                .to_string();
            if kind == "SimulationSweep" {
                match watched::parse::<SimulationSweepSpec>(&json, "spec")
                    .and_then(|s| sweep_steps::prepare(&s))
                {
                    Ok(_) => {}
                    Err(e) => out.check(&e, vocab),
                }
                continue;
            }
            let prepared = watched::parse::<ScenarioSpec>(&json, "spec")
                .and_then(|s| scenario_steps::check_names(&s).map(|()| s))
                .and_then(|s| scenario_steps::prepare(&name, &s, &refs));
            match prepared {
                Ok(p) => {
                    let e = budget::estimate(&p.resolved, p.trace.as_deref());
                    if let Err(e) = Budget::default().check(&e) {
                        out.check(&e, vocab);
                    }
                }
                Err(e) => out.check(&e, vocab),
            }
        }
    }
}

/// Runs case `i` of `seed`: mutates one file of one entry, sends it down both paths, restores it.
fn run_case(corpus: &[Entry], vocab: &HashSet<String>, seed: u64, i: u64) -> Result<CaseResult, String> {
    let mut rng = Rng(seed ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let entry = &corpus[(i as usize) % corpus.len()];
    let (file, original) = rng.pick(&entry.files);
    let text = mutated_text(original, &mut rng);
    let mut vocab = vocab.clone();
    docs_of(&text).iter().for_each(|d| keys_of(d, &mut vocab));
    std::fs::write(file, &text).unwrap();
    FUZZING.with(|f| f.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut out = CaseResult::default();
        cli_path(entry, &mut out, &vocab);
        controller_path(entry, &mut out, &vocab);
        out
    }));
    FUZZING.with(|f| f.set(false));
    std::fs::write(file, original).unwrap();
    result.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let at = LAST_PANIC.with(|l| l.borrow_mut().take()).unwrap_or_default();
        format!("case {i} ({}): panicked at {at}: {msg}", file.display())
    })
}

thread_local! {
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Panics of the fuzzing thread are recorded (where they happened), not printed; every other
/// thread's go to the previous hook.
fn install_quiet_hook() {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if FUZZING.with(|f| f.get()) {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            LAST_PANIC.with(|l| *l.borrow_mut() = Some(at));
        } else {
            prev(info);
        }
    }));
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map(|v| v.parse().expect("a number")).unwrap_or(default)
}

#[test]
fn mutated_manifests_never_panic_and_every_error_names_a_field() {
    let cases = env_u64("BLIS_FUZZ_CASES", 300);
    let seed = env_u64("BLIS_FUZZ_SEED", 15);
    let tmp_dir = crate::common::temp_dir("blis-fuzz-");
    let tmp = tmp_dir.path();
    let corpus = corpus(tmp);
    assert!(corpus.len() >= 20, "the corpus holds {} entries", corpus.len());
    let vocab = vocabulary(&corpus);
    install_quiet_hook();
    let started = Instant::now();
    let (mut panics, mut fieldless, mut engine) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
    let mut external = 0usize;
    let (mut errors, mut simulated, mut slowest) = (0usize, 0usize, (Duration::ZERO, 0));
    let mut results = Vec::with_capacity(cases as usize);
    for i in 0..cases {
        let t = Instant::now();
        let r = run_case(&corpus, &vocab, seed, i);
        slowest = slowest.max((t.elapsed(), i));
        if t.elapsed() > Duration::from_secs(2) {
            eprintln!("fuzz: case {i} took {:.1} s", t.elapsed().as_secs_f64());
        }
        match &r {
            Ok(c) => {
                errors += c.errors.len();
                simulated += c.simulated;
                fieldless.extend(c.fieldless.iter().map(|f| format!("case {i}: {f}")));
                engine.extend(c.engine.iter().map(|f| format!("case {i}: {f}")));
                external += c.external;
            }
            Err(p) => panics.push(p.clone()),
        }
        results.push(r);
    }
    let wall = started.elapsed();
    eprintln!(
        "fuzz: {cases} mutated manifests (seed {seed}, {} corpus entries): panics={}, errors={errors} (without a field: {}; of an external renderer: {external}), simulations={simulated}, engine failures={}, {:.1} s (slowest case {} took {:.2} s)",
        corpus.len(),
        panics.len(),
        fieldless.len(),
        engine.len(),
        wall.as_secs_f64(),
        slowest.1,
        slowest.0.as_secs_f64()
    );
    for p in panics.iter().take(20) {
        eprintln!("PANIC {p}");
    }
    for f in fieldless.iter().take(40) {
        eprintln!("NO FIELD {f}");
    }
    for f in engine.iter().take(20) {
        eprintln!("ENGINE {f}");
    }
    // Determinism: the same seed gives the same cases and the same outcomes.
    for i in (0..cases).step_by((cases as usize / 50).max(1)) {
        assert_eq!(
            run_case(&corpus, &vocab, seed, i),
            results[i as usize],
            "case {i} of seed {seed} differs on a rerun"
        );
    }
    assert!(panics.is_empty(), "{} panics", panics.len());
    assert!(fieldless.is_empty(), "{} errors do not name a field", fieldless.len());
    assert!(engine.is_empty(), "{} runs failed inside the engine", engine.len());
}

#[test]
fn the_field_checker_accepts_paths_of_known_keys_only() {
    let vocab: HashSet<String> = ["spec", "replicas", "classes", "priority", "args", "containers", "kind"]
        .into_iter()
        .map(String::from)
        .collect();
    let e = |field: &str, problem: &str| InvalidInput::new(field, problem, "fix");
    for ok in [
        "spec",
        "spec.replicas",
        "s: spec.workload.classes[0].priority",
        "examples/a.yaml: scen: spec.classes[12]",
        "vllm.yaml: Deployment vllm: spec.template.spec.containers[0].args",
        "kind",
        "LeaderWorkerSet x in a.yaml: spec.template.spec: nvidia.com/gpu.product",
    ] {
        assert!(names_a_field(&e(ok, "is wrong"), &vocab), "{ok} names a field");
    }
    for bad in [
        "",
        "document 1",
        "/tmp/x/folder",
        "examples/a.yaml",
        "spec.replicas.",
        "spec..replicas",
        "spec.classes[x]",
        "spec.classes[0",
        "spec.notAKnownKey",
        "scen: sweep",
        "a/b/../../etc/passwd",
    ] {
        assert!(!names_a_field(&e(bad, "is wrong"), &vocab), "{bad:?} does not name a field");
    }
    assert!(names_a_field(
        &e("document 1", "is not valid YAML: did not find expected key at line 3 column 1"),
        &vocab
    ));
    assert!(names_a_field(
        &e("a.yaml", "is a Helm template ({{ at line 2 column 7) that needs rendering"),
        &vocab
    ));
    assert!(!names_a_field(&e("a.yaml", "is a Helm template that needs rendering"), &vocab));
    assert!(!names_a_field(&e("document 1", "is not valid YAML: recursion limit exceeded"), &vocab));
    assert_eq!(last_key("a.b[0][1].c"), Some("c"));
    assert_eq!(last_key("a.b[3]"), Some("b"));
}

#[test]
fn mutations_are_deterministic_and_change_the_text() {
    let text = std::fs::read_to_string(repo("examples/quickstart.yaml")).unwrap();
    let (mut a, mut b) = (Rng(7), Rng(7));
    let mut changed = 0;
    for _ in 0..200 {
        let (x, y) = (mutated_text(&text, &mut a), mutated_text(&text, &mut b));
        assert_eq!(x, y);
        changed += usize::from(docs_of(&x) != docs_of(&text));
    }
    assert!(changed > 150, "only {changed} of 200 mutations changed the document");
}
