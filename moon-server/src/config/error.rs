//! The start-up configuration error. Its `Display` is the block redis-server prints before exiting, with
//! Moon's name and version in the banner so the text stays recognisable to Redis users.

use std::fmt;
use std::path::PathBuf;

/// Why the configuration could not be loaded. redis-server prints an empty line before the block; the
/// caller decides about that.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A line was rejected. `line` counts from 1 within the text being read: the main file, stdin and the
    /// command-line options form one text (options start after an extra line break), an included file is
    /// counted on its own. `text` is the trimmed line.
    Line { line: usize, text: String, reason: String },
    /// A check made after every line was read (for example the log file cannot be opened).
    Check { reason: String },
    /// The configuration file, or a file it includes, cannot be read.
    Open { path: PathBuf, reason: String },
}

impl ConfigError {
    /// The reason alone, without the banner and the quoted line.
    #[cfg_attr(not(test), allow(dead_code))] // the server prints the whole block
    pub fn reason(&self) -> &str {
        match self {
            ConfigError::Line { reason, .. } | ConfigError::Check { reason } | ConfigError::Open { reason, .. } => {
                reason
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let banner = format!("*** FATAL CONFIG FILE ERROR (Moon {}) ***", env!("CARGO_PKG_VERSION"));
        match self {
            ConfigError::Line { line, text, reason } => {
                write!(f, "{banner}\nReading the configuration file, at line {line}\n>>> '{text}'\n{reason}")
            }
            ConfigError::Check { reason } => write!(f, "{banner}\n{reason}"),
            ConfigError::Open { path, reason } => {
                write!(f, "Fatal error, can't open config file '{}': {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// `strerror(errno)` for an I/O error: Rust's message without the " (os error N)" suffix.
pub(super) fn strerror(e: &std::io::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" (os error ") {
        Some(at) if msg.ends_with(')') => msg[..at].to_string(),
        _ => msg,
    }
}
