//! The verdict of `blis gate`: every gate and class SLO of every scenario as one pass/fail case, so a
//! CI job can stop a pull request on a predicted miss and show why (text lines, JSON, or JUnit XML
//! that CI systems display as tests).

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;

use blis_sim::metrics::gates::{self, Enforcement, GatesSpec};
use blis_sim::metrics::Summary;

/// One checked limit of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateCase {
    /// Gate name: the `spec.gates` field (e.g. `maxTtftP90Ms`), or `classSLO` for a class's SLO.
    pub gate: String,
    /// The client class, for a class SLO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// What is measured (e.g. `ttft_p90_ms`, `slo_attainment`).
    pub metric: String,
    /// Whether the prediction meets the limit.
    pub passed: bool,
    /// The predicted value (absent when the run produced none, which fails the gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<f64>,
    /// The limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// `true` when the prediction must be at least the limit (attainment), else at most.
    pub at_least: bool,
    /// One line for humans.
    pub message: String,
}

impl GateCase {
    /// Test-case name: the gate, with the class in brackets for a class SLO.
    pub fn name(&self) -> String {
        match &self.class {
            Some(c) => format!("{}[{c}]", self.gate),
            None => self.gate.clone(),
        }
    }

    /// `metric predicted V, limit <= L`: the figures of the case on one line.
    pub fn figures(&self) -> String {
        let num =
            |v: f64| if self.metric.contains("attainment") { format!("{v:.4}") } else { format!("{v:.3}") };
        let predicted = self.predicted.map_or("none".to_string(), num);
        let limit = self.limit.map_or("-".to_string(), |l| l.to_string());
        format!(
            "{} predicted {predicted}, limit {} {limit}",
            self.metric,
            if self.at_least { ">=" } else { "<=" }
        )
    }
}

/// The cases of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioGates {
    /// Scenario name.
    pub name: String,
    /// File it was read from.
    pub file: String,
    /// The scenario's enforcement (the controller's readiness rule; `blis gate` fails on any miss).
    pub enforcement: Enforcement,
    /// Whether every case passed.
    pub passed: bool,
    /// Its cases, in the order of [`gates::evaluate`] with the class SLOs one case per class.
    pub gates: Vec<GateCase>,
}

impl ScenarioGates {
    /// Evaluates a scenario's gates on its prediction with the controller's rules
    /// ([`gates::evaluate`]), splitting the aggregate class-SLO verdict into one case per class so a
    /// miss names its class.
    pub fn evaluate(name: &str, file: &str, spec: Option<&GatesSpec>, s: &Summary) -> Self {
        let spec = spec.cloned().unwrap_or_default();
        let mut cases = Vec::new();
        for g in gates::evaluate(&spec, s) {
            if g.name == "classSLOs" {
                cases.extend(class_cases(s));
                continue;
            }
            let (metric, at_least) = match g.name.as_str() {
                "attainmentTarget" => ("slo_attainment", true),
                "maxTtftP90Ms" => ("ttft_p90_ms", false),
                "maxItlP90Ms" => ("itl_p90_ms", false),
                "maxE2eP99Ms" => ("e2e_p99_ms", false),
                "maxDollarsPerMillionOutputTokens" => ("dollars_per_million_output_tokens", false),
                "maxDollarsPerHour" => ("dollars_per_hour", false),
                other => (other, false),
            };
            cases.push(GateCase {
                gate: g.name.clone(),
                class: None,
                metric: metric.to_string(),
                passed: g.passed,
                predicted: g.actual,
                limit: g.limit,
                at_least,
                message: g.message,
            });
        }
        Self {
            name: name.to_string(),
            file: file.to_string(),
            enforcement: spec.enforcement,
            passed: cases.iter().all(|c| c.passed),
            gates: cases,
        }
    }
}

fn class_cases(s: &Summary) -> Vec<GateCase> {
    let mut out = Vec::new();
    for c in &s.classes {
        let (Some(met), Some(slo)) = (c.slo_met, c.slo.as_ref()) else { continue };
        let target = slo.attainment_target();
        let a = c.attainment.as_ref();
        let mut parts = Vec::new();
        for (what, limit, frac) in [
            ("TTFT", slo.ttft_ms, a.and_then(|a| a.ttft)),
            ("ITL", slo.itl_ms, a.and_then(|a| a.itl)),
            ("E2E", slo.e2e_ms, a.and_then(|a| a.e2e)),
        ] {
            if let (Some(l), Some(f)) = (limit, frac) {
                parts.push(format!("{:.1}% within {what} {l} ms", f * 100.0));
            }
        }
        out.push(GateCase {
            gate: "classSLO".into(),
            class: Some(c.name.clone()),
            metric: "slo_attainment".into(),
            passed: met,
            predicted: a.map(|a| a.joint),
            limit: Some(target),
            at_least: true,
            message: format!(
                "class {}: {} of requests meet the SLO (target {target}): {}",
                c.name,
                a.map_or("none".into(), |a| format!("{:.1}%", a.joint * 100.0)),
                parts.join(", ")
            ),
        });
    }
    out
}

