//! RDB persistence end to end: SAVE survives kill -9, and dump files move both ways between Moon and
//! Debian's redis-server with the same DEBUG DIGEST.

use moon_tests::{have_redis_tools, RawConn, Server, ServerOptions, Value};

/// A dataset touching every encoding Moon writes: int, short and long (compressible) strings, small and
/// large lists, hashes, sets (intset, listpack, hashtable), sorted sets, TTLs, and a second database.
fn write_dataset(c: &mut RawConn) {
    let ok = Value::simple("OK");
    assert_eq!(c.cmd(&["SET", "int", "12345"]), ok);
    assert_eq!(c.cmd(&["SET", "neg", "-7"]), ok);
    assert_eq!(c.cmd(&["SET", "short", "hello"]), ok);
    assert_eq!(c.cmd(&["SET", "long", &"abcdefgh".repeat(200)]), ok);
    assert_eq!(c.cmd(&["SET", "ttl", "v", "PX", "100000000"]), ok);
    for i in 0..300 {
        let v = format!("item-{i}");
        c.cmd(&["RPUSH", "biglist", &v]);
        c.cmd(&["HSET", "bighash", &format!("f{i}"), &v]);
        c.cmd(&["SADD", "bigset", &v]);
        c.cmd(&["SADD", "intset", &i.to_string()]);
        c.cmd(&["ZADD", "bigzset", &format!("{}.5", i), &v]);
    }
    c.cmd(&["RPUSH", "list", "a", "b", "1", "2"]);
    c.cmd(&["HSET", "hash", "f", "v", "n", "1"]);
    c.cmd(&["SADD", "set", "x", "y"]);
    c.cmd(&["ZADD", "zset", "1", "a", "2.5", "b", "-inf", "c"]);
    c.cmd(&["EXPIRE", "hash", "1000000"]);
    assert_eq!(c.cmd(&["SELECT", "3"]), ok);
    assert_eq!(c.cmd(&["SET", "other-db", "x"]), ok);
    c.cmd(&["RPUSH", "other-list", "1"]);
    assert_eq!(c.cmd(&["SELECT", "0"]), ok);
}

fn digest(c: &mut RawConn) -> String {
    let d = c.cmd(&["DEBUG", "DIGEST"]).text();
    assert_ne!(d, "0".repeat(40), "empty dataset");
    d
}

fn save(server: &Server) -> String {
    let mut c = server.conn();
    assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    assert!(server.dir().join("dump.rdb").is_file());
    digest(&mut c)
}

fn moon_on(dir: &std::path::Path, shards: usize) -> Server {
    ServerOptions::moon(shards).arg("dir", &dir.display().to_string()).start()
}

fn save_survives_kill9(shards: usize) {
    let first = Server::moon(shards);
    let mut c = first.conn();
    write_dataset(&mut c);
    let before = save(&first);
    // Written after the save: must not come back.
    c.cmd(&["SET", "unsaved", "1"]);
    first.kill9();
    let second = moon_on(first.dir(), shards);
    let mut c = second.conn();
    assert_eq!(digest(&mut c), before);
    // The loader mapped the file; once the server serves, the mapping is gone (its pages would count in the
    // server's RSS).
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", second.pid())).expect("the server's maps");
    assert!(!maps.contains("dump.rdb"), "{maps}");
    assert_eq!(c.cmd(&["EXISTS", "unsaved"]).int(), 0);
    let ttl = c.cmd(&["PTTL", "ttl"]).int();
    assert!(ttl > 90_000_000, "{ttl}");
    // DEBUG RELOAD keeps the dataset, and a restart with another shard count reads the same file.
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]), Value::simple("OK"));
    assert_eq!(digest(&mut c), before);
    second.kill9();
    let third = moon_on(first.dir(), 5 - shards.min(4));
    assert_eq!(digest(&mut third.conn()), before);
}

fn moon_dump_loads_in_redis(shards: usize) {
    if !have_redis_tools("rdb_e2e::moon_dump_loads_in_redis", &["redis-server"]) {
        return;
    }
    let moon = Server::moon(shards);
    write_dataset(&mut moon.conn());
    let expected = save(&moon);
    moon.kill9();
    let redis = ServerOptions::redis().arg("dir", &moon.dir().display().to_string()).start();
    let mut c = redis.conn();
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 14);
    assert_eq!(digest(&mut c), expected);
}

