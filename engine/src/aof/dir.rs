//! The persistence state of one AOF directory and every transition between its file sets (DESIGN.md §5).
//! The server drives an [`AofDir`]; `moon-aof-tool` opens the same type, so both read a directory the same way.
//!
//! Every transition follows Redis 7.0 (FORMATS.md §1.4-§1.7, §2) and replaces files atomically: new content
//! goes to a temp file, is fsynced, renamed into place, and the directory is fsynced. The step-by-step
//! protocol, with what a crash after each step leaves and how start-up handles it, is in `engine/FORMAT.md`
//! ("AOF"). This module only manages files and hands out opened [`File`]s; it never writes commands.
//!
//! Start-up with `appendonly yes`, in this order (Redis's `loadAppendOnlyFiles` and `server.c`):
//! 1. [`AofDir::open`] reads the manifest (only if the directory and the manifest exist);
//! 2. [`AofDir::upgrade_legacy`] migrates a legacy `<dir>/appendonly.aof` if Redis would;
//! 3. [`AofDir::load_plan`] lists the base and incr files to load, in order (the caller loads them);
//! 4. [`AofDir::open_on_start`] creates the first base on a fresh start, opens (or creates) the last incr
//!    and persists the manifest;
//! 5. [`AofDir::remove_history`] deletes history files (also called when AOF is off, as Redis does).
//!
//! At run time: [`AofDir::start_rewrite`] before a rewrite (opens the next incr), [`AofDir::rewrite_done`]
//! or [`AofDir::rewrite_failed`] after it, [`AofDir::enable`] / [`AofDir::disable`] for
//! `CONFIG SET appendonly`, [`AofDir::set_disable_auto_gc`] for `aof-disable-auto-gc`.
//!
//! A failed fsync of a directory *poisons* the `AofDir`: the state on disk is no longer known, every later
//! transition returns [`DirError::Poisoned`], and the server must stop acknowledging writes (restart to
//! recover; start-up then finds either the old or the new manifest, and every file both name).

use super::manifest::{
    base_name, incr_name, sync_rewrite_temp_name, temp_incr_name, AofInfo, AofKind, BaseFormat, Manifest,
};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[path = "dir_error.rs"]
mod error;
#[path = "dir_types.rs"]
mod types;

pub use error::{DirError, IoOp};
pub use types::{
    AofOptions, AofPaths, AofState, HistoryRemoval, LegacyUpgrade, LoadPlan, LoadStatus, OpenIncr, PlannedFile,
    RewriteCleanup, RewriteDone, RewriteStart, StartOpen,
};

fn lossy(name: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(name)
}

/// How an injected fault behaves (tests of this crate, of the tool and of the server).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The process dies before the step: it does not run, nor does anything after it (no cleanup).
    Crash,
    /// The step fails with an I/O error and the normal error handling runs.
    Fail,
}

/// A rewrite between [`AofDir::start_rewrite`] and its end.
#[derive(Debug)]
struct PendingRewrite {
    temp_base: PathBuf,
    format: BaseFormat,
    /// The state when it started; it ends (or is aborted) before the state changes.
    state: AofState,
}

/// A manifest write that failed, and whether the new manifest had already replaced the old one.
struct CommitError {
    err: DirError,
    replaced: bool,
}

/// The persistence state of one AOF directory. See the module documentation for the call order.
#[derive(Debug)]
pub struct AofDir {
    paths: AofPaths,
    opts: AofOptions,
    manifest: Manifest,
    manifest_found: bool,
    /// Redis's `curr_base_file_seq` / `curr_incr_file_seq`: recomputed from the manifest when it is read,
    /// then only ever increased (so they can run ahead of the manifest, e.g. after a rewrite with AOF off).
    base_seq: u64,
    incr_seq: u64,
    /// The in-memory manifest differs from the file.
    dirty: bool,
    state: AofState,
    rewrite: Option<PendingRewrite>,
    poisoned: bool,
    fault: Option<(u32, Fault)>,
    steps: u32,
}

fn is_dir(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_dir())
}

fn is_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file())
}

fn open_truncated(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(path)
}

/// Best-effort removal on an error path: the file is unreferenced, so failing to remove it is harmless.
fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

