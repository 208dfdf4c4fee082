//! Loading the files of an AOF (base first, then each incr, in manifest order) under a [`RecoveryPolicy`],
//! as Redis 7.0's `loadAppendOnlyFiles` does (FORMATS.md §1.4), with the differences Moon's issue asks for.
//!
//! Loading is not replay (DESIGN.md §4): a file that starts with an RDB (sniffed by content) is decoded
//! straight into the caller's [`LoadTarget`], expired keys included (an AOF base keeps them, as
//! `RDBFLAGS_AOF_PREAMBLE` does); the RESP that follows, and every RESP file, is replayed through the
//! caller's [`Replayer`]. Each file starts a fresh replay client in DB 0. A MULTI ... EXEC block is buffered
//! and handed over whole when its EXEC is read, so a transaction cut by a crash is never half applied.
//!
//! Damage:
//! - a torn tail of the **last** file under [`RecoveryPolicy::TruncateTornTail`] is dropped (an incr file
//!   followed only by empty incr files counts as the last, see [`counts_as_last`]): the load
//!   succeeds and reports a [`TornTail`] (file, offset, bytes dropped) so the server can log it and cut the
//!   file with [`truncate_file`] before appending to it. This module never modifies a file by itself.
//! - a torn tail under [`RecoveryPolicy::Strict`], a torn file that is not the last, any format error, a
//!   damaged RDB, an unknown command: fatal, with the file, the offset and the advice to run
//!   `moon-aof-tool check --fix`. Unlike Redis, a middle file is never truncated before failing.
//!
//! The framing rules are the stream reader's (one strict validator for loader and checker, see
//! [`super::stream`]); commands are checked against Moon's command table as they are read (Redis's
//! `lookupCommand`), including those queued inside MULTI.

use super::manifest::AofKind;
use super::stream::{AofReader, CommandKind, Damage, RawArgs, RawEvent, ReadError};
use super::RecoveryPolicy;
use crate::cmd::{self, Ctx};
use crate::config::EngineConfig;
use crate::keyspace::{Keyspace, Store};
use crate::rdb::{self, LoadReport, LoadTarget, RdbError};
use bytes::Bytes;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One file to load.
#[derive(Debug, Clone)]
pub struct LoadFile {
    pub path: PathBuf,
    /// The name as the manifest gives it (used in messages).
    pub name: String,
    pub kind: AofKind,
}

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub policy: RecoveryPolicy,
    /// For an RDB base or preamble. `drop_expired_before_ms` is ignored: an AOF base keeps expired keys.
    pub rdb: rdb::LoadOptions,
}

impl LoadOptions {
    pub fn new(policy: RecoveryPolicy, cfg: EngineConfig) -> LoadOptions {
        LoadOptions { policy, rdb: rdb::LoadOptions { cfg, ..rdb::LoadOptions::default() } }
    }
}

/// A command the replayer refused; loading stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError(pub String);

/// Where replayed commands go. The server routes them like live traffic (one dispatcher, a replay client);
/// [`KeyspaceReplayer`] runs them on one [`Keyspace`].
pub trait Replayer {
    /// A new file starts: reset the replay client (DB 0, no transaction).
    fn start_file(&mut self, file: &LoadFile);
    /// Where an RDB base or preamble is decoded.
    fn rdb_target(&mut self) -> &mut dyn LoadTarget;
    /// One command outside MULTI (SELECT included). Error replies are the replayer's business (Redis
    /// ignores them); an `Err` stops the load.
    fn command(&mut self, argv: &[Bytes]) -> Result<(), ReplayError>;
    /// [`Replayer::command`] as the loader reads it: `spec` is the command (looked up once, by the loader)
    /// and the arguments borrow the read buffer. The default hands [`Bytes`] to `command`; a replayer that
    /// copies the arguments anyway (the server's per-shard queues) takes them from here without reference
    /// counts.
    fn command_raw(&mut self, spec: &'static cmd::CommandSpec, args: RawArgs<'_>) -> Result<(), ReplayError> {
        let _ = spec;
        self.command(&args.to_bytes())
    }
    /// The commands between a MULTI and its EXEC, run as one transaction.
    fn transaction(&mut self, commands: &[Vec<Bytes>]) -> Result<(), ReplayError>;
    /// Called every [`PROGRESS_EVERY`] items with the offset reached in `file` (a progress bar, the
    /// server's `loading_loaded_bytes`, a chance to answer clients with -LOADING).
    fn progress(&mut self, _file: &LoadFile, _offset: u64) {}
}

