//! The rewrite's own thread (`moon-aofrw`): its start under the control lock (the new incr, the switch of
//! the pipeline and the snapshot's cut), the walk into the temp base, and Redis's done handler. See the
//! parent module for the protocol.

use super::{log_history, open_dir, Ctl, RespEntries, Running, Stop};
use crate::server::{unix_ms, Server};
use crate::snapshot::{self, Encoder, Purpose, RdbEntries, Snapshot, SnapshotError};
use engine::aof::dir::{AofDir, AofState, RewriteDone};
use engine::aof::manifest::{temp_incr_name, BaseFormat};
use engine::aof::rewrite::rewrite_timestamp;
use engine::rdb::{RdbEncoder, RdbStream};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// fsync the temp base every so many bytes while writing it (`aof-rewrite-incremental-fsync yes`, Redis's
/// `REDIS_AUTOSYNC_BYTES`), so the final fsync does not have to push the whole file at once.
const INCREMENTAL_FSYNC_BYTES: u64 = 4 << 20;

/// What a rewrite takes from the configuration when it is asked for (as Redis's child inherits it at fork).
pub(super) struct Settings {
    format: BaseFormat,
    timestamps: bool,
    incremental: bool,
    delay: i64,
    opts: engine::rdb::WriteOptions,
}

impl Settings {
    pub(super) fn read(server: &Server) -> Settings {
        let opts = crate::persist::write_options(server);
        let delay = crate::bgsave::key_delay(server, "rdb-key-save-delay");
        let cfg = server.config.read();
        Settings {
            format: if cfg.aof_use_rdb_preamble { BaseFormat::Rdb } else { BaseFormat::Resp },
            timestamps: cfg.aof_timestamp_enabled,
            incremental: cfg.aof_rewrite_incremental_fsync,
            delay,
            opts,
        }
    }
}

/// Total size of the AOF files that no longer change once the rotation is done: the base and every incr but
/// the last two (the one being retired and the new one).
fn settled_size(dir: &AofDir) -> u64 {
    let m = dir.manifest();
    let old = m.incrs.len().saturating_sub(2);
    let files = m.base.iter().chain(m.incrs.iter().take(old));
    files.map(|f| fs::metadata(dir.paths().file_path(&f.name)).map_or(0, |md| md.len())).sum()
}

/// The rewrite thread.
pub(super) fn rewrite_main(server: Arc<Server>, running: Arc<Running>, settings: Settings) {
    let started = Instant::now();
    let begun = begin(&server, &running, settings);
    server.aof_rewrite.starting.fetch_sub(1, Ordering::AcqRel);
    if let Some((job, snap)) = begun {
        job.run(&server, snap, started);
    }
}

