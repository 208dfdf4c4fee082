//! The `redis` crate's synchronous client against Moon: the five data types, multi-key commands whose keys
//! sit on different shards, expiry, transactions (atomic pipelines, WATCH), SELECT, SCAN, INFO, CLIENT and
//! CONFIG.

use moon_tests::{keys_on_distinct_shards, Server};
use redis::{Commands, Connection, RedisResult, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

fn connect(server: &Server) -> Connection {
    connect_db(server, 0)
}

fn connect_db(server: &Server, db: i64) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/{db}", server.port())).expect("client");
    let con = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    con.set_write_timeout(Some(Duration::from_secs(20))).expect("write timeout");
    con
}

fn strings(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let _: () = c.set("s", "hello").unwrap();
    assert_eq!(c.get::<_, String>("s").unwrap(), "hello");
    assert_eq!(c.append::<_, _, i64>("s", " world").unwrap(), 11);
    assert_eq!(c.strlen::<_, i64>("s").unwrap(), 11);
    assert_eq!(c.getrange::<_, String>("s", 0, 4).unwrap(), "hello");
    assert_eq!(c.get::<_, Option<String>>("missing").unwrap(), None);
    assert!(!c.set_nx::<_, _, bool>("s", "x").unwrap());
    assert_eq!(c.incr::<_, _, i64>("n", 5).unwrap(), 5);
    assert_eq!(c.decr::<_, _, i64>("n", 2).unwrap(), 3);
    assert_eq!(redis::cmd("INCRBYFLOAT").arg("f").arg("1.5").query::<String>(&mut c).unwrap(), "1.5");
    let err = c.incr::<_, _, i64>("s", 1).unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"), "{err:?}");
    assert_eq!(redis::cmd("GETDEL").arg("n").query::<String>(&mut c).unwrap(), "3");
    assert!(!c.exists::<_, bool>("n").unwrap());
    assert_eq!(redis::cmd("SET").arg("s").arg("v2").arg("GET").query::<String>(&mut c).unwrap(), "hello world");

    // MSET/MGET over 200 keys: with 4 shards they spread over every shard.
    let keys: Vec<String> = (0..200).map(|i| format!("key:{i}")).collect();
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("val-{k}"))).collect();
    let _: () = c.mset(&pairs).unwrap();
    let got: Vec<Option<String>> = c.mget(&keys).unwrap();
    assert_eq!(got, pairs.iter().map(|(_, v)| Some(v.clone())).collect::<Vec<_>>());
    let mut with_missing = keys[..3].to_vec();
    with_missing.insert(1, "nope".into());
    let got: Vec<Option<String>> = c.mget(&with_missing).unwrap();
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_deref(), Some("val-key:1"));
    assert_eq!(c.exists::<_, i64>(&keys).unwrap(), 200);
    let fresh = keys_on_distinct_shards("nx", 4);
    let ok: bool = redis::cmd("MSETNX").arg(&fresh[0]).arg(1).arg(&fresh[1]).arg(2).query(&mut c).unwrap();
    assert!(ok);
    let ok: bool = redis::cmd("MSETNX").arg(&fresh[1]).arg(3).arg(&fresh[2]).arg(4).query(&mut c).unwrap();
    assert!(!ok, "MSETNX must not set anything when one key exists");
    assert!(!c.exists::<_, bool>(&fresh[2]).unwrap());
    assert_eq!(c.del::<_, i64>(&keys).unwrap(), 200);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 4);
}

fn lists(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    assert_eq!(c.rpush::<_, _, i64>("l", &["a", "b", "c"]).unwrap(), 3);
    assert_eq!(c.lpush::<_, _, i64>("l", "z").unwrap(), 4);
    assert_eq!(c.lrange::<_, Vec<String>>("l", 0, -1).unwrap(), ["z", "a", "b", "c"]);
    assert_eq!(c.llen::<_, i64>("l").unwrap(), 4);
    assert_eq!(c.lindex::<_, String>("l", -1).unwrap(), "c");
    let _: () = c.lset("l", 1, "A").unwrap();
    assert_eq!(c.linsert_before::<_, _, _, i64>("l", "b", "x").unwrap(), 5);
    assert_eq!(c.lrem::<_, _, i64>("l", 0, "x").unwrap(), 1);
    assert_eq!(redis::cmd("LPOS").arg("l").arg("b").query::<i64>(&mut c).unwrap(), 2);
    assert_eq!(c.lpop::<_, String>("l", None).unwrap(), "z");
    assert_eq!(c.rpop::<_, Vec<String>>("l", std::num::NonZeroUsize::new(2)).unwrap(), ["c", "b"]);
    let _: () = c.rpush("l", &[1, 2, 3, 4, 5]).unwrap();
    let _: () = c.ltrim("l", 1, 3).unwrap();
    assert_eq!(c.lrange::<_, Vec<String>>("l", 0, -1).unwrap(), ["1", "2", "3"]);
    let err = c.lset::<_, _, ()>("l", 10, "x").unwrap_err();
    assert_eq!(err.detail(), Some("index out of range"));
    let _: () = c.set("str", "x").unwrap();
    let err = c.lpush::<_, _, i64>("str", "x").unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert_eq!(c.lpop::<_, Option<String>>("nolist", None).unwrap(), None);
}

