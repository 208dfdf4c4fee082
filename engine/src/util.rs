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

/// Parses a score or double stored as text (`%.17g` output, `inf`, `-inf` ...), like `strtod` on the whole
/// string. NaN parses (the callers reject it with their own message).
pub(crate) fn parse_double_text(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?.trim();
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Appends the decimal form of `v` to `out`.
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

/// Case-insensitive ASCII comparison of a command argument with a keyword.
pub fn eq_ic(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// `b` (at most `N` bytes) at the start of an array of `N`, zeros after it, written a word at a time from
/// [`padded_word`]s (see there for why not `copy_from_slice` into a zeroed array).
#[inline]
pub(crate) fn inline_array<const N: usize>(b: &[u8]) -> [u8; N] {
    debug_assert!(b.len() <= N);
    let mut buf = [0u8; N];
    let mut i = 0;
    while i < N {
        let w = padded_word(b.get(i..).unwrap_or_default()).to_le_bytes();
        let n = (N - i).min(8);
        buf[i..i + n].copy_from_slice(&w[..n]);
        i += 8;
    }
    buf
}

/// Up to 8 bytes as a little-endian word, zero above them, from at most three overlapping loads. Building a
/// short inline buffer from such words (instead of copying into a zeroed array) lets the value be moved with
/// wide loads at once: after a small copy's byte-sized stores, a wide load of the same bytes waits for them
/// to reach the cache (a store-forwarding stall).
#[inline]
pub(crate) fn padded_word(b: &[u8]) -> u64 {
    let n = b.len();
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes")));
    match n {
        8.. => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        4..=7 => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        1..=3 => u64::from(b[0]) | u64::from(b[n / 2]) << (8 * (n / 2)) | u64::from(b[n - 1]) << (8 * (n - 1)),
        0 => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `b` then zeros, the slow way.
    fn zero_padded<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a[..b.len()].copy_from_slice(b);
        a
    }

    #[test]
    fn words_and_inline_arrays_of_every_length() {
        let src: Vec<u8> = (1..=22u8).map(|i| i.wrapping_mul(29) | 1).collect();
        for n in 0..=22 {
            assert_eq!(inline_array::<22>(&src[..n]), zero_padded::<22>(&src[..n]), "{n}");
            if n <= 15 {
                assert_eq!(inline_array::<15>(&src[..n]), zero_padded::<15>(&src[..n]), "{n}");
            }
            let word = padded_word(&src[..n]).to_le_bytes();
            assert_eq!(word, zero_padded::<8>(&src[..n.min(8)]), "{n}: only the first 8 bytes");
        }
    }

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
}
