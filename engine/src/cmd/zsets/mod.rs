//! Sorted-set commands (the zsets family), and the pops the server runs for BZPOPMIN, BZPOPMAX and BZMPOP.
//!
//! - this file: the command table, argument and reply helpers, the single-key commands (ZADD, ZINCRBY,
//!   ZREM, ZSCORE, ZMSCORE, ZCARD, ZRANK, ZREVRANK, ZRANDMEMBER, ZSCAN) and the pops (ZPOPMIN, ZPOPMAX,
//!   ZMPOP, and [`serve_bzpop`] / [`serve_bzmpop`] / [`parse_mpop`] for the blocking forms);
//! - [`range`]: rank, score and lex ranges: ZRANGE and its older forms, ZRANGESTORE, ZCOUNT, ZLEXCOUNT,
//!   ZREMRANGEBYRANK/SCORE/LEX;
//! - [`store`]: ZUNION, ZINTER, ZDIFF (and their STORE forms) and ZINTERCARD.
//!
//! Scores are replied as [`Reply::Double`] (RESP2 prints C's `%.17g`, as Redis 7.0). In RESP3, lists of
//! (member, score) are arrays of two-element arrays, as Redis 7.0 sends them.

mod range;
mod store;
#[cfg(test)]
mod tests;

use super::args;
use super::ctx::Ctx;
use super::errors::{NOT_FLOAT, NOT_INT, SYNTAX};
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine, KeySpec};
use super::CmdResult;
use crate::glob::glob_match;
use crate::resp::{format_double_g17, Protocol, Reply};
use crate::types::zset::Limits;
use crate::util::eq_ic;
use bytes::Bytes;
use std::collections::HashSet;

const WRITE_FAST: &[&str] = &["write", "sortedset", "fast"];
const WRITE_SLOW: &[&str] = &["write", "sortedset", "slow"];
const READ_FAST: &[&str] = &["read", "sortedset", "fast"];
const READ_SLOW: &[&str] = &["read", "sortedset", "slow"];
const NUMKEYS_AT_1: KeySpec = KeySpec::Numkeys { numkeys_at: 1, extra: None };
const DEST_AND_NUMKEYS_AT_2: KeySpec = KeySpec::Numkeys { numkeys_at: 2, extra: Some(1) };

pub static COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(zadd)),
    spec("zincrby", 4, WRITE | DENYOOM | FAST, 1, 1, 1, WRITE_FAST, Engine(zincrby)),
    spec("zrem", -3, WRITE | FAST, 1, 1, 1, WRITE_FAST, Engine(zrem)),
    spec("zscore", 3, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(zscore)),
    spec("zmscore", -3, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(zmscore)),
    spec("zcard", 2, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(zcard)),
    spec("zcount", 4, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(range::zcount)),
    spec("zlexcount", 4, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(range::zlexcount)),
    spec("zrange", -4, READONLY, 1, 1, 1, READ_SLOW, Engine(range::zrange)),
    spec("zrangestore", -5, WRITE | DENYOOM, 1, 2, 1, WRITE_SLOW, Engine(range::zrangestore)),
    spec("zrangebyscore", -4, READONLY, 1, 1, 1, READ_SLOW, Engine(range::zrangebyscore)),
    spec("zrevrangebyscore", -4, READONLY, 1, 1, 1, READ_SLOW, Engine(range::zrevrangebyscore)),
    spec("zrangebylex", -4, READONLY, 1, 1, 1, READ_SLOW, Engine(range::zrangebylex)),
    spec("zrevrangebylex", -4, READONLY, 1, 1, 1, READ_SLOW, Engine(range::zrevrangebylex)),
    spec("zrevrange", -4, READONLY, 1, 1, 1, READ_SLOW, Engine(range::zrevrange)),
    spec("zrank", 3, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(zrank)),
    spec("zrevrank", 3, READONLY | FAST, 1, 1, 1, READ_FAST, Engine(zrevrank)),
    spec("zpopmin", -2, WRITE | FAST, 1, 1, 1, WRITE_FAST, Engine(zpopmin)),
    spec("zpopmax", -2, WRITE | FAST, 1, 1, 1, WRITE_FAST, Engine(zpopmax)),
    spec("zmpop", -4, WRITE, 0, 0, 0, WRITE_SLOW, Engine(zmpop)).with_keys(NUMKEYS_AT_1),
    spec("zrandmember", -2, READONLY, 1, 1, 1, READ_SLOW, Engine(zrandmember)),
    spec("zremrangebyrank", 4, WRITE, 1, 1, 1, WRITE_SLOW, Engine(range::zremrangebyrank)),
    spec("zremrangebyscore", 4, WRITE, 1, 1, 1, WRITE_SLOW, Engine(range::zremrangebyscore)),
    spec("zremrangebylex", 4, WRITE, 1, 1, 1, WRITE_SLOW, Engine(range::zremrangebylex)),
    spec("zunionstore", -4, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(store::zunionstore))
        .with_keys(DEST_AND_NUMKEYS_AT_2),
    spec("zinterstore", -4, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(store::zinterstore))
        .with_keys(DEST_AND_NUMKEYS_AT_2),
    spec("zdiffstore", -4, WRITE | DENYOOM, 1, 1, 1, WRITE_SLOW, Engine(store::zdiffstore))
        .with_keys(DEST_AND_NUMKEYS_AT_2),
    spec("zunion", -3, READONLY, 0, 0, 0, READ_SLOW, Engine(store::zunion)).with_keys(NUMKEYS_AT_1),
    spec("zinter", -3, READONLY, 0, 0, 0, READ_SLOW, Engine(store::zinter)).with_keys(NUMKEYS_AT_1),
    spec("zdiff", -3, READONLY, 0, 0, 0, READ_SLOW, Engine(store::zdiff)).with_keys(NUMKEYS_AT_1),
    spec("zintercard", -3, READONLY, 0, 0, 0, READ_SLOW, Engine(store::zintercard)).with_keys(NUMKEYS_AT_1),
    spec("zscan", -3, READONLY, 1, 1, 1, READ_SLOW, Engine(zscan)),
];