fn hashes(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    assert_eq!(c.hset_multiple::<_, _, _, ()>("h", &[("a", "1"), ("b", "2"), ("c", "3")]), Ok(()));
    assert_eq!(c.hget::<_, _, String>("h", "b").unwrap(), "2");
    assert_eq!(c.hincr::<_, _, _, i64>("h", "a", 10).unwrap(), 11);
    assert_eq!(redis::cmd("HINCRBYFLOAT").arg("h").arg("c").arg("0.5").query::<String>(&mut c).unwrap(), "3.5");
    let all: HashMap<String, String> = c.hgetall("h").unwrap();
    let want: HashMap<String, String> =
        [("a", "11"), ("b", "2"), ("c", "3.5")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(all, want);
    assert_eq!(c.hlen::<_, i64>("h").unwrap(), 3);
    assert!(c.hexists::<_, _, bool>("h", "a").unwrap());
    assert_eq!(c.hdel::<_, _, i64>("h", &["a", "zz"]).unwrap(), 1);
    let mut keys: Vec<String> = c.hkeys("h").unwrap();
    keys.sort();
    assert_eq!(keys, ["b", "c"]);
    let vals: Vec<Option<String>> = redis::cmd("HMGET").arg("h").arg("b").arg("nope").query(&mut c).unwrap();
    assert_eq!(vals, [Some("2".to_string()), None]);
    // A hash big enough to leave the compact encoding.
    let fields: Vec<(String, String)> = (0..600).map(|i| (format!("f{i}"), "v".repeat(i % 90))).collect();
    let _: () = c.hset_multiple("big", &fields).unwrap();
    let all: HashMap<String, String> = c.hgetall("big").unwrap();
    assert_eq!(all.len(), 600);
    assert_eq!(all["f89"], "v".repeat(89));
    assert_eq!(redis::cmd("HSTRLEN").arg("big").arg("f89").query::<i64>(&mut c).unwrap(), 89);
}

fn sets(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    assert_eq!(c.sadd::<_, _, i64>("s1", &["a", "b", "c"]).unwrap(), 3);
    assert_eq!(c.sadd::<_, _, i64>("s1", "a").unwrap(), 0);
    assert!(c.sismember::<_, _, bool>("s1", "b").unwrap());
    assert_eq!(c.scard::<_, i64>("s1").unwrap(), 3);
    let _: () = c.sadd("s2", &["b", "c", "d"]).unwrap();
    let inter: HashSet<String> = c.sinter(&["s1", "s2"]).unwrap();
    assert_eq!(inter, ["b", "c"].iter().map(|s| s.to_string()).collect());
    let union: HashSet<String> = c.sunion(&["s1", "s2"]).unwrap();
    assert_eq!(union.len(), 4);
    let diff: HashSet<String> = c.sdiff(&["s1", "s2"]).unwrap();
    assert_eq!(diff, ["a".to_string()].into_iter().collect());
    assert_eq!(c.srem::<_, _, i64>("s1", &["a", "zz"]).unwrap(), 1);
    let ints: Vec<i64> = (0..1000).collect();
    let _: () = c.sadd("ints", &ints).unwrap();
    let members: HashSet<i64> = c.smembers("ints").unwrap();
    assert_eq!(members, ints.iter().copied().collect());
    let popped: Vec<i64> = redis::cmd("SPOP").arg("ints").arg(10).query(&mut c).unwrap();
    assert_eq!(popped.len(), 10);
    assert_eq!(c.scard::<_, i64>("ints").unwrap(), 990);
    let flags: Vec<i64> = redis::cmd("SMISMEMBER").arg("s2").arg("b").arg("q").query(&mut c).unwrap();
    assert_eq!(flags, [1, 0]);
}

fn zsets(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    assert_eq!(c.zadd_multiple::<_, _, _, i64>("z", &[(1.0, "a"), (2.0, "b"), (3.0, "c")]).unwrap(), 3);
    assert_eq!(c.zscore::<_, _, f64>("z", "b").unwrap(), 2.0);
    assert_eq!(c.zincr::<_, _, _, f64>("z", "a", 2.5).unwrap(), 3.5);
    let range: Vec<(String, f64)> = c.zrange_withscores("z", 0, -1).unwrap();
    assert_eq!(range, [("b".to_string(), 2.0), ("c".to_string(), 3.0), ("a".to_string(), 3.5)]);
    assert_eq!(c.zrank::<_, _, i64>("z", "a").unwrap(), 2);
    assert_eq!(c.zrangebyscore::<_, _, _, Vec<String>>("z", "(2", "+inf").unwrap(), ["c", "a"]);
    assert_eq!(c.zcount::<_, _, _, i64>("z", 2, 3).unwrap(), 2);
    assert_eq!(c.zrem::<_, _, i64>("z", "c").unwrap(), 1);
    assert_eq!(c.zcard::<_, i64>("z").unwrap(), 2);
    let popped: Vec<(String, f64)> = c.zpopmin("z", 1).unwrap();
    assert_eq!(popped, [("b".to_string(), 2.0)]);
    let revs: Vec<String> = redis::cmd("ZRANGE").arg("z").arg(0).arg(-1).arg("REV").query(&mut c).unwrap();
    assert_eq!(revs, ["a"]);
    let members: Vec<(String, f64)> = (0..300).map(|i| (format!("m{i}"), f64::from(i) * 0.5)).collect();
    let tuples: Vec<(f64, String)> = members.iter().map(|(m, s)| (*s, m.clone())).collect();
    let _: () = c.zadd_multiple("big", &tuples).unwrap();
    let top: Vec<String> = c.zrevrange("big", 0, 2).unwrap();
    assert_eq!(top, ["m299", "m298", "m297"]);
    let err = redis::cmd("ZADD").arg("big").arg("NX").arg("XX").arg(1).arg("x").query::<i64>(&mut c).unwrap_err();
    assert_eq!(err.detail(), Some("XX and NX options at the same time are not compatible"), "{err:?}");
}

/// Commands whose keys land on different shards (with 4 shards, four distinct ones).
fn cross_shard(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let k = keys_on_distinct_shards("x", 8);

    let _: () = c.set(&k[0], "v0").unwrap();
    let _: () = c.rename(&k[0], &k[1]).unwrap();
    assert_eq!(c.get::<_, Option<String>>(&k[0]).unwrap(), None);
    assert_eq!(c.get::<_, String>(&k[1]).unwrap(), "v0");
    let _: () = c.set(&k[2], "other").unwrap();
    assert!(!c.rename_nx::<_, _, bool>(&k[1], &k[2]).unwrap());
    let err = c.rename::<_, _, ()>("missing", &k[3]).unwrap_err();
    assert_eq!(err.detail(), Some("no such key"));
    assert!(redis::cmd("COPY").arg(&k[1]).arg(&k[3]).query::<bool>(&mut c).unwrap());
    assert_eq!(c.get::<_, String>(&k[3]).unwrap(), "v0");

    let _: () = c.sadd(&k[4], &["a", "b", "c"]).unwrap();
    let _: () = c.sadd(&k[5], &["b", "c", "d"]).unwrap();
    assert!(c.smove::<_, _, _, bool>(&k[4], &k[5], "a").unwrap());
    assert!(!c.sismember::<_, _, bool>(&k[4], "a").unwrap());
    assert_eq!(c.sinterstore::<_, _, i64>(&k[6], &[&k[4], &k[5]]).unwrap(), 2);
    let inter: BTreeSet<String> = c.smembers(&k[6]).unwrap();
    assert_eq!(inter, ["b", "c"].iter().map(|s| s.to_string()).collect());
    assert_eq!(c.sunionstore::<_, _, i64>(&k[7], &[&k[4], &k[5]]).unwrap(), 4);
    assert_eq!(c.sdiffstore::<_, _, i64>(&k[7], &[&k[5], &k[4]]).unwrap(), 2);
    let err = c.sinterstore::<_, _, i64>(&k[6], &[&k[4], &k[1]]).unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));

    let l = keys_on_distinct_shards("list", 4);
    let _: () = c.rpush(&l[0], &["1", "2", "3"]).unwrap();
    let moved: String = redis::cmd("LMOVE").arg(&l[0]).arg(&l[1]).arg("LEFT").arg("RIGHT").query(&mut c).unwrap();
    assert_eq!(moved, "1");
    let moved: String = c.rpoplpush(&l[0], &l[2]).unwrap();
    assert_eq!(moved, "3");
    assert_eq!(c.lrange::<_, Vec<String>>(&l[0], 0, -1).unwrap(), ["2"]);
    assert_eq!(c.lrange::<_, Vec<String>>(&l[1], 0, -1).unwrap(), ["1"]);
    assert_eq!(c.lrange::<_, Vec<String>>(&l[2], 0, -1).unwrap(), ["3"]);
    let popped: Value = redis::cmd("LMPOP").arg(2).arg("nothing").arg(&l[2]).arg("LEFT").query(&mut c).unwrap();
    assert_eq!(format!("{popped:?}"), format!("{:?}", redis_pair(&l[2], &["3"])));

    let z = keys_on_distinct_shards("zset", 4);
    let _: () = c.zadd_multiple(&z[0], &[(1, "a"), (2, "b")]).unwrap();
    let _: () = c.zadd_multiple(&z[1], &[(10, "b"), (20, "c")]).unwrap();
    let n: i64 = redis::cmd("ZUNIONSTORE")
        .arg(&z[2])
        .arg(2)
        .arg(&z[0])
        .arg(&z[1])
        .arg("WEIGHTS")
        .arg(1)
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 3);
    let got: Vec<(String, f64)> = c.zrange_withscores(&z[2], 0, -1).unwrap();
    assert_eq!(got, [("a".to_string(), 1.0), ("b".to_string(), 22.0), ("c".to_string(), 40.0)]);
    assert_eq!(c.zinterstore::<_, _, i64>(&z[3], &[&z[0], &z[1]]).unwrap(), 1);
    assert_eq!(c.zscore::<_, _, f64>(&z[3], "b").unwrap(), 12.0);
    let n: i64 = redis::cmd("ZRANGESTORE").arg(&z[3]).arg(&z[2]).arg(0).arg(1).query(&mut c).unwrap();
    assert_eq!(n, 2);

    // DEL / EXISTS / UNLINK over every shard at once.
    let all: Vec<&String> = k.iter().chain(&l).chain(&z).collect();
    let existing: i64 = c.exists(&all).unwrap();
    assert_eq!(c.del::<_, i64>(&all).unwrap(), existing);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
}

