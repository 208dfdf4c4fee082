//! Loading a whole input into a keyspace through the engine's loader (the server's code path), for the
//! digest (`check --digest`, `--expect`), `compact` and `migrate`'s verification; and [`KeyCheck`], the RDB
//! target `check` validates into without keeping values.

use crate::input::Input;
use crate::out::Ui;
use crate::shards::{Shards, ShardsReplayer};
use anyhow::{Context, Result};
use engine::aof::dir::{AofDir, AofOptions};
use engine::aof::load::{load_files, LoadFile, LoadOptions, LoadSummary, ReplayError, Replayer};
use engine::aof::manifest::AofKind;
use engine::aof::RecoveryPolicy;
use engine::config::EngineConfig;
use engine::digest::{fold_databases, key_share, to_hex, xor_into, Digest};
use engine::keyspace::Store;
use engine::rdb::{self, LoadReport, LoadTarget, RdbError};
use engine::table::Entry;
use engine::types::Value;
use indicatif::ProgressBar;
use rayon::prelude::*;
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
    pub ks: Shards,
    /// For AOF inputs: what each file held (without the RDB base when it was decoded on every core).
    pub summary: Option<LoadSummary>,
    /// An RDB base decoded on every core.
    pub base: Option<LoadReport>,
    /// For an RDB input.
    pub rdb: Option<LoadReport>,
}

impl Loaded {
    /// DEBUG DIGEST, computed on all cores.
    pub fn digest(&self) -> String {
        digest_entries(&entries_by_db(&self.ks))
    }