/// Owned (member, score) entries, e.g. a computed result in (score, member) order.
type Entries = Vec<(Box<[u8]>, f64)>;

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------------------------------------
// Numbers as Redis reads them.

/// C's `strtod` on `s`: `(value, bytes consumed, ERANGE)`, or `None` when nothing converts. Leading
/// whitespace, a sign, `inf`/`infinity`/`nan` in any case, decimal and hexadecimal forms, as glibc.
fn strtod(s: &[u8]) -> Option<(f64, usize, bool)> {
    let mut i = s.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count();
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
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    let starts = |word: &[u8]| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"infinity") {
        return Some((sign(f64::INFINITY), i + 8, false));
    }
    if starts(b"inf") {
        return Some((sign(f64::INFINITY), i + 3, false));
    }
    if starts(b"nan") {
        let mut end = i + 3;
        if s.get(end) == Some(&b'(') {
            let inner = s[end + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            if s.get(end + 1 + inner) == Some(&b')') {
                end += inner + 2;
            }
        }
        return Some((f64::NAN, end, false));
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        return Some(match strtod_hex(&rest[2..]) {
            Some((v, n, erange)) => (sign(v), i + 2 + n, erange),
            // "0x" with no hex digits: only the "0" converts.
            None => (sign(0.0), i + 1, false),
        });
    }
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(i);
    let mut j = i + int;
    let mut frac = 0;
    if s.get(j) == Some(&b'.') {
        frac = digits(j + 1);
        if int + frac > 0 {
            j += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    let nonzero = s[i..j].iter().any(|c| (b'1'..=b'9').contains(c));
    if matches!(s.get(j), Some(b'e' | b'E')) {
        let k = j + 1 + usize::from(matches!(s.get(j + 1), Some(b'+' | b'-')));
        let exp = digits(k);
        if exp > 0 {
            j = k + exp;
        }
    }
    let v: f64 = std::str::from_utf8(&s[i..j]).ok()?.parse().ok()?;
    Some((sign(v), j, v.is_infinite() || (v == 0.0 && nonzero)))
}

/// The part of a hexadecimal float after "0x": `(value, bytes consumed, ERANGE)`.
fn strtod_hex(s: &[u8]) -> Option<(f64, usize, bool)> {
    let hex = |c: u8| (c as char).to_digit(16);
    let (mut mant, mut exp, mut any, mut nonzero) = (0u64, 0i64, false, false);
    let mut j = 0;
    let mut seen_point = false;
    while j < s.len() {
        if let Some(d) = hex(s[j]) {
            any = true;
            nonzero |= d != 0;
            if mant >> 60 == 0 {
                mant = mant * 16 + u64::from(d);
                if seen_point {
                    exp -= 4;
                }
            } else if !seen_point {
                exp += 4;
            }
        } else if s[j] == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        j += 1;
    }
    if !any {
        return None;
    }
    if matches!(s.get(j), Some(b'p' | b'P')) {
        let k = j + 1 + usize::from(matches!(s.get(j + 1), Some(b'+' | b'-')));
        let n = s[k..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n > 0 {
            let text = std::str::from_utf8(&s[j + 1..k + n]).ok()?;
            let e: i64 = text.parse().unwrap_or(if s[j + 1] == b'-' { -100_000 } else { 100_000 });
            exp = exp.saturating_add(e.clamp(-100_000, 100_000));
            j = k + n;
        }
    }
    let e = exp.clamp(-4000, 4000) as i32;
    let v = mant as f64 * 2f64.powi(e / 2) * 2f64.powi(e - e / 2);
    Some((v, j, v.is_infinite() || (v == 0.0 && nonzero)))
}

/// C strings end at the first NUL; Redis's range parsers look no further.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&c| c == 0).map_or(s, |n| &s[..n])
}

/// A score or increment as Redis's `getDoubleFromObject` reads it: all of the argument, no leading space,
/// not NaN, not out of range.
pub(crate) fn parse_score(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|c| c.is_ascii_whitespace() || *c == 0x0b) {
        return None;
    }
    match strtod(arg) {
        Some((v, n, erange)) if n == arg.len() && !erange && !v.is_nan() => Some(v),
        _ => None,
    }
}

fn score_arg(arg: &[u8]) -> CmdResult<f64> {
    parse_score(arg).ok_or_else(|| Reply::err(NOT_FLOAT))
}

/// A range bound as `strtod` reads it (leading space allowed, up to a NUL, not NaN).
fn parse_range_float(arg: &[u8]) -> Option<f64> {
    let s = c_str(arg);
    if s.is_empty() {
        return Some(0.0);
    }
    match strtod(s) {
        Some((v, n, _)) if n == s.len() && !v.is_nan() => Some(v),
        _ => None,
    }
}

/// Redis's `getRangeLongFromObjectOrReply`: an integer within `min..=max`; `msg` replaces both errors.
fn ranged_int(arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> CmdResult<i64> {
    let v = match (args::int(arg), msg) {
        (Ok(v), _) => v,
        (Err(_), Some(m)) => return Err(Reply::err(m)),
        (Err(e), None) => return Err(e),
    };
    if v < min || v > max {
        return Err(Reply::err(match msg {
            Some(m) => m.to_owned(),
            None => format!("ERR value is out of range, value must between {min} and {max}"),
        }));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------------------
// Replies.

fn member(m: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(m))
}

/// A list of members, with their scores when asked: flat in RESP2, [member, score] pairs in RESP3.
fn entries_reply<'a>(proto: Protocol, items: impl Iterator<Item = (&'a [u8], f64)>, withscores: bool) -> Reply {
    Reply::Array(if !withscores {
        items.map(|(m, _)| member(m)).collect()
    } else if proto == Protocol::Resp3 {
        items.map(|(m, s)| Reply::Array(vec![member(m), Reply::Double(s)])).collect()
    } else {
        items.flat_map(|(m, s)| [member(m), Reply::Double(s)]).collect()
    })
}

/// Pairs as nested arrays whatever the protocol (ZMPOP, BZMPOP).
fn nested_pairs(items: &Entries) -> Reply {
    Reply::Array(items.iter().map(|(m, s)| Reply::Array(vec![member(m), Reply::Double(*s)])).collect())
}

// ---------------------------------------------------------------------------------------------------------
// ZADD / ZINCRBY / ZREM and lookups.

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| zadd_generic(ctx, a, false))
}

