//! `check --fix` and `check --truncate-to-timestamp T`: cutting the tail of the **last** file of an AOF,
//! with redis-check-aof's rules and messages, plus Moon's safety: the tool shows what will be cut (bytes,
//! complete commands lost, the first bytes), asks `Continue? [y/N]` unless `--yes`, refuses while a server
//! holds the AOF's lock, copies the cut bytes to `<file>.cut-at-<offset>` next to the file (fsynced)
//! before truncating, fsyncs the truncation, and checks the result again.

use super::{check_input, FileCheck, InputCheck};
use crate::cli::CheckPlan;
use crate::input::{self, Input};
use crate::out::{self, Ui};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use engine::aof::lock::{AofLock, LockError};
use engine::aof::stream::{AofReader, Event, RdbSniff};
use serde_json::json;
use std::fs;
use std::io::{Read, Seek, SeekFrom};

fn refuse(ui: &Ui, c: &InputCheck, plan: &CheckPlan, lines: &[String], reason: &str) -> Result<Outcome> {
    for l in lines {
        ui.line(l);
    }
    let mut doc = c.json(&plan.input);
    doc["action"] = json!({ "done": false, "refused": reason });
    ui.json(&doc);
    Ok(Outcome::Problems)
}

fn print_check(ui: &Ui, c: &InputCheck) {
    for l in &c.human {
        ui.line(l);
    }
}

/// `check --fix`.
pub fn fix(ui: &Ui, plan: &CheckPlan) -> Result<Outcome> {
    if ui.json && !plan.yes {
        bail!("--fix with --json needs --yes (the prompt would mix with the JSON)");
    }
    let input = input::detect(&plan.input, &plan.names)?;
    if let Input::Rdb(p) = &input {
        bail!("{} is an RDB file: --fix only cuts AOF files (RDB data is never truncated)", p.display());
    }
    let c = check_input(ui, &input, None)?;
    print_check(ui, &c);
    if c.valid() {
        ui.line("Nothing to fix.");
        let mut doc = c.json(&plan.input);
        doc["action"] = json!({ "done": false, "refused": null });
        ui.json(&doc);
        return Ok(Outcome::Ok);
    }
    let Some(f) = c.files.iter().find(|f| !f.ok()).cloned() else {
        return refuse(
            ui,
            &c,
            plan,
            &["The manifest itself is wrong: fix it by hand (see the message above).".into()],
            "manifest",
        );
    };
    match f.status {
        "missing" => {
            return refuse(
                ui,
                &c,
                plan,
                &[format!("{} is missing: nothing can be cut; restore it from a backup.", f.name)],
                "missing",
            )
        }
        "rdb-error" => {
            let msg =
                format!("The RDB data of {} is damaged: it is never truncated; restore it from a backup.", f.name);
            return refuse(ui, &c, plan, &[msg], "rdb");
        }
        _ => {}
    }
    if !f.last {
        let lines = [
            format!("Failed to truncate AOF {} because it is not the last file", f.name),
            format!(
                "Cutting it at offset {} would also drop every command of the files after it in the manifest. Restore \
                 {} from a backup; or, accepting that loss, truncate it by hand and remove the later incr files from \
                 the manifest.",
                f.ok_up_to, f.name
            ),
        ];
        return refuse(ui, &c, plan, &lines, "not-last");
    }
    let done = format!("Successfully truncated AOF {}", f.name);
    cut(ui, plan, &input, &c, &f, f.ok_up_to, "fix", &done)
}