fn redis_pair(key: &str, items: &[&str]) -> Value {
    Value::Array(vec![
        Value::BulkString(key.as_bytes().to_vec()),
        Value::Array(items.iter().map(|s| Value::BulkString(s.as_bytes().to_vec())).collect()),
    ])
}

fn expiry(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let _: () = c.set("k", "v").unwrap();
    assert_eq!(c.ttl::<_, i64>("k").unwrap(), -1);
    assert_eq!(c.ttl::<_, i64>("missing").unwrap(), -2);
    assert!(c.expire::<_, bool>("k", 100).unwrap());
    let ttl: i64 = c.ttl("k").unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    let pttl: i64 = c.pttl("k").unwrap();
    assert!((98_000..=100_000).contains(&pttl), "pttl {pttl}");
    assert!(c.persist::<_, bool>("k").unwrap());
    assert_eq!(c.ttl::<_, i64>("k").unwrap(), -1);
    let _: () = c.set_ex("ex", "v", 50).unwrap();
    assert!((49..=50).contains(&c.ttl::<_, i64>("ex").unwrap()));
    // KEEPTTL and a plain SET that drops the TTL.
    let _: () = redis::cmd("SET").arg("ex").arg("w").arg("KEEPTTL").query(&mut c).unwrap();
    assert!(c.ttl::<_, i64>("ex").unwrap() > 0);
    let _: () = c.set("ex", "w").unwrap();
    assert_eq!(c.ttl::<_, i64>("ex").unwrap(), -1);
    // A key expiring in 100 ms is gone (lazily on access and for EXISTS/DBSIZE via active expiry).
    let many: Vec<String> = (0..50).map(|i| format!("short:{i}")).collect();
    for key in &many {
        let _: () = redis::cmd("SET").arg(key).arg("v").arg("PX").arg(100).query(&mut c).unwrap();
    }
    assert_eq!(c.exists::<_, i64>(&many).unwrap(), 50);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(c.get::<_, Option<String>>(&many[0]).unwrap(), None);
    assert_eq!(c.exists::<_, i64>(&many).unwrap(), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        if n == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "active expiry left {n} keys");
        std::thread::sleep(Duration::from_millis(50));
    }
    // EXPIREAT in the past deletes at once.
    assert!(redis::cmd("EXPIREAT").arg("k").arg(1).query::<bool>(&mut c).unwrap());
    assert!(!c.exists::<_, bool>("k").unwrap());
    let err = redis::cmd("EXPIRE").arg("ex").arg("abc").query::<i64>(&mut c).unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));
}

