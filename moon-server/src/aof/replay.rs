//! Loading the files of an AOF into the server (DESIGN.md §3-§4). This is where loading and replay meet:
//! per file, [`load_files`] either decodes an RDB straight into the shards (the base at start-up goes
//! through `rdb_load`, one decoding thread per shard) or hands the file to the engine's
//! [`engine::aof::load::load_one`], which replays its RESP commands through [`Replay`].
//!
//! [`Replay`] is a client without a socket that goes through the dispatcher's own code: a data command runs
//! through `dispatch::run_data_command` (its keys' shards locked exactly as for live traffic), a MULTI ...
//! EXEC block through `dispatch::exec`. So every key lands on the shard live traffic uses, and a restart
//! with another shard count rebuilds the same data. DEBUG LOADAOF already holds every shard: it passes that
//! view, and commands run in it (`dispatch::exec_in_view`).
//!
//! Replay runs with the AOF pipeline off (nothing is logged twice) and with the `loading` flag up, under
//! which the executor never expires keys lazily (`ctx.loading`): the log already holds the DELs Redis
//! wrote for them. Blocking pops replay as their non-blocking form (as inside EXEC); other server-level
//! commands (connection and admin commands, which Redis never logs) are skipped. Error replies are
//! counted, not fatal, as in Redis.

use super::replay_par::{self, Errors, Pool, Route};
use crate::client::{Client, Shared};
use crate::server::{unix_ms, Server};
use crate::shards::LockedShards;
use bytes::Bytes;
use engine::aof::dir::PlannedFile;
use engine::aof::load::{self, LoadError, LoadFile, LoadOptions, ReplayError, Replayer, TornTail};
use engine::aof::manifest::AofKind;
use engine::aof::stream::{AofReader, DamageKind, RawArgs};
use engine::aof::RecoveryPolicy;
use engine::cmd::{self, CommandSpec, Handler};
use engine::rdb::{self, Discard, LoadReport, LoadTarget, RdbError};
use engine::resp::Reply;
use engine::types::Value;
use parking_lot::Mutex;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a successful load did.
pub struct Loaded {
    /// The torn tail cut from the last file (already truncated on disk and logged).
    pub torn: Option<TornTail>,
    /// The replay client, for the keys its writes made ready for blocked clients (DEBUG LOADAOF).
    pub client: Client,
}

/// Loads `files` (a load plan, base first) into the server's shards: the caller has raised the `loading`
/// flag and set `loading_total_bytes`. `held`: every shard, already locked (DEBUG LOADAOF); `None` at
/// start-up, where each command locks what it needs and the base is decoded on one thread per shard.
///
/// A torn tail of the last file is cut under [`RecoveryPolicy::TruncateTornTail`] (logged with Redis's
/// lines). Any other damage, or a failed truncation, is an error: the text to log, with the file, the
/// offset and what to run.
pub fn load_files<'s>(
    server: &'s Server,
    files: &[PlannedFile],
    policy: RecoveryPolicy,
    held: Option<&mut LockedShards<'s>>,
) -> Result<Loaded, String> {
    let opts = LoadOptions::new(policy, server.engine_cfg.read().clone());
    let parallel = held.is_none();
    let mut replay = Replay::new(server, held);
    // At start-up, commands run on one thread per shard (`replay_par`; with one shard, parsing and running
    // still overlap on two threads); not under
    // `key-load-delay`, whose pacing tests watch one command at a time.
    let torn = std::thread::scope(|scope| {
        let workers = if parallel && replay.delay == 0 {
            let (pool, workers) = Pool::start(scope, server);
            replay.pool = Some(pool);
            workers
        } else {
            Vec::new()
        };
        let result = load_each(server, files, &opts, parallel, &mut replay);
        if let Some(pool) = replay.pool.take() {
            replay.errors.merge(pool.finish(workers));
        }
        result
    })?;
    crate::verbose!("AOF replay: {} commands", replay.commands);
    if replay.errors.count > 0 {
        crate::verbose!(
            "{} commands of the AOF replied with an error while loading (the first: {})",
            replay.errors.count,
            replay.errors.first.as_ref().map_or("", |(_, e)| e.as_str())
        );
    }
    Ok(Loaded { torn, client: replay.client })
}

