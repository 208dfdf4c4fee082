//! `compact`: an offline BGREWRITEAOF. Loads the base and incr files (strictly: a damaged directory is
//! refused, `check --fix` comes first), writes a new base from the loaded data (RDB with AUX `aof-base=1`,
//! or RESP commands with `--aof-base`), checks that it loads back to the same data (a fingerprint of every
//! key, value and expiry time, `dataset::Fingerprint`; the DEBUG DIGEST reported is the new base's), and
//! switches to it through `engine::aof::dir::AofDir`'s rewrite transitions, the ones the server uses (`open_on_start`,
//! `start_rewrite`, `rewrite_done`): a new empty incr and the new base get higher seqs, the manifest is
//! replaced atomically, the old files become history and are removed unless `--keep-history`. A crash at
//! any step leaves a directory that loads to the same data (see engine/FORMAT.md, "The commit protocol").
//!
//! It refuses a directory whose lock (`engine::aof::lock`) a running moon-server holds, and data it could
//! not write back (stream or module values, which Moon's keyspace does not hold).

use crate::dataset::{self, Fingerprint, Loaded};
use crate::input::{self, Input};
use crate::out::{Crash, Ui};
use crate::Outcome;
use anyhow::{Context, Result};
use engine::aof::dir::{AofDir, AofOptions, DirError};
use engine::aof::load::LoadFile;
use engine::aof::lock::{AofLock, LockError};
use engine::aof::manifest::{AofKind, BaseFormat, Manifest};
use engine::aof::rewrite::{rewrite_store, RewriteOptions};
use engine::aof::RecoveryPolicy;
use engine::keyspace::Store;
use engine::rdb::{RdbWriter, WriteOptions};
use serde_json::json;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

fn refuse(ui: &Ui, lines: &[String], reason: &str) -> Result<Outcome> {
    for l in lines {
        ui.line(l);
    }
    ui.json(&json!({ "tool": "moon-aof-tool", "schema": 1, "command": "compact", "done": false, "refused": reason,
        "message": lines.join(" ") }));
    Ok(Outcome::Problems)
}

/// A failed `AofDir` transition: an injected crash ends the process there, anything else is an error.
fn dir_err(e: DirError) -> anyhow::Error {
    if let DirError::InjectedCrash { step } = e {
        Crash::die(step, "AofDir");
    }
    anyhow::anyhow!("{e}")
}

fn file_list(dir: &AofDir) -> Vec<serde_json::Value> {
    let paths = dir.paths();
    dir.manifest()
        .files()
        .map(|f| {
            let size = std::fs::metadata(paths.file_path(&f.name)).map_or(0, |m| m.len());
            json!({ "name": f.name_lossy(), "seq": f.seq, "type": (f.kind.as_byte() as char).to_string(), "size": size })
        })
        .collect()
}

fn total_size(list: &[serde_json::Value]) -> u64 {
    list.iter().map(|f| f["size"].as_u64().unwrap_or(0)).sum()
}

fn manifest_text(m: &Manifest) -> Vec<String> {
    let bytes = m.encode().unwrap_or_default();
    String::from_utf8_lossy(&bytes).lines().map(|l| format!("  {l}")).collect()
}

/// Writes the dataset as a base file at `path` (not fsynced: `rewrite_done` does it).
pub fn write_base(path: &Path, data: &Loaded, format: BaseFormat) -> Result<u64> {
    let file = File::create(path).with_context(|| format!("can't create {}", path.display()))?;
    let w = BufWriter::with_capacity(1 << 20, file);
    let ks = &data.ks;
    let w = match format {
        BaseFormat::Rdb => {
            let mut rw = RdbWriter::new(w, WriteOptions::default());
            rw.write_header(true)?;
            for code in data.functions() {
                rw.write_function(&code)?;
            }
            for db in 0..ks.num_dbs() {
                let keys = ks.db_len(db);
                if keys == 0 {
                    continue;
                }
                rw.select_db(db, keys as u64, ks.db_expires(db) as u64)?;
                for e in ks.entries(db) {
                    rw.write_entry(&e.key, &e.value, e.has_expire().then_some(e.expire_at()))?;
                }
            }
            rw.finish()?
        }
        BaseFormat::Resp => rewrite_store(ks, w, &RewriteOptions::default())?.0,
    };
    let mut file = w.into_inner().map_err(|e| e.into_error())?;
    file.flush()?;
    Ok(file.metadata()?.len())
}

