//! kill -9 loops against the real `moon-server` (issue 7, "Crash tests against the real binary").
//!
//! Each loop runs several writer connections ([`stream`]: INCR, RPUSH, SET and a cross-shard MSET, every
//! reply checked), kills the server with SIGKILL at a random moment, restarts it on the same directory
//! (with 1 or 4 shards) and reads every stream back:
//! - `appendfsync always`: every acknowledged step is there, and the survivors are exactly a prefix of each
//!   stream (a step sent but not acknowledged may be there, but only in order: never after a gap);
//! - `appendfsync everysec`: the same. A reply waits for its record's write(2), so a killed process loses
//!   no acknowledged write (the kernel still has it); only a machine crash loses the last 1-2 seconds;
//! - the same while BGREWRITEAOF, BGSAVE and automatic rewrites run (and the dump and the AOF directory pass
//!   `moon-aof-tool check` after every kill), and while `CONFIG SET appendonly no` / `yes` toggles (then
//!   while AOF is off or not yet rewritten, the steps acknowledged before `no` are the ones that must stay).
//!
//! After each check the writers go on from the last surviving step, so every later check covers the whole
//! history through every restart, rewrite and save. [`pause`] kills the server at each named step of the
//! rewrite, manifest and BGSAVE protocols instead of at random.
//!
//! A quarter of the restarts are preceded by a server killed while it starts on the directory (loading,
//! cutting a torn tail, reopening the incr).
//!
//! The seed of the random kill moments is printed (`MOON_CRASH_SEED=<n>` repeats it); `MOON_CRASH_CYCLES=<n>`
//! sets the kill/restart cycles of each loop (CI runs the defaults below: 50 kills at random moments, about a
//! dozen during start-up and 20 at protocol steps, in about 20 s of a debug build on a busy 2-core machine).

mod pause;
mod stream;

