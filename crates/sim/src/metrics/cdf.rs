//! Distribution functions of per-request TTFT and ITL per class, downsampled to a few hundred points
//! so a report can draw them for runs of any size.

use super::record::{RequestRecord, SimOutput};
use super::summary::percentile;

/// Points of a downsampled distribution function (fractions 0, 1/n, ..., 1).
pub const CDF_POINTS: usize = 200;

/// One class's latency distribution functions: (milliseconds, fraction of requests at or below).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassCdf {
    /// Class name.
    pub name: String,
    /// Time to first token.
    pub ttft_ms: Vec<(f64, f64)>,
    /// Mean inter-token latency of each request with more than one output token.
    pub itl_ms: Vec<(f64, f64)>,
}

/// The distribution function of `values` (sorted in place) at `n + 1` evenly spaced fractions, by
/// the same interpolated percentiles as the summary's; empty for no values.
pub fn quantile_points(values: &mut [f64], n: usize) -> Vec<(f64, f64)> {
    if values.is_empty() {
        return Vec::new();
    }
    values.sort_by(f64::total_cmp);
    let n = n.max(1);
    (0..=n)
        .map(|k| {
            let q = k as f64 / n as f64;
            (percentile(values, q * 100.0), q)
        })
        .collect()
}

/// TTFT and ITL distribution functions of each class of a run: from its records, or in streaming mode
/// from its quantile sketches (each point then within the sketch's relative accuracy).
pub fn run_cdfs(out: &SimOutput, class_names: &[String]) -> Vec<ClassCdf> {
    let Some(st) = &out.stream else {
        return class_cdfs(&out.completed, class_names);
    };
    class_names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let (ttft_ms, itl_ms) = st
                .class(c)
                .map(|cs| (cs.quantile_points(0, CDF_POINTS), cs.quantile_points(1, CDF_POINTS)))
                .unwrap_or_default();
            ClassCdf { name: name.clone(), ttft_ms, itl_ms }
        })
        .collect()
}

/// TTFT and ITL distribution functions of the completed requests of each class (by class index).
pub fn class_cdfs(records: &[RequestRecord], class_names: &[String]) -> Vec<ClassCdf> {
    class_names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let mine = records.iter().filter(|r| usize::from(r.class) == c);
            let mut ttft: Vec<f64> = mine.clone().map(|r| r.ttft_us as f64 / 1000.0).collect();
            let mut itl: Vec<f64> = mine.filter_map(|r| r.itl_mean_us()).map(|v| v / 1000.0).collect();
            ClassCdf {
                name: name.clone(),
                ttft_ms: quantile_points(&mut ttft, CDF_POINTS),
                itl_ms: quantile_points(&mut itl, CDF_POINTS),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(class: u16, ttft_us: i64, output_tokens: u32) -> RequestRecord {
        RequestRecord {
            id: 0,
            class,
            instance: 0,
            arrival_us: 0,
            ttft_us,
            e2e_us: ttft_us + 1000 * i64::from(output_tokens - 1),
            itl_sum_us: 1000 * i64::from(output_tokens - 1),
            queue_us: 0,
            input_tokens: 1,
            output_tokens,
            cached_tokens: 0,
            preemptions: 0,
        }
    }

    #[test]
    fn points_are_monotone_bounded_and_match_the_percentiles() {
        let mut v: Vec<f64> = (0..5000).map(|i| f64::from((i * 7919) % 1000)).collect();
        let pts = quantile_points(&mut v, CDF_POINTS);
        assert_eq!(pts.len(), CDF_POINTS + 1);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(pts[0], (0.0, 0.0));
        assert_eq!(pts[CDF_POINTS], (999.0, 1.0));
        assert_eq!(pts[CDF_POINTS / 2].0, percentile(&v, 50.0));
    }

    #[test]
    fn classes_are_split_and_single_token_requests_have_no_itl() {
        let records = [rec(0, 5000, 1), rec(1, 20_000, 3), rec(1, 40_000, 5), rec(0, 7000, 1)];
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let c = class_cdfs(&records, &names);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].ttft_ms.first().map(|p| p.0), Some(5.0));
        assert_eq!(c[0].ttft_ms.last().map(|p| p.0), Some(7.0));
        assert!(c[0].itl_ms.is_empty());
        assert_eq!(c[1].itl_ms.last().map(|p| p.0), Some(1.0));
        assert_eq!(c[1].ttft_ms.last().map(|p| p.0), Some(40.0));
        assert!(c[2].ttft_ms.is_empty());
    }
}
