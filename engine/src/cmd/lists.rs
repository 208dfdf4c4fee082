//! The lists family: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LREM LTRIM LINSERT LPOS
//! LMOVE RPOPLPUSH LMPOP, plus the helpers the server calls to serve blocked clients (BLPOP, BRPOP, BLMPOP,
//! BLMOVE, BRPOPLPUSH are registered by the server): [`pop_for_blocking`], [`lmove_once`], [`parse_mpop`].
//!
//! Propagation follows Redis 7.0: everything is logged as sent except LMPOP, which is logged as
//! `LPOP key n` / `RPOP key n` with the number actually popped; the blocking helpers log the non-blocking
//! forms. A command that changes nothing leaves `dirty` at 0 and so logs nothing.

use super::args;
use super::ctx::Ctx;
use super::errors::{NO_SUCH_KEY, OUT_OF_RANGE, POSITIVE, SYNTAX, WRONGTYPE};
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine, KeySpec};
use super::{arity_error, CmdResult};
use crate::resp::Reply;
use crate::types::{ListValue, Value};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::ops::Range;

const W_FAST: &[&str] = &["write", "list", "fast"];
const W_SLOW: &[&str] = &["write", "list", "slow"];
const R_FAST: &[&str] = &["read", "list", "fast"];
const R_SLOW: &[&str] = &["read", "list", "slow"];

// One line per command reads as a table; rustfmt's default width would explode it.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(lpush)),
    spec("rpush", -3, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(rpush)),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(lpushx)),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(rpushx)),
    spec("lpop", -2, WRITE | FAST, 1, 1, 1, W_FAST, Engine(lpop)),
    spec("rpop", -2, WRITE | FAST, 1, 1, 1, W_FAST, Engine(rpop)),
    spec("llen", 2, READONLY | FAST, 1, 1, 1, R_FAST, Engine(llen)),
    spec("lrange", 4, READONLY, 1, 1, 1, R_SLOW, Engine(lrange)),
    spec("lindex", 3, READONLY, 1, 1, 1, R_SLOW, Engine(lindex)),
    spec("lset", 4, WRITE | DENYOOM, 1, 1, 1, W_SLOW, Engine(lset)),
    spec("lrem", 4, WRITE, 1, 1, 1, W_SLOW, Engine(lrem)),
    spec("ltrim", 4, WRITE, 1, 1, 1, W_SLOW, Engine(ltrim)),
    spec("linsert", 5, WRITE | DENYOOM, 1, 1, 1, W_SLOW, Engine(linsert)),
    spec("lpos", -3, READONLY, 1, 1, 1, R_SLOW, Engine(lpos)),
    spec("lmove", 5, WRITE | DENYOOM, 1, 2, 1, W_SLOW, Engine(lmove)),
    spec("rpoplpush", 3, WRITE | DENYOOM, 1, 2, 1, W_SLOW, Engine(rpoplpush)),
    spec("lmpop", -4, WRITE, 0, 0, 0, W_SLOW, Engine(lmpop))
        .with_keys(KeySpec::Numkeys { numkeys_at: 1, extra: None }),
];

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

fn bulk(v: impl Into<Bytes>) -> Reply {
    Reply::Bulk(v.into())
}

fn bulk_of(v: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(v))
}

/// LEFT / RIGHT (any case): true for LEFT.
pub fn parse_side(arg: &[u8]) -> CmdResult<bool> {
    if eq_ic(arg, "left") {
        Ok(true)
    } else if eq_ic(arg, "right") {
        Ok(false)
    } else {
        Err(Reply::err(SYNTAX))
    }
}

/// A Redis index (negative counts from the tail) as a position in a list of `len`, if it is inside.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 { len.checked_add(index)? } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

fn pop_end(l: &mut ListValue, left: bool) -> Option<Vec<u8>> {
    if left {
        l.pop_front()
    } else {
        l.pop_back()
    }
}

fn push_end(l: &mut ListValue, v: &[u8], left: bool) {
    if left {
        l.push_front(v)
    } else {
        l.push_back(v)
    }
}

fn count_arg(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// LPUSH / RPUSH key element [element ...]
fn lpush(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    push(ctx, a, true, false)
}
fn rpush(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    push(ctx, a, false, false)
}
/// LPUSHX / RPUSHX: only when the list exists.
fn lpushx(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    push(ctx, a, true, true)
}
fn rpushx(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    push(ctx, a, false, true)
}

fn push(ctx: &mut Ctx, a: &[Bytes], left: bool, only_existing: bool) -> Reply {
    run(|| {
        let key = &a[1];
        let list = if only_existing {
            match ctx.write_list(key)? {
                Some(l) => l,
                None => return Ok(Reply::Int(0)),
            }
        } else {
            ctx.list_or_create(key)?
        };
        for v in &a[2..] {
            push_end(list, v, left);
        }
        let len = list.len();
        ctx.dirty += (a.len() - 2) as u64;
        Ok(Reply::Int(len as i64))
    })
}

/// LPOP / RPOP key [count]
fn lpop(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    pop(ctx, a, true)
}
fn rpop(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    pop(ctx, a, false)
}

fn pop(ctx: &mut Ctx, a: &[Bytes], left: bool) -> Reply {
    run(|| {
        if a.len() > 3 {
            return Err(arity_error(if left { "lpop" } else { "rpop" }));
        }
        // Unlike `args::positive`, a non-integer count gets the same error as a negative one here.
        let positive = |c: &Bytes| parse_i64(c).filter(|&n| n >= 0).ok_or_else(|| Reply::err(POSITIVE));
        let count = a.get(2).map(positive).transpose()?;
        let key = &a[1];
        let Some(list) = ctx.write_list(key)? else {
            return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
        };
        let reply = match count {
            None => bulk(pop_end(list, left).unwrap_or_default()),
            // Redis answers before touching the list: nothing changes, nothing is logged.
            Some(0) => return Ok(Reply::Array(Vec::new())),
            Some(n) => Reply::Array(pop_many(list, left, count_arg(n))),
        };
        ctx.dirty += match &reply {
            Reply::Array(items) => items.len() as u64,
            _ => 1,
        };
        ctx.remove_if_empty(key);
        Ok(reply)
    })
}

/// Pops up to `n` elements from one end, as bulk replies.
fn pop_many(l: &mut ListValue, left: bool, n: usize) -> Vec<Reply> {
    let n = n.min(l.len());
    (0..n).filter_map(|_| pop_end(l, left)).map(bulk).collect()
}

/// LLEN key
fn llen(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(ctx.read_list(&a[1])?.map_or(0, |l| l.len() as i64))))
}

/// LRANGE key start stop
fn lrange(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let start = args::int(&a[2])?;
        let end = args::int(&a[3])?;
        let Some(l) = ctx.read_list(&a[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        Ok(Reply::Array(match args::clamp_range(start, end, l.len()) {
            Some((s, e)) => l.range(s, e).map(bulk_of).collect(),
            None => Vec::new(),
        }))
    })
}

