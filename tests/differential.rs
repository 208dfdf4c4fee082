//! Differential test: long seeded command streams (see [`gen`]) are pipelined to redis-server and to Moon at
//! 1 and 4 shards over a raw connection; every reply (normalised where Redis leaves the order unspecified)
//! and the final `DEBUG DIGEST` must be equal. Each stream runs twice on the same pair of servers, flushed
//! before each run: in RESP2, then in RESP3 (HELLO 3).
//!
//! Environment: `MOON_DIFF_SEED` runs one seed instead of the default three, `MOON_DIFF_COMMANDS` sets the
//! stream length, `MOON_DIFF_SKIP` (comma-separated command names) leaves commands out to look past a known
//! difference. On a mismatch the stream is written to a file (named in the failure message) that
//! `redis-cli --pipe` can replay.

mod gen;

use gen::{Cmd, Gen, Norm};
use moon_tests::resp::encode_into;
use moon_tests::{have_redis_tools, RawConn, Server, ServerOptions, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Each seed's stream runs on a flushed pair of servers; more seeds reach more states cheaply.
const DEFAULT_SEEDS: [u64; 3] = [0x6d6f6f6e, 1, 2];
const DEFAULT_COMMANDS: usize = 50_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn normalise(v: Value, norm: &Norm) -> Value {
    match (norm, v) {
        (Norm::Sort, Value::Array(mut items)) => {
            items.sort();
            Value::Array(items)
        }
        (Norm::Sort, Value::Set(mut items)) => {
            items.sort();
            Value::Set(items)
        }
        (Norm::SortPairs, Value::Map(mut pairs)) => {
            pairs.sort();
            Value::Map(pairs)
        }
        // RESP3 replies ... WITHVALUES / WITHSCORES as an array of two-element arrays.
        (Norm::SortPairs, Value::Array(mut items)) if items.iter().all(|v| matches!(v, Value::Array(_))) => {
            items.sort();
            Value::Array(items)
        }
        (Norm::SortPairs, Value::Array(items)) if items.len() % 2 == 0 => {
            let mut pairs: Vec<(Value, Value)> = Vec::new();
            let mut it = items.into_iter();
            while let (Some(a), Some(b)) = (it.next(), it.next()) {
                pairs.push((a, b));
            }
            pairs.sort();
            Value::Array(pairs.into_iter().flat_map(|(a, b)| [a, b]).collect())
        }
        (Norm::Ttl, Value::Int(n)) if n >= 0 => Value::Simple("<ttl>".into()),
        (Norm::Exec(norms), Value::Array(items)) if items.len() == norms.len() => {
            Value::Array(items.into_iter().zip(norms).map(|(v, n)| normalise(v, n)).collect())
        }
        (_, v) => v,
    }
}

fn show(args: &[Vec<u8>]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.len() > 40 {
                format!("{}...({} bytes)", &s[..s.char_indices().nth(37).map_or(s.len(), |(i, _)| i)], a.len())
            } else {
                s.into_owned()
            }
        })
        .collect();
    let mut text = parts.join(" ");
    if text.len() > 300 {
        text.truncate(text.char_indices().nth(300).map_or(text.len(), |(i, _)| i));
        text.push_str(" ...");
    }
    text
}

/// Sends the whole stream on one connection speaking RESP `proto` and returns every reply, normalised.
fn play(server: &Server, proto: u8, cmds: &[Cmd], wire: &[u8]) -> Vec<Value> {
    let mut c = server.conn();
    if proto == 3 {
        assert!(matches!(c.cmd(&["HELLO", "3"]), Value::Map(_)));
    }
    let started = Instant::now();
    let replies = c.pipeline(wire.to_vec(), cmds.len());
    eprintln!("{:?} RESP{proto}: {} commands in {:?}", server.kind(), cmds.len(), started.elapsed());
    replies.into_iter().zip(cmds).map(|(v, cmd)| normalise(v, &cmd.norm)).collect()
}

