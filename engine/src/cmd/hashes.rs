//! The hashes family: HSET HSETNX HGET HMSET HMGET HDEL HLEN HSTRLEN HEXISTS HGETALL HKEYS HVALS HINCRBY
//! HINCRBYFLOAT HRANDFIELD HSCAN, on [`crate::types::HashValue`]s (listpack while small, hashtable past
//! the thresholds).
//!
//! Also home of the helpers the SCAN-style and random-count commands of both hashes and sets share
//! ([`parse_scan_cursor`], [`ScanOptions`], [`random_count`]).

use super::args;
use super::ctx::Ctx;
use super::errors::{OVERFLOW, SYNTAX};
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine};
use super::{arity_error, CmdResult};
use crate::glob::glob_match;
use crate::resp::{Protocol, Reply};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;

const W_FAST: &[&str] = &["write", "hash", "fast"];
const R_FAST: &[&str] = &["read", "hash", "fast"];
const R_SLOW: &[&str] = &["read", "hash", "slow"];

// One line per command reads like `COMMAND INFO`; rustfmt would spread each over ten lines.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(hset)),
    spec("hsetnx", 4, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(hsetnx)),
    spec("hget", 3, READONLY | FAST, 1, 1, 1, R_FAST, Engine(hget)),
    spec("hmset", -4, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(hmset)),
    spec("hmget", -3, READONLY | FAST, 1, 1, 1, R_FAST, Engine(hmget)),
    spec("hdel", -3, WRITE | FAST, 1, 1, 1, W_FAST, Engine(hdel)),
    spec("hlen", 2, READONLY | FAST, 1, 1, 1, R_FAST, Engine(hlen)),
    spec("hstrlen", 3, READONLY | FAST, 1, 1, 1, R_FAST, Engine(hstrlen)),
    spec("hexists", 3, READONLY | FAST, 1, 1, 1, R_FAST, Engine(hexists)),
    spec("hgetall", 2, READONLY, 1, 1, 1, R_SLOW, Engine(hgetall)),
    spec("hkeys", 2, READONLY, 1, 1, 1, R_SLOW, Engine(hkeys)),
    spec("hvals", 2, READONLY, 1, 1, 1, R_SLOW, Engine(hvals)),
    spec("hincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(hincrby)),
    spec("hincrbyfloat", 4, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(hincrbyfloat)),
    spec("hrandfield", -2, READONLY, 1, 1, 1, R_SLOW, Engine(hrandfield)),
    spec("hscan", -3, READONLY, 1, 1, 1, R_SLOW, Engine(hscan)),
];

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

/// HSET key field value [field value ...]
pub fn hset(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    set_pairs(ctx, a, "hset").map_or_else(|e| e, Reply::Int)
}

/// HMSET key field value [field value ...]: HSET replying OK.
pub fn hmset(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    set_pairs(ctx, a, "hmset").map_or_else(|e| e, |_| Reply::ok())
}

/// Sets every pair; returns the number of new fields.
fn set_pairs(ctx: &mut Ctx, a: &[Bytes], name: &str) -> CmdResult<i64> {
    // The table's arity only says "at least one pair"; an unpaired field is also an arity error.
    if !a.len().is_multiple_of(2) {
        return Err(arity_error(name));
    }
    let cfg = ctx.cfg;
    let h = ctx.hash_or_create(&a[1])?;
    h.prepare_for(a[2..].chunks(2).map(|p| (&p[0][..], &p[1][..])), cfg);
    let created = a[2..].chunks(2).filter(|p| h.set(&p[0], &p[1], cfg)).count();
    ctx.dirty += ((a.len() - 2) / 2) as u64;
    Ok(created as i64)
}

/// HSETNX key field value
pub fn hsetnx(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        let h = ctx.hash_or_create(&a[1])?;
        if h.contains(&a[2]) {
            return Ok(Reply::Int(0));
        }
        h.set(&a[2], &a[3], cfg);
        ctx.dirty += 1;
        Ok(Reply::Int(1))
    })
}

/// HGET key field
pub fn hget(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(ctx.read_hash(&a[1])?.and_then(|h| h.get(&a[2])).map_or(Reply::Nil, bulk)))
}

/// HMGET key field [field ...]
pub fn hmget(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let h = ctx.read_hash(&a[1])?;
        Ok(Reply::Array(a[2..].iter().map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, bulk)).collect()))
    })
}

/// HDEL key field [field ...]
pub fn hdel(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let Some(h) = ctx.write_hash(&a[1])? else {
            return Ok(Reply::Int(0));
        };
        let mut deleted = 0;
        for f in &a[2..] {
            if h.remove(f) {
                deleted += 1;
                if h.is_empty() {
                    break;
                }
            }
        }
        ctx.remove_if_empty(&a[1]);
        ctx.dirty += deleted;
        Ok(Reply::Int(deleted as i64))
    })
}

/// HLEN key
pub fn hlen(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(ctx.read_hash(&a[1])?.map_or(0, |h| h.len()) as i64)))
}

