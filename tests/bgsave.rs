//! BGSAVE on Moon's fork-less snapshot, end to end: the dump is exactly the dataset at the instant BGSAVE
//! was accepted while a client keeps writing, it passes `redis-check-rdb` and loads in redis-server with the
//! same digest; save points; MISCONF after a failed save (checked against redis-server); BGSAVE SCHEDULE
//! and the in-progress errors; FLUSHALL stopping a BGSAVE; -LOADING while the dump loads at start-up.

use moon_tests::resp::encode_into;
use moon_tests::{
    bin_path, free_port, have_redis_tools, keys_on_distinct_shards, Kind, RawConn, Server, ServerOptions, Value,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn info_field(c: &mut RawConn, field: &str) -> String {
    let text = c.cmd(&["INFO", "persistence"]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{text}"))
        .trim()
        .to_string()
}

/// Polls until `cond` holds, panicking after `limit`.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_bgsave_done(c: &mut RawConn) {
    wait_until(Duration::from_secs(120), "the BGSAVE to end", || info_field(c, "rdb_bgsave_in_progress") == "0");
}

/// `n` keys `prefix:i` = `value-i` (pipelined), in the current database of `c`.
fn fill(c: &mut RawConn, prefix: &str, n: usize) {
    let mut bytes = Vec::new();
    for i in 0..n {
        encode_into(&mut bytes, &["SET", &format!("{prefix}:{i}"), &format!("value-{i}")]);
    }
    for r in c.pipeline(bytes, n) {
        assert_eq!(r, Value::simple("OK"));
    }
}

fn moon_on(dir: &Path, shards: usize) -> Server {
    ServerOptions::moon(shards).arg("dir", &dir.display().to_string()).start()
}

/// The writer's keys: slot `t` of `3 * n` is INCR (t < n), LPUSH (t < 2n) or APPEND on `keys[t]`, and step
/// `s` of the writer touches slot `s % 3n`. A single client runs the steps in order, so every consistent
/// cut of the dataset is the state after some prefix of `m` steps, which [`expected`] computes.
struct Workload {
    keys: Vec<String>,
    n: usize,
}

#[derive(Debug, PartialEq)]
enum Content {
    Counter(i64),
    List(Vec<u64>),
    Text(String),
}

impl Workload {
    fn new(n: usize) -> Self {
        Workload { keys: keys_on_distinct_shards("w", 3 * n), n }
    }

    fn slots(&self) -> u64 {
        3 * self.n as u64
    }

    fn command(&self, s: u64) -> Vec<String> {
        let t = (s % self.slots()) as usize;
        let key = self.keys[t].clone();
        match t / self.n {
            0 => vec!["INCR".into(), key],
            1 => vec!["LPUSH".into(), key, s.to_string()],
            _ => vec!["APPEND".into(), key, format!("{s},")],
        }
    }

    /// Steps `s < m` that touched slot `t`, in order.
    fn steps(&self, t: usize, m: u64) -> impl Iterator<Item = u64> {
        (t as u64..m).step_by(self.slots() as usize)
    }

    /// The content of slot `t` after `m` steps (`None`: the key does not exist yet).
    fn expected(&self, t: usize, m: u64) -> Option<Content> {
        let steps: Vec<u64> = self.steps(t, m).collect();
        if steps.is_empty() {
            return None;
        }
        Some(match t / self.n {
            0 => Content::Counter(steps.len() as i64),
            1 => Content::List(steps.into_iter().rev().collect()),
            _ => Content::Text(steps.iter().map(|s| format!("{s},")).collect()),
        })
    }

    /// What the server holds for slot `t`.
    fn read(&self, c: &mut RawConn, t: usize) -> Option<Content> {
        let key = &self.keys[t];
        if c.cmd(&["EXISTS", key]).int() == 0 {
            return None;
        }
        Some(match t / self.n {
            0 => Content::Counter(c.cmd(&["GET", key]).text().parse().expect("counter")),
            1 => Content::List(
                c.cmd(&["LRANGE", key, "0", "-1"]).array().iter().map(|v| v.text().parse().unwrap()).collect(),
            ),
            _ => Content::Text(c.cmd(&["GET", key]).text()),
        })
    }
}

/// Runs the workload's steps on its own connection until `stop`; `sent` counts commands sent, `acked`
/// replies received (each checked against what the step must return).
fn writer(port: u16, w: Arc<Workload>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>, acked: Arc<AtomicU64>) {
    let mut c = RawConn::connect(port);
    let mut s = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let cmd = w.command(s);
        sent.store(s + 1, Ordering::SeqCst);
        let reply = c.cmd(&cmd);
        let t = (s % w.slots()) as usize;
        let applied = w.steps(t, s + 1).count() as i64;
        match w.expected(t, s + 1) {
            Some(Content::Counter(n)) => assert_eq!(reply, Value::Int(n)),
            Some(Content::List(_)) => assert_eq!(reply, Value::Int(applied)),
            Some(Content::Text(text)) => assert_eq!(reply, Value::Int(text.len() as i64)),
            None => unreachable!("step {s} touched slot {t}"),
        }
        acked.store(s + 1, Ordering::SeqCst);
        s += 1;
    }
}