fn multi_exec(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let k = keys_on_distinct_shards("tx", 4);
    let (a, b): (i64, i64) =
        redis::pipe().atomic().incr(&k[0], 1).incr(&k[1], 2).ignore().incr(&k[1], 3).query(&mut c).unwrap();
    assert_eq!((a, b), (1, 5));
    // An error inside EXEC does not stop the other commands.
    let _: () = c.set(&k[2], "str").unwrap();
    let mut raw = server.conn();
    assert_eq!(raw.cmd(&["MULTI"]), moon_tests::Value::simple("OK"));
    assert_eq!(raw.cmd(&["LPUSH", &k[2], "x"]), moon_tests::Value::simple("QUEUED"));
    assert_eq!(raw.cmd(&["SET", &k[3], "ok"]), moon_tests::Value::simple("QUEUED"));
    let res = raw.cmd(&["EXEC"]);
    assert_eq!(
        res,
        moon_tests::Value::Array(vec![
            moon_tests::Value::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into()),
            moon_tests::Value::simple("OK"),
        ])
    );
    // EXECABORT when a queued command has the wrong arity.
    let _: Value = redis::cmd("MULTI").query(&mut c).unwrap();
    let err = redis::cmd("GET").query::<Value>(&mut c).unwrap_err();
    assert!(err.to_string().contains("wrong number of arguments"), "{err}");
    let err = redis::cmd("EXEC").query::<Value>(&mut c).unwrap_err();
    assert_eq!(err.code(), Some("EXECABORT"), "{err:?}");

    // Atomicity across shards: a reader never sees one key of a transaction updated without the other.
    let writer_server_port = server.port();
    let (k0, k1) = (k[0].clone(), k[1].clone());
    let _: () = c.mset(&[(&k0, 0), (&k1, 0)]).unwrap();
    let writer = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{writer_server_port}/")).unwrap();
        let mut w = client.get_connection_with_timeout(Duration::from_secs(10)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        for _ in 0..300 {
            let _: RedisResult<(i64, i64)> = redis::pipe().atomic().incr(&k0, 1).incr(&k1, 1).query(&mut w);
        }
    });
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let (x, y): (i64, i64) = redis::cmd("MGET").arg(&k[0]).arg(&k[1]).query(&mut c).unwrap();
        assert_eq!(x, y, "MGET saw half a transaction");
        reads += 1;
    }
    writer.join().unwrap();
    let (x, y): (i64, i64) = redis::cmd("MGET").arg(&k[0]).arg(&k[1]).query(&mut c).unwrap();
    assert_eq!((x, y), (300, 300));
}

