//! The cluster validation report: per stack, every stage (or file) predicted beside measured with
//! its APEs, then the knee and the median and worst scores; as text, as JSON, and as one HTML page
//! per experiment with the plots llm-d publishes (output tok/s, TTFT mean, TTFT p90 against the
//! request rate), the prediction as a line and the measured points over it.

use std::fmt::Write;

use serde_json::Value;

use crate::html::{chart, esc, page, Dots, Frame, Line, Rule, PALETTE};
use blis_plan::cluster::score::{values, METRICS};
use blis_plan::cluster::{ClusterReport, StackResult};

/// Column headings of the metrics, in [`METRICS`] order.
const HEADINGS: [&str; 4] = ["TTFT mean ms", "TTFT p90 ms", "output tok/s", "ITL mean ms"];

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
        None => "-".into(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.1}%"))
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "none".into(), |x| format!("{x}"))
}

fn stack_table(s: &StackResult, out: &mut String) {
    let _ = writeln!(out, "== {} / {}", s.experiment, s.stack);
    if let Some(r) = &s.not_scored {
        let _ = writeln!(out, "  NOT SCORED: {r}");
    }
    for n in &s.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let shown: Vec<usize> =
        (0..4).filter(|&k| s.points.iter().any(|p| values(&p.measured)[k].is_some())).collect();
    let mut head = format!("  {:<16} {:>6}", "point", "n");
    for &k in &shown {
        let _ = write!(head, " | {:^26}", HEADINGS[k]);
    }
    let _ = writeln!(out, "{}", head.trim_end());
    let mut sub = format!("  {:<16} {:>6}", "", "");
    for _ in &shown {
        let _ = write!(sub, " | {:>8} {:>8} {:>8}", "meas", "pred", "APE");
    }
    let _ = writeln!(out, "{sub}");
    for p in &s.points {
        let m = values(&p.measured);
        let pr = p.predicted.as_ref().map(values).unwrap_or([None; 4]);
        let n = p.measured.n.map_or_else(|| "-".into(), |n| n.to_string());
        let mut line = format!("  {:<16} {:>6}", p.label, n);
        for &k in &shown {
            let _ = write!(line, " | {:>8} {:>8} {:>8}", num(m[k]), num(pr[k]), pct(p.ape[k]));
        }
        if let Some(u) = &p.unscored {
            let _ = write!(line, "  not scored: {u}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if s.not_scored.is_some() {
        let _ = writeln!(out);
        return;
    }
    let sc = &s.scores;
    let _ = writeln!(
        out,
        "  knee (TTFT mean > 5x the lowest rate's): measured {}, predicted {}",
        rate(sc.knee_measured),
        rate(sc.knee_predicted)
    );
    for (what, n, map) in [
        ("below the measured knee", sc.stages_below, &sc.median_below),
        ("at or above it", sc.stages_above, &sc.median_above),
    ] {
        let parts: Vec<String> =
            METRICS.iter().filter_map(|m| map.get(m).map(|v| format!("{m} {v:.1}%"))).collect();
        let body = if parts.is_empty() { "-".to_string() } else { parts.join(", ") };
        let _ = writeln!(out, "  median APE {what} ({n} stages): {body}");
    }
    match &sc.worst {
        Some(w) => {
            let _ = writeln!(out, "  worst stage: rate {} {} {:.1}%", w.rate, w.metric, w.ape);
        }
        None => {
            let _ = writeln!(out, "  worst stage: -");
        }
    }
    let _ = writeln!(out);
}

/// The text report.
pub fn to_table(r: &ClusterReport) -> String {
    let mut out = String::new();
    for s in &r.stacks {
        stack_table(s, &mut out);
    }
    let scored = r.stacks.iter().filter(|s| s.not_scored.is_none()).count();
    let _ =
        writeln!(out, "{} stacks, {} scored, {} not scored", r.stacks.len(), scored, r.stacks.len() - scored);
    out
}

/// The JSON report (stable key order, so two runs give the same bytes).
pub fn to_json(r: &ClusterReport) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// The metrics the HTML plots, in [`METRICS`] index, chart title and y-axis label.
const PLOTTED: [(usize, &str, &str); 3] = [
    (2, "Output throughput", "Output tokens/s"),
    (0, "TTFT mean", "TTFT mean (ms)"),
    (1, "TTFT p90", "TTFT p90 (ms)"),
];

/// One stack's section: its scores and notes, the three charts and its table.
fn stack_html(s: &StackResult, k: usize, out: &mut String) {
    let _ = write!(out, "<h2 id=\"stack-{k}\">{}</h2>", esc(&s.stack));
    if let Some(r) = &s.not_scored {
        let _ = write!(out, "<p class=\"sub no\">Not scored: {}</p>", esc(r));
    }
    let mut points: Vec<_> = s.points.iter().collect();
    points.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mut rules = Vec::new();
    if let Some(x) = s.scores.knee_measured {
        rules.push(Rule { label: format!("measured knee ({x} req/s)"), color: "#52606d", x });
    }
    if let Some(x) = s.scores.knee_predicted {
        rules.push(Rule { label: format!("predicted knee ({x} req/s)"), color: PALETTE[0], x });
    }
    out.push_str("<div class=\"grid\">");
    for (m, title, y_label) in PLOTTED {
        let pred: Vec<(f64, f64)> =
            points.iter().filter_map(|p| Some((p.rate, values(p.predicted.as_ref()?)[m]?))).collect();
        let measured = |scored: bool| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter(|p| p.unscored.is_none() == scored)
                .filter_map(|p| Some((p.rate, values(&p.measured)[m]?)))
                .collect()
        };
        let line =
            [Line { label: "predicted".into(), color: PALETTE[0], dashed: false, points: pred.clone() }];
        let dots = [
            Dots { label: "predicted".into(), color: PALETTE[0], class: "pred", hollow: false, points: pred },
            Dots {
                label: "measured".into(),
                color: PALETTE[1],
                class: "meas",
                hollow: false,
                points: measured(true),
            },
            Dots {
                label: "measured, not scored".into(),
                color: PALETTE[1],
                class: "meas-unscored",
                hollow: true,
                points: measured(false),
            },
        ];
        let dots: Vec<Dots> = dots.into_iter().filter(|d| !d.points.is_empty()).collect();
        let id = format!("stack-{k}-{}", METRICS[m]);
        let frame = Frame { id: &id, title, x_label: "Request rate (req/s)", y_label, pct: false };
        chart(out, &frame, &line, &dots, &rules);
    }
    out.push_str("</div>");
    let mut table = String::new();
    stack_table(s, &mut table);
    let _ = write!(out, "<pre>{}</pre>", esc(table.trim_end()));
}

/// A file name for an experiment's page: its name with anything but letters, digits, `.`, `_` and
/// `-` replaced by `-`, and `.html`.
fn file_name(experiment: &str) -> String {
    let stem: String = experiment
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    format!("{}.html", stem.trim_start_matches('.'))
}

/// The HTML report: one self-contained page per experiment, in input order, as `(file name, page)`.
/// Each stack has the three charts llm-d publishes against the request rate: the prediction as a
/// line with a point per stage, the measured points over it (hollow where not scored), and the
/// measured and predicted knees as vertical rules; then its table.
pub fn to_html(r: &ClusterReport) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = Vec::new();
    for (k, s) in r.stacks.iter().enumerate() {
        if pages.last().is_none_or(|(name, _)| *name != s.experiment) {
            pages.push((s.experiment.clone(), String::new()));
        }
        let (name, body) = pages.last_mut().expect("pushed above");
        if body.is_empty() {
            let _ = write!(
                body,
                "<h1>Cluster validation: {}</h1><p class=\"sub\">Predicted (line) against measured (points) per \
                 stage; knee = the first rate whose TTFT mean exceeds 5 x the lowest rate's.</p>",
                esc(name)
            );
        }
        stack_html(s, k, body);
    }
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    pages
        .into_iter()
        .map(|(name, body)| {
            let mut file = file_name(&name);
            let n = seen.entry(file.clone()).or_default();
            *n += 1;
            if *n > 1 {
                file = format!("{}-{n}.html", file.trim_end_matches(".html"));
            }
            (file, page(&format!("BLIS cluster validation: {name}"), &body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use blis_import::cluster::Figures;
    use blis_plan::cluster::score::Scores;
    use blis_plan::cluster::PointResult;

    fn fig(ttft: f64, p90: f64, tok: f64) -> Figures {
        Figures {
            ttft_mean_ms: Some(ttft),
            ttft_p90_ms: Some(p90),
            output_tokens_per_s: Some(tok),
            itl_mean_ms: None,
            n: Some(10),
        }
    }

    fn point(rate: f64, m: Figures, p: Figures, unscored: bool) -> PointResult {
        PointResult {
            label: format!("qps {rate}"),
            rate,
            stage: None,
            measured: m,
            predicted: Some(p),
            ape: [None; 4],
            unscored: unscored.then(|| "censored".to_string()),
        }
    }

    fn report() -> ClusterReport {
        let points = vec![
            point(2.0, fig(150.0, 210.0, 900.0), fig(160.0, 230.0, 880.0), false),
            point(1.0, fig(100.0, 130.0, 450.0), fig(90.0, 120.0, 470.0), false),
            point(4.0, fig(900.0, 1500.0, 1000.0), fig(700.0, 1300.0, 1100.0), true),
        ];
        let stack = |name: &str| StackResult {
            experiment: "exp <1>".into(),
            stack: name.into(),
            not_scored: None,
            notes: vec![],
            points: points.clone(),
            scores: Scores { knee_measured: Some(4.0), knee_predicted: Some(4.0), ..Scores::default() },
        };
        let mut other = stack("c");
        other.experiment = "exp-2".into();
        ClusterReport { stacks: vec![stack("a"), stack("b"), other] }
    }

    /// `(class, x, y)` of every circle of `html`, read back from its data attributes.
    fn circles(html: &str) -> Vec<(String, f64, f64)> {
        let attr = |s: &str, name: &str| -> String {
            let at = s.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            s[at..at + s[at..].find('"').unwrap()].to_string()
        };
        html.split("<circle ")
            .skip(1)
            .map(|c| {
                let c = &c[..c.find('>').unwrap()];
                (attr(c, "class"), attr(c, "data-x").parse().unwrap(), attr(c, "data-y").parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn each_experiment_gets_a_page_with_every_point_read_back_from_the_data() {
        let r = report();
        let pages = to_html(&r);
        let names: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["exp--1-.html", "exp-2.html"]);
        let (_, html) = &pages[0];
        assert_eq!(html.matches("<h2 ").count(), 2, "one section per stack of the experiment");
        let c = circles(html);
        for (m, _, _) in PLOTTED {
            let mut want_pred = Vec::new();
            let mut want_meas = Vec::new();
            for p in &r.stacks[0].points {
                want_pred.push((p.rate, values(p.predicted.as_ref().unwrap())[m].unwrap()));
                if p.unscored.is_none() {
                    want_meas.push((p.rate, values(&p.measured)[m].unwrap()));
                }
            }
            for (class, want) in [("pred", &want_pred), ("meas", &want_meas)] {
                for w in want {
                    let n = c.iter().filter(|(k, x, y)| k == class && *x == w.0 && *y == w.1).count();
                    assert_eq!(n, 2, "{class} {w:?} once per stack (two stacks)");
                }
            }
        }
        let count = |k: &str| c.iter().filter(|x| x.0 == k).count();
        assert_eq!(count("pred"), 2 * 3 * 3, "a predicted point per stage, chart and stack");
        assert_eq!(count("meas"), 2 * 3 * 2, "a measured point per scored stage");
        assert_eq!(count("meas-unscored"), 2 * 3, "the censored point is shown hollow");
        assert_eq!(
            html.matches("class=\"rule\" data-x=\"4\"").count(),
            2 * 3 * 2,
            "both knees on every chart"
        );
        assert_eq!(to_html(&r), pages, "the same report gives the same bytes");
    }
}
