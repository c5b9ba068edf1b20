//! Streaming summary against its oracle, the exact summary: same counts, throughput, goodput and
//! attainment; means equal up to summation order; every percentile within the sketch's relative
//! accuracy of the order statistic it estimates; and no per-request records kept.

use crate::common::*;

use blis_sim::metrics::stream::RELATIVE_ACCURACY;
use blis_sim::metrics::summary::{Dist, Stats};
use blis_sim::metrics::{RequestRecord, SummaryMode};
use blis_sim::scenario::{self, Outcome, Resolved};
use blis_sim::sim::{NoObserver, SimOptions};

fn simulate(r: &Resolved, mode: SummaryMode) -> Outcome {
    let opts = SimOptions { summary: Some(mode), ..SimOptions::default() };
    scenario::simulate(r, None, &opts, &mut NoObserver).expect("simulation succeeds")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

/// The value of rank ⌊p·(n−1)⌋ among `values`: the lower of the two order statistics the exact
/// summary interpolates between, which the sketch estimates.
fn order_statistic(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(p * (values.len() - 1) as f64) as usize]
}

fn check_dist(what: &str, exact: &Dist, streamed: &Dist, mut values: Vec<f64>, mean_exact: bool) {
    if values.is_empty() {
        assert_eq!(streamed, &Dist::default(), "{what}: no values, no distribution");
        return;
    }
    if mean_exact {
        assert!(close(exact.mean, streamed.mean), "{what}: mean {} vs exact {}", streamed.mean, exact.mean);
    }
    for (p, got) in [(0.5, streamed.p50), (0.9, streamed.p90), (0.99, streamed.p99)] {
        let want = order_statistic(&mut values, p);
        let err = (got - want).abs();
        assert!(
            err <= RELATIVE_ACCURACY * want.abs() + 1e-9,
            "{what} p{}: streamed {got} vs exact order statistic {want} (error {:.3} %)",
            p * 100.0,
            100.0 * err / want.abs().max(1e-12)
        );
    }
}

fn check_stats(what: &str, exact: &Stats, streamed: &Stats, recs: &[&RequestRecord]) {
    assert_eq!(exact.requests, streamed.requests, "{what}: counts");
    for (a, b) in [
        (exact.throughput.requests_per_s, streamed.throughput.requests_per_s),
        (exact.throughput.input_tokens_per_s, streamed.throughput.input_tokens_per_s),
        (exact.throughput.output_tokens_per_s, streamed.throughput.output_tokens_per_s),
        (exact.mean_input_tokens, streamed.mean_input_tokens),
        (exact.mean_output_tokens, streamed.mean_output_tokens),
        (exact.itl_ms.mean, streamed.itl_ms.mean),
    ] {
        assert!(close(a, b), "{what}: {a} vs {b}");
    }
    assert_eq!(exact.goodput_rps, streamed.goodput_rps, "{what}: goodput");
    let ms = |f: fn(&RequestRecord) -> i64| recs.iter().map(|r| f(r) as f64 / 1000.0).collect::<Vec<_>>();
    check_dist(&format!("{what} ttft"), &exact.ttft_ms, &streamed.ttft_ms, ms(|r| r.ttft_us), true);
    check_dist(&format!("{what} e2e"), &exact.e2e_ms, &streamed.e2e_ms, ms(|r| r.e2e_us), true);
    check_dist(&format!("{what} queue"), &exact.queue_ms, &streamed.queue_ms, ms(|r| r.queue_us), true);
    let itl = recs.iter().filter_map(|r| r.itl_mean_us()).map(|v| v / 1000.0).collect();
    check_dist(&format!("{what} itl"), &exact.itl_ms, &streamed.itl_ms, itl, false);
}