/// How many items (commands, annotations) pass between two [`Replayer::progress`] calls.
pub const PROGRESS_EVERY: u64 = 1024;

/// A torn tail that was dropped: the caller truncates `path` to `offset` ([`truncate_file`]) and logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    pub name: String,
    /// Truncate to this size (after the last complete command, before an open MULTI).
    pub offset: u64,
    /// The file's size.
    pub size: u64,
    pub damage: Damage,
}

impl TornTail {
    pub fn dropped(&self) -> u64 {
        self.size - self.offset
    }
}

/// What loading one file did.
#[derive(Debug)]
#[non_exhaustive]
pub struct FileReport {
    pub name: String,
    pub kind: AofKind,
    pub bytes: u64,
    /// Commands replayed (MULTI and EXEC not counted; commands inside transactions are).
    pub commands: u64,
    pub transactions: u64,
    pub annotations: u64,
    /// The RDB it started with, and where that RDB ended.
    pub rdb: Option<(LoadReport, u64)>,
    pub elapsed: Duration,
    pub torn: Option<TornTail>,
}

/// What loading all files did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LoadSummary {
    pub files: Vec<FileReport>,
    pub elapsed: Duration,
}

impl LoadSummary {
    /// The torn tail dropped, if any: from the last file, or from the incr file before empty ones.
    pub fn torn(&self) -> Option<&TornTail> {
        self.files.iter().rev().find_map(|f| f.torn.as_ref())
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    pub fn commands(&self) -> u64 {
        self.files.iter().map(|f| f.commands).sum()
    }
}

const FIX_ADVICE: &str = "Make a backup of the AOF directory, then run `moon-aof-tool check --fix` on its manifest";

/// Why loading failed. Every variant names the file; corruption carries the byte offset.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    Io {
        file: String,
        source: io::Error,
    },
    /// A damaged RDB base or preamble (always fatal).
    Rdb {
        file: String,
        source: RdbError,
    },
    /// A format error (never truncated, whatever the policy).
    Format {
        file: String,
        damage: Damage,
    },
    /// `*0` or a negative count: redis-check-aof passes it, Redis's loader refuses it, so do we.
    EmptyCommand {
        file: String,
        offset: u64,
    },
    /// A torn tail that may not be dropped: `strict` (the policy), or a file that is not the last.
    Torn {
        file: String,
        damage: Damage,
        valid_up_to: u64,
        size: u64,
        last: bool,
    },
    UnknownCommand {
        file: String,
        offset: u64,
        name: Vec<u8>,
    },
    Replay {
        file: String,
        offset: u64,
        error: ReplayError,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { file, source } => write!(f, "Unable to read the AOF file {file}: {source}"),
            LoadError::Rdb { file, source } => {
                write!(f, "Bad RDB data in the append only file {file}: {source}. The RDB part is never truncated: {FIX_ADVICE} to see the damage, and restore the base from a backup")
            }
            LoadError::Format { file, damage } => {
                write!(f, "Bad file format reading the append only file {file}: {damage}. {FIX_ADVICE}")
            }
            LoadError::EmptyCommand { file, offset } => write!(
                f,
                "Bad file format reading the append only file {file}: a command with no arguments at offset {offset}. {FIX_ADVICE}"
            ),
            LoadError::Torn { file, damage, valid_up_to, size, last: true } => write!(
                f,
                "Unexpected end of file reading the append only file {file}: {damage}; the last complete command ends at offset {valid_up_to} of {size}. You can: 1) make a backup of the AOF directory, then run `moon-aof-tool check --fix` on its manifest; 2) set aof-load-truncated yes and restart"
            ),
            LoadError::Torn { file, damage, valid_up_to, size, last: false } => write!(
                f,
                "Fatal error: the truncated file is not the last file: {file} ({damage}; the last complete command ends at offset {valid_up_to} of {size}). {FIX_ADVICE}"
            ),
            LoadError::UnknownCommand { file, offset, name } => write!(
                f,
                "Unknown command '{}' reading the append only file {file} at offset {offset}",
                String::from_utf8_lossy(name)
            ),
            LoadError::Replay { file, offset, error } => {
                write!(f, "Error replaying the append only file {file} at offset {offset}: {}", error.0)
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Rdb { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl LoadError {
    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            LoadError::Io { file, .. }
            | LoadError::Rdb { file, .. }
            | LoadError::Format { file, .. }
            | LoadError::EmptyCommand { file, .. }
            | LoadError::Torn { file, .. }
            | LoadError::UnknownCommand { file, .. }
            | LoadError::Replay { file, .. } => file,
        }
    }
}

/// Whether a torn tail of a file of `kind` may be dropped as the last file's: it is the last, or an incr
/// file after which every file is empty (`later_sizes`; `None` for a file that cannot be `stat`ed).
///
/// Redis allows only the last file. But a power loss during a rotation can leave the new, empty incr in
/// the manifest while the previous incr's tail never reached the disk: the writer fsyncs the old file
/// before it writes anything to the new one, so every file after the torn one is then empty. Dropping
/// that tail loses nothing that was acknowledged as fsynced, and what remains is valid for Redis too.
/// A base never counts: it is fsynced before the manifest names it, so a torn base is damage.
pub fn counts_as_last(kind: AofKind, later_sizes: impl IntoIterator<Item = Option<u64>>) -> bool {
    let mut later = later_sizes.into_iter().peekable();
    later.peek().is_none() || (kind == AofKind::Incr && later.all(|s| s == Some(0)))
}

/// Loads `files` in order (the base first if there is one, then the incr files) into `replayer`.
pub fn load_files(
    files: &[LoadFile],
    opts: &LoadOptions,
    replayer: &mut dyn Replayer,
) -> Result<LoadSummary, LoadError> {
    let start = Instant::now();
    let mut summary = LoadSummary::default();
    let sizes: Vec<Option<u64>> = files.iter().map(|f| std::fs::metadata(&f.path).ok().map(|m| m.len())).collect();
    for (i, file) in files.iter().enumerate() {
        let last = counts_as_last(file.kind, sizes[i + 1..].iter().copied());
        let reader = AofReader::open(&file.path).map_err(|source| LoadError::Io { file: file.name.clone(), source })?;
        summary.files.push(load_one(file, reader, last, opts, replayer)?);
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Loads one file from `reader` (exposed for files already in memory and for tests); `last` says whether
/// a torn tail may be dropped.
pub fn load_one(
    file: &LoadFile,
    mut reader: AofReader,
    last: bool,
    opts: &LoadOptions,
    replayer: &mut dyn Replayer,
) -> Result<FileReport, LoadError> {
    let start = Instant::now();
    let name = || file.name.clone();
    let io_err = |source| LoadError::Io { file: file.name.clone(), source };
    replayer.start_file(file);
    let mut report = FileReport {
        name: name(),
        kind: file.kind,
        bytes: 0,
        commands: 0,
        transactions: 0,
        annotations: 0,
        rdb: None,
        elapsed: Duration::ZERO,
        torn: None,
    };
    if reader.has_rdb_preamble().map_err(io_err)? {
        let rdb_opts = rdb::LoadOptions { drop_expired_before_ms: None, ..opts.rdb.clone() };
        match reader.load_rdb_preamble(&rdb_opts, replayer.rdb_target()) {
            Ok(Some(r)) => report.rdb = Some((r, reader.offset())),
            Ok(None) => {}
            Err(e) => return Err(read_error(file, e)),
        }
    }
    let mut queue: Option<Vec<Vec<Bytes>>> = None;
    let mut names = cmd::LastLookup::default();
    let mut items = 0u64;
    loop {
        items += 1;
        if items.is_multiple_of(PROGRESS_EVERY) {
            replayer.progress(file, reader.offset());
        }
        match reader.next_raw() {
            Ok(None) => break,
            Ok(Some(RawEvent::Annotation(_))) => report.annotations += 1,
            Ok(Some(RawEvent::Command(c))) => {
                if c.args.is_empty() {
                    return Err(LoadError::EmptyCommand { file: name(), offset: c.offset });
                }
                let replay_err = |error| LoadError::Replay { file: name(), offset: c.offset, error };
                match c.kind {
                    CommandKind::Multi => queue = Some(Vec::new()),
                    CommandKind::Exec => {
                        let block = queue.take().unwrap_or_default();
                        replayer.transaction(&block).map_err(replay_err)?;
                        report.transactions += 1;
                    }
                    CommandKind::Plain => {
                        let cmd_name = c.args.get(0);
                        let Some(spec) = names.lookup(cmd_name) else {
                            return Err(LoadError::UnknownCommand {
                                file: name(),
                                offset: c.offset,
                                name: cmd_name.to_vec(),
                            });
                        };
                        report.commands += 1;
                        match queue.as_mut() {
                            Some(q) => q.push(c.args.to_bytes()),
                            None => replayer.command_raw(spec, c.args).map_err(replay_err)?,
                        }
                    }
                }
            }
            Err(ReadError::Damage(damage)) if damage.torn => {
                let size = reader.total_size().map_err(io_err)?;
                let valid_up_to = reader.loader_valid_up_to();
                if last && opts.policy == RecoveryPolicy::TruncateTornTail {
                    report.torn =
                        Some(TornTail { path: file.path.clone(), name: name(), offset: valid_up_to, size, damage });
                    break;
                }
                return Err(LoadError::Torn { file: name(), damage, valid_up_to, size, last });
            }
            Err(e) => return Err(read_error(file, e)),
        }
    }
    report.bytes = reader.total_size().map_err(io_err)?;
    report.elapsed = start.elapsed();
    Ok(report)
}

fn read_error(file: &LoadFile, e: ReadError) -> LoadError {
    let file = file.name.clone();
    match e {
        ReadError::Io(source) => LoadError::Io { file, source },
        ReadError::Rdb(source) => LoadError::Rdb { file, source },
        ReadError::Damage(damage) => LoadError::Format { file, damage },
    }
}

/// Cuts a torn tail: truncates `path` to `offset` bytes and fsyncs it. A failed fsync is returned, never
/// retried. Refuses to grow a file (an offset past its end means the caller has the wrong file).
pub fn truncate_file(path: &Path, offset: u64) -> io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let len = f.metadata()?.len();
    if offset > len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot truncate {} to {offset} bytes: it has only {len}", path.display()),
        ));
    }
    f.set_len(offset)?;
    f.sync_all()
}