/// ZINCRBY key increment member (ZADD INCR without options)
pub fn zincrby(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| zadd_generic(ctx, a, true))
}

fn zadd_generic(ctx: &mut Ctx, a: &[Bytes], zincrby: bool) -> CmdResult {
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) = (false, false, false, zincrby, false, false);
    let mut i = 2;
    while !zincrby && i < a.len() {
        let o = &a[i];
        if eq_ic(o, "nx") {
            nx = true;
        } else if eq_ic(o, "xx") {
            xx = true;
        } else if eq_ic(o, "ch") {
            ch = true;
        } else if eq_ic(o, "incr") {
            incr = true;
        } else if eq_ic(o, "gt") {
            gt = true;
        } else if eq_ic(o, "lt") {
            lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = &a[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(Reply::err(SYNTAX));
    }
    if nx && xx {
        return Err(Reply::err("ERR XX and NX options at the same time are not compatible"));
    }
    if (gt || lt) && (nx || (gt && lt)) {
        return Err(Reply::err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if incr && pairs.len() > 2 {
        return Err(Reply::err("ERR INCR option supports a single increment-element pair"));
    }
    // Every score is checked before anything changes: the command applies entirely or not at all.
    let scores = pairs.chunks(2).map(|p| score_arg(&p[0])).collect::<CmdResult<Vec<f64>>>()?;
    let key = &a[1];
    let lim = Limits::from_config(ctx.cfg);
    if ctx.write_zset(key)?.is_none() && xx {
        return Ok(if incr { Reply::Nil } else { Reply::Int(0) });
    }
    let z = ctx.zset_or_create(key)?;
    if !xx && !incr {
        z.prepare_for(pairs.chunks(2).map(|p| &p[1][..]), lim);
    }
    let (mut added, mut updated, mut processed, mut last, mut nan) = (0i64, 0i64, 0, 0.0, false);
    for (pair, &score) in pairs.chunks(2).zip(&scores) {
        let m = &pair[1];
        match z.score(m) {
            Some(_) if nx => {}
            Some(cur) => {
                let new = if incr { score + cur } else { score };
                if new.is_nan() {
                    nan = true;
                    break;
                }
                if (lt && new >= cur) || (gt && new <= cur) {
                    continue;
                }
                processed += 1;
                last = new;
                if new != cur {
                    z.insert(m, new, lim);
                    updated += 1;
                }
            }
            None if xx => {}
            None => {
                z.insert(m, score, lim);
                added += 1;
                processed += 1;
                last = score;
            }
        }
    }
    ctx.remove_if_empty(key);
    if nan {
        return Err(Reply::err("ERR resulting score is not a number (NaN)"));
    }
    ctx.dirty += (added + updated) as u64;
    Ok(match (incr, processed) {
        (true, 0) => Reply::Nil,
        (true, _) => Reply::Double(last),
        (false, _) => Reply::Int(if ch { added + updated } else { added }),
    })
}

/// ZREM key member [member ...]
pub fn zrem(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let Some(z) = ctx.write_zset(&a[1])? else {
            return Ok(Reply::Int(0));
        };
        let mut removed = 0;
        for m in &a[2..] {
            if z.remove(m).is_some() {
                removed += 1;
                if z.is_empty() {
                    break;
                }
            }
        }
        ctx.remove_if_empty(&a[1]);
        ctx.dirty += removed;
        Ok(Reply::Int(removed as i64))
    })
}

/// ZSCORE key member
pub fn zscore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(ctx.read_zset(&a[1])?.and_then(|z| z.score(&a[2])).map_or(Reply::Nil, Reply::Double)))
}