    /// Every RDB report (an RDB input, or the RDB part of each AOF file).
    pub fn rdb_reports(&self) -> Vec<&LoadReport> {
        let mut v: Vec<&LoadReport> = self.rdb.iter().chain(self.base.iter()).collect();
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

/// Forwards to [`ShardsReplayer`] and moves a progress bar.
struct ProgressReplayer<'a> {
    inner: ShardsReplayer<'a>,
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

/// Decodes `file` on every core when it is an RDB and nothing else (the usual `.base.rdb`). `None` when it
/// is not, or when it does not load: the sequential loader then goes over it again, for its exact error.
fn parallel_base(file: &LoadFile, shards: &mut Shards, cfg: &EngineConfig) -> Result<Option<LoadReport>> {
    if file.kind != AofKind::Base || !crate::input::head(&file.path, 8).is_ok_and(|h| crate::input::is_rdb_magic(&h)) {
        return Ok(None);
    }
    let bytes = std::fs::read(&file.path).with_context(|| format!("can't read {}", file.path.display()))?;
    let opts = rdb::LoadOptions { drop_expired_before_ms: None, cfg: cfg.clone(), ..rdb::LoadOptions::default() };
    Ok(match shards.load_rdb(&bytes, &opts) {
        Ok(r) if r.bytes_consumed == bytes.len() => Some(r),
        _ => {
            *shards = Shards::per_core(cfg.databases);
            None
        }
    })
}

/// Loads AOF files (in order) with `policy`. `Ok(Err(msg))` when the data is damaged. An RDB base is decoded
/// on every core; the RESP that follows replays through the engine's loader.
pub fn load_aof_files(ui: &Ui, files: &[LoadFile], policy: RecoveryPolicy) -> Result<Result<Loaded, String>> {
    let cfg = EngineConfig::default();
    let mut ks = Shards::per_core(cfg.databases);
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len())).collect();
    let total: u64 = sizes.iter().sum();
    let bar = ui.bytes_bar(total, "loading");
    let base = match files.first() {
        Some(f) => parallel_base(f, &mut ks, &cfg)?,
        None => None,
    };
    let rest = if base.is_some() { &files[1..] } else { files };
    let done = if base.is_some() { sizes[0] } else { 0 };
    let sizes = if base.is_some() { sizes[1..].to_vec() } else { sizes };
    bar.set_position(done);
    let opts = LoadOptions::new(policy, cfg.clone());
    let mut rep = ProgressReplayer { inner: ShardsReplayer::new(&mut ks, &cfg), bar, sizes, index: 0, done };
    let result = load_files(rest, &opts, &mut rep);
    rep.bar.finish_and_clear();
    drop(rep);
    match result {
        Ok(summary) => Ok(Ok(Loaded { ks, summary: Some(summary), base, rdb: None })),
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
    let mut ks = Shards::per_core(cfg.databases);
    let opts = rdb::LoadOptions { drop_expired_before_ms: Some(now_ms()), ..rdb::LoadOptions::default() };
    let r = ks.load_rdb(&bytes, &opts);
    bar.finish_and_clear();
    Ok(match r {
        Ok(report) => Ok(Loaded { ks, summary: None, base: None, rdb: Some(report) }),
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

    fn insert(&mut self, db: usize, key: &[u8], _value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        let h = (u128::from(key_hash(1, db, key)) << 64) | u128::from(key_hash(2, db, key));
        if !self.seen.insert(h) {
            return Err(RdbError::duplicate_key(key));
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
        rdb::load_sharded(bytes, &opts, &route, &mut refs, &|_| {})?
    };
    let mut sum = KeyCheck::new(now);
    for t in targets {
        sum.keys += t.keys;
        sum.expires += t.expires;
        sum.already_expired += t.already_expired;
    }
    Ok((report, sum))
}

/// Every entry of each database (`Keyspace` is not `Sync`, its entries are: they can be digested on other
/// threads while this one writes them out).
pub fn entries_by_db(ks: &Shards) -> Vec<Vec<&Entry<Value>>> {
    (0..ks.num_dbs()).map(|db| ks.entries(db).collect()).collect()
}

/// [`engine::digest::dataset_digest`] of these entries (see [`entries_by_db`]), digested on all cores: each
/// database's entries are split into chunks whose XORs are combined.
pub fn digest_entries(dbs: &[Vec<&Entry<Value>>]) -> String {
    let per_db = dbs.iter().map(|entries| {
        if entries.is_empty() {
            return None;
        }
        let xor = entries
            .par_chunks(4096)
            .map(|chunk| {
                let mut acc = [0u8; 20];
                for e in chunk {
                    xor_into(&mut acc, &key_share(e.key(), &e.value, e.has_expire()));
                }
                acc
            })
            .reduce(
                || [0u8; 20],
                |mut a, b| {
                    xor_into(&mut a, &b);
                    a
                },
            );
        Some(xor)
    });
    to_hex(&fold_databases(per_db.collect::<Vec<_>>()))
}

/// A [`LoadTarget`] that keeps no key: it XORs each key's digest share into its database's slot and adds
/// the key to a [`Fingerprint`], so an RDB is checked as it is decoded (`compact`'s verification).
#[derive(Default)]
struct VerifyTarget {
    dbs: Vec<Option<Digest>>,
    fingerprint: Fingerprint,
}

impl LoadTarget for VerifyTarget {
    fn resize(&mut self, _db: usize, _keys: u64, _expires: u64) {}

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        if self.dbs.len() <= db {
            self.dbs.resize(db + 1, None);
        }
        xor_into(self.dbs[db].get_or_insert([0u8; 20]), &key_share(key, &value, expire_at.is_some()));
        self.fingerprint.add(db, key, &value, expire_at);
        Ok(())
    }
}

/// The DEBUG DIGEST and [`Fingerprint`] an AOF base holding exactly this RDB loads to (expired keys kept),
/// decoded on all cores without building a keyspace. Trailing bytes after the RDB are an error here (the
/// caller wrote a pure RDB base).
pub fn rdb_digest(bytes: &[u8]) -> Result<(String, Fingerprint), RdbError> {
    let threads = rayon::current_num_threads().clamp(1, 16);
    let mut targets: Vec<VerifyTarget> = (0..threads).map(|_| VerifyTarget::default()).collect();
    let route = |k: &[u8]| key_hash(0, 0, k) as usize;
    let report = {
        let mut refs: Vec<&mut dyn rdb::ShardTarget> =
            targets.iter_mut().map(|t| t as &mut dyn rdb::ShardTarget).collect();
        rdb::load_sharded(bytes, &rdb::LoadOptions::default(), &route, &mut refs, &|_| {})?
    };
    if report.bytes_consumed != bytes.len() {
        let extra = bytes.len() - report.bytes_consumed;
        let kind = rdb::ErrorKind::BadValue(format!("{extra} bytes after the end of the RDB"));
        return Err(RdbError::new(kind, report.bytes_consumed));
    }
    let dbs = targets.iter().map(|t| t.dbs.len()).max().unwrap_or(0);
    let per_db = (0..dbs).map(|db| {
        let mut acc: Option<Digest> = None;
        for t in &targets {
            if let Some(Some(x)) = t.dbs.get(db) {
                xor_into(acc.get_or_insert([0u8; 20]), x);
            }
        }
        acc
    });
    let digest = to_hex(&fold_databases(per_db));
    Ok((digest, targets.iter().fold(Fingerprint::default(), |a, t| a.merge(t.fingerprint))))
}

/// An order-independent fingerprint of a dataset, much cheaper than the DEBUG DIGEST (SipHash instead of
/// chained SHA1s) and stricter (exact expiry times and zset scores, not only whether a key has a TTL): the
/// wrapping sum over keys of a hash of (database, key, type, value, expiry). Unordered collections hash
/// their elements one by one and sum them, so encodings and iteration orders do not matter. For `compact`'s
/// check that the new base holds what was loaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub sum: u64,
    pub keys: u64,
}

/// Elements as plain bytes, whatever type the collection hands out (so that the hash is of the bytes).
fn bytes(b: &[u8]) -> &[u8] {
    b
}

fn hash_of<T: Hash + ?Sized>(seed: u64, t: &T) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    seed.hash(&mut h);
    t.hash(&mut h);
    h.finish()
}

impl Fingerprint {
    pub fn add(&mut self, db: usize, key: &[u8], value: &Value, expire_at: Option<i64>) {
        let mut h = std::hash::DefaultHasher::new();
        (db, key, value.type_name(), expire_at).hash(&mut h);
        match value {
            Value::Str(s) => s.with_bytes(|b| b.hash(&mut h)),
            Value::List(l) => {
                l.len().hash(&mut h);
                for item in l.iter() {
                    bytes(item).hash(&mut h);
                }
            }
            Value::Set(s) => {
                let mut sum = 0u64;
                s.for_each(|m| sum = sum.wrapping_add(hash_of(1, bytes(m))));
                (s.len(), sum).hash(&mut h);
            }
            Value::ZSet(z) => {
                let sum = z.iter().fold(0u64, |a, (m, score)| a.wrapping_add(hash_of(2, &(bytes(m), score.to_bits()))));
                (z.len(), sum).hash(&mut h);
            }
            Value::Hash(x) => {
                let sum = x.iter().fold(0u64, |a, (f, v)| a.wrapping_add(hash_of(3, &(bytes(f), bytes(v)))));
                (x.len(), sum).hash(&mut h);
            }
        }
        self.sum = self.sum.wrapping_add(h.finish());
        self.keys += 1;
    }

