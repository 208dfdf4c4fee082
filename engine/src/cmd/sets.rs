//! The sets family: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER SINTERCARD
//! SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN, on [`SetValue`]s (intset while small and
//! integer-only, hashtable otherwise).
//!
//! The keys of one command may live on different shards: multi-key commands look every key up first (expiry,
//! hit/miss accounting, WRONGTYPE at the first bad key, as Redis) and then hold the values through
//! [`Ctx::peek`]. Results that get stored are built the way Redis builds them (adding members to an empty
//! intset, and for SDIFF with the same algorithm choice), so `OBJECT ENCODING` of a stored set matches.

use super::ctx::Ctx;
use super::errors::{POSITIVE, SYNTAX, WRONGTYPE};
use super::hashes::{check_repeat_limit, parse_scan_cursor, random_count, scan_reply, ScanOptions};
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine, KeySpec};
use super::CmdResult;
use crate::config::EngineConfig;
use crate::resp::Reply;
use crate::types::{SetValue, Value};
use crate::util::{eq_ic, parse_i64};
use bytes::Bytes;
use std::borrow::Cow;

const W_FAST: &[&str] = &["write", "set", "fast"];
const W_SLOW: &[&str] = &["write", "set", "slow"];
const R_FAST: &[&str] = &["read", "set", "fast"];
const R_SLOW: &[&str] = &["read", "set", "slow"];

// One line per command reads like `COMMAND INFO`; rustfmt would spread each over ten lines.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WRITE | DENYOOM | FAST, 1, 1, 1, W_FAST, Engine(sadd)),
    spec("srem", -3, WRITE | FAST, 1, 1, 1, W_FAST, Engine(srem)),
    spec("smembers", 2, READONLY, 1, 1, 1, R_SLOW, Engine(smembers)),
    spec("sismember", 3, READONLY | FAST, 1, 1, 1, R_FAST, Engine(sismember)),
    spec("smismember", -3, READONLY | FAST, 1, 1, 1, R_FAST, Engine(smismember)),
    spec("scard", 2, READONLY | FAST, 1, 1, 1, R_FAST, Engine(scard)),
    spec("spop", -2, WRITE | FAST, 1, 1, 1, W_FAST, Engine(spop)),
    spec("srandmember", -2, READONLY, 1, 1, 1, R_SLOW, Engine(srandmember)),
    spec("smove", 4, WRITE | FAST, 1, 2, 1, W_FAST, Engine(smove)),
    spec("sinter", -2, READONLY, 1, -1, 1, R_SLOW, Engine(sinter)),
    spec("sintercard", -3, READONLY, 0, 0, 0, R_SLOW, Engine(sintercard))
        .with_keys(KeySpec::Numkeys { numkeys_at: 1, extra: None }),
    spec("sunion", -2, READONLY, 1, -1, 1, R_SLOW, Engine(sunion)),
    spec("sdiff", -2, READONLY, 1, -1, 1, R_SLOW, Engine(sdiff)),
    spec("sinterstore", -3, WRITE | DENYOOM, 1, -1, 1, W_SLOW, Engine(sinterstore)),
    spec("sunionstore", -3, WRITE | DENYOOM, 1, -1, 1, W_SLOW, Engine(sunionstore)),
    spec("sdiffstore", -3, WRITE | DENYOOM, 1, -1, 1, W_SLOW, Engine(sdiffstore)),
    spec("sscan", -3, READONLY, 1, 1, 1, R_SLOW, Engine(sscan)),
];

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

fn members_reply<'m>(members: impl IntoIterator<Item = Cow<'m, [u8]>>) -> Vec<Reply> {
    members.into_iter().map(|m| bulk(&m)).collect()
}

/// SADD key member [member ...]
pub fn sadd(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        let s = ctx.set_or_create(&a[1])?;
        let added = a[2..].iter().filter(|m| s.add(m, cfg)).count();
        ctx.dirty += added as u64;
        Ok(Reply::Int(added as i64))
    })
}

/// SREM key member [member ...]
pub fn srem(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let Some(s) = ctx.write_set(&a[1])? else {
            return Ok(Reply::Int(0));
        };
        let mut removed = 0;
        for m in &a[2..] {
            if s.remove(m) {
                removed += 1;
                if s.is_empty() {
                    break;
                }
            }
        }
        ctx.remove_if_empty(&a[1]);
        ctx.dirty += removed;
        Ok(Reply::Int(removed as i64))
    })
}

/// SMEMBERS key: a set in RESP3 (Redis runs it as a one-key SINTER).
pub fn smembers(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Set(ctx.read_set(&a[1])?.map_or_else(Vec::new, |s| members_reply(s.iter())))))
}

/// SISMEMBER key member
pub fn sismember(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(i64::from(ctx.read_set(&a[1])?.is_some_and(|s| s.contains(&a[2]))))))
}

/// SMISMEMBER key member [member ...]
pub fn smismember(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let s = ctx.read_set(&a[1])?;
        let flags = a[2..].iter().map(|m| Reply::Int(i64::from(s.is_some_and(|s| s.contains(m)))));
        Ok(Reply::Array(flags.collect()))
    })
}

/// SCARD key
pub fn scard(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Int(ctx.read_set(&a[1])?.map_or(0, |s| s.len()) as i64)))
}

fn srem_argv(key: &Bytes, member: &[u8]) -> Vec<Bytes> {
    vec![Bytes::from_static(b"SREM"), key.clone(), Bytes::copy_from_slice(member)]
}

/// SPOP key [count]: logged as one `SREM key member` per popped member, or `DEL key` when the count takes
/// the whole set (what Redis 7.0 writes to its AOF).
pub fn spop(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        if a.len() > 3 {
            return Err(Reply::err(SYNTAX));
        }
        if a.len() == 3 {
            return spop_count(ctx, a);
        }
        let key = &a[1];
        let Some(s) = ctx.write_set(key)? else {
            return Ok(Reply::Nil);
        };
        let Some(m) = s.pop_random() else {
            return Ok(Reply::Nil);
        };
        ctx.remove_if_empty(key);
        ctx.dirty += 1;
        ctx.also_propagate(srem_argv(key, &m));
        Ok(bulk(&m))
    })
}

