//! The requests the workload hands to the simulator.

/// How a prompt's tokens are identified, for prefix caching without storing tokens:
/// tokens `[0, prefix_len)` are offsets `0..` of the content stream `prefix_key`; tokens
/// `[prefix_len, input_tokens)` are offsets `0..` of the content stream `body_key`; the output continues
/// `body_key` at offset `input_tokens - prefix_len`. Two prompts share a token exactly when
/// (stream key, offset) match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLayout {
    /// Content stream of the shared system prompt (0 when there is none).
    pub prefix_key: u64,
    /// Length of the shared system prompt in tokens (0 when there is none).
    pub prefix_len: u32,
    /// Content stream of the rest of the prompt and of the output.
    pub body_key: u64,
    /// Whether other requests may carry the same body stream at the same time (a repeated question
    /// from a question bank). When false, only this request (and its own later turns) can reuse the
    /// body's KV blocks, which lets the simulator skip indexing them until they are released.
    pub body_shared: bool,
}

/// Where a request sits in a multi-turn session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    /// Session id, unique within a run (0, 1, 2, .. in order of opening).
    pub session: u64,
    /// Turn index within the session, 0 for the opening turn.
    pub turn: u32,
    /// Whether this is the session's final turn.
    pub last_turn: bool,
}

/// One inference request: when it arrives, which class sent it, and how long its prompt and output are.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Id, 0, 1, 2, .. in the order the generator hands requests out.
    pub id: u64,
    /// Arrival time at the gateway, in microseconds of simulated time.
    pub arrival_us: i64,
    /// Index of the class in `spec.workload.classes`.
    pub class: u16,
    /// Prompt length in tokens (shared prefix included), at least 1.
    pub input_tokens: u32,
    /// Tokens to generate (the output length is known up front, as with `ignore_eos`), at least 1.
    pub output_tokens: u32,
    /// Token identity of the prompt, for prefix caching.
    pub prompt: PromptLayout,
    /// Session membership, for turns of multi-turn sessions.
    pub session: Option<SessionRef>,
    /// Leading prompt tokens the serving engine already holds in its prefix cache when the request
    /// arrives, put there by traffic outside the simulated run (a benchmark's warm-up, an earlier
    /// replay of the same prompts); served as hits at the first admission. 0 for generated traffic.
    pub warm_tokens: u32,
}

impl PromptLayout {
    /// Number of prompt tokens taken from the body stream.
    pub fn body_len(&self, input_tokens: u32) -> u32 {
        input_tokens.saturating_sub(self.prefix_len)
    }
}
