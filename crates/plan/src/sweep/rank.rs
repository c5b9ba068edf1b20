//! Ranking candidates: feasible ones by the objective (saturation searches by the rate they
//! sustain), then the rest by how many gates they fail; the Pareto set of cost vs latency
//! percentiles; and one line per candidate saying why it did not win.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::eval::CandidateResult;
use super::spec::{Figures, Objective};

/// The figures the Pareto set trades off, all minimised: $ per million tokens, TTFT p90, ITL p90.
pub fn pareto_point(f: &Figures) -> [f64; 3] {
    [f.dollars_per_million_tokens.unwrap_or(f64::INFINITY), f.ttft_p90_ms, f.itl_p90_ms]
}

/// `a` is no worse than `b` in every Pareto figure and better in at least one.
pub fn dominates(a: &Figures, b: &Figures) -> bool {
    let (a, b) = (pareto_point(a), pareto_point(b));
    a.iter().zip(&b).all(|(x, y)| x <= y) && a.iter().zip(&b).any(|(x, y)| x < y)
}

/// Positions (in `results`) of the feasible candidates no other feasible candidate dominates.
pub fn pareto_set(results: &[CandidateResult]) -> Vec<usize> {
    let feasible: Vec<(usize, &Figures)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.feasible)
        .filter_map(|(i, r)| r.figures.as_ref().map(|f| (i, f)))
        .collect();
    feasible.iter().filter(|(_, f)| !feasible.iter().any(|(_, g)| dominates(g, f))).map(|(i, _)| *i).collect()
}

/// One candidate in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1 = best.
    pub rank: usize,
    /// The objective's value (absent when the run produced none).
    pub objective: Option<f64>,
    /// On the Pareto front of cost vs latency.
    pub pareto: bool,
    /// Why it won, or why it lost (failed gates, worse objective, dominated by whom).
    pub verdict: String,
    /// What it achieved.
    #[serde(flatten)]
    pub result: CandidateResult,
}

fn objective_of(r: &CandidateResult, objective: Objective) -> f64 {
    r.figures.as_ref().map_or(f64::INFINITY, |f| objective.value(f))
}

