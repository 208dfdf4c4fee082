//! Memory per key against Debian's redis-server 7.0.15: for each small-value shape the issue names (strings,
//! 3-field hashes, 3-element lists, 3-integer sets, 3-member zsets, 3-string sets), for `raw` strings of 45
//! to 200 bytes and for the mixed workload,
//! Moon's resident memory per key must be no worse than Redis's.
//!
//! Method: a fresh redis-server and moon-server (`--shards 1`) per shape; the same keys are written to both
//! through a raw socket in bounded pipelines (so query and reply buffers stay small). The anonymous resident
//! memory (`RssAnon`) of each process is read from `/proc` at two points, and the difference over the keys
//! written in between is the marginal memory per key. Resident memory is the honest measure: Moon's
//! `INFO used_memory` is computed from its data structures, not read from the allocator. Both servers use
//! jemalloc 5.3 with the same size classes.
//!
//! The two points are chosen so that only keys and values are measured, not the allocator's timing:
//! - [`WARM_UP`] keys come first. They put the main hash table of both servers at its final size (both grow
//!   to the same power of two), and pay the one-time costs of a fresh process (jemalloc slabs for each size
//!   class on Moon's shard thread, which Redis's main thread had already touched during start-up).
//! - Then writes of a scratch key (`SET` and `DEL`) drive both incremental rehashes to their end, so no
//!   bucket array is allocated or freed between the two points.
//! - Both allocators run with [`MALLOC_CONF`] (`MALLOC_CONF` for Debian's jemalloc, `_RJEM_MALLOC_CONF` for
//!   the prefixed one built into Moon): freed pages go back to the OS at once, otherwise a freed bucket array
//!   stays resident for seconds and whichever server happens to carve its next slabs out of it looks up to
//!   8 bytes per key cheaper; and no transparent huge pages, which would make resident memory move in 2 MB
//!   steps (Redis disables them for itself at start-up; Moon does not).
//! - Both run with the slow log off: Moon's slow log keeps arguments as slices of the connection's read
//!   buffer, so a command that happens to run slowly on a busy machine pins a whole buffer, which is noise
//!   here (and a memory problem of its own).
//! - Each measurement is taken with only one idle client connected, so no loading connection's buffers count.
//!
//! [`KEYS`] − [`WARM_UP`] = 16,000 keys make a byte per key 16 KB, well above page-level noise (runs agree
//! within half a byte per key); the tolerance ([`SLACK`], [`SLACK_BYTES`]) covers partly filled slabs and is
//! far below the gaps this test exists to catch (Moon's 3-string sets once took 411 bytes per key against
//! Redis's 315, its 3-member zsets 148 against 121).

use moon_tests::{require_redis, resp, RawConn, Server, ServerOptions};
use std::time::{Duration, Instant};

/// Keys written before the first measurement: past 16,384, where both tables grow to 32,768 buckets.
const WARM_UP: usize = 16_500;
/// Keys per shape: below 32,768, so no table grows between the two measurements.
const KEYS: usize = 32_500;
/// jemalloc options for both servers (see the module docs).
const MALLOC_CONF: &str = "dirty_decay_ms:0,muzzy_decay_ms:0,thp:never";
/// `SET`+`DEL` pairs of a scratch key after the warm-up: each write moves at least one bucket of an
/// incremental rehash on both servers, and the 16,384 buckets of the old array need fewer than half as many.
const REHASH_PAIRS: usize = 12_000;
/// Commands per pipelined batch.
const BATCH: usize = 1_000;
/// Moon may use this fraction more than Redis per key, plus [`SLACK_BYTES`] (measurement noise).
const SLACK: f64 = 0.01;
const SLACK_BYTES: f64 = 1.0;
/// No key of any shape costs less than this on either server (Moon's smallest key is its 48-byte table entry,
/// Redis's a 24-byte dictEntry and a 16-byte object plus its key): a smaller figure means the measurement broke.
const PLAUSIBLE_MIN: f64 = 40.0;

