//! The lazy request generator: merges arrival streams, follow-up session turns and trace rows in time order.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::Rng;

use super::arrival::{secs_to_us, ArrivalStream};
use super::client::{Client, Held};
use super::length::Sampler;
use super::request::{PromptLayout, Request, SessionRef};
use super::spec::{validate, ArrivalSpec, ClassSpec, LengthDist, PromptOrder, WarmPrefixSpec, WorkloadSpec};
use super::stage::StageLog;
use super::trace::{Trace, TraceSource};
use crate::error::InvalidInput;
use crate::rng::{self, fnv1a64, mix2, SimRng};

/// Content-stream key of system prompt `group` of class `class`. Classes never share system prompts,
/// even with identical prefix specs (they model different applications).
fn prefix_key(class: u16, group: u32) -> u64 {
    mix2(fnv1a64("workload.prefix"), (u64::from(class) << 32) | u64::from(group))
}

/// Content-stream key of question `question` of group `group` of class `class`.
fn question_key(class: u16, group: u32, question: u32) -> u64 {
    mix2(fnv1a64("workload.question"), mix2((u64::from(class) << 32) | u64::from(group), u64::from(question)))
}

/// Content-stream key of trace prefix group `group` (shared by all classes of the trace).
fn trace_prefix_key(group: u64) -> u64 {
    mix2(fnv1a64("workload.trace.prefix"), group)
}

fn build_sampler(d: &LengthDist, field: &str) -> Result<Sampler, InvalidInput> {
    Sampler::new(d).ok_or_else(|| {
        InvalidInput::new(
            field,
            format!("unusable distribution parameters {d:?}"),
            "check the distribution's parameters",
        )
    })
}

struct Prefix {
    groups: u32,
    tokens: u32,
    questions: Option<u32>,
    /// `order: cycle`: the shuffled (group, question) list, the next position in it, and the stage
    /// the position counts in (it restarts at every stage).
    cycle: Option<Cycle>,
}

struct Cycle {
    prompts: Vec<(u32, u32)>,
    pos: usize,
    stage: Option<usize>,
}

impl Cycle {
    /// The prompt set of `groups x questions`, shuffled once from the class's own stream.
    fn new(groups: u32, questions: u32, rng: &mut SimRng) -> Self {
        let mut prompts: Vec<(u32, u32)> =
            (0..groups).flat_map(|g| (0..questions).map(move |q| (g, q))).collect();
        prompts.shuffle(rng);
        Self { prompts, pos: 0, stage: None }
    }

    /// The next prompt of the list for a request sent in `stage` (the list restarts with each stage).
    fn next(&mut self, stage: Option<usize>) -> (u32, u32) {
        if stage != self.stage {
            self.stage = stage;
            self.pos = 0;
        }
        let p = self.prompts[self.pos % self.prompts.len()];
        self.pos += 1;
        p
    }
}

struct Session {
    turns: Sampler,
    think: Option<Sampler>,
    accumulate: bool,
}

/// Per-class samplers and random streams.
struct Class {
    name: String,
    input: Option<Sampler>,
    output: Option<Sampler>,
    prefix: Option<Prefix>,
    session: Option<Session>,
    input_rng: SimRng,
    output_rng: SimRng,
    prefix_rng: SimRng,
    session_rng: SimRng,
}

impl Class {
    fn new(c: &ClassSpec, i: usize, seed: u64) -> Result<Self, InvalidInput> {
        let idx = i as u64;
        let at = |f: &str| format!("spec.workload.classes[{i}].{f}");
        Ok(Self {
            name: c.name.clone(),
            input: c.input_tokens.as_ref().map(|d| build_sampler(d, &at("inputTokens"))).transpose()?,
            output: c.output_tokens.as_ref().map(|d| build_sampler(d, &at("outputTokens"))).transpose()?,
            prefix: c.prefix.as_ref().map(|p| Prefix {
                groups: p.groups.max(1),
                tokens: p.tokens,
                questions: p.questions_per_group.filter(|&q| q > 0),
                cycle: match (p.order.unwrap_or_default(), p.questions_per_group) {
                    (PromptOrder::Cycle, Some(q)) if q > 0 => Some(Cycle::new(
                        p.groups.max(1),
                        q,
                        &mut rng::stream_indexed(seed, "workload.prompt.order", idx),
                    )),
                    _ => None,
                },
            }),
            session: match &c.session {
                None => None,
                Some(s) => Some(Session {
                    turns: build_sampler(&s.turns, &at("session.turns"))?,
                    think: s
                        .think_time_ms
                        .as_ref()
                        .map(|d| build_sampler(d, &at("session.thinkTimeMs")))
                        .transpose()?,
                    accumulate: s.accumulate,
                }),
            },
            input_rng: rng::stream_indexed(seed, "workload.input", idx),
            output_rng: rng::stream_indexed(seed, "workload.output", idx),
            prefix_rng: rng::stream_indexed(seed, "workload.prefix", idx),
            session_rng: rng::stream_indexed(seed, "workload.session", idx),
        })
    }

