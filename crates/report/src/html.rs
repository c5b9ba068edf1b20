//! The HTML report (`--report FILE.html`): one self-contained page, inline SVG charts and CSS, no
//! script and nothing fetched, so it opens anywhere and can be attached to a pull request.
//! A sweep page shows the Pareto plot of cost against p90 TTFT and the ranked table; a run page shows
//! per-class TTFT and ITL distribution functions and the pools' queue depth, KV utilisation and
//! replicas over time; both end with their inputs.

use std::fmt::Write;

use super::json::ScenarioReport;
use super::table::{self, fmt_ms};
use blis_import::cluster::{Figures, MeasuredStack};
use blis_sim::metrics::cdf::{run_cdfs, ClassCdf};
use blis_sim::metrics::{Series, SimOutput};

/// One sweep candidate as the report shows it.
pub struct CandidateView<'a> {
    /// Candidate name.
    pub name: &'a str,
    /// Rank among feasible candidates (1 = best); `None` = infeasible.
    pub rank: Option<u32>,
    /// Whether it passes every gate.
    pub feasible: bool,
    /// Whether it is on the cost / latency Pareto front.
    pub pareto: bool,
    /// Price per million prompt + output tokens, when there was throughput.
    pub dollars_per_million_tokens: Option<f64>,
    /// Price per hour.
    pub dollars_per_hour: f64,
    /// GPUs.
    pub gpus: u32,
    /// p90 time to first token (ms).
    pub ttft_p90_ms: f64,
    /// p90 inter-token latency (ms).
    pub itl_p90_ms: f64,
    /// p90 end-to-end latency (ms).
    pub e2e_p90_ms: f64,
    /// Gates it failed, as one line each.
    pub failed_gates: Vec<String>,
    /// Fraction of SLO-bearing requests that met their SLO, when there are SLOs.
    pub slo_attainment: Option<f64>,
}

/// A sweep as the report shows it.
pub struct SweepView<'a> {
    /// Page title (the sweep's name).
    pub title: &'a str,
    /// What the ranking optimises, in words.
    pub objective: &'a str,
    /// Every candidate.
    pub candidates: Vec<CandidateView<'a>>,
    /// The sweep's input manifest(s).
    pub inputs_yaml: &'a str,
    /// Candidates whose charts to show in full (e.g. the winner); may be empty.
    pub details: Vec<RunView<'a>>,
}

/// One simulated scenario with what its charts need.
pub struct RunView<'a> {
    /// The prediction.
    pub report: &'a ScenarioReport,
    /// Pool state over time.
    pub series: &'a Series,
    /// Per-class TTFT and ITL distribution functions.
    pub cdfs: Vec<ClassCdf>,
    /// The scenario manifest as given.
    pub inputs_yaml: &'a str,
    /// Measured points to draw over the per-stage plots (`blis run --measured`), one per stack.
    pub measured: &'a [MeasuredStack],
}

impl<'a> RunView<'a> {
    /// The view of a finished run: its report, raw output and input manifest.
    pub fn new(report: &'a ScenarioReport, output: &'a SimOutput, inputs_yaml: &'a str) -> Self {
        let names: Vec<String> = report.summary.classes.iter().map(|c| c.name.clone()).collect();
        Self { report, series: &output.series, cdfs: run_cdfs(output, &names), inputs_yaml, measured: &[] }
    }

    /// The same view with `measured` drawn over its per-stage plots (their rates are the stages').
    pub fn with_measured(self, measured: &'a [MeasuredStack]) -> Self {
        Self { measured, ..self }
    }
}