#[derive(Debug, Clone, Copy)]
enum Shape {
    Str,
    Hash,
    List,
    IntSet,
    ZSet,
    StrSet,
    /// Strings of 45 to 200 bytes: Redis's `raw` encoding.
    Long,
    /// 40% strings, 10% strings with a TTL, 10% each of the five collection shapes.
    Mixed,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Str => "str",
            Shape::Hash => "hash",
            Shape::List => "list",
            Shape::IntSet => "iset",
            Shape::ZSet => "zset",
            Shape::StrSet => "sset",
            Shape::Long => "long",
            Shape::Mixed => "mixed",
        }
    }

    /// The command that creates key `i` of this shape.
    fn command(self, i: usize) -> Vec<String> {
        let key = format!("{}:{i:08}", if matches!(self, Shape::Mixed) { "key" } else { self.name() });
        let shape = match self {
            Shape::Mixed => match i % 10 {
                0..=3 => Shape::Str,
                4 => return argv(&["SET", &key, &format!("v{i}"), "PXAT", "4102444800000"]),
                5 => Shape::Hash,
                6 => Shape::List,
                7 => Shape::IntSet,
                8 => Shape::ZSet,
                _ => Shape::StrSet,
            },
            s => s,
        };
        match shape {
            Shape::Str => argv(&["SET", &key, &format!("value-{i:06}")]),
            Shape::Hash => argv(&[
                "HSET",
                &key,
                "name",
                &format!("n{i}"),
                "age",
                &(i % 90).to_string(),
                "city",
                &format!("c{}", i % 100),
            ]),
            Shape::List => argv(&["RPUSH", &key, &format!("a{i}"), "b", "c"]),
            Shape::IntSet => argv(&["SADD", &key, &i.to_string(), &(i + 1).to_string(), &(i + 2).to_string()]),
            Shape::ZSet => argv(&["ZADD", &key, "1", &format!("m{i}"), "2.5", "x", "3", "y"]),
            Shape::StrSet => argv(&["SADD", &key, &format!("s{i}"), "t", "u"]),
            Shape::Long => argv(&["SET", &key, &format!("{i:0>width$}", width = 45 + i % 156)]),
            Shape::Mixed => unreachable!("resolved above"),
        }
    }
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Anonymous resident memory of `pid` in bytes (the heap; not the binary's pages).
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("RssAnon line");
    kb * 1024
}

/// Writes keys `range` of `shape` in pipelined batches, checking every reply.
fn load(conn: &mut RawConn, shape: Shape, range: std::ops::Range<usize>) {
    let mut i = range.start;
    while i < range.end {
        let n = BATCH.min(range.end - i);
        let mut bytes = Vec::new();
        for j in i..i + n {
            resp::encode_into(&mut bytes, &shape.command(j));
        }
        for (j, reply) in conn.pipeline(bytes, n).into_iter().enumerate() {
            assert!(!reply.is_error(), "{} key {}: {reply:?}", shape.name(), i + j);
        }
        i += n;
    }
}

/// Writes that drive an incremental rehash of the main table to its end without changing the data.
fn finish_rehash(conn: &mut RawConn) {
    for _ in 0..REHASH_PAIRS / BATCH {
        let mut bytes = Vec::new();
        for _ in 0..BATCH {
            resp::encode_into(&mut bytes, &["SET", "memory-test-scratch", "x"]);
            resp::encode_into(&mut bytes, &["DEL", "memory-test-scratch"]);
        }
        for reply in conn.pipeline(bytes, 2 * BATCH) {
            assert!(!reply.is_error(), "{reply:?}");
        }
    }
}

/// Resident memory of `server` once the only client is this idle one: loading connections are closed first
/// and the server has seen them go, so their buffers are not counted.
fn idle_rss(server: &Server) -> u64 {
    let mut conn = server.conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = conn.cmd(&["INFO", "clients"]).text();
        if info.lines().any(|l| l.trim() == "connected_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}: loading connections still open:\n{info}", server.kind());
        std::thread::sleep(Duration::from_millis(5));
    }
    rss_anon(server.pid())
}

