//! Generator-level tests: whole workloads built from YAML, as a manifest would give them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn spec(yaml: &str) -> WorkloadSpec {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test yaml: {e}\n{yaml}"))
}

fn gen(yaml: &str, seed: u64) -> WorkloadGen {
    WorkloadGen::new(&spec(yaml), seed, None).unwrap_or_else(|e| panic!("{e}"))
}

fn drain(g: &mut WorkloadGen) -> Vec<Request> {
    std::iter::from_fn(|| g.pop()).collect()
}

fn field_of(yaml: &str) -> String {
    match WorkloadGen::new(&spec(yaml), 1, None) {
        Ok(_) => panic!("expected an error for\n{yaml}"),
        Err(e) => {
            assert!(!e.problem.is_empty() && !e.fix.is_empty());
            e.field
        }
    }
}

const TWO_CLASSES: &str = r#"
durationSeconds: 1000
arrival: {process: poisson, ratePerSecond: 20}
classes:
- name: chat
  weight: 0.8
  inputTokens: {distribution: lognormal, mean: 600, stdDev: 200, min: 16, max: 4000}
  outputTokens: {distribution: normal, mean: 250, stdDev: 50, min: 1, max: 1024}
  prefix: {groups: 10, tokens: 100}
- name: batch
  weight: 0.2
  inputTokens: {distribution: uniform, min: 100, max: 200}
  outputTokens: {distribution: exponential, mean: 100}
  prefix: {groups: 10, tokens: 100}
"#;

#[test]
fn manifest_example_parses_and_validates() {
    let s = spec(
        r#"
durationSeconds: 60
maxRequests: 10000
arrival:
  process: gamma
  ratePerSecond: 20
  cv: 2.0
classes:
- name: chat
  weight: 0.8
  inputTokens:  {distribution: lognormal, mean: 600, stdDev: 200, min: 16, max: 4000}
  outputTokens: {distribution: normal, mean: 250, stdDev: 50, min: 1, max: 1024}
  prefix: {groups: 10, tokens: 100, questionsPerGroup: 10}
  session: {turns: {distribution: fixed, value: 4}, thinkTimeMs: {distribution: exponential, mean: 3000}, accumulate: true}
  slo: {ttftMs: 500, itlMs: 50, e2eMs: 20000, attainment: 0.9}
  priority: 0
- name: batch
  arrival:
    process: normalizedExponential
    stages: [{ratePerSecond: 5, durationSeconds: 30}, {ratePerSecond: 10, durationSeconds: 30}]
  inputTokens: {distribution: empirical, values: [{value: 100, weight: 1}, {value: 2000, weight: 3}]}
  outputTokens: {distribution: lognormal, mu: 5, sigma: 0.5}
  priority: -1
"#,
    );
    validate(&s).unwrap();
    let round_trip: WorkloadSpec = serde_yaml::from_str(&serde_yaml::to_string(&s).unwrap()).unwrap();
    assert_eq!(round_trip, s);
    assert_eq!(s.classes[1].arrival.as_ref().unwrap().process, ArrivalProcess::NormalizedExponential);
    let g = WorkloadGen::new(&s, 3, None).unwrap();
    assert_eq!(g.class_names(), vec!["chat".to_string(), "batch".to_string()]);
    // Unknown keys are rejected rather than ignored.
    assert!(serde_yaml::from_str::<WorkloadSpec>("classes: []\nratePerSecond: 3\n").is_err());
    assert!(serde_yaml::from_str::<LengthDist>("{distribution: fixed, value: 3, mean: 2}").is_err());
    // The schema can be generated (for the CRD).
    let schema = serde_json::to_string(&schemars::schema_for!(WorkloadSpec)).unwrap();
    assert!(schema.contains("ratePerSecond") && schema.contains("questionsPerGroup"));
}

#[test]
fn same_seed_same_sequence_other_seed_differs() {
    let a = drain(&mut gen(TWO_CLASSES, 42));
    let b = drain(&mut gen(TWO_CLASSES, 42));
    let c = drain(&mut gen(TWO_CLASSES, 43));
    assert!(a.len() > 10_000);
    assert_eq!(a, b);
    assert_ne!(
        a.iter().map(|r| r.arrival_us).collect::<Vec<_>>(),
        c.iter().map(|r| r.arrival_us).collect::<Vec<_>>()
    );
    assert_ne!(
        a.iter().map(|r| r.input_tokens).take(100).collect::<Vec<_>>(),
        c.iter().map(|r| r.input_tokens).take(100).collect::<Vec<_>>()
    );
}