/// What is known of the loaded data once the base is written.
enum Known {
    /// Its DEBUG DIGEST (`--no-verify`).
    Digest(String),
    /// Its fingerprint, for the check; the digest then comes from the new base.
    Fingerprint(Fingerprint),
}

/// Loads the new base back, as a server would: its DEBUG DIGEST and [`Fingerprint`] (`Ok(Err)` when it
/// does not load). An RDB base is decoded on all cores and checked as it streams by, without building a
/// keyspace.
fn verify_base(ui: &Ui, path: &Path, format: BaseFormat) -> Result<Result<(String, Fingerprint), String>> {
    Ok(match format {
        BaseFormat::Rdb => {
            let bytes = std::fs::read(path).with_context(|| format!("can't read {}", path.display()))?;
            dataset::rdb_digest(&bytes).map_err(|e| e.to_string())
        }
        BaseFormat::Resp => {
            let file = LoadFile { path: path.to_path_buf(), name: "new base".into(), kind: AofKind::Base };
            dataset::load_aof_files(ui, &[file], RecoveryPolicy::Strict)?.map(|l| {
                let entries = dataset::entries_by_db(&l.ks);
                let found = (dataset::digest_entries(&entries), dataset::fingerprint_entries(&entries));
                drop(entries);
                std::mem::forget(l);
                found
            })
        }
    })
}