/// Resident bytes per key that writing keys `WARM_UP..KEYS` of `shape` cost `server`.
fn bytes_per_key(server: &Server, shape: Shape) -> f64 {
    let mut conn = server.conn();
    load(&mut conn, shape, 0..WARM_UP);
    finish_rehash(&mut conn);
    drop(conn);
    let before = idle_rss(server);
    load(&mut server.conn(), shape, WARM_UP..KEYS);
    let after = idle_rss(server);
    assert_eq!(server.conn().cmd(&["DBSIZE"]).int(), KEYS as i64, "{:?} {}", server.kind(), shape.name());
    (after as f64 - before as f64) / (KEYS - WARM_UP) as f64
}

/// The OBJECT ENCODING of a sample key, so both servers are known to hold the same representation.
fn encoding(server: &Server, shape: Shape) -> String {
    let key = &shape.command(7)[1];
    server.conn().cmd(&["OBJECT", "ENCODING", key]).text()
}

#[test]
fn memory_per_key_is_no_worse_than_redis() {
    require_redis!("redis-server");
    let started = Instant::now();
    let shapes =
        [Shape::Str, Shape::Hash, Shape::List, Shape::IntSet, Shape::ZSet, Shape::StrSet, Shape::Long, Shape::Mixed];
    let mut report = Vec::new();
    let mut worse = Vec::new();
    for shape in shapes {
        let quiet = |o: ServerOptions| o.arg("slowlog-log-slower-than", "-1").start();
        let redis = quiet(ServerOptions::redis().env("MALLOC_CONF", MALLOC_CONF));
        let moon = quiet(ServerOptions::moon(1).env("_RJEM_MALLOC_CONF", MALLOC_CONF));
        // Load both at once (two cores), each from its own thread.
        let (r, m) = std::thread::scope(|s| {
            let r = s.spawn(|| bytes_per_key(&redis, shape));
            let m = s.spawn(|| bytes_per_key(&moon, shape));
            (r.join().expect("redis load"), m.join().expect("moon load"))
        });
        if !matches!(shape, Shape::Mixed) {
            assert_eq!(encoding(&moon, shape), encoding(&redis, shape), "{}: encodings differ", shape.name());
        }
        assert!(m > PLAUSIBLE_MIN && r > PLAUSIBLE_MIN, "{}: implausible moon {m:.1} redis {r:.1}", shape.name());
        let line =
            format!("{:>5}: moon {m:6.1}  redis {r:6.1}  bytes/key ({:+.1}%)", shape.name(), (m / r - 1.0) * 100.0);
        if m > r * (1.0 + SLACK) + SLACK_BYTES {
            worse.push(line.clone());
        }
        report.push(line);
    }
    eprintln!(
        "Resident bytes per key, keys {WARM_UP}..{KEYS} of each shape, in {:?}:\n{}",
        started.elapsed(),
        report.join("\n")
    );
    assert!(worse.is_empty(), "Moon uses more memory per key than Redis 7.0.15:\n{}", worse.join("\n"));
}

/// MEMORY PURGE hands freed pages back to the OS at once. jemalloc runs with a decay time far longer than
/// the test, so only the purge can bring the heap back down after FLUSHALL.
#[test]
fn memory_purge_returns_freed_pages() {
    let slow = "dirty_decay_ms:600000,muzzy_decay_ms:600000,thp:never";
    let moon = ServerOptions::moon(1).env("_RJEM_MALLOC_CONF", slow).start();
    let mut c = moon.conn();
    let before = rss_anon(moon.pid());
    load(&mut c, Shape::List, 0..150_000);
    let full = rss_anon(moon.pid());
    let grown = full.saturating_sub(before);
    assert!(grown > 20 << 20, "150k lists grew the heap by only {grown} bytes");
    assert_eq!(c.cmd(&["FLUSHALL"]), moon_tests::Value::simple("OK"));
    let flushed = rss_anon(moon.pid());
    assert!(flushed > before + grown / 2, "the pages went back without MEMORY PURGE: the test proves nothing");
    assert_eq!(c.cmd(&["MEMORY", "PURGE"]), moon_tests::Value::simple("OK"));
    let purged = rss_anon(moon.pid());
    assert!(purged < before + grown / 4, "MEMORY PURGE left {purged} bytes (before {before}, full {full})");
}
