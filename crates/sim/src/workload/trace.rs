//! Trace replay: a CSV of recorded requests, checked once up front and then read one row per request.
//!
//! The header names the columns; recognised ones are one arrival column (`arrival_time_s`,
//! `arrival_time_ms` or `arrival_time_us`), `input_tokens`, `output_tokens`, and optionally
//! `prefix_group` (a non-negative integer; empty = none), `class` (a class name; empty = the first
//! class) and `stage_index` (or `stage`: the load stage the request was sent in, for per-stage
//! results). Other columns are ignored. Rows must be sorted by arrival time. Token counts of 0 (e.g.
//! a client that counted no output) are replayed as 1: every request has at least one input and one
//! output token.
//!
//! Errors name the row, the line and the column, never a cell's content: the trace may come from a
//! ConfigMap that the reader of the error (a scenario's author, its status, its Events) may not read.

use std::io::{self, Read};
use std::sync::Arc;

use csv::{Reader, ReaderBuilder, StringRecord, Trim};

use crate::error::InvalidInput;

/// Byte reader over shared text, so a CSV reader can own its input without copying it.
struct SharedText {
    text: Arc<str>,
    pos: usize,
}

impl Read for SharedText {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

fn reader(text: &Arc<str>) -> Reader<SharedText> {
    ReaderBuilder::new()
        .has_headers(true)
        // Fields are trimmed where they are read (`Trim::All` rebuilds every record, an allocation per row).
        .trim(Trim::None)
        .from_reader(SharedText { text: Arc::clone(text), pos: 0 })
}

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

/// One parsed row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TraceRow {
    /// Arrival time as written (in the column's unit), for the sortedness check.
    raw_arrival: f64,
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
    fn from_headers(h: &StringRecord) -> Result<Self, InvalidInput> {
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

fn parse_row(
    r: &StringRecord,
    cols: &Columns,
    classes: &[String],
    time_scale: f64,
) -> Result<TraceRow, String> {
    parse_fields(|i| r.get(i).unwrap_or(""), cols, classes, time_scale)
}

fn parse_fields<'a>(
    raw: impl Fn(usize) -> &'a str,
    cols: &Columns,
    classes: &[String],
    time_scale: f64,
) -> Result<TraceRow, String> {
    let field = |i: usize| raw(i).trim();
    let text = field(cols.arrival);
    let raw_arrival = match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => x,
        _ => return Err(format!("{} is not a non-negative number", cols.arrival_name)),
    };
    let arrival_us = (raw_arrival * cols.us_per_unit * time_scale).round() as i64;
    let prefix_group = match cols.prefix_group.map(field) {
        None | Some("") => None,
        Some(g) => {
            Some(g.parse::<u64>().map_err(|_| "prefix_group is not a non-negative integer".to_string())?)
        }
    };
    let class = match cols.class.map(field) {
        None | Some("") => 0,
        Some(name) => match classes.iter().position(|c| c == name) {
            Some(i) => u16::try_from(i).map_err(|_| "too many classes".to_string())?,
            None => return Err(format!("class is not one of the workload's classes {classes:?}")),
        },
    };
    let stage = match cols.stage.map(field) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u32>().map_err(|_| "stage is not a non-negative integer".to_string())?),
    };
    Ok(TraceRow {
        stage,
        raw_arrival,
        arrival_us,
        input_tokens: tokens(field(cols.input), "input_tokens")?,
        output_tokens: tokens(field(cols.output), "output_tokens")?,
        prefix_group,
        class,
    })
}

/// A CSV text without any quoting, carriage return, byte-order mark or empty line, in which every
/// line has as many cells as the first: its records are exactly its lines split at commas, as the
/// CSV reader would give them. Anything else is read with the CSV reader, which also words any error.
pub struct PlainCsv<'a> {
    /// The header's cells.
    pub header: Vec<&'a str>,
    /// The data lines.
    body: Option<&'a str>,
    /// Data lines.
    pub rows: usize,
}

impl<'a> PlainCsv<'a> {
    /// The text as plain CSV, or `None` when it is not that plain or has more than `max_rows` data lines.
    pub fn new(text: &'a str, max_rows: usize) -> Option<Self> {
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
        let header: Vec<&str> = head.split(',').collect();
        let mut rows = 0;
        if let Some(body) = body {
            // (`contains` on bytes is a word-at-a-time search, the comma count a vectorised loop.)
            let bytes = body.as_bytes();
            if bytes.contains(&b'"') || bytes.contains(&b'\r') {
                return None;
            }
            // Each line: as many commas as the header, not empty.
            let want = header.len() - 1;
            for line in body.split('\n') {
                rows += 1;
                if line.is_empty() || rows > max_rows || line.bytes().filter(|&b| b == b',').count() != want {
                    return None;
                }
            }
        }
        Some(Self { header, body, rows })
    }

