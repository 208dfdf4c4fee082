//! `inspect --keys` on AOF inputs, in memory bounded by what the RESP part writes rather than by the dataset.
//!
//! A key of the RDB base is final unless a later command names it, so the listing reads the files twice:
//! 1. [`scan`]: every RESP command of every file is parsed (not run) and what it may change is collected
//!    ([`Touched`]): the keys it names in its database (the command table's key positions, as `COMMAND
//!    GETKEYS`), whole databases for FLUSHDB, FLUSHALL and SWAPDB, and for MOVE and COPY (which reach another
//!    database) the key in every database.
//! 2. [`list`]: the files are loaded again through the engine's loader (the server's code path, so the same
//!    errors): a key of the RDB base that nothing touches is printed as it is decoded and dropped; touched
//!    keys go into a small keyspace where the RESP commands are replayed, and are printed at the end.
//!
//! Memory is the touched-key set plus the touched keys' values, whatever the size of the base; the RDB's
//! bytes are also held while it is decoded (the stream reader reads an RDB part whole). A RESP base touches
//! every key it holds, so with one the whole dataset is in memory, as a replay needs. Untouched keys come
//! out in file order, then the touched ones. `inspect` does not validate: a key the base holds twice is
//! listed twice (`check` reports it).

use crate::inspect::{key_line, size_of};
use anyhow::{Context, Result};
use bytes::Bytes;
use engine::aof::load::{load_files, LoadFile, LoadOptions, ReplayError, Replayer};
use engine::aof::stream::{AofReader, CommandKind, Event, ReadError};
use engine::aof::RecoveryPolicy;
use engine::cmd::{self, spec::flags, Ctx};
use engine::config::EngineConfig;
use engine::keyspace::Keyspace;
use engine::rdb::{LoadTarget, RdbError};
use engine::types::Value;
use std::collections::{BTreeSet, HashMap, HashSet};

/// What the RESP part of the files may change.
#[derive(Debug, Default)]
pub struct Touched {
    /// Every key of every database (FLUSHALL, an RDB part after the first file, a write that visits every
    /// key the table does not describe).
    all: bool,
    /// Whole databases (FLUSHDB, SWAPDB).
    dbs: BTreeSet<usize>,
    /// Keys by database.
    keys: HashMap<usize, HashSet<Box<[u8]>>>,
    /// Keys in any database (MOVE, COPY ... DB).
    any_db: HashSet<Box<[u8]>>,
}

impl Touched {
    pub fn contains(&self, db: usize, key: &[u8]) -> bool {
        self.all
            || self.dbs.contains(&db)
            || self.any_db.contains(key)
            || self.keys.get(&db).is_some_and(|k| k.contains(key))
    }

    /// Distinct keys named (not counting whole databases).
    pub fn named(&self) -> usize {
        self.keys.values().map(HashSet::len).sum::<usize>() + self.any_db.len()
    }

    fn command(&mut self, db: &mut usize, argv: &[Bytes]) {
        let Some(spec) = argv.first().and_then(|n| cmd::lookup(n)) else {
            return; // the loader refuses it in pass 2
        };
        let db_arg = |i: usize| argv.get(i).and_then(|a| std::str::from_utf8(a).ok()?.parse::<usize>().ok());
        let keys = || spec.key_indexes(argv).into_iter().filter_map(|i| argv.get(i));
        match spec.name {
            "select" => *db = db_arg(1).unwrap_or(*db),
            "flushall" => self.all = true,
            "flushdb" => {
                self.dbs.insert(*db);
            }
            "swapdb" => match (db_arg(1), db_arg(2)) {
                (Some(a), Some(b)) => self.dbs.extend([a, b]),
                _ => self.all = true,
            },
            "move" | "copy" => self.any_db.extend(keys().map(|k| Box::<[u8]>::from(&k[..]))),
            _ if spec.is_write() && spec.has(flags::ALL_SHARDS) => self.all = true,
            _ => self.keys.entry(*db).or_default().extend(keys().map(|k| Box::<[u8]>::from(&k[..]))),
        }
    }
}

