//! The one error shape for bad input: which field, what is wrong, how to fix it.

use std::fmt;

/// A scenario (or other input) that cannot be simulated. It names the offending field by its path in
/// the manifest (e.g. `spec.workload.classes[0].arrival.ratePerSecond`), the problem, and the fix, so
/// the CLI can print it on one line and the controller can put it into a `Stalled` condition as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    /// Path of the offending field in the manifest.
    pub field: String,
    /// What is wrong with it, including the value found when that helps.
    pub problem: String,
    /// What the user should do about it.
    pub fix: String,
}

impl InvalidInput {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { field: field.into(), problem: problem.into(), fix: fix.into() }
    }

    /// The same error with `prefix.` put before the field path (for nested validation).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }

    /// The same error inside the object or file `place` (`place: field`): a prefix that is not a
    /// field path (`InferencePool pool`, `release ms`) stays apart from the path it holds.
    pub fn within(mut self, place: &str) -> Self {
        self.field =
            if self.field.is_empty() { place.to_string() } else { format!("{place}: {}", self.field) };
        self
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; fix: {}", self.field, self.problem, self.fix)
    }
}

impl std::error::Error for InvalidInput {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_field_problem_and_fix() {
        let e = InvalidInput::new("ratePerSecond", "must be > 0 (got -1)", "set a positive rate")
            .under("spec.workload.arrival");
        assert_eq!(
            e.to_string(),
            "spec.workload.arrival.ratePerSecond: must be > 0 (got -1); fix: set a positive rate"
        );
        let e = InvalidInput::new("[2].weight", "negative", "use >= 0").under("spec.workload.classes");
        assert_eq!(e.field, "spec.workload.classes[2].weight");
        let e = InvalidInput::new("spec.selector", "selects no pods", "fix").within("InferencePool p");
        assert_eq!(e.field, "InferencePool p: spec.selector");
    }
}