/// The requests a run can make room for before it starts: a cap's or a trace's, counting down as
/// requests are handed out; none for a stream bounded only by time.
#[test]
fn expected_requests_are_the_cap_or_the_trace_rows_left() {
    let capped = "maxRequests: 5\narrival: {process: poisson, ratePerSecond: 10}\nclasses: [{name: a, inputTokens: {distribution: fixed, value: 10}, outputTokens: {distribution: fixed, value: 5}}]\n";
    let mut g = gen(capped, 1);
    assert_eq!(g.expected_requests(), 5);
    g.pop();
    g.pop();
    assert_eq!(g.expected_requests(), 3);
    drain(&mut g);
    assert_eq!(g.expected_requests(), 0);
    assert_eq!(gen(TWO_CLASSES, 1).expected_requests(), 0, "a duration alone says nothing");
    let text = "arrival_time_s,input_tokens,output_tokens\n0.0,10,5\n0.5,12,5\n1.0,9,5\n";
    let traced = "trace: {path: x.csv}\nclasses: [{name: a}]\n";
    let mut g = WorkloadGen::new(&spec(traced), 1, Some(Arc::new(Trace::parse_csv(text)))).unwrap();
    assert_eq!(g.expected_requests(), 3);
    g.pop();
    assert_eq!(g.expected_requests(), 2);
    let huge = "maxRequests: 900000000\narrival: {process: poisson, ratePerSecond: 10}\nclasses: [{name: a, inputTokens: {distribution: fixed, value: 10}, outputTokens: {distribution: fixed, value: 5}}]\n";
    assert_eq!(gen(huge, 1).expected_requests(), crate::workload::source::MAX_EXPECTED);
}

#[test]
fn ids_sequential_arrivals_ordered_and_rate_right() {
    let mut g = gen(TWO_CLASSES, 5);
    let first = g.peek_time();
    let rs = drain(&mut g);
    assert_eq!(first, Some(rs[0].arrival_us));
    assert!(rs.iter().enumerate().all(|(i, r)| r.id == i as u64));
    assert!(rs.windows(2).all(|w| w[0].arrival_us <= w[1].arrival_us));
    assert!(rs.iter().all(|r| r.arrival_us < 1_000_000_000));
    let rate = rs.len() as f64 / 1000.0;
    assert!((rate - 20.0).abs() / 20.0 < 0.03, "rate {rate}");
    assert_eq!(g.generated(), rs.len() as u64);
    assert_eq!(g.peek_time(), None);
}

#[test]
fn class_weights_are_respected() {
    let rs = drain(&mut gen(TWO_CLASSES, 9));
    let chat = rs.iter().filter(|r| r.class == 0).count() as f64 / rs.len() as f64;
    assert!((chat - 0.8).abs() < 0.02, "chat share {chat}");
    // Lengths follow each class's distribution.
    assert!(rs.iter().filter(|r| r.class == 1).all(|r| (200..=300).contains(&r.input_tokens)));
    assert!(rs.iter().filter(|r| r.class == 0).all(|r| (116..=4100).contains(&r.input_tokens)));
    assert!(rs.iter().filter(|r| r.class == 0).all(|r| (1..=1024).contains(&r.output_tokens)));
}

#[test]
fn own_arrival_streams_are_independent_and_merged() {
    let yaml = r#"
durationSeconds: 500
arrival: {ratePerSecond: 10}
classes:
- name: shared
  inputTokens: {distribution: fixed, value: 10}
  outputTokens: {distribution: fixed, value: 10}
- name: own
  weight: 100
  arrival: {process: constant, ratePerSecond: 4}
  inputTokens: {distribution: fixed, value: 20}
  outputTokens: {distribution: fixed, value: 20}
"#;
    let rs = drain(&mut gen(yaml, 1));
    let own: Vec<_> = rs.iter().filter(|r| r.class == 1).collect();
    assert_eq!(own.len(), 1999, "constant 4/s over 500 s, first one gap after 0");
    assert!(own.iter().all(|r| r.input_tokens == 20 && r.arrival_us % 250_000 == 0));
    let shared = rs.len() - own.len();
    assert!((shared as f64 - 5000.0).abs() < 300.0, "{shared}");
    assert!(rs.windows(2).all(|w| w[0].arrival_us <= w[1].arrival_us));
}

#[test]
fn normalized_exponential_through_the_generator() {
    let yaml = r#"
arrival:
  process: normalizedExponential
  stages: [{ratePerSecond: 5, durationSeconds: 600}, {ratePerSecond: 10, durationSeconds: 600}]
classes:
- name: codegen
  inputTokens: {distribution: fixed, value: 466}
  outputTokens: {distribution: fixed, value: 247}
  prefix: {groups: 10, tokens: 100, questionsPerGroup: 10}
"#;
    let rs = drain(&mut gen(yaml, 11));
    assert_eq!(rs.len(), 9000);
    assert_eq!(rs.iter().filter(|r| r.arrival_us < 600_000_000).count(), 3000);
    assert!(rs.iter().all(|r| r.input_tokens == 566 && r.output_tokens == 247 && r.prompt.prefix_len == 100));
    let prompts: HashSet<_> = rs.iter().map(|r| (r.prompt.prefix_key, r.prompt.body_key)).collect();
    assert_eq!(prompts.len(), 100, "10 groups x 10 questions, all seen over 9000 requests");
}

