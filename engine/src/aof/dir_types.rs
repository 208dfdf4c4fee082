//! The public types of [`super`]: where an AOF lives, its state and options, and what each transition
//! hands back.

use super::{lossy, DirError};
use crate::aof::manifest::{
    is_base_name, manifest_name, rewrite_temp_name, temp_incr_name, temp_manifest_name, AofInfo, AofKind,
};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where one server's AOF lives: `<work_dir>/<appenddirname>/`, files named after `appendfilename`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofPaths {
    pub(super) work_dir: PathBuf,
    pub(super) dir_name: Vec<u8>,
    pub(super) file_name: Vec<u8>,
}

impl AofPaths {
    /// Validates `appenddirname` and `appendfilename` as Redis's config does (non-empty plain names), plus:
    /// no NUL byte, not `.` or `..`.
    pub fn new(work_dir: impl Into<PathBuf>, dir_name: &[u8], file_name: &[u8]) -> Result<AofPaths, DirError> {
        let plain = |n: &[u8]| is_base_name(n) && !n.contains(&0) && n != b"." && n != b"..";
        if dir_name.is_empty() {
            return Err(DirError::InvalidName("appenddirname can't be empty"));
        }
        if !plain(dir_name) {
            return Err(DirError::InvalidName("appenddirname can't be a path, just a dirname"));
        }
        if file_name.is_empty() {
            return Err(DirError::InvalidName("appendfilename can't be empty"));
        }
        if !plain(file_name) {
            return Err(DirError::InvalidName("appendfilename can't be a path, just a filename"));
        }
        Ok(AofPaths { work_dir: work_dir.into(), dir_name: dir_name.to_vec(), file_name: file_name.to_vec() })
    }

    /// Redis's defaults: `appendonlydir` and `appendonly.aof`.
    pub fn with_defaults(work_dir: impl Into<PathBuf>) -> AofPaths {
        AofPaths {
            work_dir: work_dir.into(),
            dir_name: b"appendonlydir".to_vec(),
            file_name: b"appendonly.aof".to_vec(),
        }
    }

    /// The paths of the AOF a manifest file belongs to (`.../<appenddirname>/<appendfilename>.manifest`),
    /// for tools handed a manifest path. The directory is canonicalized to find its parent.
    pub fn from_manifest_path(manifest: &Path) -> Result<AofPaths, DirError> {
        let not_manifest = || DirError::InvalidName("the file name must be <appendfilename>.manifest");
        let file_name = manifest.file_name().map(OsStrExt::as_bytes).ok_or_else(not_manifest)?;
        let file_name = file_name.strip_suffix(b".manifest").filter(|n| !n.is_empty()).ok_or_else(not_manifest)?;
        let parent = match manifest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(parent).map_err(|source| DirError::Io {
            op: super::IoOp::Stat,
            path: parent.to_path_buf(),
            target: None,
            source,
        })?;
        let (Some(work_dir), Some(dir_name)) = (dir.parent(), dir.file_name()) else {
            return Err(DirError::InvalidName("appenddirname can't be the root directory"));
        };
        AofPaths::new(work_dir, dir_name.as_bytes(), file_name)
    }

    /// The server's working directory (`dir`).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// `appenddirname`.
    pub fn dir_name(&self) -> &[u8] {
        &self.dir_name
    }

    /// `appendfilename`.
    pub fn file_name(&self) -> &[u8] {
        &self.file_name
    }

    /// `<work_dir>/<appenddirname>`.
    pub fn aof_dir(&self) -> PathBuf {
        self.work_dir.join(OsStr::from_bytes(&self.dir_name))
    }

    /// A file of the AOF directory.
    pub fn file_path(&self, name: &[u8]) -> PathBuf {
        self.aof_dir().join(OsStr::from_bytes(name))
    }

    /// `<aof_dir>/<appendfilename>.manifest`.
    pub fn manifest_path(&self) -> PathBuf {
        self.file_path(&manifest_name(&self.file_name))
    }

    /// `<aof_dir>/temp-<appendfilename>.manifest`.
    pub fn temp_manifest_path(&self) -> PathBuf {
        self.file_path(&temp_manifest_name(&self.file_name))
    }

    /// `<aof_dir>/temp-<appendfilename>.incr`.
    pub fn temp_incr_path(&self) -> PathBuf {
        self.file_path(&temp_incr_name(&self.file_name))
    }

    /// `<work_dir>/<appendfilename>`: where a pre-7.0 server kept its single AOF file.
    pub fn legacy_path(&self) -> PathBuf {
        self.work_dir.join(OsStr::from_bytes(&self.file_name))
    }

    /// `<work_dir>/temp-rewriteaof-bg-<id>.aof`: a background rewrite's output.
    pub fn rewrite_temp_path(&self, id: u32) -> PathBuf {
        self.work_dir.join(OsStr::from_bytes(&rewrite_temp_name(id)))
    }
}

