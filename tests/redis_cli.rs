//! Debian's `redis-cli` against Moon: one-shot commands (outputs compared with redis-server's for the same
//! invocations), `--pipe` mass insertion, `--scan`, `-x`, `-n`.

use moon_tests::resp::encode_into;
use moon_tests::{redis_tool, require_redis, run_with_timeout, Server};
use std::process::{Command, Output};
use std::time::Duration;

fn cli(server: &Server, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut cmd = Command::new(redis_tool("redis-cli").expect("redis-cli"));
    cmd.arg("-p").arg(server.port().to_string()).args(args);
    run_with_timeout(cmd, stdin, Duration::from_secs(60))
}

/// stdout of a successful redis-cli run.
fn out(server: &Server, args: &[&str]) -> String {
    let o = cli(server, args, None);
    assert!(o.status.success(), "redis-cli {args:?}: {:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs each invocation against both servers (in order) and compares the outputs.
fn same_output(moon: &Server, redis: &Server, scripts: &[&[&str]]) {
    let mut diffs = Vec::new();
    for args in scripts {
        let (m, r) = (cli(moon, args, None), cli(redis, args, None));
        let (mo, ro) = (String::from_utf8_lossy(&m.stdout), String::from_utf8_lossy(&r.stdout));
        if mo != ro || m.status.code() != r.status.code() {
            diffs.push(format!(
                "redis-cli {args:?}\n  redis: {ro:?} ({:?})\n  moon:  {mo:?} ({:?})",
                r.status, m.status
            ));
        }
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

fn commands(shards: usize) {
    require_redis!("redis-cli", "redis-server");
    let moon = Server::moon(shards);
    assert_eq!(out(&moon, &["set", "a", "b"]), "OK\n");
    assert_eq!(out(&moon, &["get", "a"]), "b\n");
    assert_eq!(out(&moon, &["--no-raw", "get", "a"]), "\"b\"\n");
    assert_eq!(out(&moon, &["incr", "n"]), "1\n");
    assert_eq!(out(&moon, &["--no-raw", "incr", "n"]), "(integer) 2\n");
    assert_eq!(out(&moon, &["--no-raw", "get", "nothing"]), "(nil)\n");
    assert_eq!(out(&moon, &["ping"]), "PONG\n");

    assert_eq!(out(&moon, &["flushall"]), "OK\n");
    let redis = Server::redis();
    let raw: &[&[&str]] = &[
        &["set", "a", "b"],
        &["get", "a"],
        &["get", "missing"],
        &["incr", "a"],
        &["rpush", "l", "x", "y", "z"],
        &["lrange", "l", "0", "-1"],
        &["hset", "h", "f1", "v1", "f2", "v2"],
        &["hgetall", "h"],
        &["zadd", "z", "1.5", "m1", "2", "m2"],
        &["zrange", "z", "0", "-1", "withscores"],
        &["sadd", "s", "3", "1", "2"],
        &["smembers", "s"],
        &["mset", "k1", "v1", "k2", "v2", "k3", "v3"],
        &["mget", "k1", "nope", "k3"],
        &["type", "l"],
        &["exists", "k1", "k2", "nope"],
        &["lpush", "a", "x"],
        &["nosuchcommand", "arg"],
        &["get"],
        &["-n", "3", "set", "indb3", "1"],
        &["-n", "3", "dbsize"],
        &["dbsize"],
        &["echo", "hello world"],
        &["incrbyfloat", "f", "0.1"],
        &["incrbyfloat", "f", "0.2"],
        &["zscore", "z", "m1"],
        &["lmpop", "2", "nol", "l", "right", "count", "2"],
    ];
    same_output(&moon, &redis, raw);
    let formatted: Vec<Vec<&str>> = raw.iter().map(|a| [&["--no-raw"][..], a].concat()).collect();
    let formatted: Vec<&[&str]> = formatted.iter().map(Vec::as_slice).collect();
    same_output(&moon, &redis, &formatted);
    let resp3: Vec<Vec<&str>> = raw.iter().map(|a| [&["-3", "--no-raw"][..], a].concat()).collect();
    let resp3: Vec<&[&str]> = resp3.iter().map(Vec::as_slice).collect();
    same_output(&moon, &redis, &resp3);

    // -x reads the last argument from stdin.
    let o = cli(&moon, &["-x", "set", "blob"], Some(b"from stdin".to_vec()));
    assert!(o.status.success());
    assert_eq!(out(&moon, &["get", "blob"]), "from stdin\n");
    // --scan with a pattern walks every shard.
    for i in 0..300 {
        moon.conn().cmd(&["SET", &format!("scan:{i}"), "1"]);
    }
    let scanned = out(&moon, &["--scan", "--pattern", "scan:*"]);
    let mut names: Vec<&str> = scanned.lines().collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 300);
}

fn pipe(shards: usize) {
    require_redis!("redis-cli");
    let moon = Server::moon(shards);
    let mut input = Vec::new();
    for i in 0..10_000 {
        encode_into(&mut input, &["SET", &format!("key:{i}"), &format!("value:{i}")]);
    }
    for i in 0..1000 {
        encode_into(&mut input, &["RPUSH", "list", &i.to_string()]);
        encode_into(&mut input, &["HSET", &format!("hash:{}", i % 10), &format!("f{i}"), "v"]);
    }
    encode_into(&mut input, &["INCR", "key:0"]);
    let o = cli(&moon, &["--pipe"], Some(input));
    let text = String::from_utf8_lossy(&o.stdout);
    // One error on purpose (INCR of a non-number): redis-cli counts it and exits 1.
    assert!(text.contains("errors: 1, replies: 12001"), "{text} {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("value is not an integer or out of range"), "{text}");
    assert_eq!(o.status.code(), Some(1), "{text}");
    let mut c = moon.conn();
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 10_000 + 1 + 10);
    assert_eq!(c.cmd(&["GET", "key:9999"]).text(), "value:9999");
    assert_eq!(c.cmd(&["LLEN", "list"]).int(), 1000);
    assert_eq!(c.cmd(&["HLEN", "hash:7"]).int(), 100);
}

shard_tests!(commands, pipe);
