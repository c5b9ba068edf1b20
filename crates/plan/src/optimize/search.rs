//! The derivative-free optimiser: a seeded cross-entropy method (a diagonal-Gaussian evolution
//! strategy) on the unit cube. It asks for whole generations at a time so the caller can evaluate a
//! generation in parallel, and it ranks candidates with Deb's feasibility rules (feasible before
//! infeasible; feasible by objective, infeasible by total violation), so an infeasible candidate is
//! never preferred to a feasible one. The same seed and budget always give the same sequence.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use blis_sim::rng::{self, SimRng};

/// How one candidate fared: the objective to minimise and how far it breaks the constraints
/// (0 = feasible).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Objective (lower is better); `+inf` when it could not be measured.
    pub objective: f64,
    /// Sum of constraint violations (0 when every constraint holds).
    pub violation: f64,
}

impl Score {
    /// Whether every constraint holds.
    pub fn feasible(&self) -> bool {
        self.violation <= 0.0
    }

    /// Deb's order: `true` when `self` ranks strictly before `other`.
    pub fn better_than(&self, other: &Score) -> bool {
        match (self.feasible(), other.feasible()) {
            (true, false) => true,
            (false, true) => false,
            (true, true) => self.objective.total_cmp(&other.objective).is_lt(),
            (false, false) => self.violation.total_cmp(&other.violation).is_lt(),
        }
    }
}

/// One evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The point in the unit cube.
    pub x: Vec<f64>,
    /// Its score.
    pub score: Score,
}

/// Settings of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// Dimensions.
    pub dim: usize,
    /// Evaluations in all.
    pub budget: usize,
    /// Candidates per generation.
    pub population: usize,
    /// Seed of every draw.
    pub seed: u64,
}

/// Minimises over `[0, 1]^dim`. `evaluate` scores one generation (in order); `x0`, if given, is
/// evaluated first (e.g. the operator's current settings). Returns every trial in evaluation order;
/// the best is [`best`] of them.
pub fn minimise(
    cfg: SearchConfig,
    x0: Option<Vec<f64>>,
    mut evaluate: impl FnMut(&[Vec<f64>]) -> Vec<Score>,
) -> Vec<Trial> {
    let d = cfg.dim.max(1);
    let lambda = cfg.population.max(2);
    let mu = (lambda / 4).max(2);
    let mut r: SimRng = rng::stream(cfg.seed, "optimize.search");
    let mut mean = vec![0.5; d];
    let mut sigma = vec![0.3; d];
    let mut trials: Vec<Trial> = Vec::with_capacity(cfg.budget);
    let mut elites: Vec<Trial> = Vec::new();
    let mut generation = 0usize;
    while trials.len() < cfg.budget {
        let n = lambda.min(cfg.budget - trials.len());
        let mut xs: Vec<Vec<f64>> = if generation == 0 {
            latin_hypercube(n, d, &mut r)
        } else {
            (0..n)
                .map(|_| {
                    (0..d)
                        .map(|k| {
                            let z: f64 = StandardNormal.sample(&mut r);
                            (mean[k] + sigma[k] * z).clamp(0.0, 1.0)
                        })
                        .collect()
                })
                .collect()
        };
        if generation == 0 {
            if let Some(x) = &x0 {
                xs[0] = x.iter().map(|v| v.clamp(0.0, 1.0)).collect();
            }
        }
        let scores = evaluate(&xs);
        let gen: Vec<Trial> = xs.into_iter().zip(scores).map(|(x, score)| Trial { x, score }).collect();
        trials.extend(gen.iter().cloned());
        // (mu + lambda) selection: the best of this generation and the previous elites.
        elites.extend(gen);
        elites.sort_by(|a, b| order(&a.score, &b.score));
        elites.truncate(mu);
        // The spread is measured around the previous mean (as CMA-ES's rank-mu update does), so a
        // search still moving along a valley keeps its step size instead of collapsing early.
        for k in 0..d {
            let m = elites.iter().map(|t| t.x[k]).sum::<f64>() / elites.len() as f64;
            let var = elites.iter().map(|t| (t.x[k] - mean[k]).powi(2)).sum::<f64>() / elites.len() as f64;
            mean[k] = m;
            sigma[k] = (0.8 * var.sqrt() + 0.2 * sigma[k]).max(1e-4);
        }
        generation += 1;
    }
    trials
}

