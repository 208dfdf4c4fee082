//! Debian's `redis-benchmark` against Moon: every default test it runs must succeed without an error reply.

use moon_tests::{redis_tool, require_redis, run_with_timeout, Server};
use std::process::Command;
use std::time::{Duration, Instant};

const TESTS: &str = "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100";

fn benchmark(shards: usize) {
    require_redis!("redis-benchmark");
    let moon = Server::moon(shards);
    let mut cmd = Command::new(redis_tool("redis-benchmark").expect("redis-benchmark"));
    cmd.args(["-p", &moon.port().to_string(), "-t", TESTS, "-q", "-n", "20000"]);
    let started = Instant::now();
    let o = run_with_timeout(cmd, None, Duration::from_secs(150));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "redis-benchmark exited {:?}\n{out}\n{err}", o.status);
    assert!(!out.to_lowercase().contains("error") && !err.to_lowercase().contains("error"), "{out}\n{err}");
    // -q prints one "NAME: N requests per second" line per test (progress lines end in \r, not \n).
    let finished: Vec<&str> =
        out.split(['\r', '\n']).map(str::trim).filter(|l| l.contains("requests per second")).collect();
    eprintln!("redis-benchmark --shards {shards} took {:?}:\n{}", started.elapsed(), finished.join("\n"));
    for name in ["SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET", "SPOP", "ZADD"] {
        assert!(finished.iter().any(|l| l.starts_with(&format!("{name}:"))), "no result for {name}:\n{out}");
    }
    assert!(finished.iter().any(|l| l.starts_with("LRANGE_100")), "no result for LRANGE_100:\n{out}");
    // The server is still healthy afterwards.
    assert_eq!(moon.conn().cmd(&["PING"]).text(), "PONG");
}

shard_tests!(benchmark);