    /// Calls `row` with each data line's cells in order, stopping when it returns false.
    pub fn for_each_row(&self, mut row: impl FnMut(&[&'a str]) -> bool) {
        let Some(body) = self.body else {
            return;
        };
        let mut cells: Vec<&'a str> = Vec::with_capacity(self.header.len());
        let bytes = body.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b',' || b == b'\n' {
                // Commas and newlines are ASCII, so these are character boundaries.
                cells.push(&body[start..i]);
                start = i + 1;
                if b == b'\n' {
                    if !row(&cells) {
                        return;
                    }
                    cells.clear();
                }
            }
        }
        cells.push(&body[start..]);
        row(&cells);
    }
}

/// Traces of at most this many rows keep the rows parsed by the check (about 7 MB at most), so the
/// replay does not parse the CSV a second time; longer ones are read again one row at a time.
const KEEP_ROWS: usize = 1 << 17;

/// A validated trace, replayed one row at a time.
pub(crate) struct TraceSource {
    /// The rows parsed by the check, when the trace is short enough to keep them.
    kept: Option<std::vec::IntoIter<TraceRow>>,
    /// The second reading of a trace too long to keep.
    reader: Option<Reader<SharedText>>,
    record: StringRecord,
    cols: Columns,
    classes: Vec<String>,
    time_scale: f64,
    /// Rows at or after this time are not replayed.
    horizon_us: i64,
    next: Option<TraceRow>,
    rows: u64,
}

impl TraceSource {
    /// Checks the whole trace once (keeping the parsed rows of a short trace, streaming a long one)
    /// and positions it at the first row.
    /// Errors name the field `trace` and the offending row.
    pub(crate) fn new(
        text: Arc<str>,
        classes: Vec<String>,
        time_scale: f64,
        has_prefix_tokens: bool,
        horizon_us: i64,
    ) -> Result<Self, InvalidInput> {
        if let Some(kept) = Self::plain_rows(&text, &classes, time_scale, has_prefix_tokens) {
            let (rows, cols) = kept;
            let mut me = Self {
                reader: None,
                kept: Some(rows.into_iter()),
                record: StringRecord::new(),
                cols,
                classes,
                time_scale,
                horizon_us,
                next: None,
                rows: 0,
            };
            me.rows = me.kept.as_ref().map_or(0, |k| k.len() as u64);
            me.advance();
            return Ok(me);
        }
        let mut check = reader(&text);
        let headers = check
            .headers()
            .map_err(|e| {
                trace_err(format!("cannot read the header row: {e}"), "start the CSV with a header row")
            })?
            .clone();
        let cols = Columns::from_headers(&headers)?;
        let mut record = StringRecord::new();
        let mut prev: Option<f64> = None;
        let mut rows = 0u64;
        let mut kept = Some(Vec::new());
        loop {
            let row_no = rows + 1;
            match check.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(trace_err(
                        format!("row {row_no} is malformed: {e}"),
                        "give every row the same columns as the header",
                    ))
                }
            }
            let line = record.position().map_or(0, |p| p.line());
            let row = parse_row(&record, &cols, &classes, time_scale).map_err(|p| {
                trace_err(format!("row {row_no} (line {line}): {p}"), "fix or remove the row")
            })?;
            if let Some(p) = prev {
                if row.raw_arrival < p {
                    return Err(trace_err(
                        format!(
                            "row {row_no} (line {line}): {} is before the previous row's",
                            cols.arrival_name
                        ),
                        "sort the trace rows by arrival time",
                    ));
                }
            }
            if row.prefix_group.is_some() && !has_prefix_tokens {
                return Err(trace_err(
                    format!(
                        "row {row_no} (line {line}) has a prefix_group but trace.prefixTokens is not set"
                    ),
                    "set spec.workload.trace.prefixTokens to the shared prompt length",
                ));
            }
            prev = Some(row.raw_arrival);
            rows += 1;
            if let Some(k) = kept.as_mut() {
                if k.len() < KEEP_ROWS {
                    k.push(row);
                } else {
                    kept = None;
                }
            }
        }
        if rows == 0 {
            return Err(trace_err("the trace has no rows", "give a trace with at least one request"));
        }
        // A kept trace is not read again.
        let reader = kept.is_none().then(|| reader(&text));
        let kept = kept.map(Vec::into_iter);
        let mut me = Self { kept, reader, record, cols, classes, time_scale, horizon_us, next: None, rows };
        me.advance();
        Ok(me)
    }

    /// The rows of a plain trace (see [`PlainCsv`]) that passes every check, parsed without the CSV
    /// reader; `None` sends the trace through the reader's checks (which word any error).
    fn plain_rows(
        text: &str,
        classes: &[String],
        time_scale: f64,
        has_prefix_tokens: bool,
    ) -> Option<(Vec<TraceRow>, Columns)> {
        let csv = PlainCsv::new(text, KEEP_ROWS)?;
        let cols = Columns::from_headers(&StringRecord::from(csv.header.clone())).ok()?;
        let mut rows = Vec::with_capacity(csv.rows);
        let mut ok = true;
        let mut prev = f64::NEG_INFINITY;
        csv.for_each_row(|cells| {
            ok = match parse_fields(|i| cells.get(i).copied().unwrap_or(""), &cols, classes, time_scale) {
                Ok(row) if row.raw_arrival >= prev && (row.prefix_group.is_none() || has_prefix_tokens) => {
                    prev = row.raw_arrival;
                    rows.push(row);
                    true
                }
                _ => false,
            };
            ok
        });
        (ok && !rows.is_empty()).then_some((rows, cols))
    }

    /// Number of data rows in the trace.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn rows(&self) -> u64 {
        self.rows
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
        if let Some(rows) = self.kept.as_mut() {
            self.next = rows.next().filter(|r| r.arrival_us < self.horizon_us);
            return;
        }
        let Some(reader) = self.reader.as_mut() else {
            self.next = None;
            return;
        };
        self.next = match reader.read_record(&mut self.record) {
            // Rows were validated in `new`; a failure here cannot happen, and would just end the replay.
            Ok(true) => parse_row(&self.record, &self.cols, &self.classes, self.time_scale)
                .ok()
                .filter(|r| r.arrival_us < self.horizon_us),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Result<TraceSource, InvalidInput> {
        TraceSource::new(Arc::from(text), vec!["a".into(), "b".into()], 1.0, false, i64::MAX)
    }

    fn all(mut s: TraceSource) -> Vec<TraceRow> {
        std::iter::from_fn(|| s.take()).collect()
    }

    #[test]
    fn reads_units_classes_and_extra_columns() {
        let s =
            source("x,arrival_time_ms,input_tokens,output_tokens,class\n7,0,10,5,\n8,1.5,20,0,b\n").unwrap();
        assert_eq!(s.rows(), 2);
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

    /// Short traces replay the rows kept from the check, long ones are read again; both give every row.
    #[test]
    fn short_traces_keep_their_rows_and_long_ones_stream() {
        use std::fmt::Write as _;
        for n in [3, KEEP_ROWS, KEEP_ROWS + 2] {
            let mut text = String::from("arrival_time_ms,input_tokens,output_tokens\n");
            for i in 0..n {
                let _ = writeln!(text, "{i},{},{}", 1 + i % 97, 1 + i % 13);
            }
            let s = source(&text).unwrap();
            assert_eq!(s.kept.is_some(), n <= KEEP_ROWS, "{n} rows");
            let rows = all(s);
            assert_eq!(rows.len(), n);
            for (i, r) in rows.iter().enumerate() {
                let want = (i as i64 * 1000, 1 + (i % 97) as u32, 1 + (i % 13) as u32);
                assert_eq!((r.arrival_us, r.input_tokens, r.output_tokens), want, "{n} rows, row {i}");
            }
        }
    }

    /// A plain trace is parsed without the CSV reader, a quoted or CRLF one with it, and both give
    /// the same rows; a plain trace with a bad row gets the reader's error.
    #[test]
    fn plain_and_quoted_traces_give_the_same_rows() {
        let plain = "arrival_time_ms, input_tokens,output_tokens,class,prefix_group\n0,10,5,a,\n1.5, 20 ,0,b,\n2,7,3,,\n";
        let quoted = "arrival_time_ms,\" input_tokens\",output_tokens,class,prefix_group\r\n\"0\",10,5,a,\r\n1.5, 20 ,0,\"b\",\r\n2,7,3,,\r\n";
        assert!(PlainCsv::new(plain, KEEP_ROWS).is_some() && PlainCsv::new(quoted, KEEP_ROWS).is_none());
        let (p, q) = (source(plain).unwrap(), source(quoted).unwrap());
        assert!(p.reader.is_none() && q.reader.is_none(), "short traces are not read twice");
        assert_eq!(p.rows(), 3);
        assert_eq!(all(p), all(q));
        for bad in [
            "arrival_time_s,input_tokens,output_tokens\n0,10,5\n\n1,10,5\n",
            "arrival_time_s,input_tokens,output_tokens\n0,10\n",
        ] {
            assert!(PlainCsv::new(bad, KEEP_ROWS).is_none(), "{bad:?}");
        }
        let e = source("arrival_time_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n").err().unwrap();
        assert!(e.problem.contains("row 2 (line 3)") && e.problem.contains("input_tokens"), "{}", e.problem);
    }

    #[test]
    fn horizon_and_time_scale() {
        let text = "arrival_time_s,input_tokens,output_tokens\n0,1,1\n1,1,1\n2,1,1\n3,1,1\n";
        let s = TraceSource::new(Arc::from(text), vec!["a".into()], 0.5, false, 1_000_001).unwrap();
        let times: Vec<i64> = all(s).iter().map(|r| r.arrival_us).collect();
        assert_eq!(times, vec![0, 500_000, 1_000_000]);
    }
}
