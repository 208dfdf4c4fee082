//! moon-aof-tool: offline inspection, checking, repair, migration and compaction of Redis 7 / Moon
//! persistence files (an `appendonlydir/`, its manifest, a legacy single-file AOF, an RDB file).
//!
//! It reads and writes through the same `engine::aof` and `engine::rdb` code as moon-server, so the tool
//! and the server never disagree about what a file means. Modules:
//! - `cli`: the command line (clap), turned into validated plans before any I/O;
//! - `input`: what a path is (directory, manifest, single AOF, RDB), by content;
//! - `check`: `check`, `check --fix`, `check --truncate-to-timestamp`, `check --expect`;
//! - `inspect`, `migrate`, `compact`: the other commands (`keylist`: `inspect --keys` on AOF inputs);
//! - `dataset`: loading a whole input into a keyspace (digest, compact, migrate's verification), split over
//!   `shards` so that an RDB decodes on every core;
//! - `out`: stdout that tolerates a closed pipe, progress bars, prompts, file helpers, crash hooks.
//!
//! Exit codes: 0 valid / done, 1 problems found or refused, 2 usage or I/O error.

mod check;
mod cli;
mod compact;
mod dataset;
mod input;
mod inspect;
mod keylist;
mod migrate;
mod out;
mod shards;

use clap::Parser;
use std::process::ExitCode;

/// What a command concluded, mapped to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Valid, or the requested change was made: exit 0.
    Ok,
    /// Problems found, or the change was refused or declined: exit 1.
    Problems,
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match run(args) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(e) => {
            out::flush();
            eprintln!("moon-aof-tool: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: cli::Cli) -> anyhow::Result<Outcome> {
    let ui = out::Ui::new(args.quiet, args.json);
    let outcome = match args.command {
        cli::Command::Check(c) => check::run(&ui, c.into_plan()?),
        cli::Command::Inspect(c) => inspect::run(&ui, c.into_plan()?),
        cli::Command::Migrate(c) => migrate::run(&ui, c.into_plan()?),
        cli::Command::Compact(c) => compact::run(&ui, c.into_plan()?),
    };
    out::flush();
    outcome
}
