//! Power-loss simulation (issue 7): the AOF is written through [`IncrWriter`] over files that remember which
//! bytes an fsync made durable; at every cut point (after each write, after each fsync, at each step of a
//! rotation and of a rewrite's directory transition) the files are rebuilt as a power loss could leave them,
//! and loaded with the torn-tail policy. What a power loss can leave is modelled as the durable bytes of
//! each file, followed by any prefix of the bytes written after the last fsync (a torn tail), or by zeros
//! (blocks allocated but never written: the loader must refuse, never load them).
//!
//! The checks at each cut: every command whose covering fsync completed is recovered, and what is loaded
//! is exactly the first `j` commands of the stream, cut at a command (or whole MULTI/EXEC) boundary, as the
//! dataset built by running those `j` commands directly proves (same `DEBUG DIGEST`).
//!
//! Not modelled: a power loss reordering directory operations between two directory fsyncs beyond "the
//! state at the crash step" (the rotation and rewrite cuts below take the directory as it was at each
//! step, which includes every earlier state), and a disk that reorders writes inside one file (holes of
//! old data in the middle of the tail).

use super::dir::{AofDir, AofOptions, AofPaths, Fault};
use super::load::{load_one, KeyspaceReplayer, LoadError, LoadFile, LoadOptions, Replayer};
use super::manifest::{AofKind, BaseFormat};
use super::stream::AofReader;
use super::test_support::TempDir;
use super::writer::{AofFile, IncrWriter, WriteError};
use super::{encode_command, RecoveryPolicy};
use crate::config::EngineConfig;
use crate::digest::{dataset_digest, to_hex};
use crate::keyspace::Keyspace;
use bytes::Bytes;
use std::io;
use std::sync::{Arc, Mutex};

/// One unit of the stream: a command, or the commands of one MULTI/EXEC (loaded whole or not at all).
#[derive(Clone)]
struct Unit(Vec<Vec<Bytes>>);

impl Unit {
    fn encode(&self, out: &mut Vec<u8>) {
        if self.0.len() == 1 {
            encode_command(out, &self.0[0]);
            return;
        }
        encode_command(out, &["MULTI"]);
        for c in &self.0 {
            encode_command(out, c);
        }
        encode_command(out, &["EXEC"]);
    }

    fn apply(&self, r: &mut KeyspaceReplayer<'_>) {
        if self.0.len() == 1 {
            r.command(&self.0[0]).unwrap();
        } else {
            r.transaction(&self.0).unwrap();
        }
    }
}

