//! `migrate`: a legacy single-file `appendonly.aof` (RESP, or an RDB preamble followed by RESP) or a
//! `dump.rdb` becomes an `appendonlydir/` that redis-server 7.0 and moon-server load, offline.
//!
//! Redis 7.0's own upgrade (FORMATS.md §2) moves the legacy file into the directory unchanged and names it
//! as the base. This does better: an RDB preamble becomes a real `<name>.1.base.rdb` and its RESP tail the
//! first incr `<name>.1.incr.aof`; a RESP file becomes `<name>.1.base.aof` with an empty incr; a dump
//! becomes `<name>.1.base.rdb` with an empty incr. The source must check valid; the new files must load to
//! the same DEBUG DIGEST as the source before the manifest names them; the source is removed only with
//! `--remove-source`, after that.
//!
//! Steps (each a crash point of the interruption tests), and what a crash after it leaves:
//! 1. the new base and incr are written under temp names in the AOF directory and fsynced;
//! 2. they are loaded and compared with the source (a mismatch removes them and stops);
//! 3. the base is renamed to its final name (unreferenced: nothing ever appends to a base);
//! 4. the manifest (`b` base seq 1, `i` incr seq 1) replaces any old one atomically (temp, fsync, rename,
//!    fsync the directory);
//! 5. the incr is renamed to its final name, last: before the manifest names it, a file with the name of
//!    the first incr could be opened for appending by a server that migrated the legacy file itself, and
//!    the tail would then be loaded twice. A crash between 4 and 5 leaves a manifest naming a missing incr:
//!    servers refuse to start ("Unable to obtain the AOF file ... length") rather than load half the data,
//!    and running `migrate` again finishes the job;
//! 6. with `--remove-source`, the source is removed and the working directory fsynced.
//!
//! Running it again on a finished migration verifies it and does nothing else (or removes the source).

use crate::check::check_input;
use crate::dataset;
use crate::input::{self, Input};
use crate::out::{self, Crash, Ui};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use engine::aof::dir::{AofDir, AofOptions, AofPaths};
use engine::aof::load::LoadFile;
use engine::aof::lock::{AofLock, LockError};
use engine::aof::manifest::{base_name, incr_name, AofInfo, AofKind, BaseFormat, Manifest};
use engine::aof::RecoveryPolicy;
use engine::config::EngineConfig;
use engine::keyspace::Keyspace;
use serde_json::json;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    LegacyPreamble,
    LegacyResp,
    Dump,
}

struct Source {
    path: PathBuf,
    kind: SourceKind,
}

fn refuse(ui: &Ui, lines: &[String], reason: &str) -> Result<Outcome> {
    for l in lines {
        ui.line(l);
    }
    ui.json(&json!({ "tool": "moon-aof-tool", "schema": 1, "command": "migrate", "done": false, "refused": reason,
        "message": lines.join(" ") }));
    Ok(Outcome::Problems)
}