/// Series colours (Tableau 10), distinguishable and readable on white.
pub(crate) const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac",
];

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:1240px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid #d9e2ec;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 8px}.sub{color:#52606d;margin:0 0 16px}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:12px 16px;margin:12px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}
.grid .card{margin:0}svg{width:100%;height:auto;display:block}svg#pareto{max-width:800px;margin:0 auto}
svg text{font-family:inherit;fill:#323f4b}svg .title{font-size:15px;font-weight:600}
svg .axis{font-size:12px;fill:#52606d}svg .label{font-size:13px}svg .tag{font-size:12px;font-weight:600}
.grid line.g,svg line.g{stroke:#e4e7eb}svg .frame{fill:none;stroke:#9aa5b1}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px;margin:4px 0 0 56px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.sw{display:inline-block;width:18px;height:3px}.dot{display:inline-block;width:11px;height:11px;border-radius:50%}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:8px 14px;min-width:120px}
.tile b{display:block;font-size:20px}.tile small{color:#52606d}
table{border-collapse:collapse;width:100%;font-size:14px;background:#fff}
th,td{padding:6px 10px;border-bottom:1px solid #e4e7eb;text-align:right}th{background:#f0f4f8}
td.l,th.l{text-align:left}tr.win td{background:#fff4e5;font-weight:600}tr.bad td{color:#7b8794}
pre{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:12px;overflow-x:auto;font-size:12.5px}
.ok{color:#2f8132}.no{color:#c62828}
";

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number with about three significant digits.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{t}</title><style>{CSS}</style></head>\n\
         <body><main>\n{body}\n<p class=\"sub\">Generated by blis {v}: simulated predictions, not measurements.</p>\
         </main></body></html>\n",
        t = esc(title),
        v = env!("CARGO_PKG_VERSION"),
    )
}

/// One axis: linear from 0, or logarithmic when values span more than a factor of 30.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    fn linear(max: f64) -> Self {
        let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        let raw = max / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step =
            [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
        let hi = (max / step).ceil() * step;
        let n = (hi / step).round() as usize;
        Self { lo: 0.0, hi, log: false, ticks: (0..=n).map(|k| k as f64 * step).collect() }
    }

    fn fit(values: impl Iterator<Item = f64> + Clone) -> Self {
        let pos = values.clone().filter(|v| v.is_finite() && *v > 0.0);
        let min = pos.clone().fold(f64::INFINITY, f64::min);
        let max = pos.fold(0.0, f64::max);
        if min.is_finite() && max / min > 30.0 {
            let lo = 10f64.powf(min.log10().floor());
            let hi = 10f64.powf(max.log10().ceil());
            let mut ticks = Vec::new();
            let mut d = lo;
            while d <= hi * 1.0001 {
                for m in [1.0, 2.0, 5.0] {
                    let t = d * m;
                    if t >= lo && t <= hi * 1.0001 {
                        ticks.push(t);
                    }
                }
                d *= 10.0;
            }
            Self { lo, hi, log: true, ticks }
        } else {
            Self::linear(max * 1.05)
        }
    }

    /// A tick's label: as many decimals as the tick spacing needs, trailing zeros dropped.
    fn label(&self, v: f64) -> String {
        let step = if self.log { v } else { self.ticks.get(1).map_or(1.0, |t| t - self.ticks[0]) };
        let d = if step >= 1.0 { 0 } else { (-step.log10()).ceil() as usize + 1 };
        let s = format!("{v:.d$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }

    /// Position of `v` as a fraction of the axis (0 at `lo`).
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            let v = v.max(self.lo);
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

const W: f64 = 560.0;
const H: f64 = 330.0;
const ML: f64 = 66.0;
const MR: f64 = 18.0;
const MT: f64 = 34.0;
const MB: f64 = 50.0;

/// A plot area with axes, gridlines, a title and axis labels.
struct Plot {
    x: Axis,
    y: Axis,
    y_pct: bool,
}

impl Plot {
    fn px(&self, v: f64) -> f64 {
        ML + self.x.frac(v) * (W - ML - MR)
    }
    fn py(&self, v: f64) -> f64 {
        H - MB - self.y.frac(v) * (H - MT - MB)
    }

    fn open(&self, out: &mut String, id: &str, title: &str, x_label: &str, y_label: &str) {
        let _ = write!(
            out,
            "<svg id=\"{id}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
             aria-label=\"{t}\"><text class=\"title\" x=\"{ML}\" y=\"20\">{t}</text>",
            id = esc(id),
            t = esc(title)
        );
        for &t in &self.y.ticks {
            let y = self.py(t);
            let label = if self.y_pct { format!("{:.0}%", t * 100.0) } else { self.y.label(t) };
            let _ = write!(
                out,
                "<line class=\"g\" x1=\"{ML}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text class=\"axis\" x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{label}</text>",
                x2 = W - MR,
                lx = ML - 6.0,
                ty = y + 4.0
            );
        }
        for &t in &self.x.ticks {
            let x = self.px(t);
            let _ = write!(
                out,
                "<line class=\"g\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{y2}\"/>\
                 <text class=\"axis\" x=\"{x:.1}\" y=\"{ty}\" text-anchor=\"middle\">{l}</text>",
                y2 = H - MB,
                ty = H - MB + 16.0,
                l = self.x.label(t)
            );
        }
        let _ = write!(
            out,
            "<rect class=\"frame\" x=\"{ML}\" y=\"{MT}\" width=\"{w}\" height=\"{h}\"/>\
             <text class=\"label\" x=\"{cx}\" y=\"{by}\" text-anchor=\"middle\">{xl}</text>\
             <text class=\"label\" transform=\"translate(16 {cy}) rotate(-90)\" text-anchor=\"middle\">{yl}</text>",
            w = W - ML - MR,
            h = H - MT - MB,
            cx = ML + (W - ML - MR) / 2.0,
            by = H - 12.0,
            cy = MT + (H - MT - MB) / 2.0,
            xl = esc(x_label),
            yl = esc(y_label)
        );
    }
}

/// One line of a chart.
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) color: &'static str,
    pub(crate) dashed: bool,
    pub(crate) points: Vec<(f64, f64)>,
}

/// Unconnected points of a chart, drawn as circles carrying their values (`data-x`, `data-y`):
/// the predicted value of each stage over its line, or measured values beside a prediction.
pub(crate) struct Dots {
    pub(crate) label: String,
    pub(crate) color: &'static str,
    /// CSS class of every circle (`pred`, `meas`, ...), so a reader or a test can pick them out.
    pub(crate) class: &'static str,
    /// White inside: points that are shown but do not count (unscored measurements).
    pub(crate) hollow: bool,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A vertical rule at one x value, labelled (a knee).
pub(crate) struct Rule {
    pub(crate) label: String,
    pub(crate) color: &'static str,
    pub(crate) x: f64,
}

/// What a chart is: its id, title, axis labels and whether y is a fraction shown as percent.
pub(crate) struct Frame<'a> {
    pub(crate) id: &'a str,
    pub(crate) title: &'a str,
    pub(crate) x_label: &'a str,
    pub(crate) y_label: &'a str,
    pub(crate) pct: bool,
}

fn legend(out: &mut String, items: &[(String, String)]) {
    out.push_str("<div class=\"legend\">");
    for (swatch, label) in items {
        let _ = write!(out, "<span>{swatch}{}</span>", esc(label));
    }
    out.push_str("</div>");
}

fn line_swatch(color: &str, dashed: bool) -> String {
    let bg = if dashed {
        format!("repeating-linear-gradient(90deg,{color} 0 5px,transparent 5px 8px)")
    } else {
        color.to_string()
    };
    format!("<i class=\"sw\" style=\"background:{bg}\"></i>")
}

fn dot_swatch(fill: &str, stroke: &str) -> String {
    format!("<i class=\"dot\" style=\"background:{fill};border:2px solid {stroke}\"></i>")
}

/// A line chart in a card, with its legend.
fn line_chart(
    out: &mut String,
    id: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    pct: bool,
) {
    chart(out, &Frame { id, title, x_label, y_label, pct }, lines, &[], &[]);
}

/// A chart in a card: lines, then dots over them, then vertical rules; with its legend. Both axes
/// start at 0 and cover every line, dot and rule.
pub(crate) fn chart(out: &mut String, f: &Frame, lines: &[Line], dots: &[Dots], rules: &[Rule]) {
    out.push_str("<div class=\"card\">");
    let line_points = || lines.iter().flat_map(|l| l.points.iter().copied());
    let dot_points = || dots.iter().flat_map(|d| d.points.iter().copied());
    let x_max =
        line_points().chain(dot_points()).map(|p| p.0).chain(rules.iter().map(|r| r.x)).fold(0.0, f64::max);
    let y_max = line_points().chain(dot_points()).map(|p| p.1).fold(0.0, f64::max);
    // Fractions that reach 1 (distribution functions) end the axis at 100 %.
    let y = if f.pct && y_max >= 0.999 { Axis::linear(1.0) } else { Axis::linear(y_max.max(0.05) * 1.05) };
    let plot = Plot { x: Axis::linear(x_max), y, y_pct: f.pct };
    plot.open(out, f.id, f.title, f.x_label, f.y_label);
    if line_points().next().is_none() && dot_points().next().is_none() {
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text>",
            W / 2.0,
            H / 2.0
        );
    }
    for l in lines.iter().filter(|l| !l.points.is_empty()) {
        let mut d = String::new();
        for (k, (x, y)) in l.points.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if k == 0 { "M" } else { "L" }, plot.px(*x), plot.py(*y));
        }
        let _ = write!(
            out,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash}><title>{t}</title></path>",
            c = l.color,
            dash = if l.dashed { " stroke-dasharray=\"5 3\"" } else { "" },
            t = esc(&l.label)
        );
    }
    for d in dots {
        let fill = if d.hollow { "#fff" } else { d.color };
        for &(x, y) in &d.points {
            let _ = write!(
                out,
                "<circle class=\"{cls}\" data-x=\"{x}\" data-y=\"{y}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4.5\" \
                 fill=\"{fill}\" stroke=\"{c}\" stroke-width=\"2\"><title>{t}: {xv}, {yv}</title></circle>",
                cls = d.class,
                cx = plot.px(x),
                cy = plot.py(y),
                c = d.color,
                t = esc(&d.label),
                xv = num(x),
                yv = num(y)
            );
        }
    }
    for r in rules {
        let x = plot.px(r.x);
        let _ = write!(
            out,
            "<line class=\"rule\" data-x=\"{v}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{y2}\" stroke=\"{c}\" \
             stroke-width=\"1.5\" stroke-dasharray=\"2 3\"><title>{t}</title></line>",
            v = r.x,
            y2 = H - MB,
            c = r.color,
            t = esc(&r.label)
        );
    }
    out.push_str("</svg>");
    let mut items: Vec<(String, String)> =
        lines.iter().map(|l| (line_swatch(l.color, l.dashed), l.label.clone())).collect();
    // A line's own points share its legend entry.
    let own = |d: &Dots| lines.iter().any(|l| l.label == d.label && l.color == d.color);
    items.extend(
        dots.iter()
            .filter(|d| !own(d))
            .map(|d| (dot_swatch(if d.hollow { "#fff" } else { d.color }, d.color), d.label.clone())),
    );
    items.extend(rules.iter().map(|r| (line_swatch(r.color, true), r.label.clone())));
    legend(out, &items);
    out.push_str("</div>");
}

/// Per-class TTFT and ITL distribution functions.
fn cdf_charts(out: &mut String, prefix: &str, v: &RunView) {
    for (which, title, label) in [
        ("ttft", "Time to first token by class", "TTFT (ms)"),
        ("itl", "Inter-token latency by class", "Mean ITL per request (ms)"),
    ] {
        let lines: Vec<Line> = v
            .cdfs
            .iter()
            .enumerate()
            .map(|(k, c)| Line {
                label: c.name.clone(),
                color: PALETTE[k % PALETTE.len()],
                dashed: false,
                points: if which == "ttft" { c.ttft_ms.clone() } else { c.itl_ms.clone() },
            })
            .collect();
        line_chart(
            out,
            &format!("{prefix}-{which}-cdf"),
            title,
            label,
            "Requests at or below (CDF)",
            &lines,
            true,
        );
    }
}

/// The plots llm-d publishes for its benchmark ladders: output tokens/s and TTFT (mean, p90) against
/// each stage's request rate (stages sorted by rate; nothing for a run without rated stages).
fn stage_charts(out: &mut String, prefix: &str, v: &RunView) {
    let mut stages: Vec<_> =
        v.report.summary.stages.iter().filter_map(|st| st.rate_per_second.map(|r| (r, st))).collect();
    if stages.is_empty() {
        return;
    }
    stages.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.stage.cmp(&b.1.stage)));
    let points = |f: &dyn Fn(&blis_sim::metrics::stages::StageSummary) -> f64| -> Vec<(f64, f64)> {
        stages.iter().map(|(r, st)| (*r, f(st))).collect()
    };
    let throughput = [Line {
        label: "output tokens/s".into(),
        color: PALETTE[0],
        dashed: false,
        points: points(&|st| st.stats.throughput.output_tokens_per_s),
    }];
    let frame = |id: &str| format!("{prefix}-stage-{id}");
    let (id, by_rate) = (frame("throughput"), "Stage request rate (req/s)");
    let dots = measured_dots(v.measured, "output tokens/s", ("meas-tput", "meas-unscored-tput"), 3, |f| {
        f.output_tokens_per_s
    });
    let f = Frame {
        id: &id,
        title: "Output throughput by stage",
        x_label: by_rate,
        y_label: "Output tokens/s",
        pct: false,
    };
    chart(out, &f, &throughput, &dots, &[]);
    let ttft = [
        Line {
            label: "TTFT mean".into(),
            color: PALETTE[1],
            dashed: false,
            points: points(&|st| st.stats.ttft_ms.mean),
        },
        Line {
            label: "TTFT p90".into(),
            color: PALETTE[2],
            dashed: true,
            points: points(&|st| st.stats.ttft_ms.p90),
        },
    ];
    let mut dots =
        measured_dots(v.measured, "TTFT mean", ("meas-ttft-mean", "meas-unscored-ttft-mean"), 3, |f| {
            f.ttft_mean_ms
        });
    dots.extend(measured_dots(v.measured, "TTFT p90", ("meas-ttft-p90", "meas-unscored-ttft-p90"), 6, |f| {
        f.ttft_p90_ms
    }));
    let id = frame("ttft");
    let f = Frame {
        id: &id,
        title: "Time to first token by stage",
        x_label: by_rate,
        y_label: "TTFT (ms)",
        pct: false,
    };
    chart(out, &f, &ttft, &dots, &[]);
}

