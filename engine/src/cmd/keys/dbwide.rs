//! Commands that visit every shard of the selected database (or of all databases): KEYS SCAN RANDOMKEY
//! DBSIZE FLUSHDB FLUSHALL. They carry the `ALL_SHARDS` flag so a sharded server gives them every shard.
//!
//! **The SCAN cursor across shards.** With `n` shards the cursor is `table_cursor * n + shard`: the shard
//! index sits in the low "digit" and the rest is that shard's own [`Table::scan`](crate::table::Table::scan)
//! cursor. Shards are visited in order, each to the end of its table scan, so a key present for the whole
//! scan is returned (each table keeps Redis's guarantee, and no shard is skipped). With one shard the cursor
//! is exactly the table's, as in Redis. The encoding assumes the shard count does not change during a scan.

use super::run;
use crate::cmd::ctx::Ctx;
use crate::cmd::errors::SYNTAX;
use crate::cmd::{args, CmdResult};
use crate::glob::glob_match;
use crate::resp::Reply;
use crate::table::NO_EXPIRE;
use crate::util::eq_ic;
use bytes::Bytes;

/// Whether an entry with deadline `expire_at` is logically gone at `now` (never while loading).
fn is_dead(ctx: &Ctx, expire_at: i64) -> bool {
    !ctx.loading && expire_at != NO_EXPIRE && expire_at <= ctx.now_ms
}

/// KEYS pattern
pub(super) fn keys(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    let pattern = &a[1][..];
    let all = pattern == b"*";
    let mut out = Vec::new();
    for shard in 0..ctx.store.shard_count() {
        for e in ctx.store.shard_db_ref(shard, ctx.db).table.iter() {
            // Redis skips expired keys here without deleting them.
            if !is_dead(ctx, e.expire_at()) && (all || glob_match(pattern, &e.key, false)) {
                out.push(Reply::bulk(Bytes::copy_from_slice(&e.key)));
            }
        }
    }
    Reply::Array(out)
}

/// Parses a SCAN cursor like Redis's `strtoul` check: optional sign, decimal digits, no spaces; a negative
/// value wraps (`-1` is 2^64-1) and the empty string is 0.
fn parse_cursor(arg: &[u8]) -> CmdResult<u64> {
    let invalid = || Reply::err("ERR invalid cursor");
    let (neg, digits) = match arg.first() {
        None => return Ok(0),
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        Some(_) => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub(super) fn scan(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        let cursor = parse_cursor(&a[1])?;
        let (mut pattern, mut count, mut type_name): (Option<&[u8]>, u64, Option<&[u8]>) = (None, 10, None);
        let mut i = 2;
        while i < a.len() {
            let Some(arg) = a.get(i + 1) else {
                return Err(Reply::err(SYNTAX));
            };
            if eq_ic(&a[i], "count") {
                let n = args::int(arg)?;
                count = u64::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| Reply::err(SYNTAX))?;
            } else if eq_ic(&a[i], "match") {
                pattern = Some(&arg[..]).filter(|p| *p != b"*");
            } else if eq_ic(&a[i], "type") {
                type_name = Some(&arg[..]);
            } else {
                return Err(Reply::err(SYNTAX));
            }
            i += 2;
        }

        let shards = ctx.store.shard_count() as u64;
        let (mut shard, mut table_cursor) = (cursor % shards, cursor / shards);
        // Like Redis: at most 10 * COUNT table steps, so a sparse table cannot stall the server.
        let mut steps_left = count.saturating_mul(10);
        let mut found: Vec<(Box<[u8]>, i64, &'static str)> = Vec::new();
        let next = loop {
            let db = ctx.store.shard_db_ref(shard as usize, ctx.db);
            table_cursor = db.table.scan(table_cursor, |e| {
                let matched = match pattern {
                    Some(p) => glob_match(p, &e.key, false),
                    None => true,
                };
                if matched {
                    found.push((e.key[..].into(), e.expire_at(), e.value.type_name()));
                }
            });
            if table_cursor == 0 {
                shard += 1;
                if shard == shards {
                    break 0;
                }
            }
            steps_left -= 1;
            if steps_left == 0 || found.len() as u64 >= count {
                break table_cursor.wrapping_mul(shards) + shard;
            }
        };

        let mut out = Vec::with_capacity(found.len());
        for (key, expire_at, kind) in found {
            // Expired keys are deleted on the way (and logged as DEL), as Redis's SCAN does.
            if is_dead(ctx, expire_at) {
                ctx.expire_if_needed(&key);
                continue;
            }
            if type_name.is_some_and(|t| !t.eq_ignore_ascii_case(kind.as_bytes())) {
                continue;
            }
            out.push(Reply::bulk(Bytes::from(key.into_vec())));
        }
        Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(out)]))
    })
}

