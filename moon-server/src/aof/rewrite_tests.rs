//! The rewrite in process: the cut is exact while a writer runs (the base alone is the state after one
//! prefix of the writer's steps, base + incr the live state), the file sets of failures and of CONFIG SET
//! appendonly, the back-off, a failed manifest write and a poisoned directory, a rewrite replacing an incr
//! whose fsync failed. End-to-end scenarios (restart after kill -9, redis-server interop) are in
//! tests/aof_rewrite.rs.

use super::*;
use crate::client::{Client, Shared as ClientShared};
use crate::config::Config;
use crate::dispatch::{dispatch, Next};
use bytes::Bytes;
use engine::aof::dir::Fault;
use engine::aof::load::{load_files, KeyspaceReplayer, LoadOptions};
use engine::aof::RecoveryPolicy;
use engine::config::EngineConfig;
use engine::keyspace::Keyspace;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

/// A temporary working directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("moon-aofrw-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn aof(&self, name: &str) -> PathBuf {
        self.0.join("appendonlydir").join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A server with AOF off and `dir` as its working directory.
fn server(shards: usize, dir: &TempDir) -> Arc<Server> {
    let cfg = Config { shards, save: Vec::new(), appendonly: false, dir: dir.0.clone(), ..Config::default() };
    Server::new_shared(cfg, None, 0)
}

fn client(id: u64) -> Client {
    let shared = ClientShared::for_test(id);
    Client::new(shared, true)
}

fn run(server: &Server, c: &mut Client, args: &[&str]) -> Reply {
    c.clock_budget = 0;
    match dispatch(server, c, args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()) {
        Next::Reply(r) => r,
        _ => panic!("expected a reply"),
    }
}

/// CONFIG SET through the same hooks as the command.
fn config_set(server: &Server, name: &str, value: &str) -> Result<(), Reply> {
    let before = config_before(&server.config.read());
    server.config.write().set_from(&[(name.as_bytes().to_vec(), value.as_bytes().to_vec())], true).unwrap();
    crate::aof::config_changed(server);
    config_changed(server, before)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn in_progress(server: &Server) -> bool {
    server.persist.aof_rewrite_started.load(Ordering::Relaxed) != 0
}

fn scheduled(server: &Server) -> bool {
    server.persist.aof_rewrite_scheduled.load(Ordering::Relaxed)
}

/// Runs the cron until no rewrite runs or is scheduled (Redis's `waitForBgrewriteaof`).
fn wait_rewrites(server: &Server) {
    wait_until("the rewrite to end", || {
        cron(server);
        !in_progress(server) && !scheduled(server)
    });
    join_thread(server);
}

fn failures(server: &Server) -> u64 {
    server.persist.aof_rewrites_consecutive_failures.load(Ordering::Relaxed)
}

fn status_ok(server: &Server) -> bool {
    server.persist.aof_last_bgrewrite_ok.load(Ordering::Relaxed)
}

fn manifest(dir: &TempDir) -> Vec<String> {
    fs::read_to_string(dir.aof("appendonly.aof.manifest")).unwrap_or_default().lines().map(String::from).collect()
}

fn lines(items: &[&str]) -> Vec<String> {
    items.iter().map(|l| l.to_string()).collect()
}

fn aof_files(dir: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.0.join("appendonlydir"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn temp_files(dir: &TempDir) -> Vec<String> {
    fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("temp-"))
        .collect()
}

fn temp_base(dir: &TempDir) -> PathBuf {
    dir.0.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()))
}

/// Loads what the manifest names (only the base when `base_only`) into a fresh keyspace.
fn load(dir: &TempDir, databases: usize, base_only: bool) -> Keyspace {
    let d = AofDir::open(AofPaths::with_defaults(&dir.0), AofOptions::default()).unwrap();
    let plan = d.load_plan().unwrap();
    let mut files = plan.load_files();
    if base_only {
        files.truncate(1);
    }
    let mut ks = Keyspace::new(databases);
    let cfg = EngineConfig::default();
    let opts = LoadOptions::new(RecoveryPolicy::Strict, cfg.clone());
    load_files(&files, &opts, &mut KeyspaceReplayer::new(&mut ks, &cfg)).unwrap();
    ks
}

