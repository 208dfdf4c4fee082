//! Raw bytes over a TcpStream: malformed and oversized requests, inline commands, deep pipelines, requests
//! split at every byte, large arguments, RESP3, QUIT. Where redis-server is installed the exact bytes Moon
//! sends back (and whether it closes the connection) are compared with Redis's for the same input.

use moon_tests::resp::{encode, encode_into};
use moon_tests::{have_redis_tools, RawConn, Server, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What a server did with some bytes sent on a fresh connection: everything it wrote back within `quiet` of
/// silence, and whether it closed the connection.
#[derive(Debug, PartialEq, Eq)]
pub struct Exchange {
    pub reply: String,
    pub closed: bool,
}

pub fn exchange(port: u16, input: &[u8], quiet: Duration) -> Exchange {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(quiet)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    // A server that closes mid-write makes write fail; what it replied is still readable.
    let _ = s.write_all(input);
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
            Err(e) => panic!("read: {e}"),
        }
        assert!(Instant::now() < deadline, "server keeps talking");
    };
    Exchange { reply: String::from_utf8_lossy(&reply).into_owned(), closed }
}

const PROTO_BULK: &str = "-ERR Protocol error: invalid bulk length\r\n";

fn malformed_closes_only_that_client(shards: usize) {
    let moon = Server::moon(shards);
    let mut other = moon.conn();
    assert_eq!(other.cmd(&["SET", "k", "v"]), Value::simple("OK"));
    for bad in [&b"*1\r\n$abc\r\n"[..], b"*1\r\n$536870913\r\n", b"*1\r\n$-2\r\n"] {
        let got = exchange(moon.port(), bad, Duration::from_secs(5));
        assert_eq!(
            got,
            Exchange { reply: PROTO_BULK.into(), closed: true },
            "input {:?}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(other.cmd(&["GET", "k"]), Value::bulk("v"), "another client was disturbed");
    }
    // Commands before the bad bytes in the same write are answered first.
    let mut input = encode(&["SET", "x", "1"]);
    input.extend_from_slice(b"*1\r\n$abc\r\n");
    let got = exchange(moon.port(), &input, Duration::from_secs(5));
    assert_eq!(got, Exchange { reply: format!("+OK\r\n{PROTO_BULK}"), closed: true });
    // A bulk of exactly the limit is a valid header (the server then waits for the data).
    let got = exchange(moon.port(), b"*1\r\n$536870912\r\n", Duration::from_millis(300));
    assert_eq!(got, Exchange { reply: String::new(), closed: false });
    assert_eq!(other.cmd(&["PING"]), Value::simple("PONG"));
}

/// Inputs whose handling is compared byte for byte with redis-server's.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&str, Vec<u8>)> = vec![
        ("bad bulk length", b"*1\r\n$abc\r\n".to_vec()),
        ("bulk over proto-max-bulk-len", b"*1\r\n$536870913\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-1\r\n".to_vec()),
        ("bad multibulk length", b"*abc\r\n".to_vec()),
        ("multibulk length over INT_MAX", b"*2147483648\r\n".to_vec()),
        ("huge multibulk header, data pending", b"*1048577\r\n".to_vec()),
        ("multibulk count 1024*1024+1 with data", b"*1048577\r\n$4\r\nPING\r\n".to_vec()),
        ("expected $", b"*1\r\nfoo\r\n".to_vec()),
        ("empty multibulk", b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n".to_vec()),
        ("bulk not followed by CRLF", b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n".to_vec()),
        ("inline ping", b"PING\r\n".to_vec()),
        ("inline LF only", b"PING\n".to_vec()),
        ("inline set/get", b"set a b\r\nget a\r\n".to_vec()),
        ("inline blank lines", b"\r\n   \r\nPING\r\n".to_vec()),
        ("inline quoted", b"SET k \"hello world\"\r\nGET k\r\n".to_vec()),
        ("inline escapes", b"ECHO \"a\\x41\\n\\tb\"\r\nECHO 'it''s'\r\nECHO 'x\\'y'\r\n".to_vec()),
        ("inline unbalanced quotes", b"SET k \"oops\r\nPING\r\n".to_vec()),
        ("inline closing quote then char", b"ECHO \"a\"b\r\n".to_vec()),
        ("top-level bulk is inline", b"$3\r\nabc\r\n".to_vec()),
        ("unknown command", encode(&["NOSUCH", "a", "b"])),
        ("unknown command long args", encode(&["NOSUCH", &"x".repeat(200), "y"])),
        ("wrong arity", encode(&["GET"])),
        ("wrong arity subcommand", encode(&["CLIENT", "GETNAME", "x"])),
        ("unknown subcommand", encode(&["CONFIG", "NOPE"])),
        ("empty command name", encode(&[""])),
        ("quit", [encode(&["PING"]), encode(&["QUIT"]), encode(&["PING"])].concat()),
        ("quit inline", b"QUIT\r\nPING\r\n".to_vec()),
        ("hello 3", encode(&["HELLO", "3", "SETNAME", "n"]).into_iter().chain(encode(&["GET", "nope"])).collect()),
        ("hello bad proto", encode(&["HELLO", "4"])),
        ("hello 1", encode(&["HELLO", "1"])),
        ("multi errors", [encode(&["MULTI"]), encode(&["MULTI"]), encode(&["WATCH", "x"]), encode(&["EXEC"])].concat()),
        ("exec without multi", encode(&["EXEC"])),
        ("discard without multi", encode(&["DISCARD"])),
    ];
    // Lines longer than the 64 KiB inline limit, with and without a newline.
    let mut long = vec![b'a'; 70_000];
    v.push(("too big inline request", long.clone()));
    long.extend_from_slice(b"\r\n");
    v.push(("long inline line", long));
    let mut star = b"*".to_vec();
    star.extend(std::iter::repeat_n(b'1', 70_000));
    v.push(("too big mbulk count string", star));
    let mut dollar = b"*1\r\n$".to_vec();
    dollar.extend(std::iter::repeat_n(b'1', 70_000));
    v.push(("too big bulk count string", dollar));
    v
}

fn matches_redis_bytes(shards: usize) {
    if !have_redis_tools("protocol::matches_redis_bytes", &["redis-server"]) {
        return;
    }
    let redis = Server::redis();
    let moon = Server::moon(shards);
    let mut diffs = Vec::new();
    for (name, input) in cases() {
        let quiet = Duration::from_millis(300);
        let want = exchange(redis.port(), &input, quiet);
        let got = exchange(moon.port(), &input, quiet);
        // HELLO's reply carries the client id, which differs between servers.
        let strip = |s: &str| s.split("id\r\n").next().unwrap_or("").to_string();
        if want.closed != got.closed || strip(&want.reply) != strip(&got.reply) {
            diffs.push(format!("{name}:\n  redis: {want:?}\n  moon:  {got:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} inputs differ from redis-server:\n{}",
        diffs.len(),
        cases().len(),
        diffs.join("\n")
    );
}

fn inline_commands(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    c.send(b"PING\r\n");
    assert_eq!(c.read(), Value::simple("PONG"));
    c.send(b"set a b\r\n");
    assert_eq!(c.read(), Value::simple("OK"));
    c.send(b"get a\r\n");
    assert_eq!(c.read(), Value::bulk("b"));
    c.send(b"set greeting \"hello world\"\r\nGET greeting\r\n");
    assert_eq!(c.read(), Value::simple("OK"));
    assert_eq!(c.read(), Value::bulk("hello world"));
    // Inline and multibulk mixed in one write.
    let mut input = b"INCR n\r\n".to_vec();
    encode_into(&mut input, &["INCR", "n"]);
    input.extend_from_slice(b"INCR n\r\n");
    c.send(&input);
    for want in 1..=3 {
        assert_eq!(c.read(), Value::Int(want));
    }
}

fn pipelined_10000(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    let mut input = Vec::new();
    for i in 0..10_000 {
        if i % 2 == 0 {
            encode_into(&mut input, &["SET", &format!("key:{i}"), &format!("v{i}")]);
        } else {
            encode_into(&mut input, &["INCR", "counter"]);
        }
    }
    let started = Instant::now();
    let replies = c.pipeline(input, 10_000);
    eprintln!("10,000 pipelined commands at --shards {shards}: {:?}", started.elapsed());
    for (i, r) in replies.iter().enumerate() {
        let want = if i % 2 == 0 { Value::simple("OK") } else { Value::Int(i as i64 / 2 + 1) };
        assert_eq!(r, &want, "reply {i}");
    }
    let mut input = Vec::new();
    for i in (0..10_000).step_by(2) {
        encode_into(&mut input, &["GET", &format!("key:{i}")]);
    }
    let replies = c.pipeline(input, 5_000);
    for (j, r) in replies.iter().enumerate() {
        assert_eq!(r, &Value::bulk(&format!("v{}", j * 2)), "GET reply {j}");
    }
}

fn split_requests(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    let mut input = encode(&["SET", "split", "a value with spaces"]);
    encode_into(&mut input, &["GET", "split"]);
    input.extend_from_slice(b"ECHO inline\r\n");
    // One byte per write (Nagle off), so the parser sees every possible cut.
    for b in &input {
        c.send(std::slice::from_ref(b));
    }
    assert_eq!(c.read(), Value::simple("OK"));
    assert_eq!(c.read(), Value::bulk("a value with spaces"));
    assert_eq!(c.read(), Value::bulk("inline"));
}

fn large_arguments(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    // A 16 MB value and a 200,000-argument command.
    let big: Vec<u8> = (0..16 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.cmd(&[&b"SET"[..], b"big", &big]), Value::simple("OK"));
    assert_eq!(c.cmd(&["STRLEN", "big"]), Value::Int(16 << 20));
    assert_eq!(c.cmd(&["GET", "big"]), Value::Bulk(big));
    let mut args: Vec<String> = vec!["RPUSH".into(), "biglist".into()];
    args.extend((0..200_000).map(|i| i.to_string()));
    assert_eq!(c.cmd(&args), Value::Int(200_000));
    assert_eq!(c.cmd(&["LINDEX", "biglist", "-1"]), Value::bulk("199999"));
    let mut mset: Vec<String> = vec!["MSET".into()];
    for i in 0..50_000 {
        mset.push(format!("m:{i}"));
        mset.push(i.to_string());
    }
    assert_eq!(c.cmd(&mset), Value::simple("OK"));
    assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(50_002));
}

fn resp3(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    let hello = c.cmd(&["HELLO", "3"]);
    let Value::Map(fields) = &hello else { panic!("HELLO 3 must reply with a map: {hello:?}") };
    let get = |k: &str| fields.iter().find(|(f, _)| f == &Value::bulk(k)).map(|(_, v)| v.clone());
    assert_eq!(get("server"), Some(Value::bulk("redis")));
    assert_eq!(get("version"), Some(Value::bulk("7.0.15")));
    assert_eq!(get("proto"), Some(Value::Int(3)));
    assert_eq!(get("mode"), Some(Value::bulk("standalone")));
    assert_eq!(c.cmd(&["HSET", "h", "a", "1", "b", "2"]), Value::Int(2));
    assert_eq!(
        c.cmd(&["HGETALL", "h"]),
        Value::Map(vec![(Value::bulk("a"), Value::bulk("1")), (Value::bulk("b"), Value::bulk("2"))])
    );
    assert_eq!(c.cmd(&["HGETALL", "nohash"]), Value::Map(vec![]));
    assert_eq!(c.cmd(&["ZADD", "z", "1.5", "m", "2", "n"]), Value::Int(2));
    assert_eq!(c.cmd(&["ZSCORE", "z", "m"]), Value::Double("1.5".into()));
    assert_eq!(c.cmd(&["ZSCORE", "z", "n"]), Value::Double("2".into()));
    assert_eq!(c.cmd(&["ZINCRBY", "z", "inf", "n"]), Value::Double("inf".into()));
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "0", "WITHSCORES"]),
        Value::Array(vec![Value::Array(vec![Value::bulk("m"), Value::Double("1.5".into())])])
    );
    assert_eq!(c.cmd(&["ZSCORE", "z", "nope"]), Value::Null);
    assert_eq!(c.cmd(&["GET", "missing"]), Value::Null);
    assert_eq!(c.cmd(&["MGET", "missing", "h"]).array().len(), 2);
    assert_eq!(c.cmd(&["SADD", "s", "x"]), Value::Int(1));
    assert_eq!(c.cmd(&["SMEMBERS", "s"]), Value::Set(vec![Value::bulk("x")]));
    assert_eq!(c.cmd(&["LPOP", "nolist"]), Value::Null);
    assert_eq!(c.cmd(&["EXISTS", "s"]), Value::Int(1));
    assert!(matches!(c.cmd(&["CONFIG", "GET", "port"]), Value::Map(_)));
    assert_eq!(c.cmd(&["HELLO", "2"]).array().len(), 14);
    assert_eq!(c.cmd(&["GET", "missing"]), Value::NilBulk);
    assert_eq!(c.cmd(&["ZSCORE", "z", "m"]), Value::bulk("1.5"));
}

