//! Tests for the zsets family; expected replies were checked against redis-server 7.0.15.

use super::super::testkit::{bulk, bulks, err, Kit};
use super::{parse_cursor, parse_range_float, parse_score};
use crate::resp::{Protocol, Reply};
use crate::types::Value;
use bytes::Bytes;

fn int(n: i64) -> Reply {
    Reply::Int(n)
}

fn d(v: f64) -> Reply {
    Reply::Double(v)
}

fn arr(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

/// A flat RESP2 WITHSCORES reply.
fn ws(pairs: &[(&str, f64)]) -> Reply {
    arr(pairs.iter().flat_map(|(m, s)| [bulk(m), d(*s)]).collect())
}

/// RESP3 [member, score] pairs.
fn pairs(items: &[(&str, f64)]) -> Reply {
    arr(items.iter().map(|(m, s)| arr(vec![bulk(m), d(*s)])).collect())
}

fn empty() -> Reply {
    arr(vec![])
}

fn encoding(k: &Kit, key: &str) -> &'static str {
    match k.ks.dbs[k.db].get(key.as_bytes()).map(|e| &e.value) {
        Some(Value::ZSet(z)) => z.encoding_name(),
        other => panic!("not a zset: {other:?}"),
    }
}

fn propagated(k: &Kit) -> Vec<Vec<String>> {
    k.propagated
        .iter()
        .flatten()
        .map(|argv| argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .collect()
}

fn kit_abc() -> Kit {
    let mut k = Kit::new();
    assert_eq!(k.run("ZADD z 1 a 2 b 3 c 4 d"), int(4));
    assert_eq!(k.run("SET s x"), Reply::ok());
    k
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn number_parsing_like_strtod() {
    assert_eq!(parse_score(b"1.5"), Some(1.5));
    assert_eq!(parse_score(b"0x10"), Some(16.0));
    assert_eq!(parse_score(b"-0x1p-2"), Some(-0.25));
    assert_eq!(parse_score(b"1."), Some(1.0));
    assert_eq!(parse_score(b".5e1"), Some(5.0));
    assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
    assert_eq!(parse_score(b"-Infinity"), Some(f64::NEG_INFINITY));
    assert_eq!(parse_score(b"1e-320"), Some(1e-320));
    for bad in [&b"1e400"[..], b"1e-400", b"nan", b" 1", b"1 ", b"", b"x", b"1e", b"-", b"1\x002", b"\x0b1"] {
        assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
    // Range bounds use plain strtod: leading space, empty string, overflow all accepted; trailing junk not.
    assert_eq!(parse_range_float(b" 1"), Some(1.0));
    assert_eq!(parse_range_float(b""), Some(0.0));
    assert_eq!(parse_range_float(b"1e400"), Some(f64::INFINITY));
    assert_eq!(parse_range_float(b"2\x00junk"), Some(2.0));
    assert_eq!(parse_range_float(b"nan"), None);
    assert_eq!(parse_range_float(b" "), None);
    assert_eq!(parse_range_float(b"1x"), None);
    assert_eq!(parse_cursor(b"").unwrap(), 0);
    assert_eq!(parse_cursor(b"+7").unwrap(), 7);
    assert_eq!(parse_cursor(b"-1").unwrap(), u64::MAX);
    assert!(parse_cursor(b" 0").is_err());
    assert!(parse_cursor(b"18446744073709551616").is_err());
    assert!(parse_cursor(b"x").is_err());
}

#[test]
fn zadd_options_and_errors() {
    let mut k = Kit::new();
    assert_eq!(k.run("ZADD z"), err("ERR wrong number of arguments for 'zadd' command"));
    assert_eq!(k.run("ZADD z nx xx 1"), err("ERR syntax error"));
    assert_eq!(k.run("ZADD z 1 a 2"), err("ERR syntax error"));
    assert_eq!(k.run("ZADD z nx xx"), err("ERR syntax error"));
    assert_eq!(k.run("ZADD z nx xx 1 a"), err("ERR XX and NX options at the same time are not compatible"));
    let gtlt = err("ERR GT, LT, and/or NX options at the same time are not compatible");
    assert_eq!(k.run("ZADD z gt lt 1 a"), gtlt);
    assert_eq!(k.run("ZADD z nx gt 1 a"), gtlt);
    assert_eq!(k.run("ZADD z nx LT 1 a"), gtlt);
    assert_eq!(k.run("ZADD z incr 1 a 2 b"), err("ERR INCR option supports a single increment-element pair"));
    assert_eq!(k.run("ZADD z 1 a x b"), err("ERR value is not a valid float"));
    assert_eq!(k.run("ZADD z nan a"), err("ERR value is not a valid float"));
    assert_eq!(k.run("EXISTS z"), int(0), "nothing applied after a bad score");
    assert_eq!(k.run("ZADD z 1 a 1 a"), int(1));
    assert_eq!(k.run("ZADD z 2 a 2 b"), int(1));
    assert_eq!(k.run("ZADD z CH 3 a 2 b 1 c"), int(2));
    assert_eq!(k.run("ZADD z NX 9 a 4 d"), int(1));
    assert_eq!(k.run("ZSCORE z a"), d(3.0));
    assert_eq!(k.run("ZADD z XX CH 5 a 6 e"), int(1));
    assert_eq!(k.run("ZSCORE z e"), Reply::Nil);
    assert_eq!(k.run("ZADD z GT CH 1 a 10 b"), int(1));
    assert_eq!(k.run("ZRANGE z 0 -1 WITHSCORES"), ws(&[("c", 1.0), ("d", 4.0), ("a", 5.0), ("b", 10.0)]));
    assert_eq!(k.run("ZADD z LT CH 7 a 1 b 0 f"), int(2));
    assert_eq!(k.run("ZADD z XX GT CH 100 f 0 a"), int(1));
    // INCR returns the new score, or nil when a condition stops it.
    assert_eq!(k.run("ZADD z INCR 2.5 a"), d(7.5));
    assert_eq!(k.run("ZADD z INCR NX 1 a"), Reply::Nil);
    assert_eq!(k.run("ZADD z INCR XX 1 nosuch"), Reply::Nil);
    assert_eq!(k.run("ZADD z INCR GT -1 a"), Reply::Nil);
    assert_eq!(k.run("ZADD z INCR LT -1 a"), d(6.5));
    assert_eq!(k.run("ZADD z INCR 0 a"), d(6.5));
    assert_eq!(k.dirty, 0, "an unchanged score is no change");
    assert_eq!(k.run("ZADD z inf a"), int(0));
    assert_eq!(k.run("ZADD z INCR -inf a"), err("ERR resulting score is not a number (NaN)"));
    assert_eq!(k.run("ZSCORE z a"), d(f64::INFINITY));
    assert_eq!(k.run("ZADD z 0x10 hex"), int(1));
    assert_eq!(k.run("ZSCORE z hex"), d(16.0));
    // XX on a missing key creates nothing.
    assert_eq!(k.run("ZADD nokey XX 1 a"), int(0));
    assert_eq!(k.run("ZADD nokey XX INCR 1 a"), Reply::Nil);
    assert_eq!(k.run("EXISTS nokey"), int(0));
    assert_eq!(k.run("SET s x"), Reply::ok());
    assert_eq!(k.run("ZADD s 1 a"), err(WRONGTYPE));
    assert_eq!(k.run("ZADD s nx xx 1 a"), err("ERR XX and NX options at the same time are not compatible"));
}

#[test]
fn zadd_propagation_and_dirty() {
    let mut k = Kit::new();
    k.run("ZADD z 1 a 2 b");
    assert_eq!((k.dirty, k.propagated.clone()), (2, None), "logged as sent");
    k.run("ZADD z 1 a 3 b");
    assert_eq!(k.dirty, 1);
    k.run("ZADD z NX 5 a");
    assert_eq!(k.dirty, 0);
    k.run("ZINCRBY z 1 a");
    assert_eq!((k.dirty, k.propagated.clone()), (1, None));
}

#[test]
fn zincrby_and_float_formatting() {
    let mut k = Kit::new();
    assert_eq!(k.run("ZINCRBY z 1.5 a"), d(1.5));
    assert_eq!(k.run("ZINCRBY z x a"), err("ERR value is not a valid float"));
    assert_eq!(k.run("ZINCRBY z -inf a"), d(f64::NEG_INFINITY));
    assert_eq!(k.run("ZINCRBY z +inf a"), err("ERR resulting score is not a number (NaN)"));
    assert_eq!(k.run("ZINCRBY z 1 a b"), err("ERR wrong number of arguments for 'zincrby' command"));
    assert_eq!(k.run("SET s x"), Reply::ok());
    assert_eq!(k.run("ZINCRBY s 1 a"), err(WRONGTYPE));
    // Scores print as C's %.17g in RESP2.
    k.run("ZADD f 1.1 a 0.1 b 1e20 c 123456789012345678 d 1e-5 e");
    let text = |r: Reply| String::from_utf8(r.to_vec(Protocol::Resp2)).unwrap();
    assert_eq!(text(k.run("ZSCORE f a")), "$18\r\n1.1000000000000001\r\n");
    assert_eq!(text(k.run("ZSCORE f b")), "$19\r\n0.10000000000000001\r\n");
    assert_eq!(text(k.run("ZSCORE f c")), "$5\r\n1e+20\r\n");
    assert_eq!(text(k.run("ZSCORE f d")), "$22\r\n1.2345678901234568e+17\r\n");
    assert_eq!(text(k.run("ZSCORE f e")), "$22\r\n1.0000000000000001e-05\r\n");
    assert_eq!(text(k.run("ZINCRBY f 1 a")), "$18\r\n2.1000000000000001\r\n");
}

#[test]
fn negative_zero_follows_the_encoding() {
    let mut k = Kit::new();
    // A listpack stores scores as text: -0 reads back as 0. The reply shows the computed score.
    assert_eq!(k.run("ZADD z -0 a"), int(1));
    assert_eq!(k.run("ZINCRBY z -0.0 c"), d(-0.0));
    let Reply::Double(v) = k.run("ZSCORE z c") else { panic!() };
    assert!(v == 0.0 && v.is_sign_positive());
    // The skiplist keeps -0, and -0 ties with 0 (ordered by member).
    k.cfg.zset_max_listpack_entries = 0;
    k.run("ZADD big -0 a 0 b -0 c");
    assert_eq!(encoding(&k, "big"), "skiplist");
    let Reply::Array(items) = k.run("ZRANGE big 0 -1 WITHSCORES") else { panic!() };
    assert_eq!(items[0], bulk("a"));
    assert!(matches!(items[1], Reply::Double(v) if v.is_sign_negative()));
    assert_eq!(items[2], bulk("b"));
    assert_eq!(items[4], bulk("c"));
    assert_eq!(k.run("ZADD big 0 a"), int(0));
    assert_eq!(k.dirty, 0, "-0 == 0: no update");
}

#[test]
fn tie_ordering_by_member_bytes() {
    let mut k = Kit::new();
    k.run_args(&[
        b"ZADD", b"z", b"1", b"b", b"1", b"a", b"1", b"B", b"1", b"\xff", b"1", b"\x00", b"0", b"zz", b"1", b"ab",
    ]);
    let want = arr(vec![
        bulk("zz"),
        Reply::Bulk(Bytes::from_static(b"\x00")),
        bulk("B"),
        bulk("a"),
        bulk("ab"),
        bulk("b"),
        Reply::Bulk(Bytes::from_static(b"\xff")),
    ]);
    assert_eq!(k.run("ZRANGE z 0 -1"), want);
    // Same order in the large encoding.
    k.cfg.zset_max_listpack_entries = 1;
    k.run("ZADD z 1 c");
    assert_eq!(encoding(&k, "z"), "skiplist");
    k.run("ZREM z c");
    assert_eq!(k.run("ZRANGE z 0 -1"), want);
}

#[test]
fn zrem_zscore_zmscore_zcard() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZREM z a x a"), int(1));
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("ZREM nokey a"), int(0));
    assert_eq!(k.run("ZREM s a"), err(WRONGTYPE));
    assert_eq!(k.run("ZSCORE z b"), d(2.0));
    assert_eq!(k.run("ZSCORE z a"), Reply::Nil);
    assert_eq!(k.run("ZSCORE nokey a"), Reply::Nil);
    assert_eq!(k.run("ZSCORE s a"), err(WRONGTYPE));
    assert_eq!(k.run("ZMSCORE z b x c"), arr(vec![d(2.0), Reply::Nil, d(3.0)]));
    assert_eq!(k.run("ZMSCORE nokey a b"), arr(vec![Reply::Nil, Reply::Nil]));
    assert_eq!(k.run("ZMSCORE s a"), err(WRONGTYPE));
    assert_eq!(k.run("ZMSCORE z"), err("ERR wrong number of arguments for 'zmscore' command"));
    assert_eq!(k.run("ZCARD z"), int(3));
    assert_eq!(k.run("ZCARD nokey"), int(0));
    assert_eq!(k.run("ZCARD s"), err(WRONGTYPE));
    assert_eq!(k.run("ZREM z b c d"), int(3));
    assert_eq!(k.run("EXISTS z"), int(0), "an emptied zset is deleted");
}

#[test]
fn zrank_zrevrank() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZRANK z c"), int(2));
    assert_eq!(k.run("ZREVRANK z c"), int(1));
    assert_eq!(k.run("ZRANK z x"), Reply::Nil);
    assert_eq!(k.run("ZRANK nokey x"), Reply::Nil);
    assert_eq!(k.run("ZRANK s x"), err(WRONGTYPE));
    assert_eq!(k.run("ZRANK z c withscore"), err("ERR wrong number of arguments for 'zrank' command"));
}

