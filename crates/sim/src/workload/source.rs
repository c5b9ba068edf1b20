//! Where the engine takes its requests from: the generator itself, or, for an open-loop workload
//! (whose requests do not depend on the run), the generator running ahead on a second thread so that
//! generating them (arrival draws, lengths, prompt identities, a trace's rows) overlaps the
//! simulation instead of adding to it.
//!
//! The run ahead changes nothing the run sees: the generator hands out the same requests in the
//! same order, each with the send time the engine would have peeked, and it stops at the first
//! request past the horizon, as the engine does, so its counts and stage logs at the end are those
//! of a run that popped every request itself.

use super::{Request, WorkloadGen};
use crate::handoff::{self, Drain};

/// What the engine needs of a stream of requests.
pub trait RequestSource {
    /// Number of request classes.
    fn class_count(&self) -> usize;
    /// When the next request is sent, if any.
    fn peek_time(&mut self) -> Option<i64>;
    /// The next request (the one [`RequestSource::peek_time`] timed).
    fn pop(&mut self) -> Option<Request>;
    /// A request finished (completed or not) at `done_at_us`; closed-loop sources react to it.
    fn on_request_done(&mut self, req: &Request, done_at_us: i64, completed: bool);
    /// How many requests the stream holds when that is known before the run (a request cap, a
    /// trace's rows), at most [`MAX_EXPECTED`]: room made for their records up front is written once
    /// instead of being copied each time it doubles.
    fn expected_requests(&self) -> usize {
        0
    }
}

/// The most records a run makes room for up front (the rest grow as needed).
pub const MAX_EXPECTED: usize = 1 << 20;

impl RequestSource for WorkloadGen {
    fn class_count(&self) -> usize {
        self.class_names().len()
    }

    fn expected_requests(&self) -> usize {
        WorkloadGen::expected_requests(self)
    }

    fn peek_time(&mut self) -> Option<i64> {
        WorkloadGen::peek_time(self)
    }

    fn pop(&mut self) -> Option<Request> {
        WorkloadGen::pop(self)
    }

    fn on_request_done(&mut self, req: &Request, done_at_us: i64, completed: bool) {
        WorkloadGen::on_request_done(self, req, done_at_us, completed);
    }
}

/// Requests in the first hand-over: few, so the simulation starts at once.
const FIRST_CHUNK: usize = 64;

/// The requests of an open-loop generator running on another thread (see the module docs), each
/// with the send time peeked for it.
pub struct Prefetched {
    drain: Drain<(i64, Request)>,
    classes: usize,
    expected: usize,
}

impl RequestSource for Prefetched {
    fn class_count(&self) -> usize {
        self.classes
    }

    fn expected_requests(&self) -> usize {
        self.expected
    }

    fn peek_time(&mut self) -> Option<i64> {
        self.drain.peek().map(|&(t, _)| t)
    }

    fn pop(&mut self) -> Option<Request> {
        self.drain.next_item().map(|(_, r)| r)
    }

    /// Nothing in an open-loop stream depends on completions.
    fn on_request_done(&mut self, _req: &Request, _done_at_us: i64, _completed: bool) {}
}

/// Runs `f` on the requests of `gen` generated ahead on a second thread, up to the first request sent
/// after `horizon_us`. `gen` must be open-loop ([`WorkloadGen::is_open_loop`]); afterwards it is in
/// the state of a generator the engine popped itself (see the module docs), provided `f` takes
/// every request up to the horizon (a run that stops early returns an error, and the generator's
/// state is then not read).
pub fn prefetched<R>(
    gen: &mut WorkloadGen,
    horizon_us: Option<i64>,
    f: impl FnOnce(&mut Prefetched) -> R,
) -> R {
    debug_assert!(gen.is_open_loop(), "only an open-loop stream can be generated ahead");
    let (classes, expected) = (gen.class_names().len(), gen.expected_requests());
    let (mut feeder, drain) = handoff::pipe(FIRST_CHUNK);
    std::thread::scope(|s| {
        // Stops at the end of the stream, at the horizon, or when the run has stopped (the source
        // is dropped when `f` returns); the feeder's drop hands over the last requests.
        s.spawn(move || {
            while let Some(t) = gen.peek_time().filter(|&t| horizon_us.is_none_or(|h| t <= h)) {
                let Some(r) = gen.pop() else { break };
                if !feeder.push((t, r)) {
                    break;
                }
            }
        });
        f(&mut Prefetched { drain, classes, expected })
    })
}
