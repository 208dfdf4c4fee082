//! kill -9 at each named step of the rewrite, manifest and BGSAVE protocols, through the server's test hook
//! (`MOON_TEST_PAUSE_AT`, moon-server/src/testhook.rs): the server pauses at the step and logs it, writers
//! keep writing for a moment, then stop; the test checks the files are in the state that step describes
//! (so a hook that moved fails here), kills the server, checks the directory with `moon-aof-tool check` and
//! `redis-check-aof` (and a temp RDB with `redis-check-rdb`), restarts it and checks every stream and the
//! digest; then one more rewrite, kill and restart on the repaired directory.

use super::stream::{self, Keys, Progress};
use super::{fill, Data};
use moon_tests::{have_redis_tools, redis_tool, run_with_timeout, RawConn, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What sets the protocol going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// BGREWRITEAOF with AOF on.
    Rewrite,
    Save,
    /// `CONFIG SET appendonly no`, writes, then `CONFIG SET appendonly yes` (a rewrite in WaitRewrite).
    Enable,
}

/// The files of a paused server.
struct Disk<'a> {
    data: &'a Data,
    log: String,
}

const BASE1: &str = "appendonly.aof.1.base.rdb";
const INCR1: &str = "appendonly.aof.1.incr.aof";
const BASE2: &str = "appendonly.aof.2.base.rdb";
const INCR2: &str = "appendonly.aof.2.incr.aof";

impl Disk<'_> {
    fn mentions(&self, text: &str) -> bool {
        self.data.manifest().contains(text)
    }

    fn aof_has(&self, name: &str) -> bool {
        self.data.aof_dir().join(name).is_file()
    }

    fn aof_size(&self, name: &str) -> u64 {
        std::fs::metadata(self.data.aof_dir().join(name)).map_or(0, |m| m.len())
    }

    /// The file of the working directory whose name starts with `prefix`.
    fn work_temp(&self, prefix: &str) -> Option<PathBuf> {
        let dir = std::fs::read_dir(self.data.path()).ok()?;
        dir.filter_map(|e| e.ok()).find(|e| e.file_name().to_string_lossy().starts_with(prefix)).map(|e| e.path())
    }

    fn temp_created_logged(&self) -> bool {
        self.log.contains("Successfully created the temporary AOF base file")
    }
}

