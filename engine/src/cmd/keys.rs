//! Generic key commands (the keys family): DEL UNLINK EXISTS TYPE TOUCH RENAME RENAMENX MOVE COPY SELECT
//! SWAPDB OBJECT here; the TTL commands in [`expire`]; the commands that visit every shard of a database
//! (KEYS SCAN RANDOMKEY DBSIZE FLUSHDB FLUSHALL) in [`dbwide`].
//!
//! Two keys of one command may live on different shards, so nothing here holds two `Db`s at once: a value
//! moves by taking it from one shard and inserting it on the other. A key keeps its shard across databases,
//! so MOVE and COPY to another database reach it with `ctx.store.db_for(other_db, key)`.

mod dbwide;
#[cfg(test)]
mod dbwide_tests;
mod expire;
#[cfg(test)]
mod shard_tests;
#[cfg(test)]
mod tests;

use super::args;
use super::ctx::Ctx;
use super::errors::{DB_INDEX, NO_SUCH_KEY, SYNTAX};
use super::spec::{flags::*, spec, CommandSpec, Handler::Engine, KeySpec};
use super::{arity_error, CmdResult};
use crate::resp::Reply;
use crate::types::{StrValue, Value};
use crate::util::eq_ic;
use bytes::Bytes;
use dbwide::{dbsize, flushall, flushdb, keys, randomkey, scan};
use expire::{expire, expireat, expiretime, persist, pexpire, pexpireat, pexpiretime, pttl, ttl};

const KS_READ_FAST: &[&str] = &["keyspace", "read", "fast"];
const KS_READ_SLOW: &[&str] = &["keyspace", "read", "slow"];
const KS_WRITE_FAST: &[&str] = &["keyspace", "write", "fast"];
const KS_WRITE_SLOW: &[&str] = &["keyspace", "write", "slow"];
const KS_READ_DANGER: &[&str] = &["keyspace", "read", "slow", "dangerous"];
const KS_WRITE_DANGER: &[&str] = &["keyspace", "write", "slow", "dangerous"];
const KS_WRITE_FAST_DANGER: &[&str] = &["keyspace", "write", "fast", "dangerous"];

// One command per line reads as a table; rustfmt would break each entry over ten lines.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, 1, -1, 1, KS_WRITE_SLOW, Engine(del)),
    spec("unlink", -2, WRITE | FAST, 1, -1, 1, KS_WRITE_FAST, Engine(del)),
    spec("exists", -2, READONLY | FAST, 1, -1, 1, KS_READ_FAST, Engine(exists)),
    spec("type", 2, READONLY | FAST, 1, 1, 1, KS_READ_FAST, Engine(type_cmd)),
    spec("touch", -2, READONLY | FAST, 1, -1, 1, KS_READ_FAST, Engine(exists)),
    spec("rename", 3, WRITE, 1, 2, 1, KS_WRITE_SLOW, Engine(rename)),
    spec("renamenx", 3, WRITE | FAST, 1, 2, 1, KS_WRITE_FAST, Engine(renamenx)),
    spec("move", 3, WRITE | FAST, 1, 1, 1, KS_WRITE_FAST, Engine(move_cmd)),
    spec("copy", -3, WRITE | DENYOOM, 1, 2, 1, KS_WRITE_SLOW, Engine(copy)),
    spec("keys", 2, READONLY | ALL_SHARDS, 0, 0, 0, KS_READ_DANGER, Engine(keys)),
    spec("scan", -2, READONLY | ALL_SHARDS, 0, 0, 0, KS_READ_SLOW, Engine(scan)),
    spec("randomkey", 1, READONLY | ALL_SHARDS, 0, 0, 0, KS_READ_SLOW, Engine(randomkey)),
    spec("dbsize", 1, READONLY | FAST | ALL_SHARDS, 0, 0, 0, KS_READ_FAST, Engine(dbsize)),
    spec("flushdb", -1, WRITE | ALL_SHARDS, 0, 0, 0, KS_WRITE_DANGER, Engine(flushdb)),
    spec("flushall", -1, WRITE | ALL_SHARDS, 0, 0, 0, KS_WRITE_DANGER, Engine(flushall)),
    spec("select", 2, LOADING | STALE | FAST, 0, 0, 0, &["fast", "connection"], Engine(select)),
    spec("swapdb", 3, WRITE | FAST | ALL_SHARDS, 0, 0, 0, KS_WRITE_FAST_DANGER, Engine(swapdb)),
    spec("expire", -3, WRITE | FAST, 1, 1, 1, KS_WRITE_FAST, Engine(expire)),
    spec("pexpire", -3, WRITE | FAST, 1, 1, 1, KS_WRITE_FAST, Engine(pexpire)),
    spec("expireat", -3, WRITE | FAST, 1, 1, 1, KS_WRITE_FAST, Engine(expireat)),
    spec("pexpireat", -3, WRITE | FAST, 1, 1, 1, KS_WRITE_FAST, Engine(pexpireat)),
    spec("expiretime", 2, READONLY | FAST, 1, 1, 1, KS_READ_FAST, Engine(expiretime)),
    spec("pexpiretime", 2, READONLY | FAST, 1, 1, 1, KS_READ_FAST, Engine(pexpiretime)),
    spec("ttl", 2, READONLY | FAST, 1, 1, 1, KS_READ_FAST, Engine(ttl)),
    spec("pttl", 2, READONLY | FAST, 1, 1, 1, KS_READ_FAST, Engine(pttl)),
    spec("persist", 2, WRITE | FAST, 1, 1, 1, KS_WRITE_FAST, Engine(persist)),
    // A container command in Redis: `COMMAND INFO object` gives no flags and no legacy key positions (the
    // subcommands carry them), but the server still has to route `OBJECT ENCODING key` to the key's shard,
    // hence a custom key spec without the `movablekeys` flag that `with_keys` would add.
    CommandSpec {
        name: "object",
        arity: -2,
        flags: 0,
        first: 0,
        last: 0,
        step: 0,
        keys: KeySpec::Custom(object_keys),
        acl: &["slow"],
        handler: Engine(object),
    },
];

