//! Trace replay: recorded requests, read once into a [`Trace`] (by the caller, from a CSV text or a
//! format of its own) and replayed one row per request by any number of runs.
//!
//! A CSV trace's header names the columns; recognised ones are one arrival column (`arrival_time_s`,
//! `arrival_time_ms` or `arrival_time_us`), `input_tokens`, `output_tokens`, and optionally
//! `prefix_group` (a non-negative integer; empty = none), `class` (a class name; empty = the first
//! class) and `stage_index` (or `stage`: the load stage the request was sent in, for per-stage
//! results). Other columns are ignored. Rows must be sorted by arrival time. Token counts of 0 (e.g.
//! a client that counted no output) are replayed as 1: every request has at least one input and one
//! output token.
//!
//! Errors name the row, the line and the column, never a cell's content: the trace may come from a
//! ConfigMap that the reader of the error (a scenario's author, its status, its Events) may not read.
//! Reading never fails: a [`Trace`] keeps the rows before the first unusable one and why reading
//! stopped there, and the replay reports that after checking the kept rows against the scenario
//! (class names, `prefixTokens`), so a trace's first error is the one reported.

use std::sync::Arc;

use csv::{ReaderBuilder, StringRecord, Trim};

use crate::error::InvalidInput;

/// Where the recognised columns are.
#[derive(Clone, Debug)]
struct Columns {
    arrival: usize,
    arrival_name: &'static str,
    /// Microseconds per unit of the arrival column.
    us_per_unit: f64,
    input: usize,
    output: usize,
    prefix_group: Option<usize>,
    class: Option<usize>,
    stage: Option<usize>,
}

/// One row as read, before it meets a scenario (its class names, time scale and horizon).
#[derive(Clone, Copy, Debug, PartialEq)]
struct ReadRow {
    /// Arrival time as written (in the column's unit).
    raw_arrival: f64,
    input_tokens: u32,
    output_tokens: u32,
    prefix_group: Option<u64>,
    /// Index into [`Trace::class_names`]; `None` = the scenario's first class.
    class: Option<u16>,
    /// The load stage the recorded request was sent in (column `stage_index` or `stage`).
    stage: Option<u32>,
    /// Line of the row in its text (the header is line 1), for errors.
    line: u64,
}

/// One row to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TraceRow {
    pub(crate) arrival_us: i64,
    pub(crate) input_tokens: u32,
    pub(crate) output_tokens: u32,
    pub(crate) prefix_group: Option<u64>,
    pub(crate) class: u16,
    /// The load stage the recorded request was sent in (column `stage_index` or `stage`).
    pub(crate) stage: Option<u32>,
}

fn trace_err(problem: impl Into<String>, fix: impl Into<String>) -> InvalidInput {
    InvalidInput::new("trace", problem, fix)
}

impl Columns {
    fn from_headers(h: &[&str]) -> Result<Self, InvalidInput> {
        let find = |name: &str| h.iter().position(|c| c.trim() == name);
        let arrivals: Vec<(usize, &'static str, f64)> =
            [("arrival_time_s", 1e6), ("arrival_time_ms", 1e3), ("arrival_time_us", 1.0)]
                .into_iter()
                .filter_map(|(name, unit)| find(name).map(|i| (i, name, unit)))
                .collect();
        let (arrival, arrival_name, us_per_unit) = match arrivals.as_slice() {
            [one] => *one,
            [] => {
                return Err(trace_err(
                    // The header is not echoed: a trace may come from a ConfigMap the reader of
                    // the error may not see.
                    format!("header has no arrival column (it has {} columns)", h.len()),
                    "add a column arrival_time_s, arrival_time_ms or arrival_time_us",
                ));
            }
            _ => {
                return Err(trace_err(
                    "header has more than one arrival column",
                    "keep one of arrival_time_s, arrival_time_ms, arrival_time_us",
                ))
            }
        };
        let required = |name: &str| {
            find(name).ok_or_else(|| {
                trace_err(format!("header has no {name} column"), format!("add a {name} column to the trace"))
            })
        };
        Ok(Self {
            arrival,
            arrival_name,
            us_per_unit,
            input: required("input_tokens")?,
            output: required("output_tokens")?,
            prefix_group: find("prefix_group"),
            class: find("class"),
            stage: find("stage_index").or_else(|| find("stage")),
        })
    }
}

fn tokens(field: &str, col: &str) -> Result<u32, String> {
    let v = if let Ok(n) = field.parse::<u64>() {
        n
    } else {
        match field.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 => x as u64,
            _ => return Err(format!("{col} is not a non-negative whole number")),
        }
    };
    let v = u32::try_from(v).map_err(|_| format!("{col} is over {}", u32::MAX))?;
    Ok(v.max(1))
}