/// LINDEX key index: the key is looked up before the index is parsed, as Redis does.
fn lindex(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let Some(l) = ctx.read_list(&a[1])? else {
            return Ok(Reply::Nil);
        };
        let index = args::int(&a[2])?;
        Ok(resolve_index(index, l.len()).and_then(|i| l.get(i)).map_or(Reply::Nil, bulk_of))
    })
}

/// LSET key index element
fn lset(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let Some(l) = ctx.write_list(&a[1])? else {
            return Err(Reply::err(NO_SUCH_KEY));
        };
        let index = args::int(&a[2])?;
        let i = resolve_index(index, l.len()).ok_or_else(|| Reply::err(OUT_OF_RANGE))?;
        l.set(i, &a[3]);
        ctx.dirty += 1;
        Ok(Reply::ok())
    })
}

/// LREM key count element
fn lrem(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let count = args::int(&a[2])?;
        let key = &a[1];
        let Some(l) = ctx.write_list(key)? else {
            return Ok(Reply::Int(0));
        };
        let removed = l.remove_matching(&a[3], count);
        if removed > 0 {
            ctx.dirty += removed as u64;
            ctx.remove_if_empty(key);
        }
        Ok(Reply::Int(removed as i64))
    })
}

/// LTRIM key start stop
fn ltrim(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let start = args::int(&a[2])?;
        let end = args::int(&a[3])?;
        let key = &a[1];
        let Some(l) = ctx.write_list(key)? else {
            return Ok(Reply::ok());
        };
        let keep = args::clamp_range(start, end, l.len());
        let removed = l.retain_range(keep);
        if removed > 0 {
            ctx.dirty += removed as u64;
            ctx.remove_if_empty(key);
        }
        Ok(Reply::ok())
    })
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 without the pivot, 0 without the key.
fn linsert(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let before = if eq_ic(&a[2], "before") {
            true
        } else if eq_ic(&a[2], "after") {
            false
        } else {
            return Err(Reply::err(SYNTAX));
        };
        let Some(l) = ctx.write_list(&a[1])? else {
            return Ok(Reply::Int(0));
        };
        let Some(i) = l.position(&a[3]) else {
            return Ok(Reply::Int(-1));
        };
        l.insert(if before { i } else { i + 1 }, &a[4]);
        let len = l.len();
        ctx.dirty += 1;
        Ok(Reply::Int(len as i64))
    })
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
fn lpos(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
        let mut i = 3;
        while i < a.len() {
            let (opt, val) = (&a[i], a.get(i + 1));
            let Some(val) = val else {
                return Err(Reply::err(SYNTAX));
            };
            if eq_ic(opt, "rank") {
                rank = args::int(val)?;
                if rank == 0 {
                    return Err(Reply::err(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or \
                         use negative to start from the end of the list",
                    ));
                }
            } else if eq_ic(opt, "count") {
                let n = parse_i64(val).filter(|&n| n >= 0);
                count = Some(count_arg(n.ok_or_else(|| Reply::err("ERR COUNT can't be negative"))?));
            } else if eq_ic(opt, "maxlen") {
                let n = parse_i64(val).filter(|&n| n >= 0);
                maxlen = count_arg(n.ok_or_else(|| Reply::err("ERR MAXLEN can't be negative"))?);
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 2;
        }
        let Some(l) = ctx.read_list(&a[1])? else {
            return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
        };
        let len = l.len();
        let scan = if maxlen == 0 { len } else { maxlen.min(len) };
        let mut want = match count {
            Some(0) => usize::MAX,
            Some(n) => n,
            None => 1,
        };
        let mut skip = usize::try_from(rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
        if rank == i64::MIN {
            // Redis negates the rank and overflows: every match qualifies and COUNT never stops the scan.
            skip = 0;
            if count.is_some() {
                want = usize::MAX;
            }
        }
        let elem = &a[2][..];
        let found: Vec<usize> = if rank > 0 {
            l.iter().take(scan).enumerate().filter(|(_, e)| *e == elem).map(|(i, _)| i).skip(skip).take(want).collect()
        } else {
            let rev = l.iter().rev().take(scan).enumerate();
            rev.filter(|(_, e)| *e == elem).map(|(i, _)| len - 1 - i).skip(skip).take(want).collect()
        };
        Ok(match count {
            Some(_) => Reply::Array(found.into_iter().map(|i| Reply::Int(i as i64)).collect()),
            None => found.first().map_or(Reply::Nil, |&i| Reply::Int(i as i64)),
        })
    })
}

/// Moves one element from `src` to `dst` (which may be the same key: a rotation). `Ok(None)` when `src`
/// does not exist; WRONGTYPE when either key holds another type (checked before anything changes).
/// Works across shards: the keys are only ever borrowed one at a time.
fn move_element(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> CmdResult<Option<Vec<u8>>> {
    ctx.expire_if_needed(src);
    ctx.expire_if_needed(dst);
    match ctx.peek(src) {
        None => return Ok(None),
        Some(Value::List(_)) => {}
        Some(_) => return Err(Reply::err(WRONGTYPE)),
    }
    if matches!(ctx.peek(dst), Some(v) if !matches!(v, Value::List(_))) {
        return Err(Reply::err(WRONGTYPE));
    }
    let Some(l) = ctx.write_list(src)? else {
        return Ok(None);
    };
    let Some(v) = pop_end(l, from_left) else {
        return Ok(None);
    };
    if src == dst {
        push_end(l, &v, to_left);
    } else {
        ctx.remove_if_empty(src);
        push_end(ctx.list_or_create(dst)?, &v, to_left);
    }
    ctx.dirty += 1;
    Ok(Some(v))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
fn lmove(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let from_left = parse_side(&a[3])?;
        let to_left = parse_side(&a[4])?;
        Ok(move_element(ctx, &a[1], &a[2], from_left, to_left)?.map_or(Reply::Nil, bulk))
    })
}

/// RPOPLPUSH source destination
fn rpoplpush(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(move_element(ctx, &a[1], &a[2], false, true)?.map_or(Reply::Nil, bulk)))
}

/// The parsed tail of LMPOP / BLMPOP: `numkeys key [key ...] LEFT|RIGHT [COUNT count]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpopArgs {
    /// Positions of the keys in the argument vector.
    pub keys: Range<usize>,
    pub left: bool,
    /// 1 when COUNT is not given.
    pub count: usize,
}

/// Parses LMPOP's arguments (`numkeys_at` = 1) or BLMPOP's (`numkeys_at` = 2, after the timeout), with
/// Redis's errors: numkeys and COUNT must be in 1..=i64::MAX, COUNT at most once.
pub fn parse_mpop(a: &[Bytes], numkeys_at: usize) -> CmdResult<MpopArgs> {
    let numkeys = a
        .get(numkeys_at)
        .and_then(|n| parse_i64(n))
        .filter(|&n| n > 0)
        .ok_or_else(|| Reply::err("ERR numkeys should be greater than 0"))?;
    let side_at = numkeys_at
        .checked_add(count_arg(numkeys))
        .and_then(|i| i.checked_add(1))
        .filter(|&i| i < a.len())
        .ok_or_else(|| Reply::err(SYNTAX))?;
    let left = parse_side(&a[side_at])?;
    let mut count = None;
    let mut i = side_at + 1;
    while i < a.len() {
        if count.is_none() && eq_ic(&a[i], "count") && i + 1 < a.len() {
            let n = parse_i64(&a[i + 1])
                .filter(|&n| n > 0)
                .ok_or_else(|| Reply::err("ERR count should be greater than 0"))?;
            count = Some(count_arg(n));
            i += 2;
        } else {
            return Err(Reply::err(SYNTAX));
        }
    }
    Ok(MpopArgs { keys: numkeys_at + 1..side_at, left, count: count.unwrap_or(1) })
}