/// BGSAVE while a client hammers INCR/LPUSH/APPEND on keys spread over every shard (and filler keys in two
/// databases make the walk last): the dump must hold the state after exactly one prefix of the writer's
/// steps, and that prefix must lie between the replies the writer had before BGSAVE was sent and the
/// commands it had sent when BGSAVE replied. Then the same dump passes redis-check-rdb and loads in
/// redis-server with Moon's digest.
fn bgsave_is_point_in_time(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    fill(&mut c, "filler", 1000);
    assert_eq!(c.cmd(&["SELECT", "2"]), Value::simple("OK"));
    fill(&mut c, "other", 200);
    assert_eq!(c.cmd(&["SELECT", "0"]), Value::simple("OK"));
    // 1200 keys at 2 ms each: a walk of two seconds or more, during which the writer runs. (Few keys with a
    // long delay rather than many with a short one: each walked key costs a lock hand-over, which a loaded
    // CI machine makes slow.)
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "2000"]), Value::simple("OK"));
    let w = Arc::new(Workload::new(4));
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let handle = {
        let (w, stop, sent, acked, port) = (w.clone(), stop.clone(), sent.clone(), acked.clone(), moon.port());
        std::thread::spawn(move || writer(port, w, stop, sent, acked))
    };
    wait_until(Duration::from_secs(60), "the writer to start", || acked.load(Ordering::SeqCst) > 100);
    let lo = acked.load(Ordering::SeqCst);
    assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("Background saving started"));
    let hi = sent.load(Ordering::SeqCst);
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    let temp = moon.dir().join(format!("temp-bg-{}.rdb", moon.pid()));
    wait_until(Duration::from_secs(30), "the BGSAVE's temp file", || temp.exists());
    wait_bgsave_done(&mut c);
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("writer");
    let total = acked.load(Ordering::SeqCst);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert!(!temp.exists(), "temp file left behind");
    // The writer overwrote every key many times while the walk ran: pre-images had to be saved.
    assert!(total > hi + 10 * w.slots(), "only {} steps during the save", total - hi);
    let live = c.cmd(&["DEBUG", "DIGEST"]).text();
    moon.kill9();

    let again = moon_on(moon.dir(), shards);
    let mut r = again.conn();
    assert_eq!(r.cmd(&["DBSIZE"]).int(), 1000 + w.slots() as i64);
    assert_eq!(r.cmd(&["GET", "filler:999"]), Value::bulk("value-999"));
    assert_eq!(r.cmd(&["SELECT", "2"]), Value::simple("OK"));
    assert_eq!(r.cmd(&["DBSIZE"]).int(), 200);
    assert_eq!(r.cmd(&["SELECT", "0"]), Value::simple("OK"));
    let got: Vec<Option<Content>> = (0..w.keys.len()).map(|t| w.read(&mut r, t)).collect();
    let cuts: Vec<u64> =
        (lo..=hi).filter(|&m| (0..w.keys.len()).all(|t| w.expected(t, m).as_ref() == got[t].as_ref())).collect();
    assert_eq!(cuts.len(), 1, "dump is not the state after one prefix in [{lo}, {hi}]: {got:?}");
    let dump_digest = r.cmd(&["DEBUG", "DIGEST"]).text();
    assert_ne!(dump_digest, live, "the dump should predate the writes made during the save");

    if !have_redis_tools("bgsave::bgsave_is_point_in_time", &["redis-server", "redis-check-rdb"]) {
        return;
    }
    let dump = moon.dir().join("dump.rdb");
    let check = std::process::Command::new(moon_tests::redis_tool("redis-check-rdb").unwrap());
    let out = moon_tests::run_with_timeout(
        {
            let mut cmd = check;
            cmd.arg(&dump);
            cmd
        },
        None,
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("RDB looks OK!"), "redis-check-rdb:\n{text}");
    let redis = ServerOptions::redis().arg("dir", &moon.dir().display().to_string()).start();
    assert_eq!(redis.conn().cmd(&["DEBUG", "DIGEST"]).text(), dump_digest);
}