#[test]
fn prefix_groups_share_system_prompts() {
    let rs = drain(&mut gen(TWO_CLASSES, 2));
    let mut keys: HashMap<u16, HashSet<u64>> = HashMap::new();
    for r in &rs {
        assert_eq!(r.prompt.prefix_len, 100);
        keys.entry(r.class).or_default().insert(r.prompt.prefix_key);
    }
    assert_eq!(keys[&0].len(), 10);
    assert_eq!(keys[&1].len(), 10);
    assert!(keys[&0].is_disjoint(&keys[&1]), "classes do not share system prompts");
    // Group choice is uniform.
    let mut per_group: HashMap<u64, usize> = HashMap::new();
    for r in rs.iter().filter(|r| r.class == 0) {
        *per_group.entry(r.prompt.prefix_key).or_default() += 1;
    }
    let n = rs.iter().filter(|r| r.class == 0).count() as f64;
    assert!(per_group.values().all(|&c| (c as f64 / n - 0.1).abs() < 0.01));
    // Without a question bank every body is unique.
    let bodies: HashSet<u64> = rs.iter().map(|r| r.prompt.body_key).collect();
    assert_eq!(bodies.len(), rs.len());
}

#[test]
fn question_bank_repeats_exactly() {
    let yaml = r#"
maxRequests: 5000
arrival: {ratePerSecond: 100}
classes:
- name: q
  inputTokens: {distribution: normal, mean: 400, stdDev: 100, min: 1}
  outputTokens: {distribution: normal, mean: 100, stdDev: 30, min: 1}
  prefix: {groups: 3, tokens: 50, questionsPerGroup: 4}
"#;
    let rs = drain(&mut gen(yaml, 8));
    assert_eq!(rs.len(), 5000);
    let mut by_body: HashMap<u64, (u64, u32)> = HashMap::new();
    let mut outputs = HashSet::new();
    for r in &rs {
        let seen = by_body.entry(r.prompt.body_key).or_insert((r.prompt.prefix_key, r.input_tokens));
        assert_eq!(*seen, (r.prompt.prefix_key, r.input_tokens), "a repeated question repeats exactly");
        outputs.insert(r.output_tokens);
    }
    assert_eq!(by_body.len(), 12);
    assert!(outputs.len() > 50, "output length is drawn per request");
    let lens: HashSet<u32> = by_body.values().map(|v| v.1).collect();
    assert!(lens.len() > 1, "questions have different lengths");
}

const SESSIONS: &str = r#"
durationSeconds: 100
arrival: {process: constant, ratePerSecond: 1}
classes:
- name: chat
  inputTokens: {distribution: fixed, value: 50}
  outputTokens: {distribution: uniform, min: 10, max: 30}
  prefix: {groups: 2, tokens: 100}
  session: {turns: {distribution: fixed, value: 4}, thinkTimeMs: {distribution: fixed, value: 3000}}
"#;

/// Pops everything, completing each request `service_us` after it arrives (in time order).
fn run_closed_loop(g: &mut WorkloadGen, service_us: i64, fail: impl Fn(&Request) -> bool) -> Vec<Request> {
    let mut out = Vec::new();
    let mut in_flight: Vec<Request> = Vec::new();
    loop {
        // Complete whatever finishes before the next arrival.
        in_flight.sort_by_key(|r| std::cmp::Reverse(r.arrival_us));
        let next = g.peek_time();
        match (in_flight.last(), next) {
            (Some(r), n) if n.is_none_or(|t| r.arrival_us + service_us <= t) => {
                let r = in_flight.pop().unwrap();
                g.on_request_done(&r, r.arrival_us + service_us, !fail(&r));
            }
            (_, Some(_)) => {
                let r = g.pop().unwrap();
                in_flight.push(r.clone());
                out.push(r);
            }
            (None, None) => return out,
            _ => unreachable!(),
        }
    }
}