use moon_tests::{bin_path, run_with_timeout, RawConn, Server, ServerOptions, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream::{Keys, Progress};

/// The seed of this test's random choices: `MOON_CRASH_SEED`, else the clock. Printed, so a failure can be
/// repeated (thread timing still varies).
fn seed(test: &str) -> u64 {
    let seed = std::env::var("MOON_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    println!("crash_loop::{test}: seed {seed} (MOON_CRASH_SEED={seed} repeats it)");
    seed
}

/// Kill/restart cycles of one loop: `MOON_CRASH_CYCLES`, else the CI default.
fn cycles(default: usize) -> usize {
    std::env::var("MOON_CRASH_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A working directory that outlives the servers started on it.
pub struct Data(tempfile::TempDir);

impl Data {
    pub fn new() -> Data {
        Data(tempfile::Builder::new().prefix("moon-crash-").tempdir().expect("tempdir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn aof_dir(&self) -> PathBuf {
        self.path().join("appendonlydir")
    }

    pub fn manifest(&self) -> String {
        std::fs::read_to_string(self.aof_dir().join("appendonly.aof.manifest")).unwrap_or_default()
    }

    /// Moon with AOF on, `appendfsync` as given, no save points, and `extra` directives.
    pub fn moon(&self, shards: usize, fsync: &str, extra: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        let mut o = ServerOptions::moon(shards)
            .arg("dir", &self.path().display().to_string())
            .arg("appendonly", "yes")
            .arg("appendfsync", fsync);
        for (k, v) in extra {
            o = o.arg(k, v);
        }
        for (k, v) in env {
            o = o.env(k, v);
        }
        o.start()
    }

    /// `moon-aof-tool check` on the working directory: Ok(its output) when it exits 0.
    pub fn tool_check(&self, target: &Path, digest: bool) -> Result<String, String> {
        let mut cmd = std::process::Command::new(bin_path("moon-aof-tool"));
        cmd.arg("check").arg("--quiet");
        if digest {
            cmd.arg("--digest");
        }
        cmd.arg(target);
        let out = run_with_timeout(cmd, None, Duration::from_secs(60));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("moon-aof-tool check {} exited with {}:\n{text}", target.display(), out.status))
        }
    }
}

/// Sets `filler:<n>` for `n < count` (so that rewrites and saves have something to walk).
fn fill(c: &mut RawConn, count: usize) {
    let mut bytes = Vec::new();
    for i in 0..count {
        moon_tests::resp::encode_into(&mut bytes, &["SET", &format!("filler:{i}"), &"x".repeat(20 + i % 50)]);
    }
    for r in c.pipeline(bytes, count) {
        assert_eq!(r, Value::simple("OK"));
    }
}

/// What else happens while the writers write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    Nothing,
    /// BGREWRITEAOF, BGSAVE and slower or faster walks at random, plus automatic rewrites.
    Background,
    /// `CONFIG SET appendonly no`, then `yes` and its rewrite, over and over.
    Toggle,
}

struct Variant {
    name: &'static str,
    fsync: &'static str,
    /// Shard counts a restart picks from.
    shards: &'static [usize],
    chaos: Chaos,
    cycles: usize,
}

/// Per-stream figures summed over a loop.
#[derive(Default, Debug)]
struct Figures {
    cycles: usize,
    acknowledged: u64,
    found: u64,
    /// Steps found that were sent but not acknowledged (in flight at the kill).
    unacknowledged_found: u64,
    /// Acknowledged steps missing after a restart (allowed only with `everysec`, or while AOF was off).
    lost: u64,
    /// The longest time between the reply of a lost step and the kill.
    lost_window: Duration,
    rewrites: u64,
    automatic_rewrites: u64,
    saves: u64,
    toggles: u64,
    /// Kills of a server still starting on the directory.
    start_kills: u64,
    /// Kills that hit a running rewrite or BGSAVE.
    kills_in_rewrite: u64,
    kills_in_save: u64,
}

impl Figures {
    /// Counts the rewrites and saves a killed server's log shows, and whether one was running at the kill.
    fn add_log(&mut self, log: &str) {
        let count = |text: &str| log.matches(text).count() as u64;
        let rewrites = count("Background append only file rewriting started");
        let saves = count("Background saving started");
        self.rewrites += rewrites;
        self.automatic_rewrites += count("Starting automatic rewriting of AOF");
        self.saves += saves;
        self.kills_in_rewrite += u64::from(rewrites > count("Background AOF rewrite terminated"));
        self.kills_in_save +=
            u64::from(saves > count("Background saving terminated") + count("Background saving error"));
    }
}

const WRITERS: usize = 4;
const FILLER: usize = 1000;

fn run_loop(v: Variant) {
    let started = Instant::now();
    let seed = seed(v.name);
    let mut rng = fastrand::Rng::with_seed(seed);
    let data = Data::new();
    let extra: Vec<(&str, &str)> = match v.chaos {
        // Automatic rewrites as soon as the AOF grows by a fifth over 32 KB.
        Chaos::Background => vec![("auto-aof-rewrite-percentage", "20"), ("auto-aof-rewrite-min-size", "32768")],
        // Redis's default growth, from 4 MB: keeps restarts of long runs short.
        Chaos::Nothing => vec![("auto-aof-rewrite-percentage", "100"), ("auto-aof-rewrite-min-size", "4194304")],
        // Every toggle rewrites; the toggler tells its rewrite's end by the manifest's new base.
        Chaos::Toggle => vec![("auto-aof-rewrite-percentage", "0")],
    };
    let pick = |rng: &mut fastrand::Rng| v.shards[rng.usize(..v.shards.len())];
    // The filler is written under `always`, so that every check can count on it.
    let mut server = data.moon(pick(&mut rng), "always", &extra, &[]);
    let mut c = server.conn();
    fill(&mut c, FILLER);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendfsync", v.fsync]), Value::simple("OK"));
    let keys: Vec<Arc<Keys>> = (0..WRITERS).map(|t| Arc::new(Keys::new(t))).collect();
    // The last step of each stream that the server holds (all of them, as verified after each restart).
    let mut held = vec![0u64; WRITERS];
    let mut fig = Figures::default();
    for cycle in 0..v.cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let progress: Vec<Arc<Progress>> = (0..WRITERS).map(|_| Arc::new(Progress::default())).collect();
        for (p, &h) in progress.iter().zip(&held) {
            p.acked.store(h, Ordering::SeqCst);
            p.sent.store(h, Ordering::SeqCst);
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                // Half the writers wait for each reply; the others pipeline a few steps.
                let depth = if t % 2 == 0 { 1 } else { rng.usize(2..=6) };
                let (port, k, p, s, from) =
                    (server.port(), keys[t].clone(), progress[t].clone(), stop.clone(), held[t] + 1);
                std::thread::spawn(move || stream::write(port, k, from, depth, p, s))
            })
            .collect();
        let chaos = start_chaos(v.chaos, &server, &data, rng.u64(..), &stop, &progress);
        std::thread::sleep(Duration::from_millis(rng.u64(20..=350)));
        let killed_at = Instant::now();
        server.kill9();
        stop.store(true, Ordering::SeqCst);
        for (t, w) in writers.into_iter().enumerate() {
            let ended = w.join().expect("writer thread");
            if let Some(wrong) = ended.wrong {
                panic!("{} cycle {cycle}, seed {seed}: stream {t}: {wrong}", v.name);
            }
        }
        let floor = chaos.finish(&mut fig);
        // Every file a kill can leave behind is valid: the AOF directory (a torn tail of the last incr aside,
        // which start-up cuts) and the dump, which only ever changes by an atomic rename.
        check_files(&data, v.name, cycle, seed);
        fig.add_log(&server.log_text());
        if rng.u8(..4) == 0 {
            // A crash while the directory is loaded (a torn tail cut, the incr reopened) changes nothing.
            kill_during_start(&data, pick(&mut rng), Duration::from_millis(rng.u64(0..60)));
            fig.start_kills += 1;
        }
        let next = data.moon(pick(&mut rng), v.fsync, &extra, &[]);
        drop(std::mem::replace(&mut server, next));
        let mut c = server.conn();
        let mut keys_expected = FILLER as u64;
        for t in 0..WRITERS {
            let acked = progress[t].acked.load(Ordering::SeqCst);
            let sent = progress[t].sent.load(Ordering::SeqCst);
            let m = stream::survivors(&mut c, &keys[t], sent)
                .unwrap_or_else(|e| panic!("{} cycle {cycle}, seed {seed}: not a prefix: {e}", v.name));
            // What must be there: everything acknowledged (`always`: fsynced; `everysec`: written to the kernel,
            // which a kill -9 does not lose), unless AOF was off or not yet rewritten at the kill (then what
            // was acknowledged before `CONFIG SET appendonly no`).
            let must = match &floor {
                Some(f) => f[t],
                None => acked,
            };
            assert!(
                m >= must && m >= held[t],
                "{} cycle {cycle}, seed {seed}: stream {t} lost acknowledged writes: steps up to {m} found, {acked} \
                 acknowledged ({must} required), {} held before this cycle",
                v.name,
                held[t]
            );
            fig.acknowledged += acked - held[t];
            fig.found += m.min(acked).saturating_sub(held[t]);
            fig.unacknowledged_found += m.saturating_sub(acked);
            fig.lost += acked.saturating_sub(m);
            if let Some(t) = progress[t].acked_after(m) {
                fig.lost_window = fig.lost_window.max(killed_at.saturating_duration_since(t));
            }
            held[t] = m;
            keys_expected += stream::key_count(m);
        }
        assert_eq!(c.cmd(&["DBSIZE"]).int() as u64, keys_expected, "{} cycle {cycle}, seed {seed}: DBSIZE", v.name);
        fig.cycles += 1;
    }
    let lost = match fig.lost {
        0 => "0 lost".to_string(),
        n => format!("{n} lost (the oldest acknowledged {:.1?} before its kill)", fig.lost_window),
    };
    let starts = match fig.start_kills {
        0 => String::new(),
        n => format!(" (and {n} during start-up)"),
    };
    let mut background = String::new();
    if fig.rewrites + fig.saves + fig.toggles > 0 {
        background = format!(
            "; {} rewrites ({} automatic, {} cut by the kill), {} BGSAVEs ({} cut), {} appendonly toggles done",
            fig.rewrites, fig.automatic_rewrites, fig.kills_in_rewrite, fig.saves, fig.kills_in_save, fig.toggles
        );
    }
    println!(
        "crash_loop::{}: {} kill -9 cycles{starts} in {:.1?}: {} writes acknowledged, {} of them found, {lost}, {} \
         unacknowledged found in order{background}",
        v.name,
        fig.cycles,
        started.elapsed(),
        fig.acknowledged,
        fig.found,
        fig.unacknowledged_found,
    );
    if v.chaos != Chaos::Toggle {
        assert_eq!(fig.lost, 0);
    }
    assert!(fig.acknowledged > 0, "no write was acknowledged");
}

/// Starts moon-server on the directory and kills it after `after`, whatever it is doing by then.
fn kill_during_start(data: &Data, shards: usize, after: Duration) {
    let mut child = std::process::Command::new(bin_path("moon-server"))
        .args(["--port", &moon_tests::free_port().to_string(), "--bind", "127.0.0.1", "--shards", &shards.to_string()])
        .args(["--appendonly", "yes", "--save", "", "--logfile", "", "--dir"])
        .arg(data.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moon-server");
    std::thread::sleep(after);
    // SIGKILL; wait() returns once every thread is gone and the files are closed.
    let _ = child.kill();
    let _ = child.wait();
}

/// The AOF directory and the dump after a kill.
fn check_files(data: &Data, name: &str, cycle: usize, seed: u64) {
    let dump = data.path().join("dump.rdb");
    if dump.exists() {
        if let Err(e) = data.tool_check(&dump, false) {
            panic!("{name} cycle {cycle}, seed {seed}: dump.rdb after kill -9: {e}");
        }
    }
    // A kill in the middle of an append can leave a torn tail of the last incr file, which start-up cuts
    // (`aof-load-truncated yes`); every other file must be valid (or empty: an incr just opened).
    let mut cmd = std::process::Command::new(bin_path("moon-aof-tool"));
    cmd.args(["check", "--json"]).arg(data.path());
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{name}: moon-aof-tool check --json: {e}: {text}{}", String::from_utf8_lossy(&out.stderr))
    });
    let files = doc["files"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(!files.is_empty(), "{name} cycle {cycle}, seed {seed}: no AOF file checked: {text}");
    for f in files {
        let fine =
            f["status"] == "valid" || f["status"] == "empty" || (f["status"] == "torn-tail" && f["last"] == true);
        assert!(fine, "{name} cycle {cycle}, seed {seed}: {} after kill -9: {f}", f["name"]);
    }
}

/// The thread doing a loop's [`Chaos`], and what it shares with the loop.
struct ChaosRun {
    thread: Option<std::thread::JoinHandle<u64>>,
    /// Toggle: AOF is off, or on but not yet rewritten (the steps acknowledged after `no` may be lost).
    suspended: Arc<AtomicBool>,
    /// Toggle: the acknowledged steps of each stream just before the last `CONFIG SET appendonly no`.
    floor: Shared<Vec<u64>>,
}

impl ChaosRun {
    /// Joins the thread (the server is dead: it ends at once) and adds its counts; for a toggle loop killed
    /// while AOF was off or not yet rewritten, the per-stream floor of what must have survived.
    fn finish(self, fig: &mut Figures) -> Option<Vec<u64>> {
        if let Some(t) = self.thread {
            fig.toggles += t.join().expect("chaos thread");
        }
        self.suspended.load(Ordering::SeqCst).then(|| self.floor.get())
    }
}

fn start_chaos(
    chaos: Chaos,
    server: &Server,
    data: &Data,
    seed: u64,
    stop: &Arc<AtomicBool>,
    progress: &[Arc<Progress>],
) -> ChaosRun {
    let suspended = Arc::new(AtomicBool::new(false));
    let floor = Shared::new(Vec::new());
    let port = server.port();
    let stop = stop.clone();
    let thread = match chaos {
        Chaos::Nothing => None,
        Chaos::Background => Some(std::thread::spawn(move || background(port, seed, &stop))),
        Chaos::Toggle => {
            let (s, f, p) = (suspended.clone(), floor.clone(), progress.to_vec());
            let manifest = data.aof_dir().join("appendonly.aof.manifest");
            Some(std::thread::spawn(move || toggle(port, seed, &stop, &manifest, &s, &f, &p)))
        }
    };
    ChaosRun { thread, suspended, floor }
}

/// BGREWRITEAOF, BGSAVE and `rdb-key-save-delay` changes at random until the server dies (refusals while
/// another one runs are fine: the log tells what started).
fn background(port: u16, seed: u64, stop: &AtomicBool) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let Ok(mut c) = RawConn::try_connect(port) else { return 0 };
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.u64(5..60)));
        let delay = ["0", "20", "100"][rng.usize(..3)];
        let cmd: Vec<&str> = match rng.u8(..10) {
            0..=3 => vec!["BGREWRITEAOF"],
            4..=6 => vec!["BGSAVE"],
            _ => vec!["CONFIG", "SET", "rdb-key-save-delay", delay],
        };
        if c.try_send(&moon_tests::resp::encode(&cmd)).is_err() || c.try_read().is_err() {
            break;
        }
    }
    0
}

