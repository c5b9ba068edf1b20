//! The accuracy ratchet: the medians reached so far, recorded in the repository; a validation run fails
//! if any of them gets worse.

use std::collections::BTreeMap;

use super::score::{Report, METRIC_NAMES};

/// Tolerance, in APE percentage points, before a median counts as worse.
pub const EPSILON: f64 = 0.01;

/// The medians a ratchet tracks: `<scope>.<metric>` → median APE %, for all experiments, per set and per GPU.
pub fn medians(r: &Report) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut add = |scope: &str, a: &super::score::Aggregate| {
        for (k, name) in METRIC_NAMES.iter().enumerate() {
            if let Some(v) = a.median[k] {
                m.insert(format!("{scope}.{name}"), (v * 1e4).round() / 1e4);
            }
        }
    };
    add("all", &r.all);
    for (k, a) in &r.by_set {
        add(&format!("set.{k}"), a);
    }
    for (k, a) in &r.by_gpu {
        add(&format!("gpu.{k}"), a);
    }
    m
}

/// The ratchet file's text (JSON).
pub fn to_text(m: &BTreeMap<String, f64>) -> String {
    to_text_with(
        "median APE % reached by `blis validate ../shared/validation/experiments`; hack/test.sh fails if any gets worse. Update with --update-ratchet when accuracy improves.",
        m,
    )
}

/// A ratchet file's text (JSON) with its own comment (what produced the medians).
pub fn to_text_with(comment: &str, m: &BTreeMap<String, f64>) -> String {
    let doc = serde_json::json!({
        "comment": comment,
        "epsilon": EPSILON,
        "medians": m,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// Compares current medians with the recorded ones: Ok(notes) when none is worse, else the regressions.
pub fn check(text: &str, current: &BTreeMap<String, f64>) -> Result<Vec<String>, Vec<String>> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| vec![format!("ratchet file: {e}")])?;
    let Some(rec) = doc.get("medians").and_then(|m| m.as_object()) else {
        return Err(vec!["ratchet file has no medians".into()]);
    };
    let mut worse = Vec::new();
    let mut notes = Vec::new();
    for (k, v) in rec {
        let Some(old) = v.as_f64() else { continue };
        match current.get(k) {
            None => worse.push(format!("{k}: recorded {old:.2} %, now missing")),
            Some(&now) if now > old + EPSILON => worse.push(format!("{k}: {old:.2} % -> {now:.2} %")),
            Some(&now) if now < old - EPSILON => notes.push(format!(
                "ratchet: {k} improved {old:.2} % -> {now:.2} % (run with --update-ratchet to record)"
            )),
            _ => {}
        }
    }
    if worse.is_empty() {
        Ok(notes)
    } else {
        Err(worse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_fails_better_passes() {
        let mut m = BTreeMap::new();
        m.insert("all.e2e_mean".to_string(), 5.0);
        let text = to_text(&m);
        assert!(check(&text, &m).unwrap().is_empty());
        let mut better = m.clone();
        better.insert("all.e2e_mean".into(), 4.0);
        assert_eq!(check(&text, &better).unwrap().len(), 1);
        let mut worse = m.clone();
        worse.insert("all.e2e_mean".into(), 5.5);
        assert!(check(&text, &worse).is_err());
        assert!(check(&text, &BTreeMap::new()).is_err());
    }
}