    /// Question `question` of `group`'s fixed bank: its length and content key.
    fn bank_question(&self, class: u16, group: u32, question: u32, seed: u64) -> (u32, Option<u64>) {
        let key = question_key(class, group, question);
        // The length is a function of the question, so a repeated question repeats exactly.
        let len = match &self.input {
            Some(s) => s.sample_count(&mut rng::stream_indexed(seed, "workload.question", key)),
            None => 1,
        };
        (len, Some(key))
    }

    fn output_len(&mut self) -> u32 {
        match &self.output {
            Some(s) => s.sample_count(&mut self.output_rng),
            None => 1,
        }
    }

    /// A question for `group`: its length, and its content key when it comes from the group's fixed bank.
    fn question(&mut self, class: u16, group: u32, seed: u64) -> (u32, Option<u64>) {
        if let Some(q) = self.prefix.as_ref().and_then(|p| p.questions) {
            let question = self.prefix_rng.random_range(0..q);
            self.bank_question(class, group, question, seed)
        } else {
            let len = match &self.input {
                Some(s) => s.sample_count(&mut self.input_rng),
                None => 1,
            };
            (len, None)
        }
    }
}

/// An arrival process feeding one class (own arrival) or all weighted classes (shared).
struct Feed {
    stream: ArrivalStream,
    next: Option<i64>,
    /// Drained stages: the next stage waits for every request of this one.
    gate: Option<Gate>,
    /// While a drained stage waits on requests that will time out: the next stage's first arrival
    /// if all of them do (a completion before then releases the stage earlier).
    tentative: Option<i64>,
}

/// Bookkeeping of a feed whose stages drain (`betweenStages.drain`).
struct Gate {
    pause_us: i64,
    /// Requests of the current stage not finished yet.
    outstanding: u64,
    last_done_us: i64,
    last_send_us: i64,
}

impl Feed {
    fn new(stream: ArrivalStream, spec: &ArrivalSpec) -> Self {
        let gate = spec.between_stages.as_ref().filter(|b| b.drain).map(|b| Gate {
            pause_us: secs_to_us(b.pause_seconds()),
            outstanding: 0,
            last_done_us: i64::MIN,
            last_send_us: i64::MIN,
        });
        let mut f = Self { stream, next: None, gate, tentative: None };
        f.next = f.stream.next_arrival();
        f
    }

    /// The next arrival time, tentative ones included.
    fn peek(&self) -> Option<i64> {
        self.next.or(self.tentative)
    }

    fn take(&mut self) -> Option<i64> {
        let t = self.next?;
        self.next = self.stream.next_arrival();
        Some(t)
    }

    /// A request of this feed was sent at `t`.
    fn on_send(&mut self, t: i64, timeout_us: Option<i64>) {
        if let Some(g) = &mut self.gate {
            g.outstanding += 1;
            g.last_send_us = g.last_send_us.max(t);
        }
        self.update_tentative(timeout_us);
    }

    /// A request of this feed finished (or timed out) at `at`: the last one of a drained stage starts
    /// the pause before the next stage.
    fn on_done(&mut self, at: i64, timeout_us: Option<i64>) {
        let Some(g) = &mut self.gate else { return };
        g.outstanding = g.outstanding.saturating_sub(1);
        g.last_done_us = g.last_done_us.max(at);
        if g.outstanding == 0 && self.stream.is_waiting() {
            self.stream.release(g.last_done_us.saturating_add(g.pause_us));
            self.next = self.stream.next_arrival();
        }
        self.update_tentative(timeout_us);
    }

