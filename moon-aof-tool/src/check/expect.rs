//! `check --expect EXPECTED.json ROOT`: checks every fixture listed in the file (paths relative to ROOT)
//! and compares the verdict, the error code, the damaged file and its `ok_up_to`, and the DEBUG DIGEST
//! with what is expected. Exit 0 when every fixture agrees, 1 otherwise.
//!
//! The file's format (`fixtures/expected.json`, written by `fixtures/aof/make-fixtures.sh`):
//! `{"schema": 1, "fixtures": [{"path": "...", "verdict": "...", "code"?: "...", "file"?: "...",
//! "ok_up_to"?: n, "digest"?: "..."}]}`; fields left out are not compared.

use super::{check_input, digest_of};
use crate::cli::Names;
use crate::input;
use crate::out::Ui;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Expected {
    schema: u32,
    fixtures: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    path: String,
    verdict: String,
    code: Option<String>,
    file: Option<String>,
    ok_up_to: Option<u64>,
    digest: Option<String>,
}

/// What one fixture gave, and how it differs from the expectation.
fn run_one(root: &Path, fx: &Fixture, names: &Names) -> Result<Vec<String>> {
    let quiet = Ui::new(true, true);
    let inp = input::detect(&root.join(&fx.path), names)?;
    let c = check_input(&quiet, &inp, None)?;
    let mut diffs = Vec::new();
    if c.verdict != fx.verdict {
        diffs.push(format!("verdict {} (expected {})", c.verdict, fx.verdict));
    }
    let p = c.problem.as_ref();
    if let Some(code) = &fx.code {
        let got = p.map_or("", |p| p.code.as_str());
        if got != code {
            diffs.push(format!("code {got:?} (expected {code:?})"));
        }
    }
    if let Some(file) = &fx.file {
        let got = p.and_then(|p| p.file.as_deref()).unwrap_or("");
        if got != file {
            diffs.push(format!("file {got:?} (expected {file:?})"));
        }
    }
    if let Some(want) = fx.ok_up_to {
        let f = c.files.iter().find(|f| !f.ok());
        match f.map(|f| f.ok_up_to) {
            Some(got) if got == want => {}
            got => diffs.push(format!("ok_up_to {got:?} (expected {want})")),
        }
    }
    if let Some(want) = &fx.digest {
        let got = if c.valid() { digest_of(&quiet, &inp)? } else { None };
        if got.as_deref() != Some(want.as_str()) {
            diffs.push(format!("digest {} (expected {want})", got.as_deref().unwrap_or("none")));
        }
    }
    Ok(diffs)
}

pub fn run(ui: &Ui, root: &Path, expected: &Path, names: &Names) -> Result<Outcome> {
    let text = std::fs::read_to_string(expected).with_context(|| format!("can't read {}", expected.display()))?;
    let exp: Expected = serde_json::from_str(&text).with_context(|| format!("{} is not valid", expected.display()))?;
    if exp.schema != 1 {
        bail!("{}: schema {} is not supported (1 is)", expected.display(), exp.schema);
    }
    let results: Vec<Result<Vec<String>>> = exp.fixtures.par_iter().map(|fx| run_one(root, fx, names)).collect();
    let mut failed = 0usize;
    let mut report = Vec::new();
    for (fx, r) in exp.fixtures.iter().zip(results) {
        let diffs = r.unwrap_or_else(|e| vec![format!("error: {e:#}")]);
        if diffs.is_empty() {
            ui.line(format!("ok    {}", fx.path));
        } else {
            failed += 1;
            ui.line(format!("FAIL  {}: {}", fx.path, diffs.join("; ")));
        }
        report.push(json!({ "path": fx.path, "ok": diffs.is_empty(), "mismatches": diffs }));
    }
    let total = exp.fixtures.len();
    ui.line(format!("expect: {total} fixtures, {} as expected, {failed} not", total - failed));
    ui.json(&json!({
        "tool": "moon-aof-tool",
        "schema": 1,
        "command": "check",
        "mode": "expect",
        "fixtures": report,
        "passed": total - failed,
        "failed": failed,
    }));
    Ok(if failed == 0 { Outcome::Ok } else { Outcome::Problems })
}