/// Per database: its keys, with a readable dump of each value, for explaining a digest mismatch.
fn dump_key(c: &mut RawConn, key: &[u8]) -> String {
    let ty = c.cmd(&[&b"TYPE"[..], key]).text();
    let body = match ty.as_str() {
        "string" => c.cmd(&[&b"GET"[..], key]),
        "list" => c.cmd(&[&b"LRANGE"[..], key, b"0", b"-1"]),
        "hash" => normalise(c.cmd(&[&b"HGETALL"[..], key]), &Norm::SortPairs),
        "set" => normalise(c.cmd(&[&b"SMEMBERS"[..], key]), &Norm::Sort),
        "zset" => c.cmd(&[&b"ZRANGE"[..], key, b"0", b"-1", b"WITHSCORES"]),
        _ => Value::Null,
    };
    let exp = c.cmd(&[&b"PEXPIRETIME"[..], key]);
    let body = format!("{body:?}");
    let body = if body.len() > 400 { format!("{}...", &body[..400]) } else { body };
    format!("{ty} pexpiretime={exp:?} {body}")
}

fn explain_digest(redis: &Server, moon: &Server) -> String {
    let (mut r, mut m) = (redis.conn(), moon.conn());
    let mut out = Vec::new();
    for db in 0..16 {
        let sel = db.to_string();
        r.cmd(&["SELECT", &sel]);
        m.cmd(&["SELECT", &sel]);
        let keys = |c: &mut RawConn| -> BTreeSet<Vec<u8>> {
            c.cmd(&["KEYS", "*"]).array().iter().map(|k| k.text().into_bytes()).collect()
        };
        let (rk, mk) = (keys(&mut r), keys(&mut m));
        for key in rk.union(&mk) {
            let rd = r.cmd(&[&b"DEBUG"[..], b"DIGEST-VALUE", key]);
            let md = m.cmd(&[&b"DEBUG"[..], b"DIGEST-VALUE", key]);
            let (rv, mv) = (dump_key(&mut r, key), dump_key(&mut m, key));
            if rd != md || rv != mv || rk.contains(key) != mk.contains(key) {
                let name = String::from_utf8_lossy(key);
                out.push(format!("db{db} {name}:\n    redis: {rv}\n    moon:  {mv}"));
            }
            if out.len() >= 15 {
                return out.join("\n");
            }
        }
    }
    out.join("\n")
}

