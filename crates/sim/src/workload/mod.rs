//! Workload: the requests a scenario sends, generated lazily from the seed or replayed from a trace.
//!
//! [`WorkloadSpec`] is the `spec.workload` section of a scenario manifest; [`validate`] checks it and
//! [`WorkloadGen`] turns it into a time-ordered stream of [`Request`]s, one at a time, in memory
//! proportional to the number of classes and live sessions (never to the number of requests).
//!
//! # Randomness
//! Every draw comes from a named stream of the scenario seed (`workload.arrival`, `workload.class`,
//! and per class `workload.input`, `workload.output`, `workload.prefix`, `workload.session`,
//! `workload.arrival.class`), so the same seed replays the same workload and one consumer's draws
//! never shift another's.
//!
//! # Arrivals
//! The shared arrival process picks a class for each arrival by weight; a class with its own `arrival`
//! gets an independent stream instead. `durationSeconds` (and the end of the last stage) stops new
//! arrivals; turns of sessions already open still follow. `maxRequests` caps every request handed out,
//! follow-up turns included.
//!
//! # Prompt identity (prefix caching)
//! A [`PromptLayout`] names two content streams: the class's system prompt for the chosen group
//! (`prefix.groups` per class; classes never share system prompts, even with identical specs) and the
//! body. With `prefix.questionsPerGroup`, each request picks one of the group's questions; a repeated
//! question repeats exactly (same body stream, same length). Otherwise the body stream is unique to
//! the request.
//!
//! # Load stages and the client
//! Arrival stages run back to back, or with `betweenStages.drain` each waits until every request of
//! the previous stage has finished, then `pauseSeconds` (inference-perf's stage loop). The generator
//! logs each stage as run ([`StageLog`]); a request belongs to the stage in which it was sent. A
//! `client` bounds the requests in flight (a due request waits for a free slot, in order, and its
//! latencies count from the actual send) and gives up on a request at its deadline. With prefix
//! `order: cycle` a class replays a fixed shuffled prompt list from its start at every stage.
//!
//! # Sessions
//! Each arrival of a class with `session` opens a session of `turns` turns. Later turns are created
//! only by [`WorkloadGen::on_request_done`], a think time after the previous turn completes; a turn
//! that does not complete ends its session. With `accumulate` (the default) turn N+1's prompt is turn
//! N's prompt, its output and a new question, all in one body stream owned by the session, so the
//! earlier part is a prefix hit; as a consequence, in accumulating sessions the question bank
//! (`questionsPerGroup`) sets the questions' lengths but not their content, and only the system prompt
//! is shared between sessions. Without `accumulate` every turn is a fresh prompt: system prompt plus
//! question.
//!
//! # Trace replay
//! With `trace`, requests come from the CSV rows instead: a header row, one arrival column
//! (`arrival_time_s`, `arrival_time_ms` or `arrival_time_us`), `input_tokens`, `output_tokens`, and
//! optionally `prefix_group` and `class`; other columns are ignored, rows must be sorted by arrival,
//! and token counts of 0 are replayed as 1. The whole trace is checked once when the generator is
//! built (streaming, nothing stored), then read one row per request. Classes then only name SLOs and
//! priorities, selected by the `class` column (empty or absent = the first class); an unknown class
//! name is rejected at load time, naming its row. Rows with a `prefix_group` share the first
//! `prefixTokens` tokens of their prompt with the group (`prefixGroups` assigns groups at random to
//! traces without that column). `warmPrefix` marks a share of the rows as arriving with part of
//! their prompt already cached by traffic before the run ([`Request::warm_tokens`]).

mod arrival;
mod client;
mod generator;
mod length;
mod request;
mod slo;
pub mod source;
mod spec;
mod stage;
mod trace;

#[cfg(test)]
mod tests;

pub use generator::WorkloadGen;
pub use request::{PromptLayout, Request, SessionRef};
pub use slo::Slo;
pub use spec::{
    validate, ArrivalProcess, ArrivalSpec, BetweenStagesSpec, ClassSpec, ClientSpec, EmpiricalPoint,
    LengthDist, PrefixSpec, PromptOrder, SessionSpec, StageSpec, TraceSpec, WarmPrefixSpec,
    WorkloadProfileSpec, WorkloadSpec, MAX_CLASSES,
};
pub use stage::StageLog;
pub use trace::{PlainCsv, Trace, TraceBuilder};