fn digest_of(ks: &Keyspace) -> String {
    engine::digest::to_hex(&engine::digest::dataset_digest(ks))
}

fn live_digest(server: &Server) -> String {
    let view = server.shards.lock_all();
    engine::digest::to_hex(&engine::digest::dataset_digest(&view))
}

/// Everything logged so far reaches the files (the loader reads them).
fn flush(server: &Server) {
    if server.aof.is_on() {
        super::super::stop(server).unwrap();
    }
}

/// AOF on from an empty dataset, as `CONFIG SET appendonly yes` makes it: base 1 + incr 1.
fn enabled(shards: usize, dir: &TempDir) -> Arc<Server> {
    let s = server(shards, dir);
    config_set(&s, "appendonly", "yes").unwrap();
    wait_rewrites(&s);
    assert_eq!(
        manifest(dir),
        lines(&["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"])
    );
    s
}

/// One writer's step `s`: INCR, LPUSH, APPEND or ZINCRBY on one of `keys` (several per shard).
fn step(keys: &[String], s: u64) -> Vec<String> {
    let k = &keys[(s as usize) % keys.len()];
    match s % 4 {
        0 => vec!["INCR".into(), format!("c:{k}")],
        1 => vec!["LPUSH".into(), format!("l:{k}"), s.to_string()],
        2 => vec!["APPEND".into(), format!("a:{k}"), format!("{s},")],
        _ => vec!["ZINCRBY".into(), format!("z:{k}"), "1.5".into(), "m".into()],
    }
}

/// Runs one command on a keyspace.
fn query(ks: &mut Keyspace, args: &[String]) -> Reply {
    let cfg = EngineConfig::default();
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let mut ctx = engine::cmd::Ctx::new(ks, &cfg, 0);
    engine::cmd::execute(&mut ctx, &argv)
}

/// How many of the writer's steps `ks` holds: each step changes one key by one unit (step `s` touches the
/// key of kind `s % 4` named after `keys[s % 8]`), so the units of all keys add up to the prefix length.
fn steps_in(ks: &mut Keyspace, keys: &[String]) -> u64 {
    (0..keys.len()).map(|i| units(ks, keys, i)).sum()
}

