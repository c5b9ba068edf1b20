//! The engine defaults vLLM itself picks, by release and GPU: the OpenAI server's batching limits
//! (`max_num_seqs`, `max_num_batched_tokens`), whether chunked prefill, prefix caching and async
//! scheduling are on. A scenario that leaves a knob out gets what that vLLM release would have used.
//!
//! History (vLLM pull requests): #10544 (0.6.5: chunked-prefill budget 512 -> 2048), #12369 (V1:
//! 8192 tokens on H100/H200), V1 default from 0.8.0 (1024 sequences, chunked prefill and prefix caching
//! always on), #16158 (0.8.4: 256 sequences except H100/H200), #17073 (0.8.5: 1024 / 8192 for every GPU
//! of at least 70 GiB), #17885 (0.9.0: A100 excluded again), #27614 (async scheduling on by default;
//! taken as 0.14). Current code: GPUs of at least 70 GiB that are not A100 get 1024 / 8192, others
//! 256 / 2048.

use std::fmt;

use crate::catalog::gpu::GpuProfile;
use crate::error::InvalidInput;

/// The vLLM release a scenario assumes when it names none (the release of the shared llm-d guides).
pub const DEFAULT_VERSION: &str = "0.23.0";

/// A vLLM release, `major.minor.patch` (suffixes such as `.post1` or `rc1` are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VllmVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl fmt::Display for VllmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl VllmVersion {
    const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch }
    }

    /// Reads `0.19.1`, `v0.8.5.post1`, `0.10`, `0.11.0rc2` (an image tag or a version string).
    pub fn parse(text: &str, field: &str) -> Result<Self, InvalidInput> {
        let bad = || {
            InvalidInput::new(
                field,
                format!("{text:?} is not a vLLM version"),
                "give a release such as 0.19.1 (or leave it out for the current release)",
            )
        };
        let t = text.trim().trim_start_matches('v');
        let mut nums = t.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = nums.next().flatten().ok_or_else(bad)?;
        let minor = nums.next().flatten().ok_or_else(bad)?;
        let patch = nums.next().flatten().unwrap_or(0);
        Ok(Self::new(major, minor, patch))
    }

    /// Whether this release runs the V1 engine by default.
    fn v1(self) -> bool {
        self >= Self::new(0, 8, 0)
    }
}

/// What vLLM picks for the knobs a deployment leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineDefaults {
    /// `--max-num-seqs`.
    pub max_num_seqs: u32,
    /// `--max-num-batched-tokens` with chunked prefill on (without it, at least `max_model_len`).
    pub max_num_batched_tokens: u32,
    /// Prefix caching on.
    pub prefix_caching: bool,
    /// Async scheduling on.
    pub async_scheduling: bool,
    /// The context length above which the V0 API server turns chunked prefill on by itself (V1: always on).
    pub chunked_prefill_above: Option<u32>,
}

impl EngineDefaults {
    /// Whether chunked prefill is on for a replica with this `max_model_len`.
    pub fn chunked_prefill(&self, max_model_len: u32) -> bool {
        self.chunked_prefill_above.is_none_or(|l| max_model_len > l)
    }
}

fn is_a100(gpu: &GpuProfile) -> bool {
    gpu.name.to_ascii_uppercase().contains("A100")
}

fn is_h100_h200(gpu: &GpuProfile) -> bool {
    let n = gpu.name.to_ascii_uppercase();
    n.contains("H100") || n.contains("H200")
}

/// The defaults of vLLM `version`'s OpenAI server on `gpu`.
pub fn engine_defaults(version: VllmVersion, gpu: &GpuProfile) -> EngineDefaults {
    let v = |a, b, c| VllmVersion::new(a, b, c);
    let big = gpu.memory_gib >= 70.0;
    let (large_batch, seqs_everywhere_1024) = if version >= v(0, 9, 0) {
        (big && !is_a100(gpu), false)
    } else if version >= v(0, 8, 5) {
        (big, false)
    } else if version >= v(0, 8, 4) {
        (is_h100_h200(gpu), false)
    } else if version.v1() {
        (is_h100_h200(gpu), true)
    } else {
        (false, false)
    };
    let max_num_seqs = if large_batch || seqs_everywhere_1024 { 1024 } else { 256 };
    let max_num_batched_tokens = if large_batch {
        8192
    } else if version >= v(0, 6, 5) {
        2048
    } else {
        512
    };
    EngineDefaults {
        max_num_seqs,
        max_num_batched_tokens,
        prefix_caching: version.v1(),
        async_scheduling: version >= v(0, 14, 0),
        chunked_prefill_above: (!version.v1()).then_some(32_768),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::gpu;

    fn at(version: &str, g: &str) -> EngineDefaults {
        engine_defaults(VllmVersion::parse(version, "v").unwrap(), &gpu::builtin(g).unwrap())
    }

    #[test]
    fn batching_defaults_follow_release_and_gpu() {
        let b = |d: EngineDefaults| (d.max_num_seqs, d.max_num_batched_tokens);
        assert_eq!(b(at("0.23.0", "H100")), (1024, 8192));
        assert_eq!(b(at("v0.19.1", "H100")), (1024, 8192));
        assert_eq!(b(at("0.19.1", "A100")), (256, 2048), "A100 excluded since 0.9");
        assert_eq!(b(at("0.8.5.post1", "A100")), (1024, 8192), "0.8.5: every GPU of >= 70 GiB");
        assert_eq!(b(at("0.8.4", "A100")), (256, 2048));
        assert_eq!(b(at("0.8.2", "A100")), (1024, 2048), "early V1: 1024 sequences everywhere");
        assert_eq!(b(at("0.23.0", "L40S")), (256, 2048));
        assert_eq!(b(at("0.23.0", "MI300X")), (1024, 8192));
        assert_eq!(b(at("0.6.3", "H100")), (256, 512));
    }

    #[test]
    fn engine_features_by_release() {
        let old = at("0.7.3", "H100");
        assert!(!old.prefix_caching && !old.async_scheduling);
        assert!(!old.chunked_prefill(8192) && old.chunked_prefill(131_072));
        let v1 = at("0.8.5", "H100");
        assert!(v1.prefix_caching && v1.chunked_prefill(2048) && !v1.async_scheduling);
        assert!(at("0.15.1", "H100").async_scheduling);
    }

    #[test]
    fn versions_parse_or_name_the_field() {
        assert_eq!(VllmVersion::parse("0.10", "f").unwrap(), VllmVersion::new(0, 10, 0));
        assert_eq!(VllmVersion::parse("0.11.0rc2", "f").unwrap(), VllmVersion::new(0, 11, 0));
        assert!(VllmVersion::parse("0.9.2", "f").unwrap() > VllmVersion::parse("0.8.5.post1", "f").unwrap());
        let e = VllmVersion::parse("latest", "spec.vllm.version").unwrap_err();
        assert_eq!(e.field, "spec.vllm.version");
    }
}