/// HSTRLEN key field
pub fn hstrlen(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(ctx.read_hash(&a[1])?.and_then(|h| h.get(&a[2])).map_or(0, |v| v.len()) as i64)))
}

/// HEXISTS key field
pub fn hexists(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(i64::from(ctx.read_hash(&a[1])?.is_some_and(|h| h.contains(&a[2]))))))
}

/// HGETALL key: a map in RESP3.
pub fn hgetall(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let h = ctx.read_hash(&a[1])?;
        Ok(Reply::Map(h.map_or_else(Vec::new, |h| h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect())))
    })
}

/// HKEYS key
pub fn hkeys(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Array(ctx.read_hash(&a[1])?.map_or_else(Vec::new, |h| h.iter().map(|(f, _)| bulk(f)).collect()))))
}

/// HVALS key
pub fn hvals(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Array(ctx.read_hash(&a[1])?.map_or_else(Vec::new, |h| h.iter().map(|(_, v)| bulk(v)).collect()))))
}

/// HINCRBY key field increment
pub fn hincrby(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let incr = args::int(&a[3])?;
        let cfg = ctx.cfg;
        let h = ctx.hash_or_create(&a[1])?;
        let old = match h.get(&a[2]) {
            Some(v) => parse_i64(v).ok_or_else(|| Reply::err("ERR hash value is not an integer"))?,
            None => 0,
        };
        let new = old.checked_add(incr).ok_or_else(|| Reply::err(OVERFLOW))?;
        h.set(&a[2], new.to_string().as_bytes(), cfg);
        ctx.dirty += 1;
        Ok(Reply::Int(new))
    })
}

/// HINCRBYFLOAT key field increment: logged as `HSET key field <new value>` so replay cannot drift.
pub fn hincrbyfloat(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    use crate::types::string::long_double::{incr_by_float, FloatError};
    run(|| {
        // Same long double arithmetic as INCRBYFLOAT; each operand is checked first for Redis's error texts.
        match incr_by_float(b"0", &a[3]) {
            Err(FloatError::NotFloat) => return Err(Reply::err(super::errors::NOT_FLOAT)),
            Err(FloatError::NanOrInfinity) => return Err(Reply::err("ERR value is NaN or Infinity")),
            Ok(_) => {}
        }
        let cfg = ctx.cfg;
        let h = ctx.hash_or_create(&a[1])?;
        let old: Vec<u8> = h.get(&a[2]).map_or_else(|| b"0".to_vec(), |v| v.to_vec());
        if incr_by_float(&old, b"0") == Err(FloatError::NotFloat) {
            return Err(Reply::err("ERR hash value is not a float"));
        }
        let text = match incr_by_float(&old, &a[3]) {
            Ok(t) => Bytes::from(t),
            Err(_) => return Err(Reply::err("ERR increment would produce NaN or Infinity")),
        };
        h.set(&a[2], &text, cfg);
        ctx.dirty += 1;
        ctx.also_propagate(vec![Bytes::from_static(b"HSET"), a[1].clone(), a[2].clone(), text.clone()]);
        Ok(Reply::Bulk(text))
    })
}