/// One measured figure of every measured stack as dots at the measured rates: a series per stack
/// (colours from `PALETTE[color..]`), solid where the measurement is scored and hollow where it says
/// not to score it (`classes`: the solid and the hollow circles' CSS classes).
fn measured_dots(
    measured: &[MeasuredStack],
    what: &str,
    classes: (&'static str, &'static str),
    color: usize,
    figure: fn(&Figures) -> Option<f64>,
) -> Vec<Dots> {
    let mut out = Vec::new();
    for (j, s) in measured.iter().enumerate() {
        let label = if measured.len() > 1 {
            format!("measured {what} ({})", s.stack)
        } else {
            format!("measured {what}")
        };
        for hollow in [false, true] {
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| p.unscored.is_some() == hollow)
                .filter_map(|p| Some((p.rate, figure(&p.measured)?)))
                .collect();
            if points.is_empty() {
                continue;
            }
            out.push(Dots {
                label: if hollow { format!("{label}, not scored") } else { label.clone() },
                color: PALETTE[(color + j) % PALETTE.len()],
                class: if hollow { classes.1 } else { classes.0 },
                hollow,
                points,
            });
        }
    }
    out
}

/// Queue depth, KV utilisation and replicas over time, one line per pool.
fn series_charts(out: &mut String, prefix: &str, v: &RunView) {
    let s = v.series;
    let pools: Vec<String> = (0..s.buckets.first().map_or(0, |b| b.pools.len()))
        .map(|p| v.report.summary.pools.get(p).map_or(format!("pool {p}"), |x| x.name.clone()))
        .collect();
    let mid = |i: usize| (s.start_us(i) as f64 + s.width_us as f64 / 2.0) / 1e6;
    let per_pool = |f: &dyn Fn(&blis_sim::metrics::series::Bucket, usize) -> f64,
                    p: usize|
     -> Vec<(f64, f64)> {
        s.buckets.iter().enumerate().filter(|(_, b)| b.samples > 0).map(|(i, b)| (mid(i), f(b, p))).collect()
    };
    let many = pools.len() > 1;
    let name = |p: usize, what: &str| if many { format!("{} {what}", pools[p]) } else { what.to_string() };
    let mut queue = Vec::new();
    let mut kv = Vec::new();
    let mut reps = Vec::new();
    for p in 0..pools.len() {
        let c = PALETTE[p % PALETTE.len()];
        let c2 = PALETTE[(p + pools.len()) % PALETTE.len()];
        queue.push(Line {
            label: name(p, "waiting (mean)"),
            color: c,
            dashed: false,
            points: per_pool(&|b, p| b.mean(b.pools[p].waiting_sum), p),
        });
        queue.push(Line {
            label: name(p, "running (mean)"),
            color: c2,
            dashed: true,
            points: per_pool(&|b, p| b.mean(b.pools[p].running_sum), p),
        });
        kv.push(Line {
            label: name(p, "mean"),
            color: c,
            dashed: false,
            points: per_pool(&|b, p| b.pools[p].kv_util_mean(), p),
        });
        kv.push(Line {
            label: name(p, "peak"),
            color: c2,
            dashed: true,
            points: per_pool(&|b, p| b.pools[p].kv_util_max, p),
        });
        reps.push(Line {
            label: name(p, "active replicas (peak)"),
            color: c,
            dashed: false,
            points: per_pool(&|b, p| f64::from(b.pools[p].active_max), p),
        });
    }
    if s.buckets.iter().any(|b| b.gateway_max > 0) {
        queue.push(Line {
            label: "gateway queue (mean)".into(),
            color: PALETTE[9],
            dashed: false,
            points: s
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| b.samples > 0)
                .map(|(i, b)| (mid(i), b.mean(b.gateway_sum)))
                .collect(),
        });
    }
    let bucket = format!("per {} s", s.width_us as f64 / 1e6);
    line_chart(
        out,
        &format!("{prefix}-queue"),
        &format!("Requests waiting and running ({bucket})"),
        "Simulated time (s)",
        "Requests",
        &queue,
        false,
    );
    line_chart(
        out,
        &format!("{prefix}-kv"),
        &format!("KV-cache utilisation ({bucket})"),
        "Simulated time (s)",
        "Blocks in use",
        &kv,
        true,
    );
    line_chart(
        out,
        &format!("{prefix}-replicas"),
        &format!("Replicas serving ({bucket})"),
        "Simulated time (s)",
        "Replicas",
        &reps,
        false,
    );
}