pub fn run(ui: &Ui, plan: crate::cli::CompactPlan) -> Result<Outcome> {
    let input = input::detect(&plan.input, &plan.names)?;
    let Input::Dir(paths) = input else {
        let msg = format!(
            "{} is not an AOF directory: compact works on an appendonlydir/ (use `migrate` for a single file)",
            plan.input.display()
        );
        return refuse(ui, &[msg], "not-a-directory");
    };
    let crash = Crash::from_env();
    let _lock = match AofLock::acquire(&paths, "moon-aof-tool compact") {
        Ok(l) => l,
        Err(e @ LockError::Held { .. }) => return refuse(ui, &[e.to_string()], "locked"),
        Err(e) => return Err(e.into()),
    };
    let opts = AofOptions { disable_auto_gc: plan.keep_history };
    let mut dir = match AofDir::open(paths.clone(), opts) {
        Ok(d) => d,
        Err(e) => return refuse(ui, &[format!("Can't compact: {e}")], "manifest"),
    };
    if dir.manifest().is_empty() {
        return refuse(ui, &["The manifest lists no base and no incr: nothing to compact.".into()], "empty");
    }
    let files: Vec<LoadFile> = match dir.load_plan() {
        Ok(p) => p.load_files(),
        Err(e) => return refuse(ui, &[format!("Can't compact: {e}")], "missing-file"),
    };
    let before = file_list(&dir);
    let t0 = Instant::now();
    let data = match dataset::load_aof_files(ui, &files, RecoveryPolicy::Strict)? {
        Ok(d) => d,
        Err(msg) => {
            let advice = "Run `moon-aof-tool check` on it (and `check --fix` for a torn tail) first.".to_string();
            return refuse(ui, &[format!("Can't compact: {msg}"), advice], "damaged");
        }
    };
    let load_secs = t0.elapsed().as_secs_f64();
    if data.skipped() > 0 {
        let msg = format!(
            "Can't compact: the data holds {} stream or module value(s) that Moon does not keep; a rewrite would \
             lose them (let redis-server rewrite this AOF instead).",
            data.skipped()
        );
        return refuse(ui, &[msg], "unsupported-data");
    }
    let format = if plan.aof_base { BaseFormat::Resp } else { BaseFormat::Rdb };
    if plan.aof_base && !data.functions().is_empty() {
        return refuse(ui, &["Can't write a RESP base holding functions: drop --aof-base.".into()], "functions");
    }
    let keys = data.ks.keys();
    ui.line(format!(
        "Loaded {keys} keys from {} file(s), {} bytes, in {load_secs:.2}s",
        files.len(),
        total_size(&before)
    ));

    // The server's sequence: state On (open the last incr), rotate to a new incr, write the base, switch.
    crash.arm(&mut dir);
    drop(dir.open_on_start(format, |_| Ok(())).map_err(dir_err)?);
    crash.arm(&mut dir);
    let start = dir.start_rewrite(std::process::id(), format).map_err(dir_err)?;
    drop(start.incr);
    crash.step(dir.steps_taken(), "write the new base");
    let t1 = Instant::now();
    let spin = ui.spinner("writing the new base");
    // While the base is written, the other cores compute what the check compares: the fingerprint of the
    // loaded data (cheap), or without a check its DEBUG DIGEST (SHA1 of every element, the costliest step),
    // which the check otherwise computes from the new base as it decodes it.
    let entries = dataset::entries_by_db(&data.ks);
    let (written, summary) = std::thread::scope(|s| {
        let summary = s.spawn(|| {
            if plan.verify {
                Known::Fingerprint(dataset::fingerprint_entries(&entries))
            } else {
                Known::Digest(dataset::digest_entries(&entries))
            }
        });
        let written = write_base(&start.temp_base, &data, format);
        (written, summary.join())
    });
    drop(entries);
    spin.finish_and_clear();
    let base_size = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = dir.rewrite_failed();
            return Err(e.context("can't write the new base"));
        }
    };
    let Ok(summary) = summary else {
        let _ = dir.rewrite_failed();
        anyhow::bail!("the digest thread panicked");
    };
    let write_secs = t1.elapsed().as_secs_f64();
    // Freeing millions of small allocations one by one takes seconds and the process ends soon: the memory
    // goes back to the system at exit.
    std::mem::forget(data);
    let mut verify_secs = 0.0;
    let digest = match summary {
        Known::Digest(digest) => digest,
        Known::Fingerprint(want) => {
            let t2 = Instant::now();
            let got = verify_base(ui, &start.temp_base, format)?;
            verify_secs = t2.elapsed().as_secs_f64();
            match got {
                Ok((digest, f)) if f == want && f.keys == keys as u64 => digest,
                got => {
                    let _ = dir.rewrite_failed();
                    let msg = format!(
                        "The new base does not load to the same data ({got:?}, expected {want:?} with {keys} keys): \
                         nothing was changed."
                    );
                    return refuse(ui, &[msg], "verify");
                }
            }
        }
    };
    ui.line(format!("DEBUG DIGEST {digest}"));
    crash.arm(&mut dir);
    let done = dir.rewrite_done().map_err(dir_err)?;
    let after = file_list(&dir);
    ui.line(format!(
        "Wrote {} ({base_size} bytes) in {write_secs:.2}s{}",
        done.base.name_lossy(),
        if plan.verify { format!("; it loads back to the same data ({verify_secs:.2}s)") } else { String::new() }
    ));
    ui.line("New manifest:");
    for l in manifest_text(dir.manifest()) {
        ui.line(l);
    }
    let (removed, failed) = match &done.history {
        Ok(h) => (
            h.removed.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect::<Vec<_>>(),
            h.failed.iter().map(|(n, e)| format!("{}: {e}", String::from_utf8_lossy(n))).collect::<Vec<_>>(),
        ),
        Err(e) => (Vec::new(), vec![e.to_string()]),
    };
    if plan.keep_history {
        ui.line(format!("The old files are kept as history ({} file(s)).", dir.manifest().history.len()));
    } else {
        ui.line(format!("Removed {} old file(s): {}", removed.len(), removed.join(", ")));
    }
    for f in &failed {
        ui.line(format!("Could not remove an old file: {f}"));
    }
    let (b, a) = (total_size(&before), total_size(&after));
    ui.line(format!("Size: {b} -> {a} bytes"));
    ui.json(&json!({
        "tool": "moon-aof-tool",
        "schema": 1,
        "command": "compact",
        "done": true,
        "keys": keys,
        "digest": digest,
        "format": if plan.aof_base { "resp" } else { "rdb" },
        "before": { "files": before, "bytes": b },
        "after": { "files": after, "bytes": a },
        "removed": removed,
        "remove_failed": failed,
        "seconds": { "load": load_secs, "write": write_secs, "verify": verify_secs },
    }));
    Ok(Outcome::Ok)
}
