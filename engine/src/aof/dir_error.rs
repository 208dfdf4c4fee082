//! [`DirError`]: everything an AOF directory transition can report, with the path involved and Redis's
//! wording.

use super::{lossy, AofState};
use crate::aof::manifest::ManifestError;
use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

/// The file operation that failed, for messages and for callers that match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    CreateDir,
    SyncDir,
    OpenIncr,
    CreateBase,
    WriteBase,
    SyncBase,
    RenameBase,
    RenameIncr,
    RenameLegacy,
    OpenManifestTemp,
    WriteManifestTemp,
    SyncManifestTemp,
    RenameManifest,
    Stat,
}

/// Everything that can go wrong, each with the path involved. Texts follow Redis's log lines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    #[error("{0}")]
    InvalidName(&'static str),
    #[error("Fatal error: can't open the AOF manifest file {} for reading: {}", path.display(), strerror(source))]
    ReadManifest { path: PathBuf, source: io::Error },
    /// The manifest does not parse; [`ManifestError::log_lines`] gives Redis's FATAL block.
    #[error("Bad AOF manifest {}: {error}", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        error: ManifestError,
    },
    /// A manifest this module built cannot be written (a name too long for a manifest line).
    #[error("Can't write the AOF manifest {}: {error}", path.display())]
    ManifestEncode {
        path: PathBuf,
        #[source]
        error: ManifestError,
    },
    /// A base or incr listed in the manifest cannot be `stat`ed (usually: it does not exist).
    #[error("Unable to obtain the AOF file {} length. stat: {}", lossy(name), strerror(source))]
    MissingFile { name: Vec<u8>, path: PathBuf, source: io::Error },
    #[error("The AOF file {} is not a regular file: {}", lossy(name), path.display())]
    NotAFile { name: Vec<u8>, path: PathBuf },
    #[error("{}", io_message(*op, path, target.as_deref(), source))]
    Io { op: IoOp, path: PathBuf, target: Option<PathBuf>, source: io::Error },
    /// The legacy file exists both in the working directory and in the AOF directory, and the manifest does
    /// not say which one is current (Redis aborts on an assertion here).
    #[error(
        "Can't migrate the old-style AOF file {}: {} already exists and the manifest does not name it; \
         move one of them away",
        legacy.display(), inside.display()
    )]
    LegacyConflict { legacy: PathBuf, inside: PathBuf },
    #[error("AOF directory {}: {what} (state {state:?})", path.display())]
    InvalidState { path: PathBuf, what: &'static str, state: AofState },
    #[error("AOF directory {}: no sequence number left", path.display())]
    SeqOverflow { path: PathBuf },
    #[error(
        "AOF directory {} is in an unknown state after a failed directory fsync; restart the server",
        path.display()
    )]
    Poisoned { path: PathBuf },
    /// A simulated crash (see [`AofDir::inject_fault`]); nothing after the step ran.
    #[error("injected crash at step {step}")]
    InjectedCrash { step: u32 },
}

impl DirError {
    /// A simulated crash: callers must not clean anything up.
    pub fn is_injected_crash(&self) -> bool {
        matches!(self, DirError::InjectedCrash { .. })
    }
}

fn io_message(op: IoOp, path: &Path, target: Option<&Path>, e: &io::Error) -> String {
    let (p, t, e) = (path.display(), target.map_or(Cow::Borrowed(""), |t| t.to_string_lossy()), strerror(e));
    match op {
        IoOp::CreateDir => format!("Can't open or create append-only dir {p}: {e}"),
        IoOp::SyncDir => format!("Fail to fsync AOF directory {p}: {e}."),
        IoOp::OpenIncr => format!("Can't open the append-only file {p}: {e}"),
        IoOp::CreateBase => format!("Can't create the temporary AOF base file {p}: {e}"),
        IoOp::WriteBase => format!("Error writing the temporary AOF base file {p}: {e}"),
        IoOp::SyncBase => format!("Fail to fsync the temporary AOF base file {p}: {e}."),
        IoOp::RenameBase => format!("Error trying to rename the temporary AOF base file {p} into {t}: {e}"),
        IoOp::RenameIncr => format!("Error trying to rename the temporary AOF incr file {p} into {t}: {e}"),
        IoOp::RenameLegacy => format!("Error trying to rename the old AOF file {p} into dir {t}: {e}"),
        IoOp::OpenManifestTemp => format!("Can't open the AOF manifest file {p}: {e}"),
        IoOp::WriteManifestTemp => format!("Error trying to write the temporary AOF manifest file {p}: {e}"),
        IoOp::SyncManifestTemp => format!("Fail to fsync the temp AOF file {p}: {e}."),
        IoOp::RenameManifest => format!("Error trying to rename the temporary AOF manifest file {p} into {t}: {e}"),
        IoOp::Stat => format!("Unable to stat {p}: {e}"),
    }
}

/// `strerror(errno)`: the OS message without Rust's " (os error N)".
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}