/// Popping more than `1 / (1 + SPOP_REBUILD_RATIO)` of a set rebuilds it from the members kept instead
/// of removing the popped ones (Redis's `SPOP_MOVE_STRATEGY_MUL`); the rebuilt set gets a fresh encoding.
const SPOP_REBUILD_RATIO: usize = 5;

fn spop_count(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let count = parse_i64(&a[2]).filter(|&c| c >= 0).ok_or_else(|| Reply::err(POSITIVE))?;
    let key = &a[1];
    let cfg = ctx.cfg;
    let Some(s) = ctx.write_set(key)? else {
        return Ok(Reply::Set(Vec::new()));
    };
    let size = s.len();
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    if count >= size {
        let popped = members_reply(s.iter());
        ctx.delete(key);
        ctx.dirty += size as u64;
        ctx.also_propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return Ok(Reply::Set(popped));
    }
    let remaining = size - count;
    let popped: Vec<Vec<u8>> = if remaining * SPOP_REBUILD_RATIO > count {
        (0..count).filter_map(|_| s.pop_random()).collect()
    } else {
        let mut kept = SetValue::new();
        for _ in 0..remaining {
            if let Some(m) = s.pop_random() {
                kept.add(&m, cfg);
            }
        }
        let popped = s.iter().map(Cow::into_owned).collect();
        *s = kept;
        popped
    };
    ctx.dirty += popped.len() as u64;
    for m in &popped {
        ctx.also_propagate(srem_argv(key, m));
    }
    Ok(Reply::Set(popped.iter().map(|m| bulk(m)).collect()))
}

/// SRANDMEMBER key [count]
pub fn srandmember(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        if a.len() > 3 {
            return Err(Reply::err(SYNTAX));
        }
        if a.len() == 2 {
            return Ok(ctx.read_set(&a[1])?.and_then(|s| s.random_member()).map_or(Reply::Nil, |m| bulk(&m)));
        }
        let (count, unique) = random_count(&a[2])?;
        let Some(s) = ctx.read_set(&a[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let count = check_repeat_limit(count, unique)?;
        let picked = if unique { s.random_members_unique(count) } else { s.random_members(count) };
        Ok(Reply::Array(members_reply(picked)))
    })
}

/// SMOVE source destination member
pub fn smove(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (src, dst, member) = (&a[1], &a[2], &a[3]);
        ctx.expire_if_needed(src);
        ctx.expire_if_needed(dst);
        match ctx.peek(src) {
            None => return Ok(Reply::Int(0)),
            Some(Value::Set(_)) => {}
            Some(_) => return Err(Reply::err(WRONGTYPE)),
        }
        if ctx.peek(dst).is_some_and(|v| !matches!(v, Value::Set(_))) {
            return Err(Reply::err(WRONGTYPE));
        }
        if src == dst {
            return Ok(Reply::Int(i64::from(peek_set(ctx, src).is_some_and(|s| s.contains(member)))));
        }
        let cfg = ctx.cfg;
        if !ctx.write_set(src)?.is_some_and(|s| s.remove(member)) {
            return Ok(Reply::Int(0));
        }
        ctx.remove_if_empty(src);
        ctx.dirty += 1;
        if ctx.set_or_create(dst)?.add(member, cfg) {
            ctx.dirty += 1;
        }
        Ok(Reply::Int(1))
    })
}

fn peek_set<'c>(ctx: &'c Ctx, key: &[u8]) -> Option<&'c SetValue> {
    match ctx.peek(key) {
        Some(Value::Set(s)) => Some(s),
        _ => None,
    }
}

/// Looks up the source keys of a set-algebra command as Redis does (each one expired if due and counted as
/// a hit or a miss; WRONGTYPE at the first key holding another type), then returns them (`None` = missing).
fn source_sets<'c>(ctx: &'c mut Ctx, keys: &[Bytes]) -> CmdResult<Vec<Option<&'c SetValue>>> {
    for k in keys {
        if ctx.lookup_read(k).is_some_and(|v| !matches!(v, Value::Set(_))) {
            return Err(Reply::err(WRONGTYPE));
        }
    }
    let ctx: &'c Ctx = ctx;
    Ok(keys.iter().map(|k| peek_set(ctx, k)).collect())
}

/// Members of the intersection, from the smallest set in its order; at most `limit` of them (0 = all).
fn intersection<'s>(sets: &[Option<&'s SetValue>], limit: usize) -> Vec<Cow<'s, [u8]>> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&SetValue>>>() else {
        return Vec::new();
    };
    sets.sort_by_key(|s| s.len());
    let mut out = Vec::new();
    let Some((first, rest)) = sets.split_first() else {
        return out;
    };
    for m in first.iter() {
        if rest.iter().all(|s| s.contains(&m)) {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

fn union(sets: &[Option<&SetValue>], cfg: &EngineConfig) -> SetValue {
    let mut dst = SetValue::new();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            dst.add(&m, cfg);
        }
    }
    dst
}

/// The first set minus the others, with Redis's choice between its two algorithms: checking each member of
/// the first set against the others, or copying the first set and removing the others' members. The choice
/// shows in the result's encoding (a copy of a large or non-integer first set is a hashtable for good).
fn difference(sets: &[Option<&SetValue>], cfg: &EngineConfig) -> SetValue {
    let mut dst = SetValue::new();
    let Some((Some(first), rest)) = sets.split_first() else {
        return dst;
    };
    if rest.iter().flatten().any(|s| std::ptr::eq(*s, *first)) {
        return dst;
    }
    let present = || sets.iter().flatten();
    let check_each_work = present().count() * first.len() / 2;
    let copy_work: usize = present().map(|s| s.len()).sum();
    if check_each_work <= copy_work {
        for m in first.iter() {
            if !rest.iter().flatten().any(|s| s.contains(&m)) {
                dst.add(&m, cfg);
            }
        }
    } else {
        for m in first.iter() {
            dst.add(&m, cfg);
        }
        for s in rest.iter().flatten() {
            if dst.is_empty() {
                break;
            }
            for m in s.iter() {
                dst.remove(&m);
            }
        }
    }
    dst
}

/// Stores a computed set under `dst` (replacing any value and TTL), or deletes `dst` when it is empty.
fn store(ctx: &mut Ctx, dst: &[u8], result: SetValue) -> Reply {
    if result.is_empty() {
        if ctx.delete(dst) {
            ctx.dirty += 1;
        }
        return Reply::Int(0);
    }
    let n = result.len();
    ctx.set_value(dst, Value::Set(result), None);
    ctx.dirty += 1;
    Reply::Int(n as i64)
}

