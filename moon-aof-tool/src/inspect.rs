//! `inspect`: what the files hold. For a directory, the manifest's files (type, seq, size, format); per AOF
//! file the commands by name, the databases touched, the first and last `#TS:` annotations and the
//! MULTI/EXEC blocks; per RDB (a dump, a base, a preamble) the version, AUX fields, keys per database, per
//! type and per encoding (as `OBJECT ENCODING` reports them once loaded), expiries and the largest keys.
//!
//! `--keys` lists keys (`db`, `key`, `type`, `size`: bytes for strings, elements otherwise, `ttl_ms`). From
//! an RDB file they stream as the file is decoded, in bounded memory; for AOF inputs `keylist` streams the
//! keys of the RDB base that no later command touches and replays only the touched ones (memory bounded by
//! what the RESP part writes). With `--json` each key is one JSON object per line, before the summary
//! document.

use crate::dataset::{self, now_ms};
use crate::input::{self, Input};
use crate::out::{println_out, Ui};
use crate::Outcome;
use anyhow::{Context, Result};
use engine::aof::dir::{AofDir, AofOptions};
use engine::aof::load::LoadFile;
use engine::aof::manifest::AofKind;
use engine::aof::stream::{AofReader, CommandKind, Event, RdbSniff, ReadError, Timestamp};
use engine::rdb::{self, LoadReport, LoadTarget, RdbError};
use engine::types::Value;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::path::Path;

pub fn size_of(v: &Value) -> u64 {
    (match v {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
    }) as u64
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct BigKey {
    size: u64,
    db: usize,
    key: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Default, Serialize)]
struct DbCount {
    keys: u64,
    expires: u64,
}

/// RDB statistics, gathered by a [`LoadTarget`] that keeps no value.
#[derive(Default, Serialize)]
struct RdbStats {
    version: u32,
    aux: BTreeMap<String, String>,
    functions: usize,
    checksum: String,
    dbs: BTreeMap<usize, DbCount>,
    types: BTreeMap<&'static str, u64>,
    encodings: BTreeMap<String, u64>,
    expires: u64,
    already_expired: u64,
    largest: Vec<BigKey>,
    skipped: Vec<String>,
    #[serde(skip)]
    heap: BinaryHeap<Reverse<BigKey>>,
    #[serde(skip)]
    top: usize,
    #[serde(skip)]
    list_keys: bool,
    #[serde(skip)]
    json: bool,
    #[serde(skip)]
    now: i64,
}

pub fn key_line(json: bool, db: usize, key: &[u8], kind: &str, size: u64, ttl_ms: Option<i64>) {
    if json {
        let v = json!({ "db": db, "key": String::from_utf8_lossy(key), "type": kind, "size": size, "ttl_ms": ttl_ms });
        println_out(&v.to_string());
    } else {
        let ttl = ttl_ms.map_or_else(|| "-".to_string(), |t| t.to_string());
        println_out(&format!("{db}\t{}\t{kind}\t{size}\t{ttl}", key.escape_ascii()));
    }
}

impl LoadTarget for RdbStats {
    fn resize(&mut self, _db: usize, _keys: u64, _expires: u64) {}

    fn insert(&mut self, db: usize, key: &[u8], value: Value, expire_at: Option<i64>) -> Result<(), RdbError> {
        let d = self.dbs.entry(db).or_default();
        d.keys += 1;
        if let Some(at) = expire_at {
            d.expires += 1;
            self.expires += 1;
            if at < self.now {
                self.already_expired += 1;
            }
        }
        *self.types.entry(value.type_name()).or_default() += 1;
        *self.encodings.entry(format!("{}/{}", value.type_name(), value.encoding_name())).or_default() += 1;
        let size = size_of(&value);
        if self.list_keys {
            key_line(self.json, db, key, value.type_name(), size, expire_at.map(|a| a.saturating_sub(self.now)));
        }
        if self.top > 0 {
            let min = self.heap.peek().map(|r| r.0.size);
            if self.heap.len() < self.top || min.is_some_and(|m| size > m) {
                let k = String::from_utf8_lossy(key).into_owned();
                self.heap.push(Reverse(BigKey { size, db, key: k, kind: value.type_name() }));
                if self.heap.len() > self.top {
                    self.heap.pop();
                }
            }
        }
        Ok(())
    }
}

