//! Loading a whole input into a keyspace through the engine's loader (the server's code path), for the
//! digest (`check --digest`, `--expect`), `compact` and `migrate`'s verification; and [`KeyCheck`], the RDB
//! target `check` validates into without keeping values.

use crate::input::Input;
use crate::out::Ui;
use anyhow::{Context, Result};
use engine::aof::dir::{AofDir, AofOptions};
use engine::aof::load::{load_files, KeyspaceReplayer, LoadFile, LoadOptions, LoadSummary, ReplayError, Replayer};
use engine::aof::manifest::AofKind;
use engine::aof::RecoveryPolicy;
use engine::config::EngineConfig;
use engine::digest::{dataset_digest, to_hex};
use engine::keyspace::Keyspace;
use engine::rdb::{self, LoadReport, LoadTarget, RdbError};
use engine::types::Value;
use indicatif::ProgressBar;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A loaded dataset.
pub struct Loaded {
    pub ks: Keyspace,
    /// For AOF inputs: what each file held.
    pub summary: Option<LoadSummary>,
    /// For an RDB input.
    pub rdb: Option<LoadReport>,
}

impl Loaded {
    pub fn digest(&self) -> String {
        to_hex(&dataset_digest(&self.ks))
    }

    /// Every RDB report (an RDB input, or the RDB part of each AOF file).
    pub fn rdb_reports(&self) -> Vec<&LoadReport> {
        let mut v: Vec<&LoadReport> = self.rdb.iter().collect();
        if let Some(s) = &self.summary {
            v.extend(s.files.iter().filter_map(|f| f.rdb.as_ref().map(|(r, _)| r)));
        }
        v
    }

    /// Data the keyspace could not hold (streams, module values): rewriting it would lose them.
    pub fn skipped(&self) -> u64 {
        self.rdb_reports().iter().map(|r| r.streams_skipped + r.modules_skipped + r.module_aux_skipped).sum()
    }

    /// Function libraries found in RDB parts.
    pub fn functions(&self) -> Vec<Box<[u8]>> {
        self.rdb_reports().iter().flat_map(|r| r.functions.iter().cloned()).collect()
    }
}

/// Forwards to [`KeyspaceReplayer`] and moves a progress bar.
struct ProgressReplayer<'a> {
    inner: KeyspaceReplayer<'a>,
    bar: ProgressBar,
    sizes: Vec<u64>,
    index: usize,
    done: u64,
}

impl Replayer for ProgressReplayer<'_> {
    fn start_file(&mut self, file: &LoadFile) {
        if self.index > 0 {
            self.done += self.sizes.get(self.index - 1).copied().unwrap_or(0);
        }
        self.index += 1;
        self.bar.set_position(self.done);
        self.inner.start_file(file);
    }
    fn rdb_target(&mut self) -> &mut dyn LoadTarget {
        self.inner.rdb_target()
    }
    fn command(&mut self, argv: &[bytes::Bytes]) -> Result<(), ReplayError> {
        self.inner.command(argv)
    }
    fn transaction(&mut self, commands: &[Vec<bytes::Bytes>]) -> Result<(), ReplayError> {
        self.inner.transaction(commands)
    }
    fn progress(&mut self, _file: &LoadFile, offset: u64) {
        self.bar.set_position(self.done + offset);
    }
}

/// Loads AOF files (in order) with `policy`. `Ok(Err(msg))` when the data is damaged.
pub fn load_aof_files(ui: &Ui, files: &[LoadFile], policy: RecoveryPolicy) -> Result<Result<Loaded, String>> {
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len())).collect();
    let total: u64 = sizes.iter().sum();
    let bar = ui.bytes_bar(total, "loading");
    let opts = LoadOptions::new(policy, cfg.clone());
    let mut rep = ProgressReplayer { inner: KeyspaceReplayer::new(&mut ks, &cfg), bar, sizes, index: 0, done: 0 };
    let result = load_files(files, &opts, &mut rep);
    rep.bar.finish_and_clear();
    drop(rep);
    match result {
        Ok(summary) => Ok(Ok(Loaded { ks, summary: Some(summary), rdb: None })),
        Err(engine::aof::load::LoadError::Io { file, source }) => {
            Err(anyhow::Error::new(source).context(format!("can't read {file}")))
        }
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Loads an RDB file as redis-server loads a `dump.rdb` at start-up (keys already expired are dropped).
pub fn load_rdb(ui: &Ui, path: &Path) -> Result<Result<Loaded, String>> {
    let bar = ui.spinner("loading RDB");
    let bytes = std::fs::read(path).with_context(|| format!("can't read {}", path.display()))?;
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let opts = rdb::LoadOptions { drop_expired_before_ms: Some(now_ms()), ..rdb::LoadOptions::default() };
    let r = rdb::load(&bytes, &opts, &mut ks);
    bar.finish_and_clear();
    Ok(match r {
        Ok(report) => Ok(Loaded { ks, summary: None, rdb: Some(report) }),
        Err(e) => Err(e.to_string()),
    })
}

/// The files a directory loads, in order (`Ok(Err)` when the manifest or a file is wrong).
pub fn dir_files(paths: &engine::aof::dir::AofPaths) -> Result<Result<Vec<LoadFile>, String>> {
    let dir = match AofDir::open(paths.clone(), AofOptions::default()) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e.to_string())),
    };
    Ok(dir.load_plan().map(|p| p.load_files()).map_err(|e| e.to_string()))
}

