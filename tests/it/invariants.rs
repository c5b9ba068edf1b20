//! Simulator invariants: conservation, no KV leaks, monotone clock, latency consistency, preemption
//! survival, prefix-hit rates, saturation, and fast-forward equivalence.

use crate::common;

use common::*;
use proptest::prelude::*;

#[test]
fn drained_run_accounts_for_every_request_and_frees_every_block() {
    let r = resolve(&manifest(&format!("{LLAMA8B_H100}{}", simple_workload(20.0, 1500, 600, 200))));
    let o = run_checked(&r, true);
    assert_request_invariants(&o.output);
    assert_eq!(o.output.completed.len(), 1500);
    assert_eq!(o.output.unfinished, 0);
    for i in &o.output.instances {
        assert_eq!(i.used_blocks_at_end, 0, "KV blocks leaked");
    }
}

#[test]
fn horizon_leaves_unfinished_requests_accounted() {
    let yaml = manifest(&format!(
        "{LLAMA8B_H100}  simulation: {{horizonSeconds: 5}}\n{}",
        simple_workload(50.0, 2000, 600, 400)
    ));
    let o = run_checked(&resolve(&yaml), true);
    assert_request_invariants(&o.output);
    assert!(o.output.unfinished > 0, "a 5 s horizon must cut a 40 s workload");
}

#[test]
fn undersized_kv_preempts_and_every_request_still_completes() {
    let yaml = manifest(&format!(
        "{LLAMA8B_H100}  vllm: {{kvBlocks: 400, maxNumSeqs: 128}}\n{}",
        simple_workload(40.0, 600, 400, 300)
    ));
    let r = resolve(&yaml);
    let o = run_checked(&r, true);
    assert_request_invariants(&o.output);
    assert!(o.summary.kv_cache.preemptions > 0, "400 blocks for ~100 concurrent requests must preempt");
    assert_eq!(o.output.completed.len(), 600);
    assert!(o.output.completed.iter().any(|x| x.preemptions > 0));
    for i in &o.output.instances {
        assert_eq!(i.used_blocks_at_end, 0);
    }
}

#[test]
fn requests_that_can_never_fit_are_rejected_with_a_reason() {
    let yaml = manifest(&format!(
        "{LLAMA8B_H100}  vllm: {{maxModelLen: 1000}}\n{}",
        simple_workload(5.0, 200, 800, 300)
    ));
    let o = run_checked(&resolve(&yaml), true);
    assert_request_invariants(&o.output);
    assert!(!o.output.rejected.is_empty());
    assert!(o.output.rejected.iter().all(|x| x.reason == "ExceedsMaxModelLen"));
    assert!(!o.output.completed.is_empty());
}

