//! The llm-d cluster model: endpoint-picker routing, flow control, P/D, autoscaling, conservation.

use crate::common;

use blis_import::manifest::parse_scenarios;
use common::*;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("example exists")
}

/// `r` without the endpoint picker's per-prompt-token request-path cost, so a comparison with a plain
/// Service isolates what the routing decisions themselves do.
fn without_gateway_cost(mut r: blis_sim::scenario::Resolved) -> blis_sim::scenario::Resolved {
    if let blis_sim::sim::router::RouterPolicy::EndpointPicker(e) = &mut r.router.policy {
        e.gateway_us_per_prompt_token = 0.0;
    }
    r
}

fn assert_conserved(o: &blis_sim::metrics::SimOutput) {
    assert_eq!(
        o.generated,
        o.completed.len() as u64
            + o.rejected.len() as u64
            + o.shed.len() as u64
            + o.timed_out.len() as u64
            + o.unfinished,
        "generated = completed + rejected + shed + timed out + unfinished"
    );
}

#[test]
fn prefix_aware_routing_beats_round_robin_on_shared_prefixes() {
    let epp = without_gateway_cost(resolve(&example("llm-d-inference-scheduling.yaml")));
    let rr_yaml = example("llm-d-inference-scheduling.yaml").replace(
        "  router:\n    refreshIntervalMs: 50\n",
        "  router:\n    refreshIntervalMs: 50\n    policy: roundRobin\n",
    );
    // Drop the endpoint picker config for round-robin.
    let cut = rr_yaml.find("    endpointPickerConfig:").unwrap();
    let end = rr_yaml.find("  workload:").unwrap();
    let rr_yaml = format!("{}{}", &rr_yaml[..cut], &rr_yaml[end..]);
    let rr = resolve(&rr_yaml);
    let a = run(&epp);
    let b = run(&rr);
    assert_conserved(&a.output);
    let (ha, hb) = (a.summary.kv_cache.prefix_cache_hit_rate, b.summary.kv_cache.prefix_cache_hit_rate);
    assert!(ha > hb + 0.05, "prefix-aware hit rate {ha} vs round-robin {hb}");
    let (ta, tb) = (a.summary.overall.ttft_ms.mean, b.summary.overall.ttft_ms.mean);
    assert!(ta < tb, "prefix-aware TTFT {ta} vs round-robin {tb}");
}

#[test]
fn flow_control_protects_the_top_priority_class_and_sheds_best_effort() {
    let loaded = resolve(&example("llm-d-flow-control.yaml"));
    let o = run(&loaded);
    assert_conserved(&o.output);
    let premium = &o.summary.classes[0];
    let best = &o.summary.classes[2];
    assert!(
        best.stats.requests.shed + best.stats.requests.timed_out > 100,
        "best-effort must be shed: {best:?}"
    );
    assert_eq!(premium.stats.requests.shed + premium.stats.requests.timed_out, 0);
    // Unloaded: no best-effort spike.
    let calm = example("llm-d-flow-control.yaml")
        .replace("{ratePerSecond: 80, durationSeconds: 20}", "{ratePerSecond: 2, durationSeconds: 20}");
    let u = run(&resolve(&calm));
    let (p_loaded, p_calm) = (premium.stats.ttft_ms.p90, u.summary.classes[0].stats.ttft_ms.p90);
    assert!(p_loaded <= 2.0 * p_calm, "premium TTFT p90 {p_loaded} ms under load vs {p_calm} ms unloaded");
    assert!(p_loaded * 10.0 < best.stats.ttft_ms.p90, "premium must be far ahead of best-effort");
}

#[test]
fn pd_beats_aggregated_ttft_for_long_prompts_at_equal_gpus() {
    let pd_yaml = example("llm-d-pd-disaggregation.yaml");
    let pd = run(&without_gateway_cost(resolve(&pd_yaml)));
    assert_conserved(&pd.output);
    assert!(pd.summary.disaggregated > 0);
    let cut = pd_yaml.find("  pools:").unwrap();
    let end = pd_yaml.find("  workload:").unwrap();
    let agg_yaml =
        format!("{}  replicas: 4\n  router: {{policy: leastRequests}}\n{}", &pd_yaml[..cut], &pd_yaml[end..]);
    let agg = run(&resolve(&agg_yaml));
    assert_eq!(agg.summary.cost.gpus, pd.summary.cost.gpus);
    let (a, b) = (pd.summary.overall.ttft_ms.p90, agg.summary.overall.ttft_ms.p90);
    let (ma, mb) = (pd.summary.overall.ttft_ms.mean, agg.summary.overall.ttft_ms.mean);
    assert!(a < b && ma < mb, "P/D TTFT p90 {a} / mean {ma} vs aggregated {b} / {mb}");
}

