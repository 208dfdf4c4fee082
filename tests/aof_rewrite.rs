//! BGREWRITEAOF, the failure back-off and `CONFIG SET appendonly` end to end against the real `moon-server`:
//! a rewrite under a write load is point-in-time correct across kill -9 (`appendfsync always`: every
//! acknowledged INCR/LPUSH/APPEND/ZINCRBY is there exactly once, the digest is the one before the kill);
//! the runtime scenarios of Redis's `aof-multi-part.tcl` (FORMATS.md §6.2 part 2) and `aofrw.tcl` with the
//! same file names and manifests; and Moon's directories after rewrites (RDB base and RESP base, several
//! incr files) pass `redis-check-aof` and load in redis-server 7.0 with the same `DEBUG DIGEST`.
//!
//! Redis's tests kill the rewrite child with `kill -9`; Moon has no child, and its rewrite stops the same
//! way when its temp file `temp-rewriteaof-bg-<pid>.aof` is removed ([`kill_rewrite`]).

use moon_tests::resp::encode_into;
use moon_tests::{
    have_redis_tools, keys_on_distinct_shards, redis_tool, run_with_timeout, RawConn, Server, ServerOptions, Value,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A working directory (`--dir`) that outlives the servers started on it.
struct Work(tempfile::TempDir);

impl Work {
    fn new() -> Work {
        Work(tempfile::Builder::new().prefix("moon-aofrw-").tempdir().expect("tempdir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn aof(&self, name: &str) -> PathBuf {
        self.path().join("appendonlydir").join(name)
    }

    fn manifest(&self) -> Vec<String> {
        std::fs::read_to_string(self.aof("appendonly.aof.manifest"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Moon on this directory with `appendonly` as given.
    fn moon(&self, shards: usize, appendonly: bool, extra: &[(&str, &str)]) -> Server {
        let mut o = ServerOptions::moon(shards)
            .arg("appendonly", if appendonly { "yes" } else { "no" })
            .arg("dir", &self.path().display().to_string());
        for (k, v) in extra {
            o = o.arg(k, v);
        }
        o.start()
    }

    /// The files the working directory holds whose names start with `temp-`.
    fn temp_files(&self) -> Vec<String> {
        std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("temp-"))
            .collect()
    }
}

fn lines(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ok(v: Value) {
    assert_eq!(v, Value::simple("OK"));
}

fn info(c: &mut RawConn, field: &str) -> String {
    infos(c, &[field]).remove(0)
}

/// Several fields of one `INFO persistence` (read together: they change while a rewrite starts and ends).
fn infos(c: &mut RawConn, fields: &[&str]) -> Vec<String> {
    let text = c.cmd(&["INFO", "persistence"]).text();
    let field = |f: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{f}:")))
            .unwrap_or_else(|| panic!("no {f} in INFO persistence:\n{text}"))
            .trim()
            .to_string()
    };
    fields.iter().map(|f| field(f)).collect()
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Redis's `waitForBgrewriteaof`: no rewrite running or scheduled.
fn wait_rewrites(c: &mut RawConn) {
    wait_until(Duration::from_secs(60), "the AOF rewrite to end", || {
        // Twice: a rewrite that starts between the two fields' reads could show neither.
        (0..2).all(|_| infos(c, &["aof_rewrite_in_progress", "aof_rewrite_scheduled"]) == ["0", "0"])
    });
}

fn bgrewriteaof(c: &mut RawConn) {
    assert_eq!(c.cmd(&["BGREWRITEAOF"]), Value::simple("Background append only file rewriting started"));
}

fn temp_base(work: &Work, moon: &Server) -> PathBuf {
    work.path().join(format!("temp-rewriteaof-bg-{}.aof", moon.pid()))
}

/// Stops the running (slowed) rewrite as Redis's tests kill its child: its temp file is removed, the rewrite
/// fails, and this waits until it has ended.
fn kill_rewrite(work: &Work, moon: &Server, c: &mut RawConn) {
    let temp = temp_base(work, moon);
    let failures = |c: &mut RawConn| info(c, "aof_rewrites_consecutive_failures").parse::<u64>().unwrap();
    let before = failures(c);
    wait_until(Duration::from_secs(20), "the rewrite's temp file", || temp.exists());
    std::fs::remove_file(&temp).unwrap();
    // (A rewrite of WaitRewrite is scheduled again at once: "in progress" may never be seen dropping.)
    wait_until(Duration::from_secs(20), "the killed rewrite to fail", || failures(c) > before);
}

fn count_log(moon: &Server, text: &str) -> usize {
    moon.log_text().matches(text).count()
}

fn digest(c: &mut RawConn) -> String {
    c.cmd(&["DEBUG", "DIGEST"]).text()
}

/// DEBUG LOADAOF must give back the same dataset.
fn reload_same(c: &mut RawConn) {
    let before = digest(c);
    ok(c.cmd(&["DEBUG", "LOADAOF"]));
    assert_eq!(digest(c), before, "DEBUG LOADAOF changed the dataset");
}

/// `n` keys `prefix:i` (pipelined), distinct values.
fn fill(c: &mut RawConn, prefix: &str, n: usize) {
    let mut bytes = Vec::new();
    for i in 0..n {
        encode_into(&mut bytes, &["SET", &format!("{prefix}:{i}"), &format!("value-{i}-{}", i * 7919)]);
    }
    for r in c.pipeline(bytes, n) {
        assert_eq!(r, Value::simple("OK"));
    }
}

/// Redis's `start_write_load`: a client setting random keys until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut c = RawConn::connect(port);
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let r = c.cmd(&["SET", &format!("load:{}", n % 5000), &n.to_string()]);
                assert!(!r.is_error(), "{r:?}");
                n += 1;
            }
        });
        Load { stop, handle: Some(handle) }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("load thread");
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One client of the hammer: step `n` applies INCR (n % 4 == 0), LPUSH, APPEND or ZINCRBY to the key of
/// that kind; its four keys sit on four shards. What the keys hold after `m` steps is known exactly.
struct Hammer {
    keys: Vec<String>,
}

impl Hammer {
    fn new(t: usize) -> Hammer {
        Hammer { keys: keys_on_distinct_shards(&format!("h{t}"), 4) }
    }

    fn command(&self, n: u64) -> Vec<String> {
        let key = self.keys[(n % 4) as usize].clone();
        match n % 4 {
            0 => vec!["INCR".into(), key],
            1 => vec!["LPUSH".into(), key, n.to_string()],
            2 => vec!["APPEND".into(), key, format!("{n},")],
            _ => vec!["ZINCRBY".into(), key, "1.5".into(), "m".into()],
        }
    }

    /// Steps below `m` of kind `k`.
    fn steps(k: u64, m: u64) -> impl Iterator<Item = u64> {
        (k..m).step_by(4)
    }

    /// The reply step `n` must get.
    fn reply(&self, n: u64) -> Value {
        let count = Self::steps(n % 4, n + 1).count() as i64;
        match n % 4 {
            0 | 1 => Value::Int(count),
            2 => Value::Int(Self::steps(2, n + 1).map(|s| format!("{s},").len() as i64).sum()),
            _ => Value::bulk(&format!("{}", count as f64 * 1.5)),
        }
    }

    /// Checks the four keys against `m` steps.
    fn check(&self, c: &mut RawConn, m: u64) {
        let counter = Self::steps(0, m).count();
        let got = c.cmd(&["GET", &self.keys[0]]);
        if counter == 0 {
            assert_eq!(got, Value::NilBulk);
        } else {
            assert_eq!(got, Value::bulk(&counter.to_string()), "{} after {m} steps", self.keys[0]);
        }
        let list: Vec<Value> =
            Self::steps(1, m).collect::<Vec<_>>().into_iter().rev().map(|s| Value::bulk(&s.to_string())).collect();
        assert_eq!(
            c.cmd(&["LRANGE", &self.keys[1], "0", "-1"]),
            Value::Array(list),
            "{} after {m} steps",
            self.keys[1]
        );
        let text: String = Self::steps(2, m).map(|s| format!("{s},")).collect();
        let got = c.cmd(&["GET", &self.keys[2]]);
        if text.is_empty() {
            assert_eq!(got, Value::NilBulk);
        } else {
            assert_eq!(got, Value::bulk(&text), "{} after {m} steps", self.keys[2]);
        }
        let score = Self::steps(3, m).count() as f64 * 1.5;
        let got = c.cmd(&["ZSCORE", &self.keys[3], "m"]);
        if score == 0.0 {
            assert_eq!(got, Value::NilBulk);
        } else {
            assert_eq!(got.text().parse::<f64>().unwrap(), score, "{} after {m} steps", self.keys[3]);
        }
    }
}

/// Runs hammer `h` from step `from` until `stop`; returns the steps acknowledged (each reply checked).
fn hammer(port: u16, h: Arc<Hammer>, from: u64, stop: Arc<AtomicBool>, acked: Arc<AtomicU64>) -> u64 {
    let mut c = RawConn::connect(port);
    let mut n = from;
    while !stop.load(Ordering::Relaxed) {
        let reply = c.cmd(&h.command(n));
        assert_eq!(reply, h.reply(n), "step {n} of {:?}", h.keys);
        n += 1;
        acked.store(n, Ordering::SeqCst);
    }
    n
}

/// Hammers from `from[t]` with one client per entry while a slowed BGREWRITEAOF runs to its end (and a
/// little after); returns where each client stopped.
fn rewrite_under_load(moon: &Server, c: &mut RawConn, hammers: &[Arc<Hammer>], from: &[u64]) -> Vec<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Vec<Arc<AtomicU64>> = from.iter().map(|&f| Arc::new(AtomicU64::new(f))).collect();
    let handles: Vec<JoinHandle<u64>> = hammers
        .iter()
        .zip(from)
        .zip(&acked)
        .map(|((h, &f), a)| {
            let (h, stop, a, port) = (h.clone(), stop.clone(), a.clone(), moon.port());
            std::thread::spawn(move || hammer(port, h, f, stop, a))
        })
        .collect();
    let progressed = |by: u64| acked.iter().zip(from).all(|(a, &f)| a.load(Ordering::SeqCst) >= f + by);
    wait_until(Duration::from_secs(20), "the clients to start", || progressed(20));
    let at_start: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    bgrewriteaof(c);
    wait_rewrites(c);
    let at_end: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    // Writes after the rewrite too, into the new incr.
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    let done: Vec<u64> = handles.into_iter().map(|h| h.join().expect("hammer")).collect();
    let during: u64 = at_end.iter().zip(&at_start).map(|(e, s)| e - s).sum();
    assert!(during > 40, "only {during} writes during the rewrite");
    assert_eq!(info(c, "aof_last_bgrewrite_status"), "ok");
    done
}

/// Runs redis-check-aof on the manifest, then redis-server 7.0 on the directory: it must load Moon's files
/// into the same digest. (Moon must not be running.)
fn redis_agrees(work: &Work, expect_digest: &str, base: &str) {
    if !have_redis_tools("aof_rewrite::redis_agrees", &["redis-server", "redis-check-aof"]) {
        return;
    }
    let mut cmd = std::process::Command::new(redis_tool("redis-check-aof").unwrap());
    cmd.arg(work.aof("appendonly.aof.manifest"));
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "redis-check-aof:\n{text}");
    assert!(text.contains(&format!("BASE AOF {base} is valid")), "redis-check-aof:\n{text}");
    assert!(text.contains("All AOF files and manifest are valid"), "redis-check-aof:\n{text}");
    let redis = ServerOptions::redis().arg("appendonly", "yes").arg("dir", &work.path().display().to_string()).start();
    assert_eq!(digest(&mut redis.conn()), expect_digest, "redis-server loaded another dataset");
}

/// A rewrite under four clients hammering non-idempotent commands, `appendfsync always`, then kill -9 and a
/// restart: every acknowledged step is there exactly once and the digest is the one before the kill. Done
/// with an RDB base, then a RESP base (with `#TS:`); each time a failed rewrite adds one more incr with data,
/// and redis-check-aof and redis-server 7.0 accept the directory with the same digest.
fn rewrite_under_load_survives_kill9(shards: usize) {
    let work = Work::new();
    let opts = [("appendfsync", "always")];
    let mut moon = work.moon(shards, true, &opts);
    let mut c = moon.conn();
    fill(&mut c, "filler", 2000);
    ok(c.cmd(&["SELECT", "5"]));
    let members: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD".to_string(), "big-set".into()];
    sadd.extend(members.iter().cloned());
    assert_eq!(c.cmd(&sadd).int(), 150);
    let mut hset = vec!["HSET".to_string(), "big-hash".into()];
    hset.extend(members.iter().flat_map(|m| [m.clone(), format!("v-{m}")]));
    assert_eq!(c.cmd(&hset).int(), 150);
    ok(c.cmd(&["SET", "with-ttl", "x", "EX", "100000"]));
    ok(c.cmd(&["SELECT", "0"]));
    let hammers: Vec<Arc<Hammer>> = (0..4).map(|t| Arc::new(Hammer::new(t))).collect();
    let mut at = vec![0u64; hammers.len()];
    for (round, preamble) in [(2, true), (3, false)] {
        ok(c.cmd(&["CONFIG", "SET", "aof-use-rdb-preamble", if preamble { "yes" } else { "no" }]));
        ok(c.cmd(&["CONFIG", "SET", "aof-timestamp-enabled", if preamble { "no" } else { "yes" }]));
        ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "300"]));
        at = rewrite_under_load(&moon, &mut c, &hammers, &at);
        let base = if preamble {
            format!("appendonly.aof.{round}.base.rdb")
        } else {
            format!("appendonly.aof.{round}.base.aof")
        };
        let incr = if preamble { 2 } else { 4 };
        assert_eq!(
            work.manifest(),
            lines(&[
                &format!("file {base} seq {round} type b"),
                &format!("file appendonly.aof.{incr}.incr.aof seq {incr} type i")
            ])
        );
        let head = std::fs::read(work.aof(&base)).unwrap();
        if preamble {
            assert!(head.starts_with(b"REDIS"));
        } else {
            assert!(head.starts_with(b"#TS:"), "{:?}", String::from_utf8_lossy(&head[..20]));
        }
        assert!(work.temp_files().is_empty(), "{:?}", work.temp_files());
        // A failed rewrite: one more incr, and writes in both.
        ok(c.cmd(&["SET", "before-failed-rewrite", &round.to_string()]));
        ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
        bgrewriteaof(&mut c);
        ok(c.cmd(&["SET", "during-failed-rewrite", &round.to_string()]));
        kill_rewrite(&work, &moon, &mut c);
        assert_eq!(info(&mut c, "aof_last_bgrewrite_status"), "err");
        assert_eq!(work.manifest().len(), 3);
        let live = digest(&mut c);
        moon.kill9();
        moon = work.moon(shards, true, &opts);
        c = moon.conn();
        assert_eq!(digest(&mut c), live, "restart after kill -9 lost or duplicated writes");
        for (h, &m) in hammers.iter().zip(&at) {
            h.check(&mut c, m);
        }
        assert_eq!(c.cmd(&["GET", "during-failed-rewrite"]), Value::bulk(&round.to_string()));
        assert_eq!(c.cmd(&["DBSIZE"]).int(), 2000 + 4 * 4 + 2);
        moon.kill9();
        redis_agrees(&work, &live, &base);
        moon = work.moon(shards, true, &opts);
        c = moon.conn();
        assert_eq!(digest(&mut c), live, "Moon after redis-server");
        // The next round's rewrite demotes the three incrs.
        ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    }
}