/// Why reading a trace stopped (at its header or at a row).
#[derive(Clone, Debug, PartialEq)]
struct Stop {
    error: InvalidInput,
    /// The stopping row's number, line and class, when its class was read before the problem: a
    /// class the scenario lacks comes first in the row, so it is the error reported.
    class: Option<(u64, u64, u16)>,
}

/// A trace's rows as read, before they meet a scenario: built once by whoever reads the trace (from
/// CSV text with [`Trace::parse_csv`], or row by row with a [`TraceBuilder`]) and handed to the
/// simulation, which replays it without reading it again.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    rows: Vec<ReadRow>,
    arrival_name: &'static str,
    us_per_unit: f64,
    /// Distinct names of the class column, in order of first appearance.
    class_names: Vec<String>,
    /// Data lines of the text (what the run budget counts), including any after a stop.
    lines: u64,
    stop: Option<Stop>,
}

impl Trace {
    /// Reads a CSV trace (see the module doc). A plain text (see [`PlainCsv`]) is split at commas and
    /// newlines; anything else goes through the CSV reader, which also words malformed rows.
    pub fn parse_csv(text: &str) -> Self {
        if let Some(csv) = PlainCsv::new(text) {
            let mut b = TraceBuilder::new(&csv.header);
            if let Ok(lines) = csv.for_each_row(|cells| b.row(|i| cells.get(i).copied().unwrap_or(""))) {
                let mut t = b.finish();
                t.lines = lines as u64;
                return t;
            }
        }
        let lines = text.lines().count().saturating_sub(1) as u64;
        // Fields are trimmed where they are read (`Trim::All` rebuilds every record).
        let mut rd = ReaderBuilder::new().has_headers(true).trim(Trim::None).from_reader(text.as_bytes());
        let mut b = match rd.headers() {
            Ok(h) => TraceBuilder::new(&h.iter().collect::<Vec<_>>()),
            Err(e) => TraceBuilder::stopped(trace_err(
                format!("cannot read the header row: {e}"),
                "start the CSV with a header row",
            )),
        };
        let mut record = StringRecord::new();
        while b.stop.is_none() {
            match rd.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    b.row_at(line, |i| record.get(i).unwrap_or(""));
                }
                Err(e) => {
                    let row_no = b.rows.len() + 1;
                    b.stop = Some(Stop {
                        error: trace_err(
                            format!("row {row_no} is malformed: {e}"),
                            "give every row the same columns as the header",
                        ),
                        class: None,
                    });
                }
            }
        }
        let mut t = b.finish();
        t.lines = lines;
        t
    }

    /// Rows read (before any stop).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Data lines of the text read, including any after the row reading stopped at.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

/// Builds a [`Trace`] row by row with the CSV reader's checks and wording: for [`Trace::parse_csv`]
/// and for importers of trace formats of their own.
pub struct TraceBuilder {
    cols: Option<Columns>,
    rows: Vec<ReadRow>,
    class_names: Vec<String>,
    prev: f64,
    lines: u64,
    stop: Option<Stop>,
}

impl TraceBuilder {
    /// A trace with these column names; a header without one arrival column, `input_tokens` or
    /// `output_tokens` stops it at once.
    pub fn new(header: &[&str]) -> Self {
        match Columns::from_headers(header) {
            Ok(cols) => Self {
                cols: Some(cols),
                rows: Vec::new(),
                class_names: Vec::new(),
                prev: f64::NEG_INFINITY,
                lines: 0,
                stop: None,
            },
            Err(e) => Self::stopped(e),
        }
    }

    fn stopped(error: InvalidInput) -> Self {
        Self {
            cols: None,
            rows: Vec::new(),
            class_names: Vec::new(),
            prev: f64::NEG_INFINITY,
            lines: 0,
            stop: Some(Stop { error, class: None }),
        }
    }