/// ZMSCORE key member [member ...]
pub fn zmscore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let z = ctx.read_zset(&a[1])?;
        let score = |m: &Bytes| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double);
        Ok(Reply::Array(a[2..].iter().map(score).collect()))
    })
}

/// ZCARD key
pub fn zcard(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(ctx.read_zset(&a[1])?.map_or(0, |z| z.len()) as i64)))
}

/// ZRANK key member
pub fn zrank(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| rank_generic(ctx, a, false))
}

/// ZREVRANK key member
pub fn zrevrank(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| rank_generic(ctx, a, true))
}

fn rank_generic(ctx: &mut Ctx, a: &[Bytes], rev: bool) -> CmdResult {
    let Some(z) = ctx.read_zset(&a[1])? else {
        return Ok(Reply::Nil);
    };
    Ok(match z.rank(&a[2]) {
        Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
        Some(r) => Reply::Int(r as i64),
        None => Reply::Nil,
    })
}

// ---------------------------------------------------------------------------------------------------------
// Pops.

/// ZPOPMIN key [count]
pub fn zpopmin(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| zpop(ctx, a, false))
}

/// ZPOPMAX key [count]
pub fn zpopmax(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| zpop(ctx, a, true))
}

const POSITIVE: &str = "ERR value is out of range, must be positive";

fn zpop(ctx: &mut Ctx, a: &[Bytes], max: bool) -> CmdResult {
    if a.len() > 3 {
        return Err(Reply::err(SYNTAX));
    }
    let count = match a.get(2) {
        Some(c) => Some(ranged_int(c, 0, i64::MAX, Some(POSITIVE))? as u64),
        None => None,
    };
    let proto = ctx.proto;
    let Some(popped) = pop_from(ctx, &a[1], max, count.unwrap_or(1))? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let items = popped.iter().map(|(m, s)| (&m[..], *s));
    // Without a count the reply is one flat [member, score], in RESP3 too.
    Ok(entries_reply(if count.is_none() { Protocol::Resp2 } else { proto }, items, true))
}