/// Pass 1: what the RESP part of `files` touches. `Ok(Err)` when a file is damaged (the load in pass 2
/// would fail too; its message is the one to show).
pub fn scan(files: &[LoadFile]) -> Result<std::result::Result<Touched, String>> {
    let mut t = Touched::default();
    for (i, file) in files.iter().enumerate() {
        let mut r = AofReader::open(&file.path).with_context(|| format!("can't open {}", file.path.display()))?;
        // Each file starts in DB 0, as the loader's replay client does.
        let mut db = 0usize;
        loop {
            match r.next_event() {
                Ok(None) => break,
                Ok(Some(Event::Annotation(_))) => {}
                Ok(Some(Event::Command(c))) => {
                    if c.kind == CommandKind::Plain {
                        t.command(&mut db, &c.argv);
                    }
                }
                Err(ReadError::Io(e)) => return Err(e).with_context(|| format!("can't read {}", file.path.display())),
                Err(e) => return Ok(Err(format!("{}: {e}", file.name))),
            }
        }
        // Keys of an RDB part in a later file would meet the earlier ones: load everything then.
        if i > 0 && r.rdb_end().is_some() {
            t.all = true;
        }
    }
    Ok(Ok(t))
}

/// How the keys were listed.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Listing {
    /// Keys printed.
    pub listed: u64,
    /// Of those, keys of the RDB base printed as decoded, never held.
    pub streamed: u64,
    /// Keys held in memory at the end (the touched ones that exist).
    pub held: u64,
    /// Distinct keys the RESP part names.
    pub touched: u64,
}

/// Pass 2's replayer: streams untouched RDB keys, keeps and replays the rest.
struct Lister<'a> {
    touched: &'a Touched,
    ks: Keyspace,
    cfg: EngineConfig,
    db: usize,
    json: bool,
    now: i64,
    streamed: u64,
}

impl LoadTarget for Lister<'_> {
    fn resize(&mut self, _db: usize, _keys: u64, _expires: u64) {}

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        if self.touched.contains(db, key) {
            return LoadTarget::insert(&mut self.ks, db, key, value, expire_at);
        }
        self.streamed += 1;
        key_line(self.json, db, key, value.type_name(), size_of(&value), expire_at.map(|a| a.saturating_sub(self.now)));
        Ok(())
    }
}

impl Lister<'_> {
    /// As `engine::aof::load::KeyspaceReplayer` (loading: no lazy expiry); error replies are ignored, as
    /// Redis does while loading.
    fn run(&mut self, argv: &[Bytes]) {
        let mut ctx = Ctx::new(&mut self.ks, &self.cfg, crate::dataset::now_ms());
        ctx.db = self.db;
        ctx.loading = true;
        cmd::execute(&mut ctx, argv);
        self.db = ctx.db;
    }
}

impl Replayer for Lister<'_> {
    fn start_file(&mut self, _file: &LoadFile) {
        self.db = 0;
    }
    fn rdb_target(&mut self) -> &mut dyn LoadTarget {
        self
    }
    fn command(&mut self, argv: &[Bytes]) -> std::result::Result<(), ReplayError> {
        self.run(argv);
        Ok(())
    }
    fn transaction(&mut self, commands: &[Vec<Bytes>]) -> std::result::Result<(), ReplayError> {
        for argv in commands {
            self.run(argv);
        }
        Ok(())
    }
}

/// Lists the keys of `files` (strictly loaded: a torn tail is an error). `Ok(Err)` when they do not load;
/// keys may have been printed before the error was found.
pub fn list(files: &[LoadFile], json: bool) -> Result<std::result::Result<Listing, String>> {
    let touched = match scan(files)? {
        Ok(t) => t,
        Err(msg) => return Ok(Err(msg)),
    };
    let cfg = EngineConfig::default();
    let opts = LoadOptions::new(RecoveryPolicy::Strict, cfg.clone());
    let now = crate::dataset::now_ms();
    let mut lister = Lister { touched: &touched, ks: Keyspace::new(cfg.databases), cfg, db: 0, json, now, streamed: 0 };
    match load_files(files, &opts, &mut lister) {
        Ok(_) => {}
        Err(engine::aof::load::LoadError::Io { file, source }) => {
            return Err(anyhow::Error::new(source).context(format!("can't read {file}")))
        }
        Err(e) => return Ok(Err(e.to_string())),
    }
    let mut held = 0u64;
    for (db, d) in lister.ks.dbs.iter().enumerate() {
        for e in d.table.iter() {
            held += 1;
            let ttl = e.has_expire().then(|| e.expire_at().saturating_sub(now));
            key_line(json, db, e.key(), e.value.type_name(), size_of(&e.value), ttl);
        }
    }
    let streamed = lister.streamed;
    Ok(Ok(Listing { listed: streamed + held, streamed, held, touched: touched.named() as u64 }))
}