fn watch(shards: usize) {
    let server = Server::moon(shards);
    let mut c1 = connect(&server);
    let mut c2 = connect(&server);
    let k = keys_on_distinct_shards("w", 4);
    let _: () = c1.set(&k[0], "1").unwrap();

    // Another connection touches the watched key: EXEC returns nil and nothing runs.
    let _: () = redis::cmd("WATCH").arg(&k[0]).arg(&k[1]).query(&mut c1).unwrap();
    let _: () = c2.set(&k[1], "changed").unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c1).unwrap();
    let _: String = redis::cmd("SET").arg(&k[2]).arg("x").query(&mut c1).unwrap();
    let res: Value = redis::cmd("EXEC").query(&mut c1).unwrap();
    assert_eq!(res, Value::Nil, "EXEC after a touched WATCH must abort");
    assert!(!c1.exists::<_, bool>(&k[2]).unwrap());

    // Untouched WATCH: EXEC runs.
    let _: () = redis::cmd("WATCH").arg(&k[0]).query(&mut c1).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c1).unwrap();
    let _: String = redis::cmd("INCR").arg(&k[0]).query(&mut c1).unwrap();
    let res: Vec<i64> = redis::cmd("EXEC").query(&mut c1).unwrap();
    assert_eq!(res, [2]);

    // Expiry, deletion and FLUSHDB count as touching; UNWATCH forgets.
    let _: () = redis::cmd("WATCH").arg(&k[0]).query(&mut c1).unwrap();
    let _: () = c2.del(&k[0]).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c1).unwrap();
    let _: String = redis::cmd("PING").query(&mut c1).unwrap();
    assert_eq!(redis::cmd("EXEC").query::<Value>(&mut c1).unwrap(), Value::Nil);
    let _: () = redis::cmd("WATCH").arg(&k[3]).query(&mut c1).unwrap();
    let _: () = c2.set(&k[3], "x").unwrap();
    let _: () = redis::cmd("UNWATCH").query(&mut c1).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c1).unwrap();
    let _: String = redis::cmd("PING").query(&mut c1).unwrap();
    let res: Vec<String> = redis::cmd("EXEC").query(&mut c1).unwrap();
    assert_eq!(res, ["PONG"]);
    // WATCH in another database is per database.
    let _: () = redis::cmd("WATCH").arg("dbkey").query(&mut c1).unwrap();
    let mut c3 = connect_db(&server, 3);
    let _: () = c3.set("dbkey", "other-db").unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c1).unwrap();
    let _: String = redis::cmd("PING").query(&mut c1).unwrap();
    let res: Vec<String> = redis::cmd("EXEC").query(&mut c1).unwrap();
    assert_eq!(res, ["PONG"], "a write to the same name in db 3 must not abort a WATCH in db 0");
}