/// Checks the files against what the step leaves; `Err` says what differs.
fn expect(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

struct Point {
    name: &'static str,
    trigger: Trigger,
    shards: usize,
    /// Whether every acknowledged write is durable at this step (with AOF on they always are; after
    /// `appendonly yes`, only once the rewrite's manifest is committed).
    committed: bool,
    files: fn(&Disk) -> Result<(), String>,
}

fn run_point(p: Point) {
    let started = Instant::now();
    let test = format!("pause::{}_{:?}", p.name, p.trigger);
    let seed = super::seed(&test);
    let mut rng = fastrand::Rng::with_seed(seed);
    let data = Data::new();
    let extra = [("auto-aof-rewrite-percentage", "0")];
    let server = data.moon(p.shards, "always", &extra, &[("MOON_TEST_PAUSE_AT", p.name)]);
    let mut c = server.conn();
    fill(&mut c, 500);
    let keys: Vec<Arc<Keys>> = (0..4).map(|t| Arc::new(Keys::new(t))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Vec<Arc<Progress>> = (0..4).map(|_| Arc::new(Progress::default())).collect();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let depth = 1 + t % 2;
            let (port, k, pr, s) = (server.port(), keys[t].clone(), progress[t].clone(), stop.clone());
            std::thread::spawn(move || stream::write(port, k, 1, depth, pr, s))
        })
        .collect();
    let acked = || -> Vec<u64> { progress.iter().map(|p| p.acked.load(Ordering::SeqCst)).collect() };
    std::thread::sleep(Duration::from_millis(rng.u64(50..150)));
    let mut floor = None;
    match p.trigger {
        Trigger::Rewrite => {
            assert_eq!(c.cmd(&["BGREWRITEAOF"]), Value::simple("Background append only file rewriting started"))
        }
        Trigger::Save => assert_eq!(c.cmd(&["BGSAVE"]), Value::simple("Background saving started")),
        Trigger::Enable => {
            floor = Some(acked());
            assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), Value::simple("OK"));
            std::thread::sleep(Duration::from_millis(rng.u64(50..150)));
            assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]), Value::simple("OK"));
        }
    }
    let line = format!("test pause at {}", p.name);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.log_text().contains(&line) {
        assert!(Instant::now() < deadline, "{test}: the server never logged {line:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Writes go on being acknowledged while the protocol is stopped at the step; then the writers stop, so
    // that no append is cut by the kill and the directory must check clean.
    let at_pause: u64 = acked().iter().sum();
    while acked().iter().sum::<u64>() < at_pause + 20 {
        assert!(Instant::now() < deadline, "{test}: writes are not acknowledged while paused at {}", p.name);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(rng.u64(0..100)));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        if let Some(wrong) = w.join().expect("writer thread").wrong {
            panic!("{test}: {wrong}");
        }
    }
    let acked = acked();
    let disk = Disk { data: &data, log: server.log_text() };
    if let Err(e) = (p.files)(&disk) {
        panic!(
            "{test}: the files are not what {} leaves: {e}\nmanifest:\n{}\nfiles: {:?} {:?}",
            p.name,
            data.manifest(),
            names(data.path()),
            names(&data.aof_dir())
        );
    }
    let live = c.cmd(&["DEBUG", "DIGEST"]).text();
    server.kill9();
    check_killed(&test, &data, p.committed.then_some(live.as_str()));
    if p.trigger == Trigger::Save {
        let temp = disk.work_temp("temp-bg-").expect("temp RDB");
        data.tool_check(&temp, false).unwrap_or_else(|e| panic!("{test}: the fsynced temp RDB: {e}"));
        if have_redis_tools(&test, &["redis-check-rdb"]) {
            redis_check(&test, "redis-check-rdb", &temp, "RDB looks OK!");
        }
    }
    let server = data.moon(p.shards, "always", &extra, &[]);
    let mut c = server.conn();
    let mut total = 0;
    for (t, k) in keys.iter().enumerate() {
        let m = stream::survivors(&mut c, k, acked[t]).unwrap_or_else(|e| panic!("{test}: not a prefix: {e}"));
        let must = floor.as_ref().filter(|_| !p.committed).map_or(acked[t], |f| f[t]);
        assert!(m >= must, "{test}: stream {t}: steps up to {m} found, {acked:?} acknowledged, {must} required");
        total += m;
    }
    if p.committed {
        assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).text(), live, "{test}: the digest after the restart");
    }
    // The directory the crash left goes on working: a rewrite, a kill, the same data.
    assert_eq!(c.cmd(&["BGREWRITEAOF"]), Value::simple("Background append only file rewriting started"));
    wait_rewrite(&test, &mut c);
    let digest = c.cmd(&["DEBUG", "DIGEST"]).text();
    server.kill9();
    check_killed(&test, &data, Some(&digest));
    let server = data.moon(5 - p.shards, "always", &extra, &[]);
    assert_eq!(server.conn().cmd(&["DEBUG", "DIGEST"]).text(), digest, "{test}: after the next rewrite");
    println!("crash_loop::{test}: {total} steps found after the kill at the step, 2 kills, {:.1?}", started.elapsed());
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The killed server's directory passes `moon-aof-tool check` (whose digest is `digest` when given) and
/// `redis-check-aof`.
fn check_killed(test: &str, data: &Data, digest: Option<&str>) {
    let report = data.tool_check(data.path(), true).unwrap_or_else(|e| panic!("{test}: after kill -9: {e}"));
    if let Some(d) = digest {
        assert!(report.contains(&format!("DEBUG DIGEST: {d}")), "{test}: the tool's digest is not {d}:\n{report}");
    }
    if have_redis_tools(test, &["redis-check-aof"]) {
        let manifest = data.aof_dir().join("appendonly.aof.manifest");
        redis_check(test, "redis-check-aof", &manifest, "All AOF files and manifest are valid");
    }
}

fn redis_check(test: &str, tool: &str, path: &Path, valid: &str) {
    let mut cmd = std::process::Command::new(redis_tool(tool).expect("installed"));
    cmd.arg(path);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains(valid), "{test}: {tool} {}:\n{text}", path.display());
}

/// Waits until no rewrite runs or is scheduled, and the last one succeeded.
fn wait_rewrite(test: &str, c: &mut RawConn) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = c.cmd(&["INFO", "persistence"]).text();
        let busy = text.contains("aof_rewrite_in_progress:1") || text.contains("aof_rewrite_scheduled:1");
        if !busy {
            assert!(text.contains("aof_last_bgrewrite_status:ok"), "{test}: the rewrite failed:\n{text}");
            return;
        }
        assert!(Instant::now() < deadline, "{test}: the rewrite did not end:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn aofrw_incr_created() {
    run_point(Point {
        name: "aofrw-incr-created",
        trigger: Trigger::Rewrite,
        shards: 4,
        committed: true,
        files: |d| {
            expect(
                d.aof_has(INCR2) && d.aof_size(INCR2) == 0 && !d.mentions(INCR2),
                "incr 2 created, empty and not listed",
            )
        },
    });
}

