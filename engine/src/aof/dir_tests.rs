//! The directory state machine: Redis 7.0's file sets for each scenario of FORMATS.md §6.2, crash and
//! failure injection at every step of every transition, and interop with redis-server / redis-check-aof.
//!
//! Files hold one line per acknowledged write (`w1`, `w2`, ...); a rewrite's base holds every line written
//! before its rotation, so "what start-up loads" is the concatenation of the loaded files' lines, and it
//! must equal what was acknowledged.

use super::*;
use std::collections::BTreeSet;

#[path = "dir_crash_tests.rs"]
mod crash;
#[path = "dir_redis_tests.rs"]
mod redis;
use std::sync::atomic::{AtomicU32, Ordering};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("moon-aofdir-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn no_gc() -> AofOptions {
    AofOptions { disable_auto_gc: true }
}

/// Names in the AOF directory.
fn ls(paths: &AofPaths) -> BTreeSet<String> {
    match fs::read_dir(paths.aof_dir()) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn manifest_text(paths: &AofPaths) -> String {
    String::from_utf8(fs::read(paths.manifest_path()).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    String::from_utf8(fs::read(path).unwrap()).unwrap().lines().map(str::to_string).collect()
}

fn empty_base(_: &mut File) -> io::Result<()> {
    Ok(())
}

/// Start-up up to loading, as the server does it with `appendonly yes`: the lines it loads.
fn startup_load(paths: &AofPaths) -> Result<Vec<String>, DirError> {
    let mut d = AofDir::open(paths.clone(), AofOptions::default())?;
    d.upgrade_legacy()?;
    let plan = d.load_plan()?;
    Ok(plan.files.iter().flat_map(|f| lines(&f.path)).collect())
}

/// A server in miniature: the directory state, the open incr and the writes it acknowledged.
struct Server {
    dir: AofDir,
    incr: Option<File>,
    acked: Vec<String>,
    next: usize,
}

impl Server {
    /// Full start-up: load, open the incr (fresh base: empty), remove history.
    fn start(paths: &AofPaths, opts: AofOptions) -> Server {
        let loaded = startup_load(paths).unwrap();
        let mut dir = AofDir::open(paths.clone(), opts).unwrap();
        let opened = dir.open_on_start(BaseFormat::Rdb, empty_base).unwrap();
        dir.remove_history().unwrap();
        let next = loaded.len() + 1;
        Server { dir, incr: Some(opened.incr.file), acked: loaded, next }
    }

    /// Appends `n` writes to the open incr and fsyncs (`appendfsync always`); with AOF off they are
    /// acknowledged but not logged.
    fn write(&mut self, n: usize) {
        for _ in 0..n {
            let line = format!("w{}", self.next);
            self.next += 1;
            if let Some(f) = &mut self.incr {
                f.write_all(format!("{line}\n").as_bytes()).unwrap();
                f.sync_all().unwrap();
            }
            self.acked.push(line);
        }
    }

    fn start_rewrite(&mut self) -> Result<PathBuf, DirError> {
        let started = self.dir.start_rewrite(4242, BaseFormat::Rdb)?;
        if let Some(incr) = started.incr {
            self.incr = Some(incr.file);
        }
        // The snapshot taken at the rotation: every write acknowledged so far.
        let mut base = String::new();
        for l in &self.acked {
            base.push_str(l);
            base.push('\n');
        }
        fs::write(&started.temp_base, base).unwrap();
        Ok(started.temp_base)
    }

    /// A successful rewrite with `writes` during it.
    fn rewrite(&mut self, writes: usize) -> RewriteDone {
        self.start_rewrite().unwrap();
        self.write(writes);
        self.dir.rewrite_done().unwrap()
    }

    fn failed_rewrite(&mut self, writes: usize) {
        self.start_rewrite().unwrap();
        self.write(writes);
        self.dir.rewrite_failed().unwrap();
    }
}

fn paths_of(t: &TempDir) -> AofPaths {
    AofPaths::with_defaults(&t.0)
}

// ---- Redis's file sets (FORMATS.md §1.5-§1.7, §6.2) ----

#[test]
fn fresh_start_creates_base_and_incr() {
    let t = temp_dir("fresh");
    let p = paths_of(&t);
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    assert!(!d.manifest_found() && !p.aof_dir().exists(), "open must not create anything");
    assert!(!d.legacy_upgrade_needed());
    assert_eq!(d.load_plan().unwrap().status(), LoadStatus::NotExist);
    let opened = d.open_on_start(BaseFormat::Rdb, |f| f.write_all(b"BASE")).unwrap();
    assert_eq!(opened.created_base.as_ref().map(|b| b.name.as_slice()), Some(&b"appendonly.aof.1.base.rdb"[..]));
    assert!(opened.incr.created && opened.incr.size == 0);
    assert_eq!(opened.incr.name, b"appendonly.aof.1.incr.aof");
    assert_eq!(d.state(), AofState::On);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert_eq!(ls(&p), set(&["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]));
    assert_eq!(fs::read(p.file_path(b"appendonly.aof.1.base.rdb")).unwrap(), b"BASE");
    assert!(!t.0.join(format!("temp-rewriteaof-{}.aof", std::process::id())).exists());

    // Restart: the same files, the incr reopened for appending, the manifest untouched.
    drop(d);
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    let plan = d.load_plan().unwrap();
    assert_eq!(plan.status(), LoadStatus::Data);
    assert_eq!((plan.total_size(), plan.base_size()), (4, 4));
    assert_eq!(plan.files.iter().map(|f| f.is_last).collect::<Vec<_>>(), [false, true]);
    let mut opened = d.open_on_start(BaseFormat::Rdb, |_| panic!("no base on restart")).unwrap();
    assert!(!opened.incr.created && opened.created_base.is_none());
    opened.incr.file.write_all(b"x").unwrap();
    assert_eq!(d.load_plan().unwrap().total_size(), 5);
}

#[test]
fn fresh_start_resp_base_and_empty_status() {
    let t = temp_dir("fresh-resp");
    let p = paths_of(&t);
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    d.open_on_start(BaseFormat::Resp, empty_base).unwrap();
    assert!(ls(&p).contains("appendonly.aof.1.base.aof"));
    assert_eq!(d.load_plan().unwrap().status(), LoadStatus::Empty);
}

#[test]
fn unchanged_manifest_is_not_rewritten() {
    let t = temp_dir("nodirty");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "# hand made\nFILE a SEQ 1 TYPE incr\n").unwrap();
    fs::write(p.file_path(b"a"), "").unwrap();
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    let opened = d.open_on_start(BaseFormat::Rdb, empty_base).unwrap();
    assert_eq!(opened.incr.name, b"a");
    assert_eq!(manifest_text(&p), "# hand made\nFILE a SEQ 1 TYPE incr\n");
}

#[test]
fn comment_only_manifest_is_a_fresh_start() {
    let t = temp_dir("comments");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "# nothing yet\n").unwrap();
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    assert!(d.manifest_found() && d.manifest().is_empty());
    d.open_on_start(BaseFormat::Rdb, empty_base).unwrap();
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
}

#[test]
fn empty_aof_dir_is_a_fresh_start() {
    let t = temp_dir("emptydir");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    assert_eq!(startup_load(&p).unwrap(), Vec::<String>::new());
    Server::start(&p, AofOptions::default());
    assert_eq!(ls(&p).len(), 3);
}

#[test]
fn manifest_errors_carry_the_path_and_redis_lines() {
    let t = temp_dir("badmanifest");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "file a seq 1 type i\n\n").unwrap();
    match AofDir::open(p.clone(), AofOptions::default()) {
        Err(DirError::Manifest { path, error }) => {
            assert_eq!(path, p.manifest_path());
            assert_eq!(
                error.log_lines()[2..],
                ["Reading the manifest file, at line 2", ">>> ''", "Invalid AOF manifest file format"]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_file_is_fatal_with_redis_text() {
    let t = temp_dir("missing");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(
        p.manifest_path(),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    fs::write(p.file_path(b"appendonly.aof.1.base.rdb"), "").unwrap();
    let d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    let e = d.load_plan().unwrap_err();
    assert!(matches!(&e, DirError::MissingFile { name, .. } if name == b"appendonly.aof.1.incr.aof"));
    assert_eq!(
        e.to_string(),
        "Unable to obtain the AOF file appendonly.aof.1.incr.aof length. stat: No such file or directory"
    );
    // A listed history file may be missing: it is never loaded.
    fs::write(p.file_path(b"appendonly.aof.1.incr.aof"), "").unwrap();
    fs::write(
        p.manifest_path(),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile gone seq 9 type h\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let mut s = Server::start(&p, AofOptions::default());
    assert_eq!(s.dir.manifest().history, vec![]);
    assert!(!manifest_text(&p).contains("gone"));
    s.write(1);
}

#[test]
fn discontinuous_seqs_and_empty_files_load() {
    let t = temp_dir("discont");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "file b seq 1 type b\nfile i1 seq 1 type i\nfile i3 seq 3 type i newkey newvalue\n")
        .unwrap();
    fs::write(p.file_path(b"b"), "w1\n").unwrap();
    fs::write(p.file_path(b"i1"), "").unwrap();
    fs::write(p.file_path(b"i3"), "w2\n").unwrap();
    let mut s = Server::start(&p, AofOptions::default());
    assert_eq!(s.acked, ["w1", "w2"]);
    s.write(1);
    s.rewrite(1);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.4.incr.aof seq 4 type i\n"
    );
    assert_eq!(startup_load(&p).unwrap(), ["w1", "w2", "w3", "w4"]);
}

#[test]
fn rewrite_rotates_then_replaces_base_and_removes_history() {
    let t = temp_dir("rewrite");
    let p = paths_of(&t);
    let mut s = Server::start(&p, AofOptions::default());
    s.write(2);
    let done = s.rewrite(1);
    assert_eq!(done.base, AofInfo::new(&b"appendonly.aof.2.base.rdb"[..], 2, AofKind::Base));
    assert_eq!(done.base_size, 6);
    let removal = done.history.unwrap();
    assert_eq!(removal.removed, [b"appendonly.aof.1.incr.aof".to_vec(), b"appendonly.aof.1.base.rdb".to_vec()]);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    assert_eq!(ls(&p), set(&["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]));
    assert!(!p.rewrite_temp_path(4242).exists());
    s.write(1);
    assert_eq!(startup_load(&p).unwrap(), s.acked);
}

#[test]
fn auto_gc_off_keeps_history_in_redis_order() {
    let t = temp_dir("gc");
    let p = paths_of(&t);
    let mut s = Server::start(&p, no_gc());
    s.write(1);
    s.rewrite(1);
    s.rewrite(1);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.3.base.rdb seq 3 type b\n\
         file appendonly.aof.2.incr.aof seq 2 type h\n\
         file appendonly.aof.2.base.rdb seq 2 type h\n\
         file appendonly.aof.1.incr.aof seq 1 type h\n\
         file appendonly.aof.1.base.rdb seq 1 type h\n\
         file appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert_eq!(ls(&p).len(), 7);
    assert_eq!(startup_load(&p).unwrap(), s.acked);
    let removal = s.dir.set_disable_auto_gc(false).unwrap().unwrap();
    assert_eq!(removal.removed.len(), 4);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert_eq!(ls(&p).len(), 3);
}

#[test]
fn failed_rewrites_accumulate_incrs() {
    let t = temp_dir("fail3");
    let p = paths_of(&t);
    let mut s = Server::start(&p, AofOptions::default());
    s.write(1);
    s.rewrite(1);
    for _ in 0..3 {
        s.failed_rewrite(1);
        assert!(!p.rewrite_temp_path(4242).exists());
    }
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n\
         file appendonly.aof.3.incr.aof seq 3 type i\nfile appendonly.aof.4.incr.aof seq 4 type i\n\
         file appendonly.aof.5.incr.aof seq 5 type i\n"
    );
    assert_eq!(startup_load(&p).unwrap(), s.acked);
    s.rewrite(1);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.6.incr.aof seq 6 type i\n"
    );
    assert_eq!(ls(&p).len(), 3);
    assert_eq!(startup_load(&p).unwrap(), s.acked);
}

#[test]
fn rewrite_with_aof_off_opens_no_incr() {
    let t = temp_dir("off");
    let p = paths_of(&t);
    let mut s = Server::start(&p, AofOptions::default());
    s.write(1);
    s.rewrite(1);
    assert!(s.dir.disable().is_some());
    s.incr = None;
    s.write(1); // not logged: AOF is off
    let started = s.start_rewrite().unwrap();
    assert!(started.starts_with(&t.0));
    s.dir.rewrite_done().unwrap();
    assert_eq!(manifest_text(&p), "file appendonly.aof.3.base.rdb seq 3 type b\n");
    assert_eq!(ls(&p), set(&["appendonly.aof.3.base.rdb", "appendonly.aof.manifest"]));
    assert_eq!(startup_load(&p).unwrap(), s.acked);

    // Without a reload the incr counter goes on; after one (restart, DEBUG LOADAOF) it restarts at 1.
    let mut again = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    let opened = again.open_on_start(BaseFormat::Rdb, empty_base).unwrap();
    assert_eq!(opened.incr.name, b"appendonly.aof.1.incr.aof");
    drop(again);
    fs::remove_file(p.file_path(b"appendonly.aof.1.incr.aof")).unwrap();
    fs::write(p.manifest_path(), "file appendonly.aof.3.base.rdb seq 3 type b\n").unwrap();

    s.dir.reload().unwrap();
    s.dir.enable().unwrap();
    assert_eq!(s.dir.state(), AofState::WaitRewrite);
    s.rewrite(1);
    assert_eq!(s.dir.state(), AofState::On);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.4.base.rdb seq 4 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert_eq!(startup_load(&p).unwrap(), s.acked);
}

#[test]
fn incr_counter_runs_ahead_without_reload() {
    let t = temp_dir("ahead");
    let p = paths_of(&t);
    let mut s = Server::start(&p, AofOptions::default());
    s.rewrite(0); // b2 i2
    s.dir.disable();
    s.incr = None;
    s.rewrite(0); // b3, no incr
    s.dir.enable().unwrap();
    s.rewrite(0);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.4.base.rdb seq 4 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
}

#[test]
fn consecutive_seqs_after_reload() {
    let t = temp_dir("consecutive");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(
        p.manifest_path(),
        "file appendonly.aof.7.base.rdb seq 7 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n",
    )
    .unwrap();
    fs::write(p.file_path(b"appendonly.aof.7.base.rdb"), "").unwrap();
    fs::write(p.file_path(b"appendonly.aof.3.incr.aof"), "").unwrap();
    let mut s = Server::start(&p, AofOptions::default());
    s.dir.reload().unwrap();
    s.rewrite(0);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.8.base.rdb seq 8 type b\nfile appendonly.aof.4.incr.aof seq 4 type i\n"
    );
}

#[test]
fn new_names_never_reuse_a_listed_history_name() {
    let t = temp_dir("collide");
    let p = paths_of(&t);
    let mut s = Server::start(&p, no_gc());
    s.write(1);
    s.dir.disable();
    s.incr = None;
    s.rewrite(0); // b2; b1 and i1 are history and still on disk
    s.dir.reload().unwrap(); // the incr counter is back to 0
    s.dir.enable().unwrap();
    s.rewrite(0);
    // Redis would name the new incr `1.incr.aof`, the name of a history file it later deletes.
    let m = manifest_text(&p);
    assert!(m.ends_with("file appendonly.aof.2.incr.aof seq 2 type i\n"), "{m}");
    s.dir.set_disable_auto_gc(false).unwrap();
    s.write(1);
    assert_eq!(startup_load(&p).unwrap(), s.acked);
}

#[test]
fn enabling_at_runtime_waits_for_the_first_rewrite() {
    let t = temp_dir("enable");
    let p = paths_of(&t);
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    d.enable().unwrap();
    let started = d.start_rewrite(1, BaseFormat::Rdb).unwrap();
    let incr = started.incr.unwrap();
    assert_eq!(incr.name, b"temp-appendonly.aof.incr");
    assert!(!p.manifest_path().exists(), "no manifest before the first rewrite succeeds");
    fs::write(&started.temp_base, "").unwrap();
    assert_eq!(d.rewrite_failed().unwrap().temp_incr, Some(b"temp-appendonly.aof.incr".to_vec()));
    assert_eq!(ls(&p), BTreeSet::new());
    assert_eq!(d.state(), AofState::WaitRewrite);

    let started = d.start_rewrite(2, BaseFormat::Rdb).unwrap();
    let mut incr = started.incr.unwrap().file;
    incr.write_all(b"w1\n").unwrap();
    fs::write(&started.temp_base, "").unwrap();
    let done = d.rewrite_done().unwrap();
    assert_eq!(done.incr.unwrap().name, b"appendonly.aof.1.incr.aof");
    incr.write_all(b"w2\n").unwrap(); // the same handle now writes to the renamed incr
    assert_eq!(d.state(), AofState::On);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert_eq!(startup_load(&p).unwrap(), ["w1", "w2"]);
}

#[test]
fn reenabling_after_a_start_with_aof_off() {
    // Redis: b1/i1 on disk, started with appendonly no, then CONFIG SET appendonly yes -> b2/i2.
    let t = temp_dir("reenable");
    let p = paths_of(&t);
    let mut s = Server::start(&p, AofOptions::default());
    s.write(2);
    drop(s);
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    d.remove_history().unwrap();
    d.enable().unwrap();
    let started = d.start_rewrite(3, BaseFormat::Rdb).unwrap();
    fs::write(&started.temp_base, "w1\nw2\n").unwrap();
    d.rewrite_done().unwrap();
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    assert_eq!(ls(&p).len(), 3);
}

#[test]
fn disabling_aborts_a_rewrite_and_keeps_files() {
    let t = temp_dir("disable");
    let p = paths_of(&t);
    let mut s = Server::start(&p, AofOptions::default());
    s.write(1);
    s.start_rewrite().unwrap();
    assert!(p.rewrite_temp_path(4242).exists());
    assert_eq!(s.dir.disable(), Some(RewriteCleanup::default()));
    assert!(!p.rewrite_temp_path(4242).exists());
    assert!(s.dir.rewrite_done().is_err());
    assert_eq!(ls(&p).len(), 4, "base, incr 1, incr 2, manifest");
    assert_eq!(s.dir.disable(), None);
    // Enabling while an AOF-off rewrite runs aborts it.
    s.start_rewrite().unwrap();
    assert_eq!(s.dir.enable().unwrap(), Some(RewriteCleanup::default()));
    assert!(!p.rewrite_temp_path(4242).exists());
    assert!(matches!(s.dir.enable(), Err(DirError::InvalidState { .. })));
    assert!(s.dir.start_rewrite(1, BaseFormat::Rdb).is_ok());
    assert!(matches!(s.dir.start_rewrite(1, BaseFormat::Rdb), Err(DirError::InvalidState { .. })));
    assert_eq!(s.dir.disable().map(|c| c.temp_incr.is_some()), Some(true));
    assert!(!p.temp_incr_path().exists());
}

// ---- legacy upgrade (FORMATS.md §2) ----

fn legacy_dir(tag: &str, content: &str) -> (TempDir, AofPaths) {
    let t = temp_dir(tag);
    let p = paths_of(&t);
    fs::write(p.legacy_path(), content).unwrap();
    (t, p)
}

#[test]
fn upgrade_when_no_aof_dir() {
    let (_t, p) = legacy_dir("up-a", "w1\nw2\n");
    let mut d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    assert!(d.legacy_upgrade_needed());
    let up = d.upgrade_legacy().unwrap().unwrap();
    assert_eq!(
        up.log_line(),
        "Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir)."
    );
    assert!(!p.legacy_path().exists());
    assert_eq!(manifest_text(&p), "file appendonly.aof seq 1 type b\n");
    assert_eq!(d.load_plan().unwrap().files.len(), 1);
    d.open_on_start(BaseFormat::Rdb, |_| panic!("not a fresh start")).unwrap();
    assert_eq!(manifest_text(&p), "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    drop(d);
    let mut s = Server::start(&p, AofOptions::default());
    assert_eq!(s.acked, ["w1", "w2"]);
    s.rewrite(0);
    assert_eq!(
        manifest_text(&p),
        "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    assert!(!p.file_path(b"appendonly.aof").exists(), "the legacy file became history and was removed");
    assert_eq!(startup_load(&p).unwrap(), ["w1", "w2"]);
}

#[test]
fn upgrade_when_dir_has_no_manifest_and_keeps_history() {
    let (_t, p) = legacy_dir("up-b", "w1\n");
    fs::create_dir_all(p.aof_dir()).unwrap();
    assert_eq!(startup_load(&p).unwrap(), ["w1"]);
    // (b) also with a manifest that has only history lines.
    let (_t2, p2) = legacy_dir("up-b2", "w1\n");
    fs::create_dir_all(p2.aof_dir()).unwrap();
    fs::write(p2.manifest_path(), "file old seq 3 type h\n").unwrap();
    let mut d = AofDir::open(p2.clone(), no_gc()).unwrap();
    d.upgrade_legacy().unwrap().unwrap();
    assert_eq!(manifest_text(&p2), "file appendonly.aof seq 1 type b\nfile old seq 3 type h\n");
}

#[test]
fn upgrade_resumes_after_an_interruption() {
    let (_t, p) = legacy_dir("up-c", "w1\n");
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "file appendonly.aof seq 1 type b\n").unwrap();
    let d = AofDir::open(p.clone(), AofOptions::default()).unwrap();
    assert!(d.legacy_upgrade_needed());
    assert_eq!(startup_load(&p).unwrap(), ["w1"]);
    assert!(!p.legacy_path().exists());
}

#[test]
fn stray_legacy_file_is_ignored_when_the_dir_has_it() {
    let (_t, p) = legacy_dir("up-both", "stray\n");
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n")
        .unwrap();
    fs::write(p.file_path(b"appendonly.aof"), "w1\n").unwrap();
    fs::write(p.file_path(b"appendonly.aof.1.incr.aof"), "w2\n").unwrap();
    assert!(!AofDir::open(p.clone(), AofOptions::default()).unwrap().legacy_upgrade_needed());
    assert_eq!(startup_load(&p).unwrap(), ["w1", "w2"]);
    assert_eq!(fs::read(p.legacy_path()).unwrap(), b"stray\n", "left in place");
    // Base only, the file inside: not an interrupted upgrade either.
    fs::write(p.manifest_path(), "file appendonly.aof seq 1 type b\n").unwrap();
    assert_eq!(startup_load(&p).unwrap(), ["w1"]);
}

#[test]
fn missing_legacy_file_is_fatal() {
    let t = temp_dir("up-missing");
    let p = paths_of(&t);
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.manifest_path(), "file appendonly.aof seq 1 type b\n").unwrap();
    let e = startup_load(&p).unwrap_err();
    assert_eq!(e.to_string(), "Unable to obtain the AOF file appendonly.aof length. stat: No such file or directory");
}

#[test]
fn legacy_file_in_both_places_without_a_manifest_is_refused() {
    let (_t, p) = legacy_dir("up-conflict", "outer\n");
    fs::create_dir_all(p.aof_dir()).unwrap();
    fs::write(p.file_path(b"appendonly.aof"), "inner\n").unwrap();
    let e = startup_load(&p).unwrap_err();
    assert!(matches!(e, DirError::LegacyConflict { .. }), "{e}");
    assert_eq!(fs::read(p.legacy_path()).unwrap(), b"outer\n");
    assert_eq!(fs::read(p.file_path(b"appendonly.aof")).unwrap(), b"inner\n");
}

#[test]
fn two_servers_share_a_working_dir() {
    let t = temp_dir("two");
    let p1 = AofPaths::new(&t.0, b"appendonlydir", b"appendonly.aof").unwrap();
    let p2 = AofPaths::new(&t.0, b"appendonlydir", b"appendonly.aof2").unwrap();
    fs::write(p1.legacy_path(), "a1\n").unwrap();
    fs::write(p2.legacy_path(), "b1\n").unwrap();
    assert_eq!(startup_load(&p1).unwrap(), ["a1"]);
    assert_eq!(startup_load(&p2).unwrap(), ["b1"]);
    Server::start(&p1, AofOptions::default());
    Server::start(&p2, AofOptions::default());
    assert_eq!(
        ls(&p1),
        set(&[
            "appendonly.aof",
            "appendonly.aof.1.incr.aof",
            "appendonly.aof.manifest",
            "appendonly.aof2",
            "appendonly.aof2.1.incr.aof",
            "appendonly.aof2.manifest"
        ])
    );
}

#[test]
fn whitespace_in_appendfilename_is_quoted() {
    let t = temp_dir("ws");
    let p = AofPaths::new(&t.0, b"appendonlydir", b" file seq \n\n.aof ").unwrap();
    let mut s = Server::start(&p, AofOptions::default());
    s.write(1);
    s.rewrite(0);
    assert_eq!(
        manifest_text(&p),
        "file \" file seq \\n\\n.aof .2.base.rdb\" seq 2 type b\nfile \" file seq \\n\\n.aof .2.incr.aof\" seq 2 type i\n"
    );
    assert_eq!(startup_load(&p).unwrap(), ["w1"]);
}

#[test]
fn paths_from_a_manifest_path() {
    let t = temp_dir("frommanifest");
    let p = AofPaths::new(&t.0, b"mydir", b"x y.aof").unwrap();
    fs::create_dir_all(p.aof_dir()).unwrap();
    let got = AofPaths::from_manifest_path(&p.manifest_path()).unwrap();
    assert_eq!(got, AofPaths::new(fs::canonicalize(&t.0).unwrap(), b"mydir", b"x y.aof").unwrap());
    assert!(AofPaths::from_manifest_path(&p.aof_dir().join("a.aof")).is_err());
    assert!(AofPaths::from_manifest_path(&p.aof_dir().join(".manifest")).is_err());
}

#[test]
fn config_names_are_validated() {
    let e = |d: &[u8], f: &[u8]| AofPaths::new("/tmp", d, f).unwrap_err().to_string();
    assert_eq!(e(b"", b"a"), "appenddirname can't be empty");
    assert_eq!(e(b"x/y", b"a"), "appenddirname can't be a path, just a dirname");
    assert_eq!(e(b"d", b""), "appendfilename can't be empty");
    assert_eq!(e(b"d", b"a\\b"), "appendfilename can't be a path, just a filename");
    assert_eq!(e(b"d", b".."), "appendfilename can't be a path, just a filename");
}