    /// Reads the next data line from its cells (by column index, as in the header), the header
    /// being line 1 and every line a row; false once reading has stopped (at this row or before).
    pub fn row<'a>(&mut self, cell: impl Fn(usize) -> &'a str) -> bool {
        self.row_at(self.lines + 2, cell)
    }

    /// [`Self::row`] for a row whose counts the caller has read already: its arrival as written,
    /// token counts of at least 1, its prefix group. (The header must have named the columns.)
    pub fn row_read(
        &mut self,
        arrival: &str,
        input_tokens: u32,
        output_tokens: u32,
        prefix_group: Option<u64>,
    ) -> bool {
        self.push(self.lines + 2, |cols, _, _| {
            Ok(ReadRow {
                raw_arrival: arrival_of(cols, arrival.trim())?,
                input_tokens,
                output_tokens,
                prefix_group,
                class: None,
                stage: None,
                line: 0,
            })
        })
    }

    /// [`Self::row`] for a row at line `line` of its text.
    fn row_at<'a>(&mut self, line: u64, cell: impl Fn(usize) -> &'a str) -> bool {
        self.push(line, |cols, names, class| read_row(cols, names, class, cell))
    }

    /// Adds the row that `read` reads (given the columns, the class names so far, and where to put
    /// the row's class as soon as it is known), or stops at it.
    fn push(
        &mut self,
        line: u64,
        read: impl FnOnce(&Columns, &mut Vec<String>, &mut Option<u16>) -> Result<ReadRow, String>,
    ) -> bool {
        self.lines += 1;
        if self.stop.is_some() {
            return false;
        }
        let Some(cols) = self.cols.as_ref() else { return false };
        let row_no = self.rows.len() as u64 + 1;
        let mut class = None;
        let read = read(cols, &mut self.class_names, &mut class);
        let (problem, fix) = match read {
            Ok(row) if row.raw_arrival >= self.prev => {
                self.prev = row.raw_arrival;
                self.rows.push(ReadRow { line, ..row });
                return true;
            }
            Ok(_) => (
                format!("{} is before the previous row's", cols.arrival_name),
                "sort the trace rows by arrival time",
            ),
            Err(p) => (p, "fix or remove the row"),
        };
        self.stop = Some(Stop {
            error: trace_err(format!("row {row_no} (line {line}): {problem}"), fix),
            class: class.map(|c| (row_no, line, c)),
        });
        false
    }

    /// The trace read so far.
    pub fn finish(self) -> Trace {
        let (arrival_name, us_per_unit) =
            self.cols.as_ref().map_or(("", 1.0), |c| (c.arrival_name, c.us_per_unit));
        Trace {
            rows: self.rows,
            arrival_name,
            us_per_unit,
            class_names: self.class_names,
            lines: self.lines,
            stop: self.stop,
        }
    }
}

/// An arrival cell's time, in the column's unit.
fn arrival_of(cols: &Columns, text: &str) -> Result<f64, String> {
    if let Some(x) = short_decimal(text) {
        return Ok(x);
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{} is not a non-negative number", cols.arrival_name)),
    }
}

/// `digits[.digits]` with at most 15 digits in all, as `str::parse` reads it, without its general
/// machinery: the digits as an integer (exact in an f64) divided by a power of ten (exact up to
/// 10^22), a single correctly rounded operation, as in the standard library's own fast path.
fn short_decimal(text: &str) -> Option<f64> {
    const POW10: [f64; 16] =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let (mut m, mut dot) = (0u64, None);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => m = m * 10 + u64::from(b - b'0'),
            b'.' if dot.is_none() && i > 0 => dot = Some(i),
            _ => return None,
        }
    }
    let decimals = dot.map_or(0, |d| bytes.len() - 1 - d);
    let digits = bytes.len() - usize::from(dot.is_some());
    (digits <= 15).then(|| m as f64 / POW10[decimals])
}