impl AofDir {
    /// Reads the directory without changing anything (Redis's `aofLoadManifestFromDisk`): the manifest is
    /// read only when `<work_dir>/<appenddirname>` is a directory and the manifest a regular file; otherwise
    /// the manifest is empty. The state starts as [`AofState::Off`].
    pub fn open(paths: AofPaths, opts: AofOptions) -> Result<AofDir, DirError> {
        let manifest = read_manifest(&paths)?;
        let manifest_found = manifest.is_some();
        let manifest = manifest.unwrap_or_default();
        Ok(AofDir {
            base_seq: manifest.curr_base_seq(),
            incr_seq: manifest.curr_incr_seq(),
            paths,
            opts,
            manifest,
            manifest_found,
            dirty: false,
            state: AofState::Off,
            rewrite: None,
            poisoned: false,
            fault: None,
            steps: 0,
        })
    }

    /// Reads the manifest again and recomputes the sequence counters from it (Redis's `DEBUG LOADAOF`).
    /// The state and a pending rewrite are kept.
    pub fn reload(&mut self) -> Result<(), DirError> {
        let manifest = read_manifest(&self.paths)?;
        self.manifest_found = manifest.is_some();
        self.manifest = manifest.unwrap_or_default();
        self.base_seq = self.manifest.curr_base_seq();
        self.incr_seq = self.manifest.curr_incr_seq();
        self.dirty = false;
        Ok(())
    }