#[test]
fn autoscaling_adds_replicas_after_the_spike_and_removes_them_after_cooldown() {
    let o = run(&resolve(&example("llm-d-autoscaling.yaml")));
    assert_conserved(&o.output);
    let p = &o.summary.pools[0];
    assert!(p.scale_ups >= 1 && p.replicas_peak > 1, "{p:?}");
    assert!(p.scale_downs >= 1 && p.replicas_end < p.replicas_peak, "{p:?}");
    let first_up = o.summary.replica_timeline.iter().find(|x| x.starting > 0).unwrap();
    assert!(first_up.t_s >= 60.0, "scaled up before the spike at {}", first_up.t_s);
    assert!(o.summary.cost.gpu_hours > 0.0);
}

#[test]
fn every_example_conserves_requests_and_fast_forward_is_exact() {
    for name in [
        "llm-d-inference-scheduling.yaml",
        "llm-d-precise-prefix-cache.yaml",
        "llm-d-pd-disaggregation.yaml",
        "llm-d-flow-control.yaml",
        "llm-d-autoscaling.yaml",
    ] {
        let r = resolve(&example(name));
        let fast = run_checked(&r, true);
        let slow = run_checked(&r, false);
        assert_conserved(&fast.output);
        assert_eq!(fast.output.completed, slow.output.completed, "records differ for {name}");
        assert_eq!(fast.output.shed, slow.output.shed, "{name}");
        assert_eq!(fast.output.timeline, slow.output.timeline, "{name}");
        assert_eq!(fast.summary, slow.summary, "{name}");
    }
}

#[test]
fn unregistered_plugin_is_refused_unless_allowed_and_undefined_ref_errors_naming_both() {
    let yaml = manifest(&format!(
        "{LLAMA8B_H100}  replicas: 2
  router:
    endpointPickerConfig:
      plugins: [{{type: queue-scorer}}, {{type: fancy-new-scorer}}]
      schedulingProfiles:
      - name: default
        plugins: [{{pluginRef: queue-scorer}}, {{pluginRef: fancy-new-scorer, weight: 2}}]
{}",
        simple_workload(5.0, 50, 200, 50)
    ));
    // The real EPP refuses to start on a type it does not register; so does the twin.
    let (mut docs, _) = parse_scenarios(&yaml).unwrap();
    let m = docs.remove(0);
    let e = blis_import::resolve(&m.metadata.name, &m.spec).err().expect("unregistered type is refused");
    assert_eq!(e.field, "spec.router.endpointPickerConfig.plugins[1].type");
    assert!(e.problem.contains("plugin type 'fancy-new-scorer' is not registered"), "{e:?}");
    // Explicitly allowed, it runs as a neutral scorer with a warning.
    let allowed = yaml.replace("  router:\n", "  router:\n    allowUnregisteredPlugins: true\n");
    let r = resolve(&allowed);
    assert!(r.warnings.iter().any(|w| w.contains("fancy-new-scorer")), "{:?}", r.warnings);
    assert_eq!(run(&r).output.completed.len(), 50);

    let bad = allowed.replace("{pluginRef: fancy-new-scorer, weight: 2}", "{pluginRef: missing-one}");
    let (mut docs, _) = parse_scenarios(&bad).unwrap();
    let m = docs.remove(0);
    let e = blis_import::resolve(&m.metadata.name, &m.spec).err().expect("undefined pluginRef is an error");
    assert!(e.field.starts_with("spec.router.endpointPickerConfig.schedulingProfiles[0]"), "{e:?}");
    assert!(e.problem.contains("\"default\"") && e.problem.contains("\"missing-one\""), "{e:?}");
}

