//! The human-readable prediction table of `blis run`.

use std::fmt::Write;

use super::json::ScenarioReport;
use blis_sim::metrics::summary::{Dist, Stats};

/// Milliseconds with about three significant digits.
pub(crate) fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn row(out: &mut String, label: &str, d: &Dist) {
    let _ = writeln!(
        out,
        "  {label:<7} {:>9} {:>9} {:>9} {:>9}",
        fmt_ms(d.mean),
        fmt_ms(d.p50),
        fmt_ms(d.p90),
        fmt_ms(d.p99)
    );
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn latency_block(out: &mut String, s: &Stats) {
    let _ = writeln!(out, "  {:<7} {:>9} {:>9} {:>9} {:>9}", "(ms)", "mean", "p50", "p90", "p99");
    row(out, "TTFT", &s.ttft_ms);
    row(out, "ITL", &s.itl_ms);
    row(out, "E2E", &s.e2e_ms);
    row(out, "Queue", &s.queue_ms);
}

/// The per-stage table: every stage's requests, latencies and rates (requests belong to the stage
/// that sent them; rates are over the stage's window, first send to last response).
fn stages_block(out: &mut String, s: &blis_sim::metrics::Summary) {
    if s.stages.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nPer stage (requests attributed to the stage that sent them; rates over first send to last response)"
    );
    let _ = writeln!(
        out,
        "  {:>5} {:>7} {:>6} {:>6} {:>5} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8} {:>7}",
        "stage",
        "rate/s",
        "sent",
        "done",
        "fail",
        "TTFT mean",
        "TTFT p90",
        "ITL",
        "E2E mean",
        "out tok/s",
        "window",
        "hit"
    );
    for st in &s.stages {
        let c = &st.stats.requests;
        let failed = c.rejected + c.shed + c.timed_out + c.client_timeouts;
        let _ = writeln!(
            out,
            "  {:>5} {:>7} {:>6} {:>6} {:>5} {:>10} {:>10} {:>8} {:>10} {:>10.0} {:>7.1}s {:>7}",
            st.stage,
            st.rate_per_second.map_or("-".to_string(), |r| format!("{r}")),
            c.generated,
            c.completed,
            failed,
            fmt_ms(st.stats.ttft_ms.mean),
            fmt_ms(st.stats.ttft_ms.p90),
            fmt_ms(st.stats.itl_ms.mean),
            fmt_ms(st.stats.e2e_ms.mean),
            st.stats.throughput.output_tokens_per_s,
            st.window_s,
            pct(st.prefix_cache_hit_rate)
        );
    }
}