#[test]
fn zrange_by_rank() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZRANGE z 0 -1"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(k.run("ZRANGE z 1 2 WITHSCORES"), ws(&[("b", 2.0), ("c", 3.0)]));
    assert_eq!(k.run("ZRANGE z -2 -1"), bulks(&["c", "d"]));
    assert_eq!(k.run("ZRANGE z -100 100 REV"), bulks(&["d", "c", "b", "a"]));
    assert_eq!(k.run("ZRANGE z 0 0 rev withscores"), ws(&[("d", 4.0)]));
    assert_eq!(k.run("ZRANGE z -1 -100"), empty());
    assert_eq!(k.run("ZRANGE z 5 10"), empty());
    assert_eq!(
        k.run("ZRANGE z 0 -1 WITHSCORES WITHSCORES").clone(),
        ws(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)])
    );
    assert_eq!(k.run("ZREVRANGE z 0 1"), bulks(&["d", "c"]));
    assert_eq!(k.run("ZREVRANGE z 1 1 WITHSCORES"), ws(&[("c", 3.0)]));
    assert_eq!(k.run("ZRANGE nokey 0 -1"), empty());
    assert_eq!(k.run("ZRANGE s 0 -1"), err(WRONGTYPE));
    assert_eq!(k.run("ZRANGE z x 1"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZRANGE z 0 x"), err("ERR value is not an integer or out of range"));
    // LIMIT 0 -1 is the "no limit" default, so it is accepted even by rank.
    assert_eq!(k.run("ZRANGE z 0 -1 LIMIT 5 -1"), bulks(&["a", "b", "c", "d"]));
}

#[test]
fn zrange_option_errors() {
    let mut k = kit_abc();
    let limit_err = err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    assert_eq!(k.run("ZRANGE z 0 -1 LIMIT 0 1"), limit_err);
    assert_eq!(k.run("ZREVRANGE z 0 -1 LIMIT 0 1"), limit_err);
    let ws_err = err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    assert_eq!(k.run("ZRANGE z - + BYLEX WITHSCORES"), ws_err);
    assert_eq!(k.run("ZRANGEBYLEX z - + WITHSCORES"), ws_err);
    assert_eq!(k.run("ZRANGE z 0 -1 BYSCORE BYLEX"), err("ERR syntax error"));
    assert_eq!(k.run("ZRANGEBYSCORE z 0 10 BYLEX"), err("ERR syntax error"));
    assert_eq!(k.run("ZREVRANGE z 0 -1 REV"), err("ERR syntax error"));
    assert_eq!(k.run("ZRANGE z 0 -1 foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZRANGE z - + BYLEX LIMIT 1"), err("ERR syntax error"));
    assert_eq!(k.run("ZRANGE z x 1 BYSCORE"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZRANGE z a b BYLEX"), err("ERR min or max not valid string range item"));
    assert_eq!(k.run("ZRANGE nokey a b BYLEX"), err("ERR min or max not valid string range item"));
    assert_eq!(k.run("ZRANGE z 0 -1 LIMIT 0 1 BYLEX"), err("ERR min or max not valid string range item"));
    assert_eq!(k.run("ZRANGE z -inf +inf BYSCORE LIMIT 1 x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZRANGE nokey 0 -1 BYSCORE LIMIT 0 x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZRANGE z 0"), err("ERR wrong number of arguments for 'zrange' command"));
}

#[test]
fn zrange_by_score() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZRANGEBYSCORE z -inf +inf"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(k.run("ZRANGEBYSCORE z (1 3 WITHSCORES"), ws(&[("b", 2.0), ("c", 3.0)]));
    assert_eq!(k.run("ZRANGEBYSCORE z (1 (3"), bulks(&["b"]));
    assert_eq!(k.run("ZRANGE z 3 (1 BYSCORE REV"), bulks(&["c", "b"]));
    assert_eq!(k.run("ZREVRANGEBYSCORE z 4 1 LIMIT 1 2 WITHSCORES"), ws(&[("c", 3.0), ("b", 2.0)]));
    assert_eq!(k.run("ZRANGEBYSCORE z 1 4 LIMIT 1 2 WITHSCORES"), ws(&[("b", 2.0), ("c", 3.0)]));
    assert_eq!(k.run("ZRANGEBYSCORE z 1 4 LIMIT 1 -5"), bulks(&["b", "c", "d"]));
    assert_eq!(k.run("ZRANGEBYSCORE z 1 4 LIMIT -1 2"), empty());
    assert_eq!(k.run("ZRANGEBYSCORE z 1 4 LIMIT 4 2"), empty());
    assert_eq!(k.run("ZRANGEBYSCORE z 1 4 LIMIT 0 0"), empty());
    assert_eq!(k.run("ZREVRANGEBYSCORE z 1 4"), empty());
    assert_eq!(k.run("ZRANGEBYSCORE z 3 1"), empty());
    assert_eq!(k.run("ZRANGEBYSCORE z (2 (2"), empty());
    assert_eq!(k.run("ZRANGEBYSCORE z 0x1 1e400"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(k.run("ZRANGEBYSCORE z 1. .5e1"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(k.run_args(&[b"ZRANGEBYSCORE", b"z", b" 2", b"("]), empty());
    assert_eq!(k.run_args(&[b"ZRANGEBYSCORE", b"z", b"", b"2"]), bulks(&["a", "b"]));
    assert_eq!(k.run("ZRANGEBYSCORE z nan 1"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZRANGEBYSCORE z (nan 1"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZRANGEBYSCORE z ((1 2"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZRANGEBYSCORE nokey x 1"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZRANGEBYSCORE s 0 1"), err(WRONGTYPE));
}

#[test]
fn zrange_by_lex() {
    let mut k = Kit::new();
    k.run("ZADD z 0 a 0 b 0 c 0 d 0 e");
    assert_eq!(k.run("ZRANGEBYLEX z - +"), bulks(&["a", "b", "c", "d", "e"]));
    assert_eq!(k.run("ZRANGEBYLEX z [b (d"), bulks(&["b", "c"]));
    assert_eq!(k.run("ZRANGEBYLEX z (b [d"), bulks(&["c", "d"]));
    assert_eq!(k.run("ZREVRANGEBYLEX z (d [b"), bulks(&["c", "b"]));
    assert_eq!(k.run("ZRANGE z + - BYLEX REV"), bulks(&["e", "d", "c", "b", "a"]));
    assert_eq!(k.run("ZRANGE z - + BYLEX LIMIT 1 2"), bulks(&["b", "c"]));
    assert_eq!(k.run("ZRANGE z - + BYLEX LIMIT 1 -1"), bulks(&["b", "c", "d", "e"]));
    assert_eq!(k.run("ZREVRANGEBYLEX z + - LIMIT 1 2"), bulks(&["d", "c"]));
    assert_eq!(k.run("ZRANGEBYLEX z [d [b"), empty());
    assert_eq!(k.run("ZRANGEBYLEX z + -"), empty());
    assert_eq!(k.run("ZRANGEBYLEX z [ +"), bulks(&["a", "b", "c", "d", "e"]));
    assert_eq!(k.run("ZRANGEBYLEX z - ("), empty());
    assert_eq!(k.run("ZRANGEBYLEX z +x +"), err("ERR min or max not valid string range item"));
    assert_eq!(k.run("ZRANGEBYLEX z a +"), err("ERR min or max not valid string range item"));
    assert_eq!(k.run_args(&[b"ZRANGEBYLEX", b"z", b"", b"+"]), err("ERR min or max not valid string range item"));
    assert_eq!(k.run("ZLEXCOUNT z - +"), int(5));
    assert_eq!(k.run("ZLEXCOUNT z (a [c"), int(2));
    assert_eq!(k.run("ZLEXCOUNT z [c (a"), int(0));
    assert_eq!(k.run("ZLEXCOUNT nokey - +"), int(0));
    assert_eq!(k.run("ZLEXCOUNT nokey a b"), err("ERR min or max not valid string range item"));
}

#[test]
fn zcount() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZCOUNT z -inf +inf"), int(4));
    assert_eq!(k.run("ZCOUNT z (1 3"), int(2));
    assert_eq!(k.run("ZCOUNT z 3 1"), int(0));
    assert_eq!(k.run("ZCOUNT nokey 0 1"), int(0));
    assert_eq!(k.run("ZCOUNT z x 1"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZCOUNT nokey a b"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZCOUNT s 1 2"), err(WRONGTYPE));
}

#[test]
fn zrangestore() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZRANGESTORE d z 0 1"), int(2));
    assert_eq!(k.propagated, None);
    assert_eq!(k.run("ZRANGE d 0 -1 WITHSCORES"), ws(&[("a", 1.0), ("b", 2.0)]));
    assert_eq!(k.run("ZRANGESTORE d z 0 1 REV"), int(2));
    assert_eq!(k.run("ZRANGE d 0 -1 WITHSCORES"), ws(&[("c", 3.0), ("d", 4.0)]));
    assert_eq!(k.run("ZRANGESTORE d z (1 +inf BYSCORE LIMIT 1 1"), int(1));
    assert_eq!(k.run("ZRANGE d 0 -1"), bulks(&["c"]));
    assert_eq!(k.run("ZRANGESTORE d z [b [c BYLEX"), int(2));
    assert_eq!(k.run("ZRANGESTORE d z 0 -1 WITHSCORES"), err("ERR syntax error"));
    // An empty result deletes the destination.
    assert_eq!(k.run("ZRANGESTORE d z 5 6"), int(0));
    assert_eq!(k.dirty, 1);
    assert_eq!(k.run("EXISTS d"), int(0));
    assert_eq!(k.run("ZRANGESTORE d nokey 0 -1"), int(0));
    assert_eq!(k.dirty, 0);
    // The destination may hold any type; the source may not.
    assert_eq!(k.run("ZRANGESTORE s z 0 -1"), int(4));
    assert_eq!(k.run("TYPE s").clone(), k.run("TYPE s"));
    assert_eq!(k.run("SET t x"), Reply::ok());
    assert_eq!(k.run("ZRANGESTORE d t 0 -1"), err(WRONGTYPE));
    // The stored value gets the encoding its size calls for.
    k.cfg.zset_max_listpack_entries = 2;
    assert_eq!(k.run("ZRANGESTORE d z 0 -1"), int(4));
    assert_eq!(encoding(&k, "d"), "skiplist");
    assert_eq!(k.run("ZRANGESTORE d2 d 0 1"), int(2));
    assert_eq!(encoding(&k, "d2"), "listpack");
}

#[test]
fn zremrange() {
    let mut k = Kit::new();
    k.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_eq!(k.run("ZREMRANGEBYRANK z x 1"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZREMRANGEBYRANK nokey x 1"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZREMRANGEBYRANK z 5 10"), int(0));
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("ZREMRANGEBYRANK nokey 0 1"), int(0));
    assert_eq!(k.run("ZREMRANGEBYRANK z -2 -1"), int(2));
    assert_eq!(k.dirty, 2);
    assert_eq!(k.run("ZREMRANGEBYSCORE z x 1"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZREMRANGEBYSCORE nokey x 1"), err("ERR min or max is not a float"));
    assert_eq!(k.run("ZREMRANGEBYSCORE z (1 2"), int(1));
    assert_eq!(k.run("ZREMRANGEBYLEX nokey x 1"), err("ERR min or max not valid string range item"));
    assert_eq!(k.run("ZREMRANGEBYLEX z - (b"), int(1));
    assert_eq!(k.run("ZRANGE z 0 -1"), bulks(&["c"]));
    assert_eq!(k.run("ZREMRANGEBYRANK z 0 -1"), int(1));
    assert_eq!(k.run("EXISTS z"), int(0));
    k.run("SET s x");
    assert_eq!(k.run("ZREMRANGEBYRANK s 0 1"), err(WRONGTYPE));
    assert_eq!(k.run("ZREMRANGEBYSCORE s 0 1"), err(WRONGTYPE));
    assert_eq!(k.run("ZREMRANGEBYLEX s - +"), err(WRONGTYPE));
}

#[test]
fn zpopmin_zpopmax() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZPOPMIN z -1"), err("ERR value is out of range, must be positive"));
    assert_eq!(k.run("ZPOPMIN z x"), err("ERR value is out of range, must be positive"));
    assert_eq!(k.run("ZPOPMIN z 1 2"), err("ERR syntax error"));
    assert_eq!(k.run("ZPOPMIN s 0"), err(WRONGTYPE));
    assert_eq!(k.run("ZPOPMIN s"), err(WRONGTYPE));
    assert_eq!(k.run("ZPOPMIN z 0"), empty());
    assert_eq!(k.run("ZPOPMIN nokey"), empty());
    assert_eq!(k.run("ZPOPMIN nokey 2"), empty());
    assert_eq!(k.run("ZPOPMIN z"), ws(&[("a", 1.0)]));
    assert_eq!((k.dirty, k.propagated.clone()), (1, None), "logged as sent");
    assert_eq!(k.run("ZPOPMAX z 2"), ws(&[("d", 4.0), ("c", 3.0)]));
    assert_eq!(k.run("ZPOPMAX z 9223372036854775807"), ws(&[("b", 2.0)]));
    assert_eq!(k.run("EXISTS z"), int(0));
    // RESP3: a count makes it a list of pairs, even for one.
    k.proto = Protocol::Resp3;
    k.run("ZADD z 1 a 2 b 3 c");
    assert_eq!(k.run("ZPOPMIN z"), arr(vec![bulk("a"), d(1.0)]));
    assert_eq!(k.run("ZPOPMIN z 1"), pairs(&[("b", 2.0)]));
    assert_eq!(k.run("ZPOPMAX z 5"), pairs(&[("c", 3.0)]));
}

#[test]
fn zmpop() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZMPOP 1 z"), err("ERR wrong number of arguments for 'zmpop' command"));
    for bad in ["ZMPOP 0 z MIN", "ZMPOP -1 z MIN", "ZMPOP x z MIN"] {
        assert_eq!(k.run(bad), err("ERR numkeys should be greater than 0"), "{bad}");
    }
    assert_eq!(k.run("ZMPOP 2 z MIN"), err("ERR syntax error"));
    assert_eq!(k.run("ZMPOP 9223372036854775807 z MIN"), err("ERR syntax error"));
    assert_eq!(k.run("ZMPOP 1 z foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZMPOP 1 z MIN foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZMPOP 1 z MIN COUNT 0"), err("ERR count should be greater than 0"));
    assert_eq!(k.run("ZMPOP 1 z MIN COUNT x"), err("ERR count should be greater than 0"));
    assert_eq!(k.run("ZMPOP 1 z MIN COUNT 1 COUNT 2"), err("ERR syntax error"));
    assert_eq!(k.run("ZMPOP 1 nokey MAX"), Reply::NilArray);
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("ZMPOP 2 s z MIN"), err(WRONGTYPE));
    let got = k.run("ZMPOP 2 nokey z MIN COUNT 2");
    assert_eq!(got, arr(vec![bulk("z"), pairs(&[("a", 1.0), ("b", 2.0)])]));
    assert_eq!(propagated(&k), vec![vec!["ZPOPMIN", "z", "2"]]);
    assert_eq!(k.run("ZMPOP 1 z max count 10"), arr(vec![bulk("z"), pairs(&[("d", 4.0), ("c", 3.0)])]));
    assert_eq!(propagated(&k), vec![vec!["ZPOPMAX", "z", "10"]]);
    assert_eq!(k.run("EXISTS z"), int(0));
    k.run("ZADD z 1 a");
    k.run("ZMPOP 1 z MIN");
    assert_eq!(propagated(&k), vec![vec!["ZPOPMIN", "z", "1"]]);
}

#[test]
fn blocking_helpers() {
    let mut k = kit_abc();
    let mut ctx = crate::cmd::Ctx::new(&mut k.ks, &k.cfg, k.now);
    let key = Bytes::from_static(b"z");
    let r = super::serve_bzpop(&mut ctx, &key, true).unwrap();
    assert_eq!(r, Some(arr(vec![bulk("z"), bulk("d"), d(4.0)])));
    assert_eq!(ctx.propagate.take(), Some(vec![vec![Bytes::from_static(b"ZPOPMAX"), key.clone()]]));
    let r = super::serve_bzmpop(&mut ctx, &key, false, 5).unwrap();
    assert_eq!(r, Some(arr(vec![bulk("z"), pairs(&[("a", 1.0), ("b", 2.0), ("c", 3.0)])])));
    assert_eq!(ctx.propagate.take().unwrap()[0][2], Bytes::from_static(b"5"));
    assert_eq!(super::serve_bzpop(&mut ctx, &key, true).unwrap(), None);
    assert_eq!(super::serve_bzpop(&mut ctx, &Bytes::from_static(b"s"), true), Err(err(WRONGTYPE)));
    let argv: Vec<Bytes> =
        ["BZMPOP", "0", "2", "a", "b", "MAX", "COUNT", "3"].map(|s| Bytes::from_static(s.as_bytes())).to_vec();
    let p = super::parse_mpop(&argv, 2).unwrap();
    assert_eq!((p.keys.len(), p.max, p.count), (2, true, 3));
}

#[test]
fn zrandmember() {
    let mut k = kit_abc();
    assert_eq!(k.run("ZRANDMEMBER z x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZRANDMEMBER z 1 foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZRANDMEMBER z 1 withscores withscores"), err("ERR syntax error"));
    assert_eq!(
        k.run("ZRANDMEMBER z -9223372036854775808"),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(k.run("ZRANDMEMBER z -4611686018427387904 withscores"), err("ERR value is out of range"));
    assert_eq!(k.run("ZRANDMEMBER z 9223372036854775807 withscores"), err("ERR value is out of range"));
    assert_eq!(k.run("ZRANDMEMBER s 1"), err(WRONGTYPE));
    assert_eq!(k.run("ZRANDMEMBER nokey"), Reply::Nil);
    assert_eq!(k.run("ZRANDMEMBER nokey 2"), empty());
    assert_eq!(k.run("ZRANDMEMBER z 0"), empty());
    assert_eq!(k.run("ZRANDMEMBER z 0 withscores"), empty());
    let Reply::Bulk(one) = k.run("ZRANDMEMBER z") else { panic!() };
    assert!([&b"a"[..], b"b", b"c", b"d"].contains(&&one[..]));
    // A count at least the size returns everything.
    assert_eq!(k.run("ZRANDMEMBER z 10 WITHSCORES"), ws(&[("d", 4.0), ("c", 3.0), ("b", 2.0), ("a", 1.0)]));
    // Distinct members for a positive count, repeats allowed for a negative one.
    for _ in 0..50 {
        let Reply::Array(v) = k.run("ZRANDMEMBER z 3") else { panic!() };
        let mut names: Vec<_> = v.iter().map(|r| format!("{r:?}")).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3);
        let Reply::Array(v) = k.run("ZRANDMEMBER z -7 WITHSCORES") else { panic!() };
        assert_eq!(v.len(), 14);
    }
    k.proto = Protocol::Resp3;
    let Reply::Array(v) = k.run("ZRANDMEMBER z 2 WITHSCORES") else { panic!() };
    assert!(v.iter().all(|p| matches!(p, Reply::Array(x) if x.len() == 2 && matches!(x[1], Reply::Double(_)))));
    // Large encoding, distinct sampling.
    k.cfg.zset_max_listpack_entries = 4;
    for i in 0..200 {
        k.run(&format!("ZADD big {i} m{i}"));
    }
    let Reply::Array(v) = k.run("ZRANDMEMBER big 20") else { panic!() };
    let mut names: Vec<_> = v.iter().map(|r| format!("{r:?}")).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
}

#[test]
fn resp3_shapes() {
    let mut k = kit_abc();
    k.proto = Protocol::Resp3;
    assert_eq!(k.run("ZRANGE z 0 1 WITHSCORES"), pairs(&[("a", 1.0), ("b", 2.0)]));
    assert_eq!(k.run("ZRANGE z 0 1"), bulks(&["a", "b"]));
    assert_eq!(k.run("ZRANGEBYSCORE z 3 +inf WITHSCORES"), pairs(&[("c", 3.0), ("d", 4.0)]));
    assert_eq!(k.run("ZUNION 1 z WITHSCORES"), pairs(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]));
    assert_eq!(k.run("ZINCRBY z 1 d"), d(5.0));
    assert_eq!(k.run("ZADD z NX INCR 1 d"), Reply::Nil);
    // ZSCAN replies scores as strings in both protocols.
    k.run("ZADD small 1.5 x");
    assert_eq!(k.run("ZSCAN small 0"), arr(vec![bulk("0"), bulks(&["x", "1.5"])]));
}

#[test]
fn set_operations() {
    let mut k = Kit::new();
    k.run("ZADD z 1 a 2 b 3 c");
    k.run("ZADD z2 10 b 20 c 30 d");
    k.run("SADD st a d x");
    assert_eq!(k.run("ZUNION 2 z z2 WITHSCORES"), ws(&[("a", 1.0), ("b", 12.0), ("c", 23.0), ("d", 30.0)]));
    assert_eq!(k.run("ZUNION 2 z z2"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(
        k.run("ZUNION 2 z z2 AGGREGATE MAX WITHSCORES"),
        ws(&[("a", 1.0), ("b", 10.0), ("c", 20.0), ("d", 30.0)])
    );
    assert_eq!(
        k.run("ZUNION 2 z z2 WEIGHTS 1 -1 WITHSCORES"),
        ws(&[("d", -30.0), ("c", -17.0), ("b", -8.0), ("a", 1.0)])
    );
    assert_eq!(k.run("ZINTER 2 z z2 AGGREGATE MIN WITHSCORES"), ws(&[("b", 2.0), ("c", 3.0)]));
    assert_eq!(k.run("ZINTER 2 z z2 WITHSCORES"), ws(&[("b", 12.0), ("c", 23.0)]));
    assert_eq!(k.run("ZDIFF 2 z z2 WITHSCORES"), ws(&[("a", 1.0)]));
    assert_eq!(k.run("ZDIFF 1 z"), bulks(&["a", "b", "c"]));
    assert_eq!(k.run("ZDIFF 2 z z"), empty());
    assert_eq!(k.run("ZDIFF 2 nokey z"), empty());
    assert_eq!(k.run("ZINTER 2 z nokey"), empty());
    assert_eq!(k.run("ZUNION 2 z nokey"), bulks(&["a", "b", "c"]));
    // Plain sets take part with score 1 (any set encoding).
    assert_eq!(k.run("ZUNION 2 z st WITHSCORES"), ws(&[("d", 1.0), ("x", 1.0), ("a", 2.0), ("b", 2.0), ("c", 3.0)]));
    assert_eq!(k.run("ZINTER 2 z st WITHSCORES"), ws(&[("a", 2.0)]));
    assert_eq!(k.run("ZDIFF 2 z st WITHSCORES"), ws(&[("b", 2.0), ("c", 3.0)]));
    k.run("SADD ints 1 2 3");
    k.run("ZADD zi 5 2 6 9");
    assert_eq!(k.run("ZINTER 2 ints zi WITHSCORES"), ws(&[("2", 6.0)]));
    assert_eq!(k.run("ZINTERCARD 2 z st"), int(1));
    // inf - inf sums to 0; 0 * inf weights to 0.
    k.run("ZADD inf1 inf a");
    k.run("ZADD inf2 -inf a");
    assert_eq!(k.run("ZUNION 2 inf1 inf2 WITHSCORES"), ws(&[("a", 0.0)]));
    assert_eq!(k.run("ZINTER 2 inf1 inf2 WITHSCORES"), ws(&[("a", 0.0)]));
    assert_eq!(k.run("ZUNION 2 inf1 inf2 WEIGHTS 0 1 WITHSCORES"), ws(&[("a", f64::NEG_INFINITY)]));
    assert_eq!(k.run("ZUNION 1 inf1 WEIGHTS 0 WITHSCORES"), ws(&[("a", 0.0)]));
    assert_eq!(k.run("ZUNION 2 z z WEIGHTS inf -inf WITHSCORES"), ws(&[("a", 0.0), ("b", 0.0), ("c", 0.0)]));
}

#[test]
fn set_operation_errors() {
    let mut k = Kit::new();
    k.run("ZADD z 1 a 2 b 3 c");
    k.run("ZADD z2 10 b 20 c 30 d");
    k.run("SET s x");
    for (cmd, name) in [
        ("ZUNIONSTORE d 0 z", "zunionstore"),
        ("ZUNIONSTORE d -1 z", "zunionstore"),
        ("ZINTERSTORE d 0 z", "zinterstore"),
        ("ZDIFFSTORE d 0 z", "zdiffstore"),
        ("ZUNION 0 z", "zunion"),
        ("ZINTER 0 z", "zinter"),
        ("ZINTERCARD 0 z", "zintercard"),
        ("zdiff 0 z", "zdiff"),
    ] {
        assert_eq!(k.run(cmd), err(&format!("ERR at least 1 input key is needed for '{name}' command")), "{cmd}");
    }
    assert_eq!(k.run("ZUNIONSTORE d x z"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZUNIONSTORE d 3 z"), err("ERR syntax error"));
    assert_eq!(k.run("ZUNION 99999999999 z"), err("ERR syntax error"));
    assert_eq!(k.run("ZDIFF 0"), err("ERR wrong number of arguments for 'zdiff' command"));
    assert_eq!(k.run("ZUNION 2 z z2 WEIGHTS 2 x"), err("ERR weight value is not a float"));
    assert_eq!(k.run("ZUNION 2 z z2 WEIGHTS 2"), err("ERR syntax error"));
    assert_eq!(k.run("ZUNION 2 z z2 WEIGHTS 2 1 AGGREGATE foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZUNION 2 z z2 AGGREGATE"), err("ERR syntax error"));
    assert_eq!(k.run("ZUNION 2 z z2 foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZUNIONSTORE d 2 z z2 WITHSCORES"), err("ERR syntax error"));
    assert_eq!(k.run("ZDIFF 2 z z2 WEIGHTS 1 2"), err("ERR syntax error"));
    assert_eq!(k.run("ZDIFF 2 z z2 AGGREGATE MAX"), err("ERR syntax error"));
    assert_eq!(k.run("ZDIFFSTORE d 2 z z2 WITHSCORES"), err("ERR syntax error"));
    assert_eq!(k.run("ZINTERCARD 2 z z2 WITHSCORES"), err("ERR syntax error"));
    // Key types are checked before options are parsed.
    assert_eq!(k.run("ZUNION 2 s z WEIGHTS x"), err(WRONGTYPE));
    assert_eq!(k.run("ZUNION 2 z s foo"), err(WRONGTYPE));
    assert_eq!(k.run("ZINTERCARD 2 s z LIMIT -1"), err(WRONGTYPE));
    assert_eq!(k.run("ZINTERSTORE d 2 nokey s"), err(WRONGTYPE));
}

#[test]
fn zintercard() {
    let mut k = Kit::new();
    k.run("ZADD z 1 a 2 b 3 c");
    k.run("ZADD z2 10 b 20 c 30 d");
    assert_eq!(k.run("ZINTERCARD 2 z z2"), int(2));
    assert_eq!(k.run("ZINTERCARD 2 z z2 LIMIT 1"), int(1));
    assert_eq!(k.run("ZINTERCARD 2 z z2 LIMIT 0"), int(2));
    assert_eq!(k.run("ZINTERCARD 2 z z2 LIMIT -1"), err("ERR LIMIT can't be negative"));
    assert_eq!(k.run("ZINTERCARD 2 z z2 LIMIT x"), err("ERR LIMIT can't be negative"));
    assert_eq!(k.run("ZINTERCARD 2 z z2 LIMIT"), err("ERR syntax error"));
    assert_eq!(k.run("ZINTERCARD 2 z z2 foo"), err("ERR syntax error"));
    assert_eq!(k.run("ZINTERCARD 1 nokey"), int(0));
}

#[test]
fn store_operations() {
    let mut k = Kit::new();
    k.run("ZADD z 1 a 2 b 3 c");
    k.run("ZADD z2 10 b 20 c 30 d");
    assert_eq!(k.run("ZUNIONSTORE d 2 z nokey"), int(3));
    assert_eq!((k.dirty, k.propagated.clone()), (1, None));
    assert_eq!(k.run("ZRANGE d 0 -1 WITHSCORES"), ws(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]));
    assert_eq!(k.run("ZINTERSTORE d 2 z z2 WEIGHTS 2 1"), int(2));
    assert_eq!(k.run("ZRANGE d 0 -1 WITHSCORES"), ws(&[("b", 14.0), ("c", 26.0)]));
    assert_eq!(k.run("ZINTERSTORE d 2 z nokey"), int(0));
    assert_eq!(k.dirty, 1, "the old destination was deleted");
    assert_eq!(k.run("EXISTS d"), int(0));
    assert_eq!(k.run("ZINTERSTORE d 2 nokey z"), int(0));
    assert_eq!(k.dirty, 0);
    assert_eq!(k.run("ZDIFFSTORE d 2 z z2"), int(1));
    assert_eq!(k.run("ZRANGE d 0 -1 WITHSCORES"), ws(&[("a", 1.0)]));
    assert_eq!(k.run("ZDIFFSTORE d 1 nokey"), int(0));
    assert_eq!(k.run("EXISTS d"), int(0));
    // The destination may be a source, and may hold another type.
    assert_eq!(k.run("ZUNIONSTORE z 2 z z2 AGGREGATE MAX"), int(4));
    assert_eq!(k.run("ZRANGE z 0 -1 WITHSCORES"), ws(&[("a", 1.0), ("b", 10.0), ("c", 20.0), ("d", 30.0)]));
    k.run("SET str x");
    assert_eq!(k.run("ZUNIONSTORE str 1 z2"), int(3));
    assert_eq!(k.run("ZCARD str"), int(3));
    // Encoding of the result follows its size.
    k.cfg.zset_max_listpack_entries = 3;
    assert_eq!(k.run("ZUNIONSTORE big 1 z"), int(4));
    assert_eq!(encoding(&k, "big"), "skiplist");
    assert_eq!(k.run("ZINTERSTORE small 2 z z2"), int(3));
    assert_eq!(encoding(&k, "small"), "listpack");
}

#[test]
fn zscan() {
    let mut k = kit_abc();
    let all = arr(vec![bulk("0"), bulks(&["a", "1", "b", "2", "c", "3", "d", "4"])]);
    assert_eq!(k.run("ZSCAN z 0"), all);
    assert_eq!(k.run("ZSCAN z -1"), all, "strtoul wraps a negative cursor");
    assert_eq!(k.run_args(&[b"ZSCAN", b"z", b""]), all);
    assert_eq!(k.run("ZSCAN z 0 MATCH [bc] COUNT 1"), arr(vec![bulk("0"), bulks(&["b", "2", "c", "3"])]));
    assert_eq!(k.run("ZSCAN z 0 MATCH *"), all);
    assert_eq!(k.run("ZSCAN z x"), err("ERR invalid cursor"));
    assert_eq!(k.run("ZSCAN nokey x"), err("ERR invalid cursor"));
    assert_eq!(k.run("ZSCAN z 18446744073709551616"), err("ERR invalid cursor"));
    assert_eq!(k.run("ZSCAN nokey 0 COUNT 0"), arr(vec![bulk("0"), empty()]));
    assert_eq!(k.run("ZSCAN z 0 COUNT 0"), err("ERR syntax error"));
    assert_eq!(k.run("ZSCAN z 0 COUNT x"), err("ERR value is not an integer or out of range"));
    assert_eq!(k.run("ZSCAN z 0 MATCH"), err("ERR syntax error"));
    assert_eq!(k.run("ZSCAN z 0 NOVALUES"), err("ERR syntax error"));
    assert_eq!(k.run("ZSCAN s 0"), err(WRONGTYPE));
    // Scores are %.17g strings.
    k.run("ZADD f 1.1 a 1e20 b");
    assert_eq!(k.run("ZSCAN f 0"), arr(vec![bulk("0"), bulks(&["a", "1.1000000000000001", "b", "1e+20"])]));
}

#[test]
fn zscan_large_is_complete() {
    let mut k = Kit::new();
    let n = 1000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut argv: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"z".to_vec()];
        for i in chunk {
            argv.push(i.to_string().into_bytes());
            argv.push(format!("m{i}").into_bytes());
        }
        let refs: Vec<&[u8]> = argv.iter().map(|v| &v[..]).collect();
        k.run_args(&refs);
    }
    assert_eq!(encoding(&k, "z"), "skiplist");
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        calls += 1;
        let Reply::Array(r) = k.run(&format!("ZSCAN z {cursor} COUNT 20")) else { panic!() };
        let Reply::Bulk(c) = &r[0] else { panic!() };
        let Reply::Array(items) = &r[1] else { panic!() };
        for p in items.chunks(2) {
            let (Reply::Bulk(m), Reply::Bulk(s)) = (&p[0], &p[1]) else { panic!() };
            seen.insert(m.clone(), s.clone());
        }
        cursor = String::from_utf8(c.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
        // Churn between calls: elements present throughout must still be returned.
        k.run(&format!("ZADD z 1 extra{calls}"));
        k.run(&format!("ZREM z extra{}", calls.max(2) - 1));
    }
    assert!(calls > 1, "a large zset is scanned in steps");
    for i in 0..n {
        assert_eq!(seen.get(format!("m{i}").as_bytes()), Some(&Bytes::from(i.to_string())), "m{i}");
    }
}

#[test]
fn encoding_transitions() {
    let mut k = Kit::new();
    for i in 0..128 {
        k.run(&format!("ZADD z {i} m{i}"));
    }
    assert_eq!(encoding(&k, "z"), "listpack");
    k.run("ZADD z 128 m128");
    assert_eq!(encoding(&k, "z"), "skiplist");
    k.run("ZREMRANGEBYRANK z 0 100");
    assert_eq!(encoding(&k, "z"), "skiplist", "never converts back");
    assert_eq!(k.run("ZRANGE z 0 1 WITHSCORES"), ws(&[("m101", 101.0), ("m102", 102.0)]));
    let m64 = "x".repeat(64);
    let m65 = "y".repeat(65);
    k.run(&format!("ZADD v 1 {m64}"));
    assert_eq!(encoding(&k, "v"), "listpack");
    k.run(&format!("ZADD v 2 {m65}"));
    assert_eq!(encoding(&k, "v"), "skiplist");
    assert_eq!(k.run("ZRANGE v 0 -1"), bulks(&[&m64, &m65]));
    // A first member over the limit starts in skiplist form; so does ZINCRBY.
    k.run(&format!("ZINCRBY w 1 {m65}"));
    assert_eq!(encoding(&k, "w"), "skiplist");
    k.cfg.zset_max_listpack_entries = 0;
    k.run("ZADD zero 1 a");
    assert_eq!(encoding(&k, "zero"), "skiplist");
}

#[test]
fn large_rank_and_range_100k() {
    let mut k = Kit::new();
    let n = 100_000;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut argv: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"z".to_vec()];
        for i in chunk {
            argv.push((i % 1000).to_string().into_bytes());
            argv.push(format!("m{i:06}").into_bytes());
        }
        let refs: Vec<&[u8]> = argv.iter().map(|v| &v[..]).collect();
        k.run_args(&refs);
    }
    assert_eq!(k.run("ZCARD z"), int(n));
    // Score s holds members i with i % 1000 == s: 100 each, by member within a score.
    assert_eq!(k.run("ZRANK z m000000"), int(0));
    assert_eq!(k.run("ZRANK z m001000"), int(1));
    assert_eq!(k.run("ZRANK z m000001"), int(100));
    assert_eq!(k.run("ZREVRANK z m000999"), int(99));
    assert_eq!(k.run("ZRANGE z 100 101"), bulks(&["m000001", "m001001"]));
    assert_eq!(k.run("ZRANGE z -1 -1 WITHSCORES"), ws(&[("m099999", 999.0)]));
    assert_eq!(k.run("ZRANGE z 50000 50001 REV"), bulks(&["m099499", "m098499"]));
    assert_eq!(k.run("ZCOUNT z 10 (20"), int(1000));
    assert_eq!(k.run("ZRANGEBYSCORE z (997 +inf LIMIT 99 2"), bulks(&["m099998", "m000999"]));
    assert_eq!(k.run("ZREVRANGEBYSCORE z +inf -inf LIMIT 0 1"), bulks(&["m099999"]));
    assert_eq!(k.run("ZREMRANGEBYSCORE z 0 (500"), int(50_000));
    assert_eq!(k.run("ZRANK z m000500"), int(0));
    assert_eq!(k.run("ZPOPMIN z"), ws(&[("m000500", 500.0)]));
    assert_eq!(k.run("ZRANK z m099999"), int(49_998));
}

mod model {
    //! Random ZADD / ZINCRBY / ZREM / ZPOPMIN / ZRANGE / ZRANK against a BTreeMap model.

    use super::*;
    use crate::types::zset::compare;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, i8),
        Incr(u8, i8),
        Rem(u8),
        PopMin(u8),
        Range(i8, i8),
        Rank(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Add(m, s)),
            2 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Incr(m, s)),
            2 => any::<u8>().prop_map(Op::Rem),
            1 => (0u8..4).prop_map(Op::PopMin),
            2 => (any::<i8>(), any::<i8>()).prop_map(|(a, b)| Op::Range(a, b)),
            2 => any::<u8>().prop_map(Op::Rank),
        ]
    }

    fn sorted(m: &BTreeMap<String, f64>) -> Vec<(String, f64)> {
        let mut v: Vec<_> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
        v.sort_by(|a, b| compare(a.1, a.0.as_bytes(), b.1, b.0.as_bytes()));
        v
    }

    fn ws_owned(items: &[(String, f64)]) -> Reply {
        arr(items.iter().flat_map(|(m, s)| [bulk(m), d(*s)]).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn commands_match_model(ops in proptest::collection::vec(op(), 1..400), entries in 0usize..20) {
            let mut k = Kit::new();
            k.cfg.zset_max_listpack_entries = entries;
            let mut model: BTreeMap<String, f64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Add(m, s) => {
                        let (m, s) = (format!("m{m}"), f64::from(s));
                        let added = model.insert(m.clone(), s).is_none();
                        prop_assert_eq!(k.run(&format!("ZADD z {s} {m}")), int(i64::from(added)));
                    }
                    Op::Incr(m, s) => {
                        let (m, s) = (format!("m{m}"), f64::from(s) / 2.0);
                        let v = model.entry(m.clone()).or_insert(0.0);
                        *v += s;
                        prop_assert_eq!(k.run(&format!("ZINCRBY z {s} {m}")), d(*v));
                    }
                    Op::Rem(m) => {
                        let m = format!("m{m}");
                        let removed = model.remove(&m).is_some();
                        prop_assert_eq!(k.run(&format!("ZREM z {m}")), int(i64::from(removed)));
                    }
                    Op::PopMin(n) => {
                        let want: Vec<_> = sorted(&model).into_iter().take(usize::from(n)).collect();
                        for (m, _) in &want {
                            model.remove(m);
                        }
                        prop_assert_eq!(k.run(&format!("ZPOPMIN z {n}")), ws_owned(&want));
                    }
                    Op::Range(a, b) => {
                        let all = sorted(&model);
                        let want: Vec<_> = match crate::cmd::args::clamp_range(i64::from(a), i64::from(b), all.len()) {
                            Some((s, e)) => all[s..=e].to_vec(),
                            None => vec![],
                        };
                        prop_assert_eq!(k.run(&format!("ZRANGE z {a} {b} WITHSCORES")), ws_owned(&want));
                        let rev: Vec<_> = all.iter().rev().cloned().collect();
                        let want: Vec<_> = match crate::cmd::args::clamp_range(i64::from(a), i64::from(b), rev.len()) {
                            Some((s, e)) => rev[s..=e].to_vec(),
                            None => vec![],
                        };
                        prop_assert_eq!(k.run(&format!("ZREVRANGE z {a} {b} WITHSCORES")), ws_owned(&want));
                    }
                    Op::Rank(m) => {
                        let m = format!("m{m}");
                        let want = sorted(&model).iter().position(|(x, _)| *x == m);
                        prop_assert_eq!(k.run(&format!("ZRANK z {m}")), want.map_or(Reply::Nil, |r| int(r as i64)));
                    }
                }
                prop_assert_eq!(k.run("ZCARD z"), int(model.len() as i64));
            }
            let all = sorted(&model);
            prop_assert_eq!(k.run("ZRANGE z 0 -1 WITHSCORES"), ws_owned(&all));
            if let Some((m, s)) = all.first() {
                prop_assert_eq!(k.run(&format!("ZCOUNT z -inf {s}")), int(all.iter().filter(|x| x.1 <= *s).count() as i64));
                prop_assert_eq!(k.run(&format!("ZRANK z {m}")), int(0));
            }
        }
    }
}