/// Replays into one [`Keyspace`] (or any other store that RDB records load into, such as `moon-aof-tool`'s
/// set of per-core keyspaces) through the engine's executor (`ctx.loading = true`: no lazy expiry, as
/// Redis while loading). For `moon-aof-tool` and for tests; the server has its own replayer that routes
/// through its dispatcher.
pub struct KeyspaceReplayer<'a, S: Store + LoadTarget = Keyspace> {
    pub ks: &'a mut S,
    cfg: &'a EngineConfig,
    db: usize,
    /// Commands that answered with an error (Redis ignores those replies while loading).
    pub error_replies: u64,
    /// The first of them, for a log line.
    pub first_error_reply: Option<String>,
}

impl<'a, S: Store + LoadTarget> KeyspaceReplayer<'a, S> {
    pub fn new(ks: &'a mut S, cfg: &'a EngineConfig) -> Self {
        KeyspaceReplayer { ks, cfg, db: 0, error_replies: 0, first_error_reply: None }
    }

    fn run(&mut self, argv: &[Bytes]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut ctx = Ctx::new(self.ks, self.cfg, now);
        ctx.db = self.db;
        ctx.loading = true;
        let reply = cmd::execute(&mut ctx, argv);
        self.db = ctx.db;
        if let crate::resp::Reply::Error(e) = reply {
            self.error_replies += 1;
            self.first_error_reply.get_or_insert(e);
        }
    }
}

impl<S: Store + LoadTarget> Replayer for KeyspaceReplayer<'_, S> {
    fn start_file(&mut self, _file: &LoadFile) {
        self.db = 0;
    }

    fn rdb_target(&mut self) -> &mut dyn LoadTarget {
        self.ks
    }

    fn command(&mut self, argv: &[Bytes]) -> Result<(), ReplayError> {
        self.run(argv);
        Ok(())
    }

    fn transaction(&mut self, commands: &[Vec<Bytes>]) -> Result<(), ReplayError> {
        for argv in commands {
            self.run(argv);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