/// Every scenario's cases: the result of one `blis gate` invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// Whether every case of every scenario passed (exit status 0).
    pub passed: bool,
    /// Number of cases.
    pub total: usize,
    /// Number of failed cases.
    pub failed: usize,
    /// Per scenario.
    pub scenarios: Vec<ScenarioGates>,
}

impl GateReport {
    /// Totals over the scenarios.
    pub fn new(scenarios: Vec<ScenarioGates>) -> Self {
        let total = scenarios.iter().map(|s| s.gates.len()).sum();
        let failed = scenarios.iter().flat_map(|s| &s.gates).filter(|c| !c.passed).count();
        Self { passed: failed == 0, total, failed, scenarios }
    }

    /// One line per case (`PASS`/`FAIL scenario gate[class]: metric predicted V, limit <= L`, a missed
    /// class SLO followed by its per-limit attainment) and a closing count.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            if s.gates.is_empty() {
                out.push_str(&format!("PASS {}: no gates or class SLOs to check\n", s.name));
            }
            for c in &s.gates {
                let verdict = if c.passed { "PASS" } else { "FAIL" };
                out.push_str(&format!("{verdict} {} {}: {}", s.name, c.name(), c.figures()));
                // A missed class SLO also says which of its limits the requests miss.
                if !c.passed && c.class.is_some() {
                    out.push_str(&format!(" ({})", c.message));
                }
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "gate: {} of {} gates passed over {} scenarios{}\n",
            self.total - self.failed,
            self.total,
            self.scenarios.len(),
            if self.passed { "" } else { "; FAILED" }
        ));
        out
    }

    /// JUnit XML: a `testsuite` per scenario and a `testcase` per gate, with a `failure` for a miss.
    pub fn to_junit(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        let written: std::io::Result<()> = (|| {
            w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
            let (total, failed) = (self.total.to_string(), self.failed.to_string());
            w.create_element("testsuites")
                .with_attributes([
                    ("name", "blis gate"),
                    ("tests", total.as_str()),
                    ("failures", failed.as_str()),
                ])
                .write_inner_content(|w| {
                    for s in &self.scenarios {
                        let tests = s.gates.len().to_string();
                        let failures = s.gates.iter().filter(|c| !c.passed).count().to_string();
                        let suite = w.create_element("testsuite").with_attributes([
                            ("name", s.name.as_str()),
                            ("file", s.file.as_str()),
                            ("tests", tests.as_str()),
                            ("failures", failures.as_str()),
                            ("errors", "0"),
                        ]);
                        suite.write_inner_content(|w| {
                            for c in &s.gates {
                                let name = c.name();
                                let case = w.create_element("testcase").with_attributes([
                                    ("classname", s.name.as_str()),
                                    ("name", name.as_str()),
                                ]);
                                if c.passed {
                                    case.write_empty()?;
                                } else {
                                    let figures = c.figures();
                                    case.write_inner_content(|w| {
                                        w.create_element("failure")
                                            .with_attributes([
                                                ("message", figures.as_str()),
                                                ("type", "GateFailed"),
                                            ])
                                            .write_text_content(BytesText::new(&c.message))?;
                                        Ok(())
                                    })?;
                                }
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            Ok(())
        })();
        // Writing into a Vec cannot fail.
        written.expect("writing XML into memory");
        let mut xml = String::from_utf8(w.into_inner()).expect("XML written from UTF-8 strings");
        xml.push('\n');
        xml
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blis_sim::metrics::summary::{Attainment, ClassSummary, Cost, Stats};
    use blis_sim::workload::Slo;

    fn summary(ttft_p90: f64, chat_joint: f64) -> Summary {
        let mut overall = Stats::default();
        overall.requests.completed = 100;
        overall.ttft_ms.p90 = ttft_p90;
        let slo = Slo { ttft_ms: Some(300.0), attainment: Some(0.9), ..Default::default() };
        let class = |name: &str, joint: f64| ClassSummary {
            name: name.into(),
            stats: Stats::default(),
            slo: Some(slo.clone()),
            attainment: Some(Attainment { ttft: Some(joint), itl: None, e2e: None, joint }),
            slo_met: Some(joint >= 0.9),
        };
        Summary {
            duration_s: 1.0,
            overall,
            slo_attainment: Some(chat_joint.min(1.0)),
            slo_met: Some(chat_joint >= 0.9),
            kv_cache: Default::default(),
            cost: Cost { gpus: 1, dollars_per_hour: 3.5, ..Default::default() },
            classes: vec![class("chat", chat_joint), class("batch", 1.0)],
            pools: vec![],
            routing: vec![],
            replica_timeline: vec![],
            disaggregated: 0,
            kv_transfer_ms_mean: 0.0,
            stages: vec![],
        }
    }

    fn gates(max_ttft: f64) -> GatesSpec {
        GatesSpec { max_ttft_p90_ms: Some(max_ttft), ..Default::default() }
    }

    #[test]
    fn class_slos_become_one_case_per_class_and_misses_name_the_class() {
        let s = ScenarioGates::evaluate("cand", "c.yaml", Some(&gates(100.0)), &summary(80.0, 0.5));
        let names: Vec<String> = s.gates.iter().map(GateCase::name).collect();
        assert_eq!(names, ["classSLO[chat]", "classSLO[batch]", "maxTtftP90Ms"]);
        assert!(!s.passed);
        let report = GateReport::new(vec![s]);
        assert_eq!((report.total, report.failed, report.passed), (3, 1, false));
        let text = report.to_text();
        let fails: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert_eq!(
            fails,
            ["FAIL cand classSLO[chat]: slo_attainment predicted 0.5000, limit >= 0.9 (class chat: 50.0% of \
              requests meet the SLO (target 0.9): 50.0% within TTFT 300 ms)"]
        );
        assert!(
            text.contains("PASS cand maxTtftP90Ms: ttft_p90_ms predicted 80.000, limit <= 100"),
            "{text}"
        );
        assert!(text.ends_with("gate: 2 of 3 gates passed over 1 scenarios; FAILED\n"), "{text}");
    }

    #[test]
    fn a_failed_limit_names_metric_prediction_and_limit() {
        let s = ScenarioGates::evaluate("cand", "c.yaml", Some(&gates(50.0)), &summary(80.0, 1.0));
        let c = s.gates.iter().find(|c| !c.passed).unwrap();
        assert_eq!(c.figures(), "ttft_p90_ms predicted 80.000, limit <= 50");
        assert_eq!((c.predicted, c.limit), (Some(80.0), Some(50.0)));
        // Without a gates section the class SLOs are still checked, as the controller does.
        let s = ScenarioGates::evaluate("q", "q.yaml", None, &summary(80.0, 1.0));
        assert!(s.passed && s.gates.len() == 2);
    }

    #[test]
    fn junit_is_xml_with_one_testcase_per_gate_and_a_failure_per_miss() {
        use quick_xml::events::Event;
        let report = GateReport::new(vec![
            ScenarioGates::evaluate("a<&>", "a.yaml", Some(&gates(50.0)), &summary(80.0, 0.5)),
            ScenarioGates::evaluate("b", "b.yaml", None, &summary(10.0, 1.0)),
        ]);
        let xml = report.to_junit();
        let mut reader = quick_xml::Reader::from_str(&xml);
        reader.config_mut().check_end_names = true;
        let (mut cases, mut failures, mut suites) = (Vec::new(), 0, 0);
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => match e.name().into_inner() {
                    "testcase" => {
                        let attr = e.try_get_attribute("name").unwrap().unwrap();
                        cases.push(
                            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap().into_owned(),
                        );
                    }
                    "failure" => failures += 1,
                    "testsuite" => suites += 1,
                    _ => {}
                },
                _ => {}
            }
        }
        assert_eq!(suites, 2);
        assert_eq!(cases.len(), report.total);
        assert_eq!(
            cases,
            ["classSLO[chat]", "classSLO[batch]", "maxTtftP90Ms", "classSLO[chat]", "classSLO[batch]"]
        );
        assert_eq!(failures, 2);
        assert!(xml.contains(r#"name="a&lt;&amp;&gt;""#), "attribute values are escaped: {xml}");
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#));
    }
}