/// The count argument of HRANDFIELD / SRANDMEMBER: an integer in `-i64::MAX..=i64::MAX`, with Redis's texts.
/// Returns (count, unique): a negative count means repeats are allowed.
pub(super) fn random_count(arg: &[u8]) -> CmdResult<(u64, bool)> {
    let n = args::int(arg)?;
    if n == i64::MIN {
        return Err(Reply::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok((n.unsigned_abs(), n >= 0))
}

/// Largest number of elements a negative (repeating) random count may ask for. Redis has no limit and
/// builds the whole reply in memory, so a huge count gets it OOM-killed; Moon answers with an error instead.
/// Checked last, once the key is known to exist, so every Redis reply and error is kept below the limit.
pub(super) const MAX_REPEATED_RANDOM: u64 = 1 << 24;

/// The [`MAX_REPEATED_RANDOM`] guard.
pub(super) fn check_repeat_limit(count: u64, unique: bool) -> CmdResult<usize> {
    if !unique && count > MAX_REPEATED_RANDOM {
        return Err(Reply::err("ERR value is out of range"));
    }
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        if a.len() == 2 {
            let h = ctx.read_hash(&a[1])?;
            return Ok(h.and_then(|h| h.random_pair()).map_or(Reply::Nil, |(f, _)| bulk(f)));
        }
        let (count, unique) = random_count(&a[2])?;
        if a.len() > 4 || (a.len() == 4 && !eq_ic(&a[3], "withvalues")) {
            return Err(Reply::err(SYNTAX));
        }
        let with_values = a.len() == 4;
        if with_values && count > (i64::MAX / 2) as u64 {
            return Err(Reply::err("ERR value is out of range"));
        }
        let proto = ctx.proto;
        let Some(h) = ctx.read_hash(&a[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let count = check_repeat_limit(count, unique)?;
        let pairs = if unique { h.random_pairs_unique(count) } else { h.random_pairs(count) };
        Ok(Reply::Array(if !with_values {
            pairs.into_iter().map(|(f, _)| bulk(f)).collect()
        } else if proto == Protocol::Resp3 {
            pairs.into_iter().map(|(f, v)| Reply::Array(vec![bulk(f), bulk(v)])).collect()
        } else {
            pairs.into_iter().flat_map(|(f, v)| [bulk(f), bulk(v)]).collect()
        }))
    })
}

/// A SCAN cursor as Redis reads it (`strtoul`): no leading space, optional sign (a minus wraps around),
/// nothing after the digits, at most `u64::MAX`; an empty string is cursor 0.
pub(super) fn parse_scan_cursor(arg: &[u8]) -> CmdResult<u64> {
    let invalid = || Reply::err("ERR invalid cursor");
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if !digits.iter().all(u8::is_ascii_digit) || (digits.is_empty() && !arg.is_empty()) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// MATCH / COUNT options of HSCAN and SSCAN.
pub(super) struct ScanOptions {
    pub count: usize,
    /// `None` for no pattern or `*` (Redis skips matching then).
    pub pattern: Option<Bytes>,
}

impl ScanOptions {
    /// Parses the options after the cursor; errors as Redis's `scanGenericCommand`.
    pub(super) fn parse(opts: &[Bytes]) -> CmdResult<Self> {
        let mut o = ScanOptions { count: 10, pattern: None };
        let mut i = 0;
        while i < opts.len() {
            let has_value = i + 1 < opts.len();
            if eq_ic(&opts[i], "count") && has_value {
                let n = args::int(&opts[i + 1])?;
                if n < 1 {
                    return Err(Reply::err(SYNTAX));
                }
                o.count = usize::try_from(n).unwrap_or(usize::MAX);
            } else if eq_ic(&opts[i], "match") && has_value {
                let p = &opts[i + 1];
                o.pattern = if &p[..] == b"*" { None } else { Some(p.clone()) };
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 2;
        }
        Ok(o)
    }

    pub(super) fn matches(&self, s: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| glob_match(p, s, false))
    }
}

/// The reply of a scan step: `[cursor, [items...]]`.
pub(super) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::Bulk(Bytes::from(cursor.to_string())), Reply::Array(items)])
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn hscan(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cursor = parse_scan_cursor(&a[2])?;
        let Some(h) = ctx.read_hash(&a[1])? else {
            return Ok(scan_reply(0, Vec::new()));
        };
        let opts = ScanOptions::parse(&a[3..])?;
        let mut items = Vec::new();
        let next = h.scan(cursor, opts.count, |f, v| {
            if opts.matches(f) {
                items.push(bulk(f));
                items.push(bulk(v));
            }
        });
        Ok(scan_reply(next, items))
    })
}

