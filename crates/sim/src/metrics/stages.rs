//! Per-stage results, as inference-perf reports them: a request belongs to the stage in which it was
//! sent; latencies are over the stage's successful requests; rates are over the stage's window, from
//! its first send to its last response (the drain after the last send included).

use serde::{Deserialize, Serialize};

use super::record::{RequestRecord, SimOutput};
use super::summary::{Acc, Columns, Counts, Stats, SummaryContext};

/// One load stage's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// Stage index (0-based, as listed in the workload or the trace's stage column).
    pub stage: u32,
    /// Nominal rate (requests per second), for generated stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    /// Nominal duration (s), for generated stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Requests the stage was to send, when exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_requests: Option<u64>,
    /// When the stage started (s since the start of the run).
    pub start_s: f64,
    /// From the first send to the last send (s).
    pub send_duration_s: f64,
    /// Requests sent per second over the send duration.
    pub achieved_rate: f64,
    /// From the first send to the last response (s): the denominator of the stage's rates.
    pub window_s: f64,
    /// Requests that left the client late because all its slots were held.
    pub delayed_requests: u64,
    /// Mean lateness of those (ms).
    pub schedule_delay_ms_mean: f64,
    /// Fraction of the stage's prompt tokens served from the prefix cache.
    pub prefix_cache_hit_rate: f64,
    /// Preemptions suffered by the stage's completed requests.
    pub preemptions: u64,
    /// Latency, throughput and SLO figures of the stage's requests.
    #[serde(flatten)]
    pub stats: Stats,
}

