//! Reading plugin parameters as the EPP's JSON decoding does: numbers that may be written as strings,
//! Kubernetes durations (`60s`, `200ms`) and quantities (`1k`, `10Gi`).

use serde_json::Value;

/// A number parameter, written as a number or a numeric string.
pub fn num(p: &Value, key: &str) -> Option<f64> {
    match p.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string parameter.
pub fn text<'a>(p: &'a Value, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}

/// Reads a Kubernetes duration (`60s`, `200ms`, `2m`, `1h`, `0s`) as microseconds.
pub fn duration_us(v: &Value) -> Option<i64> {
    let s = match v {
        Value::Number(n) => return n.as_f64().map(|x| (x * 1e6) as i64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let (num, mult) = if let Some(x) = s.strip_suffix("ms") {
        (x, 1e3)
    } else if let Some(x) = s.strip_suffix("us").or_else(|| s.strip_suffix("µs")) {
        (x, 1.0)
    } else if let Some(x) = s.strip_suffix('s') {
        (x, 1e6)
    } else if let Some(x) = s.strip_suffix('m') {
        (x, 6e7)
    } else if let Some(x) = s.strip_suffix('h') {
        (x, 3.6e9)
    } else {
        (s, 1e6)
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && x >= 0.0).then_some((x * mult) as i64)
}

/// Reads a Kubernetes quantity (`500`, `1k`, `10Gi`) as a number.
pub fn quantity(v: &Value) -> Option<u64> {
    let s = match v {
        Value::Number(n) => return n.as_f64().filter(|x| *x >= 0.0).map(|x| x as u64),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let suffixes: [(&str, f64); 10] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
    ];
    for (suf, mult) in suffixes {
        if let Some(x) = s.strip_suffix(suf) {
            let x: f64 = x.trim().parse().ok()?;
            return (x >= 0.0).then_some((x * mult) as u64);
        }
    }
    let x: f64 = s.parse().ok()?;
    (x >= 0.0).then_some(x as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_quantities() {
        assert_eq!(duration_us(&Value::String("200ms".into())), Some(200_000));
        assert_eq!(duration_us(&Value::String("2m".into())), Some(120_000_000));
        assert_eq!(duration_us(&Value::String("-1s".into())), None);
        assert_eq!(quantity(&Value::String("10Gi".into())), Some(10 * 1024 * 1024 * 1024));
        assert_eq!(quantity(&Value::String("1k".into())), Some(1000));
        assert_eq!(num(&serde_json::json!({"w": "2.5"}), "w"), Some(2.5));
    }
}