/// SINTER key [key ...]
pub fn sinter(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| Ok(Reply::Set(members_reply(intersection(&source_sets(ctx, &a[1..])?, 0)))))
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        let sets = source_sets(ctx, &a[2..])?;
        let result = SetValue::from_members(intersection(&sets, 0).iter().map(|m| &m[..]), cfg);
        Ok(store(ctx, &a[1], result))
    })
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let numkeys =
            parse_i64(&a[1]).filter(|&n| n > 0).ok_or_else(|| Reply::err("ERR numkeys should be greater than 0"))?;
        if numkeys as u64 > (a.len() - 2) as u64 {
            return Err(Reply::err("ERR Number of keys can't be greater than number of args"));
        }
        let keys_end = 2 + numkeys as usize;
        let mut limit = 0;
        let mut i = keys_end;
        while i < a.len() {
            if eq_ic(&a[i], "limit") && i + 1 < a.len() {
                let l = parse_i64(&a[i + 1])
                    .filter(|&l| l >= 0)
                    .ok_or_else(|| Reply::err("ERR LIMIT can't be negative"))?;
                limit = usize::try_from(l).unwrap_or(usize::MAX);
                i += 2;
            } else {
                return Err(Reply::err(SYNTAX));
            }
        }
        let sets = source_sets(ctx, &a[2..keys_end])?;
        Ok(Reply::Int(intersection(&sets, limit).len() as i64))
    })
}

/// SUNION key [key ...]
pub fn sunion(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        Ok(Reply::Set(members_reply(union(&source_sets(ctx, &a[1..])?, cfg).iter())))
    })
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        let result = union(&source_sets(ctx, &a[2..])?, cfg);
        Ok(store(ctx, &a[1], result))
    })
}

/// SDIFF key [key ...]
pub fn sdiff(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        Ok(Reply::Set(members_reply(difference(&source_sets(ctx, &a[1..])?, cfg).iter())))
    })
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cfg = ctx.cfg;
        let result = difference(&source_sets(ctx, &a[2..])?, cfg);
        Ok(store(ctx, &a[1], result))
    })
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cursor = parse_scan_cursor(&a[2])?;
        let Some(s) = ctx.read_set(&a[1])? else {
            return Ok(scan_reply(0, Vec::new()));
        };
        let opts = ScanOptions::parse(&a[3..])?;
        let mut items = Vec::new();
        let next = s.scan(cursor, opts.count, |m| {
            if opts.matches(m) {
                items.push(bulk(m));
            }
        });
        Ok(scan_reply(next, items))
    })
}