#[test]
fn fp8_kv_cache_doubles_kv_capacity_and_shortens_decode_steps() {
    let auto_yaml = example("quickstart.yaml");
    let fp8_yaml = auto_yaml.replace("    blockSize: 16\n", "    blockSize: 16\n    kvCacheDtype: fp8\n");
    assert_ne!(auto_yaml, fp8_yaml, "the example sets blockSize under vllm");
    let (auto, fp8) = (resolve(&auto_yaml), resolve(&fp8_yaml));
    // Same free memory, half the bytes per block: twice the blocks (up to the floor of each division).
    let (a, f) = (u64::from(auto.instance.total_blocks), u64::from(fp8.instance.total_blocks));
    assert!((2 * a..=2 * a + 1).contains(&f), "auto {a} blocks, fp8 {f} blocks");
    assert_eq!(fp8.pools[0].kv_bytes_per_token * 2.0, auto.pools[0].kv_bytes_per_token);
    assert_eq!(fp8.instance.kv_block_bytes_per_gpu * 2.0, auto.instance.kv_block_bytes_per_gpu);
    // Each decode step reads half the KV bytes, so inter-token latency drops on the same requests.
    let (ra, rf) = (run_checked(&auto, true), run_checked(&fp8, true));
    assert_conserved(&ra.output);
    assert_conserved(&rf.output);
    assert_eq!(ra.output.generated, rf.output.generated, "common random numbers");
    let (ia, i8) = (ra.summary.overall.itl_ms.mean, rf.summary.overall.itl_ms.mean);
    assert!(i8 < ia, "ITL mean fp8 {i8} ms vs auto {ia} ms");
}

/// The endpoint picker's request path costs time per prompt token before a model server sees the
/// request: prefix-cache hits pay it too, it shows in TTFT and never between tokens, it is in the
/// resolved inputs of an endpoint-picker stack and absent from a round-robin Service's, and runs repeat.
#[test]
fn gateway_request_path_cost_is_paid_by_cache_hits_in_ttft_only() {
    use blis_sim::scenario::inputs::Inputs;
    use blis_sim::sim::router::RouterPolicy;
    let yaml = example("llm-d-inference-scheduling.yaml")
        .replace("    durationSeconds: 30\n", "    maxRequests: 120\n")
        .replace("ratePerSecond: 40", "ratePerSecond: 4");
    let with = resolve(&yaml);
    let mut without = with.clone();
    let per_token = match &mut without.router.policy {
        RouterPolicy::EndpointPicker(e) => std::mem::replace(&mut e.gateway_us_per_prompt_token, 0.0),
        other => panic!("the example routes with the endpoint picker, got {other:?}"),
    };
    assert!(per_token > 0.0);
    let (a, b) = (run(&with), run(&without));
    let again = run(&with);
    assert_eq!(a.summary.overall.ttft_ms.mean, again.summary.overall.ttft_ms.mean, "deterministic");
    let by_id: std::collections::HashMap<u64, &blis_sim::metrics::record::RequestRecord> =
        b.output.completed.iter().map(|r| (r.id, r)).collect();
    let (mut shift, mut expected, mut itl_diff, mut hits) = (0.0, 0.0, 0.0, 0);
    for r in a.output.completed.iter().filter(|r| r.cached_tokens > 0) {
        let o = by_id[&r.id];
        shift += (r.ttft_us - o.ttft_us) as f64;
        expected += per_token * f64::from(r.input_tokens);
        itl_diff += (r.itl_sum_us - o.itl_sum_us).abs() as f64 / o.itl_sum_us.max(1) as f64;
        hits += 1;
    }
    assert!(hits > 50, "the shared prefixes give cache hits: {hits}");
    let rel = shift / expected;
    assert!((0.8..1.2).contains(&rel), "hits pay the gateway cost in TTFT: shift {shift} vs {expected} µs");
    assert!(itl_diff / f64::from(hits) < 0.02, "the gateway cost is not between tokens: {itl_diff}");
    assert_eq!(Inputs::of(&with).router.gateway_us_per_prompt_token, Some(per_token));
    let rr =
        yaml.replace("    refreshIntervalMs: 50\n", "    refreshIntervalMs: 50\n    policy: roundRobin\n");
    let cut = rr.find("    endpointPickerConfig:").unwrap();
    let end = rr.find("  workload:").unwrap();
    let rr = resolve(&format!("{}{}", &rr[..cut], &rr[end..]));
    assert_eq!(Inputs::of(&rr).router.gateway_us_per_prompt_token, None);
}