/// Renders one scenario's prediction as a text table.
pub fn render(r: &ScenarioReport) -> String {
    let mut out = String::new();
    let i = &r.inputs;
    let s = &r.summary;
    let o = &s.overall;
    let _ = writeln!(out, "Scenario {} (seed {})", r.name, r.seed);
    let _ = writeln!(
        out,
        "  {} on {} x {} (TP {}), {} latency model",
        i.model, i.replicas, i.gpu, i.tensor_parallelism, i.latency_model
    );
    let _ = writeln!(
        out,
        "  vLLM {}: max_num_seqs {}, max_num_batched_tokens {}, block {}, {} KV blocks/replica, max_model_len {}, prefix caching {}, chunked prefill {}",
        i.vllm_version,
        i.max_num_seqs,
        i.max_num_batched_tokens,
        i.block_size,
        i.kv_blocks,
        i.max_model_len,
        if i.prefix_caching { "on" } else { "off" },
        if i.chunked_prefill { "on" } else { "off" }
    );
    let c = &o.requests;
    let _ = writeln!(
        out,
        "\nRequests    {} generated, {} completed, {} rejected, {} unfinished over {:.1} s",
        c.generated, c.completed, c.rejected, c.unfinished, s.duration_s
    );
    for (reason, n) in &c.rejected_by_reason {
        let _ = writeln!(out, "            rejected {n} x {reason}");
    }
    if c.client_timeouts > 0 {
        let _ = writeln!(
            out,
            "            {} given up at the client's request timeout (failed, left out of the figures)",
            c.client_timeouts
        );
    }
    if c.shed + c.timed_out > 0 {
        let _ =
            writeln!(out, "            {} shed, {} timed out in the flow-control queue", c.shed, c.timed_out);
        for (reason, n) in &c.shed_by_reason {
            let _ = writeln!(out, "            shed {n} x {reason}");
        }
    }
    let _ = writeln!(
        out,
        "Throughput  {:.2} req/s, {:.0} input tok/s, {:.0} output tok/s",
        o.throughput.requests_per_s, o.throughput.input_tokens_per_s, o.throughput.output_tokens_per_s
    );
    if let (Some(g), Some(a)) = (o.goodput_rps, s.slo_attainment) {
        let _ = writeln!(out, "Goodput     {g:.2} req/s meeting their SLO ({} of SLO requests)", pct(a));
    }
    out.push('\n');
    latency_block(&mut out, o);
    let kv = &s.kv_cache;
    let _ = writeln!(
        out,
        "\nKV cache    utilisation mean {}, peak {}; prefix hit rate {}; {} preemptions; mean batch {:.1}",
        pct(kv.utilization_mean),
        pct(kv.utilization_peak),
        pct(kv.prefix_cache_hit_rate),
        kv.preemptions,
        kv.batch_size_mean
    );
    let per_m = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("${x:.3}"));
    let _ = writeln!(
        out,
        "Cost        {} GPUs, ${:.2}/h, {} per 1M output tokens, {} per 1M tokens",
        s.cost.gpus,
        s.cost.dollars_per_hour,
        per_m(s.cost.dollars_per_million_output_tokens),
        per_m(s.cost.dollars_per_million_tokens)
    );
    if s.cost.gpu_hours > 0.0 {
        let _ = writeln!(
            out,
            "            {:.2} GPU-hours, ${:.2} over the run",
            s.cost.gpu_hours, s.cost.dollars_total
        );
    }
    if s.pools.len() > 1 || s.pools.iter().any(|p| p.scale_ups + p.scale_downs > 0) {
        let _ = writeln!(
            out,
            "\n  {:<12} {:<8} {:>5} {:>15} {:>9} {:>8} {:>8} {:>9}",
            "pool", "role", "GPUs", "replicas s/pk/e", "routed", "KV mean", "hit", "GPU-h"
        );
        for p in &s.pools {
            let _ = writeln!(
                out,
                "  {:<12} {:<8} {:>5} {:>15} {:>9} {:>8} {:>8} {:>9.2}",
                p.name,
                p.role,
                p.gpus_per_replica,
                format!("{}/{}/{}", p.replicas_start, p.replicas_peak, p.replicas_end),
                p.routed,
                pct(p.kv_utilization_mean),
                pct(p.prefix_cache_hit_rate),
                p.gpu_hours
            );
        }
    }
    if s.disaggregated > 0 {
        let _ = writeln!(
            out,
            "P/D         {} requests disaggregated, mean KV transfer {:.2} ms",
            s.disaggregated, s.kv_transfer_ms_mean
        );
    }
    if s.routing.len() > 1 {
        let counts: Vec<String> = s.routing.iter().map(|r| r.routed.to_string()).collect();
        let _ = writeln!(out, "Routing     per replica: {}", counts.join(" "));
    }
    if s.replica_timeline.len() > s.pools.len() {
        let pts: Vec<String> =
            s.replica_timeline.iter().map(|p| format!("{:.0}s:{}+{}", p.t_s, p.active, p.starting)).collect();
        let _ = writeln!(out, "Replicas    over time (active+starting): {}", pts.join(" "));
    }
    if s.classes.len() > 1 || s.classes.iter().any(|c| c.slo.is_some()) {
        let _ = writeln!(
            out,
            "\n  {:<14} {:>7} {:>6} {:>10} {:>9} {:>10}  {:<26} {:>10}  verdict",
            "class",
            "done",
            "shed",
            "TTFT p90",
            "ITL p90",
            "E2E p90",
            "SLO ttft/itl/e2e ms @ target",
            "attained"
        );
        for cl in &s.classes {
            let st = &cl.stats;
            let slo = cl.slo.as_ref().map_or("-".to_string(), |sl| {
                let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x}"));
                format!(
                    "{}/{}/{} @ {}",
                    f(sl.ttft_ms),
                    f(sl.itl_ms),
                    f(sl.e2e_ms),
                    pct(sl.attainment_target())
                )
            });
            let att = cl.attainment.map_or("-".to_string(), |a| pct(a.joint));
            let verdict = match cl.slo_met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "-",
            };
            let _ = writeln!(
                out,
                "  {:<14} {:>7} {:>6} {:>10} {:>9} {:>10}  {:<26} {:>10}  {verdict}",
                cl.name,
                st.requests.completed,
                st.requests.shed + st.requests.timed_out,
                fmt_ms(st.ttft_ms.p90),
                fmt_ms(st.itl_ms.p90),
                fmt_ms(st.e2e_ms.p90),
                slo,
                att
            );
        }
    }
    stages_block(&mut out, s);
    for w in &r.warnings {
        let _ = writeln!(out, "note: {w}");
    }
    out
}