/// Reads one row's cells; `class_out` gets its class as soon as it is read.
fn read_row<'a>(
    cols: &Columns,
    class_names: &mut Vec<String>,
    class_out: &mut Option<u16>,
    raw: impl Fn(usize) -> &'a str,
) -> Result<ReadRow, String> {
    let field = |i: usize| raw(i).trim();
    let raw_arrival = arrival_of(cols, field(cols.arrival))?;
    let prefix_group = match cols.prefix_group.map(field) {
        None | Some("") => None,
        Some(g) => {
            Some(g.parse::<u64>().map_err(|_| "prefix_group is not a non-negative integer".to_string())?)
        }
    };
    let class = match cols.class.map(field) {
        None | Some("") => None,
        Some(name) => Some(match class_names.iter().position(|c| c == name) {
            Some(i) => i as u16,
            None => {
                let i = u16::try_from(class_names.len()).map_err(|_| "too many classes".to_string())?;
                class_names.push(name.to_string());
                i
            }
        }),
    };
    *class_out = class;
    let stage = match cols.stage.map(field) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u32>().map_err(|_| "stage is not a non-negative integer".to_string())?),
    };
    Ok(ReadRow {
        raw_arrival,
        input_tokens: tokens(field(cols.input), "input_tokens")?,
        output_tokens: tokens(field(cols.output), "output_tokens")?,
        prefix_group,
        class,
        stage,
        line: 0,
    })
}

/// A CSV text without any quoting, carriage return or byte-order mark: its records are its lines
/// split at commas, as the CSV reader would give them, as long as no line is empty and every line has
/// as many cells as the header (the data lines are checked while they are read). Anything else is
/// read with the CSV reader, which also words any error.
pub struct PlainCsv<'a> {
    /// The header's cells.
    pub header: Vec<&'a str>,
    /// The data lines.
    body: Option<&'a str>,
}

/// Every byte of a word set to `,`, a newline, `"`, a carriage return.
const COMMAS: u64 = u64::from_ne_bytes([b','; 8]);
const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
const RETURNS: u64 = u64::from_ne_bytes([b'\r'; 8]);

/// The high bit of each zero byte of `x` (exact: no carry crosses a byte).
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// A [`PlainCsv`] line that the CSV reader would read otherwise (with a quote or a carriage return,
/// empty, or with another number of cells than the header's): read the text with the CSV reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotPlain;

impl<'a> PlainCsv<'a> {
    /// The text as plain CSV, or `None` when it starts with a byte-order mark or its header is empty
    /// or has a quote or a carriage return (the data lines are checked as they are read).
    pub fn new(text: &'a str) -> Option<Self> {
        if text.starts_with('\u{feff}') {
            return None;
        }
        let all = text.strip_suffix('\n').unwrap_or(text);
        let (head, body) = match all.split_once('\n') {
            Some((h, b)) => (h, Some(b)),
            None => (all, None),
        };
        if head.is_empty() || head.bytes().any(|b| b == b'"' || b == b'\r') {
            return None;
        }
        Some(Self { header: head.split(',').collect(), body })
    }

    /// Calls `row` with each data line's cells in order until it returns false, and checks every
    /// line (those after a stop too): the number of data lines, or `NotPlain` at the first line the
    /// CSV reader would read otherwise (after `row` saw the lines before it, or some of them: the CSV
    /// reader reads those the same).
    pub fn for_each_row(&self, mut row: impl FnMut(&[&'a str]) -> bool) -> Result<usize, NotPlain> {
        let Some(body) = self.body else {
            return Ok(0);
        };
        let want = self.header.len();
        let mut cells: Vec<&'a str> = Vec::with_capacity(want);
        let mut going = true;
        let mut lines = 0;
        let (mut start, mut line_start) = (0, 0);
        let mut end_line = |cells: &mut Vec<&'a str>, empty: bool| {
            if empty || cells.len() != want {
                return Err(NotPlain);
            }
            lines += 1;
            going = going && row(cells);
            cells.clear();
            Ok(())
        };
        let bytes = body.as_bytes();
        // Eight bytes at a time: the commas and newlines of each word, lowest first.
        for (w, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            let word = u64::from_le_bytes(word);
            if zero_bytes(word ^ QUOTES) | zero_bytes(word ^ RETURNS) != 0 {
                return Err(NotPlain);
            }
            let mut found = zero_bytes(word ^ COMMAS) | zero_bytes(word ^ NEWLINES);
            while found != 0 {
                let i = w * 8 + (found.trailing_zeros() / 8) as usize;
                found &= found - 1;
                // Commas and newlines are ASCII, so these are character boundaries.
                cells.push(&body[start..i]);
                start = i + 1;
                if bytes[i] == b'\n' {
                    end_line(&mut cells, i == line_start)?;
                    line_start = i + 1;
                }
            }
        }
        cells.push(&body[start..]);
        end_line(&mut cells, line_start == body.len())?;
        Ok(lines)
    }
}

/// A trace checked against a scenario, replayed one row at a time.
pub(crate) struct TraceSource {
    trace: Arc<Trace>,
    /// The scenario's class index of each of the trace's class names.
    classes: Vec<u16>,
    /// The scenario's trace time scale.
    time_scale: f64,
    /// Rows at or after this time are not replayed.
    horizon_us: i64,
    /// Index of the row after `next`.
    pos: usize,
    next: Option<TraceRow>,
}

impl TraceSource {
    /// Rows not replayed yet (the one positioned included), horizon aside.
    pub(crate) fn rows_left(&self) -> usize {
        self.trace.rows.len().saturating_sub(self.pos) + usize::from(self.next.is_some())
    }