fn tiles(out: &mut String, r: &ScenarioReport) {
    let s = &r.summary;
    let o = &s.overall;
    let slo = match (s.slo_met, s.slo_attainment) {
        (Some(met), Some(a)) => format!(
            "<span class=\"{}\">{}</span>",
            if met { "ok" } else { "no" },
            if met { format!("met ({})", pct(a)) } else { format!("missed ({})", pct(a)) }
        ),
        _ => "none set".to_string(),
    };
    let per_m = s.cost.dollars_per_million_tokens.map_or("n/a".to_string(), |x| format!("${x:.3}"));
    let items = [
        ("TTFT p90", format!("{} ms", fmt_ms(o.ttft_ms.p90))),
        ("ITL p90", format!("{} ms", fmt_ms(o.itl_ms.p90))),
        ("E2E p90", format!("{} ms", fmt_ms(o.e2e_ms.p90))),
        ("Throughput", format!("{:.2} req/s", o.throughput.requests_per_s)),
        ("Output tokens", format!("{:.0} tok/s", o.throughput.output_tokens_per_s)),
        ("SLO", slo),
        ("Cost", format!("${:.2}/h, {} GPUs", s.cost.dollars_per_hour, s.cost.gpus)),
        ("Per 1M tokens", per_m),
    ];
    out.push_str("<div class=\"tiles\">");
    for (k, v) in items {
        let _ = write!(out, "<div class=\"tile\"><small>{k}</small><b>{v}</b></div>");
    }
    out.push_str("</div>");
}

