//! MEMORY USAGE / STATS / DOCTOR / PURGE / MALLOC-STATS / HELP, and [`report`], the memory accounting that
//! `INFO memory` shares with them.
//!
//! Moon's `used_memory` is computed from the dataset, not read from the allocator: a fixed start-up share,
//! plus every table's buckets, entries and keys, plus every value's heap ([`engine::types::Value::heap_bytes`]).
//! It leaves out allocator rounding, client buffers and the rest of the process, which RSS shows.

use crate::server::{unix_ms, Server};
use bytes::Bytes;
use engine::keyspace::Store;
use engine::resp::Reply;
use engine::table::Entry;
use engine::types::Value;
use engine::util::eq_ic;
use std::sync::atomic::Ordering;

/// What an empty server is counted as using (Redis's `used_memory_startup` is about 860 KiB).
pub const STARTUP_BYTES: u64 = 1024 * 1024;
/// Below this `used_memory`, MEMORY DOCTOR has nothing to say (Redis's threshold).
const DOCTOR_MIN_BYTES: u64 = 5 * 1024 * 1024;

/// One non-empty database's table overhead.
pub struct DbOverhead {
    pub db: usize,
    /// Buckets and entries (`overhead.hashtable.main`).
    pub main: u64,
}

/// The memory figures behind INFO memory, MEMORY STATS and MEMORY DOCTOR.
pub struct MemReport {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    /// Start-up share plus table overheads (`used_memory_overhead`).
    pub overhead: u64,
    /// Keys' and values' bytes (`used_memory_dataset`).
    pub dataset: u64,
    pub rss: u64,
    pub keys: u64,
    pub dbs: Vec<DbOverhead>,
}

impl MemReport {
    pub fn peak_perc(&self) -> f64 {
        if self.peak == 0 {
            0.0
        } else {
            self.used as f64 * 100.0 / self.peak as f64
        }
    }

    /// Dataset as a share of what is above the start-up share.
    pub fn dataset_perc(&self) -> f64 {
        let net = self.used.saturating_sub(self.startup);
        if net == 0 {
            0.0
        } else {
            self.dataset as f64 * 100.0 / net as f64
        }
    }

    pub fn frag_ratio(&self) -> f64 {
        if self.used == 0 {
            0.0
        } else {
            self.rss as f64 / self.used as f64
        }
    }
}

/// Walks every shard once (each locked in turn) to total the dataset.
pub fn report(server: &Server) -> MemReport {
    let mut dbs: Vec<DbOverhead> = Vec::new();
    let (mut tables, mut values, mut keys) = (0u64, 0u64, 0u64);
    for sh in 0..server.shards.count() {
        let g = server.shards.lock(sh);
        for (i, db) in g.ks.dbs.iter().enumerate() {
            if db.is_empty() {
                continue;
            }
            // The table's own figure leaves out the allocations of short keys with a TTL: the walk counts every key.
            let main = db.table.heap_bytes_without_keys() as u64;
            let mut kb = 0u64;
            for e in db.table.iter() {
                kb += e.key.heap_bytes() as u64;
                values += e.value.heap_bytes() as u64;
            }
            tables += main + kb;
            keys += db.len() as u64;
            match dbs.iter_mut().find(|d| d.db == i) {
                Some(d) => d.main += main,
                None => dbs.push(DbOverhead { db: i, main }),
            }
        }
    }
    dbs.sort_by_key(|d| d.db);
    let used = STARTUP_BYTES + tables + values;
    let overhead = STARTUP_BYTES + dbs.iter().map(|d| d.main).sum::<u64>();
    let peak = server.obs.note_memory(used);
    MemReport { used, peak, startup: STARTUP_BYTES, overhead, dataset: used - overhead, rss: rss_bytes(), keys, dbs }
}

/// Resident set size from /proc.
pub fn rss_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page)
}

/// Physical memory of the machine (`total_system_memory`).
pub fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