    /// Checks the trace's rows against the scenario (its `classes` by name, whether it sets
    /// `prefixTokens`), then reports why reading the trace stopped, if it did, and positions it at
    /// the first row. Errors name the field `trace` and the offending row.
    pub(crate) fn new(
        trace: Arc<Trace>,
        classes: &[String],
        time_scale: f64,
        has_prefix_tokens: bool,
        horizon_us: i64,
    ) -> Result<Self, InvalidInput> {
        let known: Vec<Option<u16>> =
            trace.class_names.iter().map(|n| classes.iter().position(|c| c == n).map(|i| i as u16)).collect();
        let unknown_class = |row_no: u64, line: u64| {
            trace_err(
                format!("row {row_no} (line {line}): class is not one of the workload's classes {classes:?}"),
                "fix or remove the row",
            )
        };
        for (i, r) in trace.rows.iter().enumerate() {
            let row_no = i as u64 + 1;
            if r.class.is_some_and(|c| known[usize::from(c)].is_none()) {
                return Err(unknown_class(row_no, r.line));
            }
            if r.prefix_group.is_some() && !has_prefix_tokens {
                return Err(trace_err(
                    format!(
                        "row {row_no} (line {}) has a prefix_group but trace.prefixTokens is not set",
                        r.line
                    ),
                    "set spec.workload.trace.prefixTokens to the shared prompt length",
                ));
            }
        }
        if let Some(stop) = &trace.stop {
            if let Some((row_no, line, c)) = stop.class {
                if known[usize::from(c)].is_none() {
                    return Err(unknown_class(row_no, line));
                }
            }
            return Err(stop.error.clone());
        }
        if trace.rows.is_empty() {
            return Err(trace_err("the trace has no rows", "give a trace with at least one request"));
        }
        let classes = known.into_iter().map(Option::unwrap_or_default).collect();
        let mut me = Self { trace, classes, time_scale, horizon_us, pos: 0, next: None };
        me.advance();
        Ok(me)
    }

    /// The next row to replay, if any.
    pub(crate) fn peek(&self) -> Option<&TraceRow> {
        self.next.as_ref()
    }

    /// Takes the next row and reads the one after it.
    pub(crate) fn take(&mut self) -> Option<TraceRow> {
        let row = self.next.take();
        if row.is_some() {
            self.advance();
        }
        row
    }