/// Redis's `aof_state`, as far as files are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AofState {
    /// `appendonly no`: no incr file is open; a rewrite makes every incr history.
    Off,
    /// `appendonly yes`: commands go to the last incr of the manifest.
    On,
    /// `CONFIG SET appendonly yes` until its first rewrite succeeds: commands go to `temp-<name>.incr`,
    /// which that rewrite renames to the next incr. Nothing written in this state is durable before then.
    WaitRewrite,
}

/// Settings that change what transitions do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AofOptions {
    /// `aof-disable-auto-gc yes`: history files and lines are kept until the option is turned off.
    pub disable_auto_gc: bool,
}

/// An incr file opened for appending, handed to the writer.
#[derive(Debug)]
pub struct OpenIncr {
    pub file: File,
    /// The name in the manifest (for the temp incr: `temp-<appendfilename>.incr`, not in the manifest).
    pub name: Vec<u8>,
    pub path: PathBuf,
    /// Its length when opened (Redis's `aof_last_incr_size`).
    pub size: u64,
    /// Created now (Redis logs "Creating AOF incr file ...") rather than reopened ("Opening ...").
    pub created: bool,
}

/// One file to load, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub info: AofInfo,
    pub path: PathBuf,
    pub size: u64,
    /// The last file of the set, or an incr file followed only by empty ones: the only one whose torn tail
    /// may be truncated ([`crate::aof::load::counts_as_last`]).
    pub is_last: bool,
}

impl PlannedFile {
    /// The form [`super::load`] takes.
    pub fn to_load_file(&self) -> crate::aof::load::LoadFile {
        crate::aof::load::LoadFile {
            path: self.path.clone(),
            name: self.info.name_lossy().into_owned(),
            kind: self.info.kind,
        }
    }
}

/// What start-up loads: the base (if any), then every incr, each known to exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    pub files: Vec<PlannedFile>,
}

/// Redis's three outcomes before reading any byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStatus {
    /// No base and no incr in the manifest (`AOF_NOT_EXIST`): start empty.
    NotExist,
    /// Every listed file is empty (`AOF_EMPTY`): start empty.
    Empty,
    /// Something to load.
    Data,
}

impl LoadPlan {
    pub fn status(&self) -> LoadStatus {
        if self.files.is_empty() {
            LoadStatus::NotExist
        } else if self.total_size() == 0 {
            LoadStatus::Empty
        } else {
            LoadStatus::Data
        }
    }

    /// Redis's `aof_current_size` after loading.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The files in the form [`super::load`] takes.
    pub fn load_files(&self) -> Vec<crate::aof::load::LoadFile> {
        self.files.iter().map(PlannedFile::to_load_file).collect()
    }

    /// The base file's size (Redis's `aof_rewrite_base_size` after loading).
    pub fn base_size(&self) -> u64 {
        self.files.iter().filter(|f| f.info.kind == AofKind::Base).map(|f| f.size).sum()
    }
}

/// A legacy file was moved into the AOF directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyUpgrade {
    pub file_name: Vec<u8>,
    pub dir_name: Vec<u8>,
}

impl LegacyUpgrade {
    /// Redis's log line for it.
    pub fn log_line(&self) -> String {
        format!(
            "Successfully migrated an old-style AOF file ({}) into the AOF directory ({}).",
            lossy(&self.file_name),
            lossy(&self.dir_name)
        )
    }
}

/// The result of [`AofDir::open_on_start`].
#[derive(Debug)]
pub struct StartOpen {
    /// The last incr, opened with `O_APPEND`.
    pub incr: OpenIncr,
    /// The base created on a fresh start ("Creating AOF base file %s on server start").
    pub created_base: Option<AofInfo>,
}

/// The result of [`AofDir::start_rewrite`].
#[derive(Debug)]
pub struct RewriteStart {
    /// Where the rewrite must write the new base (in the working directory). The caller creates it; it need
    /// not fsync it ([`AofDir::rewrite_done`] does).
    pub temp_base: PathBuf,
    /// The file to append to from now on: the new incr (state On) or the temp incr (WaitRewrite); `None`
    /// when AOF is off.
    pub incr: Option<OpenIncr>,
}

/// The result of a successful [`AofDir::rewrite_done`].
#[derive(Debug)]
pub struct RewriteDone {
    /// The new base.
    pub base: AofInfo,
    pub base_size: u64,
    /// In WaitRewrite: the name the temp incr now has (the same open file keeps working).
    pub incr: Option<AofInfo>,
    /// The history removal that follows (its failure does not undo the rewrite).
    pub history: Result<HistoryRemoval, DirError>,
}

/// What [`AofDir::remove_history`] did ("Removing the history file %s in the background" per name).
#[derive(Debug, Default)]
pub struct HistoryRemoval {
    pub removed: Vec<Vec<u8>>,
    /// Files that could not be unlinked (other than already missing). Their lines are dropped anyway, as
    /// Redis does; the files are left behind, unreferenced.
    pub failed: Vec<(Vec<u8>, io::Error)>,
}

/// Temp files removed after a failed or aborted rewrite.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RewriteCleanup {
    /// The temp incr of WaitRewrite ("Removing the temp incr aof file %s in the background").
    pub temp_incr: Option<Vec<u8>>,
}