fn order(a: &Score, b: &Score) -> std::cmp::Ordering {
    if a.better_than(b) {
        std::cmp::Ordering::Less
    } else if b.better_than(a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// The best trial by Deb's order (the earliest among equals); `None` for no trials.
pub fn best(trials: &[Trial]) -> Option<&Trial> {
    trials.iter().fold(None, |acc: Option<&Trial>, t| match acc {
        Some(b) if !t.score.better_than(&b.score) => Some(b),
        _ => Some(t),
    })
}

/// `n` points spreading every dimension's range evenly (one per stratum), in random pairings.
fn latin_hypercube(n: usize, d: usize, r: &mut SimRng) -> Vec<Vec<f64>> {
    let mut pts = vec![vec![0.0; d]; n];
    for k in 0..d {
        let mut strata: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            strata.swap(i, r.random_range(0..=i));
        }
        for (p, s) in pts.iter_mut().zip(strata) {
            p[k] = (s as f64 + r.random::<f64>()) / n as f64;
        }
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: SearchConfig, f: impl Fn(&[f64]) -> Score) -> Vec<Trial> {
        minimise(cfg, None, |xs| xs.iter().map(|x| f(x)).collect())
    }

    fn free(objective: f64) -> Score {
        Score { objective, violation: 0.0 }
    }

    #[test]
    fn finds_the_minimum_of_a_shifted_quadratic_and_of_booths_function() {
        let target = [0.23, 0.71, 0.42];
        let cfg = SearchConfig { dim: 3, budget: 300, population: 12, seed: 3 };
        let t = run(cfg, |x| free(x.iter().zip(target).map(|(a, b)| (a - b).powi(2)).sum()));
        assert_eq!(t.len(), 300);
        let b = best(&t).unwrap();
        for (a, e) in b.x.iter().zip(target) {
            assert!((a - e).abs() < 0.02, "{:?} vs {target:?}", b.x);
        }
        // Booth's function on [-10, 10]^2 (non-separable): minimum 0 at (1, 3).
        let cfg = SearchConfig { dim: 2, budget: 400, population: 16, seed: 11 };
        let t = run(cfg, |x| {
            let (a, b) = (20.0 * x[0] - 10.0, 20.0 * x[1] - 10.0);
            free((a + 2.0 * b - 7.0).powi(2) + (2.0 * a + b - 5.0).powi(2))
        });
        let b = best(&t).unwrap();
        let (a, c) = (20.0 * b.x[0] - 10.0, 20.0 * b.x[1] - 10.0);
        assert!((a - 1.0).abs() < 0.05 && (c - 3.0).abs() < 0.05, "{b:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_search_and_another_seed_another() {
        let f = |x: &[f64]| free((x[0] - 0.3).powi(2) + (x[1] - 0.6).abs());
        let cfg = SearchConfig { dim: 2, budget: 50, population: 8, seed: 5 };
        assert_eq!(run(cfg, f), run(cfg, f));
        assert_ne!(run(cfg, f), run(SearchConfig { seed: 6, ..cfg }, f));
    }

    #[test]
    fn infeasible_candidates_are_never_chosen() {
        // Minimise x0 + x1 subject to x0 >= 0.6 and x1 >= 0.3: the unconstrained minimum is infeasible.
        let f = |x: &[f64]| Score {
            objective: x[0] + x[1],
            violation: (0.6 - x[0]).max(0.0) + (0.3 - x[1]).max(0.0),
        };
        for seed in 0..5 {
            let t = run(SearchConfig { dim: 2, budget: 120, population: 10, seed }, f);
            let b = best(&t).unwrap();
            assert!(b.score.feasible(), "{b:?}");
            assert!(t.iter().filter(|t| t.score.feasible()).all(|t| t.score.objective >= b.score.objective));
            assert!((b.score.objective - 0.9).abs() < 0.05, "{b:?}");
        }
        // With nothing feasible, the least violating candidate wins.
        let t = run(SearchConfig { dim: 1, budget: 40, population: 8, seed: 1 }, |x| Score {
            objective: -x[0],
            violation: 2.0 - x[0],
        });
        let b = best(&t).unwrap();
        assert!(t.iter().all(|t| t.score.violation >= b.score.violation));
    }

    #[test]
    fn the_starting_point_is_evaluated_first() {
        let t = minimise(
            SearchConfig { dim: 2, budget: 10, population: 5, seed: 1 },
            Some(vec![0.1, 2.0]),
            |xs| xs.iter().map(|x| free(x[0])).collect(),
        );
        assert_eq!(t[0].x, vec![0.1, 1.0]);
    }
}