    fn advance(&mut self) {
        self.next = self.trace.rows.get(self.pos).and_then(|r| {
            let arrival_us = (r.raw_arrival * self.trace.us_per_unit * self.time_scale).round() as i64;
            (arrival_us < self.horizon_us).then(|| TraceRow {
                arrival_us,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                prefix_group: r.prefix_group,
                class: r.class.map_or(0, |c| self.classes[usize::from(c)]),
                stage: r.stage,
            })
        });
        self.pos += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Result<TraceSource, InvalidInput> {
        TraceSource::new(Arc::new(Trace::parse_csv(text)), &["a".into(), "b".into()], 1.0, false, i64::MAX)
    }

    fn all(mut s: TraceSource) -> Vec<TraceRow> {
        std::iter::from_fn(|| s.take()).collect()
    }

    #[test]
    fn reads_units_classes_and_extra_columns() {
        let s =
            source("x,arrival_time_ms,input_tokens,output_tokens,class\n7,0,10,5,\n8,1.5,20,0,b\n").unwrap();
        assert_eq!(s.trace.rows(), 2);
        let rows = all(s);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].arrival_us, rows[0].input_tokens, rows[0].output_tokens, rows[0].class),
            (0, 10, 5, 0)
        );
        assert_eq!((rows[1].arrival_us, rows[1].output_tokens, rows[1].class), (1500, 1, 1));
    }

    #[test]
    fn errors_name_the_row() {
        let e = source("arrival_time_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n").err().unwrap();
        assert_eq!(e.field, "trace");
        assert!(e.problem.contains("row 2") && e.problem.contains("input_tokens"), "{}", e.problem);
        let e = source("arrival_time_s,input_tokens,output_tokens\n0,10,5\n2,10,5\n1,10,5\n").err().unwrap();
        assert!(e.problem.contains("row 3") && e.problem.contains("before"), "{}", e.problem);
        let e = source("arrival_time_s,input_tokens,output_tokens,class\n0,10,5,zzz\n").err().unwrap();
        assert!(e.problem.contains("row 1") && e.problem.contains("class"), "{}", e.problem);
        let e = source("arrival_time_s,input_tokens,output_tokens\n0,10\n").err().unwrap();
        assert!(e.problem.contains("row 1"), "{}", e.problem);
        let e = source("arrival_time_s,input_tokens,output_tokens,prefix_group\n0,10,5,3\n").err().unwrap();
        assert!(e.problem.contains("prefixTokens"), "{}", e.problem);
        let e = source("time,input_tokens,output_tokens\n0,10,5\n").err().unwrap();
        assert!(e.problem.contains("arrival column"), "{}", e.problem);
        let e = source("arrival_time_s,input_tokens,output_tokens\n").err().unwrap();
        assert!(e.problem.contains("no rows"), "{}", e.problem);
    }

    #[test]
    fn errors_never_echo_the_trace_content() {
        const SECRET: &str = "DB_PASSWORD=hunter2";
        for text in [
            format!("{SECRET},API_KEY=x\n0,1\n"),
            format!("arrival_time_s,input_tokens,output_tokens\n{SECRET},10,5\n"),
            format!("arrival_time_s,input_tokens,output_tokens\n0,{SECRET},5\n"),
            format!("arrival_time_s,input_tokens,output_tokens,class\n0,10,5,{SECRET}\n"),
            format!("arrival_time_s,input_tokens,output_tokens,prefix_group\n0,10,5,{SECRET}\n"),
            format!("arrival_time_s,input_tokens,output_tokens\n0,10,5,{SECRET}\n"),
            "arrival_time_s,input_tokens,output_tokens\n0,99999999999,5\n".to_string(),
        ] {
            let e = source(&text).err().unwrap();
            let shown = e.to_string();
            assert!(e.problem.contains("row") || e.problem.contains("header"), "{shown}");
            assert!(!shown.contains("hunter2") && !shown.contains("API_KEY"), "echoed: {shown}");
            assert!(!shown.contains("99999999999"), "echoed: {shown}");
        }
    }

    /// Every row of a long trace is replayed, in order (rows are kept however many there are).
    #[test]
    fn long_traces_replay_every_row() {
        use std::fmt::Write as _;
        let n = 200_003;
        let mut text = String::from("arrival_time_ms,input_tokens,output_tokens\n");
        for i in 0..n {
            let _ = writeln!(text, "{i},{},{}", 1 + i % 97, 1 + i % 13);
        }
        let s = source(&text).unwrap();
        assert_eq!((s.trace.rows(), s.trace.lines()), (n, n as u64));
        let rows = all(s);
        assert_eq!(rows.len(), n);
        for (i, r) in rows.iter().enumerate() {
            let want = (i as i64 * 1000, 1 + (i % 97) as u32, 1 + (i % 13) as u32);
            assert_eq!((r.arrival_us, r.input_tokens, r.output_tokens), want, "row {i}");
        }
    }

    /// A row with two problems is reported by the first in the row, whether the class check (which
    /// needs the scenario) or the reading found it: an unknown class comes before a bad token count
    /// or an out-of-order arrival.
    #[test]
    fn the_first_problem_of_a_row_is_reported() {
        for text in [
            "arrival_time_s,class,input_tokens,output_tokens\n0,a,1,1\n1,zzz,x,1\n",
            "arrival_time_s,class,input_tokens,output_tokens\n5,a,1,1\n1,zzz,1,1\n",
        ] {
            let e = source(text).err().unwrap();
            assert!(e.problem.starts_with("row 2 (line 3): class is not"), "{}", e.problem);
        }
        let e =
            source("arrival_time_s,class,input_tokens,output_tokens\n0,a,1,1\nx,zzz,1,1\n").err().unwrap();
        assert!(e.problem.starts_with("row 2 (line 3): arrival_time_s is not"), "{}", e.problem);
        let e =
            source("arrival_time_s,class,input_tokens,output_tokens\n0,zzz,1,1\n1,b,x,1\n").err().unwrap();
        assert!(e.problem.starts_with("row 1 (line 2): class is not"), "{}", e.problem);
    }

    /// A plain trace is parsed without the CSV reader, a quoted or CRLF one with it, and both give
    /// the same rows; a plain trace with a bad row gets the reader's error.
    #[test]
    fn plain_and_quoted_traces_give_the_same_rows() {
        let plain = "arrival_time_ms, input_tokens,output_tokens,class,prefix_group\n0,10,5,a,\n1.5, 20 ,0,b,\n2,7,3,,\n";
        let quoted = "arrival_time_ms,\" input_tokens\",output_tokens,class,prefix_group\r\n\"0\",10,5,a,\r\n1.5, 20 ,0,\"b\",\r\n2,7,3,,\r\n";
        assert!(PlainCsv::new(plain).is_some() && PlainCsv::new(quoted).is_none());
        let (p, q) = (source(plain).unwrap(), source(quoted).unwrap());
        assert_eq!((p.trace.rows(), q.trace.rows()), (3, 3));
        assert_eq!(all(p), all(q));
        for bad in [
            "arrival_time_s,input_tokens,output_tokens\n0,10,5\n\n1,10,5\n",
            "arrival_time_s,input_tokens,output_tokens\n0,10\n",
        ] {
            let csv = PlainCsv::new(bad).unwrap();
            assert_eq!(csv.for_each_row(|_| true), Err(NotPlain), "{bad:?}");
        }
        let e = source("arrival_time_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n").err().unwrap();
        assert!(e.problem.contains("row 2 (line 3)") && e.problem.contains("input_tokens"), "{}", e.problem);
    }

    proptest::proptest! {
        /// The short decimals read as `str::parse` reads them, bit for bit.
        #[test]
        fn short_decimals_read_as_parse_does(int in "[0-9]{1,10}", frac in "[0-9]{0,9}", dot: bool) {
            let text = if dot { format!("{int}.{frac}") } else { int };
            let want = text.parse::<f64>().unwrap();
            match short_decimal(&text) {
                Some(x) => proptest::prop_assert_eq!(x.to_bits(), want.to_bits(), "{}", text),
                None => proptest::prop_assert!(text.len() > 15, "{} has at most 15 digits", text),
            }
        }

        /// The plain reading splits every text as `split` does, or refuses it exactly when a line is
        /// empty or has another number of cells than the header (multi-byte characters included).
        #[test]
        fn plain_rows_are_the_lines_split_at_commas(text in "[a,\n é]{1,80}") {
            let Some(csv) = PlainCsv::new(&text) else {
                proptest::prop_assert!(text.starts_with('\n'), "only an empty header is refused");
                return Ok(());
            };
            let mut got = Vec::new();
            let read = csv.for_each_row(|cells| {
                got.push(cells.join(","));
                true
            });
            let body: Vec<&str> = text.strip_suffix('\n').unwrap_or(&text).split('\n').skip(1).collect();
            let want = csv.header.len();
            let plain = body.iter().all(|l| !l.is_empty() && l.split(',').count() == want);
            if plain {
                proptest::prop_assert_eq!(read, Ok(body.len()));
                proptest::prop_assert_eq!(got, body);
            } else {
                proptest::prop_assert_eq!(read, Err(NotPlain));
            }
        }
    }

    #[test]
    fn horizon_and_time_scale() {
        let text = "arrival_time_s,input_tokens,output_tokens\n0,1,1\n1,1,1\n2,1,1\n3,1,1\n";
        let s =
            TraceSource::new(Arc::new(Trace::parse_csv(text)), &["a".into()], 0.5, false, 1_000_001).unwrap();
        let times: Vec<i64> = all(s).iter().map(|r| r.arrival_us).collect();
        assert_eq!(times, vec![0, 500_000, 1_000_000]);
    }
}