fn redis_dump_loads_in_moon(shards: usize) {
    if !have_redis_tools("rdb_e2e::redis_dump_loads_in_moon", &["redis-server"]) {
        return;
    }
    let redis = Server::redis();
    write_dataset(&mut redis.conn());
    let expected = save(&redis);
    redis.kill9();
    let moon = moon_on(redis.dir(), shards);
    let mut c = moon.conn();
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 14);
    assert_eq!(digest(&mut c), expected);
}

/// Listpacks Moon keeps as Redis wrote them (hashes, zsets and list nodes of strings), edited in Moon, saved, then
/// checked by redis-check-rdb and loaded by redis-server: the same digest as Moon's.
fn redis_dump_edited_in_moon_loads_back_in_redis(shards: usize) {
    if !have_redis_tools("rdb_e2e::redis_dump_edited_in_moon", &["redis-server", "redis-check-rdb"]) {
        return;
    }
    let redis = Server::redis();
    let mut c = redis.conn();
    for i in 0..50 {
        let (h, l, s) = (format!("h{i}"), format!("l{i}"), format!("s{i}"));
        // Strings only (kept as they are), and one hash and list with integers (packed again).
        c.cmd(&["HSET", &h, "name", "moon", "colour", &"x".repeat(i)]);
        c.cmd(&["RPUSH", &l, "a", "bb", &"c".repeat(70)]);
        c.cmd(&["SADD", &s, "p", "q", &format!("r{i}")]);
        c.cmd(&["ZADD", &format!("z{i}"), "1.5", "a", "2", "b", "-70000", "c", &i.to_string(), &format!("m{i}")]);
    }
    c.cmd(&["HSET", "hint", "n", "12", "m", "-3"]);
    c.cmd(&["ZADD", "zint", "1", "12", "2.5", "x"]);
    c.cmd(&["RPUSH", "lint", "1", "two", "3"]);
    save(&redis);
    redis.kill9();
    let moon = moon_on(redis.dir(), shards);
    let mut c = moon.conn();
    for i in 0..50 {
        let (h, l, s) = (format!("h{i}"), format!("l{i}"), format!("s{i}"));
        match i % 4 {
            0 => assert_eq!(c.cmd(&["HSET", &h, "added", "7", "name", "sun"]).int(), 1),
            1 => assert_eq!(c.cmd(&["HDEL", &h, "name"]).int(), 1),
            2 => assert_eq!(c.cmd(&["LPOP", &l]).text(), "a"),
            _ => assert_eq!(c.cmd(&["RPUSH", &l, "42", &"d".repeat(5000)]).int(), 5),
        }
        c.cmd(&["SADD", &s, &format!("t{i}")]);
        let z = format!("z{i}");
        match i % 3 {
            0 => assert_eq!(c.cmd(&["ZADD", &z, "1e300", "big", "-0.125", "small"]).int(), 2),
            1 => assert_eq!(c.cmd(&["ZREM", &z, "a"]).int(), 1),
            _ => assert_eq!(c.cmd(&["ZINCRBY", &z, "0.25", "b"]).text(), "2.25"),
        }
        assert_eq!(
            c.cmd(&["ZREVRANGE", &z, "0", "1", "WITHSCORES"]).array()[..2],
            match i % 3 {
                0 => [Value::bulk("big"), Value::bulk("1.0000000000000001e+300")],
                _ if i > 2 => [Value::bulk(&format!("m{i}")), Value::bulk(&i.to_string())],
                1 => [Value::bulk("b"), Value::bulk("2")],
                _ => [Value::bulk("b"), Value::bulk("2.25")],
            }
        );
        assert_eq!(
            c.cmd(&["HLEN", &h]).int(),
            if i % 4 == 0 {
                3
            } else if i % 4 == 1 {
                1
            } else {
                2
            }
        );
    }
    c.cmd(&["HSET", "hint", "o", "x"]);
    assert_eq!(c.cmd(&["ZSCORE", "zint", "12"]).text(), "1");
    c.cmd(&["ZADD", "zint", "-1", "y"]);
    assert_eq!(c.cmd(&["LRANGE", "lint", "0", "-1"]), Value::Array(["1", "two", "3"].map(Value::bulk).to_vec()));
    // Moon serves (and saves) in the directory it was given, Redis's.
    let dir = redis.dir();
    assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    let expected = digest(&mut c);
    moon.kill9();
    let check = std::process::Command::new(moon_tests::redis_tool("redis-check-rdb").unwrap());
    let out = moon_tests::run_with_timeout(
        {
            let mut cmd = check;
            cmd.arg(dir.join("dump.rdb"));
            cmd
        },
        None,
        std::time::Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("RDB looks OK!"), "redis-check-rdb:\n{text}");
    let back = ServerOptions::redis().arg("dir", &dir.display().to_string()).start();
    let mut c = back.conn();
    assert_eq!(digest(&mut c), expected);
    assert_eq!(c.cmd(&["HGET", "h0", "name"]).text(), "sun");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "h1"]).text(), "listpack");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "z1"]).text(), "listpack");
    assert_eq!(c.cmd(&["ZRANGE", "z1", "0", "-1"]), Value::Array(["c", "m1", "b"].map(Value::bulk).to_vec()));
}