/// Pops up to `count` elements from `key` if it holds a list; deletes an emptied key; counts dirty.
fn pop_from_key(ctx: &mut Ctx, key: &[u8], left: bool, count: usize) -> CmdResult<Option<Vec<Reply>>> {
    let Some(l) = ctx.write_list(key)? else {
        return Ok(None);
    };
    if l.is_empty() {
        return Ok(None);
    }
    let items = pop_many(l, left, count.max(1));
    ctx.dirty += items.len() as u64;
    ctx.remove_if_empty(key);
    Ok(Some(items))
}

fn pop_name(left: bool) -> Bytes {
    Bytes::from_static(if left { b"LPOP" } else { b"RPOP" })
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: pops from the first non-empty list; logged as
/// `LPOP key n` / `RPOP key n`.
fn lmpop(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let p = parse_mpop(a, 1)?;
        Ok(mpop_keys(ctx, &a[p.keys.clone()], p.left, p.count)?.unwrap_or(Reply::NilArray))
    })
}

fn mpop_keys(ctx: &mut Ctx, keys: &[Bytes], left: bool, count: usize) -> CmdResult<Option<Reply>> {
    for key in keys {
        if let Some(items) = pop_from_key(ctx, key, left, count)? {
            ctx.also_propagate(vec![pop_name(left), key.clone(), Bytes::from(items.len().to_string())]);
            return Ok(Some(Reply::Array(vec![bulk(key.clone()), Reply::Array(items)])));
        }
    }
    Ok(None)
}

/// Serves one blocked (or immediately servable) BLPOP / BRPOP / BLMPOP on `key`, if it holds a non-empty list.
///
/// - `count: None` (BLPOP/BRPOP): pops one element, replies `[key, element]`, logs `LPOP key` / `RPOP key`.
/// - `count: Some(n)` (BLMPOP): pops up to `n` (at least 1), replies `[key, [elements...]]`, logs
///   `LPOP key m` / `RPOP key m` with `m` the number popped.
///
/// Returns `Ok(None)` when the key is missing (keep waiting), `Err(WRONGTYPE)` when it holds another type
/// (BLPOP replies with that error when it checks keys at call time; when serving later, a key that changed
/// type is simply not ready). Empty lists are deleted; `ctx.dirty` counts the pops.
pub fn pop_for_blocking(ctx: &mut Ctx, key: &Bytes, left: bool, count: Option<usize>) -> CmdResult<Option<Reply>> {
    let Some(mut items) = pop_from_key(ctx, key, left, count.unwrap_or(1))? else {
        return Ok(None);
    };
    let mut argv = vec![pop_name(left), key.clone()];
    let reply = match count {
        None => Reply::Array(vec![bulk(key.clone()), items.swap_remove(0)]),
        Some(_) => {
            argv.push(Bytes::from(items.len().to_string()));
            Reply::Array(vec![bulk(key.clone()), Reply::Array(items)])
        }
    };
    ctx.also_propagate(argv);
    Ok(Some(reply))
}

/// How [`lmove_once`] logs the move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveLog {
    /// `LMOVE src dst left|right left|right` (BLMOVE; Redis writes the sides in lower case when serving a
    /// blocked client).
    Lmove,
    /// `RPOPLPUSH src dst` (BRPOPLPUSH).
    Rpoplpush,
}

/// Serves BLMOVE / BRPOPLPUSH: moves one element from `src` to `dst` (same key = rotation, keys may be on
/// different shards). Replies with the element (bulk) and logs the non-blocking form per `log`.
///
/// `Ok(None)` when `src` does not exist (keep waiting); `Err(WRONGTYPE)` when `src` or `dst` holds another
/// type, with nothing changed. For a BLMOVE that can be served at once, running the LMOVE handler with
/// `[LMOVE src dst from to]` instead reproduces Redis's log byte for byte (the sides as the client typed them).
pub fn lmove_once(
    ctx: &mut Ctx,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
    log: MoveLog,
) -> CmdResult<Option<Reply>> {
    let Some(v) = move_element(ctx, src, dst, from_left, to_left)? else {
        return Ok(None);
    };
    let side = |left: bool| Bytes::from_static(if left { b"left" } else { b"right" });
    ctx.also_propagate(match log {
        MoveLog::Lmove => {
            vec![Bytes::from_static(b"LMOVE"), src.clone(), dst.clone(), side(from_left), side(to_left)]
        }
        MoveLog::Rpoplpush => vec![Bytes::from_static(b"RPOPLPUSH"), src.clone(), dst.clone()],
    });
    Ok(Some(bulk(v)))
}

#[cfg(test)]
mod tests {
    use super::super::errors::NOT_INT;
    use super::super::testkit::{bulk, bulks, err, Kit};
    use super::*;
    use crate::config::EngineConfig;
    use crate::keyspace::{Db, Keyspace, Store};
    use crate::resp::Protocol;
    use proptest::prelude::*;
    use std::collections::{HashMap, VecDeque};

    const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                             or use negative to start from the end of the list";

    fn ints(v: &[i64]) -> Reply {
        Reply::Array(v.iter().map(|&i| Reply::Int(i)).collect())
    }

    fn empty() -> Reply {
        Reply::Array(vec![])
    }

    fn exists(k: &Kit, key: &str) -> bool {
        k.ks.dbs[k.db].get(key.as_bytes()).is_some()
    }

