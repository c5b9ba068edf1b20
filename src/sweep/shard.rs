//! Splitting a sweep across processes (`--shard i/n`, one Kubernetes Indexed Job pod each) and
//! merging their results. Candidate `k` belongs to shard `k mod n`; a shard's document carries a hash
//! of the sweep spec so results of different sweeps are never merged.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::eval::CandidateResult;
use crate::api::SimulationSweepSpec;
use crate::error::InvalidInput;

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
            InvalidInput::new("--shard", format!("{text:?} is not i/n"), "give e.g. 0/4 (shards count from 0)")
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
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
pub fn spec_hash(spec: &SimulationSweepSpec) -> String {
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