fn argv(args: &[&str]) -> Vec<Bytes> {
    args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

/// A mixed workload: SELECTs, SETs, INCRs, list pushes, DELs and transactions; deterministic.
fn workload(n: usize) -> Vec<Unit> {
    let mut out = Vec::new();
    for i in 0..n {
        let u = match i % 7 {
            0 => vec![argv(&["SELECT", &(i % 3).to_string()])],
            1 => vec![argv(&["SET", &format!("k{i}"), &format!("value-{i}")])],
            2 => vec![argv(&["INCR", "counter"])],
            3 => vec![argv(&["RPUSH", "list", &i.to_string()])],
            4 => vec![argv(&["INCRBY", "counter", "10"]), argv(&["RPUSH", "list", "tx"]), argv(&["DEL", "k1"])],
            5 => vec![argv(&["SET", "k1", &format!("again-{i}")])],
            _ => vec![argv(&["DEL", &format!("k{}", i - 5)])],
        };
        out.push(Unit(u));
    }
    out
}

fn digest(ks: &Keyspace) -> String {
    to_hex(&dataset_digest(ks))
}

/// The stream's bytes, where each unit ends in it, and the digest after each prefix of units (index `j`:
/// the first `j` units run directly, not through the file reader).
struct Stream {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    digests: Vec<String>,
}

impl Stream {
    fn new(units: &[Unit]) -> Stream {
        let cfg = EngineConfig::default();
        let mut ks = Keyspace::new(cfg.databases);
        let (mut bytes, mut ends, mut digests) = (Vec::new(), Vec::new(), vec![digest(&ks)]);
        {
            let mut r = KeyspaceReplayer::new(&mut ks, &cfg);
            r.start_file(&incr_file("x"));
            for u in units {
                u.encode(&mut bytes);
                ends.push(bytes.len());
                u.apply(&mut r);
                digests.push(digest(r.ks));
            }
        }
        Stream { bytes, ends, digests }
    }

    /// Units wholly inside the first `len` bytes.
    fn units_in(&self, len: usize) -> usize {
        self.ends.iter().take_while(|&&e| e <= len).count()
    }
}

fn incr_file(name: &str) -> LoadFile {
    LoadFile { path: name.into(), name: name.into(), kind: AofKind::Incr }
}

/// An in-memory file whose writes and fsyncs can fail, and which remembers what was durable.
#[derive(Default)]
struct Disk {
    st: Mutex<DiskState>,
}

#[derive(Default, Clone)]
struct DiskState {
    /// What a reader sees (the page cache).
    data: Vec<u8>,
    /// What survives a power loss: `data` as of the last successful fsync.
    durable: usize,
    /// Bytes the disk still accepts (`None`: unlimited); a write beyond it is short, then ENOSPC.
    space: Option<usize>,
    /// fsync number `n` (1-based) fails with EIO; the dirty pages are dropped as Linux may do.
    fail_fsync: Option<usize>,
    fsyncs: usize,
}

impl AofFile for Disk {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.st.lock().unwrap();
        let mut n = buf.len();
        if let Some(space) = st.space {
            if space == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            n = n.min(space);
            st.space = Some(space - n);
        }
        st.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.st.lock().unwrap();
        st.fsyncs += 1;
        if st.fail_fsync == Some(st.fsyncs) {
            return Err(io::Error::from_raw_os_error(5));
        }
        st.durable = st.data.len();
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut st = self.st.lock().unwrap();
        let len = len as usize;
        assert!(len >= st.durable, "the writer cut durable bytes");
        let cut = st.data.len() - len;
        if let Some(space) = st.space.as_mut() {
            *space += cut;
        }
        st.data.truncate(len);
        Ok(())
    }
}

/// A moment where the power may go: the file as it is, and how many units had been acknowledged (their
/// fsync completed).
struct Cut {
    file: DiskState,
    acked: usize,
}

/// Loads `image` as the last incr file under the torn-tail policy and checks it against the stream.
/// `must_load`: the image is a prefix of the stream (durable bytes + a torn tail), so loading must succeed.
fn check_image(s: &Stream, image: &[u8], acked: usize, must_load: bool, what: &str) {
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let opts = LoadOptions::new(RecoveryPolicy::TruncateTornTail, cfg.clone());
    let result = {
        let mut r = KeyspaceReplayer::new(&mut ks, &cfg);
        load_one(&incr_file("incr"), AofReader::from_bytes(Bytes::copy_from_slice(image)), true, &opts, &mut r)
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            assert!(!must_load, "{what}: a prefix of the stream did not load: {e}");
            assert!(matches!(e, LoadError::Format { .. } | LoadError::EmptyCommand { .. }), "{what}: {e}");
            return;
        }
    };
    let valid = report.torn.as_ref().map_or(image.len() as u64, |t| t.offset) as usize;
    let j = s.units_in(valid);
    assert_eq!(valid, if j == 0 { 0 } else { s.ends[j - 1] }, "{what}: the load stopped inside a command");
    assert_eq!(&image[..valid], &s.bytes[..valid], "{what}: loaded bytes that were never written");
    assert!(j >= acked, "{what}: {acked} units acknowledged, only {j} recovered");
    assert_eq!(digest(&ks), s.digests[j], "{what}: the dataset is not the first {j} units");
}

