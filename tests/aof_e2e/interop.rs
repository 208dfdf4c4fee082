//! AOF directories moving between Moon and Debian's redis-server 7.0.15, both ways, with the same DEBUG
//! DIGEST; Moon's directories pass redis-check-aof.

use super::runtime::write_dataset;
use super::{digest, shutdown, wait_until, Work};
use moon_tests::{redis_tool, require_redis, run_with_timeout, RawConn, Server};
use std::time::Duration;

/// BGREWRITEAOF, then waits until the manifest names base 2 (Moon and Redis alike).
fn rewrite(w: &Work, c: &mut RawConn) {
    let r = c.cmd(&["BGREWRITEAOF"]);
    assert!(!r.is_error(), "{r:?}");
    wait_until(Duration::from_secs(30), "the rewrite", || w.manifest().contains("seq 2 type b"));
}

fn preamble_arg(preamble: bool) -> (&'static str, &'static str) {
    ("aof-use-rdb-preamble", if preamble { "yes" } else { "no" })
}

/// redis-check-aof on the manifest: every file valid.
fn check_aof(w: &Work) {
    let mut cmd = std::process::Command::new(redis_tool("redis-check-aof").unwrap());
    cmd.arg(w.aof_path("appendonly.aof.manifest"));
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("All AOF files and manifest are valid"), "{text}");
}

/// Writes the dataset, rewrites (a base holding data), writes more (the incr), and returns the digest.
fn build(w: &Work, c: &mut RawConn) -> String {
    write_dataset(c);
    rewrite(w, c);
    c.cmd(&["SET", "after-rewrite", "1"]);
    c.cmd(&["HSET", "hash", "f0", "changed"]);
    c.cmd(&["ZINCRBY", "zset", "10", "item-3"]);
    digest(c)
}

/// A Moon appendonlydir (RDB base and RESP base, plus an incr) passes redis-check-aof and loads in
/// redis-server with the same digest; what Redis appends then loads back in Moon.
fn moon_dir_loads_in_redis(shards: usize) {
    require_redis!("redis-server", "redis-check-aof");
    for preamble in [true, false] {
        let w = Work::new();
        let mut moon = w.moon(shards, &[preamble_arg(preamble)]);
        let expected = build(&w, &mut moon.conn());
        let base = if preamble { "appendonly.aof.2.base.rdb" } else { "appendonly.aof.2.base.aof" };
        assert!(w.aof_path(base).is_file(), "{:?}", w.manifest());
        shutdown(&mut moon, &["NOSAVE"]);
        check_aof(&w);
        let mut redis = w.redis(&[]);
        let mut c = redis.conn();
        assert_eq!(digest(&mut c), expected, "preamble {preamble}");
        c.cmd(&["SET", "from-redis", "1"]);
        let expected = digest(&mut c);
        shutdown(&mut redis, &["NOSAVE"]);
        let moon = w.moon(shards, &[]);
        assert_eq!(digest(&mut moon.conn()), expected);
    }
}

/// A Redis appendonlydir (RDB base and RESP base, plus an incr) loads in Moon with Redis's digest.
fn redis_dir_loads_in_moon(shards: usize) {
    require_redis!("redis-server");
    for preamble in [true, false] {
        let w = Work::new();
        let mut redis = w.redis(&[preamble_arg(preamble)]);
        let expected = build(&w, &mut redis.conn());
        shutdown(&mut redis, &["NOSAVE"]);
        let moon = w.moon(shards, &[]);
        let mut c = moon.conn();
        assert_eq!(digest(&mut c), expected, "preamble {preamble}");
        assert!(moon.log_text().contains("Opening AOF incr file appendonly.aof.2.incr.aof on server start"));
    }
}

/// A legacy single-file AOF with Redis's content (its base, RDB or RESP, followed by its incr: what a
/// pre-7.0 server's file looks like) is upgraded by Moon as by Redis, with the same digest.
fn redis_legacy_file_loads_in_moon(shards: usize) {
    require_redis!("redis-server");
    for preamble in [true, false] {
        let src = Work::new();
        let mut redis = src.redis(&[preamble_arg(preamble)]);
        build(&src, &mut redis.conn());
        shutdown(&mut redis, &["NOSAVE"]);
        let base = if preamble { "appendonly.aof.2.base.rdb" } else { "appendonly.aof.2.base.aof" };
        let mut legacy = std::fs::read(src.aof_path(base)).unwrap();
        legacy.extend(std::fs::read(src.aof_path("appendonly.aof.2.incr.aof")).unwrap());

        let in_redis = Work::new();
        std::fs::write(in_redis.path().join("appendonly.aof"), &legacy).unwrap();
        let redis: Server = in_redis.redis(&[]);
        let expected = digest(&mut redis.conn());
        drop(redis);

        let in_moon = Work::new();
        std::fs::write(in_moon.path().join("appendonly.aof"), &legacy).unwrap();
        let moon = in_moon.moon(shards, &[]);
        assert_eq!(digest(&mut moon.conn()), expected, "preamble {preamble}");
        assert_eq!(in_moon.manifest(), in_redis.manifest());
    }
}

shard_tests!(moon_dir_loads_in_redis, redis_dir_loads_in_moon, redis_legacy_file_loads_in_moon);