#[test]
fn fast_forward_gives_identical_results_to_stepping_one_by_one() {
    let cases = [
        // Found by the proptest: simultaneous step ends on different replicas must finish in the
        // same order with and without fast-forward (async scheduling, no chunked prefill).
        format!(
            "  seed: 64\n{LLAMA8B_H100}  replicas: 3\n  vllm: {{maxNumSeqs: 6, maxNumBatchedTokens: 4096, blockSize: 8, maxModelLen: 4096, enableChunkedPrefill: false}}\n{}",
            simple_workload(43.8, 150, 188, 34)
        ),
        format!("{LLAMA8B_H100}{}", simple_workload(15.0, 800, 600, 250)),
        format!("{LLAMA8B_H100}  replicas: 3\n{}", simple_workload(60.0, 1500, 300, 400)),
        format!("{LLAMA8B_H100}  vllm: {{kvBlocks: 500}}\n{}", simple_workload(40.0, 500, 400, 300)),
        format!("{LLAMA8B_H100}  vllm: {{maxNumSeqs: 8, blockSize: 32}}\n{}", simple_workload(30.0, 300, 100, 200)),
        // Synchronous scheduling (the default is vLLM's async scheduling).
        format!("{LLAMA8B_H100}  vllm: {{asyncScheduling: false}}\n{}", simple_workload(15.0, 800, 600, 250)),
        // A CPU KV offload tier under GPU KV pressure (prefixes evicted from the GPU come back from CPU).
        format!("{LLAMA8B_H100}  vllm: {{kvBlocks: 600, cpuOffloadGib: 2}}\n{}", offload_workload()),
        // The roofline latency model (the default on a calibrated GPU is the calibrated one).
        format!("{LLAMA8B_H100}  latencyModel: roofline\n{}", simple_workload(20.0, 600, 600, 250)),
        format!(
            "{LLAMA8B_H100}  workload:
    maxRequests: 600
    arrival: {{process: gamma, ratePerSecond: 10, cv: 3}}
    classes:
    - name: chat
      inputTokens: {{distribution: uniform, min: 10, max: 900}}
      outputTokens: {{distribution: exponential, mean: 150, min: 1, max: 2000}}
      prefix: {{groups: 3, tokens: 200}}
      session: {{turns: {{distribution: fixed, value: 3}}, thinkTimeMs: {{distribution: fixed, value: 500}}, accumulate: true}}
"
        ),
    ];
    for spec in &cases {
        let r = resolve(&manifest(spec));
        let fast = run_checked(&r, true);
        let slow = run_checked(&r, false);
        assert_eq!(fast.output.completed, slow.output.completed, "records differ for\n{spec}");
        assert_eq!(fast.output.rejected, slow.output.rejected);
        assert_eq!(fast.output.instances, slow.output.instances, "replica totals differ for\n{spec}");
        assert_eq!(fast.output.series, slow.output.series, "time series differ for\n{spec}");
        assert_eq!(fast.summary, slow.summary);
        assert!(fast.output.events < slow.output.events, "fast-forward should save events");
    }
}

#[test]
fn prefix_heavy_workload_hits_near_its_theoretical_rate() {
    // One shared 1024-token system prompt, unique 64-token questions: every request after the first
    // can reuse the 64 full prefix blocks (1024 tokens) of its 1088-token prompt.
    let yaml = manifest(&format!(
        "{LLAMA8B_H100}  workload:
    maxRequests: 500
    arrival: {{process: poisson, ratePerSecond: 5}}
    classes:
    - name: c
      inputTokens: {{distribution: fixed, value: 64}}
      outputTokens: {{distribution: fixed, value: 20}}
      prefix: {{groups: 1, tokens: 1024}}
"
    ));
    let o = run_checked(&resolve(&yaml), true);
    let theoretical = 1024.0 / 1088.0 * 499.0 / 500.0;
    let got = o.summary.kv_cache.prefix_cache_hit_rate;
    assert!((got - theoretical).abs() < 0.01, "hit rate {got} vs theoretical {theoretical}");

    // With caching off, nothing hits.
    let off = yaml.replace("  workload:", "  vllm: {enablePrefixCaching: false}\n  workload:");
    let o = run_checked(&resolve(&off), true);
    assert_eq!(o.summary.kv_cache.prefix_cache_hit_rate, 0.0);
}

#[test]
fn throughput_rises_with_rate_then_saturates() {
    let tput = |rate: f64| {
        let yaml = manifest(&format!(
            "{LLAMA8B_H100}  vllm: {{maxNumSeqs: 64}}\n  workload:
    durationSeconds: 60
    arrival: {{process: poisson, ratePerSecond: {rate}}}
    classes:
    - name: c
      inputTokens: {{distribution: fixed, value: 1000}}
      outputTokens: {{distribution: fixed, value: 300}}
"
        ));
        run(&resolve(&yaml)).summary.overall.throughput.output_tokens_per_s
    };
    let rates = [1.0, 2.0, 4.0, 8.0, 40.0, 80.0];
    let t: Vec<f64> = rates.iter().map(|&r| tput(r)).collect();
    // Light load: throughput follows the offered load.
    assert!(t[1] / t[0] > 1.7 && t[2] / t[1] > 1.7, "not proportional at light load: {t:?}");
    // Heavy load: doubling the rate adds almost nothing.
    assert!(t[5] / t[4] < 1.15, "not saturated at heavy load: {t:?}");
    assert!(t.windows(2).all(|w| w[1] >= w[0] * 0.97), "throughput fell as load rose: {t:?}");
}

