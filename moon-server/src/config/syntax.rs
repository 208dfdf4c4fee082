//! The lexical rules redis-server applies to configuration text and values: `sdssplitargs` (quotes and
//! escapes), `sdscatrepr` (the quoting used when it turns `--name value` into a config line and when CONFIG
//! REWRITE writes strings), `sdstrim`, `memtoull` (memory units) and `strtoll`. Each follows the C function
//! byte for byte, including its quirks, because start-up errors and CONFIG replies quote their results.

/// `isspace` in the C locale.
pub(super) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `sdstrim(line, " \t\r\n")`.
pub(super) fn trim(line: &[u8]) -> &[u8] {
    let keep = |b: &u8| !matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let Some(start) = line.iter().position(keep) else {
        return &[];
    };
    let end = line.iter().rposition(keep).map_or(start, |e| e + 1);
    &line[start..end]
}

/// `sdssplitargs`: splits a line into arguments. `"..."` understands `\n \r \t \b \a \xHH` and `\<any>`;
/// `'...'` only `\'`. A closing quote must be followed by a space or the end of the line. Returns `None` for
/// unbalanced quotes, which Redis reports as "Unbalanced quotes in configuration line".
pub(super) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    engine::resp::split_args(line).map(|args| args.into_iter().map(|a| a.to_vec()).collect())
}

/// `sdscatrepr`: a double-quoted, escaped form that [`split_args`] reads back as the same bytes.
pub(super) fn repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// `memtoull` as shipped in 7.0: digits then an optional case-insensitive unit (`b`, `k`=1000, `kb`=1024,
/// `m`, `mb`, `g`, `gb`). An empty number counts as 0 ("" and "mb" are accepted), a too-large number
/// saturates like `strtoull`, and the unit multiplication wraps, as in the C code.
pub(super) fn memtoull(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'-') {
        return None;
    }
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit = s[digits..].to_ascii_lowercase();
    let mul: u64 = match unit.as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits >= 128 {
        return None;
    }
    let val = s[..digits]
        .iter()
        .fold(0u64, |acc, &d| acc.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).unwrap_or(u64::MAX));
    Some(val.wrapping_mul(mul))
}

/// `strtoll(s, &end, 10)` followed by Redis's usual `*end == '\0'` check: leading C spaces and one sign are
/// allowed, overflow saturates, and an empty string is 0 (the end pointer is already at the terminator).
pub(super) fn strtoll_whole(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    let mut v: i128 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = (v * 10 + i128::from(s[i] - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    if i == digits_start {
        // No conversion: the end pointer is the start of the string, fine only if that is its end.
        return s.is_empty().then_some(0);
    }
    if i != s.len() {
        return None;
    }
    let v = if neg { -v } else { v };
    Some(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// `strtoll(s, &end, 8)` with the whole string consumed, as Redis reads octal settings: leading C spaces and
/// one sign are allowed, an empty string is 0, and overflow is an error (Redis checks `errno`).
pub(super) fn strtoll_octal(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    let mut v: i128 = 0;
    while i < s.len() && (b'0'..=b'7').contains(&s[i]) {
        v = (v * 8 + i128::from(s[i] - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    if i == digits_start {
        return s.is_empty().then_some(0);
    }
    if i != s.len() {
        return None;
    }
    i64::try_from(if neg { -v } else { v }).ok()
}

/// `sdssplitlen(value, " ")`, which CONFIG SET uses for multi-argument settings: every single space
/// separates, so two spaces make an empty argument, and an empty value has no arguments at all.
pub(super) fn split_spaces(value: &[u8]) -> Vec<Vec<u8>> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(|&b| b == b' ').map(<[u8]>::to_vec).collect()
}

/// The memory form CONFIG REWRITE writes: the largest of gb, mb, kb that divides the value exactly.
pub(super) fn format_memory(bytes: i128) -> String {
    const KB: i128 = 1024;
    for (unit, size) in [("gb", KB * KB * KB), ("mb", KB * KB), ("kb", KB)] {
        if bytes != 0 && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Lossy text of configuration bytes. Settings are kept as Rust strings; the rare non-UTF-8 byte (only
/// reachable through `\xHH` escapes) becomes U+FFFD.
pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