fn run_section(out: &mut String, k: usize, v: &RunView, with_inputs: bool) {
    let r = v.report;
    let i = &r.inputs;
    let _ = write!(
        out,
        "<h2 id=\"scenario-{k}\">{}</h2><p class=\"sub\">{} on {} x {} (TP {}), {} latency model, seed {}</p>",
        esc(&r.name),
        esc(&i.model),
        i.replicas,
        esc(&i.gpu),
        i.tensor_parallelism,
        esc(&i.latency_model),
        r.seed
    );
    tiles(out, r);
    let prefix = format!("s{k}");
    out.push_str("<div class=\"grid\">");
    cdf_charts(out, &prefix, v);
    series_charts(out, &prefix, v);
    stage_charts(out, &prefix, v);
    out.push_str("</div>");
    let _ = write!(out, "<h3>Prediction</h3><pre>{}</pre>", esc(&table::render(r)));
    if with_inputs {
        inputs(out, v.inputs_yaml, r);
    }
}

fn inputs(out: &mut String, yaml: &str, r: &ScenarioReport) {
    let resolved = serde_json::to_string_pretty(&r.inputs).unwrap_or_default();
    let _ = write!(
        out,
        "<h3>Inputs</h3><div class=\"grid\"><div class=\"card\"><b>Scenario as given</b><pre>{}</pre></div>\
         <div class=\"card\"><b>Resolved</b><pre>{}</pre></div></div>",
        esc(yaml),
        esc(&resolved)
    );
}