/// `save <seconds> <changes>`: enough changes after enough seconds start a BGSAVE from the cron, with
/// Redis's log line; it resets the change counter and moves LASTSAVE.
fn save_points_trigger(shards: usize) {
    let moon = ServerOptions::moon(shards).arg("save", "1 5").start();
    let mut c = moon.conn();
    let before = c.cmd(&["LASTSAVE"]).int();
    fill(&mut c, "k", 3);
    std::thread::sleep(Duration::from_millis(1500));
    // 3 changes: below the rule.
    assert!(!moon.dir().join("dump.rdb").exists());
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "3");
    fill(&mut c, "more", 3);
    wait_until(Duration::from_secs(30), "the save point", || moon.dir().join("dump.rdb").exists());
    wait_bgsave_done(&mut c);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut c, "rdb_saves"), "1");
    assert!(c.cmd(&["LASTSAVE"]).int() > before);
    let log = moon.log_text();
    assert!(log.contains("5 changes in 1 seconds. Saving..."), "{log}");
    assert!(log.contains("Background saving started"), "{log}");
    assert!(log.contains("DB saved on disk"), "{log}");
    assert!(log.contains("Background saving terminated with success"), "{log}");
}

/// After a background save fails (its `dir` is gone), writes and PING get Redis's MISCONF error while save
/// points exist; reads still work; EXEC of a queued write is discarded; a good save lifts it. The replies
/// are compared with redis-server's for the same steps.
fn misconf_scenario(kind: Kind, shards: usize) -> Vec<Value> {
    let opts = match kind {
        Kind::Moon => ServerOptions::moon(shards),
        Kind::Redis => ServerOptions::redis(),
    };
    let server = opts.arg("save", "3600 1").arg("enable-protected-configs", "yes").start();
    let mut c = server.conn();
    let mut out = Vec::new();
    out.push(c.cmd(&["SET", "k", "v"]));
    let gone = server.dir().join("gone");
    std::fs::create_dir(&gone).unwrap();
    out.push(c.cmd(&["CONFIG", "SET", "dir", &gone.display().to_string()]));
    std::fs::remove_dir(&gone).unwrap();
    let mut queued = server.conn();
    out.push(queued.cmd(&["MULTI"]));
    out.push(queued.cmd(&["SET", "q", "1"]));
    out.push(c.cmd(&["BGSAVE"]));
    wait_bgsave_done(&mut c);
    out.push(Value::bulk(&info_field(&mut c, "rdb_last_bgsave_status")));
    for cmd in [&["SET", "k", "w"][..], &["GET", "k"], &["PING"], &["DEL", "k"], &["INCR", "n"], &["DBSIZE"]] {
        out.push(c.cmd(cmd));
    }
    out.push(queued.cmd(&["EXEC"]));
    out.push(queued.cmd(&["GET", "q"]));
    out.push(c.cmd(&["MULTI"]));
    out.push(c.cmd(&["SET", "a", "1"]));
    out.push(c.cmd(&["GET", "k"]));
    out.push(c.cmd(&["EXEC"]));
    out.push(c.cmd(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]));
    out.push(c.cmd(&["SET", "allowed", "1"]));
    out.push(c.cmd(&["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]));
    out.push(c.cmd(&["SET", "refused", "1"]));
    // A good save lifts the refusal.
    out.push(c.cmd(&["CONFIG", "SET", "dir", &server.dir().display().to_string()]));
    out.push(c.cmd(&["BGSAVE"]));
    wait_bgsave_done(&mut c);
    out.push(Value::bulk(&info_field(&mut c, "rdb_last_bgsave_status")));
    out.push(c.cmd(&["SET", "k", "again"]));
    out.push(c.cmd(&["PING"]));
    if kind == Kind::Moon {
        let log = server.log_text();
        assert!(log.contains("Failed opening the temp RDB file") && log.contains("Background saving error"), "{log}");
    }
    out
}

fn misconf(shards: usize) {
    let moon = misconf_scenario(Kind::Moon, shards);
    let misconf = moon.iter().filter(|v| v.is_error() && v.text().starts_with("MISCONF")).count();
    assert_eq!(misconf, 6, "{moon:?}");
    assert!(moon.contains(&Value::Error(format!("EXECABORT Transaction discarded because of: {}", moon[6].text()))));
    assert_eq!(moon.last(), Some(&Value::simple("PONG")));
    if have_redis_tools("bgsave::misconf", &["redis-server"]) {
        assert_eq!(moon, misconf_scenario(Kind::Redis, 1));
    }
}

/// BGSAVE SCHEDULE, BGSAVE in MULTI, the in-progress errors, and FLUSHALL stopping a BGSAVE without
/// counting it as failed (Redis's "FLUSHALL aborts bgsave").
fn bgsave_commands(shards: usize) {
    let moon = Server::moon(shards);
    let mut c = moon.conn();
    let max_hold = |c: &mut RawConn| -> u64 {
        let text = c.cmd(&["INFO", "stats"]).text();
        let v = text.lines().find_map(|l| l.strip_prefix("latest_snapshot_max_hold_usec:"));
        v.unwrap_or_else(|| panic!("no latest_snapshot_max_hold_usec in INFO stats:\n{text}")).trim().parse().unwrap()
    };
    assert_eq!(max_hold(&mut c), 0, "no snapshot has run yet");
    fill(&mut c, "k", 2000);
    assert_eq!(c.cmd(&["BGSAVE", "now"]), Value::Error("ERR syntax error".into()));
    assert_eq!(c.cmd(&["BGSAVE", "SCHEDULE"]), Value::simple("Background saving started"));
    wait_bgsave_done(&mut c);
    // The cut and the walk held the shards for some time, which INFO reports (Redis: latest_fork_usec).
    assert!(max_hold(&mut c) > 0, "the finished BGSAVE reported no shard hold");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    // Queued in MULTI, BGSAVE is scheduled, and the cron runs it.
    let saves = info_field(&mut c, "rdb_saves");
    assert_eq!(c.cmd(&["MULTI"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("QUEUED"));
    assert_eq!(c.cmd(&["EXEC"]), Value::Array(vec![Value::simple("Background saving scheduled")]));
    wait_until(Duration::from_secs(30), "the scheduled BGSAVE", || info_field(&mut c, "rdb_saves") != saves);

    // 3000 keys at 2 ms each: a BGSAVE of six seconds.
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "2000"]), Value::simple("OK"));
    wait_bgsave_done(&mut c);
    fill(&mut c, "dirty", 1000);
    assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("Background saving started"));
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    assert_eq!(info_field(&mut c, "current_save_keys_total"), "3000");
    let busy = Value::Error("ERR Background save already in progress".into());
    assert_eq!(c.cmd(&["BGSAVE"]), busy);
    assert_eq!(c.cmd(&["BGSAVE", "SCHEDULE"]), busy);
    assert_eq!(c.cmd(&["SAVE"]), busy);
    assert_eq!(c.cmd(&["FLUSHALL"]), Value::simple("OK"));
    wait_until(Duration::from_secs(2), "FLUSHALL to stop the BGSAVE", || {
        info_field(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    let dirty: i64 = info_field(&mut c, "rdb_changes_since_last_save").parse().unwrap();
    assert!(dirty > 999, "the stopped save reset the change counter: {dirty}");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(c.cmd(&["SET", "x", "xx"]), Value::simple("OK"));
    assert!(!moon.dir().join(format!("temp-bg-{}.rdb", moon.pid())).exists());
    assert!(moon.log_text().contains("Background saving terminated by FLUSHALL"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("Background saving started"));
    wait_bgsave_done(&mut c);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
}

/// With save points, FLUSHALL saves the empty dataset at once (as Redis), so a crash right after it can't
/// bring the flushed keys back; SHUTDOWN during a BGSAVE stops it, removes its temp file and saves.
fn flushall_saves_and_shutdown_stops_bgsave(shards: usize) {
    let moon = ServerOptions::moon(shards).arg("save", "3600 1").start();
    let mut c = moon.conn();
    fill(&mut c, "k", 100);
    assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["FLUSHALL"]), Value::simple("OK"));
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    moon.kill9();
    let second =
        ServerOptions::moon(shards).arg("save", "3600 1").arg("dir", &moon.dir().display().to_string()).start();
    let mut c = second.conn();
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 0);

    fill(&mut c, "k", 500);
    assert_eq!(c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "10000"]), Value::simple("OK"));
    assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("Background saving started"));
    c.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    assert_eq!(c.is_closed(), Ok(()));
    wait_until(Duration::from_secs(30), "the shutdown", || RawConn::try_connect(second.port()).is_err());
    let leftovers: Vec<String> = std::fs::read_dir(moon.dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("temp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let log = second.log_text();
    assert!(log.contains("Killing it!") && log.contains("DB saved on disk"), "{log}");
    let third = moon_on(moon.dir(), shards);
    assert_eq!(third.conn().cmd(&["DBSIZE"]).int(), 500);
}

/// A Moon process started by hand: `Server::start` waits for PONG, which -LOADING holds back.
struct Raw(std::process::Child);

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start-up accepts connections while the dump loads: commands without the `loading` flag get -LOADING,
/// INFO shows `loading:1` with growing progress, and once loaded everything is there.
fn loading_replies(shards: usize) {
    let first = Server::moon(shards);
    let mut c = first.conn();
    fill(&mut c, "k", 3000);
    assert_eq!(c.cmd(&["SAVE"]), Value::simple("OK"));
    first.kill9();
    let port = free_port();
    let log = first.dir().join("loading.log");
    let child = std::process::Command::new(bin_path("moon-server"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--shards", &shards.to_string()])
        .args(["--appendonly", "no", "--save", "", "--key-load-delay", "1000", "--dir"])
        .arg(first.dir())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moon-server");
    let _guard = Raw(child);
    let mut conn = None;
    wait_until(Duration::from_secs(30), "the listener", || {
        conn = RawConn::try_connect(port).ok();
        conn.is_some()
    });
    let mut c = conn.unwrap();
    let loading = Value::Error("LOADING Redis is loading the dataset in memory".into());
    assert_eq!(c.cmd(&["PING"]), loading);
    assert_eq!(c.cmd(&["GET", "k:1"]), loading);
    assert_eq!(c.cmd(&["SET", "new", "1"]), loading);
    assert_eq!(c.cmd(&["ECHO", "hi"]), Value::bulk("hi"));
    assert_eq!(info_field(&mut c, "loading"), "1");
    let first_bytes: u64 = info_field(&mut c, "loading_loaded_bytes").parse().unwrap();
    let total: u64 = info_field(&mut c, "loading_total_bytes").parse().unwrap();
    assert_eq!(total, std::fs::metadata(first.dir().join("dump.rdb")).unwrap().len());
    std::thread::sleep(Duration::from_millis(600));
    let later: u64 = info_field(&mut c, "loading_loaded_bytes").parse().unwrap();
    assert!(later > first_bytes && later < total, "progress {first_bytes} -> {later} of {total}");
    let perc: f64 = info_field(&mut c, "loading_loaded_perc").parse().unwrap();
    assert!(perc > 0.0 && perc < 100.0, "{perc}");
    info_field(&mut c, "loading_eta_seconds");
    wait_until(Duration::from_secs(30), "the load", || c.cmd(&["PING"]) == Value::simple("PONG"));
    assert_eq!(info_field(&mut c, "loading"), "0");
    assert_eq!(c.cmd(&["DBSIZE"]).int(), 3000);
    assert_eq!(c.cmd(&["GET", "k:1"]), Value::bulk("value-1"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let loaded = text.find("DB loaded from disk").expect("load logged");
    let ready = text.find("Ready to accept connections").expect("ready logged");
    assert!(loaded < ready, "{text}");
}

shard_tests!(
    bgsave_is_point_in_time,
    save_points_trigger,
    misconf,
    bgsave_commands,
    flushall_saves_and_shutdown_stops_bgsave,
    loading_replies
);
