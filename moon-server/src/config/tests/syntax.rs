use crate::config::syntax::{format_memory, memtoull, repr, split_args, split_spaces, strtoll_whole, trim};

fn split(line: &str) -> Option<Vec<String>> {
    split_args(line.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
}

#[test]
fn split_args_follows_sdssplitargs() {
    assert_eq!(split("port 6379"), Some(vec!["port".into(), "6379".into()]));
    assert_eq!(split("  a \t b  "), Some(vec!["a".into(), "b".into()]));
    assert_eq!(split(r#"k "a b" 'c d'"#), Some(vec!["k".into(), "a b".into(), "c d".into()]));
    assert_eq!(split(r#""\x41\n\t\"\\z""#), Some(vec!["A\n\t\"\\z".into()]));
    assert_eq!(split(r#"'it\'s' '\n'"#), Some(vec!["it's".into(), "\\n".into()]));
    assert_eq!(split(r#"x"y z""#), Some(vec!["xy z".into()]));
    assert_eq!(split(r#""" ''"#), Some(vec!["".into(), "".into()]));
    assert_eq!(split(""), Some(vec![]));
    // Unbalanced quotes, and a closing quote glued to more text.
    assert_eq!(split(r#"save "1 2"#), None);
    assert_eq!(split("a 'b"), None);
    assert_eq!(split(r#"PORT   "x"y"#), None);
}

#[test]
fn repr_round_trips() {
    let raw = b"a \"b\"\\\n\r\t\x07\x08\x01\xff";
    let quoted = repr(raw);
    assert_eq!(quoted, r#""a \"b\"\\\n\r\t\a\b\x01\xff""#);
    assert_eq!(split_args(quoted.as_bytes()).unwrap(), vec![raw.to_vec()]);
}

#[test]
fn trim_strips_only_redis_blanks() {
    assert_eq!(trim(b" \t port 1 \r\n"), b"port 1");
    assert_eq!(trim(b"\x0b x"), b"\x0b x");
    assert_eq!(trim(b"   "), b"");
}

#[test]
fn memtoull_matches_7_0() {
    let m = |s: &str| memtoull(s.as_bytes());
    assert_eq!(m("0"), Some(0));
    assert_eq!(m("1k"), Some(1000));
    assert_eq!(m("1kb"), Some(1024));
    assert_eq!(m("1KB"), Some(1024));
    assert_eq!(m("3m"), Some(3_000_000));
    assert_eq!(m("3mb"), Some(3 << 20));
    assert_eq!(m("1g"), Some(1_000_000_000));
    assert_eq!(m("1GB"), Some(1 << 30));
    assert_eq!(m("7b"), Some(7));
    // Quirks of the C code: no digits is 0, overflow saturates, the unit multiplication wraps.
    assert_eq!(m(""), Some(0));
    assert_eq!(m("mb"), Some(0));
    assert_eq!(m("99999999999999999999"), Some(u64::MAX));
    assert_eq!(m("20000000000gb"), Some(3028092406290448384));
    for bad in ["-1", "1x", "1.5gb", " 1", "+1", "1 kb", "1kbb"] {
        assert_eq!(m(bad), None, "{bad}");
    }
}

#[test]
fn strtoll_whole_matches_c() {
    let s = |v: &str| strtoll_whole(v.as_bytes());
    assert_eq!(s("900"), Some(900));
    assert_eq!(s("+900"), Some(900));
    assert_eq!(s("\t-5"), Some(-5));
    assert_eq!(s(""), Some(0));
    assert_eq!(s("99999999999999999999"), Some(i64::MAX));
    assert_eq!(s("-99999999999999999999"), Some(i64::MIN));
    for bad in [" ", "+", "1 ", "1x", "x"] {
        assert_eq!(s(bad), None, "{bad:?}");
    }
}

#[test]
fn split_spaces_is_sdssplitlen() {
    assert!(split_spaces(b"").is_empty());
    assert_eq!(split_spaces(b"900 1"), vec![b"900".to_vec(), b"1".to_vec()]);
    assert_eq!(split_spaces(b"a  b").len(), 3);
    assert_eq!(split_spaces(b"a ").len(), 2);
}

#[test]
fn format_memory_picks_the_largest_exact_unit() {
    assert_eq!(format_memory(0), "0");
    assert_eq!(format_memory(1000), "1000");
    assert_eq!(format_memory(2048), "2kb");
    assert_eq!(format_memory(64 << 20), "64mb");
    assert_eq!(format_memory(3 << 30), "3gb");
    assert_eq!(format_memory(1025), "1025");
}
