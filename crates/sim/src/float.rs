//! Rounding of floats on the hot paths without calls into the C library (x86-64's baseline has no
//! rounding instruction, so `f64::floor` and `f64::round` are function calls there), with results equal
//! to the standard ones.

/// `x.floor() as i64` without a call to the C library's `floor`: the conversion truncates towards zero,
/// so a negative non-integer is one too high; NaN gives 0 and out-of-range values saturate, as with
/// `floor` first.
#[inline]
pub fn floor_i64(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// `x.round()` (half away from zero) without a call to the C library's `round`, equal to it as a
/// number (a negative value that rounds to zero may come back as `0.0` rather than `-0.0`).
#[inline]
pub fn round(x: f64) -> f64 {
    // From 2^52 on every float is an integer (NaN and infinities come back as they are).
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    // Truncation and the fraction are exact below 2^52.
    let t = x as i64 as f64;
    let frac = x - t;
    if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Special values, halves around integers and the 2^52 boundary, and random values of every
    /// magnitude.
    fn values() -> Vec<f64> {
        let mut v = vec![0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 2.5, -2.5, 1e300, -1e300, f64::NAN];
        v.extend([
            f64::INFINITY,
            f64::NEG_INFINITY,
            9.3e18,
            -9.3e18,
            4503599627370495.5,
            -4503599627370495.5,
        ]);
        v.extend([4503599627370496.0, 4503599627370497.0, 0.49999999999999994, -0.49999999999999994]);
        v.extend([f64::MIN_POSITIVE, -f64::MIN_POSITIVE, 2251799813685247.5, -2251799813685247.5]);
        let mut x = 0x1234_5678u64;
        for _ in 0..20_000 {
            x = crate::rng::mix2(x, 1);
            v.push((x >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6);
            v.push(f64::from_bits(x));
            v.push((x % 4000) as f64 / 2.0 - 1000.0);
        }
        v
    }

    #[test]
    fn floor_without_libm_matches_floor() {
        for v in values() {
            assert_eq!(floor_i64(v), v.floor() as i64, "{v}");
        }
    }

    #[test]
    fn round_without_libm_matches_round() {
        for v in values() {
            let (ours, std) = (round(v), v.round());
            assert!(ours == std || (ours.is_nan() && std.is_nan()), "{v}: {ours} vs {std}");
            assert_eq!(ours as i64, std as i64, "{v}");
            assert_eq!(ours as u32, std as u32, "{v}");
        }
    }
}