#[cfg(test)]
mod tests {
    use super::super::errors::{NOT_FLOAT, NOT_INT, WRONGTYPE};
    use super::super::testkit::{bulk, bulks, err, Kit};
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    fn encoding(k: &Kit, key: &str) -> &'static str {
        k.ks.dbs[0].get(key.as_bytes()).expect("key exists").value.encoding_name()
    }

    fn exists(k: &Kit, key: &str) -> bool {
        k.ks.dbs[0].get(key.as_bytes()).is_some()
    }

    /// The bulk strings of an array reply, as text.
    fn texts(r: &Reply) -> Vec<String> {
        let Reply::Array(items) = r else { panic!("not an array: {r:?}") };
        items
            .iter()
            .map(|i| match i {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect()
    }

    fn sorted(r: &Reply) -> Vec<String> {
        let mut v = texts(r);
        v.sort();
        v
    }

    fn argv(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn hset_hmset_hget_and_arity() {
        let mut k = Kit::new();
        assert_eq!(k.run("HSET h a 1 b 2"), Reply::Int(2));
        assert_eq!((k.dirty, k.propagated.clone()), (2, None));
        assert_eq!(k.run("HSET h a 3 c 4"), Reply::Int(1));
        assert_eq!(k.run("HSET h a 1 a 2"), Reply::Int(0));
        assert_eq!(k.run("HGET h a"), bulk("2"));
        assert_eq!(k.run("HGET h zz"), Reply::Nil);
        assert_eq!(k.run("HGET nokey a"), Reply::Nil);
        assert_eq!(k.run("HMSET h d 5 e 6"), Reply::ok());
        assert_eq!(k.run("HLEN h"), Reply::Int(5));
        assert_eq!(k.run("HSET h a 1 b"), err("ERR wrong number of arguments for 'hset' command"));
        assert_eq!(k.run("HSET h a"), err("ERR wrong number of arguments for 'hset' command"));
        assert_eq!(k.run("HMSET h a 1 b"), err("ERR wrong number of arguments for 'hmset' command"));
        assert_eq!(k.run("HSET nokey a 1 b"), err("ERR wrong number of arguments for 'hset' command"));
        assert!(!exists(&k, "nokey"));
        k.run("SET str x");
        assert_eq!(k.run("HSET str a 1"), err(WRONGTYPE));
        assert_eq!(k.run("HMSET str a 1"), err(WRONGTYPE));
        assert_eq!(k.run("HGET str a"), err(WRONGTYPE));
        // Binary-safe fields and values.
        assert_eq!(k.run_args(&[b"HSET", b"bin", b"\x00\xff", b"\r\n"]), Reply::Int(1));
        assert_eq!(k.run_args(&[b"HGET", b"bin", b"\x00\xff"]), bulk("\r\n"));
    }

    #[test]
    fn hsetnx() {
        let mut k = Kit::new();
        assert_eq!(k.run("HSETNX h a 1"), Reply::Int(1));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("HSETNX h a 2"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("HGET h a"), bulk("1"));
        k.run("SET str x");
        assert_eq!(k.run("HSETNX str a 1"), err(WRONGTYPE));
    }

    #[test]
    fn hmget_hstrlen_hexists_hlen() {
        let mut k = Kit::new();
        k.run("HSET h a hello b 1");
        assert_eq!(k.run("HMGET h a zz b"), Reply::Array(vec![bulk("hello"), Reply::Nil, bulk("1")]));
        assert_eq!(k.run("HMGET nokey a b"), Reply::Array(vec![Reply::Nil, Reply::Nil]));
        assert_eq!(k.run("HSTRLEN h a"), Reply::Int(5));
        assert_eq!(k.run("HSTRLEN h zz"), Reply::Int(0));
        assert_eq!(k.run("HSTRLEN nokey a"), Reply::Int(0));
        assert_eq!(k.run("HEXISTS h b"), Reply::Int(1));
        assert_eq!(k.run("HEXISTS h zz"), Reply::Int(0));
        assert_eq!(k.run("HEXISTS nokey a"), Reply::Int(0));
        assert_eq!(k.run("HLEN h"), Reply::Int(2));
        assert_eq!(k.run("HLEN nokey"), Reply::Int(0));
        k.run("SET str x");
        for cmd in ["HMGET str a", "HSTRLEN str a", "HEXISTS str a", "HLEN str"] {
            assert_eq!(k.run(cmd), err(WRONGTYPE), "{cmd}");
        }
    }

    #[test]
    fn hdel_deletes_empty_hash() {
        let mut k = Kit::new();
        k.run("HSET h a 1 b 2 c 3");
        assert_eq!(k.run("HDEL h a zz a"), Reply::Int(1));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("HDEL h zz"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("HDEL h b c"), Reply::Int(2));
        assert!(!exists(&k, "h"));
        assert_eq!(k.run("HDEL nokey a"), Reply::Int(0));
        k.run("SET str x");
        assert_eq!(k.run("HDEL str a"), err(WRONGTYPE));
    }

    #[test]
    fn hgetall_hkeys_hvals_in_insertion_order() {
        let mut k = Kit::new();
        k.run("HSET h z 1 a 2 m 3");
        k.run("HDEL h a");
        k.run("HSET h a 4");
        assert_eq!(
            k.run("HGETALL h"),
            Reply::Map(vec![(bulk("z"), bulk("1")), (bulk("m"), bulk("3")), (bulk("a"), bulk("4"))])
        );
        assert_eq!(k.run("HKEYS h"), bulks(&["z", "m", "a"]));
        assert_eq!(k.run("HVALS h"), bulks(&["1", "3", "4"]));
        assert_eq!(k.run("HGETALL nokey"), Reply::Map(vec![]));
        assert_eq!(k.run("HKEYS nokey"), Reply::Array(vec![]));
        assert_eq!(k.run("HVALS nokey"), Reply::Array(vec![]));
        k.run("SET str x");
        for cmd in ["HGETALL str", "HKEYS str", "HVALS str"] {
            assert_eq!(k.run(cmd), err(WRONGTYPE), "{cmd}");
        }
        // RESP2 flattens the map: check the encoding the client sees.
        let r = k.run("HGETALL h");
        assert_eq!(
            r.to_vec(Protocol::Resp2),
            b"*6\r\n$1\r\nz\r\n$1\r\n1\r\n$1\r\nm\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n4\r\n"
        );
        assert!(r.to_vec(Protocol::Resp3).starts_with(b"%3\r\n"));
    }

    #[test]
    fn hincrby() {
        let mut k = Kit::new();
        assert_eq!(k.run("HINCRBY h a 5"), Reply::Int(5));
        assert_eq!(k.run("HINCRBY h a -7"), Reply::Int(-2));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("HGET h a"), bulk("-2"));
        k.run("HSET h big 9223372036854775807 small -9223372036854775808 f 1.5 s abc sp 01");
        assert_eq!(k.run("HINCRBY h big 1"), err(OVERFLOW));
        assert_eq!(k.run("HINCRBY h small -1"), err(OVERFLOW));
        assert_eq!(k.run("HINCRBY h small 9223372036854775807"), Reply::Int(-1));
        for f in ["f", "s", "sp"] {
            assert_eq!(k.run(&format!("HINCRBY h {f} 1")), err("ERR hash value is not an integer"), "{f}");
        }
        assert_eq!(k.run("HINCRBY h a x"), err(NOT_INT));
        assert_eq!(k.run("HINCRBY h a 1.0"), err(NOT_INT));
        assert_eq!(k.run("HINCRBY nokey a x"), err(NOT_INT));
        assert!(!exists(&k, "nokey"));
        k.run("SET str x");
        // The increment is parsed before the key is looked at.
        assert_eq!(k.run("HINCRBY str a x"), err(NOT_INT));
        assert_eq!(k.run("HINCRBY str a 1"), err(WRONGTYPE));
    }

    #[test]
    fn hincrbyfloat_and_its_propagation() {
        let mut k = Kit::new();
        assert_eq!(k.run("HINCRBYFLOAT h f 10.5"), bulk("10.5"));
        assert_eq!(k.propagated, Some(vec![argv(&["HSET", "h", "f", "10.5"])]));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("HINCRBYFLOAT h f 0.1"), bulk("10.6"));
        assert_eq!(k.run("HINCRBYFLOAT h f -10.6"), bulk("0"));
        assert_eq!(k.run("HINCRBYFLOAT h f 5.0e3"), bulk("5000"));
        assert_eq!(k.propagated, Some(vec![argv(&["HSET", "h", "f", "5000"])]));
        k.run("HSET h i 3 e 1e2 s abc sp \x201 inf inf");
        assert_eq!(k.run("HINCRBYFLOAT h i 1.5"), bulk("4.5"));
        assert_eq!(k.run("HINCRBYFLOAT h e 1"), bulk("101"));
        assert_eq!(k.run("HINCRBY h e 1"), Reply::Int(102));
        assert_eq!(k.run("HINCRBYFLOAT h s 1"), err("ERR hash value is not a float"));
        assert_eq!(k.run_args(&[b"HSET", b"h", b"sp", b" 1"]), Reply::Int(0));
        assert_eq!(k.run("HINCRBYFLOAT h sp 1"), err("ERR hash value is not a float"));
        assert_eq!(k.run("HINCRBYFLOAT h inf 1"), err("ERR increment would produce NaN or Infinity"));
        assert_eq!(k.run("HINCRBYFLOAT h i x"), err(NOT_FLOAT));
        assert_eq!(k.run("HINCRBYFLOAT h i nan"), err(NOT_FLOAT));
        assert_eq!(k.run("HINCRBYFLOAT h i inf"), err("ERR value is NaN or Infinity"));
        assert_eq!(k.run("HINCRBYFLOAT nokey i -inf"), err("ERR value is NaN or Infinity"));
        assert!(!exists(&k, "nokey"));
        assert_eq!(k.dirty, 0);
        k.run("SET str x");
        assert_eq!(k.run("HINCRBYFLOAT str a x"), err(NOT_FLOAT));
        assert_eq!(k.run("HINCRBYFLOAT str a 1"), err(WRONGTYPE));
    }

    #[test]
    fn hrandfield_without_count() {
        let mut k = Kit::new();
        assert_eq!(k.run("HRANDFIELD nokey"), Reply::Nil);
        k.run("HSET h a 1 b 2 c 3");
        for _ in 0..20 {
            let Reply::Bulk(f) = k.run("HRANDFIELD h") else { panic!() };
            assert!([&b"a"[..], b"b", b"c"].contains(&&f[..]));
        }
        k.run("SET str x");
        assert_eq!(k.run("HRANDFIELD str"), err(WRONGTYPE));
    }

    #[test]
    fn hrandfield_with_count() {
        let mut k = Kit::new();
        k.run("HSET h a 1 b 2 c 3");
        assert_eq!(k.run("HRANDFIELD h 0"), Reply::Array(vec![]));
        assert_eq!(k.run("HRANDFIELD h 0 WITHVALUES"), Reply::Array(vec![]));
        assert_eq!(k.run("HRANDFIELD nokey 5"), Reply::Array(vec![]));
        assert_eq!(k.run("HRANDFIELD nokey 5 withvalues"), Reply::Array(vec![]));
        // A count covering the hash returns it all, in order.
        assert_eq!(k.run("HRANDFIELD h 3"), bulks(&["a", "b", "c"]));
        assert_eq!(k.run("HRANDFIELD h 9223372036854775807"), bulks(&["a", "b", "c"]));
        assert_eq!(k.run("HRANDFIELD h 10 WITHVALUES"), bulks(&["a", "1", "b", "2", "c", "3"]));
        for _ in 0..20 {
            let got = texts(&k.run("HRANDFIELD h 2"));
            assert_eq!(got.len(), 2);
            assert_ne!(got[0], got[1]);
        }
        // Negative: exactly |count| picks, repeats allowed.
        let got = texts(&k.run("HRANDFIELD h -50"));
        assert_eq!(got.len(), 50);
        assert!(got.iter().all(|f| ["a", "b", "c"].contains(&f.as_str())));
        let with = texts(&k.run("HRANDFIELD h -5 WITHVALUES"));
        assert_eq!(with.len(), 10);
        for pair in with.chunks(2) {
            let expected = match pair[0].as_str() {
                "a" => "1",
                "b" => "2",
                _ => "3",
            };
            assert_eq!(pair[1], expected);
        }
        // RESP3: pairs are nested arrays.
        k.proto = Protocol::Resp3;
        assert_eq!(
            k.run("HRANDFIELD h 3 WITHVALUES"),
            Reply::Array(vec![bulks(&["a", "1"]), bulks(&["b", "2"]), bulks(&["c", "3"])])
        );
        let Reply::Array(pairs) = k.run("HRANDFIELD h -4 WITHVALUES") else { panic!() };
        assert_eq!(pairs.len(), 4);
        assert!(pairs.iter().all(|p| matches!(p, Reply::Array(v) if v.len() == 2)));
        assert_eq!(texts(&k.run("HRANDFIELD h 2")).len(), 2);
    }

    #[test]
    fn hrandfield_errors() {
        let mut k = Kit::new();
        k.run("HSET h a 1 b 2 c 3");
        k.run("SET str x");
        assert_eq!(k.run("HRANDFIELD h 1 WITHVALUE"), err(SYNTAX));
        assert_eq!(k.run("HRANDFIELD h 1 WITHVALUES x"), err(SYNTAX));
        assert_eq!(k.run("HRANDFIELD nokey 1 foo"), err(SYNTAX));
        assert_eq!(k.run("HRANDFIELD str 1 foo"), err(SYNTAX));
        // The count is parsed before the syntax check and before the key is looked at.
        assert_eq!(k.run("HRANDFIELD h x foo"), err(NOT_INT));
        assert_eq!(k.run("HRANDFIELD str x"), err(NOT_INT));
        assert_eq!(k.run("HRANDFIELD h 1.5"), err(NOT_INT));
        assert_eq!(k.run("HRANDFIELD str 1"), err(WRONGTYPE));
        assert_eq!(
            k.run("HRANDFIELD h -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(k.run("HRANDFIELD h 9223372036854775807 WITHVALUES"), err("ERR value is out of range"));
        assert_eq!(k.run("HRANDFIELD h 4611686018427387904 WITHVALUES"), err("ERR value is out of range"));
        // Moon's guard against replies that cannot fit in memory (Redis would try and be OOM-killed).
        assert_eq!(k.run("HRANDFIELD h -4611686018427387903"), err("ERR value is out of range"));
        assert_eq!(k.run(&format!("HRANDFIELD h -{}", MAX_REPEATED_RANDOM + 1)), err("ERR value is out of range"));
    }

    #[test]
    fn hrandfield_on_a_table() {
        let mut k = Kit::new();
        k.cfg.hash_max_listpack_entries = 128;
        for i in 0..300 {
            k.run(&format!("HSET h f{i} v{i}"));
        }
        assert_eq!(encoding(&k, "h"), "hashtable");
        for n in [1, 10, 99, 100, 101, 250, 299] {
            let got = texts(&k.run(&format!("HRANDFIELD h {n} WITHVALUES")));
            let fields: HashSet<_> = got.chunks(2).map(|p| p[0].clone()).collect();
            assert_eq!(fields.len(), n, "count {n}");
            assert!(got.chunks(2).all(|p| p[1] == format!("v{}", &p[0][1..])));
        }
        assert_eq!(sorted(&k.run("HRANDFIELD h 1000")).len(), 300);
        assert_eq!(texts(&k.run("HRANDFIELD h -1000")).len(), 1000);
    }

    #[test]
    fn scan_cursor_parsing() {
        assert_eq!(parse_scan_cursor(b"0"), Ok(0));
        assert_eq!(parse_scan_cursor(b""), Ok(0));
        assert_eq!(parse_scan_cursor(b"+7"), Ok(7));
        assert_eq!(parse_scan_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_scan_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_scan_cursor(b"-18446744073709551615"), Ok(1));
        for bad in [&b"18446744073709551616"[..], b" 1", b"1 ", b"x", b"1x", b"-", b"+", b"0x10"] {
            assert_eq!(parse_scan_cursor(bad), Err(Reply::err("ERR invalid cursor")), "{bad:?}");
        }
    }

    #[test]
    fn hscan_small_and_errors() {
        let mut k = Kit::new();
        k.run("HSET h a 1 b 2 ab 3");
        let all = Reply::Array(vec![bulk("0"), bulks(&["a", "1", "b", "2", "ab", "3"])]);
        assert_eq!(k.run("HSCAN h 0"), all);
        // A listpack ignores the cursor and the count.
        assert_eq!(k.run("HSCAN h 5 COUNT 1"), all);
        assert_eq!(k.run("HSCAN h -1"), all);
        assert_eq!(k.run("HSCAN h 0 MATCH a*"), Reply::Array(vec![bulk("0"), bulks(&["a", "1", "ab", "3"])]));
        assert_eq!(k.run("HSCAN h 0 match * count 1"), all);
        assert_eq!(
            k.run("HSCAN h 0 COUNT 1 COUNT 2 MATCH a* MATCH b*"),
            Reply::Array(vec![bulk("0"), bulks(&["b", "2"])])
        );
        assert_eq!(k.run("HSCAN nokey 0"), Reply::Array(vec![bulk("0"), Reply::Array(vec![])]));
        assert_eq!(k.run("HSCAN nokey 0 COUNT 0"), Reply::Array(vec![bulk("0"), Reply::Array(vec![])]));
        assert_eq!(k.run("HSCAN h x"), err("ERR invalid cursor"));
        assert_eq!(k.run("HSCAN h 18446744073709551616"), err("ERR invalid cursor"));
        assert_eq!(k.run("HSCAN h 0 COUNT 0"), err(SYNTAX));
        assert_eq!(k.run("HSCAN h 0 COUNT -1"), err(SYNTAX));
        assert_eq!(k.run("HSCAN h 0 COUNT x"), err(NOT_INT));
        assert_eq!(k.run("HSCAN h 0 MATCH"), err(SYNTAX));
        assert_eq!(k.run("HSCAN h 0 TYPE string"), err(SYNTAX));
        assert_eq!(k.run("HSCAN h 0 NOVALUES"), err(SYNTAX));
        k.run("SET str x");
        assert_eq!(k.run("HSCAN str x"), err("ERR invalid cursor"));
        assert_eq!(k.run("HSCAN str 0 COUNT 0"), err(WRONGTYPE));
    }

    fn scan_once(k: &mut Kit, key: &str, cursor: &str, count: usize) -> (String, Vec<String>) {
        let r = k.run(&format!("HSCAN {key} {cursor} COUNT {count}"));
        let Reply::Array(parts) = r else { panic!() };
        let Reply::Bulk(c) = &parts[0] else { panic!() };
        (String::from_utf8_lossy(c).into_owned(), texts(&parts[1]))
    }

    #[test]
    fn hscan_table_returns_every_field_while_the_hash_grows() {
        let mut k = Kit::new();
        for i in 0..1000 {
            k.run(&format!("HSET h f{i} v{i}"));
        }
        assert_eq!(encoding(&k, "h"), "hashtable");
        let (mut cursor, mut seen, mut added, mut calls) = ("0".to_string(), BTreeSet::new(), 1000, 0);
        loop {
            let (next, items) = scan_once(&mut k, "h", &cursor, 10);
            calls += 1;
            for p in items.chunks(2) {
                assert_eq!(p[1], format!("v{}", &p[0][1..]));
                seen.insert(p[0].clone());
            }
            for _ in 0..30 {
                k.run(&format!("HSET h f{added} v{added}"));
                added += 1;
            }
            if next == "0" {
                break;
            }
            cursor = next;
            assert!(calls < 100_000);
        }
        assert!(calls > 10, "a table is scanned in several steps");
        assert!((0..1000).all(|i| seen.contains(&format!("f{i}"))));
        // MATCH filters after the step: some steps may return nothing.
        let (_, items) = scan_once(&mut k, "h", "0", 100_000);
        assert_eq!(items.len(), 2 * added);
        let r = k.run("HSCAN h 0 MATCH f999 COUNT 100000");
        assert_eq!(r, Reply::Array(vec![bulk("0"), bulks(&["f999", "v999"])]));
    }

    #[test]
    fn hscan_table_while_fields_are_deleted() {
        let mut k = Kit::new();
        for i in 0..2000 {
            k.run(&format!("HSET h f{i} v"));
        }
        let (mut cursor, mut seen) = ("0".to_string(), BTreeSet::new());
        let mut next_del = 1000;
        loop {
            let (next, items) = scan_once(&mut k, "h", &cursor, 20);
            seen.extend(items.chunks(2).map(|p| p[0].clone()));
            // Deleting fields shrinks the table under the cursor; fields 0..1000 stay throughout.
            for _ in 0..40 {
                if next_del < 2000 {
                    k.run(&format!("HDEL h f{next_del}"));
                    next_del += 1;
                }
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert!((0..1000).all(|i| seen.contains(&format!("f{i}"))));
    }

    /// Fills `key` up to `hash-max-listpack-entries` fields, checks it is still a listpack, adds one more.
    fn cross_entry_threshold(k: &mut Kit, key: &str) {
        let max = k.cfg.hash_max_listpack_entries;
        let fields: Vec<String> = (0..max).flat_map(|i| [format!("f{i}"), "v".to_string()]).collect();
        let mut args: Vec<&[u8]> = vec![b"HSET", key.as_bytes()];
        args.extend(fields.iter().map(|f| f.as_bytes()));
        assert_eq!(k.run_args(&args), Reply::Int(max as i64));
        assert_eq!(encoding(k, key), "listpack");
        k.run(&format!("HSET {key} f{} again", max - 1));
        assert_eq!(encoding(k, key), "listpack");
        k.run(&format!("HSET {key} f{max} v"));
        assert_eq!(encoding(k, key), "hashtable");
        assert_eq!(k.run(&format!("HLEN {key}")), Reply::Int(max as i64 + 1));
    }

    #[test]
    fn encoding_thresholds() {
        let mut k = Kit::new();
        // Redis 7.0's built-in default (what `CONFIG GET hash-max-listpack-entries` says without a config file).
        assert_eq!(k.cfg.hash_max_listpack_entries, 512);
        cross_entry_threshold(&mut k, "big");
        k.cfg.hash_max_listpack_entries = 128;
        cross_entry_threshold(&mut k, "h");
        for i in 0..129 {
            k.run(&format!("HDEL h f{i}"));
            if i == 100 {
                assert_eq!(encoding(&k, "h"), "hashtable", "never converts back");
            }
        }
        assert!(!exists(&k, "h"));

        let (v64, v65) = ("x".repeat(64), "x".repeat(65));
        k.run(&format!("HSET v a {v64}"));
        k.run(&format!("HSET v {v64} 1"));
        assert_eq!(encoding(&k, "v"), "listpack");
        k.run(&format!("HSET v b {v65}"));
        assert_eq!(encoding(&k, "v"), "hashtable");
        k.run(&format!("HSET f {v65} 1"));
        assert_eq!(encoding(&k, "f"), "hashtable");
        k.run(&format!("HMSET m a 1 b {v65}"));
        assert_eq!(encoding(&k, "m"), "hashtable");
        // HINCRBY / HINCRBYFLOAT with a long field name convert too.
        k.run(&format!("HINCRBY i {v65} 1"));
        assert_eq!(encoding(&k, "i"), "hashtable");
        k.run(&format!("HINCRBYFLOAT fl {v65} 1.5"));
        assert_eq!(encoding(&k, "fl"), "hashtable");
        // HSETNX on an existing field writes nothing and so converts nothing.
        k.run("HSET n a 1");
        assert_eq!(k.run(&format!("HSETNX n a {v65}")), Reply::Int(0));
        assert_eq!(encoding(&k, "n"), "listpack");
        assert_eq!(k.run(&format!("HSETNX n {v65} 1")), Reply::Int(1));
        assert_eq!(encoding(&k, "n"), "hashtable");
        // The table form answers like the listpack did.
        assert_eq!(k.run(&format!("HGET v {v64}")), bulk("1"));
        assert_eq!(k.run("HSTRLEN v b"), Reply::Int(65));
        assert_eq!(sorted(&k.run("HKEYS v")), vec!["a".to_string(), "b".into(), v64.clone()]);
        assert_eq!(k.run("HDEL v a b"), Reply::Int(2));
        assert_eq!(k.run("HLEN v"), Reply::Int(1));
    }

    #[test]
    fn thresholds_follow_the_config() {
        let mut k = Kit::new();
        k.cfg.hash_max_listpack_entries = 2;
        k.cfg.hash_max_listpack_value = 3;
        k.run("HSET h a 1 b 2");
        assert_eq!(encoding(&k, "h"), "listpack");
        k.run("HSET h c 3");
        assert_eq!(encoding(&k, "h"), "hashtable");
        k.run("HSET g a 1234");
        assert_eq!(encoding(&k, "g"), "hashtable");
    }

    /// An HSET of many pairs ends as the same hash, in the same encoding, as the same pairs set one at a time
    /// (it may convert to a hashtable before setting, when the sets would convert it anyway).
    #[test]
    fn hset_of_many_pairs_matches_one_at_a_time() {
        let mut rng = fastrand::Rng::with_seed(4);
        let long = "l".repeat(65);
        for round in 0..600 {
            let mut k = Kit::new();
            // Zsets' default limit, so that both sides of it come up often.
            k.cfg.hash_max_listpack_entries = 128;
            let start = rng.usize(..140);
            for i in 0..start {
                for key in ["one", "many"] {
                    k.run(&format!("HSET {key} f{i} {i}"));
                }
            }
            let n = [1, 2, 5, 10, 20, 60, 130, 200][rng.usize(..8)];
            let spread = [1, 5, 100, 300][rng.usize(..4)];
            let pairs: Vec<String> = (0..n)
                .map(|_| {
                    let v = if rng.u8(..60) == 0 { long.clone() } else { rng.u16(..).to_string() };
                    format!("f{} {v}", rng.usize(..spread))
                })
                .collect();
            let many = k.run(&format!("HSET many {}", pairs.join(" ")));
            let added: i64 =
                pairs.iter().map(|p| if let Reply::Int(a) = k.run(&format!("HSET one {p}")) { a } else { 0 }).sum();
            let what = format!("round {round}: {start} fields, HSET of {n} pairs over {spread}");
            assert_eq!(many, Reply::Int(added), "{what}");
            let all = |k: &mut Kit, key: &str| match k.run(&format!("HGETALL {key}")) {
                Reply::Map(pairs) => pairs.into_iter().map(|(f, v)| format!("{f:?}={v:?}")).collect::<BTreeSet<_>>(),
                other => panic!("{other:?}"),
            };
            assert_eq!(all(&mut k, "one"), all(&mut k, "many"), "{what}");
            assert_eq!(encoding(&k, "one"), encoding(&k, "many"), "{what}");
        }
    }
}