    fn argv(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn kit_with(lines: &[&str]) -> Kit {
        let mut k = Kit::new();
        for l in lines {
            k.run(l);
        }
        k
    }

    #[test]
    fn push_and_pushx() {
        let mut k = Kit::new();
        assert_eq!(k.run("RPUSH l a b c"), Reply::Int(3));
        assert_eq!(k.dirty, 3);
        assert_eq!(k.run("LPUSH l x y"), Reply::Int(5));
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["y", "x", "a", "b", "c"]));
        assert_eq!(k.run("LPUSHX nokey a"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert!(!exists(&k, "nokey"));
        assert_eq!(k.run("RPUSHX nokey a"), Reply::Int(0));
        assert_eq!(k.run("RPUSHX l d e"), Reply::Int(7));
        assert_eq!(k.dirty, 2);
        assert_eq!(k.run("LPUSHX l z"), Reply::Int(8));
        assert_eq!(k.run("LINDEX l 0"), bulk("z"));
        assert_eq!(k.run("LINDEX l -1"), bulk("e"));
        k.run("SET s x");
        for c in ["LPUSH s a", "RPUSH s a", "LPUSHX s a", "RPUSHX s a"] {
            assert_eq!(k.run(c), err(WRONGTYPE), "{c}");
            assert_eq!(k.dirty, 0);
        }
        assert_eq!(k.run("LPUSH l"), err("ERR wrong number of arguments for 'lpush' command"));
        assert_eq!(k.run("LLEN l"), Reply::Int(8));
        assert_eq!(k.run("LLEN nokey"), Reply::Int(0));
        assert_eq!(k.run("LLEN s"), err(WRONGTYPE));
        assert_eq!(k.run("LLEN l x"), err("ERR wrong number of arguments for 'llen' command"));
    }

    #[test]
    fn pops_with_and_without_count() {
        let mut k = kit_with(&["RPUSH l a b c d e", "SET s x"]);
        assert_eq!(k.run("LPOP l"), bulk("a"));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("RPOP l"), bulk("e"));
        assert_eq!(k.run("LPOP l 0"), empty());
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("RPOP l 0"), empty());
        assert_eq!(k.run("LPOP l 2"), bulks(&["b", "c"]));
        assert_eq!((k.dirty, k.propagated.clone()), (2, None));
        assert_eq!(k.run("RPOP l 10"), bulks(&["d"]));
        assert_eq!(k.dirty, 1);
        assert!(!exists(&k, "l"));
        assert_eq!(k.run("LPOP l"), Reply::Nil);
        assert_eq!(k.run("LPOP l 0"), Reply::NilArray);
        assert_eq!(k.run("RPOP l 3"), Reply::NilArray);
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LPOP l -1"), err(POSITIVE));
        assert_eq!(k.run("LPOP l abc"), err(POSITIVE));
        assert_eq!(k.run("RPOP s -1"), err(POSITIVE));
        assert_eq!(k.run("LPOP s"), err(WRONGTYPE));
        assert_eq!(k.run("RPOP s 0"), err(WRONGTYPE));
        assert_eq!(k.run("LPOP l 1 2"), err("ERR wrong number of arguments for 'lpop' command"));
        assert_eq!(k.run("RPOP l 1 2"), err("ERR wrong number of arguments for 'rpop' command"));
        k.run("RPUSH l a b c");
        assert_eq!(k.run("RPOP l 2"), bulks(&["c", "b"]));
        assert_eq!(k.run("RPOP l 9223372036854775807"), bulks(&["a"]));
        assert!(!exists(&k, "l"));
        k.proto = Protocol::Resp3;
        assert_eq!(k.run("LPOP l 1").to_vec(Protocol::Resp3), b"_\r\n");
    }

    #[test]
    fn lrange_indexes() {
        let mut k = kit_with(&["RPUSH l a b c d e", "SET s x"]);
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["a", "b", "c", "d", "e"]));
        assert_eq!(k.run("LRANGE l 1 2"), bulks(&["b", "c"]));
        assert_eq!(k.run("LRANGE l -2 -1"), bulks(&["d", "e"]));
        assert_eq!(k.run("LRANGE l -100 100"), bulks(&["a", "b", "c", "d", "e"]));
        assert_eq!(k.run("LRANGE l -9223372036854775808 9223372036854775807"), bulks(&["a", "b", "c", "d", "e"]));
        assert_eq!(k.run("LRANGE l 2 1"), empty());
        assert_eq!(k.run("LRANGE l 5 10"), empty());
        assert_eq!(k.run("LRANGE l -1 -2"), empty());
        assert_eq!(k.run("LRANGE nokey 0 -1"), empty());
        assert_eq!(k.run("LRANGE nokey a b"), err(NOT_INT));
        assert_eq!(k.run("LRANGE s a 1"), err(NOT_INT));
        assert_eq!(k.run("LRANGE l 0 b"), err(NOT_INT));
        assert_eq!(k.run("LRANGE s 0 1"), err(WRONGTYPE));
    }

    #[test]
    fn lindex_and_lset() {
        let mut k = kit_with(&["RPUSH l a b c", "SET s x"]);
        assert_eq!(k.run("LINDEX l 0"), bulk("a"));
        assert_eq!(k.run("LINDEX l -1"), bulk("c"));
        assert_eq!(k.run("LINDEX l -3"), bulk("a"));
        assert_eq!(k.run("LINDEX l 3"), Reply::Nil);
        assert_eq!(k.run("LINDEX l -4"), Reply::Nil);
        assert_eq!(k.run("LINDEX l -9223372036854775808"), Reply::Nil);
        // The key is looked up before the index is parsed.
        assert_eq!(k.run("LINDEX nokey abc"), Reply::Nil);
        assert_eq!(k.run("LINDEX s abc"), err(WRONGTYPE));
        assert_eq!(k.run("LINDEX l abc"), err(NOT_INT));

        assert_eq!(k.run("LSET l 0 x"), Reply::ok());
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("LSET l -1 y"), Reply::ok());
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["x", "b", "y"]));
        assert_eq!(k.run("LSET l 3 x"), err(OUT_OF_RANGE));
        assert_eq!(k.run("LSET l -4 x"), err(OUT_OF_RANGE));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LSET nokey 0 x"), err(NO_SUCH_KEY));
        assert_eq!(k.run("LSET nokey abc x"), err(NO_SUCH_KEY));
        assert_eq!(k.run("LSET s abc x"), err(WRONGTYPE));
        assert_eq!(k.run("LSET l abc x"), err(NOT_INT));
        assert!(!exists(&k, "nokey"));
    }

    #[test]
    fn lrem_counts_and_directions() {
        let mut k = kit_with(&["RPUSH l a b a c a b a", "SET s x"]);
        assert_eq!(k.run("LREM l 0 zz"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LREM l 2 a"), Reply::Int(2));
        assert_eq!(k.dirty, 2);
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["b", "c", "a", "b", "a"]));
        assert_eq!(k.run("LREM l -1 a"), Reply::Int(1));
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["b", "c", "a", "b"]));
        assert_eq!(k.run("LREM l 0 b"), Reply::Int(2));
        assert_eq!(k.run("LREM l -9223372036854775808 a"), Reply::Int(1));
        assert_eq!(k.run("LREM l 5 c"), Reply::Int(1));
        assert!(!exists(&k, "l"));
        assert_eq!(k.run("LREM l 0 c"), Reply::Int(0));
        k.run("RPUSH m a b a c a");
        // Redis negates the count and overflows: i64::MIN removes every match, from the tail.
        assert_eq!(k.run("LREM m -9223372036854775808 a"), Reply::Int(3));
        assert_eq!(k.run("LRANGE m 0 -1"), bulks(&["b", "c"]));
        assert_eq!(k.run("LREM nokey a x"), err(NOT_INT));
        assert_eq!(k.run("LREM s a x"), err(NOT_INT));
        assert_eq!(k.run("LREM s 0 x"), err(WRONGTYPE));
    }

    #[test]
    fn ltrim_ranges() {
        let mut k = kit_with(&["RPUSH l a b c d e f g h", "SET s x"]);
        assert_eq!(k.run("LTRIM l 0 -1"), Reply::ok());
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LTRIM l 1 -2"), Reply::ok());
        assert_eq!(k.dirty, 2);
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["b", "c", "d", "e", "f", "g"]));
        assert_eq!(k.run("LTRIM l -3 100"), Reply::ok());
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["e", "f", "g"]));
        assert_eq!(k.run("LTRIM l 5 1"), Reply::ok());
        assert_eq!(k.dirty, 3);
        assert!(!exists(&k, "l"));
        assert_eq!(k.run("LTRIM nokey 0 1"), Reply::ok());
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LTRIM nokey a b"), err(NOT_INT));
        assert_eq!(k.run("LTRIM s a 0"), err(NOT_INT));
        assert_eq!(k.run("LTRIM s 0 1"), err(WRONGTYPE));
        k.run("RPUSH l a b c");
        assert_eq!(k.run("LTRIM l 3 10"), Reply::ok());
        assert!(!exists(&k, "l"));
    }

    #[test]
    fn linsert_before_after() {
        let mut k = kit_with(&["RPUSH l a b c", "SET s x"]);
        assert_eq!(k.run("LINSERT l BEFORE b z"), Reply::Int(4));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("linsert l after c y"), Reply::Int(5));
        assert_eq!(k.run("LINSERT l before a w"), Reply::Int(6));
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["w", "a", "z", "b", "c", "y"]));
        assert_eq!(k.run("LINSERT l after zz z"), Reply::Int(-1));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LINSERT nokey after zz z"), Reply::Int(0));
        assert!(!exists(&k, "nokey"));
        assert_eq!(k.run("LINSERT l middle b z"), err(SYNTAX));
        assert_eq!(k.run("LINSERT nokey xx a b"), err(SYNTAX));
        assert_eq!(k.run("LINSERT s xx a b"), err(SYNTAX));
        assert_eq!(k.run("LINSERT s before a b"), err(WRONGTYPE));
    }

    #[test]
    fn lpos_options() {
        let mut k = kit_with(&["RPUSH l a b c a b c a", "SET s x"]);
        assert_eq!(k.run("LPOS l a"), Reply::Int(0));
        assert_eq!(k.run("LPOS l z"), Reply::Nil);
        assert_eq!(k.run("LPOS l a RANK 2"), Reply::Int(3));
        assert_eq!(k.run("LPOS l a RANK -1"), Reply::Int(6));
        assert_eq!(k.run("LPOS l a rank -2"), Reply::Int(3));
        assert_eq!(k.run("LPOS l a RANK 9"), Reply::Nil);
        assert_eq!(k.run("LPOS l a RANK -9223372036854775808"), Reply::Int(6));
        assert_eq!(k.run("LPOS l a RANK -9223372036854775808 COUNT 1"), ints(&[6, 3, 0]));
        assert_eq!(k.run("LPOS l a RANK -9223372036854775808 MAXLEN 2 COUNT 0"), ints(&[6]));
        assert_eq!(k.run("LPOS l a RANK -9223372036854775807"), Reply::Nil);
        assert_eq!(k.run("LPOS l a RANK 9223372036854775807 COUNT 0"), empty());
        assert_eq!(k.run("LPOS l a COUNT 0"), ints(&[0, 3, 6]));
        assert_eq!(k.run("LPOS l a COUNT 2"), ints(&[0, 3]));
        assert_eq!(k.run("LPOS l a RANK -1 COUNT 2"), ints(&[6, 3]));
        assert_eq!(k.run("LPOS l a RANK 2 COUNT 0"), ints(&[3, 6]));
        assert_eq!(k.run("LPOS l z COUNT 2"), empty());
        assert_eq!(k.run("LPOS l a RANK 9 COUNT 0"), empty());
        assert_eq!(k.run("LPOS l a MAXLEN 3"), Reply::Int(0));
        assert_eq!(k.run("LPOS l a MAXLEN 4 COUNT 0"), ints(&[0, 3]));
        assert_eq!(k.run("LPOS l a RANK -1 MAXLEN 3 COUNT 0"), ints(&[6]));
        assert_eq!(k.run("LPOS l b RANK -1 MAXLEN 1"), Reply::Nil);
        assert_eq!(k.run("LPOS l a RANK 1 RANK 2"), Reply::Int(3));
        assert_eq!(k.run("LPOS l a COUNT 1 COUNT 0"), ints(&[0, 3, 6]));
        assert_eq!(k.run("LPOS l a RANK 0"), err(RANK_ZERO));
        assert_eq!(k.run("LPOS l a RANK x"), err(NOT_INT));
        assert_eq!(k.run("LPOS l a COUNT -1"), err("ERR COUNT can't be negative"));
        assert_eq!(k.run("LPOS l a COUNT x"), err("ERR COUNT can't be negative"));
        assert_eq!(k.run("LPOS l a MAXLEN -1"), err("ERR MAXLEN can't be negative"));
        assert_eq!(k.run("LPOS l a MAXLEN x"), err("ERR MAXLEN can't be negative"));
        assert_eq!(k.run("LPOS l a COUNT -1 RANK 0"), err("ERR COUNT can't be negative"));
        assert_eq!(k.run("LPOS l a FOO 1"), err(SYNTAX));
        assert_eq!(k.run("LPOS l a RANK"), err(SYNTAX));
        assert_eq!(k.run("LPOS l a COUNT 1 MAXLEN"), err(SYNTAX));
        assert_eq!(k.run("LPOS nokey a"), Reply::Nil);
        assert_eq!(k.run("LPOS nokey a COUNT 1"), empty());
        assert_eq!(k.run("LPOS nokey a RANK 0"), err(RANK_ZERO));
        assert_eq!(k.run("LPOS s a"), err(WRONGTYPE));
        assert_eq!(k.run("LPOS s a RANK 0"), err(RANK_ZERO));
        assert_eq!(k.run("LPOS l"), err("ERR wrong number of arguments for 'lpos' command"));
    }

    #[test]
    fn lmove_and_rpoplpush() {
        let mut k = kit_with(&["RPUSH l a b c", "SET s x"]);
        // Same key: rotation.
        assert_eq!(k.run("LMOVE l l LEFT RIGHT"), bulk("a"));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.propagated, None);
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["b", "c", "a"]));
        assert_eq!(k.run("LMOVE l l right left"), bulk("a"));
        assert_eq!(k.run("LMOVE l l left left"), bulk("a"));
        assert_eq!(k.run("LMOVE l l right right"), bulk("c"));
        assert_eq!(k.run("RPOPLPUSH l l"), bulk("c"));
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["c", "a", "b"]));
        assert_eq!(k.run("LMOVE l d LEFT RIGHT"), bulk("c"));
        assert_eq!(k.run("LMOVE l d LEFT LEFT"), bulk("a"));
        assert_eq!(k.run("LRANGE d 0 -1"), bulks(&["a", "c"]));
        assert_eq!(k.run("LMOVE l d middle right"), err(SYNTAX));
        assert_eq!(k.run("LMOVE nokey d left middle"), err(SYNTAX));
        assert_eq!(k.run("LMOVE nokey d left right"), Reply::Nil);
        assert_eq!(k.run("LMOVE nokey s left right"), Reply::Nil);
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("LMOVE l s left right"), err(WRONGTYPE));
        assert_eq!(k.run("LMOVE s l left right"), err(WRONGTYPE));
        assert_eq!(k.run("RPOPLPUSH l s"), err(WRONGTYPE));
        assert_eq!(k.run("LRANGE l 0 -1"), bulks(&["b"]));
        assert_eq!(k.run("RPOPLPUSH nokey s"), Reply::Nil);
        // A one-element list rotated onto itself survives.
        assert_eq!(k.run("LMOVE l l left right"), bulk("b"));
        assert!(exists(&k, "l"));
        assert_eq!(k.run("RPOPLPUSH l d"), bulk("b"));
        assert_eq!(k.dirty, 1);
        assert!(!exists(&k, "l"));
        assert_eq!(k.run("LRANGE d 0 -1"), bulks(&["b", "a", "c"]));
        assert_eq!(k.run("RPOPLPUSH d new"), bulk("c"));
        assert_eq!(k.run("LRANGE new 0 -1"), bulks(&["c"]));
    }

    #[test]
    fn lmpop_parsing_and_replies() {
        let mut k = kit_with(&["RPUSH l a b c d", "SET s x"]);
        assert_eq!(k.run("LMPOP 2 nokey l LEFT COUNT 2"), Reply::Array(vec![bulk("l"), bulks(&["a", "b"])]));
        assert_eq!(k.dirty, 2);
        assert_eq!(k.propagated, Some(vec![argv(&["LPOP", "l", "2"])]));
        assert_eq!(k.run("LMPOP 1 l right"), Reply::Array(vec![bulk("l"), bulks(&["d"])]));
        assert_eq!(k.propagated, Some(vec![argv(&["RPOP", "l", "1"])]));
        // The count logged is what was popped, not what was asked for; the emptied key is deleted.
        assert_eq!(k.run("LMPOP 1 l RIGHT COUNT 9223372036854775807"), Reply::Array(vec![bulk("l"), bulks(&["c"])]));
        assert_eq!(k.propagated, Some(vec![argv(&["RPOP", "l", "1"])]));
        assert!(!exists(&k, "l"));
        assert_eq!(k.run("LMPOP 1 l right"), Reply::NilArray);
        assert_eq!((k.dirty, k.propagated.clone()), (0, None));
        k.run("RPUSH l a");
        // The first list found is served; later keys are not looked at.
        assert_eq!(k.run("LMPOP 2 l s left"), Reply::Array(vec![bulk("l"), bulks(&["a"])]));
        assert_eq!(k.run("LMPOP 2 nokey s left"), err(WRONGTYPE));
        assert_eq!(k.run("LMPOP 2 s l left"), err(WRONGTYPE));
        let numkeys = err("ERR numkeys should be greater than 0");
        assert_eq!(k.run("LMPOP 0 l left"), numkeys);
        assert_eq!(k.run("LMPOP -1 l left"), numkeys);
        assert_eq!(k.run("LMPOP x l left"), numkeys);
        assert_eq!(k.run("LMPOP 2 l left"), err(SYNTAX));
        assert_eq!(k.run("LMPOP 3 a b left"), err(SYNTAX));
        assert_eq!(k.run("LMPOP 9223372036854775807 l left"), err(SYNTAX));
        assert_eq!(k.run("LMPOP 1 l middle"), err(SYNTAX));
        let count = err("ERR count should be greater than 0");
        assert_eq!(k.run("LMPOP 1 l left COUNT 0"), count);
        assert_eq!(k.run("LMPOP 1 l left COUNT -1"), count);
        assert_eq!(k.run("LMPOP 1 l left COUNT x"), count);
        assert_eq!(k.run("LMPOP 1 l left COUNT 01"), count);
        assert_eq!(k.run("LMPOP 1 l left COUNT 9223372036854775808"), count);
        assert_eq!(k.run("LMPOP 1 l left COUNT 1 COUNT 2"), err(SYNTAX));
        assert_eq!(k.run("LMPOP 1 l left FOO"), err(SYNTAX));
        assert_eq!(k.run("LMPOP 1 l left COUNT"), err(SYNTAX));
        assert_eq!(k.run("LMPOP 1 l"), err("ERR wrong number of arguments for 'lmpop' command"));
    }

    #[test]
    fn command_table() {
        let s = crate::cmd::lookup(b"LMPOP").unwrap();
        assert!(s.has(MOVABLE_KEYS) && s.is_write());
        assert_eq!(s.key_indexes(&argv(&["lmpop", "2", "a", "b", "left"])), vec![2, 3]);
        let s = crate::cmd::lookup(b"lmove").unwrap();
        assert_eq!(s.key_indexes(&argv(&["lmove", "a", "b", "left", "right"])), vec![1, 2]);
        assert_eq!((s.arity, s.acl), (5, W_SLOW));
        let s = crate::cmd::lookup(b"llen").unwrap();
        assert!(s.has(READONLY | FAST) && !s.is_write());
        assert_eq!(COMMANDS.len(), 17);
    }

    #[test]
    fn expired_keys_are_gone() {
        let mut k = kit_with(&["RPUSH l a b"]);
        k.ks.dbs[0].set_expire(b"l", Some(k.now + 10));
        assert_eq!(k.run("LLEN l"), Reply::Int(2));
        k.now += 10;
        assert_eq!(k.run("LPOP l"), Reply::Nil);
        assert_eq!(k.run("RPUSH l c"), Reply::Int(1));
        assert_eq!(k.ks.dbs[0].expire_of(b"l"), None);
    }

    #[test]
    fn lmove_keeps_destination_ttl() {
        let mut k = kit_with(&["RPUSH src a b", "RPUSH dst x"]);
        k.ks.dbs[0].set_expire(b"dst", Some(k.now + 1000));
        assert_eq!(k.run("LMOVE src dst LEFT RIGHT"), bulk("a"));
        assert_eq!(k.ks.dbs[0].expire_of(b"dst"), Some(k.now + 1000));
    }

    /// A store with two shards routed by the key's first byte, to check that multi-key commands never hold
    /// two shards' databases at once.
    struct TwoShards([Keyspace; 2]);

    impl TwoShards {
        fn shard(key: &[u8]) -> usize {
            key.first().map_or(0, |b| usize::from(b % 2))
        }
    }

    impl Store for TwoShards {
        fn num_dbs(&self) -> usize {
            self.0[0].num_dbs()
        }
        fn db_for(&mut self, db: usize, key: &[u8]) -> &mut Db {
            &mut self.0[Self::shard(key)].dbs[db]
        }
        fn db_for_ref(&self, db: usize, key: &[u8]) -> &Db {
            &self.0[Self::shard(key)].dbs[db]
        }
        fn shard_count(&self) -> usize {
            2
        }
        fn shard_db(&mut self, shard: usize, db: usize) -> &mut Db {
            &mut self.0[shard].dbs[db]
        }
        fn shard_db_ref(&self, shard: usize, db: usize) -> &Db {
            &self.0[shard].dbs[db]
        }
        fn swap_dbs(&mut self, a: usize, b: usize) {
            for k in &mut self.0 {
                k.dbs.swap(a, b);
            }
        }
    }

    #[test]
    fn cross_shard_moves_and_blocking_helpers() {
        let cfg = EngineConfig::default();
        let mut store = TwoShards([Keyspace::new(16), Keyspace::new(16)]);
        let mut ctx = Ctx::new(&mut store, &cfg, 1_000);
        let cmd = |ctx: &mut Ctx, line: &str| {
            ctx.reset_effects();
            crate::cmd::execute(ctx, &argv(&line.split(' ').collect::<Vec<_>>()))
        };
        // 'a' (odd) and 'b' (even) live on different shards.
        assert_eq!(cmd(&mut ctx, "RPUSH a 1 2 3"), Reply::Int(3));
        assert_eq!(cmd(&mut ctx, "LMOVE a b LEFT LEFT"), bulk("1"));
        assert_eq!(cmd(&mut ctx, "RPOPLPUSH a b"), bulk("3"));
        assert_eq!(cmd(&mut ctx, "LRANGE b 0 -1"), bulks(&["3", "1"]));
        assert!(ctx.store.shard_db_ref(0, 0).get(b"b").is_some());
        assert!(ctx.store.shard_db_ref(1, 0).get(b"b").is_none());

        ctx.reset_effects();
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        let r = lmove_once(&mut ctx, &a, &b, true, false, MoveLog::Lmove).unwrap();
        assert_eq!(r, Some(bulk("2")));
        assert_eq!(ctx.propagate, Some(vec![argv(&["LMOVE", "a", "b", "left", "right"])]));
        assert_eq!(ctx.dirty, 1);
        assert!(ctx.store.shard_db_ref(1, 0).get(b"a").is_none());
        ctx.reset_effects();
        assert_eq!(lmove_once(&mut ctx, &a, &b, false, true, MoveLog::Rpoplpush).unwrap(), None);
        assert_eq!((ctx.dirty, ctx.propagate.clone()), (0, None));
        let r = lmove_once(&mut ctx, &b, &b, false, true, MoveLog::Rpoplpush).unwrap();
        assert_eq!(r, Some(bulk("2")));
        assert_eq!(ctx.propagate, Some(vec![argv(&["RPOPLPUSH", "b", "b"])]));

        ctx.reset_effects();
        assert_eq!(cmd(&mut ctx, "SET c x"), Reply::ok());
        ctx.reset_effects();
        let c = Bytes::from_static(b"c");
        assert_eq!(lmove_once(&mut ctx, &b, &c, true, true, MoveLog::Lmove), Err(err(WRONGTYPE)));
        assert_eq!(pop_for_blocking(&mut ctx, &c, true, None), Err(err(WRONGTYPE)));
        assert_eq!(pop_for_blocking(&mut ctx, &a, true, None), Ok(None));
        assert_eq!(ctx.dirty, 0);

        // b is [2, 3, 1].
        let r = pop_for_blocking(&mut ctx, &b, true, None).unwrap();
        assert_eq!(r, Some(Reply::Array(vec![bulk("b"), bulk("2")])));
        assert_eq!(ctx.propagate, Some(vec![argv(&["LPOP", "b"])]));
        ctx.reset_effects();
        let r = pop_for_blocking(&mut ctx, &b, false, Some(5)).unwrap();
        assert_eq!(r, Some(Reply::Array(vec![bulk("b"), bulks(&["1", "3"])])));
        assert_eq!(ctx.propagate, Some(vec![argv(&["RPOP", "b", "2"])]));
        assert_eq!(ctx.dirty, 2);
        assert!(ctx.store.shard_db_ref(0, 0).get(b"b").is_none());
    }

    #[test]
    fn parse_mpop_for_blmpop() {
        let a = argv(&["blmpop", "0", "2", "k1", "k2", "RIGHT", "COUNT", "3"]);
        assert_eq!(parse_mpop(&a, 2), Ok(MpopArgs { keys: 3..5, left: false, count: 3 }));
        let a = argv(&["blmpop", "0", "1", "k1", "left"]);
        assert_eq!(parse_mpop(&a, 2), Ok(MpopArgs { keys: 3..4, left: true, count: 1 }));
    }

    #[test]
    fn big_lists_cross_chunks() {
        let mut k = Kit::new();
        let items: Vec<String> = (0..300).map(|i| format!("item-{i}")).collect();
        let mut args: Vec<&[u8]> = vec![b"RPUSH", b"l"];
        args.extend(items.iter().map(|s| s.as_bytes()));
        assert_eq!(k.run_args(&args), Reply::Int(300));
        assert_eq!(k.run("LINDEX l 150"), bulk("item-150"));
        assert_eq!(k.run("LINDEX l -1"), bulk("item-299"));
        assert_eq!(k.run("LRANGE l 100 102"), bulks(&["item-100", "item-101", "item-102"]));
        assert_eq!(k.run("LPOS l item-250"), Reply::Int(250));
        assert_eq!(k.run("LSET l 200 x"), Reply::ok());
        assert_eq!(k.run("LINSERT l BEFORE x y"), Reply::Int(301));
        assert_eq!(k.run("LRANGE l 199 202"), bulks(&["item-199", "y", "x", "item-201"]));
        assert_eq!(k.run("LTRIM l 10 -10"), Reply::ok());
        assert_eq!(k.run("LLEN l"), Reply::Int(282));
        assert_eq!(k.run("LINDEX l 0"), bulk("item-10"));
        assert_eq!(k.run("LINDEX l -1"), bulk("item-290"));
    }

    /// One step of the model-based test, on key "k0" or "k1".
    #[derive(Debug, Clone)]
    enum Op {
        Push { left: bool, key: usize, vals: Vec<u8> },
        Pop { left: bool, key: usize, count: Option<i64> },
        Trim { key: usize, start: i64, end: i64 },
        Set { key: usize, index: i64, val: u8 },
        Insert { key: usize, before: bool, pivot: u8, val: u8 },
        Rem { key: usize, count: i64, val: u8 },
        Range { key: usize, start: i64, end: i64 },
        Index { key: usize, index: i64 },
        Move { src: usize, dst: usize, from_left: bool, to_left: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..2usize;
        let val = b'a'..b'e';
        let idx = -8..8i64;
        prop_oneof![
            3 => (any::<bool>(), key.clone(), prop::collection::vec(val.clone(), 1..4))
                .prop_map(|(left, key, vals)| Op::Push { left, key, vals }),
            2 => (any::<bool>(), key.clone(), prop::option::of(0..4i64))
                .prop_map(|(left, key, count)| Op::Pop { left, key, count }),
            1 => (key.clone(), idx.clone(), idx.clone()).prop_map(|(key, start, end)| Op::Trim { key, start, end }),
            1 => (key.clone(), idx.clone(), val.clone()).prop_map(|(key, index, val)| Op::Set { key, index, val }),
            1 => (key.clone(), any::<bool>(), val.clone(), val.clone())
                .prop_map(|(key, before, pivot, val)| Op::Insert { key, before, pivot, val }),
            1 => (key.clone(), -3..3i64, val.clone()).prop_map(|(key, count, val)| Op::Rem { key, count, val }),
            1 => (key.clone(), idx.clone(), idx.clone()).prop_map(|(key, start, end)| Op::Range { key, start, end }),
            1 => (key.clone(), idx).prop_map(|(key, index)| Op::Index { key, index }),
            1 => (key.clone(), key, any::<bool>(), any::<bool>())
                .prop_map(|(src, dst, from_left, to_left)| Op::Move { src, dst, from_left, to_left }),
        ]
    }

    fn model_index(i: i64, len: usize) -> Option<usize> {
        let i = if i < 0 { len as i64 + i } else { i };
        (i >= 0 && (i as usize) < len).then_some(i as usize)
    }

    fn model_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
        let len = len as i64;
        let s = if start < 0 { (len + start).max(0) } else { start };
        let e = if end < 0 { len + end } else { end.min(len - 1) };
        (s <= e && s < len).then_some((s as usize, e as usize))
    }

    fn b1(c: u8) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(&[c]))
    }

    /// Applies `op` to the model and returns the expected reply and the command to run.
    fn apply(m: &mut HashMap<usize, VecDeque<u8>>, op: &Op) -> (Reply, Vec<Vec<u8>>) {
        let name = |k: usize| format!("k{k}").into_bytes();
        let s = |x: &str| x.as_bytes().to_vec();
        let n = |x: i64| x.to_string().into_bytes();
        let l = |m: &mut HashMap<usize, VecDeque<u8>>, k: usize| m.get(&k).cloned();
        match *op {
            Op::Push { left, key, ref vals } => {
                let d = m.entry(key).or_default();
                for &v in vals {
                    if left {
                        d.push_front(v)
                    } else {
                        d.push_back(v)
                    }
                }
                let mut cmd = vec![s(if left { "LPUSH" } else { "RPUSH" }), name(key)];
                cmd.extend(vals.iter().map(|&v| vec![v]));
                (Reply::Int(d.len() as i64), cmd)
            }
            Op::Pop { left, key, count } => {
                let mut cmd = vec![s(if left { "LPOP" } else { "RPOP" }), name(key)];
                cmd.extend(count.map(n));
                let reply = match (m.get_mut(&key), count) {
                    (None, None) => Reply::Nil,
                    (None, Some(_)) => Reply::NilArray,
                    (Some(d), None) => b1(if left { d.pop_front() } else { d.pop_back() }.unwrap()),
                    (Some(d), Some(c)) => Reply::Array(
                        (0..c).map_while(|_| if left { d.pop_front() } else { d.pop_back() }).map(b1).collect(),
                    ),
                };
                (reply, cmd)
            }
            Op::Trim { key, start, end } => {
                if let Some(d) = m.get_mut(&key) {
                    match model_range(start, end, d.len()) {
                        None => d.clear(),
                        Some((a, b)) => {
                            d.truncate(b + 1);
                            d.drain(..a);
                        }
                    }
                }
                (Reply::ok(), vec![s("LTRIM"), name(key), n(start), n(end)])
            }
            Op::Set { key, index, val } => {
                let cmd = vec![s("LSET"), name(key), n(index), vec![val]];
                let reply = match m.get_mut(&key) {
                    None => err(NO_SUCH_KEY),
                    Some(d) => match model_index(index, d.len()) {
                        None => err(OUT_OF_RANGE),
                        Some(i) => {
                            d[i] = val;
                            Reply::ok()
                        }
                    },
                };
                (reply, cmd)
            }
            Op::Insert { key, before, pivot, val } => {
                let cmd =
                    vec![s("LINSERT"), name(key), s(if before { "BEFORE" } else { "AFTER" }), vec![pivot], vec![val]];
                let reply = match m.get_mut(&key) {
                    None => Reply::Int(0),
                    Some(d) => match d.iter().position(|&e| e == pivot) {
                        None => Reply::Int(-1),
                        Some(i) => {
                            d.insert(if before { i } else { i + 1 }, val);
                            Reply::Int(d.len() as i64)
                        }
                    },
                };
                (reply, cmd)
            }
            Op::Rem { key, count, val } => {
                let cmd = vec![s("LREM"), name(key), n(count), vec![val]];
                let mut removed = 0;
                if let Some(d) = m.get_mut(&key) {
                    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                    let mut idx: Vec<usize> = (0..d.len()).filter(|&i| d[i] == val).collect();
                    if count < 0 {
                        idx.reverse();
                    }
                    idx.truncate(limit.min(idx.len()));
                    idx.sort_unstable();
                    for &i in idx.iter().rev() {
                        d.remove(i);
                    }
                    removed = idx.len();
                }
                (Reply::Int(removed as i64), cmd)
            }
            Op::Range { key, start, end } => {
                let cmd = vec![s("LRANGE"), name(key), n(start), n(end)];
                let items = l(m, key)
                    .and_then(|d| {
                        model_range(start, end, d.len()).map(|(a, b)| d.range(a..=b).map(|&c| b1(c)).collect())
                    })
                    .unwrap_or_default();
                (Reply::Array(items), cmd)
            }
            Op::Index { key, index } => {
                let cmd = vec![s("LINDEX"), name(key), n(index)];
                let reply = l(m, key).and_then(|d| model_index(index, d.len()).map(|i| b1(d[i]))).unwrap_or(Reply::Nil);
                (reply, cmd)
            }
            Op::Move { src, dst, from_left, to_left } => {
                let side = |left: bool| s(if left { "LEFT" } else { "RIGHT" });
                let cmd = vec![s("LMOVE"), name(src), name(dst), side(from_left), side(to_left)];
                let reply = match m.get_mut(&src).and_then(|d| if from_left { d.pop_front() } else { d.pop_back() }) {
                    None => Reply::Nil,
                    Some(v) => {
                        let d = m.entry(dst).or_default();
                        if to_left {
                            d.push_front(v)
                        } else {
                            d.push_back(v)
                        }
                        b1(v)
                    }
                };
                (reply, cmd)
            }
        }
    }

    proptest! {
        #[test]
        fn two_keys_agree_with_a_deque_model(ops in prop::collection::vec(op(), 1..150)) {
            let mut k = Kit::new();
            let mut m: HashMap<usize, VecDeque<u8>> = HashMap::new();
            for op in &ops {
                let (want, cmd) = apply(&mut m, op);
                m.retain(|_, d| !d.is_empty());
                let args: Vec<&[u8]> = cmd.iter().map(|a| &a[..]).collect();
                prop_assert_eq!(k.run_args(&args), want, "{:?}", op);
                for key in 0..2 {
                    let name = format!("k{key}");
                    prop_assert_eq!(exists(&k, &name), m.contains_key(&key), "existence of {} after {:?}", name, op);
                    let all = m.get(&key).map(|d| d.iter().map(|&c| b1(c)).collect()).unwrap_or_default();
                    prop_assert_eq!(k.run(&format!("LRANGE {name} 0 -1")), Reply::Array(all));
                }
            }
        }
    }
}