/// [`load_files`]'s loop over the files. Returns the torn tail cut from the last one.
fn load_each(
    server: &Server,
    files: &[PlannedFile],
    opts: &LoadOptions,
    parallel: bool,
    replay: &mut Replay<'_, '_>,
) -> Result<Option<TornTail>, String> {
    let mut torn = None;
    let mut done_bytes = 0u64;
    let total = server.persist.loading_total_bytes.load(Ordering::Relaxed);
    for (i, f) in files.iter().enumerate() {
        let lf = f.to_load_file();
        // Redis skips an empty file without a word.
        if f.size == 0 {
            continue;
        }
        let started = Instant::now();
        replay.base_offset = done_bytes;
        let kind = if f.info.kind == AofKind::Base { "base" } else { "incr" };
        if parallel && i == 0 && f.info.kind == AofKind::Base && starts_with_rdb(&f.path) {
            crate::notice!("Reading RDB base file on AOF loading...");
            let rdb_opts = rdb::LoadOptions { drop_expired_before_ms: None, ..opts.rdb.clone() };
            // `rdb_load` estimates progress against `loading_total_bytes`: the base's share while it runs.
            server.persist.loading_total_bytes.store(f.size, Ordering::Relaxed);
            let report = crate::rdb_load::load_file(server, &f.path, &rdb_opts);
            server.persist.loading_total_bytes.store(total, Ordering::Relaxed);
            let report = report.map_err(|source| fatal(&LoadError::Rdb { file: lf.name.clone(), source }))?;
            log_rdb(&report);
            if report.bytes_consumed as u64 >= f.size {
                done_bytes += f.size;
                progress(server, done_bytes);
                crate::notice!("DB loaded from {kind} file {}: {:.3} seconds", lf.name, secs(started));
                continue;
            }
            // An old-style file: RDB preamble, then RESP. The keys are in; the replay skips over the RDB.
            crate::notice!("RDB has an AOF tail");
            crate::notice!("Reading the remaining AOF tail...");
            replay.skip_rdb = true;
        }
        let reader =
            AofReader::open(&f.path).map_err(|source| fatal(&LoadError::Io { file: lf.name.clone(), source }))?;
        let report = load::load_one(&lf, reader, f.is_last, opts, replay).map_err(|e| fatal(&e))?;
        if let (Some((r, _)), false) = (&report.rdb, replay.skip_rdb) {
            log_rdb(r);
        }
        replay.skip_rdb = false;
        if let Some(t) = &report.torn {
            cut_torn_tail(t)?;
            torn = Some(t.clone());
        }
        done_bytes += f.size;
        progress(server, done_bytes);
        if let Some(pool) = replay.pool.as_mut() {
            // The time logged covers the file's commands, not only their parsing.
            pool.barrier();
        }
        crate::notice!("DB loaded from {kind} file {}: {:.3} seconds", lf.name, secs(started));
    }
    Ok(torn)
}

/// Whether the file starts like an RDB (what the loader sniffs; `VALKEY` too).
fn starts_with_rdb(path: &Path) -> bool {
    let mut head = [0u8; 6];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    head[..n].starts_with(b"REDIS") || head[..n].starts_with(b"VALKEY")
}