/// The page of `blis run --report`: one section per scenario.
pub fn render_run(reports: &[RunView]) -> String {
    let mut body = String::new();
    let title = match reports {
        [one] => format!("BLIS prediction: {}", one.report.name),
        _ => format!("BLIS predictions: {} scenarios", reports.len()),
    };
    let _ = write!(body, "<h1>{}</h1>", esc(&title));
    for (k, v) in reports.iter().enumerate() {
        run_section(&mut body, k, v, true);
    }
    page(&title, &body)
}

/// The sweep's cost axis: $/1M tokens when every candidate has it, else $/h.
fn cost_of(c: &CandidateView, per_token: bool) -> f64 {
    if per_token {
        c.dollars_per_million_tokens.unwrap_or(c.dollars_per_hour)
    } else {
        c.dollars_per_hour
    }
}

/// The Pareto plot: cost against p90 TTFT, one point per candidate, the front as a step line.
fn pareto_svg(out: &mut String, v: &SweepView) {
    let per_token = v.candidates.iter().all(|c| c.dollars_per_million_tokens.is_some());
    let x_label = if per_token { "Cost ($ per 1M tokens)" } else { "Cost ($ per hour)" };
    let xs = v.candidates.iter().map(|c| cost_of(c, per_token));
    let ys = v.candidates.iter().map(|c| c.ttft_p90_ms);
    let plot = Plot { x: Axis::linear(xs.fold(0.0, f64::max) * 1.08), y: Axis::fit(ys), y_pct: false };
    out.push_str("<div class=\"card\">");
    let y_label = if plot.y.log { "TTFT p90 (ms, log scale)" } else { "TTFT p90 (ms)" };
    plot.open(out, "pareto", "Cost vs latency: Pareto front", x_label, y_label);
    let mut front: Vec<(f64, f64)> =
        v.candidates.iter().filter(|c| c.pareto).map(|c| (cost_of(c, per_token), c.ttft_p90_ms)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    if !front.is_empty() {
        let mut d = format!("M{:.1},{:.1}", plot.px(front[0].0), plot.py(front[0].1));
        for w in front.windows(2) {
            let _ = write!(d, "H{:.1}V{:.1}", plot.px(w[1].0), plot.py(w[1].1));
        }
        let _ = write!(
            out,
            "<path class=\"front\" d=\"{d}\" fill=\"none\" stroke=\"#f28e2b\" stroke-width=\"2.5\"/>"
        );
    }
    // Infeasible first so feasible points are drawn on top.
    let mut order: Vec<&CandidateView> = v.candidates.iter().collect();
    order.sort_by_key(|c| (c.feasible, c.pareto));
    for c in order {
        let (x, y) = (plot.px(cost_of(c, per_token)), plot.py(c.ttft_p90_ms));
        let (kind, style) = match (c.feasible, c.pareto) {
            (false, _) => ("infeasible", "r=\"6\" fill=\"#fff\" stroke=\"#9aa5b1\" stroke-width=\"2\""),
            (true, true) => {
                ("feasible pareto", "r=\"7.5\" fill=\"#f28e2b\" stroke=\"#7a3e00\" stroke-width=\"1.5\"")
            }
            (true, false) => ("feasible", "r=\"6\" fill=\"#4e79a7\" stroke=\"#fff\" stroke-width=\"1\""),
        };
        let rank = c.rank.map_or("infeasible".to_string(), |r| format!("rank {r}"));
        let gates = if c.failed_gates.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", c.failed_gates.join("; "))
        };
        let _ = write!(
            out,
            "<circle class=\"pt {kind}\" data-name=\"{n}\" cx=\"{x:.1}\" cy=\"{y:.1}\" {style}>\
             <title>{n} ({rank}): TTFT p90 {t} ms, ITL p90 {i} ms, {cost} {x_label}, {g} GPUs{gates}</title></circle>",
            n = esc(c.name),
            t = fmt_ms(c.ttft_p90_ms),
            i = fmt_ms(c.itl_p90_ms),
            cost = num(cost_of(c, per_token)),
            g = c.gpus,
            gates = esc(&gates)
        );
        if c.pareto || c.rank == Some(1) {
            let win = c.rank == Some(1);
            let label = if win { format!("★ {} (best)", c.name) } else { c.name.to_string() };
            // The winner's label above its point, the others' below, so neighbours rarely collide.
            let anchor = if x > W * 0.75 {
                "end"
            } else if win {
                "start"
            } else {
                "middle"
            };
            let dx = match anchor {
                "end" => -10.0,
                "start" => 10.0,
                _ => 0.0,
            };
            let dy = if win { -10.0 } else { 22.0 };
            let _ = write!(
                out,
                "<text class=\"{cls}\" x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"{anchor}\">{l}</text>",
                cls = if win { "tag winner" } else { "axis" },
                tx = x + dx,
                ty = y + dy,
                l = esc(&label)
            );
        }
    }
    out.push_str("</svg>");
    legend(
        out,
        &[
            (dot_swatch("#4e79a7", "#4e79a7"), "feasible".into()),
            (dot_swatch("#f28e2b", "#7a3e00"), "Pareto-optimal".into()),
            (dot_swatch("#fff", "#9aa5b1"), "infeasible (fails a gate)".into()),
            (line_swatch("#f28e2b", false), "Pareto front".into()),
        ],
    );
    out.push_str("</div>");
}