/// The per-stage figures of a run (empty when the workload logged no stages).
pub(super) fn summarize_stages(
    out: &SimOutput,
    ctx: &SummaryContext<'_>,
    any_slo: bool,
) -> Vec<StageSummary> {
    let logs = ctx.stages;
    if logs.is_empty() {
        return Vec::new();
    }
    let stage_of = |id: u64| logs.partition_point(|l| l.first_id <= id).checked_sub(1);
    let slo_of = |c: u16| ctx.slos.get(usize::from(c)).and_then(|s| s.as_ref()).filter(|s| !s.is_empty());
    let n = logs.len();
    let mut accs: Vec<Acc> = (0..n).map(|_| Acc::new()).collect();
    let mut recs: Vec<Vec<RequestRecord>> = vec![Vec::new(); n];
    let mut counts: Vec<Counts> =
        logs.iter().map(|l| Counts { generated: l.sent, ..Counts::default() }).collect();
    let mut last_end: Vec<i64> = logs.iter().map(|l| l.last_send_us).collect();
    let mut cached = vec![0u64; n];
    let mut input = vec![0u64; n];
    let mut preemptions = vec![0u64; n];
    for r in &out.completed {
        let Some(k) = stage_of(r.id) else { continue };
        let timeout = ctx.client_timeout_us.filter(|&t| r.e2e_us > t);
        let end = r.arrival_us + timeout.unwrap_or(r.e2e_us);
        last_end[k] = last_end[k].max(end);
        if timeout.is_some() {
            counts[k].client_timeouts += 1;
            continue;
        }
        accs[k].add(r, slo_of(r.class));
        recs[k].push(*r);
        counts[k].completed += 1;
        cached[k] += u64::from(r.cached_tokens);
        input[k] += u64::from(r.input_tokens);
        preemptions[k] += u64::from(r.preemptions);
    }
    for (list, pick) in [(&out.rejected, 0), (&out.shed, 1), (&out.timed_out, 2)] {
        for x in list {
            if let Some(k) = stage_of(x.id) {
                let c = &mut counts[k];
                match pick {
                    0 => {
                        c.rejected += 1;
                        *c.rejected_by_reason.entry(x.reason.to_string()).or_default() += 1;
                    }
                    1 => {
                        c.shed += 1;
                        *c.shed_by_reason.entry(x.reason.to_string()).or_default() += 1;
                    }
                    _ => c.timed_out += 1,
                }
            }
        }
    }
    let mut cols = Columns::default();
    logs.iter()
        .zip(accs)
        .zip(counts)
        .enumerate()
        .map(|(k, ((log, acc), mut c))| {
            c.unfinished = c
                .generated
                .saturating_sub(c.completed + c.rejected + c.shed + c.timed_out + c.client_timeouts);
            let window_s = (last_end[k] - log.first_send_us).max(0) as f64 / 1e6;
            let send_duration_s = (log.last_send_us - log.first_send_us).max(0) as f64 / 1e6;
            StageSummary {
                stage: log.index,
                rate_per_second: log.rate_per_second,
                duration_s: log.duration_s,
                planned_requests: log.planned,
                start_s: log.start_us as f64 / 1e6,
                send_duration_s,
                achieved_rate: if send_duration_s > 0.0 { log.sent as f64 / send_duration_s } else { 0.0 },
                window_s,
                delayed_requests: log.delayed,
                schedule_delay_ms_mean: if log.delayed > 0 {
                    log.delay_us as f64 / 1000.0 / log.delayed as f64
                } else {
                    0.0
                },
                prefix_cache_hit_rate: if input[k] > 0 { cached[k] as f64 / input[k] as f64 } else { 0.0 },
                preemptions: preemptions[k],
                stats: acc.stats(&cols.dists_of(&recs[k], None), c, window_s, any_slo),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summarize;
    use crate::metrics::RequestRecord;
    use crate::workload::StageLog;

    fn rec(id: u64, arrival_ms: i64, ttft_ms: i64, e2e_ms: i64) -> RequestRecord {
        RequestRecord {
            id,
            class: 0,
            instance: 0,
            arrival_us: arrival_ms * 1000,
            ttft_us: ttft_ms * 1000,
            e2e_us: e2e_ms * 1000,
            itl_sum_us: (e2e_ms - ttft_ms) * 1000,
            queue_us: 0,
            input_tokens: 100,
            output_tokens: 11,
            cached_tokens: 50,
            preemptions: 0,
        }
    }

    fn log(index: u32, first_id: u64, sent: u64, first_ms: i64, last_ms: i64) -> StageLog {
        StageLog {
            index,
            rate_per_second: Some(1.0),
            duration_s: Some(10.0),
            planned: Some(sent),
            start_us: first_ms * 1000,
            first_id,
            sent,
            first_send_us: first_ms * 1000,
            last_send_us: last_ms * 1000,
            delayed: 0,
            delay_us: 0,
        }
    }

    #[test]
    fn requests_go_to_the_stage_that_sent_them_and_rates_span_the_drain() {
        // Stage 0 sends ids 0-1 at 0 and 1 s; stage 1 sends ids 2-4 from 10 s. Id 1 finishes after
        // stage 1 has started: it still counts for stage 0, and stage 0's window runs to its end.
        let out = SimOutput {
            completed: vec![
                rec(0, 0, 100, 1000),
                rec(2, 10_000, 200, 2000),
                rec(1, 1000, 100, 11_000),
                rec(3, 10_500, 300, 1500),
            ],
            generated: 5,
            generated_per_class: vec![5],
            unfinished: 1,
            end_us: 20_000_000,
            ..SimOutput::default()
        };
        let logs = [log(0, 0, 2, 0, 1000), log(1, 2, 3, 10_000, 11_000)];
        let names = vec!["c".to_string()];
        let slos = vec![None];
        let ctx = SummaryContext {
            class_names: &names,
            slos: &slos,
            gpus: 1,
            dollars_per_gpu_hour: 1.0,
            stages: &logs,
            client_timeout_us: None,
            helper_threads: false,
        };
        let s = summarize(&out, &ctx);
        assert_eq!(s.stages.len(), 2);
        let (a, b) = (&s.stages[0], &s.stages[1]);
        assert_eq!((a.stats.requests.completed, b.stats.requests.completed), (2, 2));
        assert_eq!(b.stats.requests.unfinished, 1);
        assert_eq!(a.window_s, 12.0, "first send 0 s to last end 12 s");
        assert!((a.stats.throughput.output_tokens_per_s - 22.0 / 12.0).abs() < 1e-12);
        assert_eq!(b.window_s, 2.0);
        assert_eq!(a.stats.ttft_ms.mean, 100.0);
        assert_eq!(b.stats.ttft_ms.mean, 250.0);
        assert_eq!(a.prefix_cache_hit_rate, 0.5);
        assert!((b.achieved_rate - 3.0).abs() < 1e-12);
        // The whole-run figures are unchanged by the stage split.
        assert_eq!(s.overall.requests.completed, 4);
    }

    #[test]
    fn client_timeouts_fail_and_leave_latencies_but_stay_in_the_window() {
        let out = SimOutput {
            completed: vec![rec(0, 0, 100, 1000), rec(1, 0, 5000, 9000)],
            generated: 2,
            generated_per_class: vec![2],
            end_us: 9_000_000,
            ..SimOutput::default()
        };
        let logs = [log(0, 0, 2, 0, 0)];
        let names = vec!["c".to_string()];
        let slos = vec![None];
        let ctx = SummaryContext {
            class_names: &names,
            slos: &slos,
            gpus: 1,
            dollars_per_gpu_hour: 1.0,
            stages: &logs,
            client_timeout_us: Some(3_000_000),
            helper_threads: false,
        };
        let s = summarize(&out, &ctx);
        assert_eq!(s.overall.requests.completed, 1);
        assert_eq!(s.overall.requests.client_timeouts, 1);
        assert_eq!(s.overall.ttft_ms.mean, 100.0);
        let st = &s.stages[0];
        assert_eq!((st.stats.requests.completed, st.stats.requests.client_timeouts), (1, 1));
        assert_eq!(st.window_s, 3.0, "the timed-out request ends at its deadline");
        assert_eq!(st.stats.requests.unfinished, 0);
    }
}