    fn update_tentative(&mut self, timeout_us: Option<i64>) {
        self.tentative = None;
        let (Some(g), Some(timeout)) = (&self.gate, timeout_us) else { return };
        if self.next.is_none() && self.stream.is_waiting() && g.outstanding > 0 {
            // Every outstanding request is done by the last one's deadline at the latest.
            let end = g.last_send_us.saturating_add(timeout).max(g.last_done_us);
            let mut s = self.stream.clone();
            s.release(end.saturating_add(g.pause_us));
            self.tentative = s.next_arrival();
        }
    }
}

/// A scheduled follow-up turn; ordered by (time, scheduling order) for a min-heap.
struct Pending {
    at: i64,
    seq: u64,
    req: Request,
    /// The body key is assigned from the request id when popped (a new, unshared question).
    fresh_body: bool,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What a live session needs that its requests do not carry.
#[derive(Clone, Copy, Debug)]
struct Live {
    turns: u32,
    group: u32,
    /// The turn whose completion schedules the next one (guards against duplicate callbacks).
    awaiting: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Pending,
    Shared,
    Own(usize),
    Trace,
}

/// Produces a scenario's requests one at a time, in arrival order, from the seed (see the module docs).
pub struct WorkloadGen {
    seed: u64,
    classes: Vec<Class>,
    shared: Option<Feed>,
    /// Classes choosing from the shared feed: (cumulative weight, class index).
    shared_classes: Vec<(f64, u16)>,
    class_rng: SimRng,
    own: Vec<(u16, Feed)>,
    trace: Option<TraceSource>,
    trace_prefix_tokens: u32,
    trace_prefix_groups: Option<u32>,
    trace_rng: SimRng,
    /// The trace's warm prefixes, with their own stream so drawing them moves no other draw.
    trace_warm: Option<(WarmPrefixSpec, SimRng)>,
    pending: BinaryHeap<Pending>,
    live: HashMap<u64, Live>,
    max_requests: u64,
    generated: u64,
    last_arrival_us: i64,
    sessions_opened: u64,
    scheduled: u64,
    body_salt: u64,
    session_salt: u64,
    /// The client: in-flight bound and timeout.
    client: Client,
    /// Whether sent requests are tracked until done (a bounded client or a drained feed needs it).
    track: bool,
    /// Which feed's stages are the run's load stages (the shared feed, else the first own feed with
    /// stages; a trace's stage column otherwise).
    stage_feed: Option<Source>,
    /// The load stages as run so far.
    stages: Vec<StageLog>,
    /// Scratch for timed-out requests.
    expired: Vec<(i64, Held)>,
    /// [`WorkloadGen::peek_time`] as last computed; cleared by everything that changes the state.
    peeked: Cell<Option<Option<i64>>>,
}

/// Feed index in [`Held::feed`]: the shared feed, then own feeds in order.
const SHARED_FEED: usize = 0;

impl WorkloadGen {
    /// Validates the spec and sets up the streams; `trace` is the trace read by the caller when
    /// `spec.trace.path` was given (this module does no I/O).
    /// Errors name fields by their full path under `spec.workload`.
    pub fn new(spec: &WorkloadSpec, seed: u64, trace: Option<Arc<Trace>>) -> Result<Self, InvalidInput> {
        validate(spec).map_err(|e| e.under("spec.workload"))?;
        let classes = spec
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| Class::new(c, i, seed))
            .collect::<Result<Vec<_>, _>>()?;
        let horizon = spec.duration_seconds;
        let mut gen = Self {
            seed,
            classes,
            shared: None,
            shared_classes: Vec::new(),
            class_rng: rng::stream(seed, "workload.class"),
            own: Vec::new(),
            trace: None,
            trace_prefix_tokens: 0,
            trace_prefix_groups: None,
            trace_rng: rng::stream(seed, "workload.trace.prefix"),
            trace_warm: None,
            pending: BinaryHeap::new(),
            live: HashMap::new(),
            max_requests: spec.max_requests.unwrap_or(u64::MAX),
            generated: 0,
            last_arrival_us: i64::MIN,
            sessions_opened: 0,
            scheduled: 0,
            body_salt: mix2(seed, fnv1a64("workload.body")),
            session_salt: mix2(seed, fnv1a64("workload.session.body")),
            client: Client::new(spec.client.as_ref()),
            track: false,
            stage_feed: None,
            stages: Vec::new(),
            expired: Vec::new(),
            peeked: Cell::new(None),
        };
        let bad_arrival = |field: &str| {
            InvalidInput::new(
                field,
                "unusable arrival parameters",
                "check process, ratePerSecond/stages and cv",
            )
        };
        if let Some(t) = &spec.trace {
            let trace = match (&t.csv, trace) {
                (Some(inline), _) => Arc::new(Trace::parse_csv(inline)),
                (None, Some(trace)) => trace,
                (None, None) => {
                    return Err(InvalidInput::new(
                        "spec.workload.trace.path",
                        format!("the trace file {:?} was not loaded", t.path.as_deref().unwrap_or("")),
                        "pass the file's rows as the trace, or inline it as trace.csv",
                    ))
                }
            };
            let names = gen.class_names();
            let horizon_us = horizon.map(secs_to_us).unwrap_or(i64::MAX);
            let source =
                TraceSource::new(trace, &names, t.time_scale(), t.prefix_tokens.is_some(), horizon_us)
                    .map_err(|e| e.under("spec.workload"))?;
            gen.trace = Some(source);
            gen.trace_prefix_tokens = t.prefix_tokens.unwrap_or(0);
            gen.trace_prefix_groups = t.prefix_groups;
            gen.trace_warm = t.warm_prefix.map(|w| (w, rng::stream(seed, "workload.trace.warm")));
            gen.stage_feed = Some(Source::Trace);
            gen.track = gen.client.is_bounded();
            return Ok(gen);
        }
        let mut total = 0.0;
        for (i, c) in spec.classes.iter().enumerate() {
            let class = i as u16; // validation caps the class count at u16::MAX
            match &c.arrival {
                Some(a) => {
                    let s = ArrivalStream::new(
                        a,
                        horizon,
                        rng::stream_indexed(seed, "workload.arrival.class", i as u64),
                    )
                    .ok_or_else(|| bad_arrival(&format!("spec.workload.classes[{i}].arrival")))?;
                    if a.stages.is_some()
                        && gen.stage_feed.is_none()
                        && spec.arrival.as_ref().is_none_or(|s| s.stages.is_none())
                    {
                        gen.stage_feed = Some(Source::Own(gen.own.len()));
                    }
                    gen.own.push((class, Feed::new(s, a)));
                }
                None if c.weight() > 0.0 => {
                    total += c.weight();
                    gen.shared_classes.push((total, class));
                }
                None => {}
            }
        }
        if !gen.shared_classes.is_empty() {
            let a = spec.arrival.as_ref().ok_or_else(|| bad_arrival("spec.workload.arrival"))?;
            let s = ArrivalStream::new(a, horizon, rng::stream(seed, "workload.arrival"))
                .ok_or_else(|| bad_arrival("spec.workload.arrival"))?;
            gen.shared = Some(Feed::new(s, a));
            if a.stages.is_some() {
                gen.stage_feed = Some(Source::Shared);
            }
        }
        let gated = gen.shared.iter().chain(gen.own.iter().map(|(_, f)| f)).any(|f| f.gate.is_some());
        gen.track = gen.client.is_bounded() || gated;
        Ok(gen)
    }