fn check_scenario(name: &str, r: &Resolved) {
    let exact = simulate(r, SummaryMode::Exact);
    if !exact.summary.stages.is_empty() {
        // Staged workloads are summarised exactly only (the next test checks the refusal).
        return;
    }
    let streamed = simulate(r, SummaryMode::Streaming);
    assert!(streamed.output.completed.is_empty(), "{name}: streaming keeps no records");
    assert!(exact.output.completed_len() > 0, "{name}: nothing completed");
    assert_eq!(exact.output.completed_len(), streamed.output.completed_len(), "{name}");
    let (e, s) = (&exact.summary, &streamed.summary);
    assert_eq!(e.duration_s, s.duration_s, "{name}: duration");
    assert_eq!(e.slo_attainment, s.slo_attainment, "{name}: attainment");
    assert_eq!(e.slo_met, s.slo_met, "{name}: SLO verdict");
    assert_eq!(e.cost, s.cost, "{name}: cost");
    let all: Vec<&RequestRecord> = exact.output.completed.iter().collect();
    check_stats(&format!("{name} overall"), &e.overall, &s.overall, &all);
    assert_eq!(e.classes.len(), s.classes.len());
    for (c, (ec, sc)) in e.classes.iter().zip(&s.classes).enumerate() {
        assert_eq!(ec.attainment, sc.attainment, "{name} class {c}: attainment");
        let mine: Vec<&RequestRecord> = all.iter().copied().filter(|x| usize::from(x.class) == c).collect();
        check_stats(&format!("{name} class {}", ec.name), &ec.stats, &sc.stats, &mine);
    }
}

#[test]
fn streaming_summary_is_within_its_error_bound_of_the_exact_one_on_every_example() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("examples folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "examples missing: {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("example readable");
        check_scenario(&path.display().to_string(), &resolve(&text));
    }
}

#[test]
fn streaming_summary_keeps_per_class_figures_and_slos_exact() {
    // Three classes with different SLOs and shapes, sessions, and a horizon that leaves some unfinished.
    let yaml = manifest(&format!(
        "{LLAMA8B_H100}  vllm: {{maxNumSeqs: 48}}
  simulation: {{horizonSeconds: 50}}
  workload:
    maxRequests: 3000
    arrival: {{process: gamma, ratePerSecond: 40, cv: 2}}
    classes:
    - name: chat
      weight: 3
      inputTokens: {{distribution: normal, mean: 300, stdDev: 120, min: 1}}
      outputTokens: {{distribution: exponential, mean: 120, min: 1, max: 900}}
      slo: {{ttftMs: 300, itlMs: 40}}
    - name: agent
      weight: 1
      inputTokens: {{distribution: uniform, min: 50, max: 1500}}
      outputTokens: {{distribution: fixed, value: 1}}
      prefix: {{groups: 2, tokens: 512}}
      slo: {{e2eMs: 2000, attainment: 0.8}}
    - name: batch
      weight: 1
      inputTokens: {{distribution: lognormal, mean: 2000, stdDev: 800, min: 10, max: 6000}}
      outputTokens: {{distribution: normal, mean: 400, stdDev: 100, min: 1}}
      session: {{turns: {{distribution: fixed, value: 2}}, thinkTimeMs: {{distribution: fixed, value: 300}}}}
"
    ));
    let r = resolve(&yaml);
    let exact = simulate(&r, SummaryMode::Exact);
    assert!(exact.output.unfinished > 0, "the horizon should cut the run");
    check_scenario("three classes", &r);
}

#[test]
fn streaming_refuses_what_it_cannot_summarise_and_exact_mode_runs_it() {
    let staged = "  workload:
    arrival:
      process: poisson
      stages: [{ratePerSecond: 4, durationSeconds: 2}, {ratePerSecond: 8, durationSeconds: 2}]
    classes:
    - {name: c, inputTokens: {distribution: fixed, value: 200}, outputTokens: {distribution: fixed, value: 20}}
";
    let timeout = format!("{}    client: {{timeoutSeconds: 30}}\n", simple_workload(5.0, 20, 200, 20));
    for workload in [staged.to_string(), timeout] {
        let r = resolve(&manifest(&format!("{LLAMA8B_H100}{workload}")));
        let opts = SimOptions { summary: Some(SummaryMode::Streaming), ..SimOptions::default() };
        let err = scenario::simulate(&r, None, &opts, &mut NoObserver).err().expect("streaming is refused");
        assert!(err.to_string().contains("spec.simulation.summary"), "{err}");
        let exact = simulate(&r, SummaryMode::Exact);
        assert!(exact.summary.overall.requests.completed > 0);
    }
}