/// `CONFIG SET appendonly no`, a pause, `CONFIG SET appendonly yes`, and a wait until its rewrite has
/// committed a manifest with a new base; over and over until the server dies. Returns the completed toggles.
fn toggle(
    port: u16,
    seed: u64,
    stop: &AtomicBool,
    manifest: &Path,
    suspended: &AtomicBool,
    floor: &Shared<Vec<u64>>,
    progress: &[Arc<Progress>],
) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut toggles = 0;
    let Ok(mut c) = RawConn::try_connect(port) else { return 0 };
    let config = |c: &mut RawConn, on: &str| -> bool {
        c.try_send(&moon_tests::resp::encode(&["CONFIG", "SET", "appendonly", on])).is_ok()
            && matches!(c.try_read(), Ok(Value::Simple(_)))
    };
    let base = || {
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        text.lines().find(|l| l.ends_with("type b")).map(String::from)
    };
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.u64(10..80)));
        suspended.store(true, Ordering::SeqCst);
        floor.set(progress.iter().map(|p| p.acked.load(Ordering::SeqCst)).collect());
        if !config(&mut c, "no") {
            break;
        }
        std::thread::sleep(Duration::from_millis(rng.u64(10..80)));
        let before = base();
        if !config(&mut c, "yes") {
            break;
        }
        while base() == before {
            if stop.load(Ordering::Relaxed) {
                return toggles;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        suspended.store(false, Ordering::SeqCst);
        toggles += 1;
    }
    toggles
}