    /// Class names in index order, for labelling results.
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// Which source has the earliest next request (ties: follow-ups, shared, own by class, trace).
    fn next_source(&self) -> Option<(i64, Source)> {
        if self.generated >= self.max_requests {
            return None;
        }
        let mut best: Option<(i64, Source)> = None;
        let mut consider = |t: Option<i64>, s: Source| {
            if let Some(t) = t {
                if best.is_none_or(|(b, _)| t < b) {
                    best = Some((t, s));
                }
            }
        };
        consider(self.pending.peek().map(|p| p.at), Source::Pending);
        consider(self.shared.as_ref().and_then(Feed::peek), Source::Shared);
        for (i, (_, f)) in self.own.iter().enumerate() {
            consider(f.peek(), Source::Own(i));
        }
        consider(self.trace.as_ref().and_then(|t| t.peek()).map(|r| r.arrival_us), Source::Trace);
        best
    }

    /// When the next request is sent, if any: when it is due, or later while the client's slots are
    /// all held (it can become earlier after [`Self::on_request_done`]).
    pub fn peek_time(&self) -> Option<i64> {
        if let Some(t) = self.peeked.get() {
            return t;
        }
        let t = self.next_source().and_then(|(t, _)| self.client.send_time(t));
        self.peeked.set(Some(t));
        t
    }

