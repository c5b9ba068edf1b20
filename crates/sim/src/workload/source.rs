//! Where the engine takes its requests from: the generator itself, or, for an open-loop workload
//! (whose requests do not depend on the run), the generator running ahead on a second thread so that
//! generating them (arrival draws, lengths, prompt identities, a trace's rows) overlaps the
//! simulation instead of adding to it.
//!
//! The run ahead changes nothing the run sees: the generator hands out the same requests in the
//! same order, each with the send time the engine would have peeked, and it stops at the first
//! request past the horizon, as the engine does, so its counts and stage logs at the end are those
//! of a run that popped every request itself.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

use super::{Request, WorkloadGen};

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
}

impl RequestSource for WorkloadGen {
    fn class_count(&self) -> usize {
        self.class_names().len()
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

/// Requests with the send time peeked for each, as they cross between the threads.
type Chunk = Vec<(i64, Request)>;

/// Chunk sizes: small first, so the simulation starts at once; then large, so the hand-over costs
/// little per request.
const FIRST_CHUNK: usize = 64;
const CHUNK: usize = 2048;
/// Chunks generated and not yet taken: bounds the run ahead (and its memory) to a few thousand
/// requests.
const AHEAD: usize = 3;

/// The requests of an open-loop generator running on another thread (see the module docs).
pub struct Prefetched {
    rx: Receiver<Chunk>,
    /// Emptied chunks go back to the generator's thread for reuse (no allocation per chunk).
    back: Sender<Chunk>,
    chunk: Chunk,
    pos: usize,
    ended: bool,
    classes: usize,
}

impl Prefetched {
    /// Takes the next non-empty chunk; false once the generator has handed out its last one.
    fn refill(&mut self) -> bool {
        while !self.ended && self.pos == self.chunk.len() {
            let used = std::mem::take(&mut self.chunk);
            self.pos = 0;
            // The generator may have finished and gone: nothing to recycle then.
            let _ = self.back.send(used);
            match self.rx.recv() {
                Ok(c) => self.chunk = c,
                Err(_) => self.ended = true,
            }
        }
        self.pos < self.chunk.len()
    }
}

impl RequestSource for Prefetched {
    fn class_count(&self) -> usize {
        self.classes
    }

    fn peek_time(&mut self) -> Option<i64> {
        if self.pos == self.chunk.len() && !self.refill() {
            return None;
        }
        Some(self.chunk[self.pos].0)
    }

    fn pop(&mut self) -> Option<Request> {
        self.peek_time()?;
        let r = self.chunk[self.pos].1.clone();
        self.pos += 1;
        Some(r)
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
    let classes = gen.class_names().len();
    let (tx, rx) = sync_channel::<Chunk>(AHEAD);
    let (back, recycled) = channel::<Chunk>();
    std::thread::scope(|s| {
        s.spawn(move || generate(gen, horizon_us, &tx, &recycled));
        let mut source = Prefetched { rx, back, chunk: Vec::new(), pos: 0, ended: false, classes };
        // Dropping the source on return unblocks the generator if the run stopped early.
        f(&mut source)
    })
}

/// The generator's thread: fills chunks until the stream ends, the horizon, or the consumer leaves.
fn generate(
    gen: &mut WorkloadGen,
    horizon_us: Option<i64>,
    tx: &SyncSender<Chunk>,
    recycled: &Receiver<Chunk>,
) {
    let mut size = FIRST_CHUNK;
    loop {
        let mut chunk = recycled.try_recv().unwrap_or_default();
        chunk.clear();
        chunk.reserve(size);
        let mut last = false;
        while chunk.len() < size {
            let Some(t) = gen.peek_time().filter(|&t| horizon_us.is_none_or(|h| t <= h)) else {
                last = true;
                break;
            };
            let Some(r) = gen.pop() else {
                last = true;
                break;
            };
            chunk.push((t, r));
        }
        if tx.send(chunk).is_err() || last {
            return;
        }
        size = CHUNK;
    }
}