/// `check --truncate-to-timestamp T`.
pub fn truncate_to_timestamp(ui: &Ui, plan: &CheckPlan, t: i64) -> Result<Outcome> {
    if ui.json && !plan.yes {
        bail!("--truncate-to-timestamp with --json needs --yes (the prompt would mix with the JSON)");
    }
    let input = input::detect(&plan.input, &plan.names)?;
    if let Input::Rdb(p) = &input {
        bail!("{} is an RDB file: it has no timestamp annotations", p.display());
    }
    let c = check_input(ui, &input, Some(t))?;
    print_check(ui, &c);
    for f in &c.files {
        if f.timestamp_invalid.is_some() {
            return refuse(ui, &c, plan, &["Invalid timestamp annotation".into()], "invalid-timestamp");
        }
        if !f.ok() {
            let msg = "The AOF is damaged before the point in time asked for: run `check --fix` first.".to_string();
            return refuse(ui, &c, plan, &[msg], "damaged");
        }
        let Some(off) = f.timestamp_cut else { continue };
        if !f.last {
            let lines = [
                format!(
                    "Failed to truncate AOF {} to timestamp {t} to offset {off} because it is not the last file.",
                    f.name
                ),
                "To go back to that point anyway, delete every file after it from the manifest (and the disk), \
                 then run this again."
                    .to_string(),
            ];
            return refuse(ui, &c, plan, &lines, "not-last");
        }
        if off == 0 {
            let msg = format!("AOF {} has nothing before timestamp {t}, aborting...", f.name);
            return refuse(ui, &c, plan, &[msg], "nothing-before");
        }
        let done = format!("Successfully truncated AOF {} to timestamp {t}", f.name);
        return cut(ui, plan, &input, &c, f, off, "truncate-to-timestamp", &done);
    }
    let last = c.files.last().map_or_else(String::new, |f| f.name.clone());
    ui.line(format!("Truncate nothing in AOF {last} to timestamp {t}"));
    let mut doc = c.json(&plan.input);
    doc["action"] = json!({ "done": false, "refused": null });
    ui.json(&doc);
    Ok(if c.valid() { Outcome::Ok } else { Outcome::Problems })
}

/// Complete commands in `len` bytes from `offset` of the file, and its first bytes (escaped).
fn describe_cut(path: &std::path::Path, offset: u64, len: u64) -> Result<(u64, String)> {
    let mut f = fs::File::open(path).with_context(|| format!("can't open {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let mut head = Vec::new();
    f.by_ref().take(len.min(60)).read_to_end(&mut head)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut r = AofReader::from_reader(f.take(len), Some(len)).keep_args(false).sniff_rdb(RdbSniff::Never);
    let mut commands = 0u64;
    while let Ok(Some(e)) = r.next_event() {
        if let Event::Command(_) = e {
            commands += 1;
        }
    }
    let more = if len > 60 { "..." } else { "" };
    Ok((commands, format!("{}{more}", head.escape_ascii())))
}

#[allow(clippy::too_many_arguments)]
fn cut(
    ui: &Ui,
    plan: &CheckPlan,
    input: &Input,
    c: &InputCheck,
    f: &FileCheck,
    offset: u64,
    what: &str,
    done: &str,
) -> Result<Outcome> {
    let _lock = match input {
        Input::Dir(paths) => match AofLock::acquire(paths, &format!("moon-aof-tool check --{what}")) {
            Ok(l) => Some(l),
            Err(e @ LockError::Held { .. }) => return refuse(ui, c, plan, &[e.to_string()], "locked"),
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let size = fs::metadata(&f.path).with_context(|| format!("can't open {}", f.path.display()))?.len();
    if size != f.size {
        bail!("{} changed while it was checked ({} bytes, now {size}): is a server writing to it?", f.name, f.size);
    }
    let len = size - offset;
    let (commands, head) = describe_cut(&f.path, offset, len)?;
    ui.line(format!("This will shrink the AOF {} from {size} bytes, with {len} bytes, to {offset} bytes", f.name));
    ui.line(format!("The cut part holds {commands} complete command(s) and starts with: {head}"));
    if !plan.yes && !out::confirm() {
        ui.line("Aborting...");
        return Ok(Outcome::Problems);
    }
    let backup = out::backup_path(&f.path, offset);
    let mut src = fs::File::open(&f.path).with_context(|| format!("can't open {}", f.path.display()))?;
    src.seek(SeekFrom::Start(offset))?;
    let mut cut_bytes = Vec::with_capacity(len as usize);
    src.take(len).read_to_end(&mut cut_bytes).with_context(|| format!("can't read {}", f.path.display()))?;
    out::write_new_durable(&backup, &cut_bytes)?;
    engine::aof::load::truncate_file(&f.path, offset)
        .with_context(|| format!("can't truncate {}", f.path.display()))?;
    ui.line(done);
    ui.line(format!("The {len} bytes cut are kept in {}", backup.display()));
    let quiet = Ui::new(true, ui.json);
    let after = check_input(&quiet, input, None)?;
    ui.line(if after.valid() {
        "The AOF is now valid".to_string()
    } else {
        format!("The AOF is still not valid: {}", after.verdict)
    });
    let mut doc = after.json(&plan.input);
    doc["action"] = json!({
        "done": true,
        "kind": what,
        "file": f.name,
        "from": size,
        "to": offset,
        "commands_cut": commands,
        "backup": backup.display().to_string(),
    });
    ui.json(&doc);
    Ok(if after.valid() { Outcome::Ok } else { Outcome::Problems })
}