fn resp3_matches_redis(shards: usize) {
    if !have_redis_tools("protocol::resp3_matches_redis", &["redis-server"]) {
        return;
    }
    let script: &[&[&str]] = &[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HGETALL", "h"],
        &["ZADD", "z", "1.5", "m", "2", "n", "-3.25", "o"],
        &["ZSCORE", "z", "m"],
        &["ZMSCORE", "z", "m", "nope"],
        &["ZINCRBY", "z", "0.1", "m"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z", "2"],
        &["ZUNION", "1", "h2", "WITHSCORES"],
        &["ZADD", "z2", "1", "a"],
        &["ZRANDMEMBER", "z2", "1", "WITHSCORES"],
        &["ZMPOP", "1", "z2", "MIN"],
        &["ZADD", "z3", "INCR", "5", "x"],
        &["GET", "missing"],
        &["MGET", "missing", "h"],
        &["LPOP", "nolist"],
        &["LPOP", "nolist", "2"],
        &["SADD", "s", "1", "2", "3"],
        &["SMEMBERS", "s"],
        &["SINTER", "s", "nosuch"],
        &["SMISMEMBER", "s", "1", "9"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["HINCRBYFLOAT", "h", "a", "0.25"],
        &["CONFIG", "GET", "maxmemory"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "missing"],
        &["ZSCORE", "z3", "x"],
        &["EXEC"],
        &["LMPOP", "1", "nolist", "LEFT"],
        &["EXPIRETIME", "missing"],
        &["TYPE", "s"],
        &["OBJECT", "FREQ", "nosuch"],
        &["PING"],
        &["ECHO", "x"],
    ];
    let redis = Server::redis();
    let moon = Server::moon(shards);
    let (mut r, mut m) = (redis.conn(), moon.conn());
    r.cmd(&["HELLO", "3"]);
    m.cmd(&["HELLO", "3"]);
    let mut diffs = Vec::new();
    for args in script {
        let (want, got) = (r.cmd(args), m.cmd(args));
        if want != got {
            diffs.push(format!("{args:?}\n  redis: {want:?}\n  moon:  {got:?}"));
        }
    }
    assert!(diffs.is_empty(), "{} RESP3 replies differ:\n{}", diffs.len(), diffs.join("\n"));
}

/// Blocking commands with data ready, timing out, and inside MULTI (where they never block).
fn blocking_commands(shards: usize) {
    if !have_redis_tools("protocol::blocking_commands", &["redis-server"]) {
        return;
    }
    let script: &[&[&str]] = &[
        &["RPUSH", "l", "a", "b"],
        &["ZADD", "z", "1", "m", "2", "n"],
        &["BLPOP", "nolist", "l", "1"],
        &["BRPOP", "l", "1"],
        &["BLPOP", "l", "0.05"],
        &["BZPOPMIN", "z", "1"],
        &["BZPOPMAX", "noz", "0.05"],
        &["RPUSH", "l", "x", "y"],
        &["BLMOVE", "l", "l2", "LEFT", "RIGHT", "1"],
        &["BRPOPLPUSH", "l", "l2", "1"],
        &["BLMPOP", "1", "2", "l", "l2", "LEFT", "COUNT", "5"],
        &["BZMPOP", "1", "1", "z", "MAX"],
        &["MULTI"],
        &["BLPOP", "nolist", "0"],
        &["BZPOPMIN", "noz", "0"],
        &["BLMOVE", "nolist", "x", "LEFT", "LEFT", "0"],
        &["EXEC"],
        &["BLPOP", "l", "-1"],
        &["BLPOP", "l", "abc"],
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
    // A client blocked on an empty list is served when another client pushes.
    let mut blocked = moon.conn();
    blocked.send(&encode(&["BLPOP", "wake", "5"]));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(m.cmd(&["RPUSH", "wake", "v"]), Value::Int(1));
    assert_eq!(blocked.read(), Value::Array(vec![Value::bulk("wake"), Value::bulk("v")]));
}

fn quit(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    assert_eq!(c.cmd(&["SET", "q", "1"]), Value::simple("OK"));
    c.send(&[encode(&["QUIT"]), encode(&["SET", "q", "2"])].concat());
    assert_eq!(c.read(), Value::simple("OK"));
    c.is_closed().expect("QUIT must close the connection");
    let mut d = RawConn::connect(moon.port());
    assert_eq!(d.cmd(&["GET", "q"]), Value::bulk("1"), "commands after QUIT must not run");
}

shard_tests!(
    malformed_closes_only_that_client,
    matches_redis_bytes,
    inline_commands,
    pipelined_10000,
    split_requests,
    large_arguments,
    resp3,
    resp3_matches_redis,
    blocking_commands,
    quit,
);