proptest! {
    // A fixed seed keeps CI reproducible; change it locally to explore new cases.
    #![proptest_config(ProptestConfig {
        cases: 24,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
        .. ProptestConfig::default()
    })]

    /// Any small scenario keeps the invariants, and fast-forward never changes the outcome.
    #[test]
    fn random_scenarios_keep_invariants(
        rate in 1.0f64..80.0,
        input in 1u32..1500,
        output in 1u32..400,
        replicas in 1u32..4,
        seqs in 1u32..64,
        budget in 64u32..4096,
        kv in prop::option::of(520u32..3000),
        groups in 0u32..4,
        block in prop::sample::select(vec![8u32, 16, 32]),
        chunked in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let kv = kv.map_or(String::new(), |k| format!(", kvBlocks: {k}"));
        let prefix = if groups > 0 { format!("      prefix: {{groups: {groups}, tokens: 100}}\n") } else { String::new() };
        let budget = if chunked { budget } else { budget.max(4096) };
        let yaml = manifest(&format!(
            "  seed: {seed}
{LLAMA8B_H100}  replicas: {replicas}
  vllm: {{maxNumSeqs: {seqs}, maxNumBatchedTokens: {budget}, blockSize: {block}, maxModelLen: 4096, enableChunkedPrefill: {chunked}{kv}}}
  workload:
    maxRequests: 150
    arrival: {{process: poisson, ratePerSecond: {rate}}}
    classes:
    - name: c
      inputTokens: {{distribution: uniform, min: 1, max: {input}}}
      outputTokens: {{distribution: uniform, min: 1, max: {output}}}
{prefix}"
        ));
        let r = resolve(&yaml);
        let fast = run_checked(&r, true);
        assert_request_invariants(&fast.output);
        for i in &fast.output.instances {
            prop_assert_eq!(i.used_blocks_at_end, 0);
        }
        let slow = run_checked(&r, false);
        prop_assert_eq!(&fast.output.completed, &slow.output.completed);
        prop_assert_eq!(&fast.output.instances, &slow.output.instances);
        prop_assert_eq!(&fast.output.series, &slow.output.series);
    }
}

fn offload_workload() -> String {
    "  workload:
    maxRequests: 800
    arrival: {process: poisson, ratePerSecond: 12}
    classes:
    - name: c
      inputTokens: {distribution: fixed, value: 64}
      outputTokens: {distribution: fixed, value: 100}
      prefix: {groups: 40, tokens: 1024}
"
    .to_string()
}

#[test]
fn cpu_offload_tier_serves_prefixes_the_gpu_evicted() {
    let gpu_only =
        resolve(&manifest(&format!("{LLAMA8B_H100}  vllm: {{kvBlocks: 600}}\n{}", offload_workload())));
    let with_cpu = resolve(&manifest(&format!(
        "{LLAMA8B_H100}  vllm: {{kvBlocks: 600, cpuOffloadGib: 2}}\n{}",
        offload_workload()
    )));
    assert!(with_cpu.instance.cpu_offload_blocks > 0);
    let a = run_checked(&gpu_only, true);
    let b = run_checked(&with_cpu, true);
    assert_request_invariants(&b.output);
    let ttft = |o: &blis_sim::scenario::Outcome| {
        o.output.completed.iter().map(|r| r.ttft_us as f64).sum::<f64>() / o.output.completed.len() as f64
    };
    assert!(ttft(&b) < ttft(&a), "CPU hits must shorten prefills: {} vs {}", ttft(&b), ttft(&a));
}

/// gpt-oss-20b on one H100: 12 of its 24 layers use a 128-token sliding window.
const GPT_OSS_20B_H100: &str = "  model: {name: openai/gpt-oss-20b}
  hardware: {gpu: H100-SXM-80GB, tensorParallelism: 1}