/// A ZADD of many pairs ends as the same zset, in the same encoding, as the same pairs added one at a time
/// (it may convert to skiplist before adding, when the adds would convert it anyway).
#[test]
fn zadd_of_many_pairs_matches_one_at_a_time() {
    let mut rng = fastrand::Rng::with_seed(3);
    let long = "l".repeat(65);
    for round in 0..600 {
        let mut k = Kit::new();
        let start = rng.usize(..140);
        for i in 0..start {
            for key in ["one", "many"] {
                k.run(&format!("ZADD {key} {i} m{i}"));
            }
        }
        let opts = ["", "NX", "GT", "LT", "CH", "XX"][rng.usize(..6)];
        let n = [1, 2, 5, 10, 20, 60, 130, 200][rng.usize(..8)];
        let spread = [1, 5, 100, 300][rng.usize(..4)];
        let pairs: Vec<String> = (0..n)
            .map(|_| {
                let m = if rng.u8(..50) == 0 { long.clone() } else { format!("m{}", rng.usize(..spread)) };
                format!("{} {m}", rng.i32(-5..300))
            })
            .collect();
        let many = k.run(&format!("ZADD many {opts} {}", pairs.join(" ")));
        let mut added = 0;
        for p in &pairs {
            if let Reply::Int(a) = k.run(&format!("ZADD one {opts} {p}")) {
                added += a;
            }
        }
        let what = format!("round {round}: {start} members, ZADD {opts} of {n} pairs over {spread}");
        assert_eq!(many, int(added), "{what}");
        let (one, many) = (k.run("ZRANGE one 0 -1 WITHSCORES"), k.run("ZRANGE many 0 -1 WITHSCORES"));
        assert_eq!(one, many, "{what}");
        if !matches!(one, Reply::Array(ref v) if v.is_empty()) {
            assert_eq!(encoding(&k, "one"), encoding(&k, "many"), "{what}");
        }
    }
}