#[test]
fn sessions_follow_completions() {
    let mut g = gen(SESSIONS, 4);
    // Without completions, only the 99 opening turns arrive.
    let mut g2 = gen(SESSIONS, 4);
    let openers = drain(&mut g2);
    assert_eq!(openers.len(), 99);
    assert!(openers.iter().all(|r| r.session.is_some_and(|s| s.turn == 0 && !s.last_turn)));

    let rs = run_closed_loop(&mut g, 2_000_000, |_| false);
    assert_eq!(rs.len(), 99 * 4);
    assert!(rs.windows(2).all(|w| w[0].arrival_us <= w[1].arrival_us));
    let mut sessions: HashMap<u64, Vec<&Request>> = HashMap::new();
    for r in &rs {
        sessions.entry(r.session.unwrap().session).or_default().push(r);
    }
    assert_eq!(sessions.len(), 99);
    for turns in sessions.values() {
        assert_eq!(turns.len(), 4);
        for (n, pair) in turns.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            assert_eq!(b.session.unwrap().turn, n as u32 + 1);
            assert_eq!(b.input_tokens, a.input_tokens + a.output_tokens + 50, "history + new question");
            assert_eq!(b.arrival_us, a.arrival_us + 2_000_000 + 3_000_000, "done + think time");
            assert_eq!(b.prompt.prefix_key, a.prompt.prefix_key);
            assert_eq!(b.prompt.body_key, a.prompt.body_key, "earlier turns are a prefix of later ones");
        }
        assert_eq!(turns[0].input_tokens, 150);
        assert!(turns[3].session.unwrap().last_turn);
        assert!(turns[..3].iter().all(|r| !r.session.unwrap().last_turn));
    }
    // Sessions opened near the end run past durationSeconds.
    assert!(rs.iter().any(|r| r.arrival_us >= 100_000_000));
    assert!(rs.iter().filter(|r| r.session.unwrap().turn == 0).all(|r| r.arrival_us < 100_000_000));
}

#[test]
fn failed_turn_ends_session_and_duplicates_are_ignored() {
    let mut g = gen(SESSIONS, 4);
    let rs = run_closed_loop(&mut g, 1_000, |r| r.session.unwrap().turn == 1);
    assert_eq!(rs.len(), 99 * 2);
    // A duplicate completion callback does not schedule a second follow-up.
    let mut g = gen(SESSIONS, 4);
    let r = g.pop().unwrap();
    g.on_request_done(&r, r.arrival_us + 10, true);
    g.on_request_done(&r, r.arrival_us + 20, true);
    let mut follow = 0;
    while let Some(x) = g.pop() {
        follow += usize::from(x.session.unwrap().turn > 0);
    }
    assert_eq!(follow, 1);
}

#[test]
fn non_accumulating_sessions_send_fresh_prompts() {
    let yaml = SESSIONS.replace("value: 3000}}", "value: 3000}, accumulate: false}");
    let mut g = gen(&yaml, 4);
    let rs = run_closed_loop(&mut g, 1_000, |_| false);
    assert_eq!(rs.len(), 99 * 4);
    assert!(rs.iter().all(|r| r.input_tokens == 150));
    let bodies: HashSet<u64> = rs.iter().map(|r| r.prompt.body_key).collect();
    assert_eq!(bodies.len(), rs.len());
}

#[test]
fn max_requests_counts_follow_ups() {
    let yaml = format!("{SESSIONS}maxRequests: 50\n");
    let mut g = gen(&yaml, 4);
    let rs = run_closed_loop(&mut g, 1_000, |_| false);
    assert_eq!(rs.len(), 50);
    assert!(rs.iter().any(|r| r.session.unwrap().turn > 0));
    assert_eq!(g.peek_time(), None);
    assert_eq!(g.pop(), None);
}

#[test]
fn variable_turns_and_think_times() {
    let yaml = r#"
durationSeconds: 200
arrival: {ratePerSecond: 2}
classes:
- name: chat
  inputTokens: {distribution: fixed, value: 20}
  outputTokens: {distribution: fixed, value: 5}
  session:
    turns: {distribution: uniform, min: 1, max: 5}
    thinkTimeMs: {distribution: exponential, mean: 1000}
"#;
    let mut g = gen(yaml, 21);
    let rs = run_closed_loop(&mut g, 500_000, |_| false);
    let mut turns: HashMap<u64, u32> = HashMap::new();
    for r in &rs {
        let s = r.session.unwrap();
        let e = turns.entry(s.session).or_default();
        *e = (*e).max(s.turn + 1);
        if s.last_turn {
            assert_eq!(s.turn + 1, *e);
        }
    }
    let mean = turns.values().map(|&t| f64::from(t)).sum::<f64>() / turns.len() as f64;
    assert!((mean - 3.0).abs() < 0.2, "mean turns {mean}");
    assert!(turns.values().all(|&t| (1..=5).contains(&t)));
}