/// A key that had already expired (but was not yet reclaimed) when WATCHed: its deletion by expiry or by a
/// command is not a change, so EXEC runs (Redis 7.0 `touchWatchedKey`, `wk->expired`).
fn watch_expired_key(shards: usize) {
    let server = Server::moon(shards);
    let mut c = server.conn();
    let ok = moon_tests::Value::simple("OK");
    let pong = moon_tests::Value::Array(vec![moon_tests::Value::simple("PONG")]);
    for (key, between) in [("a", None), ("b", Some(["GET", "b"])), ("c", Some(["DEL", "c"]))] {
        // SET with a PXAT in the past stores a key that is already expired.
        assert_eq!(c.cmd(&["SET", key, "1", "PXAT", "5"]), ok);
        assert_eq!(c.cmd(&["WATCH", key]), ok);
        if let Some(cmd) = between {
            c.cmd(&cmd);
        }
        assert_eq!(c.cmd(&["MULTI"]), ok);
        c.cmd(&["PING"]);
        assert_eq!(c.cmd(&["EXEC"]), pong, "WATCH of already-expired {key:?}, then {between:?}: EXEC must run");
    }
}

/// Float replies of the increment commands, compared with redis-server's (Redis computes them in long double
/// and prints them with 17 significant digits, and parses hexadecimal and exponent forms with strtold).
fn float_replies_match_redis(shards: usize) {
    if !moon_tests::have_redis_tools("client::float_replies_match_redis", &["redis-server"]) {
        return;
    }
    let script: &[&[&str]] = &[
        &["HINCRBYFLOAT", "h", "f", "0.1"],
        &["HINCRBYFLOAT", "h", "f", "0.2"],
        &["HINCRBYFLOAT", "h", "f", "9223372036854775807"],
        &["HINCRBYFLOAT", "h", "g", "1111111111111111111111111111111111"],
        &["HINCRBYFLOAT", "h", "x", "0x1"],
        &["HSET", "h", "hex", "0x10"],
        &["HINCRBYFLOAT", "h", "hex", "1"],
        &["HINCRBYFLOAT", "h", "e", "1e3"],
        &["HINCRBYFLOAT", "h", "e", "5.0e-3"],
        &["HINCRBYFLOAT", "h", "n", "-9223372036854775808"],
        &["HINCRBYFLOAT", "h", "n", "34"],
        &["HGETALL", "h"],
        &["INCRBYFLOAT", "s", "0.1"],
        &["INCRBYFLOAT", "s", "0.2"],
        &["INCRBYFLOAT", "s", "9223372036854775807"],
        &["INCRBYFLOAT", "t", "0x1"],
        &["INCRBYFLOAT", "t", "1e3"],
        &["ZINCRBY", "z", "0.1", "m"],
        &["ZINCRBY", "z", "0.2", "m"],
        &["ZSCORE", "z", "m"],
        &["ZADD", "z", "9223372036854775807", "big"],
        &["ZSCORE", "z", "big"],
        &["ZADD", "z", "0x10", "hex"],
    ];
    let redis = Server::redis();
    let moon = Server::moon(shards);
    let (mut r, mut m) = (redis.conn(), moon.conn());
    let mut diffs = Vec::new();
    for args in script {
        let (want, got) = (r.cmd(args), m.cmd(args));
        if want != got {
            diffs.push(format!("{args:?}\n  redis: {want:?}\n  moon:  {got:?}"));
        }
    }
    assert!(diffs.is_empty(), "{} replies differ:\n{}", diffs.len(), diffs.join("\n"));
}