/// Tries RANDOMKEY makes before it gives up looking for a key that has not expired.
const RANDOM_TRIES: usize = 100;

/// RANDOMKEY: a shard chosen with probability proportional to its size, then a random key of it. Expired
/// keys met on the way are deleted, as in Redis; after [`RANDOM_TRIES`] expired keys in a row the last one
/// is returned (what Redis itself does on a replica full of volatile keys) so the command stays bounded.
pub(super) fn randomkey(ctx: &mut Ctx, _a: &[Bytes]) -> Reply {
    let mut last = None;
    for _ in 0..RANDOM_TRIES {
        let Some((key, expire_at)) = random_entry(ctx) else {
            return Reply::Nil;
        };
        if !is_dead(ctx, expire_at) {
            return Reply::bulk(Bytes::from(key.into_vec()));
        }
        ctx.expire_if_needed(&key);
        last = Some(key);
    }
    last.map_or(Reply::Nil, |k| Reply::bulk(Bytes::from(k.into_vec())))
}

/// A uniformly chosen key of the selected database across all shards, with its deadline.
fn random_entry(ctx: &Ctx) -> Option<(Box<[u8]>, i64)> {
    let shards = ctx.store.shard_count();
    let sizes: Vec<usize> = (0..shards).map(|s| ctx.store.shard_db_ref(s, ctx.db).len()).collect();
    let total: usize = sizes.iter().sum();
    if total == 0 {
        return None;
    }
    let mut pick = fastrand::usize(..total);
    let shard = sizes.iter().position(|&n| {
        if pick < n {
            true
        } else {
            pick -= n;
            false
        }
    })?;
    let e = ctx.store.shard_db_ref(shard, ctx.db).table.random_entry()?;
    Some((e.key[..].into(), e.expire_at()))
}

/// DBSIZE: every key of the selected database, including expired ones not yet reclaimed (as Redis).
pub(super) fn dbsize(ctx: &mut Ctx, _a: &[Bytes]) -> Reply {
    let n: usize = (0..ctx.store.shard_count()).map(|s| ctx.store.shard_db_ref(s, ctx.db).len()).sum();
    Reply::Int(n as i64)
}

/// The optional ASYNC|SYNC of FLUSHDB and FLUSHALL (both free memory synchronously here).
fn flush_mode(a: &[Bytes]) -> CmdResult<()> {
    match a.len() {
        1 => Ok(()),
        2 if eq_ic(&a[1], "async") || eq_ic(&a[1], "sync") => Ok(()),
        _ => Err(Reply::err(SYNTAX)),
    }
}

/// Empties database `db` on every shard; returns the number of keys removed.
fn flush_db(ctx: &mut Ctx, db: usize) -> u64 {
    let mut removed = 0;
    for shard in 0..ctx.store.shard_count() {
        let d = ctx.store.shard_db(shard, db);
        removed += d.len() as u64;
        d.clear();
    }
    removed
}

/// FLUSHDB [ASYNC|SYNC]: always logged, even when the database was already empty.
pub(super) fn flushdb(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        flush_mode(a)?;
        ctx.dirty += flush_db(ctx, ctx.db).max(1);
        Ok(Reply::ok())
    })
}

/// FLUSHALL [ASYNC|SYNC]: always logged, even when every database was already empty.
pub(super) fn flushall(ctx: &mut Ctx, a: &[Bytes]) -> Reply {
    run(|| {
        flush_mode(a)?;
        let mut removed = 0;
        for db in 0..ctx.store.num_dbs() {
            removed += flush_db(ctx, db);
        }
        ctx.dirty += removed + 1;
        Ok(Reply::ok())
    })
}
