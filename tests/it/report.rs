//! The HTML report from real runs: a sweep page from candidates of varied replicas and a run page.
//! Both are also written to target/ (report-sample-sweep.html, report-sample-run.html), where
//! hack/chromium-check.sh opens them in a headless browser.

use crate::common;

use blis_report::html::{render_run, render_sweep, CandidateView, RunView, SweepView};
use blis_report::ScenarioReport;
use blis_sim::scenario::Outcome;
use common::*;

const QUICKSTART: &str = include_str!("../../examples/quickstart.yaml");

/// The quickstart at a heavier load (40 req/s for 20 s), on `replicas` replicas.
fn candidate(replicas: u32) -> (String, ScenarioReport, Outcome) {
    let yaml = QUICKSTART
        .replace("name: quickstart", &format!("name: quickstart-{replicas}r"))
        .replace("replicas: 1", &format!("replicas: {replicas}"))
        .replace("ratePerSecond: 12", "ratePerSecond: 40")
        .replace("durationSeconds: 60", "durationSeconds: 20");
    let r = resolve(&yaml);
    let o = run(&r);
    let rep = ScenarioReport::new(&r, o.summary.clone());
    (yaml, rep, o)
}

fn target(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).expect("target/ can be created");
    dir.join(name)
}

/// Numbers of attribute `attr` of the elements starting with `open` in `svg`.
fn attr_values(svg: &str, open: &str, attr: &str) -> Vec<f64> {
    svg.split(open)
        .skip(1)
        .filter_map(|el| {
            let el = &el[..el.find('>').unwrap_or(el.len())];
            let at = el.find(&format!(" {attr}=\""))? + attr.len() + 3;
            el[at..].split('"').next()?.parse().ok()
        })
        .collect()
}

/// The `<svg id="...">...</svg>` element of a page.
fn svg_by_id<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("<svg id=\"{id}\"")).unwrap_or_else(|| panic!("no svg #{id}"));
    let end = start + page[start..].find("</svg>").expect("svg is closed");
    &page[start..end]
}

fn assert_self_contained(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", " src=", "href=\"http", "url(", "@import"] {
        assert!(!page.contains(banned), "the page must not load anything ({banned})");
    }
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
}

#[test]
fn sweep_page_plots_every_candidate_and_marks_the_front_and_the_winner() {
    let runs: Vec<_> = [1, 2, 3, 4].into_iter().map(candidate).collect();
    // Ranking as a sweep would: feasible = every class SLO met; cheapest $/1M tokens first; Pareto =
    // not dominated in (cost, TTFT p90) by another candidate.
    let cost = |r: &ScenarioReport| r.summary.cost.dollars_per_million_tokens.unwrap_or(f64::MAX);
    let ttft = |r: &ScenarioReport| r.summary.overall.ttft_ms.p90;
    let feasible = |r: &ScenarioReport| r.summary.slo_met == Some(true);
    let mut ranked: Vec<&ScenarioReport> = runs.iter().map(|x| &x.1).filter(|r| feasible(r)).collect();
    ranked.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
    let candidates: Vec<CandidateView> = runs
        .iter()
        .map(|(_, r, _)| {
            let dominated = runs.iter().any(|(_, o, _)| {
                feasible(o)
                    && cost(o) <= cost(r)
                    && ttft(o) <= ttft(r)
                    && (cost(o) < cost(r) || ttft(o) < ttft(r))
            });
            CandidateView {
                name: &r.name,
                rank: ranked.iter().position(|x| x.name == r.name).map(|p| p as u32 + 1),
                feasible: feasible(r),
                pareto: feasible(r) && !dominated,
                dollars_per_million_tokens: r.summary.cost.dollars_per_million_tokens,
                dollars_per_hour: r.summary.cost.dollars_per_hour,
                gpus: r.summary.cost.gpus,
                ttft_p90_ms: ttft(r),
                itl_p90_ms: r.summary.overall.itl_ms.p90,
                e2e_p90_ms: r.summary.overall.e2e_ms.p90,
                failed_gates: if feasible(r) { vec![] } else { vec!["class SLOs missed".into()] },
                slo_attainment: r.summary.slo_attainment,
            }
        })
        .collect();
    // One replica cannot keep up with 40 req/s, more can: the plot has both kinds of points.
    assert!(candidates.iter().any(|c| !c.feasible) && candidates.iter().any(|c| c.feasible));
    let winner = runs.iter().find(|x| Some(&x.1.name) == ranked.first().map(|r| &r.name)).expect("a winner");
    let inputs: String = runs.iter().map(|x| x.0.as_str()).collect::<Vec<_>>().join("---\n");
    let view = SweepView {
        title: "replicas 1-4 at 40 req/s",
        objective: "lowest $ per 1M tokens meeting every class SLO",
        candidates,
        inputs_yaml: &inputs,
        details: vec![RunView::new(&winner.1, &winner.2.output, &winner.0)],
    };
    let page = render_sweep(&view);
    std::fs::write(target("report-sample-sweep.html"), &page).expect("written");
    assert_self_contained(&page);

    let svg = svg_by_id(&page, "pareto");
    assert_eq!(svg.matches("<circle class=\"pt").count(), view.candidates.len());
    let infeasible = view.candidates.iter().filter(|c| !c.feasible).count();
    assert_eq!(svg.matches("<circle class=\"pt infeasible\"").count(), infeasible);
    let pareto = view.candidates.iter().filter(|c| c.pareto).count();
    assert!(pareto >= 1);
    assert_eq!(svg.matches("<circle class=\"pt feasible pareto\"").count(), pareto);
    assert_eq!(svg.matches("class=\"front\"").count(), 1);
    assert_eq!(svg.matches("(best)").count(), 1, "exactly one winner label");
    assert!(svg.contains(&format!("★ {} (best)", winner.1.name)));
    // Every point lies inside the plot frame.
    let frame = |a: &str| attr_values(svg, "<rect class=\"frame\"", a)[0];
    let (x0, y0) = (frame("x"), frame("y"));
    let (x1, y1) = (x0 + frame("width"), y0 + frame("height"));
    for (cx, cy) in attr_values(svg, "<circle", "cx").into_iter().zip(attr_values(svg, "<circle", "cy")) {
        assert!((x0..=x1).contains(&cx) && (y0..=y1).contains(&cy), "point ({cx}, {cy}) off the plot");
    }
    // The ranked table lists every candidate once, the winner first.
    let table = &page[page.find("<table id=\"ranking\"").expect("ranking table")..];
    let first_row = &table[table.find("<tbody>").expect("body")..];
    assert!(first_row[..first_row.find("</tr>").expect("row")].contains(&winner.1.name));
    for c in &view.candidates {
        assert!(table.contains(&format!(">{}<", c.name)));
    }
    // The winner's charts are there.
    for id in ["s0-ttft-cdf", "s0-itl-cdf", "s0-queue", "s0-kv", "s0-replicas"] {
        assert!(svg_by_id(&page, id).contains("<path d=\"M"), "chart {id} draws a line");
    }
}