/// Loads any input strictly (a torn tail is an error too).
pub fn load_input(ui: &Ui, input: &Input) -> Result<Result<Loaded, String>> {
    match input {
        Input::Dir(paths) => match dir_files(paths)? {
            Ok(files) => load_aof_files(ui, &files, RecoveryPolicy::Strict),
            Err(e) => Ok(Err(e)),
        },
        Input::SingleAof { path, .. } => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let file = LoadFile { path: path.clone(), name, kind: AofKind::Base };
            load_aof_files(ui, &[file], RecoveryPolicy::Strict)
        }
        Input::Rdb(path) => load_rdb(ui, path),
    }
}

/// 64-bit hash of a key (stable, only used inside one run).
pub fn key_hash(seed: u8, db: usize, key: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    seed.hash(&mut h);
    db.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// An RDB target for `check`: counts keys, expiries and keys already expired, and detects duplicate keys
/// (as loading into a real keyspace would) from a 128-bit hash of each key, without keeping values.
#[derive(Default)]
pub struct KeyCheck {
    seen: HashSet<u128>,
    pub now_ms: i64,
    pub keys: u64,
    pub expires: u64,
    pub already_expired: u64,
}

impl KeyCheck {
    pub fn new(now_ms: i64) -> KeyCheck {
        KeyCheck { now_ms, ..KeyCheck::default() }
    }
}

impl LoadTarget for KeyCheck {
    fn resize(&mut self, _db: usize, keys: u64, _expires: u64) {
        self.seen.reserve(usize::try_from(keys).unwrap_or(0).min(1 << 24));
    }

    fn insert(&mut self, db: usize, key: Box<[u8]>, _value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        let h = (u128::from(key_hash(1, db, &key)) << 64) | u128::from(key_hash(2, db, &key));
        if !self.seen.insert(h) {
            return Err(RdbError::duplicate_key(&key));
        }
        self.keys += 1;
        if let Some(at) = expire_at {
            self.expires += 1;
            if at < self.now_ms {
                self.already_expired += 1;
            }
        }
        Ok(())
    }
}

/// Validates an RDB held in memory: decoded in parallel (one thread per core, keys routed by hash) when it
/// is big enough to gain from it. Returns the report and the counts.
pub fn validate_rdb(bytes: &[u8]) -> Result<(LoadReport, KeyCheck), RdbError> {
    let opts = rdb::LoadOptions::default();
    let now = now_ms();
    let threads = rayon::current_num_threads().clamp(1, 16);
    if bytes.len() < (1 << 20) || threads == 1 {
        let mut t = KeyCheck::new(now);
        let r = rdb::load(bytes, &opts, &mut t)?;
        return Ok((r, t));
    }
    let mut targets: Vec<KeyCheck> = (0..threads).map(|_| KeyCheck::new(now)).collect();
    let route = |k: &[u8]| key_hash(0, 0, k) as usize;
    let report = {
        let mut refs: Vec<&mut dyn rdb::ShardTarget> =
            targets.iter_mut().map(|t| t as &mut dyn rdb::ShardTarget).collect();
        rdb::load_sharded(bytes, &opts, &route, &mut refs)?
    };
    let mut sum = KeyCheck::new(now);
    for t in targets {
        sum.keys += t.keys;
        sum.expires += t.expires;
        sum.already_expired += t.already_expired;
    }
    Ok((report, sum))
}