    pub fn paths(&self) -> &AofPaths {
        &self.paths
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether [`AofDir::open`] found a manifest file.
    pub fn manifest_found(&self) -> bool {
        self.manifest_found
    }

    pub fn state(&self) -> AofState {
        self.state
    }

    pub fn options(&self) -> AofOptions {
        self.opts
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The temp base of the rewrite in progress, if any.
    pub fn rewrite_in_progress(&self) -> Option<&Path> {
        self.rewrite.as_ref().map(|r| r.temp_base.as_path())
    }

    /// Simulates a crash or an I/O failure at the `step`-th file operation from now (1-based; each open,
    /// write, fsync, rename, unlink and mkdir is one step). For crash tests only.
    #[doc(hidden)]
    pub fn inject_fault(&mut self, step: u32, fault: Fault) {
        self.fault = Some((self.steps + step, fault));
    }

    /// File operations done so far (to enumerate crash points).
    #[doc(hidden)]
    pub fn steps_taken(&self) -> u32 {
        self.steps
    }

    /// Whether Redis 7.0 would migrate a legacy `<work_dir>/<appendfilename>` now: it is a regular file and
    /// (a) the AOF directory does not exist, or (b) the manifest has no base and no incr, or (c) the manifest
    /// has only a base, named `appendfilename`, that is not in the AOF directory (an interrupted upgrade).
    pub fn legacy_upgrade_needed(&self) -> bool {
        if !is_file(&self.paths.legacy_path()) {
            return false;
        }
        if !is_dir(&self.paths.aof_dir()) || self.manifest.is_empty() {
            return true;
        }
        match &self.manifest.base {
            Some(b) => {
                self.manifest.incrs.is_empty()
                    && b.name == self.paths.file_name
                    && !is_file(&self.paths.file_path(&b.name))
            }
            None => false,
        }
    }

    /// Redis's `aofUpgradePrepare` when [`AofDir::legacy_upgrade_needed`]: creates the AOF directory,
    /// persists a manifest whose base is `file <appendfilename> seq 1 type b` (history lines kept), then
    /// moves the legacy file into the directory and fsyncs both directories. Idempotent: a crash anywhere
    /// leaves a directory on which this runs again (case c) or which no longer needs it. Call it at start-up
    /// with AOF on, before [`AofDir::load_plan`].
    pub fn upgrade_legacy(&mut self) -> Result<Option<LegacyUpgrade>, DirError> {
        self.check_usable()?;
        if !self.legacy_upgrade_needed() {
            return Ok(None);
        }
        let legacy = self.paths.legacy_path();
        let inside = self.paths.file_path(&self.paths.file_name);
        if fs::symlink_metadata(&inside).is_ok() {
            return Err(DirError::LegacyConflict { legacy, inside });
        }
        self.ensure_aof_dir()?;
        let mut m = self.manifest.clone();
        m.base = Some(AofInfo::new(self.paths.file_name.clone(), 1, AofKind::Base));
        self.commit(m, 1, self.incr_seq).map_err(|e| e.err)?;
        let aof_dir = self.paths.aof_dir();
        self.rename(IoOp::RenameLegacy, &legacy, &inside)?;
        self.sync_dir(&aof_dir)?;
        let work_dir = self.paths.work_dir.clone();
        self.sync_dir(&work_dir)?;
        Ok(Some(LegacyUpgrade { file_name: self.paths.file_name.clone(), dir_name: self.paths.dir_name.clone() }))
    }

    /// The files to load, base first, then every incr in manifest order, each `stat`ed (Redis's
    /// `loadAppendOnlyFiles` up to the first read). A file that cannot be `stat`ed is
    /// [`DirError::MissingFile`], with Redis's text. History files are never listed.
    pub fn load_plan(&self) -> Result<LoadPlan, DirError> {
        let count = self.manifest.files_to_load().count();
        let mut files = Vec::with_capacity(count);
        for (i, info) in self.manifest.files_to_load().enumerate() {
            let path = self.paths.file_path(&info.name);
            let meta = fs::metadata(&path).map_err(|source| DirError::MissingFile {
                name: info.name.clone(),
                path: path.clone(),
                source,
            })?;
            if !meta.is_file() {
                return Err(DirError::NotAFile { name: info.name.clone(), path });
            }
            files.push(PlannedFile { info: info.clone(), path, size: meta.len(), is_last: i + 1 == count });
        }
        for i in 0..files.len() {
            let later = files[i + 1..].iter().map(|f| Some(f.size));
            files[i].is_last = crate::aof::load::counts_as_last(files[i].info.kind, later);
        }
        Ok(LoadPlan { files })
    }

    /// Redis's `aofOpenIfNeededOnServerStart`, after loading: creates the AOF directory if missing; on a
    /// fresh start (no base, no incr) writes the first base through `write_base` (into
    /// `<work_dir>/temp-rewriteaof-<pid>.aof`, then fsynced and renamed to `<name>.1.base.rdb|aof`); opens the
    /// last incr with `O_APPEND`, or creates incr `seq + 1`; persists the manifest if it changed. The state
    /// becomes [`AofState::On`]. Call [`AofDir::remove_history`] next.
    pub fn open_on_start(
        &mut self,
        format: BaseFormat,
        write_base: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<StartOpen, DirError> {
        self.check_usable()?;
        if self.rewrite.is_some() {
            return Err(self.invalid_state("a rewrite is in progress"));
        }
        self.ensure_aof_dir()?;
        let mut m = self.manifest.clone();
        let (mut base_seq, mut incr_seq) = (self.base_seq, self.incr_seq);
        let mut changed = self.dirty;
        let mut created_base = None;
        if m.is_empty() {
            let (name, seq) = self.next_name(&m, &mut base_seq, |s| base_name(&self.paths.file_name, s, format))?;
            let temp = self.paths.work_dir.join(OsStr::from_bytes(&sync_rewrite_temp_name(std::process::id())));
            self.write_temp_base(&temp, write_base)?;
            let target = self.paths.file_path(&name);
            self.rename(IoOp::RenameBase, &temp, &target).inspect_err(|e| {
                if !e.is_injected_crash() {
                    remove_quietly(&temp);
                }
            })?;
            let info = AofInfo::new(name, seq, AofKind::Base);
            m.base = Some(info.clone());
            created_base = Some(info);
            changed = true;
        }
        let (info, created) = match m.incrs.last() {
            Some(last) => (last.clone(), false),
            None => {
                let (name, seq) = self.next_name(&m, &mut incr_seq, |s| incr_name(&self.paths.file_name, s))?;
                let info = AofInfo::new(name, seq, AofKind::Incr);
                m.incrs.push(info.clone());
                changed = true;
                (info, true)
            }
        };
        let path = self.paths.file_path(&info.name);
        let file =
            self.io_at(IoOp::OpenIncr, &path, || OpenOptions::new().append(true).create(true).mode(0o644).open(&path))?;
        if created_base.is_some() || created {
            // The new entries must be durable before a manifest that names them.
            let aof_dir = self.paths.aof_dir();
            self.sync_dir(&aof_dir)?;
        }
        if changed {
            self.commit(m, base_seq, incr_seq).map_err(|e| e.err)?;
        }
        self.state = AofState::On;
        let size = file.metadata().map_err(|source| self.io_error(IoOp::Stat, &path, source))?.len();
        Ok(StartOpen { incr: OpenIncr { file, name: info.name, path, size, created }, created_base })
    }

    /// Redis's `aofDelHistoryFiles`: unless `aof-disable-auto-gc` is on, unlinks every history file and
    /// persists the manifest without the history lines. History files are never loaded, so a crash before
    /// the manifest is persisted only leaves lines naming files that are gone (removed again next time).
    pub fn remove_history(&mut self) -> Result<HistoryRemoval, DirError> {
        let mut report = HistoryRemoval::default();
        if self.opts.disable_auto_gc || self.manifest.history.is_empty() {
            return Ok(report);
        }
        self.check_usable()?;
        for h in self.manifest.history.clone() {
            let path = self.paths.file_path(&h.name);
            match self.step(|| fs::remove_file(&path))? {
                Ok(()) => report.removed.push(h.name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => report.removed.push(h.name),
                Err(e) => report.failed.push((h.name, e)),
            }
        }
        let mut m = self.manifest.clone();
        m.history.clear();
        match self.commit(m.clone(), self.base_seq, self.incr_seq) {
            Ok(()) => Ok(report),
            Err(e) => {
                // Like Redis, the lines are gone from memory either way; the next write of the manifest
                // drops them from the file too.
                if !e.replaced && !e.err.is_injected_crash() {
                    self.manifest = m;
                    self.dirty = true;
                }
                Err(e.err)
            }
        }
    }

    /// `CONFIG SET aof-disable-auto-gc`: turning it off removes the history at once, as Redis does.
    pub fn set_disable_auto_gc(&mut self, disable: bool) -> Result<Option<HistoryRemoval>, DirError> {
        self.opts.disable_auto_gc = disable;
        if disable {
            Ok(None)
        } else {
            self.remove_history().map(Some)
        }
    }

    /// Before a rewrite (Redis's `openNewIncrAofForAppend`): creates the AOF directory if missing, then
    /// * On: creates incr `seq + 1` (`O_TRUNC|O_CREAT`) and persists the manifest listing it **before** the
    ///   rewrite starts; the caller appends to it from now on. Every write before this call belongs in the new
    ///   base, every write after it in the new incr. The old incr must be fsynced before any fsync of the new
    ///   one completes (Redis queues the old fd's fsync first), or a power loss could keep later writes
    ///   while losing earlier ones.
    /// * WaitRewrite: opens (truncates) `temp-<appendfilename>.incr`; the manifest is not touched.
    /// * Off: opens nothing.
    ///
    /// `id` names the temp base (`temp-rewriteaof-bg-<id>.aof`; Redis uses the child's pid).
    pub fn start_rewrite(&mut self, id: u32, format: BaseFormat) -> Result<RewriteStart, DirError> {
        self.check_usable()?;
        if self.rewrite.is_some() {
            return Err(self.invalid_state("a rewrite is already in progress"));
        }
        self.ensure_aof_dir()?;
        let temp_base = self.paths.rewrite_temp_path(id);
        let incr = match self.state {
            AofState::Off => None,
            AofState::WaitRewrite => {
                let path = self.paths.temp_incr_path();
                let file = self.io_at(IoOp::OpenIncr, &path, || open_truncated(&path))?;
                Some(OpenIncr { file, name: temp_incr_name(&self.paths.file_name), path, size: 0, created: true })
            }
            AofState::On => {
                let mut m = self.manifest.clone();
                let mut incr_seq = self.incr_seq;
                let (name, seq) = self.next_name(&m, &mut incr_seq, |s| incr_name(&self.paths.file_name, s))?;
                m.incrs.push(AofInfo::new(name.clone(), seq, AofKind::Incr));
                let path = self.paths.file_path(&name);
                let file = self.io_at(IoOp::OpenIncr, &path, || open_truncated(&path))?;
                let aof_dir = self.paths.aof_dir();
                self.sync_dir(&aof_dir)?;
                if let Err(e) = self.commit(m, self.base_seq, incr_seq) {
                    if !e.replaced && !e.err.is_injected_crash() {
                        drop(file);
                        remove_quietly(&path);
                    }
                    return Err(e.err);
                }
                Some(OpenIncr { file, name, path, size: 0, created: true })
            }
        };
        self.rewrite = Some(PendingRewrite { temp_base: temp_base.clone(), format, state: self.state });
        Ok(RewriteStart { temp_base, incr })
    }

    /// The rewrite wrote its temp base (Redis's `backgroundRewriteDoneHandler`): fsyncs it; the old base
    /// becomes history and the temp base is renamed to base `seq + 1`; in WaitRewrite the temp incr is
    /// renamed to incr `seq + 1`; every incr but the last (all of them when AOF is off) becomes history; the
    /// manifest is persisted; then the history is removed (unless `aof-disable-auto-gc`). WaitRewrite becomes
    /// On.
    ///
    /// On error the rewrite counts as failed and its temp files are removed (do not call
    /// [`AofDir::rewrite_failed`]); if the manifest could not be written, the new base (and renamed incr)
    /// are removed too, as Redis does, and the incr opened by [`AofDir::start_rewrite`] stays in the
    /// manifest. If the manifest was replaced but the directory fsync failed, nothing is removed and the
    /// `AofDir` is poisoned.
    pub fn rewrite_done(&mut self) -> Result<RewriteDone, DirError> {
        self.check_usable()?;
        let Some(rw) = self.rewrite.take() else {
            return Err(self.invalid_state("no rewrite is in progress"));
        };
        let result = self.finish_rewrite(&rw);
        if let Err(e) = &result {
            if !e.is_injected_crash() {
                self.cleanup_rewrite(&rw);
            }
        }
        result
    }

    fn finish_rewrite(&mut self, rw: &PendingRewrite) -> Result<RewriteDone, DirError> {
        let temp = rw.temp_base.as_path();
        self.io_at(IoOp::SyncBase, temp, || File::open(temp)?.sync_all())?;
        let mut m = self.manifest.clone();
        let (mut base_seq, mut incr_seq) = (self.base_seq, self.incr_seq);
        if let Some(mut old) = m.base.take() {
            old.kind = AofKind::History;
            m.history.insert(0, old);
        }
        let (name, seq) = self.next_name(&m, &mut base_seq, |s| base_name(&self.paths.file_name, s, rw.format))?;
        let base = AofInfo::new(name, seq, AofKind::Base);
        m.base = Some(base.clone());
        let base_path = self.paths.file_path(&base.name);
        self.rename(IoOp::RenameBase, temp, &base_path)?;
        let mut new_incr = None;
        if rw.state == AofState::WaitRewrite {
            let (name, seq) = self.next_name(&m, &mut incr_seq, |s| incr_name(&self.paths.file_name, s))?;
            let info = AofInfo::new(name, seq, AofKind::Incr);
            let incr_path = self.paths.file_path(&info.name);
            if let Err(e) = self.rename(IoOp::RenameIncr, &self.paths.temp_incr_path(), &incr_path) {
                if !e.is_injected_crash() {
                    remove_quietly(&base_path);
                }
                return Err(e);
            }
            m.incrs.push(info.clone());
            new_incr = Some(info);
        }
        // Redis's `markRewrittenIncrAofAsHistory`: the open incr (the last one) stays unless AOF is off.
        let keep = usize::from(rw.state != AofState::Off);
        let demoted = m.incrs.len().saturating_sub(keep);
        let history: Vec<AofInfo> = m.incrs.drain(..demoted).map(|i| AofInfo { kind: AofKind::History, ..i }).collect();
        m.history.splice(0..0, history);
        let aof_dir = self.paths.aof_dir();
        self.sync_dir(&aof_dir)?;
        if let Err(e) = self.commit(m, base_seq, incr_seq) {
            if !e.replaced && !e.err.is_injected_crash() {
                remove_quietly(&base_path);
                if let Some(i) = &new_incr {
                    remove_quietly(&self.paths.file_path(&i.name));
                }
            }
            return Err(e.err);
        }
        if self.state == AofState::WaitRewrite {
            self.state = AofState::On;
        }
        let base_size = fs::metadata(&base_path).map_err(|source| self.io_error(IoOp::Stat, &base_path, source))?.len();
        let history = match self.remove_history() {
            Err(e) if e.is_injected_crash() => return Err(e),
            other => other,
        };
        Ok(RewriteDone { base, base_size, incr: new_incr, history })
    }

    /// The rewrite failed or was killed: removes the temp base and, in WaitRewrite, the temp incr (the caller
    /// drops its handle; the next [`AofDir::start_rewrite`] opens a new one). The incr opened by
    /// [`AofDir::start_rewrite`] in state On stays in the manifest and stays the one to append to.
    pub fn rewrite_failed(&mut self) -> Result<RewriteCleanup, DirError> {
        let Some(rw) = self.rewrite.take() else {
            return Err(self.invalid_state("no rewrite is in progress"));
        };
        Ok(self.cleanup_rewrite(&rw))
    }

    fn cleanup_rewrite(&mut self, rw: &PendingRewrite) -> RewriteCleanup {
        remove_quietly(&rw.temp_base);
        let mut cleanup = RewriteCleanup::default();
        if rw.state == AofState::WaitRewrite {
            remove_quietly(&self.paths.temp_incr_path());
            cleanup.temp_incr = Some(temp_incr_name(&self.paths.file_name));
        }
        cleanup
    }

    /// `CONFIG SET appendonly yes` (Redis's `startAppendOnly`): Off becomes WaitRewrite; the caller then
    /// starts (or schedules) a rewrite. A rewrite running with AOF off is aborted first (Redis kills it:
    /// it does not accumulate the incr); its cleanup is returned.
    pub fn enable(&mut self) -> Result<Option<RewriteCleanup>, DirError> {
        if self.state != AofState::Off {
            return Err(self.invalid_state("AOF is already enabled"));
        }
        let aborted = self.rewrite.take().map(|rw| self.cleanup_rewrite(&rw));
        self.state = AofState::WaitRewrite;
        Ok(aborted)
    }

    /// `CONFIG SET appendonly no` (Redis's `stopAppendOnly`): the caller flushes, fsyncs and closes its incr
    /// first. A running rewrite is aborted (its temp files removed); the temp incr of WaitRewrite is removed.
    /// No other file is deleted. Does nothing when already off.
    pub fn disable(&mut self) -> Option<RewriteCleanup> {
        if self.state == AofState::Off {
            return None;
        }
        let mut cleanup = self.rewrite.take().map(|rw| self.cleanup_rewrite(&rw)).unwrap_or_default();
        if self.state == AofState::WaitRewrite && cleanup.temp_incr.is_none() {
            let temp = self.paths.temp_incr_path();
            if fs::remove_file(temp).is_ok() {
                cleanup.temp_incr = Some(temp_incr_name(&self.paths.file_name));
            }
        }
        self.state = AofState::Off;
        Some(cleanup)
    }

    // ---- building blocks ----

    fn check_usable(&self) -> Result<(), DirError> {
        if self.poisoned {
            return Err(DirError::Poisoned { path: self.paths.aof_dir() });
        }
        Ok(())
    }

    fn invalid_state(&self, what: &'static str) -> DirError {
        DirError::InvalidState { path: self.paths.aof_dir(), what, state: self.state }
    }

    fn io_error(&self, op: IoOp, path: &Path, source: io::Error) -> DirError {
        DirError::Io { op, path: path.to_path_buf(), target: None, source }
    }

    /// Runs one file operation, unless an injected fault says the process died before it or it failed.
    fn step<T>(&mut self, f: impl FnOnce() -> io::Result<T>) -> Result<io::Result<T>, DirError> {
        self.steps += 1;
        match self.fault {
            Some((at, Fault::Crash)) if at == self.steps => Err(DirError::InjectedCrash { step: at }),
            Some((at, Fault::Fail)) if at == self.steps => Ok(Err(io::Error::other("injected failure"))),
            _ => Ok(f()),
        }
    }

    fn io_at<T>(&mut self, op: IoOp, path: &Path, f: impl FnOnce() -> io::Result<T>) -> Result<T, DirError> {
        self.step(f)?.map_err(|source| self.io_error(op, path, source))
    }

    fn rename(&mut self, op: IoOp, from: &Path, to: &Path) -> Result<(), DirError> {
        self.step(|| fs::rename(from, to))?.map_err(|source| DirError::Io {
            op,
            path: from.to_path_buf(),
            target: Some(to.to_path_buf()),
            source,
        })
    }

    /// fsyncs a directory; a failure poisons (the directory's entries are in an unknown state).
    fn sync_dir(&mut self, dir: &Path) -> Result<(), DirError> {
        let result = self.io_at(IoOp::SyncDir, dir, || File::open(dir)?.sync_all());
        if let Err(e) = &result {
            if !e.is_injected_crash() {
                self.poisoned = true;
            }
        }
        result
    }

    /// Creates the AOF directory if it is missing and makes its entry durable.
    fn ensure_aof_dir(&mut self) -> Result<(), DirError> {
        let dir = self.paths.aof_dir();
        if is_dir(&dir) {
            return Ok(());
        }
        self.io_at(IoOp::CreateDir, &dir, || fs::create_dir(&dir))?;
        let work_dir = self.paths.work_dir.clone();
        self.sync_dir(&work_dir)
    }

    /// The next name for a new base or incr: `counter + 1`, skipping names the manifest still lists (a
    /// history file of the same name would otherwise be deleted under the new file).
    fn next_name(
        &self,
        m: &Manifest,
        counter: &mut u64,
        make: impl Fn(u64) -> Vec<u8>,
    ) -> Result<(Vec<u8>, u64), DirError> {
        loop {
            let seq = counter
                .checked_add(1)
                .filter(|&s| s <= i64::MAX as u64)
                .ok_or_else(|| DirError::SeqOverflow { path: self.paths.aof_dir() })?;
            *counter = seq;
            let name = make(seq);
            if !m.mentions(&name) {
                return Ok((name, seq));
            }
        }
    }

    /// Writes a base through the caller's writer into `temp` and fsyncs it; removes it on failure.
    fn write_temp_base(
        &mut self,
        temp: &Path,
        write_base: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), DirError> {
        let mut file = self.io_at(IoOp::CreateBase, temp, || open_truncated(temp))?;
        let result = self
            .io_at(IoOp::WriteBase, temp, || write_base(&mut file))
            .and_then(|()| self.io_at(IoOp::SyncBase, temp, || file.sync_all()));
        if let Err(e) = &result {
            if !e.is_injected_crash() {
                drop(file);
                remove_quietly(temp);
            }
        }
        result
    }

    /// Persists `m` and makes it (with the counters) the current manifest. On failure before the rename the
    /// old manifest is intact and nothing changes in memory; after the rename (directory fsync failed) `m`
    /// is adopted, since it is what the directory shows, and the `AofDir` is poisoned.
    fn commit(&mut self, m: Manifest, base_seq: u64, incr_seq: u64) -> Result<(), CommitError> {
        let result = self.write_manifest(&m);
        let replaced = matches!(&result, Err(e) if e.replaced);
        if result.is_ok() || replaced {
            self.manifest = m;
            self.base_seq = base_seq;
            self.incr_seq = incr_seq;
            self.dirty = false;
            self.manifest_found = true;
        }
        result
    }

    /// Redis's `writeAofManifestFile`: temp manifest, write, fsync, rename over the manifest, fsync the
    /// directory.
    fn write_manifest(&mut self, m: &Manifest) -> Result<(), CommitError> {
        let not_replaced = |err| CommitError { err, replaced: false };
        let target = self.paths.manifest_path();
        let bytes =
            m.encode().map_err(|error| not_replaced(DirError::ManifestEncode { path: target.clone(), error }))?;
        let temp = self.paths.temp_manifest_path();
        let result = (|| {
            let mut file = self.io_at(IoOp::OpenManifestTemp, &temp, || open_truncated(&temp))?;
            self.io_at(IoOp::WriteManifestTemp, &temp, || file.write_all(&bytes))?;
            self.io_at(IoOp::SyncManifestTemp, &temp, || file.sync_all())?;
            drop(file);
            self.rename(IoOp::RenameManifest, &temp, &target)
        })();
        if let Err(err) = result {
            if !err.is_injected_crash() {
                remove_quietly(&temp);
            }
            return Err(not_replaced(err));
        }
        let aof_dir = self.paths.aof_dir();
        self.sync_dir(&aof_dir).map_err(|err| CommitError { err, replaced: true })
    }
}

/// Reads and parses the manifest if the AOF directory and the manifest exist.
fn read_manifest(paths: &AofPaths) -> Result<Option<Manifest>, DirError> {
    if !is_dir(&paths.aof_dir()) {
        return Ok(None);
    }
    let path = paths.manifest_path();
    if !is_file(&path) {
        return Ok(None);
    }
    let data = fs::read(&path).map_err(|source| DirError::ReadManifest { path: path.clone(), source })?;
    Manifest::parse(&data).map(Some).map_err(|error| DirError::Manifest { path, error })
}

#[cfg(test)]
#[path = "dir_tests.rs"]
mod tests;