/// FORMATS.md §6.2 part 2, in Redis's order on one server, with Redis's file names and manifests.
fn multi_part_scenarios(shards: usize) {
    let work = Work::new();
    let moon = work.moon(shards, false, &[]);
    let mut c = moon.conn();
    // Make sure aof manifest appendonly.aof.manifest not in aof directory.
    assert!(!work.path().join("appendonlydir").exists());
    fill(&mut c, "k", 300);

    // AOF enable will create manifest file.
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]));
    wait_rewrites(&mut c);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"])
    );
    ok(c.cmd(&["SET", "after-enable", "1"]));
    bgrewriteaof(&mut c);
    wait_rewrites(&mut c);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.2.base.rdb seq 2 type b", "file appendonly.aof.2.incr.aof seq 2 type i"])
    );
    assert!(!work.aof("appendonly.aof.1.base.rdb").exists() && !work.aof("appendonly.aof.1.incr.aof").exists());

    // AOF multiple rewrite failures will open multiple INCR AOFs.
    let load = Load::start(moon.port());
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
    for _ in 0..3 {
        bgrewriteaof(&mut c);
        kill_rewrite(&work, &moon, &mut c);
    }
    assert!(work.temp_files().is_empty(), "{:?}", work.temp_files());
    assert_eq!(
        work.manifest(),
        lines(&[
            "file appendonly.aof.2.base.rdb seq 2 type b",
            "file appendonly.aof.2.incr.aof seq 2 type i",
            "file appendonly.aof.3.incr.aof seq 3 type i",
            "file appendonly.aof.4.incr.aof seq 4 type i",
            "file appendonly.aof.5.incr.aof seq 5 type i",
        ])
    );
    assert_eq!(info(&mut c, "aof_rewrites_consecutive_failures"), "3");
    load.stop();
    reload_same(&mut c);
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    bgrewriteaof(&mut c);
    wait_rewrites(&mut c);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.3.base.rdb seq 3 type b", "file appendonly.aof.6.incr.aof seq 6 type i"])
    );
    for n in ["2.base.rdb", "2.incr.aof", "3.incr.aof", "4.incr.aof", "5.incr.aof"] {
        assert!(!work.aof(&format!("appendonly.aof.{n}")).exists(), "history file {n} kept");
    }
    assert_eq!(info(&mut c, "aof_rewrites_consecutive_failures"), "0");
    reload_same(&mut c);

    // AOF rewrite doesn't open new aof when AOF turn off.
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "no"]));
    bgrewriteaof(&mut c);
    wait_rewrites(&mut c);
    assert_eq!(work.manifest(), lines(&["file appendonly.aof.4.base.rdb seq 4 type b"]));
    assert!(!work.aof("appendonly.aof.4.incr.aof").exists());
    reload_same(&mut c);
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]));
    wait_rewrites(&mut c);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.5.base.rdb seq 5 type b", "file appendonly.aof.1.incr.aof seq 1 type i"])
    );

    // AOF enable/disable auto gc.
    ok(c.cmd(&["CONFIG", "SET", "aof-disable-auto-gc", "yes"]));
    for _ in 0..2 {
        bgrewriteaof(&mut c);
        wait_rewrites(&mut c);
    }
    assert_eq!(
        work.manifest(),
        lines(&[
            "file appendonly.aof.7.base.rdb seq 7 type b",
            "file appendonly.aof.2.incr.aof seq 2 type h",
            "file appendonly.aof.6.base.rdb seq 6 type h",
            "file appendonly.aof.1.incr.aof seq 1 type h",
            "file appendonly.aof.5.base.rdb seq 5 type h",
            "file appendonly.aof.3.incr.aof seq 3 type i",
        ])
    );
    for n in ["2.incr.aof", "6.base.rdb", "1.incr.aof", "5.base.rdb"] {
        assert!(work.aof(&format!("appendonly.aof.{n}")).exists(), "history file {n} removed");
    }
    ok(c.cmd(&["CONFIG", "SET", "aof-disable-auto-gc", "no"]));
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.7.base.rdb seq 7 type b", "file appendonly.aof.3.incr.aof seq 3 type i"])
    );
    for n in ["2.incr.aof", "6.base.rdb", "1.incr.aof", "5.base.rdb"] {
        assert!(!work.aof(&format!("appendonly.aof.{n}")).exists(), "history file {n} kept");
    }

    // AOF can produce consecutive sequence number after reload.
    reload_same(&mut c);
    bgrewriteaof(&mut c);
    wait_rewrites(&mut c);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.8.base.rdb seq 8 type b", "file appendonly.aof.4.incr.aof seq 4 type i"])
    );

    // AOF enable during BGSAVE will not write data until AOFRW finish; BGREWRITEAOF is delayed by BGSAVE.
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "no"]));
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "500"]));
    assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("Background saving started"));
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]));
    assert_eq!(info(&mut c, "aof_rewrite_scheduled"), "1");
    assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "0");
    assert!(!work.aof("temp-appendonly.aof.incr").exists());
    assert!(!work.aof("appendonly.aof.5.incr.aof").exists());
    ok(c.cmd(&["SET", "during-bgsave", "1"]));
    assert_eq!(c.cmd(&["BGREWRITEAOF"]), Value::simple("Background append only file rewriting scheduled"));
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    wait_until(Duration::from_secs(30), "the BGSAVE", || info(&mut c, "rdb_bgsave_in_progress") == "0");
    wait_rewrites(&mut c);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.9.base.rdb seq 9 type b", "file appendonly.aof.5.incr.aof seq 5 type i"])
    );
    reload_same(&mut c);

    // AOF will trigger limit when AOFRW fails many times.
    ok(c.cmd(&["FLUSHALL"]));
    bgrewriteaof(&mut c);
    wait_rewrites(&mut c);
    ok(c.cmd(&["SET", "k", "v"]));
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
    for _ in 0..3 {
        bgrewriteaof(&mut c);
        kill_rewrite(&work, &moon, &mut c);
    }
    let failed = lines(&[
        "file appendonly.aof.10.base.rdb seq 10 type b",
        "file appendonly.aof.6.incr.aof seq 6 type i",
        "file appendonly.aof.7.incr.aof seq 7 type i",
        "file appendonly.aof.8.incr.aof seq 8 type i",
        "file appendonly.aof.9.incr.aof seq 9 type i",
    ]);
    assert_eq!(work.manifest(), failed);
    ok(c.cmd(&["CONFIG", "SET", "auto-aof-rewrite-min-size", "0"]));
    ok(c.cmd(&["CONFIG", "SET", "auto-aof-rewrite-percentage", "100"]));
    ok(c.cmd(&["SET", "x", &"x".repeat(1024)]));
    wait_until(Duration::from_secs(10), "the limit's log line", || count_log(&moon, "triggered the limit") == 1);
    assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "0");
    assert_eq!(work.manifest(), failed);
    ok(c.cmd(&["CONFIG", "SET", "auto-aof-rewrite-percentage", "0"]));
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    // BGREWRITEAOF is not limited.
    bgrewriteaof(&mut c);
    wait_rewrites(&mut c);
    assert!(work.aof("appendonly.aof.10.incr.aof").exists());
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.11.base.rdb seq 11 type b", "file appendonly.aof.10.incr.aof seq 10 type i"])
    );
    reload_same(&mut c);
}