fn trace_path(name: &str) -> String {
    format!("{}/../shared/validation/traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn replays_validation_trace_row_for_row() {
    let path = trace_path("train-20260217-155451.csv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {path} not found");
        return;
    };
    let yaml = r#"
trace: {path: traces/train-20260217-155451.csv}
classes:
- name: codegen
  slo: {ttftMs: 100}
"#;
    let mut g = WorkloadGen::new(&spec(yaml), 1, Some(Arc::new(Trace::parse_csv(&text)))).unwrap();
    let rs = drain(&mut g);
    let rows: Vec<Vec<&str>> =
        text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 9000);
    assert_eq!(rs.len(), rows.len());
    for (r, row) in rs.iter().zip(&rows) {
        let arrival: f64 = row[1].parse().unwrap();
        let input: u32 = row[3].parse().unwrap();
        let output: u32 = row[4].parse().unwrap();
        assert_eq!(r.arrival_us, (arrival * 1e6).round() as i64);
        assert_eq!(r.input_tokens, input);
        assert_eq!(r.output_tokens, output.max(1));
        assert_eq!(r.class, 0);
        assert_eq!(r.session, None);
    }
    // Every shipped trace replays as is.
    for name in ["eval-02.csv", "eval-09.csv", "train-20260217-231439.csv"] {
        let text = std::fs::read_to_string(trace_path(name)).unwrap();
        let mut g = WorkloadGen::new(&spec(yaml), 1, Some(Arc::new(Trace::parse_csv(&text)))).unwrap();
        assert!(drain(&mut g).len() >= 7200, "{name}");
    }
}

#[test]
fn trace_inline_with_classes_prefix_groups_and_limits() {
    let yaml = r#"
maxRequests: 3
trace:
  timeScale: 2
  prefixTokens: 30
  csv: "arrival_time_us,input_tokens,output_tokens,prefix_group,class\n0,100,10,1,b\n5,20,10,1,\n9,100,10,,a\n10,100,10,2,b\n"
classes:
- name: a
- name: b
"#;
    let rs = drain(&mut gen(yaml, 1));
    assert_eq!(rs.len(), 3);
    assert_eq!(rs.iter().map(|r| r.arrival_us).collect::<Vec<_>>(), vec![0, 10, 18]);
    assert_eq!(rs.iter().map(|r| r.class).collect::<Vec<_>>(), vec![1, 0, 0]);
    assert_eq!((rs[0].prompt.prefix_len, rs[1].prompt.prefix_len, rs[2].prompt.prefix_len), (30, 20, 0));
    assert_eq!(rs[0].prompt.prefix_key, rs[1].prompt.prefix_key);
    assert_ne!(rs[0].prompt.body_key, rs[1].prompt.body_key);

    // Random group assignment for traces without a prefix_group column.
    let yaml = r#"
trace:
  prefixTokens: 10
  prefixGroups: 4
  csv: "arrival_time_s,input_tokens,output_tokens\n0,100,10\n1,100,10\n2,100,10\n3,100,10\n4,100,10\n5,100,10\n6,100,10\n7,100,10\n8,100,10\n9,100,10\n10,100,10\n11,100,10\n"
classes: [{name: a}]
"#;
    let rs = drain(&mut gen(yaml, 1));
    let groups: HashSet<u64> = rs.iter().map(|r| r.prompt.prefix_key).collect();
    assert!(groups.len() > 1 && groups.len() <= 4);
    assert!(rs.iter().all(|r| r.prompt.prefix_len == 10));

    // durationSeconds cuts the replay.
    let yaml = r#"
durationSeconds: 1.5
trace: {csv: "arrival_time_s,input_tokens,output_tokens\n0,1,1\n1,1,1\n2,1,1\n"}
classes: [{name: a}]
"#;
    assert_eq!(drain(&mut gen(yaml, 1)).len(), 2);
}

#[test]
fn warm_prefixes_mark_the_share_of_rows_drawn_from_the_seed() {
    let rows: String = (0..2000).map(|k| format!("{k},{},10\n", 100 + k % 7)).collect();
    let yaml = |w: &str| {
        format!("trace:\n  warmPrefix: {w}\n  csv: \"arrival_time_ms,input_tokens,output_tokens\\n{}\"\nclasses: [{{name: a}}]\n", rows.replace('\n', "\\n"))
    };
    let rs = drain(&mut gen(&yaml("{share: 0.3, fraction: 0.55}"), 7));
    let warm: Vec<&Request> = rs.iter().filter(|r| r.warm_tokens > 0).collect();
    let share = warm.len() as f64 / rs.len() as f64;
    assert!((share - 0.3).abs() < 0.04, "share {share}");
    assert!(warm.iter().all(|r| r.warm_tokens == (f64::from(r.input_tokens) * 0.55).floor() as u32));
    assert_eq!(drain(&mut gen(&yaml("{share: 0.3, fraction: 0.55}"), 7)), rs, "same seed, same rows");
    assert_ne!(drain(&mut gen(&yaml("{share: 0.3, fraction: 0.55}"), 8)), rs, "another seed draws others");
    let plain = drain(&mut gen(&yaml("{share: 0, fraction: 0.55}"), 7));
    assert!(plain.iter().all(|r| r.warm_tokens == 0));
    let strip =
        |v: &[Request]| v.iter().map(|r| (r.arrival_us, r.input_tokens, r.prompt)).collect::<Vec<_>>();
    assert_eq!(strip(&plain), strip(&rs), "warm prefixes change nothing else");
    assert_eq!(field_of(&yaml("{share: 1.5, fraction: 0.5}")), "spec.workload.trace.warmPrefix.share");
}