#[test]
fn run_page_draws_cdfs_per_class_and_the_pools_over_time() {
    let (yaml, rep, o) = candidate(2);
    let view = RunView::new(&rep, &o.output, &yaml);
    // CDFs end at the largest value and at 100 %.
    for c in &view.cdfs {
        let last = c.ttft_ms.last().expect("points");
        assert_eq!(last.1, 1.0);
        let max = o
            .output
            .completed
            .iter()
            .filter(|r| rep.summary.classes[r.class as usize].name == c.name)
            .map(|r| r.ttft_us)
            .max();
        assert_eq!(Some(last.0), max.map(|m| m as f64 / 1000.0));
    }
    let page = render_run(&[view]);
    std::fs::write(target("report-sample-run.html"), &page).expect("written");
    assert_self_contained(&page);
    let ttft = svg_by_id(&page, "s0-ttft-cdf");
    assert_eq!(ttft.matches("<path d=\"M").count(), rep.summary.classes.len(), "one CDF per class");
    for c in &rep.summary.classes {
        assert!(ttft.contains(&format!("<title>{}</title>", c.name)));
    }
    // The replicas chart sits at the 2 replicas of the scenario.
    let reps = svg_by_id(&page, "s0-replicas");
    assert!(reps.contains(">2<"), "the replica axis shows 2");
    assert!(page.contains("kind: SimulationScenario"), "the inputs are on the page");
}

#[test]
fn a_staged_run_plots_throughput_and_ttft_against_the_stage_rates() {
    let profile = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/profiles/inference-perf-ladder.yaml"
    ))
    .expect("fixture");
    let indented: String = profile.lines().map(|l| format!("        {l}\n")).collect();
    let yaml = QUICKSTART.replace(
        "  workload:\n",
        &format!("  workload:\n    profile:\n      inferencePerf: |\n{indented}    classes: []\n"),
    );
    // Cut the quickstart's own workload fields so that only the profile's apply.
    let yaml =
        yaml[..yaml.find("    classes: []").expect("profile placed") + "    classes: []\n".len()].to_string();
    let r = resolve(&yaml);
    let o = run(&r);
    let rep = ScenarioReport::new(&r, o.summary.clone());
    let page = render_run(&[RunView::new(&rep, &o.output, &yaml)]);
    let rates = [2.0, 4.0, 8.0];
    for id in ["s0-stage-throughput", "s0-stage-ttft"] {
        let svg = svg_by_id(&page, id);
        let path = svg.split("<path d=\"M").nth(1).expect("a line is drawn");
        let points = path[..path.find('"').unwrap()].split('L').count();
        assert_eq!(points, rates.len(), "{id}: one point per stage");
    }
    assert_eq!(svg_by_id(&page, "s0-stage-ttft").matches("<path d=\"M").count(), 2, "mean and p90");
    // A run without stages has no stage plots.
    let (yaml, rep, o) = candidate(1);
    assert!(!render_run(&[RunView::new(&rep, &o.output, &yaml)]).contains("stage-ttft"));
}