/// The source file and the AOF it becomes.
fn locate(plan: &crate::cli::MigratePlan) -> Result<(Option<Source>, AofPaths)> {
    let names = &plan.names;
    let (work_dir, file): (PathBuf, Option<PathBuf>) = if plan.input.is_dir() {
        let legacy = plan.input.join(&names.appendfilename);
        let dump = plan.input.join("dump.rdb");
        let f = [legacy, dump].into_iter().find(|p| p.is_file());
        (plan.input.clone(), f)
    } else {
        (out::parent_dir(&plan.input), Some(plan.input.clone()))
    };
    let Some(file) = file else {
        // Nothing to migrate, unless a migration already finished and removed its source.
        let paths = AofPaths::new(&work_dir, names.appenddirname.as_bytes(), names.appendfilename.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((None, paths));
    };
    let (kind, appendfilename) = match input::detect(&file, names)? {
        Input::SingleAof { preamble: true, .. } => (SourceKind::LegacyPreamble, file_name(&file)),
        Input::SingleAof { preamble: false, .. } => (SourceKind::LegacyResp, file_name(&file)),
        Input::Rdb(_) => (SourceKind::Dump, names.appendfilename.clone()),
        Input::Dir(_) => bail!("{} is already a multi-part AOF: nothing to migrate", plan.input.display()),
    };
    let paths = AofPaths::new(&work_dir, names.appenddirname.as_bytes(), appendfilename.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((Some(Source { path: file, kind }), paths))
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn target_manifest(paths: &AofPaths, kind: SourceKind) -> Manifest {
    let format = if kind == SourceKind::LegacyResp { BaseFormat::Resp } else { BaseFormat::Rdb };
    Manifest {
        base: Some(AofInfo::new(base_name(paths.file_name(), 1, format), 1, AofKind::Base)),
        history: Vec::new(),
        incrs: vec![AofInfo::new(incr_name(paths.file_name(), 1), 1, AofKind::Incr)],
    }
}

fn temp_path(paths: &AofPaths, what: &str) -> PathBuf {
    let name = [b"temp-migrate-".as_slice(), paths.file_name(), b".", what.as_bytes()].concat();
    paths.aof_dir().join(OsStr::from_bytes(&name))
}

/// Copies `len` bytes from `offset` of `src` to a new (truncated) `dst` and fsyncs it.
fn copy_range(src: &Path, offset: u64, len: u64, dst: &Path) -> Result<()> {
    let mut f = File::open(src).with_context(|| format!("can't open {}", src.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .with_context(|| format!("can't create {}", dst.display()))?;
    let n = io::copy(&mut f.take(len), &mut out).with_context(|| format!("can't write {}", dst.display()))?;
    if n != len {
        bail!("{} changed while it was copied", src.display());
    }
    out.sync_all().with_context(|| format!("can't fsync {}", dst.display()))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("can't rename {} to {}", from.display(), to.display()))
}

/// Replaces the manifest atomically, as `AofDir` does (temp file, fsync, rename, fsync the directory).
fn write_manifest(paths: &AofPaths, m: &Manifest, crash: &Crash) -> Result<()> {
    let bytes = m.encode().map_err(|e| anyhow::anyhow!("{e}"))?;
    let temp = paths.temp_manifest_path();
    crash.step(0, "write the temp manifest");
    let mut f = File::create(&temp).with_context(|| format!("can't create {}", temp.display()))?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).with_context(|| format!("can't write {}", temp.display()))?;
    drop(f);
    crash.step(0, "rename the manifest");
    rename(&temp, &paths.manifest_path())?;
    out::sync_dir(&paths.aof_dir())
}

/// The source's DEBUG DIGEST (a dump keeps its expired keys here, as the AOF base made from it will).
fn source_digest(ui: &Ui, src: &Source) -> Result<Result<String, String>> {
    if src.kind == SourceKind::Dump {
        let bytes = fs::read(&src.path).with_context(|| format!("can't read {}", src.path.display()))?;
        let mut ks = Keyspace::new(EngineConfig::default().databases);
        return Ok(engine::rdb::load(&bytes, &engine::rdb::LoadOptions::default(), &mut ks)
            .map(|_| engine::digest::to_hex(&engine::digest::dataset_digest(&ks)))
            .map_err(|e| e.to_string()));
    }
    let file = LoadFile { path: src.path.clone(), name: file_name(&src.path), kind: AofKind::Base };
    Ok(dataset::load_aof_files(ui, &[file], RecoveryPolicy::Strict)?.map(|l| l.digest()))
}

fn files_digest(ui: &Ui, base: &Path, incr: &Path) -> Result<Result<String, String>> {
    let files = [
        LoadFile { path: base.to_path_buf(), name: file_name(base), kind: AofKind::Base },
        LoadFile { path: incr.to_path_buf(), name: file_name(incr), kind: AofKind::Incr },
    ];
    Ok(dataset::load_aof_files(ui, &files, RecoveryPolicy::Strict)?.map(|l| l.digest()))
}

/// Where the base ends in the source (the rest is the first incr).
fn base_len(ui: &Ui, src: &Source) -> Result<Result<(u64, u64), Vec<String>>> {
    let quiet = Ui::new(true, ui.json);
    let input = match src.kind {
        SourceKind::Dump => Input::Rdb(src.path.clone()),
        k => Input::SingleAof { path: src.path.clone(), preamble: k == SourceKind::LegacyPreamble },
    };
    let c = check_input(&quiet, &input, None)?;
    if !c.valid() {
        let mut lines = c.human.clone();
        lines.push(format!(
            "Can't migrate {}: it is not valid ({}). Run `moon-aof-tool check --fix` on it first.",
            src.path.display(),
            c.verdict
        ));
        return Ok(Err(lines));
    }
    let f = &c.files[0];
    let size = f.size;
    Ok(Ok(match src.kind {
        SourceKind::LegacyPreamble => (f.rdb.as_ref().map_or(size, |r| r.end), size),
        _ => (size, size),
    }))
}

pub fn run(ui: &Ui, plan: crate::cli::MigratePlan) -> Result<Outcome> {
    let crash = Crash::from_env();
    let (source, paths) = locate(&plan)?;
    let lock = match AofLock::acquire(&paths, "moon-aof-tool migrate") {
        Ok(l) => l,
        Err(e @ LockError::Held { .. }) => return refuse(ui, &[e.to_string()], "locked"),
        Err(e) => return Err(e.into()),
    };
    let existing = match AofDir::open(paths.clone(), AofOptions::default()) {
        Ok(d) => d,
        Err(e) => return refuse(ui, &[format!("Can't migrate: {e}")], "manifest"),
    };
    let current = existing.manifest().clone();
    let aof_dir = paths.aof_dir();
    let Some(src) = source else {
        if existing.manifest_found() && !current.is_empty() {
            ui.line(format!("{} already holds an AOF and there is no source left: nothing to do.", aof_dir.display()));
            ui.json(
                &json!({ "tool": "moon-aof-tool", "schema": 1, "command": "migrate", "done": true, "already": true }),
            );
            return Ok(Outcome::Ok);
        }
        bail!("{} holds no {} and no dump.rdb to migrate", plan.input.display(), plan.names.appendfilename);
    };
    let target = target_manifest(&paths, src.kind);
    // Redis's own interrupted upgrade (`file <name> seq 1 type b`, the file not moved yet) counts as empty.
    let redis_interrupted = current.incrs.is_empty()
        && current.base.as_ref().is_some_and(|b| b.name == paths.file_name() && !paths.file_path(&b.name).exists());
    let resume = existing.manifest_found() && current.base == target.base && current.incrs == target.incrs;
    if existing.manifest_found() && !current.is_empty() && !resume && !redis_interrupted {
        let msg = format!(
            "{} already holds an AOF (its manifest lists {}): nothing to migrate. redis-server ignores {} in this case.",
            aof_dir.display(),
            current.files().map(|f| f.name_lossy().into_owned()).collect::<Vec<_>>().join(", "),
            src.path.display()
        );
        return refuse(ui, &[msg], "exists");
    }
    let base = target.base.as_ref().map(|b| paths.file_path(&b.name)).unwrap_or_default();
    let incr = paths.file_path(&target.incrs[0].name);
    let (temp_base, temp_incr) = (temp_path(&paths, "base"), temp_path(&paths, "incr"));
    let want = match source_digest(ui, &src)? {
        Ok(d) => d,
        Err(msg) => {
            let advice = "Run `moon-aof-tool check` on it (and `check --fix` for a torn tail) first.".to_string();
            return refuse(ui, &[format!("Can't migrate {}: {msg}", src.path.display()), advice], "damaged");
        }
    };
    let (split, size) = match base_len(ui, &src)? {
        Ok(v) => v,
        Err(lines) => return refuse(ui, &lines, "damaged"),
    };
    let mut steps = Vec::new();
    if !resume {
        crash.step(0, "write the new base");
        copy_range(&src.path, 0, split, &temp_base)?;
        crash.step(0, "write the new incr");
        copy_range(&src.path, split, size - split, &temp_incr)?;
        out::sync_dir(&aof_dir)?;
        match files_digest(ui, &temp_base, &temp_incr)? {
            Ok(d) if d == want => {}
            got => {
                let _ = fs::remove_file(&temp_base);
                let _ = fs::remove_file(&temp_incr);
                let msg = format!(
                    "The new files do not load to the source's data ({got:?}, expected {want}): nothing was changed."
                );
                return refuse(ui, &[msg], "verify");
            }
        }
        crash.step(0, "rename the base");
        rename(&temp_base, &base)?;
        out::sync_dir(&aof_dir)?;
        write_manifest(&paths, &target, &crash)?;
        steps.push("wrote the manifest");
    } else {
        steps.push("resumed a migration whose manifest was already written");
    }
    if !incr.exists() {
        if !temp_incr.exists() {
            crash.step(0, "write the new incr");
            copy_range(&src.path, split, size - split, &temp_incr)?;
        }
        crash.step(0, "rename the incr");
        rename(&temp_incr, &incr)?;
        out::sync_dir(&aof_dir)?;
        steps.push("put the incr in place");
    }
    match files_digest(ui, &base, &incr)? {
        Ok(d) if d == want => {}
        got => {
            let msg = format!(
                "{} does not load to the source's data ({got:?}, expected {want}); the source was left in place.",
                aof_dir.display()
            );
            return refuse(ui, &[msg], "verify");
        }
    }
    for name in [&temp_base, &temp_incr] {
        let _ = fs::remove_file(name);
    }
    let mut removed = false;
    if plan.remove_source {
        crash.step(0, "remove the source");
        fs::remove_file(&src.path).with_context(|| format!("can't remove {}", src.path.display()))?;
        out::sync_dir(paths.work_dir())?;
        removed = true;
    }
    drop(lock);
    let kind = match src.kind {
        SourceKind::LegacyPreamble => "legacy AOF with an RDB preamble",
        SourceKind::LegacyResp => "legacy AOF",
        SourceKind::Dump => "RDB file",
    };
    ui.line(format!("Migrated the {kind} {} into {}:", src.path.display(), aof_dir.display()));
    for l in String::from_utf8_lossy(&target.encode().unwrap_or_default()).lines() {
        ui.line(format!("  {l}"));
    }
    ui.line(format!(
        "Base {} bytes, incr {} bytes; both load to the source's DEBUG DIGEST {want}.",
        split,
        size - split
    ));
    ui.line(if removed {
        format!("Removed {}.", src.path.display())
    } else {
        format!("{} was left in place (remove it, or run again with --remove-source).", src.path.display())
    });
    ui.json(&json!({
        "tool": "moon-aof-tool",
        "schema": 1,
        "command": "migrate",
        "done": true,
        "already": resume,
        "source": { "path": src.path.display().to_string(), "kind": match src.kind {
            SourceKind::LegacyPreamble => "legacy-preamble", SourceKind::LegacyResp => "legacy-resp", SourceKind::Dump => "rdb" },
            "size": size, "removed": removed },
        "aof_dir": aof_dir.display().to_string(),
        "base": { "name": file_name(&base), "size": split },
        "incr": { "name": file_name(&incr), "size": size - split },
        "digest": want,
        "steps": steps,
    }));
    Ok(Outcome::Ok)
}
