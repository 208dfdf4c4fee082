//! moon-aof-tool: offline inspection, checking and repair of Redis 7 / Moon persistence files.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "moon-aof-tool", version, about)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