/// AOF will open a temporary INCR AOF to accumulate data until the first AOFRW success when AOF is
/// dynamically enabled; then aofrw.tcl's "BGREWRITEAOF is refused if already in progress" and "Turning
/// off AOF kills the background writing child if any".
fn temp_incr_until_first_success(shards: usize) {
    let work = Work::new();
    let moon = work.moon(shards, false, &[]);
    let mut c = moon.conn();
    fill(&mut c, "k", 200);
    let load = Load::start(moon.port());
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]));
    assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "1");
    kill_rewrite(&work, &moon, &mut c);
    let removing = "Removing the temp incr aof file temp-appendonly.aof.incr";
    wait_until(Duration::from_secs(10), "the temp incr's removal", || count_log(&moon, removing) == 1);
    assert!(!work.aof("appendonly.aof.manifest").exists());
    assert!(!work.aof("appendonly.aof.1.base.rdb").exists());
    // The rewrite was scheduled again and starts by itself.
    wait_until(Duration::from_secs(10), "the next rewrite", || info(&mut c, "aof_rewrite_in_progress") == "1");
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    kill_rewrite(&work, &moon, &mut c);
    wait_rewrites(&mut c);
    assert_eq!(count_log(&moon, removing), 2);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"])
    );
    load.stop();
    reload_same(&mut c);
    // Disabling AOF does not delete the files.
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "no"]));
    reload_same(&mut c);
    assert!(work.temp_files().is_empty());
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]));
    kill_rewrite(&work, &moon, &mut c);
    wait_until(Duration::from_secs(10), "the next rewrite", || info(&mut c, "aof_rewrite_in_progress") == "1");
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]));
    kill_rewrite(&work, &moon, &mut c);
    wait_rewrites(&mut c);
    assert_eq!(count_log(&moon, removing), 4);
    assert_eq!(
        work.manifest(),
        lines(&["file appendonly.aof.2.base.rdb seq 2 type b", "file appendonly.aof.2.incr.aof seq 2 type i"])
    );
    reload_same(&mut c);

    // BGREWRITEAOF is refused if already in progress.
    ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
    bgrewriteaof(&mut c);
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        Value::Error("ERR Background append only file rewriting already in progress".into())
    );
    assert!(c.cmd(&["BGSAVE"]).is_error());
    // Turning off AOF kills the background writing child if any (not an error; files kept).
    let temp = temp_base(&work, &moon);
    wait_until(Duration::from_secs(10), "the temp base", || temp.exists());
    ok(c.cmd(&["CONFIG", "SET", "appendonly", "no"]));
    assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "0");
    assert!(count_log(&moon, "Killing running AOF rewrite child") == 1);
    assert_eq!(info(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert!(!temp.exists());
    assert_eq!(
        work.manifest(),
        lines(&[
            "file appendonly.aof.2.base.rdb seq 2 type b",
            "file appendonly.aof.2.incr.aof seq 2 type i",
            "file appendonly.aof.3.incr.aof seq 3 type i",
        ])
    );
    reload_same(&mut c);
}

/// Redis's shutdown rule while the first rewrite after `CONFIG SET appendonly yes` runs (none of the data is
/// in the AOF yet): SHUTDOWN and SIGTERM are refused and the rewrite goes on; SHUTDOWN FORCE exits anyway.
/// The same replies and log lines as redis-server 7.0.15, which runs the same steps when installed.
fn shutdown_refused_while_writing_initial_aof(shards: usize) {
    let work = Work::new();
    let moon = work.moon(shards, false, &[]);
    let mut servers = vec![moon];
    if have_redis_tools("shutdown_refused_while_writing_initial_aof", &["redis-server"]) {
        servers.push(ServerOptions::redis().arg("appendonly", "no").start());
    }
    for mut server in servers {
        let mut c = server.conn();
        fill(&mut c, "k", 100);
        ok(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000000"]));
        ok(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]));
        assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "1");
        let refused = Value::Error("ERR Errors trying to SHUTDOWN. Check logs.".into());
        assert_eq!(c.cmd(&["SHUTDOWN"]), refused, "{:?}", server.kind());
        assert_eq!(c.cmd(&["SHUTDOWN", "NOSAVE"]), refused, "{:?}", server.kind());
        assert_eq!(count_log(&server, "Writing initial AOF, can't exit."), 2, "{:?}", server.kind());
        // SIGTERM is refused the same way, and the server stays up with the rewrite still running.
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(server.pid() as libc::pid_t, libc::SIGTERM) }, 0);
        wait_until(Duration::from_secs(10), "the refused SIGTERM", || {
            count_log(&server, "Writing initial AOF, can't exit.") == 3
        });
        assert_eq!(c.cmd(&["DBSIZE"]), Value::Int(100));
        assert_eq!(info(&mut c, "aof_rewrite_in_progress"), "1");
        // FORCE exits without a reply.
        c.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$5\r\nFORCE\r\n");
        let status = server.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "{:?} exited with {status}", server.kind());
        assert_eq!(count_log(&server, "Writing initial AOF. Exit anyway."), 1, "{:?}", server.kind());
        assert_eq!(count_log(&server, "There is a child rewriting the AOF. Killing it!"), 1, "{:?}", server.kind());
    }
}

shard_tests!(
    rewrite_under_load_survives_kill9,
    multi_part_scenarios,
    temp_incr_until_first_success,
    shutdown_refused_while_writing_initial_aof
);