fn run(f: impl FnOnce() -> CmdResult) -> Reply {
    f().unwrap_or_else(|e| e)
}

/// An argument Redis reads with `getIntFromObject`: an i64 that must also fit an i32.
fn int32(arg: &[u8]) -> CmdResult<i64> {
    let v = args::int(arg)?;
    if i32::try_from(v).is_err() {
        return Err(Reply::err("ERR value is out of range, value must between -2147483648 and 2147483647"));
    }
    Ok(v)
}

/// A database number that must exist: `ERR DB index is out of range` otherwise.
fn db_index(ctx: &Ctx, arg: &[u8]) -> CmdResult<usize> {
    let id = int32(arg)?;
    usize::try_from(id).ok().filter(|&d| d < ctx.store.num_dbs()).ok_or_else(|| Reply::err(DB_INDEX))
}

/// [`Ctx::expire_if_needed`] for `key` in database `db` (which need not be the selected one).
fn expire_in(ctx: &mut Ctx, db: usize, key: &[u8]) {
    let selected = std::mem::replace(&mut ctx.db, db);
    ctx.expire_if_needed(key);
    ctx.db = selected;
}

/// DEL key [key ...] / UNLINK key [key ...] (a key named twice counts once).
fn del(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let mut n = 0u64;
    for key in &a[1..] {
        if ctx.delete(key) {
            n += 1;
        }
    }
    ctx.dirty += n;
    Reply::Int(n as i64)
}

/// EXISTS key [key ...] / TOUCH key [key ...]: a key named twice counts twice.
fn exists(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let n = a[1..].iter().filter(|key| ctx.lookup_read(key).is_some()).count();
    Reply::Int(n as i64)
}

/// TYPE key
fn type_cmd(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    Reply::Simple(ctx.lookup_read(&a[1]).map_or("none", Value::type_name).to_owned())
}

/// RENAME key newkey
fn rename(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| rename_generic(ctx, a, false))
}

/// RENAMENX key newkey
fn renamenx(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| rename_generic(ctx, a, true))
}

fn rename_generic(ctx: &mut Ctx, a: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&a[1], &a[2]);
    let done = |moved: bool| {
        if nx {
            Reply::Int(i64::from(moved))
        } else {
            Reply::ok()
        }
    };
    ctx.expire_if_needed(src);
    if ctx.peek(src).is_none() {
        return Err(Reply::err(NO_SUCH_KEY));
    }
    if src == dst {
        // Redis 7.0: renaming a key onto itself changes nothing (RENAMENX says "not renamed").
        return Ok(done(false));
    }
    if nx && ctx.exists(dst) {
        return Ok(done(false));
    }
    let (value, expire_at) = ctx.take(src).ok_or_else(|| Reply::err(NO_SUCH_KEY))?;
    // `set_value` replaces an existing destination; the TTL travels with the value.
    ctx.set_value(dst, value, expire_at);
    ctx.dirty += 1;
    Ok(done(true))
}