#[test]
fn aofrw_incr_opened() {
    run_point(Point {
        name: "aofrw-incr-opened",
        trigger: Trigger::Rewrite,
        shards: 1,
        committed: true,
        files: |d| {
            expect(
                d.mentions(INCR2) && d.aof_size(INCR2) > 0 && d.work_temp("temp-rewriteaof-bg-").is_none(),
                "incr 2 listed and appended to, no temp base",
            )
        },
    });
}

#[test]
fn aofrw_temp_synced() {
    run_point(Point {
        name: "aofrw-temp-synced",
        trigger: Trigger::Rewrite,
        shards: 4,
        committed: true,
        files: |d| {
            expect(
                d.work_temp("temp-rewriteaof-bg-").is_some() && !d.temp_created_logged() && !d.aof_has(BASE2),
                "the temp base written, its success not yet logged, no base 2",
            )
        },
    });
}

#[test]
fn aofrw_before_rename() {
    run_point(Point {
        name: "aofrw-before-rename",
        trigger: Trigger::Rewrite,
        shards: 1,
        committed: true,
        files: |d| {
            expect(
                d.work_temp("temp-rewriteaof-bg-").is_some() && d.temp_created_logged() && !d.aof_has(BASE2),
                "the temp base logged as created, not renamed",
            )
        },
    });
}

#[test]
fn aofrw_before_manifest() {
    run_point(Point {
        name: "aofrw-before-manifest",
        trigger: Trigger::Rewrite,
        shards: 4,
        committed: true,
        files: |d| {
            expect(
                d.aof_has(BASE2)
                    && d.work_temp("temp-rewriteaof-bg-").is_none()
                    && !d.mentions(BASE2)
                    && !d.aof_has("temp-appendonly.aof.manifest"),
                "base 2 renamed into place, not listed, no temp manifest",
            )
        },
    });
}

#[test]
fn aofrw_manifest_temp() {
    run_point(Point {
        name: "aofrw-manifest-temp",
        trigger: Trigger::Rewrite,
        shards: 1,
        committed: true,
        files: |d| {
            expect(
                d.aof_has(BASE2) && !d.mentions(BASE2) && d.aof_has("temp-appendonly.aof.manifest"),
                "base 2 in place, the new manifest in its temp file only",
            )
        },
    });
}

#[test]
fn aofrw_before_history() {
    run_point(Point {
        name: "aofrw-before-history",
        trigger: Trigger::Rewrite,
        shards: 4,
        committed: true,
        files: |d| {
            expect(
                d.mentions(&format!("file {BASE2} seq 2 type b"))
                    && d.mentions(&format!("file {BASE1} seq 1 type h"))
                    && d.aof_has(BASE1)
                    && d.aof_has(INCR1),
                "the new manifest committed, the history files still there",
            )
        },
    });
}

#[test]
fn bgsave_temp_synced() {
    run_point(Point {
        name: "bgsave-temp-synced",
        trigger: Trigger::Save,
        shards: 4,
        committed: true,
        files: |d| {
            expect(
                d.work_temp("temp-bg-").is_some() && !d.data.path().join("dump.rdb").exists(),
                "the temp RDB written, no dump.rdb",
            )
        },
    });
}

#[test]
fn enable_before_manifest() {
    run_point(Point {
        name: "aofrw-before-manifest",
        trigger: Trigger::Enable,
        shards: 1,
        committed: false,
        files: |d| {
            expect(
                d.aof_has(BASE2) && d.aof_has(INCR2) && !d.aof_has("temp-appendonly.aof.incr") && !d.mentions(BASE2),
                "base 2 and the temp incr renamed into place, not listed",
            )
        },
    });
}

#[test]
fn enable_before_history() {
    run_point(Point {
        name: "aofrw-before-history",
        trigger: Trigger::Enable,
        shards: 4,
        committed: true,
        files: |d| {
            expect(
                d.mentions(&format!("file {BASE2} seq 2 type b"))
                    && d.mentions(&format!("file {INCR2} seq 2 type i"))
                    && d.mentions(&format!("file {BASE1} seq 1 type h"))
                    && d.aof_has(BASE1),
                "the new manifest committed, the history files still there",
            )
        },
    });
}