impl RdbStats {
    fn finish(&mut self, r: &LoadReport) {
        self.version = r.version;
        self.aux =
            r.aux.iter().map(|(k, v)| (String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v).into())).collect();
        self.functions = r.functions.len();
        self.checksum = crate::check::checksum_name(r.checksum).to_string();
        self.skipped = r.warnings();
        let mut v: Vec<BigKey> = self.heap.drain().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        self.largest = v;
    }

    fn human(&self, out: &mut Vec<String>) {
        let aux: Vec<String> = self.aux.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push(format!("  RDB version {}, checksum {}; AUX {}", self.version, self.checksum, aux.join(" ")));
        let dbs: Vec<String> =
            self.dbs.iter().map(|(db, c)| format!("db{db} {} keys ({} with TTL)", c.keys, c.expires)).collect();
        out.push(format!("  keys: {}", if dbs.is_empty() { "none".to_string() } else { dbs.join(", ") }));
        if self.expires > 0 {
            out.push(format!("  expiries: {} ({} already expired)", self.expires, self.already_expired));
        }
        let join = |m: &BTreeMap<_, u64>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
        if !self.types.is_empty() {
            out.push(format!("  types: {}", join(&self.types.iter().map(|(k, v)| (k.to_string(), *v)).collect())));
            out.push(format!("  encodings: {}", join(&self.encodings)));
        }
        if self.functions > 0 {
            out.push(format!("  function libraries: {}", self.functions));
        }
        for w in &self.skipped {
            out.push(format!("  note: {w}"));
        }
        if !self.largest.is_empty() {
            out.push("  largest keys:".to_string());
            for b in &self.largest {
                out.push(format!("    db{} {} {} (size {})", b.db, b.key.escape_default(), b.kind, b.size));
            }
        }
    }
}

/// What one AOF file holds.
#[derive(Default, Serialize)]
struct FileStats {
    name: String,
    role: String,
    format: &'static str,
    size: u64,
    rdb: Option<RdbStats>,
    commands: u64,
    by_name: BTreeMap<String, u64>,
    databases: BTreeSet<u64>,
    transactions: u64,
    annotations: u64,
    first_timestamp: Option<i64>,
    last_timestamp: Option<i64>,
    damage: Option<String>,
}

fn file_stats(path: &Path, name: &str, role: &str, top: usize, list_keys: bool, json: bool) -> Result<FileStats> {
    let mut s = FileStats { name: name.to_string(), role: role.to_string(), ..FileStats::default() };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            s.format = "missing";
            s.damage = Some(e.to_string());
            return Ok(s);
        }
    };
    s.size = meta.len();
    let sniff = if role == "incr" { RdbSniff::Never } else { RdbSniff::Auto };
    let mut r = AofReader::open(path).with_context(|| format!("can't open {}", path.display()))?.sniff_rdb(sniff);
    s.format = if s.size == 0 { "empty" } else { "resp" };
    if r.has_rdb_preamble()? {
        let mut st = RdbStats { top, list_keys, json, now: now_ms(), ..RdbStats::default() };
        match r.load_rdb_preamble(&rdb::LoadOptions::default(), &mut st) {
            Ok(Some(rep)) => {
                st.finish(&rep);
                s.format = if (rep.bytes_consumed as u64) < s.size { "rdb+resp" } else { "rdb" };
            }
            Ok(None) => {}
            Err(e) => {
                s.format = "rdb";
                s.damage = Some(e.to_string());
                s.rdb = Some(st);
                return Ok(s);
            }
        }
        s.rdb = Some(st);
    }
    let mut db = 0u64;
    loop {
        match r.next_event() {
            Ok(None) => break,
            Ok(Some(Event::Annotation(a))) => {
                s.annotations += 1;
                if let Timestamp::Valid(t) = a.timestamp() {
                    s.first_timestamp.get_or_insert(t);
                    s.last_timestamp = Some(t);
                }
            }
            Ok(Some(Event::Command(c))) => {
                let Some(n) = c.name() else { continue };
                let upper = String::from_utf8_lossy(n).to_ascii_uppercase();
                match c.kind {
                    CommandKind::Exec => s.transactions += 1,
                    CommandKind::Multi => {}
                    CommandKind::Plain if upper == "SELECT" => {
                        db = c.argv.get(1).and_then(|a| std::str::from_utf8(a).ok()?.parse().ok()).unwrap_or(db);
                    }
                    CommandKind::Plain => {
                        s.databases.insert(db);
                    }
                }
                s.commands += 1;
                *s.by_name.entry(upper).or_default() += 1;
            }
            Err(ReadError::Damage(d)) => {
                s.damage = Some(d.to_string());
                break;
            }
            Err(e) => {
                s.damage = Some(e.to_string());
                break;
            }
        }
    }
    Ok(s)
}

fn file_human(s: &FileStats, out: &mut Vec<String>) {
    out.push(format!("{} ({}, {}, {} bytes):", s.name, s.role, s.format, s.size));
    if let Some(r) = &s.rdb {
        r.human(out);
    }
    if s.commands > 0 || s.format.contains("resp") {
        let mut names: Vec<(&String, &u64)> = s.by_name.iter().collect();
        names.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = names.iter().map(|(n, c)| format!("{n} {c}")).collect();
        out.push(format!(
            "  commands: {}{}",
            s.commands,
            if list.is_empty() { String::new() } else { format!(" ({})", list.join(", ")) }
        ));
        let dbs: Vec<String> = s.databases.iter().map(u64::to_string).collect();
        out.push(format!("  databases written: {}", if dbs.is_empty() { "none".into() } else { dbs.join(", ") }));
        out.push(format!("  MULTI/EXEC blocks: {}", s.transactions));
        match (s.first_timestamp, s.last_timestamp) {
            (Some(a), Some(b)) => {
                out.push(format!("  timestamps: first #TS:{a}, last #TS:{b} ({} annotations)", s.annotations))
            }
            _ => out.push("  timestamps: none".to_string()),
        }
    }
    if let Some(d) = &s.damage {
        out.push(format!("  damaged: {d}"));
    }
}