fn differential(shards: usize) {
    if !have_redis_tools("differential", &["redis-server"]) {
        return;
    }
    let seeds: Vec<u64> = match std::env::var("MOON_DIFF_SEED").ok().and_then(|v| v.parse().ok()) {
        Some(seed) => vec![seed],
        None => DEFAULT_SEEDS.to_vec(),
    };
    let n: usize = env_or("MOON_DIFF_COMMANDS", DEFAULT_COMMANDS);
    let skip: Vec<String> = std::env::var("MOON_DIFF_SKIP")
        .map(|s| s.split(',').filter(|x| !x.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let redis = Server::redis();
    let moon = Server::moon(shards);
    let mut failures = Vec::new();
    for seed in seeds {
        let cmds = Gen::new(seed, &skip).stream(n);
        let mut wire = Vec::new();
        for c in &cmds {
            encode_into(&mut wire, &c.args);
        }
        for proto in [2, 3] {
            redis.conn().cmd(&["FLUSHALL"]);
            moon.conn().cmd(&["FLUSHALL"]);
            if let Err(e) = compare_run(&redis, &moon, proto, seed, &cmds, &wire) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "--shards {shards}: {} runs differ from redis-server\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// One run of a stream on flushed servers; Err describes the differences.
fn compare_run(redis: &Server, moon: &Server, proto: u8, seed: u64, cmds: &[Cmd], wire: &[u8]) -> Result<(), String> {
    let want = play(redis, proto, cmds, wire);
    let got = play(moon, proto, cmds, wire);
    let mut report = Vec::new();
    let mut mismatches = 0;
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if w != g {
            if mismatches == 0 {
                report.push("The first difference, after these commands:".to_string());
                for j in i.saturating_sub(12)..i {
                    report.push(format!("  #{j} {}  ->  redis {:?}", show(&cmds[j].args), want[j]));
                }
            }
            mismatches += 1;
            if report.len() < 20 {
                report.push(format!("#{i} {}\n    redis: {w:?}\n    moon:  {g:?}", show(&cmds[i].args)));
            }
        }
    }
    let digest = |s: &Server| s.conn().cmd(&["DEBUG", "DIGEST"]);
    let (rd, md) = (digest(redis), digest(moon));
    let mut counts = Vec::new();
    for db in ["0", "1"] {
        let count = |s: &Server| {
            let mut c = s.conn();
            c.cmd(&["SELECT", db]);
            c.cmd(&["DBSIZE"]).int()
        };
        counts.push((count(redis), count(moon)));
    }
    eprintln!("differential RESP{proto}: seed {seed}, {} commands, digest {rd:?}, dbsize {counts:?}", cmds.len());
    if mismatches > 0 || rd != md {
        let path = std::env::temp_dir().join(format!("moon-differential-{seed}-{}.resp", cmds.len()));
        let _ = std::fs::write(&path, wire);
        let keys = if rd != md { explain_digest(redis, moon) } else { String::new() };
        return Err(format!(
            "RESP{proto}, MOON_DIFF_SEED={seed}: {mismatches} of {} replies differ, digest redis {rd:?} moon {md:?} \
             (dbsize db0/db1 redis/moon {counts:?}).\nStream written to {} (replay: redis-cli -p PORT --pipe < \
             FILE).\n{}\nKeys that differ:\n{keys}",
            cmds.len(),
            path.display(),
            report.join("\n")
        ));
    }
    assert!(counts[0].0 > 0, "the stream left an empty database: it tests little");
    Ok(())
}

/// The AOF redis-server writes for a seeded stream (RESP only, no rewrite) replays in Moon to the same
/// digest, with one shard (one thread) and with several (one replay thread per shard, barriers for
/// cross-shard commands, keyless writes and transactions): the stream's MULTI blocks, SELECTs, FLUSHDBs,
/// SWAPDBs and multi-key commands all land in the log.
fn redis_aof_replays_in_moon(shards: usize) {
    if !have_redis_tools("redis_aof_replays_in_moon", &["redis-server"]) {
        return;
    }
    let seed = env_or("MOON_DIFF_SEED", DEFAULT_SEEDS[0]);
    let cmds = Gen::new(seed, &[]).stream(env_or("MOON_DIFF_COMMANDS", DEFAULT_COMMANDS));
    let mut wire = Vec::new();
    for c in &cmds {
        encode_into(&mut wire, &c.args);
    }
    let mut redis = ServerOptions::redis()
        .arg("appendonly", "yes")
        .arg("aof-use-rdb-preamble", "no")
        .arg("auto-aof-rewrite-percentage", "0")
        .arg("appendfsync", "no")
        .start();
    play(&redis, 2, &cmds, &wire);
    let want = redis.conn().cmd(&["DEBUG", "DIGEST"]);
    let incr = std::fs::metadata(redis.dir().join("appendonlydir/appendonly.aof.1.incr.aof")).map_or(0, |m| m.len());
    assert!(incr > 100_000, "redis-server logged only {incr} bytes: the replay tests little");
    assert!(redis.terminate(Duration::from_secs(30)).success());
    let work = tempfile::Builder::new().prefix("moon-replay-").tempdir().unwrap();
    let src = redis.dir().join("appendonlydir");
    let dst = work.path().join("appendonlydir");
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let moon =
        ServerOptions::moon(shards).arg("appendonly", "yes").arg("dir", &work.path().display().to_string()).start();
    let got = moon.conn().cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(got, want, "--shards {shards}: the replay of redis-server's AOF (seed {seed}) differs");
}

shard_tests!(differential, redis_aof_replays_in_moon);
