//! The soak test (issue 7, "Load"): not run by CI (`#[ignore]`), about ten minutes by default.
//!
//! Many clients send mixed reads and writes (strings, counters, lists, hashes, sets, sorted sets, TTLs,
//! deletes, transactions) over a bounded key space, while a controller keeps BGREWRITEAOF and BGSAVE going
//! on top of the automatic rewrites and save points. At the end the clients stop, the digest is taken,
//! the server is shut down with SIGTERM and restarted on the same directory (with another shard count):
//! the digest must be the same. The directory must pass `moon-aof-tool check` and, when installed,
//! redis-server 7.0 must load it to the same digest. Every reply is checked for errors along the way.
//!
//! ```text
//! cargo test -p moon-tests --test e2e -- --ignored soak --nocapture
//! MOON_SOAK_SECS=60 MOON_SOAK_CLIENTS=8 cargo test -p moon-tests --test e2e -- --ignored soak --nocapture
//! ```

use moon_tests::resp::encode_into;
use moon_tests::{bin_path, have_redis_tools, run_with_timeout, RawConn, ServerOptions};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Keys per type: small enough that commands keep meeting existing keys.
const KEYS: u64 = 20_000;
/// Commands per pipelined batch.
const BATCH: usize = 32;

/// One random command of the mixed workload.
fn command(rng: &mut fastrand::Rng) -> Vec<String> {
    let k = rng.u64(0..KEYS);
    let v = || format!("{:x}", fastrand::u64(..));
    let s = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.u32(0..20) {
        0..=3 => s(&["GET", &format!("str:{k}")]),
        4 | 5 => s(&["SET", &format!("str:{k}"), &v()]),
        // TTLs outlive the test: a key expiring between the digest and the restart would change it.
        6 => s(&["SET", &format!("str:{k}"), &v(), "PX", &rng.u32(3_600_000..7_200_000).to_string()]),
        7 => s(&["INCRBY", &format!("ctr:{k}"), &rng.i32(-5..100).to_string()]),
        8 => s(&["APPEND", &format!("str:{k}"), "+"]),
        9 => s(&["RPUSH", &format!("list:{}", k % 2000), &v(), &v()]),
        10 => s(&["LPOP", &format!("list:{}", k % 2000)]),
        11 => s(&["HSET", &format!("hash:{}", k % 5000), &format!("f{}", rng.u32(0..50)), &v()]),
        12 => s(&["HGETALL", &format!("hash:{}", k % 5000)]),
        13 => s(&["SADD", &format!("set:{}", k % 5000), &rng.u32(0..200).to_string()]),
        14 => s(&["SREM", &format!("set:{}", k % 5000), &rng.u32(0..200).to_string()]),
        15 => s(&[
            "ZINCRBY",
            &format!("zset:{}", k % 3000),
            &rng.u32(1..10).to_string(),
            &format!("m{}", rng.u32(0..100)),
        ]),
        16 => s(&["ZRANGE", &format!("zset:{}", k % 3000), "0", "9", "WITHSCORES"]),
        17 => s(&["DEL", &format!("str:{k}"), &format!("ctr:{k}")]),
        18 => s(&["EXPIRE", &format!("hash:{}", k % 5000), &rng.u32(3_600..100_000).to_string()]),
        _ => s(&["MSET", &format!("str:{k}"), &v(), &format!("str:{}", rng.u64(0..KEYS)), &v()]),
    }
}

/// A client: pipelined batches until `stop`, some of them inside MULTI/EXEC. Returns the commands sent.
fn client(port: u16, seed: u64, stop: Arc<AtomicBool>, errors: Arc<AtomicU64>) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut c = RawConn::connect(port);
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let transaction = rng.u32(0..10) == 0;
        let mut bytes = Vec::new();
        let mut n = 0;
        if transaction {
            encode_into(&mut bytes, &["MULTI"]);
            n += 1;
        }
        for _ in 0..BATCH {
            encode_into(&mut bytes, &command(&mut rng));
            n += 1;
        }
        if transaction {
            encode_into(&mut bytes, &["EXEC"]);
            n += 1;
        }
        for r in c.pipeline(bytes, n) {
            if r.is_error() {
                // WRONGTYPE cannot happen (each key prefix has one type); anything else is a failure.
                errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("soak: error reply {r:?}");
            }
        }
        sent += BATCH as u64;
    }
    sent
}