/// Redis's `bytesToHuman`: `991.70K`, `6.37M`, `12B`.
pub fn human(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

/// MEMORY <subcommand> ... outside a transaction (USAGE locks the key's shard itself).
pub fn run(server: &Server, db: usize, a: &[Bytes]) -> Reply {
    if eq_ic(&a[1], "usage") {
        return match parse_usage(a) {
            Err(e) => e,
            Ok(key) => {
                let shard = server.shards.lock(server.shards.shard_of(key));
                usage_in(&shard.ks.dbs[db], key)
            }
        };
    }
    other(server, a)
}

/// MEMORY inside EXEC, with the transaction's shards held: USAGE reads through `view`.
pub fn run_in_view(server: &Server, db: usize, view: &mut crate::shards::LockedShards<'_>, a: &[Bytes]) -> Reply {
    if !eq_ic(&a[1], "usage") {
        return other(server, a);
    }
    let key = match parse_usage(a) {
        Err(e) => return e,
        Ok(k) => k,
    };
    let shard = server.shards.shard_of(key);
    if view.held().any(|s| s == shard) {
        return usage_in(view.db_for_ref(db, key), key);
    }
    // Taking another shard is safe only above every one held (shards are always locked in ascending order).
    if view.held().all(|s| s < shard) {
        let g = server.shards.lock(shard);
        return usage_in(&g.ks.dbs[db], key);
    }
    Reply::err("ERR MEMORY USAGE of this key is not available inside this transaction")
}

/// MEMORY USAGE key [SAMPLES count]: the key. Every value's size is exact in Moon, so SAMPLES is checked
/// and ignored.
fn parse_usage(a: &[Bytes]) -> Result<&Bytes, Reply> {
    if a.len() < 3 {
        return Err(engine::cmd::arity_error("memory|usage"));
    }
    let mut j = 3;
    while j < a.len() {
        if eq_ic(&a[j], "samples") && j + 1 < a.len() {
            match engine::util::parse_i64(&a[j + 1]) {
                None => return Err(Reply::err(engine::cmd::errors::NOT_INT)),
                Some(n) if n < 0 => return Err(Reply::err(engine::cmd::errors::SYNTAX)),
                Some(_) => {}
            }
            j += 2;
        } else {
            return Err(Reply::err(engine::cmd::errors::SYNTAX));
        }
    }
    Ok(&a[2])
}

/// Bytes for `key`: its entry in the table, one bucket slot, the key's heap bytes (none when it sits in the
/// entry) and the value's heap. An expired key that is still stored counts as missing.
fn usage_in(db: &engine::keyspace::Db, key: &[u8]) -> Reply {
    if db.is_expired(key, unix_ms()) {
        return Reply::Nil;
    }
    match db.get(key) {
        None => Reply::Nil,
        Some(e) => {
            let bytes = std::mem::size_of::<Entry<Value>>()
                + std::mem::size_of::<usize>()
                + e.key.heap_bytes()
                + e.value.heap_bytes();
            Reply::Int(bytes as i64)
        }
    }
}

/// MEMORY PURGE: jemalloc returns the dirty pages of every arena to the OS now, instead of after its decay
/// time (Redis runs the same `arena.<all>.purge`). Nothing to report: Redis replies OK either way.
fn purge() {
    // MALLCTL_ARENAS_ALL is 4096 in jemalloc 5.
    let name = b"arena.4096.purge\0";
    // SAFETY: a NUL-terminated mallctl name of a void command (no old or new value).
    unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

fn other(server: &Server, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    let fixed = ["doctor", "stats", "purge", "malloc-stats", "help"];
    if let Some(name) = fixed.iter().find(|s| eq_ic(sub, s)) {
        if a.len() != 2 {
            return engine::cmd::arity_error(&format!("memory|{name}"));
        }
        return match *name {
            "doctor" => Reply::Verbatim("txt".into(), Bytes::from(doctor(&report(server)))),
            "stats" => stats(server),
            "purge" => {
                purge();
                Reply::ok()
            }
            "malloc-stats" => {
                Reply::Verbatim("txt".into(), Bytes::from_static(b"Stats not supported for the current allocator"))
            }
            _ => help(),
        };
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try MEMORY HELP.", String::from_utf8_lossy(sub)))
}

fn help() -> Reply {
    let lines = [
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect())
}

/// MEMORY STATS: Redis's fields; the allocator's figures are Moon's own accounting.
fn stats(server: &Server) -> Reply {
    let r = report(server);
    let s = |k: &str| Reply::bulk(k.to_string());
    let int = |v: u64| Reply::Int(v as i64);
    let net = r.used.saturating_sub(r.startup);
    let aof_buffer = server.persist.aof_buffer_length.load(Ordering::Relaxed);
    let mut m = vec![
        (s("peak.allocated"), int(r.peak)),
        (s("total.allocated"), int(r.used)),
        (s("startup.allocated"), int(r.startup)),
        (s("replication.backlog"), int(0)),
        (s("clients.slaves"), int(0)),
        (s("clients.normal"), int(0)),
        (s("cluster.links"), int(0)),
        (s("aof.buffer"), int(aof_buffer)),
        (s("lua.caches"), int(0)),
        (s("functions.caches"), int(0)),
    ];
    for d in &r.dbs {
        m.push((
            s(&format!("db.{}", d.db)),
            Reply::Map(vec![
                (s("overhead.hashtable.main"), int(d.main)),
                (s("overhead.hashtable.expires"), int(0)),
                (s("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    let frag_bytes = r.rss as i64 - r.used as i64;
    m.extend([
        (s("overhead.total"), int(r.overhead)),
        (s("keys.count"), int(r.keys)),
        (s("keys.bytes-per-key"), int(net.checked_div(r.keys).unwrap_or(0))),
        (s("dataset.bytes"), int(r.dataset)),
        (s("dataset.percentage"), Reply::Double(r.dataset_perc())),
        (s("peak.percentage"), Reply::Double(r.peak_perc())),
        (s("allocator.allocated"), int(r.used)),
        (s("allocator.active"), int(r.used)),
        (s("allocator.resident"), int(r.rss)),
        (s("allocator-fragmentation.ratio"), Reply::Double(1.0)),
        (s("allocator-fragmentation.bytes"), int(0)),
        (s("allocator-rss.ratio"), Reply::Double(r.frag_ratio())),
        (s("allocator-rss.bytes"), Reply::Int(frag_bytes)),
        (s("rss-overhead.ratio"), Reply::Double(1.0)),
        (s("rss-overhead.bytes"), int(0)),
        (s("fragmentation"), Reply::Double(r.frag_ratio())),
        (s("fragmentation.bytes"), Reply::Int(frag_bytes)),
    ]);
    Reply::Map(m)
}

/// MEMORY DOCTOR's report (Redis's wording; the checks that apply to Moon's figures).
pub fn doctor(r: &MemReport) -> String {
    if r.used < DOCTOR_MIN_BYTES {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into();
    }
    let high_peak = r.peak as f64 / r.used as f64 > 1.5;
    let high_frag = r.frag_ratio() > 1.4;
    if !high_peak && !high_frag {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".into();
    }
    let mut s = String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    if high_peak {
        s.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if high_frag {
        s.push_str(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"jemalloc-5.3.0\".\n\n");
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn human_like_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1_015_504), "991.70K");
        assert_eq!(human(6_680_576), "6.37M");
        assert_eq!(human(25_276_518_400), "23.54G");
    }

    #[test]
    fn usage_arguments_like_redis() {
        assert!(parse_usage(&args(&["memory", "usage", "k"])).is_ok());
        assert!(parse_usage(&args(&["memory", "usage", "k", "samples", "0"])).is_ok());
        assert!(parse_usage(&args(&["memory", "usage", "k", "SAMPLES", "5", "samples", "1"])).is_ok());
        let err = |v: &[&str]| match parse_usage(&args(v)) {
            Err(Reply::Error(e)) => e,
            _ => String::new(),
        };
        assert_eq!(err(&["memory", "usage", "k", "samples"]), "ERR syntax error");
        assert_eq!(err(&["memory", "usage", "k", "foo", "1"]), "ERR syntax error");
        assert_eq!(err(&["memory", "usage", "k", "samples", "-1"]), "ERR syntax error");
        assert_eq!(err(&["memory", "usage", "k", "samples", "x"]), "ERR value is not an integer or out of range");
        assert_eq!(err(&["memory", "usage"]), "ERR wrong number of arguments for 'memory|usage' command");
    }

    #[test]
    fn usage_counts_entry_key_and_value() {
        let mut db = engine::keyspace::Db::new();
        let v = Value::Str(engine::types::StrValue::from_bytes(&[b'x'; 100]));
        let heap = v.heap_bytes();
        db.insert(b"big", v, None);
        // A 3-byte key sits inside the entry.
        let want = std::mem::size_of::<Entry<Value>>() + 8 + heap;
        assert!(matches!(usage_in(&db, b"big"), Reply::Int(n) if n as usize == want));
        // A 20-byte key takes 20 heap bytes; with a TTL, 8 more (the expiry is stored before it).
        let long = b"a-key-of-twenty-byte";
        db.insert(long, Value::Str(engine::types::StrValue::from_bytes(&[b'x'; 100])), None);
        assert!(matches!(usage_in(&db, long), Reply::Int(n) if n as usize == want + 20));
        db.set_expire(long, Some(unix_ms() + 100_000));
        assert!(matches!(usage_in(&db, long), Reply::Int(n) if n as usize == want + 28));
        // So does a short key with a TTL.
        db.set_expire(b"big", Some(unix_ms() + 100_000));
        assert!(matches!(usage_in(&db, b"big"), Reply::Int(n) if n as usize == want + 11));
        assert!(matches!(usage_in(&db, b"nokey"), Reply::Nil));
        db.insert(b"old", Value::Str(engine::types::StrValue::from_bytes(b"1")), Some(1));
        assert!(matches!(usage_in(&db, b"old"), Reply::Nil));
    }
}