/// Pops up to `count` entries from `key`: `None` when the key does not exist. Counts the change and deletes
/// the key once empty; logging is the caller's.
fn pop_from(ctx: &mut Ctx, key: &[u8], max: bool, count: u64) -> CmdResult<Option<Entries>> {
    let Some(z) = ctx.write_zset(key)? else {
        return Ok(None);
    };
    let n = count.min(z.len() as u64) as usize;
    let popped: Vec<_> = (0..n).map_while(|_| z.pop(max)).collect();
    ctx.remove_if_empty(key);
    ctx.dirty += popped.len() as u64;
    Ok(Some(popped))
}

/// What ZMPOP and BZMPOP take after their numkeys: the keys, MIN or MAX, and COUNT (1 when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct MpopArgs {
    pub keys: Vec<Bytes>,
    pub max: bool,
    pub count: u64,
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` starting at `a[numkeys_at]` (1 for ZMPOP, 2 for
/// BZMPOP, whose timeout the server parses), with Redis 7.0's errors.
pub fn parse_mpop(a: &[Bytes], numkeys_at: usize) -> CmdResult<MpopArgs> {
    let numkeys = ranged_int(&a[numkeys_at], 1, i64::MAX, Some("ERR numkeys should be greater than 0"))? as u64;
    let first = numkeys_at + 1;
    let where_at = (first as u64).saturating_add(numkeys);
    let Some(dir) = usize::try_from(where_at).ok().and_then(|w| a.get(w)) else {
        return Err(Reply::err(SYNTAX));
    };
    let where_at = where_at as usize;
    let max = if eq_ic(dir, "min") {
        false
    } else if eq_ic(dir, "max") {
        true
    } else {
        return Err(Reply::err(SYNTAX));
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < a.len() {
        if count.is_none() && eq_ic(&a[j], "count") && j + 1 < a.len() {
            count = Some(ranged_int(&a[j + 1], 1, i64::MAX, Some("ERR count should be greater than 0"))? as u64);
            j += 2;
        } else {
            return Err(Reply::err(SYNTAX));
        }
    }
    Ok(MpopArgs { keys: a[first..where_at].to_vec(), max, count: count.unwrap_or(1) })
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let p = parse_mpop(a, 1)?;
        for key in &p.keys {
            if let Some(r) = serve_bzmpop(ctx, key, p.max, p.count)? {
                return Ok(r);
            }
        }
        Ok(Reply::NilArray)
    })
}

fn pop_command(max: bool) -> Bytes {
    Bytes::from_static(if max { b"ZPOPMAX" } else { b"ZPOPMIN" })
}

/// BZPOPMIN / BZPOPMAX once `key` may hold data (when the command runs, or when a client blocked on the key
/// is woken). If `key` holds a sorted set, pops its lowest (highest, `max`) member and returns the reply
/// `[key, member, score]`; the pop is logged as `ZPOPMIN key` / `ZPOPMAX key`, as Redis 7.0 logs it.
/// `Ok(None)`: no such key, try the next key or keep blocking. `Err`: the error reply (WRONGTYPE).
pub fn serve_bzpop(ctx: &mut Ctx, key: &Bytes, max: bool) -> CmdResult<Option<Reply>> {
    let Some(popped) = pop_from(ctx, key, max, 1)? else {
        return Ok(None);
    };
    let Some((m, s)) = popped.into_iter().next() else {
        return Ok(None);
    };
    ctx.also_propagate(vec![pop_command(max), key.clone()]);
    Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), member(&m), Reply::Double(s)])))
}

/// BZMPOP (and ZMPOP) for one key: as [`serve_bzpop`] with up to `count` members; the reply is
/// `[key, [[member, score], ...]]` and the pop is logged as `ZPOPMIN key count` / `ZPOPMAX key count`.
pub fn serve_bzmpop(ctx: &mut Ctx, key: &Bytes, max: bool, count: u64) -> CmdResult<Option<Reply>> {
    let Some(popped) = pop_from(ctx, key, max, count)? else {
        return Ok(None);
    };
    if popped.is_empty() {
        return Ok(None);
    }
    ctx.also_propagate(vec![pop_command(max), key.clone(), Bytes::from(count.to_string())]);
    Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), nested_pairs(&popped)])))
}

// ---------------------------------------------------------------------------------------------------------
// ZRANDMEMBER and ZSCAN.

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let proto = ctx.proto;
        if a.len() == 2 {
            let Some(z) = ctx.read_zset(&a[1])? else {
                return Ok(Reply::Nil);
            };
            let (m, _) = z.get_by_rank(fastrand::usize(..z.len())).expect("a stored zset is not empty");
            return Ok(member(m));
        }
        let l = ranged_int(&a[2], -i64::MAX, i64::MAX, None)?;
        let withscores = match a.len() {
            3 => false,
            4 if eq_ic(&a[3], "withscores") => true,
            _ => return Err(Reply::err(SYNTAX)),
        };
        // Each entry with its score takes two reply slots.
        if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
            return Err(Reply::err("ERR value is out of range"));
        }
        let Some(z) = ctx.read_zset(&a[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let len = z.len();
        let ranks: Vec<usize> = if l < 0 {
            // Repeats allowed: the reply is as long as asked.
            (0..l.unsigned_abs()).map(|_| fastrand::usize(..len)).collect()
        } else if l as u64 >= len as u64 {
            // The whole set, walked from the top as Redis 7.0 walks it here.
            (0..len).rev().collect()
        } else {
            sample_distinct(len, l as usize)
        };
        let items = ranks.into_iter().map(|r| z.get_by_rank(r).expect("rank below len"));
        Ok(entries_reply(proto, items, withscores))
    })
}

/// `count < n` distinct ranks below `n`, in random order.
fn sample_distinct(n: usize, count: usize) -> Vec<usize> {
    if count * 4 >= n {
        let mut all: Vec<usize> = (0..n).collect();
        fastrand::shuffle(&mut all);
        all.truncate(count);
        return all;
    }
    // Floyd's algorithm: O(count) draws, each rank equally likely.
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for j in n - count..n {
        let t = fastrand::usize(..=j);
        let pick = if seen.insert(t) { t } else { j };
        seen.insert(pick);
        out.push(pick);
    }
    fastrand::shuffle(&mut out);
    out
}

/// The SCAN cursor as Redis's `parseScanCursorOrReply` reads it (`strtoul`: a sign is allowed, a negative
/// number wraps around).
fn parse_cursor(arg: &[u8]) -> CmdResult<u64> {
    let bad = || Reply::err("ERR invalid cursor");
    let s = c_str(arg);
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if s.is_empty() {
        return Ok(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let v = digits.iter().try_fold(0u64, |v, d| v.checked_mul(10)?.checked_add(u64::from(d - b'0'))).ok_or_else(bad)?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
pub fn zscan(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cursor = parse_cursor(&a[2])?;
        let scan_reply = |next: u64, items: Vec<Reply>| {
            Reply::Array(vec![Reply::Bulk(Bytes::from(next.to_string())), Reply::Array(items)])
        };
        let Some(z) = ctx.read_zset(&a[1])? else {
            return Ok(scan_reply(0, Vec::new()));
        };
        let (mut count, mut pattern) = (10i64, None);
        let mut i = 3;
        while i < a.len() {
            if eq_ic(&a[i], "count") && i + 1 < a.len() {
                count = args::int(&a[i + 1]).map_err(|_| Reply::err(NOT_INT))?;
                if count < 1 {
                    return Err(Reply::err(SYNTAX));
                }
            } else if eq_ic(&a[i], "match") && i + 1 < a.len() {
                pattern = Some(&a[i + 1][..]).filter(|p| *p != b"*");
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 2;
        }
        // Like Redis, COUNT bounds what is collected; MATCH filters afterwards.
        let mut found: Vec<(Bytes, f64)> = Vec::new();
        let collect = |found: &mut Vec<_>, m: &[u8], s| found.push((Bytes::copy_from_slice(m), s));
        let mut next = z.scan(cursor, |m, s| collect(&mut found, m, s));
        let mut budget = count.saturating_mul(10);
        while next != 0 && budget > 0 && (found.len() as u64) < count as u64 {
            budget -= 1;
            next = z.scan(next, |m, s| collect(&mut found, m, s));
        }
        let items = found
            .into_iter()
            .filter(|(m, _)| pattern.is_none_or(|p| glob_match(p, m, false)))
            .flat_map(|(m, s)| [Reply::Bulk(m), Reply::Bulk(Bytes::from(format_double_g17(s)))])
            .collect();
        Ok(scan_reply(next, items))
    })
}