    fn feed_mut(&mut self, feed: usize) -> Option<&mut Feed> {
        if feed == SHARED_FEED {
            self.shared.as_mut()
        } else {
            self.own.get_mut(feed - 1).map(|(_, f)| f)
        }
    }

    /// Requests whose client deadline passed by `t` are given up: their drained stages may end.
    fn expire_until(&mut self, t: i64) {
        let mut expired = std::mem::take(&mut self.expired);
        self.client.expire(t, &mut expired);
        let timeout = self.client.timeout_us();
        for (at, h) in expired.drain(..) {
            if let Some(f) = h.feed.and_then(|f| self.feed_mut(f)) {
                f.on_done(at, timeout);
            }
        }
        self.expired = expired;
    }

    /// The next request in send order; ids are 0, 1, 2, .. in pop order.
    pub fn pop(&mut self) -> Option<Request> {
        self.peeked.set(None);
        let (due, _) = self.next_source()?;
        let mut t = self.client.send_time(due)?;
        if self.track {
            self.expire_until(t);
            t = self.next_source().and_then(|(d, _)| self.client.send_time(d))?;
        }
        let (at, source) = self.next_source()?;
        let stage_shape = |f: &Feed| (f.stream.stage(), f.stream.stage_start_us(), f.stream.stage_shape());
        let feed_stage = match source {
            Source::Shared => self.shared.as_ref().map(stage_shape),
            Source::Own(i) => self.own.get(i).map(|(_, f)| stage_shape(f)),
            _ => None,
        };
        let id = self.generated;
        let req = match source {
            Source::Pending => {
                let p = self.pending.pop()?;
                let mut req = p.req;
                req.id = id;
                if p.fresh_body {
                    req.prompt.body_key = mix2(self.body_salt, id);
                }
                req
            }
            Source::Shared => {
                self.shared.as_mut()?.take()?;
                let total = self.shared_classes.last().map_or(0.0, |&(w, _)| w);
                let u = self.class_rng.random::<f64>() * total;
                let i = self.shared_classes.partition_point(|&(w, _)| w <= u);
                let class = self.shared_classes.get(i).or(self.shared_classes.last())?.1;
                self.open(class, at, id, feed_stage.map(|s| s.0))
            }
            Source::Own(i) => {
                let (class, feed) = self.own.get_mut(i)?;
                let class = *class;
                feed.take()?;
                self.open(class, at, id, feed_stage.map(|s| s.0))
            }
            Source::Trace => {
                let row = self.trace.as_mut()?.take()?;
                let group = row.prefix_group.or_else(|| {
                    self.trace_prefix_groups.map(|g| u64::from(self.trace_rng.random_range(0..g.max(1))))
                });
                let prompt = match group {
                    Some(g) => PromptLayout {
                        prefix_key: trace_prefix_key(g),
                        prefix_len: self.trace_prefix_tokens.min(row.input_tokens),
                        body_key: mix2(self.body_salt, id),
                        body_shared: false,
                    },
                    None => PromptLayout {
                        prefix_key: 0,
                        prefix_len: 0,
                        body_key: mix2(self.body_salt, id),
                        body_shared: false,
                    },
                };
                let warm_tokens = match self.trace_warm.as_mut() {
                    Some((w, rng)) => w.tokens(row.input_tokens, rng.random::<f64>()),
                    None => 0,
                };
                if let Some(st) = row.stage {
                    self.log_stage(st as usize, None, row.arrival_us, id, t);
                }
                Request {
                    id,
                    arrival_us: row.arrival_us,
                    class: row.class,
                    input_tokens: row.input_tokens,
                    output_tokens: row.output_tokens,
                    prompt,
                    session: None,
                    warm_tokens,
                }
            }
        };
        let mut req = req;
        // Follow-ups scheduled for a time already passed (a caller that pops ahead of its clock) keep
        // the sequence non-decreasing; a full client sends late.
        req.arrival_us = t.max(req.arrival_us).max(self.last_arrival_us);
        self.last_arrival_us = req.arrival_us;
        if let (Some((stage, start, shape)), true) = (feed_stage, self.stage_feed == Some(source)) {
            self.log_stage(stage, Some(shape), start, id, req.arrival_us);
        }
        if let Some(log) = self.stages.last_mut() {
            log.sent_at(req.arrival_us, req.arrival_us - at);
        }
        if self.track {
            let feed = match source {
                Source::Shared => Some(SHARED_FEED),
                Source::Own(i) => Some(i + 1),
                _ => None,
            };
            let timeout = self.client.timeout_us();
            let gated = feed.filter(|&f| self.feed_mut(f).is_some_and(|f| f.gate.is_some()));
            self.client.on_send(id, req.arrival_us, gated);
            if let Some(f) = gated.and_then(|f| self.feed_mut(f)) {
                f.on_send(req.arrival_us, timeout);
            }
        }
        self.generated += 1;
        Some(req)
    }