#[test]
fn trace_errors_name_field_and_row() {
    let e = WorkloadGen::new(&spec("trace: {path: x.csv}\nclasses: [{name: a}]\n"), 1, None).err().unwrap();
    assert_eq!(e.field, "spec.workload.trace.path");
    let yaml = "trace: {csv: \"arrival_time_s,input_tokens,output_tokens,class\\n0,1,1,a\\n1,1,1,nope\\n\"}\nclasses: [{name: a}]\n";
    let e = WorkloadGen::new(&spec(yaml), 1, None).err().unwrap();
    assert_eq!(e.field, "spec.workload.trace");
    assert!(e.problem.contains("row 2") && e.problem.contains("class"), "{}", e.problem);
}

#[test]
fn validation_errors_name_the_field() {
    let base_class =
        "inputTokens: {distribution: fixed, value: 1}, outputTokens: {distribution: fixed, value: 1}";
    let cases: Vec<(String, &str)> = vec![
        ("durationSeconds: 1\nclasses: []\n".into(), "spec.workload.classes"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}, {{name: a, {base_class}}}]\n"), "spec.workload.classes[1].name"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 0}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.ratePerSecond"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: .inf}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.ratePerSecond"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}, {{name: b, arrival: {{ratePerSecond: -2}}, {base_class}}}]\n"), "spec.workload.classes[1].arrival.ratePerSecond"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, weight: -1, {base_class}}}]\n"), "spec.workload.classes[0].weight"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, weight: 0, {base_class}}}]\n"), "spec.workload.classes[0].weight"),
        (format!("durationSeconds: -1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.durationSeconds"),
        (format!("durationSeconds: 1\narrival: {{process: gamma, ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.cv"),
        (format!("durationSeconds: 1\narrival: {{process: gamma, ratePerSecond: 1, cv: 0}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.cv"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1, cv: 2}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.cv"),
        (format!("durationSeconds: 1\narrival: {{stages: [{{ratePerSecond: 1, durationSeconds: 0}}]}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.stages[0].durationSeconds"),
        (format!("arrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload"),
        (format!("maxRequests: 5\narrival: {{process: normalizedExponential, ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival.process"),
        (format!("durationSeconds: 1\nclasses: [{{name: a, {base_class}}}]\n"), "spec.workload.arrival"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, inputTokens: {distribution: normal, mean: 5, stdDev: 1, min: 9, max: 3}, outputTokens: {distribution: fixed, value: 1}}]\n".into(), "spec.workload.classes[0].inputTokens.min"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, inputTokens: {distribution: fixed, value: 1}, outputTokens: {distribution: exponential, mean: 0}}]\n".into(), "spec.workload.classes[0].outputTokens.mean"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, inputTokens: {distribution: normal, mean: 5, stdDev: -1}, outputTokens: {distribution: fixed, value: 1}}]\n".into(), "spec.workload.classes[0].inputTokens.stdDev"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, inputTokens: {distribution: empirical, values: []}, outputTokens: {distribution: fixed, value: 1}}]\n".into(), "spec.workload.classes[0].inputTokens.values"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, inputTokens: {distribution: empirical, values: [{value: 3, weight: 0}]}, outputTokens: {distribution: fixed, value: 1}}]\n".into(), "spec.workload.classes[0].inputTokens.values"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, inputTokens: {distribution: lognormal, mean: 5, sigma: 1}, outputTokens: {distribution: fixed, value: 1}}]\n".into(), "spec.workload.classes[0].inputTokens"),
        ("durationSeconds: 1\narrival: {ratePerSecond: 1}\nclasses: [{name: a, outputTokens: {distribution: fixed, value: 1}}]\n".into(), "spec.workload.classes[0].inputTokens"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}, prefix: {{groups: 0, tokens: 5}}}}]\n"), "spec.workload.classes[0].prefix.groups"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}, session: {{turns: {{distribution: fixed, value: 0}}}}}}]\n"), "spec.workload.classes[0].session.turns.value"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}, session: {{turns: {{distribution: fixed, value: 2}}, thinkTimeMs: {{distribution: fixed, value: -1}}}}}}]\n"), "spec.workload.classes[0].session.thinkTimeMs.value"),
        (format!("durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}, slo: {{attainment: 2}}}}]\n"), "spec.workload.classes[0].slo.attainment"),
        ("trace: {path: a.csv, csv: x}\nclasses: [{name: a}]\n".into(), "spec.workload.trace"),
        ("trace: {csv: x, timeScale: 0}\nclasses: [{name: a}]\n".into(), "spec.workload.trace.timeScale"),
    ];
    for (yaml, field) in cases {
        assert_eq!(field_of(&yaml), field, "for\n{yaml}");
    }
    // The relative form from `validate`, for callers that nest it elsewhere.
    let e = validate(&spec(&format!(
        "durationSeconds: 1\narrival: {{ratePerSecond: 1}}\nclasses: [{{name: a, {base_class}}}, {{name: b, arrival: {{ratePerSecond: 0}}, {base_class}}}]\n"
    )))
    .err()
    .unwrap();
    assert_eq!(e.field, "classes[1].arrival.ratePerSecond");
    assert!(e.problem.contains("got 0"), "{}", e.problem);
}

