//! Helper threads change nothing in a run: an open-loop workload generated ahead on a second thread
//! (a replayed trace is read inline)
//! gives the same records, replica totals, time series, stage logs and summary, bit for bit, as one
//! generated inline; streamed records summarised on another thread give the same streamed summary; a
//! closed-loop workload is generated inline; and a run that stops early does not hang on a helper.

use crate::common::*;

use blis_sim::metrics::SummaryMode;
use blis_sim::scenario::{self, Outcome, Resolved, RunError};
use blis_sim::sim::{NoObserver, SimError, SimOptions};
use blis_sim::workload::WorkloadGen;

fn simulate(r: &Resolved, helpers: bool) -> Outcome {
    simulate_as(r, helpers, SummaryMode::Exact)
}

fn simulate_as(r: &Resolved, helpers: bool, summary: SummaryMode) -> Outcome {
    let opts = SimOptions { helper_threads: helpers, summary: Some(summary), ..SimOptions::default() };
    scenario::simulate(r, None, &opts, &mut NoObserver).expect("simulation succeeds")
}

/// The two runs' summaries are the same, bit for bit (as serialised: every float's digits).
fn assert_same_summary(a: &Outcome, b: &Outcome, spec: &str) {
    let json = |o: &Outcome| serde_json::to_string(&o.summary).expect("a summary serialises");
    assert_eq!(json(a), json(b), "summaries differ for\n{spec}");
}

/// Workloads of more requests than the inline threshold: a horizon cutting the arrivals, load
/// stages, classes with their own arrival streams, prefix cycles, a replayed trace, and a cluster
/// behind the endpoint picker.
fn open_loop_cases() -> Vec<String> {
    let rows: String = (0..2500)
        .map(|k| format!("{:.3},{},{}\\n", f64::from(k) * 0.02, 200 + 37 * (k % 50), 20 + k % 90))
        .collect();
    vec![
        format!("{LLAMA8B_H100}{}", simple_workload(40.0, 3000, 600, 120)),
        format!(
            "{LLAMA8B_H100}  workload:
    durationSeconds: 70
    arrival: {{process: poisson, ratePerSecond: 45}}
    classes:
    - {{name: chat, inputTokens: {{distribution: normal, mean: 500, stdDev: 100, min: 16, max: 2048}}, outputTokens: {{distribution: fixed, value: 60}}, prefix: {{groups: 4, tokens: 128}}}}
"
        ),
        format!(
            "{LLAMA8B_H100}  workload:
    arrival:
      process: poisson
      stages: [{{ratePerSecond: 20, durationSeconds: 60}}, {{ratePerSecond: 50, durationSeconds: 40}}]
    classes:
    - {{name: a, weight: 3, inputTokens: {{distribution: fixed, value: 300}}, outputTokens: {{distribution: fixed, value: 40}}, prefix: {{groups: 2, tokens: 100, questionsPerGroup: 20, order: cycle}}}}
    - {{name: b, inputTokens: {{distribution: uniform, min: 50, max: 900}}, outputTokens: {{distribution: uniform, min: 5, max: 200}}}}
"
        ),
        format!(
            "{LLAMA8B_H100}  workload:
    maxRequests: 2600
    classes:
    - {{name: own, arrival: {{process: gamma, ratePerSecond: 15, cv: 2}}, inputTokens: {{distribution: fixed, value: 200}}, outputTokens: {{distribution: fixed, value: 30}}}}
    - {{name: shared, inputTokens: {{distribution: fixed, value: 700}}, outputTokens: {{distribution: fixed, value: 80}}}}
    arrival: {{process: poisson, ratePerSecond: 10}}
"
        ),
        format!(
            "{LLAMA8B_H100}  workload:\n    trace:\n      csv: \"arrival_time_s,input_tokens,output_tokens\\n{rows}\"\n    classes: [{{name: trace}}]\n"
        ),
        format!(
            "{LLAMA8B_H100}  replicas: 4\n  router: {{policy: endpointPicker}}\n{}",
            simple_workload(120.0, 4000, 800, 150)
        ),
    ]
}