fn select(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let _: () = c.set("k", "db0").unwrap();
    let _: () = redis::cmd("SELECT").arg(1).query(&mut c).unwrap();
    assert_eq!(c.get::<_, Option<String>>("k").unwrap(), None);
    let _: () = c.set("k", "db1").unwrap();
    let mut c5 = connect_db(&server, 5);
    let _: () = c5.set("only5", "x").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    assert_eq!(c.get::<_, String>("k").unwrap(), "db0");
    assert!(redis::cmd("MOVE").arg("k").arg(2).query::<bool>(&mut c).unwrap());
    assert!(!c.exists::<_, bool>("k").unwrap());
    let _: () = redis::cmd("SWAPDB").arg(0).arg(5).query(&mut c).unwrap();
    assert_eq!(c.get::<_, String>("only5").unwrap(), "x");
    assert_eq!(c5.get::<_, Option<String>>("only5").unwrap(), None);
    let err = redis::cmd("SELECT").arg(16).query::<()>(&mut c).unwrap_err();
    assert_eq!(err.detail(), Some("DB index is out of range"));
    let info: String = redis::cmd("INFO").arg("keyspace").query(&mut c).unwrap();
    assert!(info.contains("db0:keys=1,expires=0"), "{info}");
    assert!(info.contains("db1:keys=1,expires=0"), "{info}");
    assert!(info.contains("db2:keys=1,expires=0"), "{info}");
}

fn scan(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let keys: BTreeSet<String> = (0..2000).map(|i| format!("scan:{i}")).collect();
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.set(k, 1).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let _: () = c.set("other", 1).unwrap();

    // Every key present for the whole scan is returned, even while keys are added during it (growth).
    let mut seen = BTreeSet::new();
    let mut cursor: u64 = 0;
    let mut rounds = 0;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg("scan:*").arg("COUNT").arg(37).query(&mut c).unwrap();
        seen.extend(batch);
        if rounds < 50 {
            let extra: Vec<(String, i64)> = (0..100).map(|i| (format!("grow:{rounds}:{i}"), 1)).collect();
            let _: () = c.mset(&extra).unwrap();
        }
        rounds += 1;
        assert!(rounds < 100_000, "SCAN does not terminate");
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let missing: Vec<&String> = keys.difference(&seen).collect();
    assert!(missing.is_empty(), "SCAN missed {} keys, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(seen.iter().all(|k| k.starts_with("scan:")));

    let typed: Vec<String> = c.scan_match::<_, String>("o*").unwrap().collect();
    assert_eq!(typed, ["other"]);
    let _: () = c.rpush("alist", 1).unwrap();
    let (_, only_lists): (u64, Vec<String>) =
        redis::cmd("SCAN").arg(0).arg("COUNT").arg(100_000).arg("TYPE").arg("list").query(&mut c).unwrap();
    assert_eq!(only_lists, ["alist"]);
    let fields: Vec<(String, i64)> = (0..300).map(|i| (format!("f{i}"), i)).collect();
    let _: () = c.hset_multiple("h", &fields).unwrap();
    let got: HashMap<String, i64> = c.hscan::<_, (String, i64)>("h").unwrap().collect();
    assert_eq!(got.len(), 300);
    let _: () = c.sadd("s", (0..300).collect::<Vec<i64>>()).unwrap();
    let got: BTreeSet<i64> = c.sscan::<_, i64>("s").unwrap().collect();
    assert_eq!(got.len(), 300);
}

fn info(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let _: () = c.set("a", 1).unwrap();
    let info: redis::InfoDict = redis::cmd("INFO").query(&mut c).unwrap();
    assert_eq!(info.get::<String>("redis_version").as_deref(), Some("7.0.15"));
    assert_eq!(info.get::<String>("redis_mode").as_deref(), Some("standalone"));
    assert_eq!(info.get::<u16>("tcp_port"), Some(server.port()));
    assert!(info.get::<i64>("connected_clients").unwrap() >= 1);
    assert!(info.get::<i64>("used_memory").unwrap() > 0);
    assert!(info.get::<i64>("total_commands_processed").unwrap() >= 1);
    assert_eq!(info.get::<String>("role").as_deref(), Some("master"));
    assert!(info.get::<String>("db0").unwrap().starts_with("keys=1,"));
    let raw: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(raw.starts_with("# Server\r\n"), "{raw}");
    assert!(!raw.contains("# Memory"));
    let all: String = redis::cmd("INFO").arg("everything").query(&mut c).unwrap();
    for section in ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# CPU", "# Keyspace"] {
        assert!(all.contains(section), "INFO everything lacks {section}");
    }
    for line in all.lines() {
        assert!(line.is_empty() || line.starts_with('#') || line.contains(':'), "bad INFO line {line:?}");
    }
}