/// The steps key `i` of the writer has seen.
fn units(ks: &mut Keyspace, keys: &[String], i: usize) -> u64 {
    let text = |r: Reply| match r {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    let k = &keys[i];
    match i % 4 {
        0 => text(query(ks, &["GET".into(), format!("c:{k}")])).parse::<u64>().unwrap_or(0),
        1 => match query(ks, &["LLEN".into(), format!("l:{k}")]) {
            Reply::Int(n) => n as u64,
            r => panic!("{r:?}"),
        },
        2 => text(query(ks, &["GET".into(), format!("a:{k}")])).matches(',').count() as u64,
        _ => {
            let score = match query(ks, &["ZSCORE".into(), format!("z:{k}"), "m".into()]) {
                Reply::Double(d) => d,
                Reply::Nil => 0.0,
                r => panic!("{r:?}"),
            };
            (score / 1.5).round() as u64
        }
    }
}

/// The writer's keys after its first `m` steps.
fn after_steps(keys: &[String], m: u64) -> Keyspace {
    let mut ks = Keyspace::new(16);
    for s in 0..m {
        query(&mut ks, &step(keys, s));
    }
    ks
}

/// BGREWRITEAOF while one client keeps writing: the new base is the dataset after exactly one prefix of
/// the client's steps, lying between the replies it had before BGREWRITEAOF and the commands it had sent
/// once the rewrite's snapshot existed; base + new incr is the live dataset; the old incr and base are gone.
fn point_in_time(shards: usize, preamble: bool) {
    let dir = TempDir::new("pit");
    let s = enabled(shards, &dir);
    config_set(&s, "aof-use-rdb-preamble", if preamble { "yes" } else { "no" }).unwrap();
    let mut c = client(1);
    for i in 0..600 {
        assert_eq!(run(&s, &mut c, &["SET", &format!("filler:{i}"), "x"]), Reply::ok());
    }
    run(&s, &mut c, &["SELECT", "3"]);
    run(&s, &mut c, &["RPUSH", "other", "a", "b"]);
    run(&s, &mut c, &["PEXPIRE", "other", "1000000"]);
    run(&s, &mut c, &["SELECT", "0"]);
    config_set(&s, "rdb-key-save-delay", "500").unwrap();
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (s, keys, stop, sent, acked) = (s.clone(), keys.clone(), stop.clone(), sent.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut c = client(2);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let cmd = step(&keys, n);
                sent.store(n + 1, Ordering::SeqCst);
                let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
                assert!(!run(&s, &mut c, &args).is_error());
                acked.store(n + 1, Ordering::SeqCst);
                n += 1;
            }
        })
    };
    wait_until("the writer", || acked.load(Ordering::SeqCst) > 200);
    let lo = acked.load(Ordering::SeqCst);
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    assert_eq!(command(&s, false), Reply::err(IN_PROGRESS));
    // The rewrite's thread takes the cut after the reply: bound it by the moment its snapshot exists.
    wait_until("the cut", || s.snapshots.running() == Some(Purpose::AofRewrite));
    let hi = sent.load(Ordering::SeqCst);
    wait_rewrites(&s);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let total = acked.load(Ordering::SeqCst);
    assert!(total > hi + 100, "only {} steps during the rewrite", total - hi);
    assert!(status_ok(&s));
    let base = if preamble { "appendonly.aof.2.base.rdb" } else { "appendonly.aof.2.base.aof" };
    assert_eq!(
        manifest(&dir),
        lines(&[&format!("file {base} seq 2 type b"), "file appendonly.aof.2.incr.aof seq 2 type i"])
    );
    assert_eq!(aof_files(&dir), lines(&[base, "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]));
    assert!(temp_files(&dir).is_empty());
    let raw = fs::read(dir.aof(base)).unwrap();
    if preamble {
        assert!(raw.starts_with(b"REDIS"));
    } else {
        assert!(raw.starts_with(b"*2\r\n$6\r\nSELECT\r\n"), "{:?}", String::from_utf8_lossy(&raw[..40]));
    }
    flush(&s);
    let live = live_digest(&s);
    assert_eq!(digest_of(&load(&dir, 16, false)), live, "base + incr");
    // The base: the filler, untouched, plus exactly one prefix of the writer's steps.
    let base_ks = load(&dir, 16, true);
    let mut written = Keyspace::new(16);
    let (mut filler, mut other) = (0, 0);
    for db in 0..16 {
        for e in base_ks.dbs[db].table.iter() {
            let k = String::from_utf8_lossy(&e.key);
            if k.starts_with("filler:") {
                assert_eq!(&e.value, &engine::types::Value::Str(engine::types::StrValue::from_bytes(b"x")));
                filler += 1;
            } else if k == "other" {
                assert!(db == 3 && e.has_expire());
                other += 1;
            } else {
                written.dbs[db].insert(&e.key, e.value.clone(), e.has_expire().then_some(e.expire_at()));
            }
        }
    }
    assert_eq!((filler, other), (600, 1));
    let m = steps_in(&mut written, &keys);
    assert!((lo..=hi).contains(&m), "the base holds {m} steps, not within [{lo}, {hi}]");
    assert_eq!(digest_of(&written), digest_of(&after_steps(&keys, m)), "the base is not the state after {m} steps");
}

#[test]
fn point_in_time_rdb_base() {
    point_in_time(1, true);
    point_in_time(4, true);
}

#[test]
fn point_in_time_resp_base() {
    point_in_time(4, false);
}

#[test]
fn limit_backs_off_1_2_4_to_60_minutes() {
    let mut l = Limit::default();
    assert!(!limited(&mut l, 2, 0));
    let mut now = 1000;
    let mut seen = Vec::new();
    for _ in 0..9 {
        assert!(limited(&mut l, 3, now), "the first attempt of a round is limited");
        let at = l.next_at.unwrap();
        seen.push((at - now) / 60);
        assert!(limited(&mut l, 3, at - 1));
        now = at;
        assert!(!limited(&mut l, 3, now), "allowed once the delay has passed");
    }
    assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert!(!limited(&mut l, 0, now));
    assert_eq!(l, Limit::default());
}

/// A rewrite whose temp file disappears fails (Redis's killed child): counted, the incr it opened stays
/// listed, its temp file is gone; three in a row give b + four incrs; then a success demotes them all.
#[test]
fn failures_accumulate_incrs_until_a_success() {
    let dir = TempDir::new("fail");
    let s = enabled(2, &dir);
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_rewrites(&s);
    let mut c = client(1);
    for i in 0..50 {
        run(&s, &mut c, &["SET", &format!("k{i}"), "v"]);
    }
    config_set(&s, "rdb-key-save-delay", "1000000").unwrap();
    for n in 1..=3u64 {
        assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
        run(&s, &mut c, &["INCR", "counter"]);
        wait_until("the temp base", || temp_base(&dir).exists());
        fs::remove_file(temp_base(&dir)).unwrap();
        wait_rewrites(&s);
        assert_eq!(failures(&s), n);
        assert!(!status_ok(&s));
    }
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    assert_eq!(
        manifest(&dir),
        lines(&[
            "file appendonly.aof.2.base.rdb seq 2 type b",
            "file appendonly.aof.2.incr.aof seq 2 type i",
            "file appendonly.aof.3.incr.aof seq 3 type i",
            "file appendonly.aof.4.incr.aof seq 4 type i",
            "file appendonly.aof.5.incr.aof seq 5 type i",
        ])
    );
    // Growth would trigger an automatic rewrite: the limit holds it back, with Redis's log line.
    config_set(&s, "auto-aof-rewrite-min-size", "0").unwrap();
    s.persist.aof_base_size.store(1, Ordering::Relaxed);
    cron(&s);
    assert!(!in_progress(&s));
    assert!(s.aof_rewrite.ctl.lock().limit.next_at.is_some());
    // BGREWRITEAOF is not limited.
    config_set(&s, "rdb-key-save-delay", "0").unwrap();
    config_set(&s, "auto-aof-rewrite-percentage", "0").unwrap();
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_rewrites(&s);
    assert!(status_ok(&s));
    assert_eq!(failures(&s), 0);
    assert_eq!(
        manifest(&dir),
        lines(&["file appendonly.aof.3.base.rdb seq 3 type b", "file appendonly.aof.6.incr.aof seq 6 type i"])
    );
    assert_eq!(
        aof_files(&dir),
        lines(&["appendonly.aof.3.base.rdb", "appendonly.aof.6.incr.aof", "appendonly.aof.manifest"])
    );
    flush(&s);
    assert_eq!(digest_of(&load(&dir, 16, false)), live_digest(&s));
}

/// A directory where the temp base should be: every rewrite fails at once; in WaitRewrite each failure
/// removes the temp incr and schedules the rewrite again, and no manifest or base is written until one
/// succeeds.
#[test]
fn wait_rewrite_keeps_retrying_until_the_first_success() {
    let dir = TempDir::new("wait");
    let s = server(1, &dir);
    let mut c = client(1);
    run(&s, &mut c, &["SET", "before", "1"]);
    fs::create_dir(temp_base(&dir)).unwrap();
    config_set(&s, "appendonly", "yes").unwrap();
    wait_until("a failure", || {
        cron(&s);
        failures(&s) >= 1
    });
    assert!(scheduled(&s) || in_progress(&s));
    assert!(!dir.aof("appendonly.aof.manifest").exists());
    assert!(!dir.aof("appendonly.aof.1.base.rdb").exists());
    run(&s, &mut c, &["SET", "during", "2"]);
    wait_until("the limit", || {
        cron(&s);
        s.aof_rewrite.ctl.lock().limit.next_at.is_some()
    });
    assert_eq!(failures(&s), 3);
    assert!(!dir.aof("temp-appendonly.aof.incr").exists());
    fs::remove_dir(temp_base(&dir)).unwrap();
    // Limited: nothing starts by itself now; BGREWRITEAOF still does.
    cron(&s);
    assert!(!in_progress(&s));
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_rewrites(&s);
    assert_eq!(
        manifest(&dir),
        lines(&["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"])
    );
    run(&s, &mut c, &["SET", "after", "3"]);
    flush(&s);
    assert_eq!(digest_of(&load(&dir, 16, false)), live_digest(&s));
}

/// CONFIG SET appendonly no kills a running rewrite (no failure counted, temp files gone, every other
/// file kept); BGREWRITEAOF with AOF off writes only a base; turning AOF on again starts from it.
#[test]
fn turning_aof_off_and_on() {
    let dir = TempDir::new("off");
    let s = enabled(4, &dir);
    let mut c = client(1);
    for i in 0..100 {
        run(&s, &mut c, &["SET", &format!("k{i}"), "v"]);
    }
    config_set(&s, "rdb-key-save-delay", "100000").unwrap();
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_until("the temp base", || temp_base(&dir).exists());
    config_set(&s, "appendonly", "no").unwrap();
    assert!(!in_progress(&s));
    assert!(status_ok(&s) && failures(&s) == 0);
    assert!(temp_files(&dir).is_empty());
    assert!(!s.aof.is_on());
    let kept = lines(&[
        "file appendonly.aof.1.base.rdb seq 1 type b",
        "file appendonly.aof.1.incr.aof seq 1 type i",
        "file appendonly.aof.2.incr.aof seq 2 type i",
    ]);
    assert_eq!(manifest(&dir), kept);
    config_set(&s, "rdb-key-save-delay", "0").unwrap();
    run(&s, &mut c, &["SET", "while-off", "1"]);
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_rewrites(&s);
    assert_eq!(manifest(&dir), lines(&["file appendonly.aof.2.base.rdb seq 2 type b"]));
    assert_eq!(aof_files(&dir), lines(&["appendonly.aof.2.base.rdb", "appendonly.aof.manifest"]));
    assert_eq!(digest_of(&load(&dir, 16, false)), live_digest(&s));
    config_set(&s, "appendonly", "yes").unwrap();
    wait_rewrites(&s);
    // The incr counter continues in memory (a reload would restart it at 1, as in Redis).
    assert_eq!(
        manifest(&dir),
        lines(&["file appendonly.aof.3.base.rdb seq 3 type b", "file appendonly.aof.3.incr.aof seq 3 type i"])
    );
    run(&s, &mut c, &["SET", "on-again", "1"]);
    flush(&s);
    assert_eq!(digest_of(&load(&dir, 16, false)), live_digest(&s));
}

/// CONFIG SET appendonly yes while a BGSAVE runs: scheduled, nothing written until the BGSAVE ends; a
/// BGREWRITEAOF during a BGSAVE is scheduled too, and BGSAVE during a rewrite is refused as in Redis.
#[test]
fn enable_and_bgrewriteaof_during_bgsave() {
    let dir = TempDir::new("bgsave");
    let s = server(2, &dir);
    let mut c = client(1);
    for i in 0..40 {
        run(&s, &mut c, &["SET", &format!("k{i}"), "v"]);
    }
    config_set(&s, "rdb-key-save-delay", "20000").unwrap();
    assert_eq!(run(&s, &mut c, &["BGSAVE"]), Reply::Simple("Background saving started".into()));
    config_set(&s, "appendonly", "yes").unwrap();
    assert!(scheduled(&s) && !in_progress(&s));
    assert!(!dir.0.join("appendonlydir").join("temp-appendonly.aof.incr").exists());
    assert!(!dir.aof("appendonly.aof.manifest").exists());
    assert_eq!(command(&s, false), Reply::Simple(SCHEDULED.into()));
    config_set(&s, "rdb-key-save-delay", "0").unwrap();
    wait_rewrites(&s);
    assert_eq!(
        manifest(&dir),
        lines(&["file appendonly.aof.1.base.rdb seq 1 type b", "file appendonly.aof.1.incr.aof seq 1 type i"])
    );
    config_set(&s, "rdb-key-save-delay", "100000").unwrap();
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    assert!(run(&s, &mut c, &["BGSAVE"]).is_error());
    assert_eq!(run(&s, &mut c, &["BGSAVE", "SCHEDULE"]), Reply::Simple("Background saving scheduled".into()));
    // Inside EXEC: scheduled.
    assert_eq!(in_exec(|| command(&s, false)), Reply::err(IN_PROGRESS));
    config_set(&s, "rdb-key-save-delay", "0").unwrap();
    config_set(&s, "appendonly", "no").unwrap();
    assert_eq!(in_exec(|| command(&s, false)), Reply::Simple(SCHEDULED.into()));
}

/// A manifest write that fails after the rewrite: counted as a failure, the new base removed, the incr it
/// opened stays; a failed directory fsync poisons the directory: BGREWRITEAOF is refused from then on.
#[test]
fn manifest_failure_and_poisoned_directory() {
    let dir = TempDir::new("poison");
    let s = enabled(1, &dir);
    let mut c = client(1);
    run(&s, &mut c, &["SET", "a", "1"]);
    config_set(&s, "rdb-key-save-delay", "200000").unwrap();
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_until("the rewrite to begin", || temp_base(&dir).exists());
    // rewrite_done's steps: fsync the temp base, rename it, fsync the directory, then the manifest's
    // open (4th), write, fsync, rename, directory fsync (8th).
    s.aof_dir.lock().as_mut().unwrap().inject_fault(4, Fault::Fail);
    wait_rewrites(&s);
    assert_eq!(failures(&s), 1);
    assert!(!status_ok(&s));
    assert_eq!(
        manifest(&dir),
        lines(&[
            "file appendonly.aof.1.base.rdb seq 1 type b",
            "file appendonly.aof.1.incr.aof seq 1 type i",
            "file appendonly.aof.2.incr.aof seq 2 type i",
        ])
    );
    assert!(!dir.aof("appendonly.aof.2.base.rdb").exists());
    assert!(temp_files(&dir).is_empty());
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_until("the rewrite to begin", || temp_base(&dir).exists());
    s.aof_dir.lock().as_mut().unwrap().inject_fault(3, Fault::Fail);
    wait_rewrites(&s);
    assert_eq!(failures(&s), 2);
    assert!(s.aof_dir.lock().as_ref().unwrap().is_poisoned());
    assert_eq!(command(&s, false), Reply::err(CANT));
}

/// An incr whose fsync failed poisons the pipeline (writes refused); a rewrite switches to a fresh incr,
/// its snapshot covers what the old one missed, and writes are accepted again.
#[test]
fn rewrite_replaces_a_poisoned_incr() {
    struct Failing(AtomicBool);
    impl engine::aof::writer::AofFile for Failing {
        fn append(&self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn sync_data(&self) -> io::Result<()> {
            if self.0.load(Ordering::SeqCst) {
                Err(io::Error::from_raw_os_error(5))
            } else {
                Ok(())
            }
        }
        fn truncate(&self, _: u64) -> io::Result<()> {
            Ok(())
        }
    }
    let dir = TempDir::new("poisoned-incr");
    let s = enabled(1, &dir);
    // Swap the real incr for one that loses everything and fails its fsync.
    super::super::stop(&s).unwrap();
    let failing = Arc::new(Failing(AtomicBool::new(true)));
    let settings = crate::aof::Settings::from_config(&s.config.read());
    let settings = crate::aof::Settings { policy: crate::aof::Policy::Always, ..settings };
    s.aof.start_on(failing, 0, 0, settings).unwrap();
    let mut c = client(1);
    assert_eq!(run(&s, &mut c, &["SET", "lost", "1"]), Reply::ok());
    wait_until("the poison", || !s.persist.aof_last_write_ok.load(Ordering::Relaxed));
    assert!(run(&s, &mut c, &["SET", "refused", "1"]).is_error());
    assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
    wait_rewrites(&s);
    assert!(s.persist.aof_last_write_ok.load(Ordering::Relaxed));
    assert_eq!(run(&s, &mut c, &["SET", "accepted", "1"]), Reply::ok());
    flush(&s);
    let loaded = load(&dir, 16, false);
    assert_eq!(digest_of(&loaded), live_digest(&s));
    assert!(loaded.dbs[0].get(b"lost").is_some(), "the new base holds what the failed incr lost");
}

/// aof-disable-auto-gc keeps history lines and files (newest first after the base); turning it off
/// removes them.
#[test]
fn auto_gc_can_be_disabled() {
    let dir = TempDir::new("gc");
    let s = enabled(1, &dir);
    config_set(&s, "aof-disable-auto-gc", "yes").unwrap();
    for _ in 0..2 {
        assert_eq!(command(&s, false), Reply::Simple(STARTED.into()));
        wait_rewrites(&s);
    }
    assert_eq!(
        manifest(&dir),
        lines(&[
            "file appendonly.aof.3.base.rdb seq 3 type b",
            "file appendonly.aof.2.incr.aof seq 2 type h",
            "file appendonly.aof.2.base.rdb seq 2 type h",
            "file appendonly.aof.1.incr.aof seq 1 type h",
            "file appendonly.aof.1.base.rdb seq 1 type h",
            "file appendonly.aof.3.incr.aof seq 3 type i",
        ])
    );
    assert_eq!(aof_files(&dir).len(), 7);
    config_set(&s, "aof-disable-auto-gc", "no").unwrap();
    assert_eq!(
        manifest(&dir),
        lines(&["file appendonly.aof.3.base.rdb seq 3 type b", "file appendonly.aof.3.incr.aof seq 3 type i"])
    );
    assert_eq!(
        aof_files(&dir),
        lines(&["appendonly.aof.3.base.rdb", "appendonly.aof.3.incr.aof", "appendonly.aof.manifest"])
    );
}

/// The automatic rewrite: growth over the size after the last rewrite, above the minimum size.
#[test]
fn automatic_rewrite_on_growth() {
    let dir = TempDir::new("auto");
    let s = enabled(1, &dir);
    config_set(&s, "auto-aof-rewrite-min-size", "1kb").unwrap();
    config_set(&s, "auto-aof-rewrite-percentage", "100").unwrap();
    let base = s.persist.aof_base_size.load(Ordering::Relaxed);
    assert!(base > 0);
    let mut c = client(1);
    // Incompressible, so the RDB base is as large as the data.
    let value: String = (0..200).map(|_| fastrand::alphanumeric()).collect();
    run(&s, &mut c, &["SET", "k0", &value]);
    wait_until("the write", || s.persist.aof_current_size.load(Ordering::Relaxed) > base);
    cron(&s);
    assert!(!in_progress(&s), "below the minimum size");
    for i in 0..20 {
        run(&s, &mut c, &["SET", &format!("k{i}"), &value]);
    }
    wait_until("an automatic rewrite", || {
        cron(&s);
        in_progress(&s) || s.persist.aof_rewrites.load(Ordering::Relaxed) > 1
    });
    wait_rewrites(&s);
    assert_eq!(
        manifest(&dir),
        lines(&["file appendonly.aof.2.base.rdb seq 2 type b", "file appendonly.aof.2.incr.aof seq 2 type i"])
    );
    let after = s.persist.aof_base_size.load(Ordering::Relaxed);
    assert!(after > 20 * 200, "base size {after}");
    cron(&s);
    assert!(!in_progress(&s), "no growth since");
}