    /// Opens a new stage log when request `id`, sent at `t`, is the first of `stage`.
    fn log_stage(
        &mut self,
        stage: usize,
        shape: Option<(f64, f64, Option<u64>)>,
        start_us: i64,
        id: u64,
        t: i64,
    ) {
        let index = u32::try_from(stage).unwrap_or(u32::MAX);
        if self.stages.last().is_none_or(|l| l.index != index) {
            self.stages.push(StageLog::open(index, shape, start_us, id, t));
        }
    }

    /// The load stages as run so far (empty for a workload without stages).
    pub fn stages(&self) -> &[StageLog] {
        &self.stages
    }

    /// Requests the client gave up on at their deadline.
    pub fn client_timeouts(&self) -> u64 {
        self.client.timed_out()
    }

    /// The client's request timeout (µs), if any.
    pub fn client_timeout_us(&self) -> Option<i64> {
        self.client.timeout_us()
    }

    /// A new request (or the opening turn of a new session) of `class` arriving at `at` in `stage`.
    fn open(&mut self, class: u16, at: i64, id: u64, stage: Option<usize>) -> Request {
        let seed = self.seed;
        let c = &mut self.classes[usize::from(class)];
        let picked = c.prefix.as_mut().and_then(|p| p.cycle.as_mut()).map(|cy| cy.next(stage));
        let (group, prefix_key, prefix_len) = match (&c.prefix, picked) {
            (Some(p), Some((g, _))) => (g, prefix_key(class, g), p.tokens),
            (Some(p), None) => {
                let g = c.prefix_rng.random_range(0..p.groups);
                (g, prefix_key(class, g), p.tokens)
            }
            (None, _) => (0, 0, 0),
        };
        let (question_len, question) = match picked {
            Some((g, q)) => c.bank_question(class, g, q, seed),
            None => c.question(class, group, seed),
        };
        let output_tokens = c.output_len();
        let mut body_key = question.unwrap_or_else(|| mix2(self.body_salt, id));
        let mut body_shared = question.is_some();
        let mut session = None;
        if let Some(s) = &c.session {
            let turns = s.turns.sample_count(&mut c.session_rng);
            let sid = self.sessions_opened;
            self.sessions_opened += 1;
            if s.accumulate {
                // The conversation grows in one stream owned by the session (see the module docs).
                body_key = mix2(self.session_salt, sid);
                body_shared = false;
            }
            if turns > 1 {
                self.live.insert(sid, Live { turns, group, awaiting: 0 });
            }
            session = Some(SessionRef { session: sid, turn: 0, last_turn: turns <= 1 });
        }
        Request {
            id,
            arrival_us: at,
            class,
            input_tokens: prefix_len.saturating_add(question_len),
            output_tokens,
            prompt: PromptLayout { prefix_key, prefix_len, body_key, body_shared },
            session,
            warm_tokens: 0,
        }
    }