#[cfg(test)]
mod tests {
    use super::super::errors::NOT_INT;
    use super::super::testkit::{bulk, bulks, err, Kit};
    use super::*;
    use crate::keyspace::{Db, Keyspace, Store};
    use crate::resp::Protocol;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn encoding(k: &Kit, key: &str) -> &'static str {
        k.ks.dbs[0].get(key.as_bytes()).expect("key exists").value.encoding_name()
    }

    fn exists(k: &Kit, key: &str) -> bool {
        k.ks.dbs[0].get(key.as_bytes()).is_some()
    }

    fn argv(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    /// The bulk strings of an array or set reply, as text, in reply order.
    fn texts(r: &Reply) -> Vec<String> {
        let (Reply::Array(items) | Reply::Set(items)) = r else { panic!("not a list: {r:?}") };
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

    fn set_of(items: &[&str]) -> Reply {
        Reply::Set(items.iter().map(|s| bulk(s)).collect())
    }

    fn strs(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn sadd_range(k: &mut Kit, key: &str, range: std::ops::Range<i64>) {
        let members: Vec<String> = range.map(|i| i.to_string()).collect();
        let mut args: Vec<&[u8]> = vec![b"SADD", key.as_bytes()];
        args.extend(members.iter().map(|m| m.as_bytes()));
        k.run_args(&args);
    }

    #[test]
    fn sadd_srem_scard_and_membership() {
        let mut k = Kit::new();
        assert_eq!(k.run("SADD s 3 1 2 1"), Reply::Int(3));
        assert_eq!((k.dirty, k.propagated.clone()), (3, None));
        assert_eq!(k.run("SADD s 1 2"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("SMEMBERS s"), set_of(&["1", "2", "3"]));
        assert_eq!(k.run("SCARD s"), Reply::Int(3));
        assert_eq!(k.run("SCARD nokey"), Reply::Int(0));
        assert_eq!(k.run("SISMEMBER s 2"), Reply::Int(1));
        assert_eq!(k.run("SISMEMBER s 02"), Reply::Int(0));
        assert_eq!(k.run("SISMEMBER s x"), Reply::Int(0));
        assert_eq!(k.run("SISMEMBER nokey x"), Reply::Int(0));
        assert_eq!(k.run("SMISMEMBER s 1 x 3"), Reply::Array(vec![Reply::Int(1), Reply::Int(0), Reply::Int(1)]));
        assert_eq!(k.run("SMISMEMBER nokey a b"), Reply::Array(vec![Reply::Int(0), Reply::Int(0)]));
        assert_eq!(k.run("SREM s 1 x 1"), Reply::Int(1));
        assert_eq!(k.dirty, 1);
        assert_eq!(k.run("SREM s x"), Reply::Int(0));
        assert_eq!(k.run("SREM nokey x"), Reply::Int(0));
        assert_eq!(k.run("SREM s 2 3"), Reply::Int(2));
        assert!(!exists(&k, "s"));
        assert_eq!(k.run("SMEMBERS nokey"), Reply::Set(vec![]));
        assert_eq!(k.run("SADD s"), err("ERR wrong number of arguments for 'sadd' command"));
        assert_eq!(k.run("SREM s"), err("ERR wrong number of arguments for 'srem' command"));
        k.run("SET str x");
        for cmd in ["SADD str a", "SREM str a", "SMEMBERS str", "SISMEMBER str a", "SMISMEMBER str a", "SCARD str"] {
            assert_eq!(k.run(cmd), err(WRONGTYPE), "{cmd}");
        }
        // RESP3 clients see a set.
        k.run("SADD t b");
        assert_eq!(k.run("SMEMBERS t").to_vec(Protocol::Resp3), b"~1\r\n$1\r\nb\r\n");
        assert_eq!(k.run("SMEMBERS t").to_vec(Protocol::Resp2), b"*1\r\n$1\r\nb\r\n");
        assert_eq!(k.run("SMEMBERS nokey").to_vec(Protocol::Resp3), b"~0\r\n");
    }

    #[test]
    fn intset_thresholds_and_canonical_integers() {
        let mut k = Kit::new();
        assert_eq!(k.cfg.set_max_intset_entries, 512);
        sadd_range(&mut k, "s", 0..512);
        assert_eq!(encoding(&k, "s"), "intset");
        k.run("SADD s 0 511");
        assert_eq!(encoding(&k, "s"), "intset");
        k.run("SADD s 512");
        assert_eq!(encoding(&k, "s"), "hashtable");
        k.run("SREM s 512 511 510");
        assert_eq!(encoding(&k, "s"), "hashtable", "never converts back");
        assert_eq!(k.run("SISMEMBER s 7"), Reply::Int(1));

        k.run("SADD e 9223372036854775807 -9223372036854775808 0");
        assert_eq!(encoding(&k, "e"), "intset");
        assert_eq!(k.run("SMEMBERS e"), set_of(&["-9223372036854775808", "0", "9223372036854775807"]));
        for (key, odd) in [("n1", "x"), ("n2", "01"), ("n3", "-0"), ("n4", "+1"), ("n5", "9223372036854775808")] {
            k.run(&format!("SADD {key} 1 2"));
            assert_eq!(encoding(&k, key), "intset");
            k.run(&format!("SADD {key} {odd}"));
            assert_eq!(encoding(&k, key), "hashtable", "{odd}");
            assert_eq!(k.run(&format!("SISMEMBER {key} {odd}")), Reply::Int(1));
            assert_eq!(k.run(&format!("SISMEMBER {key} 2")), Reply::Int(1));
        }
        k.run("SADD first x 1");
        assert_eq!(encoding(&k, "first"), "hashtable");
        k.cfg.set_max_intset_entries = 2;
        k.run("SADD small 1 2");
        assert_eq!(encoding(&k, "small"), "intset");
        k.run("SADD small 3");
        assert_eq!(encoding(&k, "small"), "hashtable");
    }

    #[test]
    fn spop_without_count() {
        let mut k = Kit::new();
        assert_eq!(k.run("SPOP nokey"), Reply::Nil);
        assert_eq!((k.dirty, k.propagated.clone()), (0, None));
        k.run("SADD s a b");
        let Reply::Bulk(m) = k.run("SPOP s") else { panic!() };
        assert_eq!(k.dirty, 1);
        assert_eq!(k.propagated, Some(vec![vec![Bytes::from_static(b"SREM"), Bytes::from_static(b"s"), m.clone()]]));
        assert_eq!(k.run("SCARD s"), Reply::Int(1));
        let Reply::Bulk(last) = k.run("SPOP s") else { panic!() };
        assert_ne!(m, last);
        assert!(!exists(&k, "s"));
        k.run("SET str x");
        assert_eq!(k.run("SPOP str"), err(WRONGTYPE));
    }

    #[test]
    fn spop_with_count_errors_and_empty_cases() {
        let mut k = Kit::new();
        k.run("SET str x");
        k.run("SADD s 1 2 3");
        assert_eq!(k.run("SPOP s 1 2"), err(SYNTAX));
        assert_eq!(k.run("SPOP s -1"), err(POSITIVE));
        assert_eq!(k.run("SPOP s x"), err(POSITIVE));
        assert_eq!(k.run("SPOP nokey -1"), err(POSITIVE));
        assert_eq!(k.run("SPOP str x"), err(POSITIVE));
        assert_eq!(k.run("SPOP str 2"), err(WRONGTYPE));
        assert_eq!(k.run("SPOP nokey 2"), Reply::Set(vec![]));
        assert_eq!(k.run("SPOP s 0"), Reply::Set(vec![]));
        assert_eq!((k.dirty, k.propagated.clone()), (0, None));
        assert_eq!(k.run("SCARD s"), Reply::Int(3));
        assert_eq!(k.run("SPOP nokey 0").to_vec(Protocol::Resp3), b"~0\r\n");
    }

    #[test]
    fn spop_whole_set_is_logged_as_del() {
        let mut k = Kit::new();
        k.run("SADD s 1 2 3");
        let r = k.run("SPOP s 3");
        assert!(matches!(r, Reply::Set(_)));
        assert_eq!(sorted(&r), strs(&["1", "2", "3"]));
        assert_eq!(k.propagated, Some(vec![argv(&["DEL", "s"])]));
        assert!(k.dirty > 0);
        assert!(!exists(&k, "s"));
        k.run("SADD s a b");
        assert_eq!(sorted(&k.run("SPOP s 9223372036854775807")), strs(&["a", "b"]));
        assert_eq!(k.propagated, Some(vec![argv(&["DEL", "s"])]));
        assert!(!exists(&k, "s"));
    }

    #[test]
    fn spop_count_logs_one_srem_per_member() {
        let mut k = Kit::new();
        sadd_range(&mut k, "s", 0..10);
        let r = k.run("SPOP s 2");
        let popped = texts(&r);
        assert_eq!(popped.len(), 2);
        let expected: Vec<Vec<Bytes>> = popped.iter().map(|m| argv(&["SREM", "s", m])).collect();
        assert_eq!(k.propagated, Some(expected));
        assert_eq!(k.dirty, 2);
        // Popping most of the set rebuilds it from the members kept.
        let r = k.run("SPOP s 7");
        let popped2 = texts(&r);
        assert_eq!(popped2.len(), 7);
        assert_eq!(k.propagated.as_ref().map(Vec::len), Some(7));
        let left = texts(&k.run("SMEMBERS s"));
        assert_eq!(left.len(), 1);
        let all: BTreeSet<String> = popped.into_iter().chain(popped2).chain(left).collect();
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn spop_rebuild_gives_a_fresh_encoding() {
        let mut k = Kit::new();
        sadd_range(&mut k, "s", 0..600);
        assert_eq!(encoding(&k, "s"), "hashtable");
        // 200 left: 200 * 5 > 400, members are removed one by one and the table stays.
        assert_eq!(texts(&k.run("SPOP s 400")).len(), 400);
        assert_eq!(encoding(&k, "s"), "hashtable");
        sadd_range(&mut k, "r", 0..600);
        // 100 left: 100 * 5 <= 500, the set is rebuilt from the kept members, as an intset.
        assert_eq!(texts(&k.run("SPOP r 500")).len(), 500);
        assert_eq!(encoding(&k, "r"), "intset");
        assert_eq!(k.run("SCARD r"), Reply::Int(100));
        // A TTL survives the rebuild.
        sadd_range(&mut k, "t", 0..600);
        k.ks.dbs[0].set_expire(b"t", Some(k.now + 10_000));
        k.run("SPOP t 590");
        assert_eq!(k.ks.dbs[0].expire_of(b"t"), Some(k.now + 10_000));
        // Redis's own case: all but one member of a mixed set leaves an intset when the survivor is an integer.
        k.run("SADD m a 1 2 3 4 5 6 7 8 9");
        let popped = texts(&k.run("SPOP m 9"));
        let left = texts(&k.run("SMEMBERS m"));
        let expect = if left[0] == "a" { "hashtable" } else { "intset" };
        assert_eq!(encoding(&k, "m"), expect);
        assert!(!popped.contains(&left[0]));
    }

    #[test]
    fn srandmember() {
        let mut k = Kit::new();
        k.run("SET str x");
        assert_eq!(k.run("SRANDMEMBER nokey"), Reply::Nil);
        assert_eq!(k.run("SRANDMEMBER nokey 3"), Reply::Array(vec![]));
        k.run("SADD s 3 1 2");
        assert!(matches!(k.run("SRANDMEMBER s"), Reply::Bulk(_)));
        assert_eq!(k.run("SRANDMEMBER s 0"), Reply::Array(vec![]));
        assert_eq!(k.run("SRANDMEMBER s 3"), bulks(&["1", "2", "3"]));
        assert_eq!(k.run("SRANDMEMBER s 9223372036854775807"), bulks(&["1", "2", "3"]));
        for _ in 0..20 {
            let got = texts(&k.run("SRANDMEMBER s 2"));
            assert_eq!(got.len(), 2);
            assert_ne!(got[0], got[1]);
        }
        let got = texts(&k.run("SRANDMEMBER s -20"));
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|m| ["1", "2", "3"].contains(&m.as_str())));
        assert_eq!(k.run("SCARD s"), Reply::Int(3));
        assert_eq!(k.run("SRANDMEMBER s 1 2"), err(SYNTAX));
        assert_eq!(k.run("SRANDMEMBER nokey x y"), err(SYNTAX));
        assert_eq!(k.run("SRANDMEMBER s x"), err(NOT_INT));
        assert_eq!(k.run("SRANDMEMBER str x"), err(NOT_INT));
        assert_eq!(k.run("SRANDMEMBER str 1"), err(WRONGTYPE));
        assert_eq!(k.run("SRANDMEMBER str"), err(WRONGTYPE));
        assert_eq!(
            k.run("SRANDMEMBER s -9223372036854775808"),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(k.run("SRANDMEMBER s -9223372036854775807"), err("ERR value is out of range"));
        // A table set: distinct picks at every size class.
        for i in 0..100 {
            k.run(&format!("SADD t m{i}"));
        }
        for n in [1, 30, 34, 99] {
            let got = texts(&k.run(&format!("SRANDMEMBER t {n}")));
            assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), n);
        }
        assert_eq!(texts(&k.run("SRANDMEMBER t -300")).len(), 300);
    }

    #[test]
    fn smove() {
        let mut k = Kit::new();
        k.run("SET str x");
        k.run("SADD src a 1");
        assert_eq!(k.run("SMOVE nokey str a"), Reply::Int(0));
        assert_eq!(k.run("SMOVE src str a"), err(WRONGTYPE));
        assert_eq!(k.run("SMOVE str src a"), err(WRONGTYPE));
        assert_eq!(k.run("SMOVE src src a"), Reply::Int(1));
        assert_eq!(k.run("SMOVE src src zz"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        assert_eq!(k.run("SMOVE src dst zz"), Reply::Int(0));
        assert!(!exists(&k, "dst"));
        // A new destination is created with the encoding its first member asks for.
        assert_eq!(k.run("SMOVE src dst 1"), Reply::Int(1));
        assert_eq!(k.dirty, 2);
        assert_eq!(encoding(&k, "dst"), "intset");
        assert_eq!((k.propagated.clone(), exists(&k, "src")), (None, true));
        assert_eq!(k.run("SMOVE src dst a"), Reply::Int(1));
        assert!(!exists(&k, "src"), "the emptied source is deleted");
        assert_eq!(encoding(&k, "dst"), "hashtable");
        assert_eq!(sorted(&k.run("SMEMBERS dst")), strs(&["1", "a"]));
        // Moving a member the destination already has only removes it from the source.
        k.run("SADD other a b");
        assert_eq!(k.run("SMOVE other dst a"), Reply::Int(1));
        assert_eq!(k.dirty, 1);
        assert_eq!(sorted(&k.run("SMEMBERS other")), strs(&["b"]));
        assert_eq!(k.run("SCARD dst"), Reply::Int(2));
    }

    #[test]
    fn sinter_sunion_sdiff() {
        let mut k = Kit::new();
        k.run("SADD a 1 2 3 x");
        k.run("SADD b 2 3 4 x");
        k.run("SADD c 3 x y");
        k.run("SET str x");
        assert_eq!(sorted(&k.run("SINTER a b c")), strs(&["3", "x"]));
        assert_eq!(sorted(&k.run("SINTER a")), strs(&["1", "2", "3", "x"]));
        assert_eq!(k.run("SINTER a nokey"), Reply::Set(vec![]));
        assert_eq!(sorted(&k.run("SUNION a b nokey c")), strs(&["1", "2", "3", "4", "x", "y"]));
        assert_eq!(k.run("SUNION nokey"), Reply::Set(vec![]));
        assert_eq!(sorted(&k.run("SDIFF a b")), strs(&["1"]));
        assert_eq!(sorted(&k.run("SDIFF b a c")), strs(&["4"]));
        assert_eq!(sorted(&k.run("SDIFF a nokey")), strs(&["1", "2", "3", "x"]));
        assert_eq!(k.run("SDIFF nokey a"), Reply::Set(vec![]));
        assert_eq!(k.run("SDIFF a a"), Reply::Set(vec![]));
        // Every key is type-checked, even after a missing one.
        for cmd in ["SINTER nokey str", "SINTER a str", "SUNION nokey str", "SDIFF nokey str", "SDIFF a str"] {
            assert_eq!(k.run(cmd), err(WRONGTYPE), "{cmd}");
        }
        // Integer results come out sorted, as from Redis's intsets.
        k.run("SADD i 5 3 1 4");
        k.run("SADD j 4 1 9");
        assert_eq!(k.run("SINTER i j"), set_of(&["1", "4"]));
        assert_eq!(k.run("SUNION i j"), set_of(&["1", "3", "4", "5", "9"]));
        assert_eq!(k.run("SDIFF i j"), set_of(&["3", "5"]));
        k.proto = Protocol::Resp3;
        assert_eq!(k.run("SINTER i j").to_vec(Protocol::Resp3), b"~2\r\n$1\r\n1\r\n$1\r\n4\r\n");
    }

    #[test]
    fn sintercard() {
        let mut k = Kit::new();
        k.run("SADD a 1 2 3 x");
        k.run("SADD b 2 3 4 x");
        k.run("SET str x");
        assert_eq!(k.run("SINTERCARD 2 a b"), Reply::Int(3));
        assert_eq!(k.run("SINTERCARD 1 a"), Reply::Int(4));
        assert_eq!(k.run("SINTERCARD 2 a b LIMIT 1"), Reply::Int(1));
        assert_eq!(k.run("SINTERCARD 2 a b limit 0"), Reply::Int(3));
        assert_eq!(k.run("SINTERCARD 2 a b LIMIT 1 LIMIT 5"), Reply::Int(3));
        assert_eq!(k.run("SINTERCARD 2 a b LIMIT 100"), Reply::Int(3));
        assert_eq!(k.run("SINTERCARD 2 a nokey"), Reply::Int(0));
        let numkeys = err("ERR numkeys should be greater than 0");
        for n in ["0", "-1", "x", "9223372036854775808"] {
            assert_eq!(k.run(&format!("SINTERCARD {n} a")), numkeys, "{n}");
        }
        let too_many = err("ERR Number of keys can't be greater than number of args");
        assert_eq!(k.run("SINTERCARD 3 a b"), too_many);
        assert_eq!(k.run("SINTERCARD 2147483648 a"), too_many);
        assert_eq!(k.run("SINTERCARD 2 a b LIMIT"), err(SYNTAX));
        assert_eq!(k.run("SINTERCARD 2 a b foo 1"), err(SYNTAX));
        assert_eq!(k.run("SINTERCARD 1 a b"), err(SYNTAX));
        let negative = err("ERR LIMIT can't be negative");
        for l in ["-1", "x", "9223372036854775808"] {
            assert_eq!(k.run(&format!("SINTERCARD 2 a b LIMIT {l}")), negative, "{l}");
        }
        assert_eq!(k.run("SINTERCARD 2 a str"), err(WRONGTYPE));
        assert_eq!(k.run("SINTERCARD 2 nokey str"), err(WRONGTYPE));
        assert_eq!(k.run("SINTERCARD 1"), err("ERR wrong number of arguments for 'sintercard' command"));
        let spec = super::super::lookup(b"sintercard").unwrap();
        assert_eq!(spec.key_indexes(&argv(&["SINTERCARD", "2", "a", "b", "LIMIT", "1"])), vec![2, 3]);
    }

    #[test]
    fn store_commands() {
        let mut k = Kit::new();
        k.run("SADD a 1 2 3 x");
        k.run("SADD b 2 3 4 x");
        k.run("SET str x");
        assert_eq!(k.run("SINTERSTORE d a b"), Reply::Int(3));
        assert_eq!((k.dirty, k.propagated.clone()), (1, None));
        assert_eq!(sorted(&k.run("SMEMBERS d")), strs(&["2", "3", "x"]));
        assert_eq!(k.run("SUNIONSTORE d a b"), Reply::Int(5));
        assert_eq!(k.run("SDIFFSTORE d a b"), Reply::Int(1));
        assert_eq!(k.run("SMEMBERS d"), set_of(&["1"]));
        assert_eq!(encoding(&k, "d"), "intset");
        // The destination is replaced whatever it held, and loses its TTL.
        k.ks.dbs[0].set_expire(b"d", Some(k.now + 5_000));
        assert_eq!(k.run("SUNIONSTORE d a"), Reply::Int(4));
        assert_eq!(k.ks.dbs[0].expire_of(b"d"), None);
        assert_eq!(k.run("SINTERSTORE str a b"), Reply::Int(3));
        assert_eq!(k.run("SCARD str"), Reply::Int(3));
        // A destination may also be a source.
        assert_eq!(k.run("SDIFFSTORE a a b"), Reply::Int(1));
        assert_eq!(k.run("SMEMBERS a"), set_of(&["1"]));
        // An empty result deletes the destination (a change only when it existed).
        assert_eq!(k.run("SINTERSTORE d a nokey"), Reply::Int(0));
        assert_eq!(k.dirty, 1);
        assert!(!exists(&k, "d"));
        assert_eq!(k.run("SINTERSTORE d a nokey"), Reply::Int(0));
        assert_eq!(k.dirty, 0);
        k.run("SET s2 x");
        assert_eq!(k.run("SDIFFSTORE s2 nokey"), Reply::Int(0));
        assert!(!exists(&k, "s2"));
        assert_eq!(k.run("SUNIONSTORE d nokey1 nokey2"), Reply::Int(0));
        // Sources are type-checked; the destination is not.
        k.run("SET str x");
        for cmd in ["SINTERSTORE d a str", "SUNIONSTORE d nokey str", "SDIFFSTORE d a str"] {
            assert_eq!(k.run(cmd), err(WRONGTYPE), "{cmd}");
        }
        assert_eq!(k.run("SINTERSTORE d"), err("ERR wrong number of arguments for 'sinterstore' command"));
    }

    #[test]
    fn stored_encodings_follow_redis() {
        let mut k = Kit::new();
        k.run("SADD m x 1 2 3");
        k.run("SADD n x 9");
        assert_eq!(encoding(&k, "m"), "hashtable");
        // Only result members are added: an all-integer result is an intset.
        k.run("SINTERSTORE d m m");
        assert_eq!(encoding(&k, "d"), "hashtable");
        k.run("SADD p 1 2 y");
        k.run("SINTERSTORE d m p");
        assert_eq!(encoding(&k, "d"), "intset");
        k.run("SUNIONSTORE d p");
        assert_eq!(encoding(&k, "d"), "hashtable");
        sadd_range(&mut k, "big", 0..600);
        sadd_range(&mut k, "lo", 0..100);
        sadd_range(&mut k, "mid", 100..200);
        k.run("SUNIONSTORE d lo mid");
        assert_eq!(encoding(&k, "d"), "intset");
        k.run("SUNIONSTORE d big");
        assert_eq!(encoding(&k, "d"), "hashtable");
        // SDIFF checking each member (work 600 <= 700): only the 500 kept integers are added.
        assert_eq!(k.run("SDIFFSTORE d big lo"), Reply::Int(500));
        assert_eq!(encoding(&k, "d"), "intset");
        // SDIFF copying the first set (900 / 2 > 800): the copy of 600 members is a table for good.
        assert_eq!(k.run("SDIFFSTORE d big lo mid"), Reply::Int(400));
        assert_eq!(encoding(&k, "d"), "hashtable");
        k.run("SADD b0 x 1 2 3");
        k.run("SADD b1 x");
        k.run("SADD b2 y");
        k.run("SADD b3 z");
        assert_eq!(k.run("SDIFFSTORE d b0 b1"), Reply::Int(3));
        assert_eq!(encoding(&k, "d"), "intset");
        assert_eq!(k.run("SDIFFSTORE d b0 b1 b2 b3"), Reply::Int(3));
        assert_eq!(encoding(&k, "d"), "hashtable");
        // Missing keys do not count as work.
        assert_eq!(k.run("SDIFFSTORE d b0 b1 nokey nokey nokey"), Reply::Int(3));
        assert_eq!(encoding(&k, "d"), "intset");
    }

    #[test]
    fn sscan() {
        let mut k = Kit::new();
        k.run("SADD i 20 3 10 1");
        assert_eq!(k.run("SSCAN i 0"), Reply::Array(vec![bulk("0"), bulks(&["1", "3", "10", "20"])]));
        assert_eq!(k.run("SSCAN i 7 COUNT 1"), Reply::Array(vec![bulk("0"), bulks(&["1", "3", "10", "20"])]));
        assert_eq!(k.run("SSCAN i 0 MATCH 1*"), Reply::Array(vec![bulk("0"), bulks(&["1", "10"])]));
        assert_eq!(k.run("SSCAN nokey 0"), Reply::Array(vec![bulk("0"), Reply::Array(vec![])]));
        assert_eq!(k.run("SSCAN i x"), err("ERR invalid cursor"));
        assert_eq!(k.run("SSCAN i 0 COUNT 0"), err(SYNTAX));
        assert_eq!(k.run("SSCAN i 0 COUNT x"), err(NOT_INT));
        assert_eq!(k.run("SSCAN i 0 MATCH"), err(SYNTAX));
        k.run("SET str x");
        assert_eq!(k.run("SSCAN str 0"), err(WRONGTYPE));
        k.run("SADD t a b c");
        let Reply::Array(parts) = k.run("SSCAN t 0 COUNT 100") else { panic!() };
        assert_eq!((&parts[0], sorted(&parts[1])), (&bulk("0"), strs(&["a", "b", "c"])));
        assert_eq!(k.run("SSCAN t 0 MATCH b COUNT 100"), Reply::Array(vec![bulk("0"), bulks(&["b"])]));
    }

    #[test]
    fn sscan_table_returns_every_member_while_the_set_grows_and_shrinks() {
        let mut k = Kit::new();
        for i in 0..3000 {
            k.run(&format!("SADD s m{i}"));
        }
        let (mut cursor, mut seen, mut calls) = ("0".to_string(), BTreeSet::new(), 0);
        let (mut added, mut removed) = (3000, 1500);
        loop {
            let Reply::Array(parts) = k.run(&format!("SSCAN s {cursor} COUNT 10")) else { panic!() };
            calls += 1;
            seen.extend(texts(&parts[1]));
            // Members m0..m1500 stay for the whole scan; others come and go around them.
            for _ in 0..25 {
                k.run(&format!("SADD s m{added}"));
                added += 1;
            }
            for _ in 0..10 {
                if removed < 3000 {
                    k.run(&format!("SREM s m{removed}"));
                    removed += 1;
                }
            }
            let Reply::Bulk(next) = &parts[0] else { panic!() };
            if &next[..] == b"0" {
                break;
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            assert!(calls < 100_000);
        }
        assert!(calls > 10);
        assert!((0..1500).all(|i| seen.contains(&format!("m{i}"))));
    }

    /// Two shards, routing by the parity of the key's first byte: "a" and "c" share one, "b" has the other.
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

    struct Sharded {
        store: TwoShards,
        cfg: EngineConfig,
    }

    impl Sharded {
        fn new(cfg: EngineConfig) -> Self {
            Sharded { store: TwoShards([Keyspace::new(16), Keyspace::new(16)]), cfg }
        }

        fn run(&mut self, line: &str) -> Reply {
            self.run_args(&line.split_whitespace().collect::<Vec<_>>())
        }

        fn run_args(&mut self, args: &[&str]) -> Reply {
            let mut ctx = Ctx::new(&mut self.store, &self.cfg, 1_000);
            super::super::execute(&mut ctx, &argv(args))
        }

        /// Members of `key` (empty when missing), checking the key sits on its own shard only.
        fn members(&self, key: &str) -> BTreeSet<String> {
            let other = 1 - TwoShards::shard(key.as_bytes());
            assert!(self.store.0[other].dbs[0].get(key.as_bytes()).is_none());
            match self.store.db_for_ref(0, key.as_bytes()).get(key.as_bytes()).map(|e| &e.value) {
                None => BTreeSet::new(),
                Some(Value::Set(s)) => {
                    let out: BTreeSet<String> = s.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect();
                    assert!(!out.is_empty(), "an empty set was left under {key}");
                    let all_ints = out.iter().all(|m| parse_i64(m.as_bytes()).is_some());
                    if s.encoding_name() == "intset" {
                        assert!(all_ints && out.len() <= self.cfg.set_max_intset_entries);
                    }
                    out
                }
                Some(v) => panic!("{key} holds a {}", v.type_name()),
            }
        }
    }

    #[test]
    fn cross_shard_commands() {
        let mut s = Sharded::new(EngineConfig::default());
        s.run("SADD a 1 2 3");
        s.run("SADD b 2 3 4");
        assert_eq!(s.run("SMOVE a b 1"), Reply::Int(1));
        assert_eq!(s.members("b"), ["1", "2", "3", "4"].map(String::from).into());
        assert_eq!(s.run("SMOVE b c 4"), Reply::Int(1));
        assert_eq!(s.members("c"), ["4"].map(String::from).into());
        assert_eq!(s.run("SINTERSTORE c a b"), Reply::Int(2));
        assert_eq!(s.members("c"), ["2", "3"].map(String::from).into());
        assert_eq!(s.run("SUNIONSTORE b a c"), Reply::Int(2));
        assert_eq!(s.run("SDIFFSTORE a b c"), Reply::Int(0));
        assert!(s.members("a").is_empty());
        assert_eq!(s.run("SINTERCARD 2 b c"), Reply::Int(2));
        assert_eq!(sorted(&s.run("SUNION a b c")), strs(&["2", "3"]));
        s.run("SET d x");
        assert_eq!(s.run("SMOVE b d 2"), err(WRONGTYPE));
        assert_eq!(s.run("SINTER b d"), err(WRONGTYPE));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize, Vec<String>),
        Rem(usize, Vec<String>),
        Pop(usize, usize),
        PopOne(usize),
        Move(usize, usize, String),
        Store(&'static str, usize, Vec<usize>),
    }

    const KEYS: [&str; 3] = ["a", "b", "c"];

    fn member() -> impl Strategy<Value = String> {
        prop_oneof![4 => (0i64..12).prop_map(|i| i.to_string()), 1 => "[x-z]".prop_map(String::from)]
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..3usize;
        let members = || proptest::collection::vec(member(), 1..6);
        prop_oneof![
            4 => (key.clone(), members()).prop_map(|(k, m)| Op::Add(k, m)),
            2 => (key.clone(), members()).prop_map(|(k, m)| Op::Rem(k, m)),
            1 => (key.clone(), 0..8usize).prop_map(|(k, n)| Op::Pop(k, n)),
            1 => key.clone().prop_map(Op::PopOne),
            2 => (key.clone(), key.clone(), member()).prop_map(|(s, d, m)| Op::Move(s, d, m)),
            2 => (
                prop::sample::select(vec!["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
                key.clone(),
                proptest::collection::vec(key, 1..4)
            )
                .prop_map(|(c, d, src)| Op::Store(c, d, src)),
        ]
    }

    fn apply(s: &mut Sharded, model: &mut [BTreeSet<String>; 3], op: &Op) {
        match op {
            Op::Add(k, ms) => {
                let mut args = vec!["SADD", KEYS[*k]];
                args.extend(ms.iter().map(String::as_str));
                let before = model[*k].len();
                model[*k].extend(ms.iter().cloned());
                assert_eq!(s.run_args(&args), Reply::Int((model[*k].len() - before) as i64));
            }
            Op::Rem(k, ms) => {
                let mut args = vec!["SREM", KEYS[*k]];
                args.extend(ms.iter().map(String::as_str));
                let removed = ms.iter().collect::<BTreeSet<_>>().into_iter().filter(|m| model[*k].remove(*m)).count();
                assert_eq!(s.run_args(&args), Reply::Int(removed as i64));
            }
            Op::Pop(k, n) => {
                let r = s.run(&format!("SPOP {} {n}", KEYS[*k]));
                let popped: BTreeSet<String> = texts(&r).into_iter().collect();
                assert_eq!(popped.len(), (*n).min(model[*k].len()));
                for m in &popped {
                    assert!(model[*k].remove(m), "popped {m} not in the model");
                }
            }
            Op::PopOne(k) => match s.run(&format!("SPOP {}", KEYS[*k])) {
                Reply::Nil => assert!(model[*k].is_empty()),
                Reply::Bulk(m) => assert!(model[*k].remove(&*String::from_utf8_lossy(&m))),
                other => panic!("{other:?}"),
            },
            Op::Move(src, dst, m) => {
                let moved = model[*src].contains(m);
                if moved && src != dst {
                    model[*src].remove(m);
                    model[*dst].insert(m.clone());
                }
                let r = s.run(&format!("SMOVE {} {} {m}", KEYS[*src], KEYS[*dst]));
                assert_eq!(r, Reply::Int(i64::from(moved)));
            }
            Op::Store(cmd, dst, srcs) => {
                let sets: Vec<&BTreeSet<String>> = srcs.iter().map(|&i| &model[i]).collect();
                let result: BTreeSet<String> = match *cmd {
                    "SINTERSTORE" => {
                        sets[0].iter().filter(|m| sets[1..].iter().all(|s| s.contains(*m))).cloned().collect()
                    }
                    "SUNIONSTORE" => sets.iter().flat_map(|s| s.iter().cloned()).collect(),
                    _ => sets[0].iter().filter(|m| sets[1..].iter().all(|s| !s.contains(*m))).cloned().collect(),
                };
                let mut args = vec![*cmd, KEYS[*dst]];
                args.extend(srcs.iter().map(|&i| KEYS[i]));
                assert_eq!(s.run_args(&args), Reply::Int(result.len() as i64));
                model[*dst] = result;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn sets_agree_with_a_btreeset_model(ops in proptest::collection::vec(op(), 1..60)) {
            // A small intset limit so that conversions happen often.
            let cfg = EngineConfig { set_max_intset_entries: 6, ..EngineConfig::default() };
            let mut s = Sharded::new(cfg);
            let mut model: [BTreeSet<String>; 3] = Default::default();
            for op in &ops {
                apply(&mut s, &mut model, op);
                for (i, key) in KEYS.iter().enumerate() {
                    prop_assert_eq!(&s.members(key), &model[i], "after {:?}", op);
                    prop_assert_eq!(s.run(&format!("SCARD {key}")), Reply::Int(model[i].len() as i64));
                }
            }
        }
    }
}