/// MOVE key db
fn move_cmd(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let key = &a[1];
        let dst_db = db_index(ctx, &a[2])?;
        if dst_db == ctx.db {
            return Err(Reply::err("ERR source and destination objects are the same"));
        }
        if !ctx.exists(key) {
            return Ok(Reply::Int(0));
        }
        expire_in(ctx, dst_db, key);
        if ctx.store.db_for_ref(dst_db, key).get(key).is_some() {
            return Ok(Reply::Int(0));
        }
        let Some((value, expire_at)) = ctx.take(key) else {
            return Ok(Reply::Int(0));
        };
        ctx.store.db_for(dst_db, key).insert(key, value, expire_at);
        ctx.dirty += 1;
        Ok(Reply::Int(1))
    })
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let (src, dst) = (&a[1], &a[2]);
        let (mut dst_db, mut replace) = (ctx.db, false);
        let mut i = 3;
        while i < a.len() {
            if eq_ic(&a[i], "replace") {
                replace = true;
            } else if eq_ic(&a[i], "db") && i + 1 < a.len() {
                dst_db = db_index(ctx, &a[i + 1])?;
                i += 1;
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 1;
        }
        if dst_db == ctx.db && src == dst {
            return Err(Reply::err("ERR source and destination objects are the same"));
        }
        let Some(value) = ctx.lookup_read(src).cloned() else {
            return Ok(Reply::Int(0));
        };
        let expire_at = ctx.db_ref(src).expire_of(src);
        expire_in(ctx, dst_db, dst);
        let target = ctx.store.db_for(dst_db, dst);
        if target.get(dst).is_some() && !replace {
            return Ok(Reply::Int(0));
        }
        target.insert(dst, value, expire_at);
        ctx.dirty += 1;
        Ok(Reply::Int(1))
    })
}

/// SELECT index
fn select(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        ctx.db = db_index(ctx, &a[1])?;
        Ok(Reply::ok())
    })
}

/// SWAPDB index1 index2
fn swapdb(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let parse = |arg: &[u8], msg: &str| int32(arg).map_err(|_| Reply::err(msg));
        let first = parse(&a[1], "ERR invalid first DB index")?;
        let second = parse(&a[2], "ERR invalid second DB index")?;
        let n = ctx.store.num_dbs();
        let valid = |id: i64| usize::try_from(id).ok().filter(|&d| d < n);
        let (Some(x), Some(y)) = (valid(first), valid(second)) else {
            return Err(Reply::err(DB_INDEX));
        };
        if x != y {
            ctx.store.swap_dbs(x, y);
        }
        ctx.dirty += 1;
        Ok(Reply::ok())
    })
}

const OBJECT_SUBCOMMANDS: [&str; 4] = ["encoding", "refcount", "idletime", "freq"];

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Key positions of OBJECT: the key of the four key subcommands.
fn object_keys(a: &[Bytes]) -> Vec<usize> {
    match a.get(1) {
        Some(sub) if a.len() >= 3 && OBJECT_SUBCOMMANDS.iter().any(|s| eq_ic(sub, s)) => vec![2],
        _ => Vec::new(),
    }
}

/// OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP
fn object(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    if eq_ic(sub, "help") {
        if a.len() != 2 {
            return arity_error("object|help");
        }
        return Reply::Array(OBJECT_HELP.iter().map(|l| Reply::Simple((*l).to_owned())).collect());
    }
    let Some(name) = OBJECT_SUBCOMMANDS.iter().find(|s| eq_ic(sub, s)) else {
        let shown = String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned();
        return Reply::err(format!("ERR unknown subcommand '{shown}'. Try OBJECT HELP."));
    };
    if a.len() != 3 {
        return arity_error(&format!("object|{name}"));
    }
    let Some(value) = ctx.lookup_read(&a[2]) else {
        return Reply::Nil;
    };
    match *name {
        "encoding" => Reply::bulk(Bytes::from_static(value.encoding_name().as_bytes())),
        // Redis shares one object for the integers 0..9999, and reports its refcount as "immortal".
        "refcount" => match value {
            Value::Str(StrValue::Int(n)) if (0..10_000).contains(n) => Reply::Int(i64::from(i32::MAX)),
            _ => Reply::Int(1),
        },
        // Access times are not tracked: every key looks just touched.
        "idletime" => Reply::Int(0),
        // maxmemory-policy is always `noeviction`, so LFU counters do not exist.
        _ => Reply::err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
    }
}