    /// Closed-loop sessions: call when a request finishes (completed or not). A completed non-final
    /// turn schedules the next turn at `done_at_us` + think time; a failed turn ends its session.
    pub fn on_request_done(&mut self, req: &Request, done_at_us: i64, completed: bool) {
        self.peeked.set(None);
        if self.track {
            if let Some(h) = self.client.on_done(req.id, done_at_us) {
                let timeout = self.client.timeout_us();
                if let Some(f) = h.feed.and_then(|f| self.feed_mut(f)) {
                    f.on_done(done_at_us, timeout);
                }
            }
        }
        let Some(sref) = req.session else { return };
        let Some(live) = self.live.get(&sref.session).copied() else { return };
        if sref.turn != live.awaiting {
            return; // duplicate or stale callback
        }
        let next_turn = sref.turn + 1;
        if !completed || sref.last_turn || next_turn >= live.turns {
            self.live.remove(&sref.session);
            return;
        }
        let seed = self.seed;
        let Some(c) = self.classes.get_mut(usize::from(req.class)) else { return };
        let Some(s) = &c.session else { return };
        let accumulate = s.accumulate;
        let think = s.think.as_ref().map_or(0, |t| t.sample_ms_as_us(&mut c.session_rng));
        let (question_len, question) = c.question(req.class, live.group, seed);
        let output_tokens = c.output_len();
        let (input_tokens, body_key, fresh_body, body_shared) = if accumulate {
            let grown = req.input_tokens.saturating_add(req.output_tokens).saturating_add(question_len);
            (grown, req.prompt.body_key, false, false)
        } else {
            let len = req.prompt.prefix_len.saturating_add(question_len);
            (len, question.unwrap_or(0), question.is_none(), question.is_some())
        };
        let last_turn = next_turn + 1 >= live.turns;
        if last_turn {
            // Nothing is scheduled after the final turn, so forget the session now.
            self.live.remove(&sref.session);
        } else if let Some(l) = self.live.get_mut(&sref.session) {
            l.awaiting = next_turn;
        }
        let at = done_at_us.saturating_add(think);
        let req = Request {
            id: 0,
            arrival_us: at,
            class: req.class,
            input_tokens,
            output_tokens,
            prompt: PromptLayout { body_key, body_shared, ..req.prompt },
            session: Some(SessionRef { session: sref.session, turn: next_turn, last_turn }),
            warm_tokens: 0,
        };
        self.pending.push(Pending { at, seq: self.scheduled, req, fresh_body });
        self.scheduled += 1;
    }

    /// Whether the requests do not depend on the run: no client bound or drained stage waits for
    /// completions and no session schedules a turn after one, so the stream can be generated ahead
    /// of the simulation ([`super::source::prefetched`]) and [`Self::on_request_done`] changes nothing.
    pub fn is_open_loop(&self) -> bool {
        !self.track && self.pending.is_empty() && self.classes.iter().all(|c| c.session.is_none())
    }

    /// Whether generating the stream ahead on a second thread pays: an open loop whose requests are
    /// drawn from distributions. A replayed trace's rows are only read, which costs less than handing
    /// them over between threads (eval-02's validation ran 3-5 % slower with its trace read ahead).
    pub fn worth_generating_ahead(&self) -> bool {
        self.is_open_loop() && self.trace.is_none()
    }

    /// The requests still to come when that is known before the run: a trace's rows left, or the
    /// request cap, at most [`super::source::MAX_EXPECTED`] (0 when unknown).
    pub fn expected_requests(&self) -> usize {
        let left = match &self.trace {
            Some(t) => t.rows_left() as u64,
            None if self.max_requests < u64::MAX => self.max_requests - self.generated.min(self.max_requests),
            None => 0,
        };
        left.min(super::source::MAX_EXPECTED as u64) as usize
    }

    /// Number of requests handed out so far.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Live sessions and scheduled follow-ups held (for memory tests).
    #[cfg(test)]
    pub(super) fn state_sizes(&self) -> (usize, usize) {
        (self.live.len(), self.pending.len())
    }
}