#[test]
fn generating_ahead_changes_nothing_in_the_run() {
    for spec in open_loop_cases() {
        let r = resolve(&manifest(&spec));
        let gen = WorkloadGen::new(&r.workload, r.seed, None).expect("workload");
        assert!(gen.is_open_loop(), "expected an open-loop workload:\n{spec}");
        // A replayed trace is read inline (reading its rows costs less than handing them over).
        let traced = spec.contains("trace:");
        assert_eq!(gen.worth_generating_ahead(), !traced, "generated ahead or not:\n{spec}");
        let ahead = simulate(&r, true);
        let inline = simulate(&r, false);
        assert!(inline.output.generated >= 2000, "{} requests: below the threshold", inline.output.generated);
        assert_eq!(ahead.output.generated, inline.output.generated, "generated differ for\n{spec}");
        assert_eq!(ahead.output.completed, inline.output.completed, "records differ for\n{spec}");
        assert_eq!(ahead.output.rejected, inline.output.rejected);
        assert_eq!(ahead.output.unfinished, inline.output.unfinished);
        assert_eq!(ahead.output.instances, inline.output.instances, "replica totals differ for\n{spec}");
        assert_eq!(ahead.output.series, inline.output.series, "time series differ for\n{spec}");
        assert_eq!(ahead.output.events, inline.output.events);
        assert_same_summary(&ahead, &inline, &spec);
    }
}

/// Streamed records summarised on a second thread: the same streamed summary, bit for bit, with
/// the workload generated ahead or (sessions) inline, for one class and for several.
#[test]
fn summarising_behind_changes_nothing_in_the_streamed_summary() {
    let mut cases = open_loop_cases();
    cases.retain(|c| !c.contains("stages")); // streaming keeps no per-stage results
    cases.push(format!(
        "{LLAMA8B_H100}  workload:
    maxRequests: 2500
    arrival: {{process: poisson, ratePerSecond: 20}}
    classes:
    - name: c
      inputTokens: {{distribution: fixed, value: 300}}
      outputTokens: {{distribution: fixed, value: 40}}
      prefix: {{groups: 2, tokens: 100}}
      session: {{turns: {{distribution: fixed, value: 3}}, thinkTimeMs: {{distribution: fixed, value: 200}}}}
"
    ));
    for spec in cases {
        let r = resolve(&manifest(&spec));
        let behind = simulate_as(&r, true, SummaryMode::Streaming);
        let inline = simulate_as(&r, false, SummaryMode::Streaming);
        assert!(
            behind.output.completed.is_empty() && behind.output.stream.is_some(),
            "not streamed:\n{spec}"
        );
        assert_eq!(behind.output.completed_len(), inline.output.completed_len());
        assert!(
            inline.output.completed_len() >= 2000,
            "{} completed: below the threshold",
            inline.output.completed_len()
        );
        assert_same_summary(&behind, &inline, &spec);
    }
}

/// Sessions schedule their next turn when one finishes, and a bounded client sends when a slot
/// frees: such workloads depend on the run and are never generated ahead.
#[test]
fn closed_loop_workloads_are_not_open_loop() {
    for extra in [
        "      session: {turns: {distribution: fixed, value: 3}, thinkTimeMs: {distribution: fixed, value: 100}}\n",
        "    client: {maxInFlight: 4}\n",
    ] {
        let (class_extra, client) = if extra.contains("session") { (extra, "") } else { ("", extra) };
        let spec = format!(
            "{LLAMA8B_H100}  workload:
    maxRequests: 3000
{client}    arrival: {{process: poisson, ratePerSecond: 10}}
    classes:
    - name: c
      inputTokens: {{distribution: fixed, value: 100}}
      outputTokens: {{distribution: fixed, value: 10}}
{class_extra}"
        );
        let r = resolve(&manifest(&spec));
        let gen = WorkloadGen::new(&r.workload, r.seed, None).expect("workload");
        assert!(!gen.is_open_loop(), "closed loop taken for open:\n{spec}");
    }
}

/// A run stopped by its event limit returns its error: the generator thread, blocked on a full
/// hand-over, is released and joined, and so is the summarising one.
#[test]
fn a_run_stopped_early_returns_while_the_helpers_run() {
    let r = resolve(&manifest(&format!("{LLAMA8B_H100}{}", simple_workload(40.0, 200_000, 300, 50))));
    for summary in [SummaryMode::Exact, SummaryMode::Streaming] {
        let opts = SimOptions { max_events: Some(50_000), summary: Some(summary), ..SimOptions::default() };
        match scenario::simulate(&r, None, &opts, &mut NoObserver) {
            Err(RunError::Sim(SimError::TooManyEvents(50_000))) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the event limit did not stop the run"),
        }
    }
}