/// A plain Service's random spread: every request goes somewhere, each replica gets about its share but
/// not the exact round-robin count, the draw repeats for a seed and changes with it.
#[test]
fn random_routing_spreads_requests_unevenly_and_repeats_per_seed() {
    let yaml = example("llm-d-inference-scheduling.yaml")
        .replace("    durationSeconds: 30\n", "    maxRequests: 400\n")
        .replace("ratePerSecond: 40", "ratePerSecond: 8");
    let plain = |policy: &str, seed: &str| {
        let y = yaml.replace(
            "    refreshIntervalMs: 50\n",
            &format!("    refreshIntervalMs: 50\n    policy: {policy}\n"),
        );
        let cut = y.find("    endpointPickerConfig:").unwrap();
        let end = y.find("  workload:").unwrap();
        let y = format!("{}{}", &y[..cut], &y[end..]);
        let y = if seed.is_empty() { y } else { y.replace("  seed: 42\n", &format!("  seed: {seed}\n")) };
        run(&resolve(&y))
    };
    let counts = |o: &blis_sim::scenario::Outcome| -> Vec<u64> {
        o.summary.routing.iter().map(|r| r.routed).collect()
    };
    let (rnd, rr) = (plain("random", ""), plain("roundRobin", ""));
    assert_conserved(&rnd.output);
    let (c, r) = (counts(&rnd), counts(&rr));
    assert!(c.len() >= 2, "{c:?}");
    let (total, n) = (c.iter().sum::<u64>(), c.len() as u64);
    assert_eq!(total, r.iter().sum::<u64>());
    assert!(r.iter().all(|&x| x.abs_diff(total / n) <= 1), "round robin is exact: {r:?}");
    assert!(c.iter().any(|&x| x.abs_diff(total / n) > 1), "random is not round robin: {c:?}");
    assert!(
        c.iter().all(|&x| x.abs_diff(total / n) < total / n / 3),
        "each replica gets about its share: {c:?}"
    );
    assert_eq!(c, counts(&plain("random", "")), "the same seed repeats");
    assert_ne!(c, counts(&plain("random", "7")), "another seed draws differently");
}

/// A replayed trace's warm prefixes (`trace.warmPrefix`): the marked requests find that part of
/// their prompt cached at their replica, block-rounded, and their TTFT falls by about the prefill
/// of those tokens; the others, spaced so they never queue, are untouched.
#[test]
fn warm_prefixes_are_served_from_the_cache_and_shorten_only_their_ttft() {
    let rows: String = (0..60).map(|k| format!("{},{},20\\n", k * 2, 1000 + 37 * k)).collect();
    let yaml = |warm: &str| {
        example("quickstart.yaml").split("  workload:").next().unwrap().to_string()
            + &format!(
                "  workload:\n    trace:\n      {warm}\n      csv: \"arrival_time_s,input_tokens,output_tokens\\n{rows}\"\n    classes: [{{name: trace}}]\n"
            )
    };
    let cold = run(&resolve(&yaml("timeScale: 1")));
    let warm = run(&resolve(&yaml("warmPrefix: {share: 0.5, fraction: 0.6}")));
    assert_conserved(&warm.output);
    let by_id: std::collections::HashMap<u64, &blis_sim::metrics::record::RequestRecord> =
        cold.output.completed.iter().map(|r| (r.id, r)).collect();
    let mut marked = 0;
    for r in &warm.output.completed {
        let c = by_id[&r.id];
        assert_eq!(c.cached_tokens, 0, "no prompt repeats: a cold replay has no hits");
        let want = (f64::from(r.input_tokens) * 0.6).floor() as u32 / 16 * 16;
        if r.cached_tokens > 0 {
            marked += 1;
            assert_eq!(r.cached_tokens, want, "request {}: the warm prefix, whole blocks", r.id);
            assert!(
                r.ttft_us < c.ttft_us * 3 / 4,
                "request {}: {} vs cold {} µs",
                r.id,
                r.ttft_us,
                c.ttft_us
            );
        } else {
            assert_eq!(r.ttft_us, c.ttft_us, "request {}: a cold request is untouched", r.id);
        }
    }
    assert!((18..=42).contains(&marked), "about half the 60 requests are warm: {marked}");
}