fn ranked_table(out: &mut String, v: &SweepView) {
    let mut rows: Vec<&CandidateView> = v.candidates.iter().collect();
    rows.sort_by_key(|c| c.rank.unwrap_or(u32::MAX));
    out.push_str(
        "<table id=\"ranking\"><thead><tr><th>Rank</th><th class=\"l\">Candidate</th><th>GPUs</th><th>$/h</th>\
         <th>$/1M tokens</th><th>TTFT p90 (ms)</th><th>ITL p90 (ms)</th><th>E2E p90 (ms)</th><th>SLO attained</th>\
         <th class=\"l\">Status</th></tr></thead><tbody>",
    );
    for c in rows {
        let cls = match (c.rank, c.feasible) {
            (Some(1), _) => " class=\"win\"",
            (_, false) => " class=\"bad\"",
            _ => "",
        };
        let status = if c.feasible {
            if c.pareto {
                "feasible, Pareto".to_string()
            } else {
                "feasible".to_string()
            }
        } else {
            format!("fails: {}", c.failed_gates.join("; "))
        };
        let _ = write!(
            out,
            "<tr{cls}><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            c.rank.map_or("-".to_string(), |r| r.to_string()),
            esc(c.name),
            c.gpus,
            c.dollars_per_hour,
            c.dollars_per_million_tokens.map_or("n/a".to_string(), |x| format!("{x:.3}")),
            fmt_ms(c.ttft_p90_ms),
            fmt_ms(c.itl_p90_ms),
            fmt_ms(c.e2e_p90_ms),
            c.slo_attainment.map_or("-".to_string(), pct),
            esc(&status)
        );
    }
    out.push_str("</tbody></table>");
}