fn sniff_format(path: &Path) -> &'static str {
    match input::head(path, 8) {
        Err(_) => "missing",
        Ok(h) if h.is_empty() => "empty",
        Ok(h) if input::is_rdb_magic(&h) => "rdb",
        Ok(_) => "resp",
    }
}

pub fn run(ui: &Ui, plan: crate::cli::InspectPlan) -> Result<Outcome> {
    let input = input::detect(&plan.input, &plan.names)?;
    let (top, json_mode) = (plan.top, ui.json);
    let mut human = Vec::new();
    let mut doc = json!({ "tool": "moon-aof-tool", "schema": 1, "command": "inspect",
        "input": { "path": plan.input.display().to_string(), "kind": input.kind() } });
    // Keys of RESP data are only known once replayed: load the dataset and list it.
    let replay_keys = plan.keys && !matches!(input, Input::Rdb(_));
    let stream_keys = plan.keys && !replay_keys;
    if plan.keys && !ui.json {
        println_out("db\tkey\ttype\tsize\tttl_ms");
    }
    let mut problems = false;
    match &input {
        Input::Rdb(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("can't read {}", path.display()))?;
            let mut st =
                RdbStats { top, list_keys: stream_keys, json: json_mode, now: now_ms(), ..RdbStats::default() };
            let name = path.display().to_string();
            human.push(format!("{name} (rdb, {} bytes):", bytes.len()));
            match rdb::load(&bytes, &rdb::LoadOptions::default(), &mut st) {
                Ok(r) => st.finish(&r),
                Err(e) => {
                    problems = true;
                    human.push(format!("  damaged: {e}"));
                }
            }
            st.human(&mut human);
            doc["rdb"] = serde_json::to_value(&st)?;
        }
        Input::SingleAof { path, .. } => {
            let s = file_stats(path, &path.display().to_string(), "single", top, false, json_mode)?;
            problems |= s.damage.is_some();
            file_human(&s, &mut human);
            doc["files"] = json!([s]);
        }
        Input::Dir(paths) => {
            let dir = match AofDir::open(paths.clone(), AofOptions::default()) {
                Ok(d) => d,
                Err(e) => {
                    ui.line(format!("Can't read the manifest: {e}"));
                    doc["error"] = json!(e.to_string());
                    ui.json(&doc);
                    return Ok(Outcome::Problems);
                }
            };
            human.push(format!("AOF directory {}", paths.aof_dir().display()));
            human.push(format!("Manifest {}:", paths.manifest_path().display()));
            human.push(format!("  {:<5} {:>6} {:>12}  {:<8} name", "type", "seq", "size", "format"));
            let mut listed = Vec::new();
            for f in dir.manifest().files() {
                let p = paths.file_path(&f.name);
                let size = std::fs::metadata(&p).map_or(0, |m| m.len());
                let kind = match f.kind {
                    AofKind::Base => "base",
                    AofKind::Incr => "incr",
                    AofKind::History => "hist",
                };
                let format = sniff_format(&p);
                problems |= format == "missing" && f.kind != AofKind::History;
                human.push(format!("  {kind:<5} {:>6} {size:>12}  {format:<8} {}", f.seq, f.name_lossy()));
                listed.push(
                    json!({ "name": f.name_lossy(), "seq": f.seq, "type": kind, "size": size, "format": format }),
                );
            }
            doc["manifest"] = json!(listed);
            let files: Vec<_> = dir.manifest().files_to_load().cloned().collect();
            let stats: Vec<FileStats> = files
                .par_iter()
                .map(|f| {
                    let role = if f.kind == AofKind::Base { "base" } else { "incr" };
                    file_stats(&paths.file_path(&f.name), &f.name_lossy(), role, top, false, json_mode)
                })
                .collect::<Result<_>>()?;
            for s in &stats {
                problems |= s.damage.is_some();
                file_human(s, &mut human);
            }
            doc["files"] = serde_json::to_value(&stats)?;
        }
    }
    if replay_keys {
        let files = match &input {
            Input::Dir(paths) => dataset::dir_files(paths)?,
            Input::SingleAof { path, .. } => {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Ok(vec![LoadFile { path: path.clone(), name, kind: AofKind::Base }])
            }
            Input::Rdb(_) => Ok(Vec::new()),
        };
        let listed = match files {
            Ok(files) => crate::keylist::list(&files, json_mode)?,
            Err(msg) => Err(msg),
        };
        match listed {
            Ok(l) => doc["keys"] = serde_json::to_value(l)?,
            Err(msg) => {
                problems = true;
                human.push(format!("Can't list keys: {msg}"));
            }
        }
    }
    for l in &human {
        ui.line(l);
    }
    ui.json(&doc);
    Ok(if problems { Outcome::Problems } else { Outcome::Ok })
}