/// Every image a power loss at `cut` can leave: the durable bytes plus each prefix of the unsynced tail,
/// and the durable bytes plus zeros where the tail was.
fn check_cut(s: &Stream, cut: &Cut, what: &str) -> usize {
    let st = &cut.file;
    assert_eq!(&st.data[..], &s.bytes[..st.data.len()], "{what}: the file is not a prefix of the stream");
    let mut images = 0;
    for t in st.durable..=st.data.len() {
        check_image(s, &st.data[..t], cut.acked, true, &format!("{what}, durable {} + torn {t}", st.durable));
        images += 1;
    }
    let tail = st.data.len() - st.durable;
    for zeros in [1, tail / 2, tail].into_iter().filter(|&z| z > 0) {
        let mut image = st.data[..st.durable].to_vec();
        image.resize(st.durable + zeros, 0);
        check_image(s, &image, cut.acked, false, &format!("{what}, durable {} + {zeros} zeros", st.durable));
        images += 1;
    }
    images
}

/// How the test drives the writer.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `appendfsync always`: each batch is written then fsynced before its units are acknowledged.
    Always,
    /// `everysec`: units are acknowledged once handed to the writer; an fsync every third batch.
    Everysec,
}

/// Runs `units` through a writer over `disk` in batches of 1, 2, 3 units ...; returns the cut points and
/// how many units the writer took in the end. Stops at a poisoned writer; retries a failed write after
/// giving the disk its space back (as the pipeline retries).
fn drive(units: &[Unit], disk: &Arc<Disk>, mode: Mode) -> (Vec<Cut>, usize) {
    let mut w = IncrWriter::new(disk.clone(), 0);
    let mut cuts = Vec::new();
    let snap = |acked| Cut { file: disk.st.lock().unwrap().clone(), acked };
    let (mut next, mut written, mut acked, mut batch_no) = (0, 0, 0, 0);
    while next < units.len() {
        let take = (batch_no % 3 + 1).min(units.len() - next);
        batch_no += 1;
        let mut buf = Vec::new();
        for u in &units[next..next + take] {
            u.encode(&mut buf);
        }
        match w.write(&buf) {
            Ok(()) => {}
            Err(WriteError::Failed { kept: 0, .. }) => {
                cuts.push(snap(acked));
                disk.st.lock().unwrap().space = None;
                w.write(&buf).expect("the retry after space came back");
            }
            Err(WriteError::Poisoned(_)) => break,
            Err(e) => panic!("{e}"),
        }
        next += take;
        written = next;
        if let Mode::Everysec = mode {
            // Acknowledged before any fsync: a power loss may take them (the policy allows it).
            cuts.push(snap(acked));
            if batch_no % 3 != 0 {
                continue;
            }
        } else {
            cuts.push(snap(acked));
        }
        match w.fsync() {
            Ok(_) => acked = written,
            Err(_) => {
                cuts.push(snap(acked));
                assert!(w.write(b"x").is_err() && w.fsync().is_err(), "a failed fsync must poison the writer");
                break;
            }
        }
        cuts.push(snap(acked));
    }
    (cuts, written)
}

fn run_mode(mode: Mode, setup: impl Fn(&mut DiskState), tag: &str) -> (usize, usize) {
    let units = workload(40);
    let s = Stream::new(&units);
    let disk = Arc::new(Disk::default());
    setup(&mut disk.st.lock().unwrap());
    let (cuts, written) = drive(&units, &disk, mode);
    let mut images = 0;
    for (i, cut) in cuts.iter().enumerate() {
        images += check_cut(&s, cut, &format!("{tag} {mode:?} cut {i}"));
    }
    eprintln!("{tag}, {mode:?}: {} cut points, {images} power-loss images loaded and checked", cuts.len());
    (images, written)
}

#[test]
fn every_cut_recovers_every_fsynced_command() {
    for mode in [Mode::Always, Mode::Everysec] {
        let (images, written) = run_mode(mode, |_| {}, "clean");
        assert_eq!(written, 40);
        assert!(images > 1000, "{mode:?}: only {images} images");
    }
}

#[test]
fn failed_fsync_loses_nothing_acknowledged() {
    for mode in [Mode::Always, Mode::Everysec] {
        let (_, written) = run_mode(mode, |d| d.fail_fsync = Some(4), "fsync fails");
        assert!(written < 40, "{mode:?}: the writer went on after a failed fsync");
    }
}