#[test]
fn long_streams_need_no_per_request_state() {
    let yaml = r#"
maxRequests: 1000000
arrival: {ratePerSecond: 100000}
classes:
- name: a
  inputTokens: {distribution: fixed, value: 10}
  outputTokens: {distribution: fixed, value: 10}
  prefix: {groups: 4, tokens: 5}
"#;
    let mut g = gen(yaml, 1);
    let mut last = i64::MIN;
    let mut n = 0u64;
    while let Some(r) = g.pop() {
        assert!(r.arrival_us >= last);
        last = r.arrival_us;
        n += 1;
    }
    assert_eq!(n, 1_000_000);
    assert_eq!(g.state_sizes(), (0, 0));
}

fn arb_process() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("{process: poisson, ratePerSecond: 50}"),
        Just("{process: gamma, ratePerSecond: 50, cv: 3}"),
        Just("{process: gamma, ratePerSecond: 5000, cv: 0.3}"),
        Just("{process: constant, ratePerSecond: 7}"),
        Just("{process: normalizedExponential, stages: [{ratePerSecond: 100, durationSeconds: 3}, {ratePerSecond: 1000, durationSeconds: 0.5}]}"),
        Just("{process: poisson, stages: [{ratePerSecond: 300, durationSeconds: 1}, {ratePerSecond: 10, durationSeconds: 2}]}"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn arrivals_non_decreasing_with_sequential_ids(seed in any::<u64>(), shared in arb_process(), own in arb_process()) {
        let yaml = format!(r#"
durationSeconds: 4
maxRequests: 3000
arrival: {shared}
classes:
- name: a
  inputTokens: {{distribution: lognormal, mean: 100, stdDev: 80}}
  outputTokens: {{distribution: exponential, mean: 20}}
  session: {{turns: {{distribution: uniform, min: 1, max: 3}}, thinkTimeMs: {{distribution: exponential, mean: 50}}}}
- name: b
  arrival: {own}
  inputTokens: {{distribution: normal, mean: 30, stdDev: 40, min: 1, max: 100}}
  outputTokens: {{distribution: fixed, value: 3}}
"#);
        let mut g = WorkloadGen::new(&spec(&yaml), seed, None).unwrap();
        let rs = run_closed_loop(&mut g, 20_000, |r| r.id % 7 == 3);
        prop_assert!(rs.len() <= 3000);
        for (i, r) in rs.iter().enumerate() {
            prop_assert_eq!(r.id, i as u64);
            prop_assert!(r.input_tokens >= 1 && r.output_tokens >= 1);
            prop_assert!(r.session.is_some_and(|s| s.turn > 0) || r.arrival_us < 4_000_000);
        }
        prop_assert!(rs.windows(2).all(|w| w[0].arrival_us <= w[1].arrival_us));
    }
}

const LADDER: &str = r#"
arrival:
  process: poissonPerSecond
  stages: [{ratePerSecond: 15, durationSeconds: 10}, {ratePerSecond: 3, durationSeconds: 20}, {ratePerSecond: 7.5, durationSeconds: 4}]
classes:
- name: shared-prefix
  inputTokens: {distribution: fixed, value: 12}
  outputTokens: {distribution: fixed, value: 10}
  prefix: {groups: 3, tokens: 60, questionsPerGroup: 2, order: cycle}
"#;

fn stage_sizes(g: &WorkloadGen) -> Vec<u64> {
    g.stages().iter().map(|s| s.sent).collect()
}

#[test]
fn per_second_poisson_sends_floor_rate_times_duration_per_stage() {
    for seed in 0..5 {
        let mut g = gen(LADDER, seed);
        let rs = drain(&mut g);
        assert_eq!(stage_sizes(&g), vec![150, 60, 30], "floor(rate x duration) per stage");
        assert_eq!(rs.len(), 240);
        assert!(rs.windows(2).all(|w| w[0].arrival_us <= w[1].arrival_us));
        // Back to back: stage 1 starts when stage 0's window (or its late last arrival) ends.
        let s = g.stages();
        assert!(s[1].start_us >= 10_000_000 && s[1].first_id == 150, "{:?}", s[1]);
        assert_eq!(s[1].planned, Some(60));
    }
}

#[test]
fn cycled_prompts_restart_at_every_stage() {
    let mut g = gen(LADDER, 3);
    let rs = drain(&mut g);
    let key = |r: &Request| (r.prompt.prefix_key, r.prompt.body_key);
    let first: Vec<_> = rs[..6].iter().map(key).collect();
    assert_eq!(first.iter().collect::<HashSet<_>>().len(), 6, "the 3 x 2 prompts, each once");
    for s in g.stages() {
        let at = s.first_id as usize;
        let again: Vec<_> = rs[at..at + 6].iter().map(key).collect();
        assert_eq!(again, first, "stage {} replays the list from its start", s.index);
    }
    // Within a stage the list wraps around.
    assert_eq!(key(&rs[6]), first[0]);
    let other = drain(&mut gen(LADDER, 4));
    assert_ne!(other[..6].iter().map(key).collect::<Vec<_>>(), first, "the shuffle follows the seed");
}

#[test]
fn drained_stages_wait_for_the_last_completion_and_the_pause() {
    let yaml = LADDER.replace("  stages:", "  betweenStages: {drain: true, pauseSeconds: 30}\n  stages:");
    let service = 25_000_000; // every request takes 25 s
    let mut g = gen(&yaml, 1);
    let rs = run_closed_loop(&mut g, service, |_| false);
    assert_eq!(rs.len(), 240);
    let logs = g.stages().to_vec();
    assert_eq!(stage_sizes(&g), vec![150, 60, 30]);
    for w in logs.windows(2) {
        let last_done = w[0].last_send_us + service;
        assert_eq!(w[1].start_us, last_done + 30_000_000, "next stage = last completion + pause");
        assert!(w[1].first_send_us >= w[1].start_us);
    }
}

#[test]
fn a_bounded_client_delays_sends_in_order() {
    let yaml = format!("{LADDER}client: {{maxInFlight: 4}}\n");
    let service = 2_000_000;
    let mut g = gen(&yaml, 2);
    let rs = run_closed_loop(&mut g, service, |_| false);
    assert_eq!(rs.len(), 240, "nothing is lost, only delayed");
    // Never more than 4 in flight: request i + 4 leaves no earlier than request i finishes.
    for w in rs.windows(5) {
        assert!(w[4].arrival_us >= w[0].arrival_us + service, "{} vs {}", w[4].arrival_us, w[0].arrival_us);
    }
    let delayed: u64 = g.stages().iter().map(|s| s.delayed).sum();
    assert!(delayed > 100, "15/s against 4 slots of 2 s: most requests wait ({delayed})");
    let unbounded = drain(&mut gen(LADDER, 2));
    assert_eq!(unbounded.len(), rs.len());
    assert!(rs.iter().zip(&unbounded).all(|(a, b)| a.arrival_us >= b.arrival_us));
}

#[test]
fn timed_out_requests_end_a_drained_stage_at_their_deadline() {
    let yaml = LADDER.replace("  stages:", "  betweenStages: {drain: true, pauseSeconds: 5}\n  stages:")
        + "client: {timeoutSeconds: 3}\n";
    // Requests never finish in time (100 s): each stage ends at its last request's deadline.
    let mut g = gen(&yaml, 5);
    let rs = run_closed_loop(&mut g, 100_000_000, |_| false);
    assert_eq!(rs.len(), 240);
    let logs = g.stages().to_vec();
    for w in logs.windows(2) {
        assert_eq!(w[1].start_us, w[0].last_send_us + 3_000_000 + 5_000_000);
    }
    assert!(g.client_timeouts() >= 200, "{}", g.client_timeouts());
}

#[test]
fn new_workload_fields_are_checked() {
    let bad = |extra: &str, field: &str| {
        let yaml = LADDER.replace("  stages:", &format!("{extra}\n  stages:"));
        assert_eq!(field_of(&yaml), field, "{extra}");
    };
    bad("  betweenStages: {pauseSeconds: -1}", "spec.workload.arrival.betweenStages.pauseSeconds");
    assert_eq!(
        field_of(&format!("{LADDER}client: {{maxInFlight: 0}}\n")),
        "spec.workload.client.maxInFlight"
    );
    assert_eq!(
        field_of(&format!("{LADDER}client: {{timeoutSeconds: 0}}\n")),
        "spec.workload.client.timeoutSeconds"
    );
    let requests = LADDER
        .replace("poissonPerSecond", "poisson")
        .replace("durationSeconds: 10}", "durationSeconds: 10, requests: 5}");
    assert_eq!(field_of(&requests), "spec.workload.arrival.stages[0].requests");
    let cycle = LADDER.replace(", questionsPerGroup: 2", "");
    assert_eq!(field_of(&cycle), "spec.workload.classes[0].prefix.order");
}