fn client_cmd(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    assert_eq!(redis::cmd("CLIENT").arg("GETNAME").query::<Option<String>>(&mut c).unwrap(), None);
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("tester").query(&mut c).unwrap();
    assert_eq!(redis::cmd("CLIENT").arg("GETNAME").query::<String>(&mut c).unwrap(), "tester");
    let err = redis::cmd("CLIENT").arg("SETNAME").arg("has space").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("Client names cannot contain spaces"), "{err}");
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut c).unwrap();
    assert!(id > 0);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    let me = list.lines().find(|l| l.contains("name=tester")).unwrap_or_else(|| panic!("{list}"));
    assert!(me.starts_with(&format!("id={id} ")), "{me}");
    let mut other = connect(&server);
    let other_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut other).unwrap();
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(other_id).query(&mut c).unwrap();
    assert_eq!(killed, 1);
    assert!(redis::cmd("PING").query::<String>(&mut other).is_err(), "killed client still served");
}

fn config(shards: usize) {
    let server = Server::moon(shards);
    let mut c = connect(&server);
    let got: BTreeMap<String, String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query(&mut c).unwrap();
    assert_eq!(got.get("maxmemory-policy").map(String::as_str), Some("noeviction"));
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lru").query(&mut c).unwrap();
    let got: BTreeMap<String, String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory-*").query(&mut c).unwrap();
    assert_eq!(got.get("maxmemory-policy").map(String::as_str), Some("allkeys-lru"));
    assert!(got.contains_key("maxmemory-samples"));
    let got: BTreeMap<String, String> =
        redis::cmd("CONFIG").arg("GET").arg("port").arg("appendonly").query(&mut c).unwrap();
    assert_eq!(got.get("port"), Some(&server.port().to_string()));
    assert_eq!(got.get("appendonly").map(String::as_str), Some("no"));
    let all: BTreeMap<String, String> = redis::cmd("CONFIG").arg("GET").arg("*").query(&mut c).unwrap();
    for name in ["port", "bind", "dir", "maxmemory", "appendonly", "appendfsync", "save", "timeout", "maxclients"] {
        assert!(all.contains_key(name), "CONFIG GET * lacks {name}");
    }
    let err = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("bogus").query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string().contains(
            "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the \
             following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, \
             allkeys-random, noeviction"
        ),
        "{err}"
    );
    let err = redis::cmd("CONFIG").arg("SET").arg("no-such-thing").arg("1").query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string().contains("Unknown option or number of arguments for CONFIG SET - 'no-such-thing'"),
        "{err}"
    );
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("100mb").query(&mut c).unwrap();
    let got: BTreeMap<String, String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut c).unwrap();
    assert_eq!(got.get("maxmemory").map(String::as_str), Some("104857600"));
}

/// CONFIG GET * lists the same parameter names as redis-server 7.0 (tools read settings they expect).
fn config_names_match_redis(shards: usize) {
    if !moon_tests::have_redis_tools("client::config_names_match_redis", &["redis-server"]) {
        return;
    }
    let names = |s: &Server| -> BTreeSet<String> {
        let all: BTreeMap<String, String> = redis::cmd("CONFIG").arg("GET").arg("*").query(&mut connect(s)).unwrap();
        all.into_keys().collect()
    };
    let redis = Server::redis();
    let moon = Server::moon(shards);
    let (want, got) = (names(&redis), names(&moon));
    let missing: Vec<&String> = want.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&want).filter(|n| *n != "shards").collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "CONFIG GET *: {} names missing from Moon: {missing:?}\n{} names Redis does not have: {extra:?}",
        missing.len(),
        extra.len()
    );
}

shard_tests!(
    strings,
    lists,
    hashes,
    sets,
    zsets,
    cross_shard,
    expiry,
    multi_exec,
    watch,
    watch_expired_key,
    float_replies_match_redis,
    select,
    scan,
    info,
    client_cmd,
    config,
    config_names_match_redis
);