#[test]
fn short_write_then_enospc_is_cut_back_and_retried() {
    for mode in [Mode::Always, Mode::Everysec] {
        for space in [1, 37, 120, 301] {
            let (_, written) = run_mode(mode, |d| d.space = Some(space), &format!("space {space}"));
            assert_eq!(written, 40);
        }
    }
}

// ---- A rotation and a rewrite's directory transition, cut at every step ----

/// An incr file on disk written through the writer; `durable` is its length at the last good fsync.
struct Rec {
    file: std::fs::File,
    durable: Arc<Mutex<u64>>,
}

impl AofFile for Rec {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut &self.file, buf)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()?;
        *self.durable.lock().unwrap() = self.file.metadata()?.len();
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

/// A server in miniature on a real directory: the writer on the open incr, the units written and
/// acknowledged (fsynced), and each incr's durable length.
struct Mini {
    dir: AofDir,
    w: IncrWriter,
    stream: Vec<Unit>,
    acked: usize,
    durable: Vec<(std::path::PathBuf, Arc<Mutex<u64>>)>,
    db: usize,
}

impl Mini {
    fn open(&mut self, file: std::fs::File, path: std::path::PathBuf) -> IncrWriter {
        let durable = Arc::new(Mutex::new(file.metadata().unwrap().len()));
        self.durable.push((path, durable.clone()));
        let size = file.metadata().unwrap().len();
        IncrWriter::new(Arc::new(Rec { file, durable }), size)
    }

    /// Appends `units`, fsyncing (and acknowledging) when `sync`.
    fn append(&mut self, units: &[Unit], sync: bool) {
        let mut buf = Vec::new();
        for u in units {
            if let Some(db) = u.0[0].get(1).filter(|_| u.0[0][0] == "SELECT") {
                self.db = std::str::from_utf8(db).unwrap().parse().unwrap();
            }
            u.encode(&mut buf);
        }
        self.w.write(&buf).unwrap();
        self.stream.extend_from_slice(units);
        if sync {
            self.w.fsync().unwrap();
            self.acked = self.stream.len();
        }
    }
}

/// Copies `from` into `to` (the image of the disk), cutting each incr file to its durable length when
/// `power_loss` is `Some(p)`: then each keeps `p`% of its unsynced tail (a torn tail). `None` is a process
/// crash: the page cache survives, so everything written does.
fn image(from: &std::path::Path, to: &std::path::Path, mini: &Mini, power_loss: Option<u64>) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            image(&e.path(), &target, mini, power_loss);
            continue;
        }
        std::fs::copy(e.path(), &target).unwrap();
        let durable = mini.durable.iter().find(|(p, _)| *p == e.path());
        if let (Some((_, d)), Some(pct)) = (durable, power_loss) {
            let f = std::fs::OpenOptions::new().write(true).open(&target).unwrap();
            let (durable, len) = (*d.lock().unwrap(), f.metadata().unwrap().len());
            f.set_len(durable + (len - durable) * pct / 100).unwrap();
        }
    }
}

/// Start-up on `work`: the manifest's files loaded under the torn-tail policy, exactly as the server plans
/// them (`load_plan`); the dataset's digest.
///
/// A power loss right after a rotation can tear the previous incr while the manifest already names the
/// next one, which is then still empty (the writer fsyncs the old file before it writes anything to the new
/// one). Redis refuses to start then ("the truncated file is not the last file"); Moon's plan counts an
/// incr followed only by empty files as the last (`load::counts_as_last`), so this must recover.
fn startup_digest(work: &std::path::Path) -> Result<String, String> {
    let dir = AofDir::open(AofPaths::with_defaults(work), AofOptions::default()).map_err(|e| e.to_string())?;
    let plan = dir.load_plan().map_err(|e| e.to_string())?;
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let opts = LoadOptions::new(RecoveryPolicy::TruncateTornTail, cfg.clone());
    let mut r = KeyspaceReplayer::new(&mut ks, &cfg);
    for f in &plan.files {
        let reader = AofReader::open(&f.path).map_err(|e| e.to_string())?;
        load_one(&f.to_load_file(), reader, f.is_last, &opts, &mut r).map_err(|e| e.to_string())?;
    }
    Ok(digest(&ks))
}