/// The rewrite's start under the control lock (Redis's `openNewIncrAofForAppend` and the fork): the next
/// incr (or the temp incr) is created and listed, then, with every shard held, the pipeline switches to it
/// and the snapshot's cut is taken. `None` when it did not begin: stopped before, another snapshot got the
/// slot first (the rewrite is scheduled), or a failure (counted).
fn begin(server: &Arc<Server>, running: &Arc<Running>, settings: Settings) -> Option<(Job, Snapshot)> {
    let mut ctl = server.aof_rewrite.ctl.lock();
    let current = ctl.job.as_ref().is_some_and(|j| Arc::ptr_eq(j, running));
    if !current || running.stop.lock().is_some() {
        // Stopped before its start: whoever stopped it reset the INFO fields (or reset them now).
        if current {
            ctl.job = None;
            server.persist.aof_rewrite_started.store(0, Ordering::Relaxed);
        }
        return None;
    }
    let p = &server.persist;
    let not_begun = |ctl: &mut Ctl| {
        ctl.job = None;
        p.aof_rewrite_started.store(0, Ordering::Relaxed);
    };
    let (begun, state, settled, file_name) = {
        let mut guard = server.aof_dir.lock();
        let opened = open_dir(server, &mut guard).and_then(|dir| {
            let state = dir.state();
            crate::testhook::arm(dir, crate::testhook::Transition::StartRewrite);
            let begun = dir.start_rewrite(std::process::id(), settings.format)?;
            Ok((begun, state, settled_size(dir), dir.paths().file_name().to_vec()))
        });
        match opened {
            Ok(v) => v,
            Err(e) => {
                let (state, name) =
                    guard.as_ref().map_or((AofState::Off, Vec::new()), |d| (d.state(), d.paths().file_name().to_vec()));
                drop(guard);
                crate::testhook::crashed(&e);
                not_begun(&mut ctl);
                count_failure(server, state, &name, Some(format!("Can't rewrite append only file in background: {e}")));
                return None;
            }
        }
    };
    let fail = |ctl: &mut Ctl, why: String| {
        abandon(server, state);
        not_begun(ctl);
        count_failure(server, state, &file_name, Some(why));
    };
    if let Some(incr) = &begun.incr {
        if let Err(e) = set_append(&incr.file) {
            fail(
                &mut ctl,
                format!("Can't open the append-only file {}: {}", incr.path.display(), crate::aof::strerror(&e)),
            );
            return None;
        }
        crate::notice!("Creating AOF incr file {} on background rewrite", String::from_utf8_lossy(&incr.name));
    }
    let encoder: Box<dyn Encoder> = match settings.format {
        BaseFormat::Rdb => Box::new(RdbEntries::new(settings.opts.clone())),
        BaseFormat::Resp => Box::new(RespEntries),
    };
    let mut view = server.shards.lock_all();
    let held = std::time::Instant::now();
    // A BGSAVE may have begun since the command (it needs every shard, so not any more).
    if server.snapshots.running().is_some() {
        drop(view);
        abandon(server, state);
        not_begun(&mut ctl);
        p.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
        crate::notice!("Background AOF rewrite scheduled: another background operation started first");
        return None;
    }
    let rotation = match begun.incr {
        None => None,
        // In WaitRewrite only the temp incr counts until the rewrite makes it part of the AOF.
        Some(incr) => match switch_incr(server, incr.file, if state == AofState::On { settled } else { 0 }) {
            Ok(r) => r,
            Err(e) => {
                drop(view);
                fail(&mut ctl, format!("Can't switch to the AOF incr file {}: {e}", incr.path.display()));
                return None;
            }
        },
    };
    let snap = snapshot::begin_locked(server, &mut view, Purpose::AofRewrite, encoder);
    drop(view);
    let Ok(snap) = snap else {
        fail(&mut ctl, "Can't rewrite append only file in background: another snapshot runs".into());
        return None;
    };
    // The incr switch and the cut held every shard.
    snap.note_hold(held.elapsed());
    p.current_save_keys_total.store(snap.keys_total, Ordering::Relaxed);
    let job = Job {
        running: running.clone(),
        state,
        format: settings.format,
        timestamps: settings.timestamps,
        incremental: settings.incremental,
        delay: settings.delay,
        encoder: RdbEncoder::new(settings.opts),
        rotation,
        settled,
        file_name,
    };
    Some((job, snap))
}

/// Makes the pipeline append to `file` from this instant (call with every shard held): a rotation when it
/// runs, else a start (WaitRewrite; or AOF on with the pipeline not running, which only a failed start-up
/// leaves).
fn switch_incr(server: &Server, file: File, settled: u64) -> io::Result<Option<crate::aof::Rotation>> {
    if server.aof.is_on() {
        crate::aof::rotate(server, file)
    } else {
        crate::aof::start(server, file, settled).map(|()| None)
    }
}

/// Undoes a start that did not get to run: the temp files go (in WaitRewrite logging stops again); an incr
/// created in state On stays listed, empty, as after a failed rewrite.
fn abandon(server: &Server, state: AofState) {
    if state == AofState::WaitRewrite && server.aof.is_on() {
        let _ = crate::aof::stop(server);
    }
    if let Some(dir) = server.aof_dir.lock().as_mut() {
        let _ = dir.rewrite_failed();
    }
}

/// A failed rewrite (Redis's `aof_lastbgrewrite_status = C_ERR` and consecutive-failure count); in
/// WaitRewrite the temp incr was removed and the rewrite is scheduled again.
fn count_failure(server: &Server, state: AofState, file_name: &[u8], why: Option<String>) {
    if let Some(why) = why {
        crate::warning!("{why}");
    }
    crate::warning!("Background AOF rewrite terminated with error");
    let p = &server.persist;
    p.aof_last_bgrewrite_ok.store(false, Ordering::Relaxed);
    p.aof_rewrites_consecutive_failures.fetch_add(1, Ordering::Relaxed);
    if state == AofState::WaitRewrite {
        crate::notice!(
            "Removing the temp incr aof file {} in the background",
            String::from_utf8_lossy(&temp_incr_name(file_name))
        );
        p.aof_rewrite_scheduled.store(true, Ordering::Relaxed);
    }
}

