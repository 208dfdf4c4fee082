//! Number parsing and formatting with Redis's exact rules, so replies and errors match byte for byte.

/// Redis's `string2ll`: optional `-`, no `+`, no spaces, no leading zeros (except "0"), fits in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Redis's `getDoubleFromObject` / `strtod` rules: no leading space, whole string consumed, not NaN.
/// Accepts `inf`, `+inf`, `-inf`, `infinity` and exponents like strtod.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || t.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if lower.contains("inf") || lower.contains("nan") {
                return None;
            }
            t.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Formats an INCRBYFLOAT / HINCRBYFLOAT result the way Redis prints a long double in "human" mode:
/// fixed notation with at most 17 decimals, trailing zeros (and a bare point) removed.
pub fn format_human_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // The shortest round-trip form avoids printing binary noise that Redis's 80-bit long double hides.
    let mut s = format!("{v}");
    if s.contains('e') || s.contains('E') {
        s = format!("{v:.17}");
    }
    if let Some(dot) = s.find('.') {
        let decimals = s.len() - dot - 1;
        if decimals > 17 {
            s = format!("{v:.17}");
        }
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// Appends the decimal form of `v` to `out`.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

/// Case-insensitive ASCII comparison of a command argument with a keyword.
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b"9223372036854775808"[..], b"01", b"-0", b"+1", b" 1", b"1 ", b"", b"1a", b"-"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1x"), None);
    }

    #[test]
    fn human_float() {
        assert_eq!(format_human_float(1.5 + 0.1), "1.6");
        assert_eq!(format_human_float(10.5), "10.5");
        assert_eq!(format_human_float(3.0), "3");
        assert_eq!(format_human_float(5.0e3), "5000");
        assert_eq!(format_human_float(-0.0), "0");
        assert_eq!(format_human_float(1e20), "100000000000000000000");
    }
}
