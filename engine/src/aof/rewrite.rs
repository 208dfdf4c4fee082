//! The RESP form of a dataset, as Redis 7.0's `rewriteAppendOnlyFileRio` writes a base when
//! `aof-use-rdb-preamble no` (FORMATS.md §1.3): an optional `#TS:` line, then per non-empty database
//! `SELECT <db>`, then per key one command that rebuilds it (`SET`, `RPUSH`, `SADD`, `ZADD`, `HMSET`),
//! split so that no command carries more than [`AOF_REWRITE_ITEMS_PER_CMD`] items, then `PEXPIREAT <ms>`
//! when the key has a TTL. Scores are printed with `%.17g`, as 7.0's `rioWriteBulkDouble` does. Every
//! command goes through [`super::encode_command`].
//!
//! [`rewrite_key`] is the per-key encoder a snapshot walker calls; [`rewrite_store`] writes a whole store
//! (the tool's offline compact, tests).

use super::encode_command;
use crate::keyspace::Store;
use crate::resp::format_double_g17;
use crate::types::Value;
use std::borrow::Cow;
use std::io::{self, Write};

/// Most items (elements, members, field-value pairs, score-member pairs) per command (`server.h`).
pub const AOF_REWRITE_ITEMS_PER_CMD: usize = 64;

/// Bytes buffered by [`rewrite_store`] before they are handed to the writer.
const FLUSH_AT: usize = 64 * 1024;

/// `#TS:<secs>\r\n`, the annotation a rewrite starts with when `aof-timestamp-enabled yes`.
pub fn rewrite_timestamp(out: &mut Vec<u8>, unix_secs: i64) {
    out.extend_from_slice(format!("#TS:{unix_secs}\r\n").as_bytes());
}

/// `SELECT <db>`.
pub fn rewrite_select(out: &mut Vec<u8>, db: usize) {
    encode_command(out, &[b"SELECT".as_slice(), db.to_string().as_bytes()]);
}

/// Appends the commands that rebuild `key` (in the selected database) to `out`.
pub fn rewrite_key(out: &mut Vec<u8>, key: &[u8], value: &Value, expire_at: Option<i64>) {
    match value {
        Value::Str(s) => s.with_bytes(|v| encode_command(out, &[b"SET".as_slice(), key, v])),
        Value::List(l) => batched(out, b"RPUSH", key, l.len(), l.iter().map(|e| [Cow::Borrowed(e)])),
        Value::Set(s) => batched(out, b"SADD", key, s.len(), s.iter().map(|m| [m])),
        Value::ZSet(z) => batched(
            out,
            b"ZADD",
            key,
            z.len(),
            z.iter().map(|(m, score)| [Cow::Owned(format_double_g17(score).into_bytes()), Cow::Borrowed(m)]),
        ),
        Value::Hash(h) => {
            batched(out, b"HMSET", key, h.len(), h.iter().map(|(f, v)| [Cow::Borrowed(f), Cow::Borrowed(v)]))
        }
    }
    if let Some(ms) = expire_at {
        encode_command(out, &[b"PEXPIREAT".as_slice(), key, ms.to_string().as_bytes()]);
    }
}

/// `<cmd> <key> <item>...` for `count` items, at most [`AOF_REWRITE_ITEMS_PER_CMD`] per command; an item is
/// `N` arguments (a member, a score and a member, a field and a value).
fn batched<'a, const N: usize>(
    out: &mut Vec<u8>,
    cmd: &[u8],
    key: &[u8],
    count: usize,
    items: impl Iterator<Item = [Cow<'a, [u8]>; N]>,
) {
    let per_cmd = AOF_REWRITE_ITEMS_PER_CMD.min(count.max(1));
    let mut argv: Vec<Cow<'a, [u8]>> = Vec::with_capacity(2 + per_cmd * N);
    let flush = |argv: &mut Vec<Cow<'a, [u8]>>, out: &mut Vec<u8>| {
        if argv.len() > 2 {
            encode_command(out, argv);
        }
        argv.truncate(2);
    };
    argv.push(Cow::Owned(cmd.to_vec()));
    argv.push(Cow::Owned(key.to_vec()));
    for item in items {
        argv.extend(item);
        if argv.len() == 2 + AOF_REWRITE_ITEMS_PER_CMD * N {
            flush(&mut argv, out);
        }
    }
    flush(&mut argv, out);
}

/// Options of [`rewrite_store`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RewriteOptions {
    /// Start with `#TS:<secs>` (`aof-timestamp-enabled yes`).
    pub timestamp: Option<i64>,
}

/// Writes every database of `store` (all shards) as a RESP base. Returns the writer and the bytes written.
pub fn rewrite_store<W: Write>(store: &dyn Store, mut w: W, opts: &RewriteOptions) -> io::Result<(W, u64)> {
    let mut out = Vec::with_capacity(FLUSH_AT * 2);
    let mut written = 0u64;
    if let Some(ts) = opts.timestamp {
        rewrite_timestamp(&mut out, ts);
    }
    for db in 0..store.num_dbs() {
        let shards = store.shard_count();
        if (0..shards).all(|s| store.shard_db_ref(s, db).is_empty()) {
            continue;
        }
        rewrite_select(&mut out, db);
        for s in 0..shards {
            for e in store.shard_db_ref(s, db).table.iter() {
                rewrite_key(&mut out, &e.key, &e.value, e.has_expire().then_some(e.expire_at()));
                if out.len() >= FLUSH_AT {
                    w.write_all(&out)?;
                    written += out.len() as u64;
                    out.clear();
                }
            }
        }
    }
    w.write_all(&out)?;
    written += out.len() as u64;
    w.flush()?;
    Ok((w, written))
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