/// Sets `O_APPEND` on an incr file opened for writing, as the pipeline requires (a short write is cut back
/// with `ftruncate`, after which writes must land at the new end).
fn set_append(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor `file` owns for the duration of the call; F_GETFL/F_SETFL only read
    // and change its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_APPEND) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One rewrite's thread side, once begun.
struct Job {
    running: Arc<Running>,
    /// The AOF state when it began.
    state: AofState,
    format: BaseFormat,
    timestamps: bool,
    incremental: bool,
    delay: i64,
    encoder: RdbEncoder,
    rotation: Option<crate::aof::Rotation>,
    settled: u64,
    file_name: Vec<u8>,
}

enum Failure {
    Stopped,
    Error(String),
}

impl Job {
    fn run(mut self, server: &Server, mut snap: Snapshot, started: Instant) {
        if let Some(rotation) = self.rotation.take() {
            let size = match rotation.wait() {
                Ok(size) => size,
                Err(e) => {
                    crate::warning!(
                        "The previous AOF incr file is incomplete ({}); the rewrite covers what it misses",
                        e.reason
                    );
                    e.size
                }
            };
            server.aof.set_other_files_size(self.settled + size);
        }
        crate::testhook::pause("aofrw-incr-opened");
        let result = self.write(server, &mut snap);
        self.finish(server, snap, result, started);
    }

    /// Writes the snapshot into the temp base and fsyncs it.
    fn write(&self, server: &Server, snap: &mut Snapshot) -> Result<(), Failure> {
        let temp = &self.running.temp;
        let name = temp.file_name().map_or_else(|| temp.display().to_string(), |n| n.to_string_lossy().into_owned());
        let file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(temp).map_err(|e| {
            Failure::Error(format!(
                "Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {}",
                crate::aof::strerror(&e)
            ))
        })?;
        if let Ok(m) = file.metadata() {
            let _ = self.running.ident.set((m.dev(), m.ino()));
        }
        let write_err = |e: io::Error| {
            Failure::Error(format!("Write error writing append only file on disk: {}", crate::aof::strerror(&e)))
        };
        let out = Incremental { file, every: self.incremental.then_some(INCREMENTAL_FSYNC_BYTES), unsynced: 0 };
        let progress = |n: u64| server.persist.current_save_keys_processed.store(n, Ordering::Relaxed);
        let file = match self.format {
            BaseFormat::Rdb => {
                let mut out = RdbStream::new(out, self.encoder.opts().checksum);
                let mut header = Vec::new();
                self.encoder.header(&mut header, true);
                out.write_all(&header).map_err(write_err)?;
                walk(snap, &mut out, self.delay, &progress)?;
                out.finish().map_err(write_err)?.file
            }
            BaseFormat::Resp => {
                let mut out = out;
                if self.timestamps {
                    let mut ts = Vec::new();
                    rewrite_timestamp(&mut ts, unix_ms() / 1000);
                    out.write_all(&ts).map_err(write_err)?;
                }
                walk(snap, &mut out, self.delay, &progress)?;
                out.file
            }
        };
        file.sync_all().map_err(|e| {
            Failure::Error(format!("Fail to fsync the temporary AOF base file {name}: {}", crate::aof::strerror(&e)))
        })?;
        crate::testhook::pause("aofrw-temp-synced");
        crate::notice!("Successfully created the temporary AOF base file {name}");
        Ok(())
    }

    /// Redis's `backgroundRewriteDoneHandler`, under the control lock.
    fn finish(self, server: &Server, snap: Snapshot, result: Result<(), Failure>, started: Instant) {
        let mut ctl = server.aof_rewrite.ctl.lock();
        let current = ctl.job.as_ref().is_some_and(|j| Arc::ptr_eq(j, &self.running));
        if current {
            ctl.job = None;
            let stop = *self.running.stop.lock();
            match (stop, result) {
                (Some(Stop::Shutdown), _) => self.cleanup(server),
                (Some(Stop::TempRemoved), _) => self.failed(
                    server,
                    format!(
                        "Background AOF rewrite stopped: its temporary file {} was removed",
                        self.running.temp.display()
                    ),
                ),
                (_, Err(Failure::Error(msg))) => self.failed(server, msg),
                (_, Err(Failure::Stopped)) => self.failed(
                    server,
                    format!("Background AOF rewrite stopped by {}", snap.aborted().unwrap_or("an error")),
                ),
                (_, Ok(())) => self.done(server),
            }
        } else {
            // Detached by CONFIG SET appendonly, which cleaned the AOF directory up and reset the INFO
            // fields; only a temp file this thread created after that can remain. (No new rewrite can use
            // the name before the snapshot below is released.)
            let _ = fs::remove_file(&self.running.temp);
        }
        let p = &server.persist;
        let secs = i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
        snap.release(|| {
            if current {
                p.aof_last_rewrite_time_sec.store(secs, Ordering::Relaxed);
                p.aof_rewrite_started.store(0, Ordering::Relaxed);
                p.current_save_keys_processed.store(0, Ordering::Relaxed);
                p.current_save_keys_total.store(0, Ordering::Relaxed);
            }
        });
        drop(ctl);
    }

    fn done(&self, server: &Server) {
        let result = match server.aof_dir.lock().as_mut() {
            Some(dir) => {
                crate::testhook::arm(dir, crate::testhook::Transition::RewriteDone);
                dir.rewrite_done().map(|done| (done, dir.state()))
            }
            None => {
                self.failed(server, "Background AOF rewrite: the AOF directory is gone".into());
                return;
            }
        };
        let (done, state) = match result {
            Ok(v) => v,
            Err(e) => {
                crate::testhook::crashed(&e);
                self.failed(server, e.to_string());
                return;
            }
        };
        let RewriteDone { base, base_size, incr, history } = done;
        crate::notice!("Background AOF rewrite terminated with success");
        let temp = self.running.temp.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::notice!("Successfully renamed the temporary AOF base file {temp} into {}", base.name_lossy());
        if let Some(i) = &incr {
            crate::notice!(
                "Successfully renamed the temporary AOF incr file {} into {}",
                String::from_utf8_lossy(&temp_incr_name(&self.file_name)),
                i.name_lossy()
            );
        }
        match &history {
            Ok(removed) => log_history(removed),
            Err(e) => crate::warning!("Can't remove the AOF history files: {e}"),
        }
        let p = &server.persist;
        if state == AofState::On {
            // The new base, plus the incr being appended to (everything written since the rotation): the
            // size the next automatic rewrite's growth is measured against, as Redis does.
            server.aof.set_other_files_size(base_size);
            p.aof_base_size.store(p.aof_current_size.load(Ordering::Relaxed), Ordering::Relaxed);
        } else {
            p.aof_base_size.store(base_size, Ordering::Relaxed);
        }
        p.aof_last_bgrewrite_ok.store(true, Ordering::Relaxed);
        p.aof_rewrites_consecutive_failures.store(0, Ordering::Relaxed);
        server.aof.rewrite_done();
        crate::notice!("Background AOF rewrite finished successfully");
    }

    /// A failed rewrite: its temp files go (in WaitRewrite logging stops first), then it is counted.
    fn failed(&self, server: &Server, why: String) {
        self.cleanup(server);
        count_failure(server, self.state, &self.file_name, Some(why));
    }

    /// Removes the temp files (Redis's `aofRemoveTempFile`, and the temp incr of WaitRewrite after logging
    /// into it has stopped).
    fn cleanup(&self, server: &Server) {
        if self.state == AofState::WaitRewrite && server.aof.is_on() {
            let _ = crate::aof::stop(server);
        }
        if let Some(dir) = server.aof_dir.lock().as_mut() {
            // Nothing pending after a failed `rewrite_done`, which cleaned up itself.
            let _ = dir.rewrite_failed();
        }
        let _ = fs::remove_file(&self.running.temp);
    }
}

/// Runs the snapshot walk into `out`.
fn walk(snap: &mut Snapshot, out: &mut dyn Write, delay: i64, progress: &dyn Fn(u64)) -> Result<(), Failure> {
    match snap.run(out, delay, progress) {
        Ok(()) => Ok(()),
        Err(SnapshotError::Aborted(_)) => Err(Failure::Stopped),
        Err(SnapshotError::Io(e)) => {
            Err(Failure::Error(format!("Write error writing append only file on disk: {}", crate::aof::strerror(&e))))
        }
        Err(e @ SnapshotError::Lost) => Err(Failure::Error(format!("Background AOF rewrite failed: {e}"))),
    }
}

/// The temp base, fsynced every `every` bytes as it is written.
struct Incremental {
    file: File,
    every: Option<u64>,
    unsynced: u64,
}

impl Write for Incremental {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(every) = self.every {
            self.unsynced += n as u64;
            if self.unsynced >= every {
                self.file.sync_data()?;
                self.unsynced = 0;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
