//! The command line, and its translation into plans: every path resolved and every mode checked before a
//! command touches a file. Usage errors exit with 2 (clap's own code for them).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
INPUT may be an AOF working directory (holding appendonlydir/), an appendonlydir/, a manifest, a single AOF
file (legacy appendonly.aof, with or without an RDB preamble) or an RDB file; the kind is found from the
content. Exit codes: 0 valid / done, 1 problems found or refused, 2 usage or I/O error.
The --json output of each command is described in moon-aof-tool/README.md (schema 1).";

#[derive(Parser, Debug)]
#[command(name = "moon-aof-tool", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Checks every file the way redis-check-aof and redis-check-rdb do; can cut a damaged tail.
    Check(CheckArgs),
    /// Describes the files: manifest, commands, databases, timestamps, RDB contents.
    Inspect(InspectArgs),
    /// Converts a legacy appendonly.aof or a dump.rdb into an appendonlydir/.
    Migrate(MigrateArgs),
    /// Offline BGREWRITEAOF: a new base from the loaded data, a new empty incr, a new manifest.
    Compact(CompactArgs),
}

/// Options naming the AOF inside a working directory (Redis's `appenddirname` / `appendfilename`).
#[derive(Args, Debug, Clone)]
pub struct Names {
    /// `appenddirname` (for a working directory given as INPUT).
    #[arg(long, default_value = "appendonlydir")]
    pub appenddirname: String,
    /// `appendfilename` (for a working directory given as INPUT).
    #[arg(long, default_value = "appendonly.aof")]
    pub appendfilename: String,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// What to check (see below); with --expect, the root the expectations' paths are relative to.
    pub input: PathBuf,
    /// Truncate the damaged or torn tail of the last file to its last good command (asks first).
    #[arg(long, conflicts_with_all = ["truncate_to_timestamp", "expect"])]
    pub fix: bool,
    /// Truncate the last file at the first `#TS:` annotation later than this unix time (asks first).
    #[arg(long, value_name = "UNIX_SECS", conflicts_with = "expect", allow_negative_numbers = true)]
    pub truncate_to_timestamp: Option<i64>,
    /// Do not ask before truncating.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also load the data and print its DEBUG DIGEST (when valid).
    #[arg(long)]
    pub digest: bool,
    /// Verify every fixture listed in this JSON file (see fixtures/expected.json) under INPUT.
    #[arg(long, value_name = "EXPECTED_JSON")]
    pub expect: Option<PathBuf>,
    #[command(flatten)]
    pub names: Names,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    pub input: PathBuf,
    /// List every key with its database, type, size and TTL.
    #[arg(long)]
    pub keys: bool,
    /// How many of the largest keys to show per RDB.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub names: Names,
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// A working directory holding appendonly.aof or dump.rdb, or that file itself.
    pub input: PathBuf,
    /// Remove the source file once the new directory is written and verified.
    #[arg(long)]
    pub remove_source: bool,
    #[command(flatten)]
    pub names: Names,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    pub input: PathBuf,
    /// Write the new base as RESP commands (`aof-use-rdb-preamble no`) instead of RDB.
    #[arg(long)]
    pub aof_base: bool,
    /// Keep the old files as history (`aof-disable-auto-gc yes`) instead of removing them.
    #[arg(long)]
    pub keep_history: bool,
    /// Skip loading the new base back to compare digests before switching to it.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub names: Names,
}

/// How `check` will run.
#[derive(Debug)]
pub enum CheckMode {
    Check,
    Fix,
    TruncateToTimestamp(i64),
    Expect(PathBuf),
}

#[derive(Debug)]
pub struct CheckPlan {
    pub input: PathBuf,
    pub mode: CheckMode,
    pub yes: bool,
    pub digest: bool,
    pub names: Names,
}

fn existing(p: &std::path::Path) -> Result<()> {
    std::fs::symlink_metadata(p).with_context(|| format!("can't open {}", p.display()))?;
    Ok(())
}

fn check_names(n: &Names) -> Result<()> {
    engine::aof::dir::AofPaths::new(".", n.appenddirname.as_bytes(), n.appendfilename.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

impl CheckArgs {
    pub fn into_plan(self) -> Result<CheckPlan> {
        existing(&self.input)?;
        check_names(&self.names)?;
        let mode = match (self.fix, self.truncate_to_timestamp, self.expect) {
            (true, _, _) => CheckMode::Fix,
            (_, Some(t), _) => CheckMode::TruncateToTimestamp(t),
            (_, _, Some(e)) => {
                existing(&e)?;
                if !self.input.is_dir() {
                    bail!("with --expect, INPUT must be the fixtures directory");
                }
                CheckMode::Expect(e)
            }
            _ => CheckMode::Check,
        };
        Ok(CheckPlan { input: self.input, mode, yes: self.yes, digest: self.digest, names: self.names })
    }
}

#[derive(Debug)]
pub struct InspectPlan {
    pub input: PathBuf,
    pub keys: bool,
    pub top: usize,
    pub names: Names,
}

impl InspectArgs {
    pub fn into_plan(self) -> Result<InspectPlan> {
        existing(&self.input)?;
        check_names(&self.names)?;
        Ok(InspectPlan { input: self.input, keys: self.keys, top: self.top, names: self.names })
    }
}

#[derive(Debug)]
pub struct MigratePlan {
    pub input: PathBuf,
    pub remove_source: bool,
    pub names: Names,
}

impl MigrateArgs {
    pub fn into_plan(self) -> Result<MigratePlan> {
        existing(&self.input)?;
        check_names(&self.names)?;
        Ok(MigratePlan { input: self.input, remove_source: self.remove_source, names: self.names })
    }
}

#[derive(Debug)]
pub struct CompactPlan {
    pub input: PathBuf,
    pub aof_base: bool,
    pub keep_history: bool,
    pub verify: bool,
    pub names: Names,
}

impl CompactArgs {
    pub fn into_plan(self) -> Result<CompactPlan> {
        existing(&self.input)?;
        check_names(&self.names)?;
        Ok(CompactPlan {
            input: self.input,
            aof_base: self.aof_base,
            keep_history: self.keep_history,
            verify: !self.no_verify,
            names: self.names,
        })
    }
}