/// Orders candidates best first. Feasible before infeasible; among feasible, a higher sustained
/// rate first when `saturation`, then the lower objective, then the lower TTFT p90, then the lower
/// index; among infeasible, fewer failed gates first, then the objective and index.
pub fn compare(a: &CandidateResult, b: &CandidateResult, objective: Objective, saturation: bool) -> Ordering {
    let ttft = |r: &CandidateResult| r.figures.as_ref().map_or(f64::INFINITY, |f| f.ttft_p90_ms);
    b.feasible
        .cmp(&a.feasible)
        .then_with(|| {
            if !a.feasible {
                return a.failed.len().cmp(&b.failed.len());
            }
            if saturation {
                let rate = |r: &CandidateResult| r.max_rate.unwrap_or(f64::NEG_INFINITY);
                rate(b).total_cmp(&rate(a))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| objective_of(a, objective).total_cmp(&objective_of(b, objective)))
        .then_with(|| ttft(a).total_cmp(&ttft(b)))
        .then_with(|| a.index.cmp(&b.index))
}

/// Ranks `results` (any order) best first, with the Pareto flags and verdicts.
pub fn rank(results: &[CandidateResult], objective: Objective, saturation: bool) -> Vec<Ranked> {
    let pareto = pareto_set(results);
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| compare(&results[a], &results[b], objective, saturation));
    let best = order.first().map(|&i| &results[i]).filter(|r| r.feasible);
    let label = objective.label();
    order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let r = &results[i];
            let value = objective_of(r, objective);
            let on_front = pareto.contains(&i);
            let verdict = if !r.feasible {
                format!("fails: {}", r.failed.join("; "))
            } else if k == 0 {
                match r.max_rate {
                    Some(rate) if saturation => format!("winner: sustains {rate:.3} req/s under the gates"),
                    _ => format!("winner: lowest {label} ({value:.4}) among candidates passing the gates"),
                }
            } else {
                let b = best.expect("a feasible candidate ranks first");
                let mut why = match (saturation, r.max_rate, b.max_rate) {
                    (true, Some(x), Some(y)) if x < y => format!("sustains {x:.3} req/s vs {y:.3}"),
                    _ => format!("{label} {value:.4} vs {:.4} ({})", objective_of(b, objective), b.name),
                };
                if !on_front {
                    let dominator = order.iter().map(|&j| &results[j]).find(|o| {
                        o.feasible
                            && matches!((&o.figures, &r.figures), (Some(g), Some(f)) if dominates(g, f))
                    });
                    if let Some(d) = dominator {
                        why.push_str(&format!("; dominated by {}", d.name));
                    }
                } else {
                    why.push_str("; on the Pareto front");
                }
                why
            };
            Ranked {
                rank: k + 1,
                objective: value.is_finite().then_some(value),
                pareto: on_front,
                verdict,
                result: r.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn result(index: usize, feasible: bool, cost: f64, ttft: f64, itl: f64) -> CandidateResult {
        CandidateResult {
            index,
            name: format!("c{index}"),
            settings: BTreeMap::new(),
            feasible,
            failed: if feasible { vec![] } else { vec!["maxTtftP90Ms".into()] },
            figures: Some(Figures {
                dollars_per_million_tokens: Some(cost),
                ttft_p90_ms: ttft,
                itl_p90_ms: itl,
                ..Default::default()
            }),
            objective_ci95: None,
            max_rate: None,
        }
    }

    fn results() -> impl Strategy<Value = Vec<CandidateResult>> {
        // Small integer grids make ties and dominance common.
        prop::collection::vec((any::<bool>(), 0u8..5, 0u8..5, 0u8..5), 1..30).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (ok, c, t, l))| result(i, ok, f64::from(c), f64::from(t), f64::from(l)))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(8), ..ProptestConfig::default() })]

        #[test]
        fn pareto_members_are_undominated_and_the_rest_dominated(rs in results()) {
            let front = pareto_set(&rs);
            for (i, r) in rs.iter().enumerate().filter(|(_, r)| r.feasible) {
                let f = r.figures.as_ref().unwrap();
                let dominated = rs.iter().filter(|o| o.feasible).any(|o| dominates(o.figures.as_ref().unwrap(), f));
                prop_assert_eq!(front.contains(&i), !dominated);
            }
            prop_assert!(front.iter().all(|&i| rs[i].feasible));
        }

        #[test]
        fn ranking_does_not_depend_on_input_order(rs in results(), rot in 0usize..30) {
            let mut shuffled = rs.clone();
            shuffled.reverse();
            let k = rot % shuffled.len();
            shuffled.rotate_left(k);
            let a = rank(&rs, Objective::DollarsPerMillionTokens, false);
            let b = rank(&shuffled, Objective::DollarsPerMillionTokens, false);
            prop_assert_eq!(&a, &b);
            // Feasible first, and the objective never decreases among them.
            let feasible: Vec<&Ranked> = a.iter().take_while(|r| r.result.feasible).collect();
            prop_assert_eq!(feasible.len(), rs.iter().filter(|r| r.feasible).count());
            prop_assert!(feasible.windows(2).all(|w| w[0].objective <= w[1].objective));
            prop_assert!(a.iter().enumerate().all(|(k, r)| r.rank == k + 1));
        }
    }

    #[test]
    fn verdicts_say_why_candidates_lost() {
        let rs = vec![
            result(0, true, 1.0, 10.0, 5.0),
            result(1, true, 2.0, 20.0, 5.0),
            result(2, false, 0.5, 900.0, 5.0),
        ];
        let r = rank(&rs, Objective::DollarsPerMillionTokens, false);
        assert_eq!(r[0].result.name, "c0");
        assert!(r[0].verdict.starts_with("winner"), "{}", r[0].verdict);
        assert!(r[1].verdict.contains("dominated by c0"), "{}", r[1].verdict);
        assert!(r[2].verdict.contains("fails: maxTtftP90Ms"), "{}", r[2].verdict);
    }
}
