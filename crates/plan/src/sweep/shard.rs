//! Splitting a sweep across processes (`--shard i/n`, one Kubernetes Indexed Job pod each) and
//! merging their results. Candidate `k` belongs to shard `k mod n`; a shard's document carries a hash
//! of the sweep spec so results of different sweeps are never merged.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::eval::CandidateResult;
use crate::sweep::spec::SweepSpec;
use blis_sim::error::InvalidInput;

/// Shard `index` of `count` (0-based, as `JOB_COMPLETION_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// Reads `i/n` with `0 <= i < n`.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let bad = || {
            InvalidInput::new(
                "--shard",
                format!("{text:?} is not i/n"),
                "give e.g. 0/4 (shards count from 0)",
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    /// Whether candidate `index` is this shard's.
    pub fn owns(&self, index: usize) -> bool {
        index % self.count as usize == self.index as usize
    }
}

/// A hash of the sweep spec: shards of one sweep agree on it.
pub fn spec_hash(spec: &SweepSpec) -> String {
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    Sha256::digest(&bytes).iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// What one shard writes: its candidates' results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardDoc {
    /// Sweep name.
    pub sweep: String,
    /// [`spec_hash`] of the sweep spec.
    pub spec_hash: String,
    /// This shard.
    pub shard: u32,
    /// Number of shards.
    pub shards: u32,
    /// Candidates in the whole sweep.
    pub candidates: usize,
    /// This shard's results, by index.
    pub results: Vec<CandidateResult>,
}

/// Every candidate's result from a full set of shards of one sweep, by index. Fails, naming the
/// shard, when shards come from another sweep, are repeated or missing, or lack candidates.
pub fn merge(docs: &[ShardDoc], spec_hash: &str, total: usize) -> Result<Vec<CandidateResult>, InvalidInput> {
    let fix = "give the outputs of every `blis sweep --shard i/n` run of this sweep file, once each";
    let count = docs.first().map_or(0, |d| d.shards);
    let mut seen = BTreeSet::new();
    for (k, d) in docs.iter().enumerate() {
        let field = format!("shard file {} (shard {}/{})", k + 1, d.shard, d.shards);
        if d.spec_hash != spec_hash || d.candidates != total {
            return Err(InvalidInput::new(field, "comes from a different sweep spec", fix));
        }
        if d.shards != count || !seen.insert(d.shard) {
            return Err(InvalidInput::new(field, "repeats a shard or disagrees on the shard count", fix));
        }
    }
    if seen.len() != count as usize {
        let missing: Vec<String> =
            (0..count).filter(|i| !seen.contains(i)).map(|i| format!("{i}/{count}")).collect();
        return Err(InvalidInput::new("--merge", format!("shards missing: {}", missing.join(", ")), fix));
    }
    let mut all: Vec<CandidateResult> = docs.iter().flat_map(|d| d.results.iter().cloned()).collect();
    all.sort_by_key(|r| r.index);
    let complete = all.len() == total && all.iter().enumerate().all(|(i, r)| r.index == i);
    if !complete {
        return Err(InvalidInput::new(
            "--merge",
            format!("the shards hold {} results for {total} candidates", all.len()),
            fix,
        ));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::eval::RunControl;
    use crate::sweep::{expand, parse_sweep, run, SweepReport};

    fn sweep() -> (String, SweepSpec) {
        let (name, mut spec) = parse_sweep(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/sweeps/sweep-replicas.yaml"
        )))
        .unwrap();
        spec.base.workload.duration_seconds = Some(15.0);
        (name, spec)
    }

    #[test]
    fn a_cancelled_run_skips_every_candidate_not_yet_started() {
        let (_, spec) = sweep();
        let cands = expand::expand(&spec).unwrap();
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let control = RunControl::limited(flag, None);
        let results = run(&spec, &cands, None, None, 2, &control).unwrap();
        assert_eq!(results.len(), cands.len());
        for r in &results {
            assert!(!r.feasible && r.figures.is_none(), "{r:?}");
            assert!(r.failed.iter().any(|m| m.contains("cancelled")), "{:?}", r.failed);
        }
        let live = run(&spec, &cands, None, None, 2, &RunControl::default()).unwrap();
        assert!(live.iter().all(|r| r.figures.is_some()), "an uncancelled control runs them all");
    }

    #[test]
    fn parse_accepts_i_of_n_only() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert_eq!(Shard::parse(bad).unwrap_err().field, "--shard", "{bad}");
        }
    }

    #[test]
    fn four_merged_shards_rank_exactly_like_one_run_on_any_thread_count() {
        let (name, spec) = sweep();
        let cands = expand::expand(&spec).unwrap();
        let single = run(&spec, &cands, None, None, 2, &RunControl::default()).unwrap();
        let one_thread = run(&spec, &cands, None, None, 1, &RunControl::default()).unwrap();
        assert_eq!(single, one_thread, "results do not depend on the thread count");
        let hash = spec_hash(&spec);
        let docs: Vec<ShardDoc> = (0..4)
            .map(|i| {
                let s = Shard { index: i, count: 4 };
                let results = run(&spec, &cands, Some(s), None, 1, &RunControl::default()).unwrap();
                assert!(results.iter().all(|r| s.owns(r.index)));
                let doc = ShardDoc {
                    sweep: name.clone(),
                    spec_hash: hash.clone(),
                    shard: i,
                    shards: 4,
                    candidates: cands.len(),
                    results,
                };
                // Through JSON, as between processes.
                serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap()
            })
            .collect();
        let merged = merge(&docs, &hash, cands.len()).unwrap();
        let a = SweepReport::new(&name, &spec, &single);
        let b = SweepReport::new(&name, &spec, &merged);
        let names = |r: &SweepReport| r.ranking.iter().map(|x| x.result.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        assert_eq!(a.pareto, b.pareto);
        assert_eq!(a.best, b.best);
        assert!(a.feasible > 0 && a.feasible < a.candidates, "the example has winners and losers");
        // Every candidate ran with the same seed: the same base workload.
        assert!(single.iter().all(|r| r.figures.as_ref().is_some_and(|f| f.completed > 0)));

        let err = merge(&docs[..3], &hash, cands.len()).unwrap_err();
        assert!(err.problem.contains("3/4"), "{err}");
        let mut twice = docs.clone();
        twice[3] = docs[2].clone();
        assert!(merge(&twice, &hash, cands.len()).unwrap_err().problem.contains("repeats"));
        assert!(merge(&docs, "other", cands.len()).unwrap_err().problem.contains("different sweep"));
    }
}