/// A damaged dump stops start-up with the offset and the tools to inspect it, instead of starting empty.
#[test]
fn corrupt_dump_refuses_to_start() {
    let moon = Server::moon(1);
    write_dataset(&mut moon.conn());
    save(&moon);
    moon.kill9();
    let path = moon.dir().join("dump.rdb");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let mut cmd = std::process::Command::new(moon_tests::bin_path("moon-server"));
    cmd.args(["--port", "0", "--appendonly", "no", "--save", "", "--dir"]).arg(moon.dir());
    let out = moon_tests::run_with_timeout(cmd, None, std::time::Duration::from_secs(10));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("byte offset") && text.contains("redis-check-rdb"), "{text}");
}

/// The databases a dump's keys come in, in file order, one entry per run of keys of the same database.
fn database_runs(dump: &[u8]) -> Vec<usize> {
    struct Runs(Vec<usize>);
    impl engine::rdb::LoadTarget for Runs {
        fn resize(&mut self, _db: usize, _keys: u64, _expires: u64) {}
        fn insert(
            &mut self,
            db: usize,
            _key: &[u8],
            _value: engine::types::Value,
            _expire_at: Option<i64>,
        ) -> Result<(), engine::rdb::RdbError> {
            if self.0.last() != Some(&db) {
                self.0.push(db);
            }
            Ok(())
        }
    }
    let mut runs = Runs(Vec::new());
    engine::rdb::load(dump, &engine::rdb::LoadOptions::default(), &mut runs).expect("the dump loads");
    runs.0
}

/// SAVE and BGSAVE write each database's keys together (one SELECTDB each, as Redis), whatever the shard
/// count: the background walk goes database by database across the shards.
fn dump_selects_each_database_once(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    for db in ["0", "3", "5"] {
        assert_eq!(c.cmd(&["SELECT", db]), Value::simple("OK"));
        let mut bytes = Vec::new();
        for i in 0..500 {
            moon_tests::resp::encode_into(&mut bytes, &["SET", &format!("key:{i}"), "v"]);
        }
        c.pipeline(bytes, 500);
    }
    let dump = moon.dir().join("dump.rdb");
    assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    assert_eq!(database_runs(&std::fs::read(&dump).unwrap()), [0, 3, 5], "SAVE");
    std::fs::remove_file(&dump).unwrap();
    assert!(!c.cmd(&["BGSAVE"]).is_error());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dump.exists() || c.cmd(&["INFO", "persistence"]).text().contains("rdb_bgsave_in_progress:1") {
        assert!(std::time::Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(database_runs(&std::fs::read(&dump).unwrap()), [0, 3, 5], "BGSAVE");
}

shard_tests!(
    save_survives_kill9,
    moon_dump_loads_in_redis,
    redis_dump_loads_in_moon,
    redis_dump_edited_in_moon_loads_back_in_redis,
    dump_selects_each_database_once
);
