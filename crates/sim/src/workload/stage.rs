//! The load stages as the client actually ran them: what per-stage results attribute requests to.

/// One load stage as the client ran it. Requests belong to the stage in which they were sent (as
/// inference-perf attributes them); request ids follow send order, so stage `k` holds the ids from its
/// `first_id` up to the next stage's.
#[derive(Debug, Clone, PartialEq)]
pub struct StageLog {
    /// Stage index (0-based, as listed in the workload's arrival stages or the trace's stage column).
    pub index: u32,
    /// Nominal rate (requests per second), for stages generated from arrival stages.
    pub rate_per_second: Option<f64>,
    /// Nominal duration (s), for stages generated from arrival stages.
    pub duration_s: Option<f64>,
    /// Requests the stage is to send, when it sends an exact number.
    pub planned: Option<u64>,
    /// When the stage started (µs).
    pub start_us: i64,
    /// Id of the stage's first request.
    pub first_id: u64,
    /// Requests sent in the stage.
    pub sent: u64,
    /// First send (µs).
    pub first_send_us: i64,
    /// Last send (µs).
    pub last_send_us: i64,
    /// Requests that left the client later than scheduled because every slot was held.
    pub delayed: u64,
    /// Their summed delay (µs).
    pub delay_us: i64,
}

impl StageLog {
    /// A stage whose first request, `first_id`, is sent at `t`.
    pub(crate) fn open(
        index: u32,
        shape: Option<(f64, f64, Option<u64>)>,
        start_us: i64,
        first_id: u64,
        t: i64,
    ) -> Self {
        Self {
            index,
            rate_per_second: shape.map(|s| s.0),
            duration_s: shape.map(|s| s.1),
            planned: shape.and_then(|s| s.2),
            start_us: start_us.min(t),
            first_id,
            sent: 0,
            first_send_us: t,
            last_send_us: t,
            delayed: 0,
            delay_us: 0,
        }
    }

    /// Notes one more request sent at `t`, `late_us` after it was due.
    pub(crate) fn sent_at(&mut self, t: i64, late_us: i64) {
        self.sent += 1;
        self.last_send_us = self.last_send_us.max(t);
        if late_us > 0 {
            self.delayed += 1;
            self.delay_us += late_us;
        }
    }
}