/// A value shared between threads, read by cloning it out.
#[derive(Clone)]
struct Shared<T>(Arc<std::sync::Mutex<T>>);

impl<T: Clone> Shared<T> {
    fn new(v: T) -> Shared<T> {
        Shared(Arc::new(std::sync::Mutex::new(v)))
    }

    fn get(&self) -> T {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, v: T) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }
}

#[test]
fn always_1_shard() {
    run_loop(Variant {
        name: "always_1_shard",
        fsync: "always",
        shards: &[1],
        chaos: Chaos::Nothing,
        cycles: cycles(8),
    });
}

#[test]
fn always_4_shards() {
    run_loop(Variant {
        name: "always_4_shards",
        fsync: "always",
        shards: &[4],
        chaos: Chaos::Nothing,
        cycles: cycles(8),
    });
}

#[test]
fn everysec() {
    run_loop(Variant {
        name: "everysec",
        fsync: "everysec",
        shards: &[1, 4],
        chaos: Chaos::Nothing,
        cycles: cycles(8),
    });
}

#[test]
fn always_background_ops() {
    run_loop(Variant {
        name: "always_background_ops",
        fsync: "always",
        shards: &[4, 1],
        chaos: Chaos::Background,
        cycles: cycles(12),
    });
}

#[test]
fn everysec_background_ops() {
    run_loop(Variant {
        name: "everysec_background_ops",
        fsync: "everysec",
        shards: &[4, 1],
        chaos: Chaos::Background,
        cycles: cycles(6),
    });
}

#[test]
fn always_toggle_appendonly() {
    run_loop(Variant {
        name: "always_toggle_appendonly",
        fsync: "always",
        shards: &[4, 1],
        chaos: Chaos::Toggle,
        cycles: cycles(8),
    });
}