fn info(c: &mut RawConn, field: &str) -> String {
    let text = c.cmd(&["INFO", "persistence"]).text();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_default().trim().to_string()
}

#[test]
#[ignore = "ten-minute soak test, outside CI: cargo test -p moon-tests --test e2e -- --ignored soak"]
fn soak() {
    let secs = env_or("MOON_SOAK_SECS", 600);
    let clients = env_or("MOON_SOAK_CLIENTS", 16);
    let work = tempfile::Builder::new().prefix("moon-soak-").tempdir().unwrap();
    let dir = work.path().display().to_string();
    let start = |shards: usize| {
        ServerOptions::moon(shards)
            .arg("dir", &dir)
            .arg("appendonly", "yes")
            .arg("save", "30 1000")
            .arg("auto-aof-rewrite-percentage", "50")
            .arg("auto-aof-rewrite-min-size", "8mb")
            .start()
    };
    let mut moon = start(2);
    let port = moon.port();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, errors) = (stop.clone(), errors.clone());
            std::thread::spawn(move || client(port, 0x50a4 + i, stop, errors))
        })
        .collect();
    let mut c = moon.conn();
    let started = Instant::now();
    let (mut rewrites, mut saves) = (0, 0);
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(7));
        if !c.cmd(&["BGREWRITEAOF"]).is_error() {
            rewrites += 1;
        }
        std::thread::sleep(Duration::from_secs(5));
        if !c.cmd(&["BGSAVE"]).is_error() {
            saves += 1;
        }
        for f in ["aof_last_bgrewrite_status", "rdb_last_bgsave_status", "aof_last_write_status"] {
            assert_eq!(info(&mut c, f), "ok", "{f}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = workers.into_iter().map(|w| w.join().expect("client thread")).sum();
    assert_eq!(errors.load(Ordering::Relaxed), 0, "error replies");
    // Let running rewrites and saves finish, so the restart also loads their results.
    while info(&mut c, "aof_rewrite_in_progress") != "0" || info(&mut c, "rdb_bgsave_in_progress") != "0" {
        std::thread::sleep(Duration::from_millis(100));
    }
    let keys = c.cmd(&["DBSIZE"]).int();
    let auto = info(&mut c, "aof_rewrites");
    let digest = c.cmd(&["DEBUG", "DIGEST"]).text();
    assert!(moon.terminate(Duration::from_secs(120)).success());
    println!(
        "soak: {secs} s, {clients} clients, {sent} commands, {keys} keys at the end, {rewrites} BGREWRITEAOF + \
         {saves} BGSAVE asked, aof_rewrites {auto}; digest {digest}"
    );
    let mut check = Command::new(bin_path("moon-aof-tool"));
    check.args(["check", "--quiet", &format!("{dir}/appendonlydir")]);
    let out = run_with_timeout(check, None, Duration::from_secs(300));
    assert!(out.status.success(), "moon-aof-tool check:\n{}", String::from_utf8_lossy(&out.stdout));
    let moon = start(3);
    assert_eq!(moon.conn().cmd(&["DEBUG", "DIGEST"]).text(), digest, "the restart (3 shards) changed the data");
    drop(moon);
    if have_redis_tools("soak", &["redis-server"]) {
        let redis = ServerOptions::redis().arg("dir", &dir).arg("appendonly", "yes").start();
        let mut r = redis.conn();
        while r.cmd(&["PING"]).is_error() {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(r.cmd(&["DEBUG", "DIGEST"]).text(), digest, "redis-server loads another dataset");
    }
}