";

#[test]
fn sliding_window_kv_is_taken_per_running_sequence_not_reserved_for_max_num_seqs() {
    let resolved = |seqs: u32| {
        resolve(&manifest(&format!(
            "{GPT_OSS_20B_H100}  vllm: {{maxNumSeqs: {seqs}}}\n{}",
            simple_workload(5.0, 10, 100, 10)
        )))
    };
    let (few, many) = (resolved(8), resolved(1024));
    // A window's worth of blocks per running sequence: ceil(128 / 16) + 1 blocks of the sliding layers,
    // which hold as many layers as the full-attention ones (one pool block each).
    assert_eq!(few.instance.window_blocks, 9);
    // The pool is the same whatever maxNumSeqs allows: nothing is set aside up front.
    assert_eq!(few.instance.total_blocks, many.instance.total_blocks);
    // A model without sliding layers holds no window blocks.
    let dense = resolve(&manifest(&format!("{LLAMA8B_H100}{}", simple_workload(5.0, 10, 100, 10))));
    assert_eq!(dense.instance.window_blocks, 0);
}

#[test]
fn sliding_window_blocks_bound_how_many_sequences_run_at_once() {
    // 200 blocks of 16 tokens, prompts of 100 tokens (7 blocks) + 9 window blocks each: at most 12
    // sequences fit at once (12 x 16 = 192, before their outputs grow).
    let r = resolve(&manifest(&format!(
        "{GPT_OSS_20B_H100}  vllm: {{kvBlocks: 200, maxNumSeqs: 256}}\n{}",
        simple_workload(200.0, 300, 100, 50)
    )));
    let o = run_checked(&r, true);
    assert_request_invariants(&o.output);
    assert_eq!(o.output.completed.len(), 300);
    for i in &o.output.instances {
        assert_eq!(i.used_blocks_at_end, 0, "KV blocks leaked");
        assert!(i.peak_used_blocks <= i.total_blocks);
    }
    let batch = o.summary.kv_cache.batch_size_mean;
    assert!(batch > 4.0 && batch <= 12.0, "mean batch {batch}: at most 12 sequences fit in 200 blocks");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x51d),
        .. ProptestConfig::default()
    })]

    /// With sliding-window layers every running sequence holds exactly its window blocks (checked at
    /// every event), none leak when the run drains, the pool is never exceeded, and fast-forward
    /// changes nothing.
    #[test]
    fn sliding_window_kv_never_leaks(
        rate in 1.0f64..80.0,
        input in 1u32..1200,
        output in 1u32..300,
        seqs in 1u32..64,
        kv in 160u32..1500,
        groups in 0u32..3,
        block in prop::sample::select(vec![16u32, 32]),
        seed in 0u64..1000,
    ) {
        let prefix = if groups > 0 { format!("      prefix: {{groups: {groups}, tokens: 100}}\n") } else { String::new() };
        let yaml = manifest(&format!(
            "  seed: {seed}
{GPT_OSS_20B_H100}  vllm: {{maxNumSeqs: {seqs}, blockSize: {block}, maxModelLen: 2048, kvBlocks: {kv}}}
  workload:
    maxRequests: 120
    arrival: {{process: poisson, ratePerSecond: {rate}}}
    classes:
    - name: c
      inputTokens: {{distribution: uniform, min: 1, max: {input}}}
      outputTokens: {{distribution: uniform, min: 1, max: {output}}}
{prefix}"
        ));
        let r = resolve(&yaml);
        prop_assert!(r.instance.window_blocks > 0);
        let fast = run_checked(&r, true);
        assert_request_invariants(&fast.output);
        for i in &fast.output.instances {
            prop_assert_eq!(i.used_blocks_at_end, 0);
            prop_assert!(i.peak_used_blocks <= i.total_blocks);
        }
        let slow = run_checked(&r, false);
        prop_assert_eq!(&fast.output.completed, &slow.output.completed);
        prop_assert_eq!(&fast.output.instances, &slow.output.instances);
    }
}