fn secs(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

fn progress(server: &Server, loaded: u64) {
    server.persist.loading_loaded_bytes.store(loaded, Ordering::Relaxed);
}

/// Redis's lines for the RDB part of an AOF file.
fn log_rdb(report: &LoadReport) {
    if let Some(v) = report.aux("redis-ver") {
        crate::notice!("Loading RDB produced by version {}", String::from_utf8_lossy(v));
    }
    if let Some(ctime) = report.aux("ctime").and_then(engine::util::parse_i64) {
        crate::notice!("RDB age {} seconds", (unix_ms() / 1000 - ctime).max(0));
    }
    if let Some(mem) = report.aux("used-mem").and_then(engine::util::parse_i64) {
        crate::notice!("RDB memory usage when created {:.2} Mb", mem as f64 / (1024.0 * 1024.0));
    }
    if report.is_aof_base() {
        crate::notice!("RDB is base AOF");
    }
    for w in report.warnings() {
        crate::warning!("{w}");
    }
    crate::notice!("Done loading RDB, keys loaded: {}, keys expired: {}.", report.keys_loaded, report.expired_dropped);
}

/// Logs the torn tail as Redis does and truncates the file there (fsynced).
fn cut_torn_tail(t: &TornTail) -> Result<(), String> {
    if t.damage.kind == DamageKind::EofInMulti {
        crate::warning!("Revert incomplete MULTI/EXEC transaction in AOF file {}", t.name);
    }
    crate::warning!("!!! Warning: short read while loading the AOF file {}!!!", t.name);
    crate::warning!("!!! Truncating the AOF {} at offset {} !!!", t.name, t.offset);
    if let Err(e) = load::truncate_file(&t.path, t.offset) {
        return Err(format!(
            "Error truncating the AOF file {}: {}. Make a backup of the AOF directory, then run `moon-aof-tool check --fix` on its manifest",
            t.name,
            crate::aof::strerror(&e)
        ));
    }
    crate::warning!("AOF {} loaded anyway because aof-load-truncated is enabled", t.name);
    Ok(())
}

/// The text of a fatal load error: the engine's message (file, offset, advice).
pub fn fatal(e: &LoadError) -> String {
    format!("{e}")
}

/// How often (in commands) replay updates `loading_loaded_bytes` itself.
const PROGRESS_EVERY: u64 = 256;

/// The size of `argv` as one RESP multibulk.
fn resp_len(argv: &[Bytes]) -> u64 {
    resp_len_of(argv.iter().map(|a| a.len()))
}

/// The size as one RESP multibulk of arguments of these lengths.
fn resp_len_of(lens: impl ExactSizeIterator<Item = usize>) -> u64 {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as u64 + 1;
    let argc = lens.len();
    let args: u64 = lens.map(|n| 1 + digits(n) + 2 + n as u64 + 2).sum();
    1 + digits(argc) + 2 + args
}

/// Blocking pops: replayed in their non-blocking form. Redis logs them as LPOP/ZPOPMIN ..., so these
/// appear only in hand-written files.
fn is_blocking_pop(name: &str) -> bool {
    matches!(name, "blpop" | "brpop" | "brpoplpush" | "blmove" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop")
}

/// The replay client and where it runs.
struct Replay<'v, 's> {
    server: &'s Server,
    client: Client,
    held: Option<&'v mut LockedShards<'s>>,
    /// The RDB at the start of the current file is already loaded: validate and skip it.
    skip_rdb: bool,
    discard: Discard,
    /// Bytes of the files before the current one, and of the current one replayed so far (for
    /// `loading_loaded_bytes`).
    base_offset: u64,
    estimate: u64,
    /// The hidden `key-load-delay`, applied per replayed command too so tests can watch a load.
    delay: i64,
    paced: u64,
    commands: u64,
    errors: Errors,
    /// The per-shard workers, at start-up.
    pool: Option<Pool>,
}

/// A client with no connection: authenticated, DB 0, RESP2, not in the registry.
pub(super) fn replay_client() -> Client {
    let addr = SocketAddr::from(([0, 0, 0, 0], 0));
    let shared = Arc::new(Shared {
        id: 0,
        addr,
        laddr: addr,
        fd: -1,
        created_ms: unix_ms(),
        last_cmd_ms: AtomicI64::new(0),
        name: Mutex::new(None),
        db: AtomicU64::new(0),
        last_cmd: Mutex::new(""),
        killed: AtomicBool::new(false),
        subs: AtomicU64::new(0),
        psubs: AtomicU64::new(0),
        flags: Mutex::new(String::new()),
    });
    Client::new(shared, true)
}

impl<'v, 's> Replay<'v, 's> {
    fn new(server: &'s Server, held: Option<&'v mut LockedShards<'s>>) -> Self {
        Replay {
            server,
            client: replay_client(),
            held,
            skip_rdb: false,
            discard: Discard,
            base_offset: 0,
            estimate: 0,
            delay: crate::bgsave::key_delay(server, "key-load-delay"),
            paced: 0,
            commands: 0,
            errors: Errors::default(),
            pool: None,
        }
    }

    /// Per command: the clock, the count, `loading_loaded_bytes` between the loader's own progress calls
    /// (estimated from the command's RESP size; annotations are not counted), and `key-load-delay`.
    fn pace(&mut self, bytes: u64) {
        self.client.tick_clock();
        self.commands += 1;
        self.estimate += bytes;
        if self.delay != 0 || self.commands.is_multiple_of(PROGRESS_EVERY) {
            progress(self.server, self.base_offset + self.estimate);
        }
        if self.delay > 0 {
            std::thread::sleep(Duration::from_micros(self.delay as u64));
        } else if self.delay < 0 {
            self.paced += 1;
            if self.paced.is_multiple_of(self.delay.unsigned_abs()) {
                std::thread::sleep(Duration::from_micros(1));
            }
        }
    }

    fn note(&mut self, reply: &Reply) {
        self.errors.note(self.commands, reply);
    }

    /// Waits for the workers (if any) to run everything queued: what comes next may see any shard.
    fn barrier(&mut self) {
        if let Some(pool) = self.pool.as_mut() {
            pool.barrier();
        }
    }

    /// One command (already paced) on its shard's worker, or here after a barrier when it needs one.
    fn command_spec(&mut self, spec: &'static CommandSpec, argv: &[Bytes]) {
        if let Some(pool) = self.pool.as_mut() {
            if spec.arity_ok(argv.len()) {
                match replay_par::route(self.server, spec, argv) {
                    Route::Shard(shard) => {
                        pool.push(shard, self.commands, self.client.db, spec, argv.iter().map(|a| &a[..]));
                        return;
                    }
                    Route::Local => {}
                    Route::Barrier => pool.barrier(),
                }
            }
        }
        if let Some(reply) = self.run_one(spec, argv) {
            self.note(&reply);
        }
    }

    /// One command, in the held view or with its own locks. `None` when it is not replayed.
    fn run_one(&mut self, spec: &'static CommandSpec, argv: &[Bytes]) -> Option<Reply> {
        if !spec.arity_ok(argv.len()) {
            return Some(cmd::arity_error(spec.name));
        }
        let (server, client) = (self.server, &mut self.client);
        match (spec.handler, self.held.as_deref_mut()) {
            (Handler::Engine(_), Some(view)) => Some(crate::dispatch::exec_in_view(server, client, view, spec, argv)),
            (Handler::Engine(_), None) => Some(crate::dispatch::run_data_command(server, client, spec, argv)),
            (Handler::Server, Some(view)) if is_blocking_pop(spec.name) => {
                Some(crate::commands::run_in_exec(server, client, view, spec, argv))
            }
            (Handler::Server, None) if is_blocking_pop(spec.name) => {
                let mut view = crate::dispatch::lock_for(server, spec, argv);
                Some(crate::commands::run_in_exec(server, client, &mut view, spec, argv))
            }
            (Handler::Server, _) => None,
        }
    }
}

impl LoadTarget for Replay<'_, '_> {
    fn resize(&mut self, db: usize, keys: u64, _expires: u64) {
        self.barrier();
        match self.held.as_deref_mut() {
            Some(view) => crate::persist::presize(view, db, keys),
            None => crate::persist::presize(&mut self.server.shards.lock_all(), db, keys),
        }
    }

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        self.barrier();
        match self.held.as_deref_mut() {
            Some(view) => crate::persist::insert_loaded(view, db, key, value, expire_at, false),
            None => {
                let shards = &self.server.shards;
                let mut view = shards.lock_single(shards.shard_of(key));
                crate::persist::insert_loaded(&mut view, db, key, value, expire_at, false)
            }
        }
    }
}

impl Replayer for Replay<'_, '_> {
    fn start_file(&mut self, _file: &LoadFile) {
        self.estimate = 0;
        self.client.db = 0;
        self.client.shared.db.store(0, Ordering::Relaxed);
        self.client.multi = None;
    }

    fn rdb_target(&mut self) -> &mut dyn LoadTarget {
        if self.skip_rdb {
            &mut self.discard
        } else {
            self
        }
    }

    fn command(&mut self, argv: &[Bytes]) -> Result<(), ReplayError> {
        // The loader has checked the name against the command table.
        if let Some(spec) = argv.first().and_then(|n| cmd::lookup(n)) {
            self.pace(resp_len(argv));
            self.command_spec(spec, argv);
        }
        Ok(())
    }

    fn command_raw(&mut self, spec: &'static CommandSpec, args: RawArgs<'_>) -> Result<(), ReplayError> {
        self.pace(resp_len_of(args.iter().map(<[u8]>::len)));
        // Most commands of a log name one key: straight to its shard's queue, which copies the arguments.
        if let Some(pool) = self.pool.as_mut() {
            if let Some(shard) = replay_par::route_single_key(self.server, spec, args) {
                pool.push(shard, self.commands, self.client.db, spec, args.iter());
                return Ok(());
            }
        }
        self.command_spec(spec, &args.to_bytes());
        Ok(())
    }

    fn transaction(&mut self, commands: &[Vec<Bytes>]) -> Result<(), ReplayError> {
        // MULTI and EXEC: 15 and 14 bytes.
        self.pace(commands.iter().map(|argv| resp_len(argv)).sum::<u64>() + 29);
        self.commands += commands.len().saturating_sub(1) as u64;
        self.barrier();
        let reply = match self.held.as_deref_mut() {
            None => {
                // Exactly what EXEC does for a client: every shard the block touches held throughout.
                self.client.multi = Some(commands.to_vec());
                self.client.multi_failed = false;
                crate::dispatch::exec(self.server, &mut self.client)
            }
            Some(_) => {
                crate::aof::begin_exec();
                let mut replies = Vec::with_capacity(commands.len());
                for argv in commands {
                    if let Some(spec) = argv.first().and_then(|n| cmd::lookup(n)) {
                        let r = match (spec.handler, self.held.as_deref_mut()) {
                            (Handler::Server, Some(view)) if spec.arity_ok(argv.len()) => {
                                crate::commands::run_in_exec(self.server, &mut self.client, view, spec, argv)
                            }
                            _ => self.run_one(spec, argv).unwrap_or(Reply::Nil),
                        };
                        replies.push(r);
                    }
                }
                crate::aof::end_exec(self.server);
                Reply::Array(replies)
            }
        };
        self.note(&reply);
        Ok(())
    }

    fn progress(&mut self, _file: &LoadFile, offset: u64) {
        self.estimate = self.estimate.max(offset);
        progress(self.server, self.base_offset + offset);
    }
}