/// The rotation of BGREWRITEAOF and its `rewrite_done`, with writes before, during and after; a crash
/// injected at `crash_at` (a step of `AofDir`, counted from the rotation). Returns the miniature server
/// at the crash (or the end), whether it crashed, and the directory's step count when the rotation began.
fn rewrite_scenario(work: &std::path::Path, units: &[Unit], crash_at: Option<u32>) -> (Mini, bool, u32) {
    let paths = AofPaths::with_defaults(work);
    let mut dir = AofDir::open(paths, AofOptions::default()).unwrap();
    let opened = dir.open_on_start(BaseFormat::Resp, |_| Ok(())).unwrap();
    let placeholder = IncrWriter::new(Arc::new(Disk::default()), 0);
    let mut m = Mini { dir, w: placeholder, stream: Vec::new(), acked: 0, durable: Vec::new(), db: 0 };
    m.w = m.open(opened.incr.file, opened.incr.path);
    m.append(&units[..10], true);
    m.append(&units[10..14], false);
    let at_rotation = m.dir.steps_taken();
    if let Some(k) = crash_at {
        m.dir.inject_fault(k, Fault::Crash);
    }
    let started = match m.dir.start_rewrite(4242, BaseFormat::Resp) {
        Ok(s) => s,
        Err(e) if e.is_injected_crash() => return (m, true, at_rotation),
        Err(e) => panic!("{e}"),
    };
    // The cut: the old incr gets what it still owes, is fsynced; the new one starts with SELECT.
    m.w.fsync().unwrap();
    m.acked = m.stream.len();
    let base: Vec<u8> = {
        let mut b = Vec::new();
        m.stream.iter().for_each(|u| u.encode(&mut b));
        b
    };
    let incr = started.incr.expect("AOF on: a new incr");
    m.w = m.open(incr.file, incr.path);
    let select = Unit(vec![argv(&["SELECT", &m.db.to_string()])]);
    m.append(&[select], true);
    m.append(&units[14..20], true);
    std::fs::write(&started.temp_base, &base).unwrap();
    std::fs::File::open(&started.temp_base).unwrap().sync_all().unwrap();
    m.append(&units[20..24], false);
    match m.dir.rewrite_done() {
        Ok(_) => {}
        Err(e) if e.is_injected_crash() => return (m, true, at_rotation),
        Err(e) => panic!("{e}"),
    }
    m.append(&units[24..30], true);
    m.append(&units[30..], false);
    (m, false, at_rotation)
}

#[test]
fn rotation_and_rewrite_survive_power_loss_at_every_step() {
    let units = workload(36);
    let t = TempDir::new("powerloss-count");
    let (m, crashed, at_rotation) = rewrite_scenario(t.path(), &units, None);
    assert!(!crashed);
    let steps = m.dir.steps_taken() - at_rotation;
    assert!(steps > 5, "only {steps} steps");
    let mut cuts = 0;
    for k in 1..=steps + 1 {
        let t = TempDir::new("powerloss");
        let (m, crashed, _) = rewrite_scenario(t.path(), &units, Some(k));
        assert_eq!(crashed, k <= steps, "step {k} of {steps}");
        // What may be loaded: the dataset after any prefix of the units written, at least the acknowledged.
        let s = Stream::new(&m.stream);
        for power_loss in [None, Some(0), Some(50)] {
            let img = TempDir::new("powerloss-image");
            image(t.path(), img.path(), &m, power_loss);
            let what = format!("step {k} (crashed: {crashed}), power loss keeping {power_loss:?}% of unsynced tails");
            let got = startup_digest(img.path()).unwrap_or_else(|e| panic!("{what}: start-up refused: {e}"));
            let lo = if power_loss.is_some() { m.acked } else { m.stream.len() };
            let ok = (lo..=m.stream.len()).any(|j| s.digests[j] == got);
            assert!(ok, "{what}: the loaded dataset is not the first j units for any j >= {lo}");
            cuts += 1;
        }
    }
    assert!(cuts >= 3 * steps as usize);
    eprintln!("rotation + rewrite: {steps} steps, {cuts} power-loss images recovered");
}