    pub fn merge(mut self, other: Fingerprint) -> Fingerprint {
        self.sum = self.sum.wrapping_add(other.sum);
        self.keys += other.keys;
        self
    }
}

/// The [`Fingerprint`] of these entries (see [`entries_by_db`]), on all cores.
pub fn fingerprint_entries(dbs: &[Vec<&Entry<Value>>]) -> Fingerprint {
    dbs.iter()
        .enumerate()
        .map(|(db, entries)| {
            entries
                .par_chunks(4096)
                .map(|chunk| {
                    let mut f = Fingerprint::default();
                    for e in chunk {
                        f.add(db, e.key(), &e.value, e.has_expire().then_some(e.expire_at()));
                    }
                    f
                })
                .reduce(Fingerprint::default, Fingerprint::merge)
        })
        .fold(Fingerprint::default(), Fingerprint::merge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shards::ShardsReplayer;
    use engine::aof::load::Replayer;
    use engine::rdb::{RdbWriter, WriteOptions};

    /// A dataset made by running `commands` (space-separated words) on 3 shards.
    fn dataset(commands: &[&str]) -> Shards {
        let cfg = EngineConfig::default();
        let mut shards = Shards::new(3, cfg.databases);
        let mut r = ShardsReplayer::new(&mut shards, &cfg);
        for c in commands {
            let argv: Vec<bytes::Bytes> = c.split(' ').map(|w| bytes::Bytes::copy_from_slice(w.as_bytes())).collect();
            r.command(&argv).unwrap();
        }
        shards
    }

    fn fingerprint(s: &Shards) -> Fingerprint {
        fingerprint_entries(&entries_by_db(s))
    }

    const DATA: &[&str] = &[
        "SET s hello",
        "SET n 12345",
        "RPUSH l a b c",
        "SADD set x y z",
        "SADD ints 1 2 3",
        "HSET h f1 v1 f2 v2",
        "ZADD z 1 a 2.5 b",
        "PEXPIREAT h 4102444800000",
        "SELECT 3",
        "SET s other",
    ];

    #[test]
    fn fingerprint_ignores_order_and_encoding_but_not_content() {
        let base = fingerprint(&dataset(DATA));
        assert_eq!(base.keys, 8);
        // The same data written in another order, with a set and a hash converted to their big encodings and
        // back to the same members.
        let other = [
            "SELECT 3",
            "SET s other",
            "SELECT 0",
            "ZADD z 2.5 b 1 a",
            "HSET h f2 v2 f1 v1",
            "PEXPIREAT h 4102444800000",
            "SADD ints 3 2 1",
            "SADD set z y x big1",
            "SREM set big1",
            "RPUSH l a b c",
            "SET n 12345",
            "SET s hello",
        ];
        assert_eq!(fingerprint(&dataset(&other)), base);
        // A different TTL (the digest only sees that there is one), score, list order, or database.
        let db0 = DATA.iter().position(|c| c.starts_with("SELECT")).unwrap();
        for change in [&["PEXPIREAT h 4102444800001"][..], &["ZADD z 2.25 b"], &["LPUSH l c", "RPOP l"]] {
            let mut d = DATA.to_vec();
            d.splice(db0..db0, change.iter().copied());
            assert_ne!(fingerprint(&dataset(&d)), base, "{change:?}");
        }
        let moved: Vec<&str> = DATA.iter().map(|c| if *c == "SELECT 3" { "SELECT 4" } else { c }).collect();
        assert_ne!(fingerprint(&dataset(&moved)), base);
    }

    #[test]
    fn rdb_digest_matches_the_loaded_data() {
        let data = dataset(DATA);
        let mut out = Vec::new();
        let mut w = RdbWriter::new(&mut out, WriteOptions::default());
        w.write_header(true).unwrap();
        for db in 0..data.num_dbs() {
            if data.db_len(db) > 0 {
                w.select_db(db, data.db_len(db) as u64, data.db_expires(db) as u64).unwrap();
                for e in data.entries(db) {
                    w.write_entry(e.key(), &e.value, e.has_expire().then_some(e.expire_at())).unwrap();
                }
            }
        }
        w.finish().unwrap();
        let (digest, f) = rdb_digest(&out).unwrap();
        assert_eq!(digest, to_hex(&engine::digest::dataset_digest(&data)));
        assert_eq!(digest, digest_entries(&entries_by_db(&data)));
        assert_eq!(f, fingerprint(&data));
        // Trailing bytes are refused; a flipped byte too.
        let mut longer = out.clone();
        longer.push(b'x');
        assert!(rdb_digest(&longer).is_err());
        let mut flipped = out.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x20;
        assert!(rdb_digest(&flipped).is_err());
    }
}
