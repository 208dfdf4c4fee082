//! moon-server: the Moon daemon. Takes redis-server's command line: `moon-server [redis.conf] [--directive value ...]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("moon-server v={}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("Usage: moon-server [/path/to/redis.conf] [--directive value ...]");
        return ExitCode::SUCCESS;
    }
    eprintln!("moon-server: the network server is not built yet");
    ExitCode::from(1)
}