/// The page of a sweep: Pareto plot, ranked table, details of chosen candidates, inputs.
pub fn render_sweep(view: &SweepView) -> String {
    let mut body = String::new();
    let feasible = view.candidates.iter().filter(|c| c.feasible).count();
    let best = view.candidates.iter().find(|c| c.rank == Some(1));
    let _ = write!(
        body,
        "<h1>Sweep: {}</h1><p class=\"sub\">{} candidates, {feasible} feasible. Objective: {}. {}</p>",
        esc(view.title),
        view.candidates.len(),
        esc(view.objective),
        best.map_or("No feasible candidate.".to_string(), |b| format!("Best: {}.", esc(b.name)))
    );
    pareto_svg(&mut body, view);
    body.push_str("<h2>Ranking</h2>");
    ranked_table(&mut body, view);
    for (k, d) in view.details.iter().enumerate() {
        run_section(&mut body, k, d, false);
    }
    let _ = write!(body, "<h2>Inputs</h2><pre>{}</pre>", esc(view.inputs_yaml));
    page(&format!("BLIS sweep: {}", view.title), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_cover_their_values_with_readable_ticks() {
        for max in [0.0, 0.004, 0.9, 2.0, 7.3, 99.0, 1234.5] {
            let a = Axis::linear(max);
            assert!(a.hi >= max && a.ticks.len() >= 2 && a.ticks.len() <= 11, "{max}: {:?}", a.ticks);
            assert_eq!(a.ticks.last().copied(), Some(a.hi));
            assert!((a.frac(a.hi) - 1.0).abs() < 1e-12 && a.frac(0.0) == 0.0);
        }
        assert_eq!(Axis::linear(2.1).label(2.0), "2");
        assert_eq!(Axis::linear(2.1).label(0.5), "0.5");
        let log = Axis::fit([3.0, 40.0, 20_000.0].into_iter());
        assert!(log.log && log.lo <= 3.0 && log.hi >= 20_000.0);
        assert!(log.frac(40.0) > 0.0 && log.frac(40.0) < 1.0);
        assert!(!Axis::fit([30.0, 90.0].into_iter()).log);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }
}
