//! The advisory lock that tells offline tools an AOF is in use: `<appenddirname>/<appendfilename>.lock`.
//!
//! `moon-server` takes it at start-up when `appendonly yes` (before reading the manifest) and keeps it until
//! it exits; `moon-aof-tool` takes it before any command that changes files (`compact`, `migrate`,
//! `check --fix`, `check --truncate-to-timestamp`), and refuses to run when it is held. The lock is an OS
//! file lock (`flock(2)` through [`std::fs::File::try_lock`]) on an open descriptor, so it disappears with
//! the process that holds it, even after `kill -9`: a stale lock file never blocks anyone. The file itself is
//! never deleted (deleting it would let two processes lock two different files of the same name); it holds
//! the holder's pid and purpose as text, for messages only.
//!
//! The lock is per `appendfilename`, not per directory: two servers sharing a working directory with
//! different `appendfilename`s share `appendonlydir/` (Redis allows it) and must not block each other.
//! redis-server knows nothing of this file and ignores it (it is not in the manifest); a running
//! redis-server is therefore not detected.

use super::dir::AofPaths;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `<appendfilename>.lock`.
pub fn lock_name(appendfilename: &[u8]) -> Vec<u8> {
    [appendfilename, b".lock"].concat()
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it; `holder` is what that process wrote (`pid <n> <purpose>`), if readable.
    #[error("the AOF {} is in use by another process ({}); stop it first", path.display(), holder.as_deref().unwrap_or("holder unknown"))]
    Held { path: PathBuf, holder: Option<String> },
    #[error("can't lock the AOF {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A held lock; dropping it releases it (so does the process ending).
#[derive(Debug)]
pub struct AofLock {
    file: File,
    path: PathBuf,
}

impl AofLock {
    /// Takes the lock of the AOF at `paths` without waiting. Creates the AOF directory if it is missing (and
    /// makes that durable by fsyncing the working directory), then opens or creates the lock file, locks it
    /// exclusively and writes `pid <pid> <purpose>\n` into it.
    pub fn acquire(paths: &AofPaths, purpose: &str) -> Result<AofLock, LockError> {
        let dir = paths.aof_dir();
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        match fs::create_dir(&dir) {
            Ok(()) => File::open(paths.work_dir()).and_then(|d| d.sync_all()).map_err(io_err(paths.work_dir()))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        let path = lock_path(paths);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
        }
        let text = format!("pid {} {}\n", std::process::id(), purpose.replace('\n', " "));
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(io_err(&path))?;
        Ok(AofLock { file, path })
    }

    /// Whether another process holds the lock of the AOF at `paths`, without taking it for long: `Ok(None)`
    /// when it is free (or there is no lock file), `Ok(Some(holder))` when it is held.
    pub fn holder(paths: &AofPaths) -> io::Result<Option<String>> {
        let path = lock_path(paths);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => {
                Ok(Some(read_holder(&mut file).unwrap_or_else(|| "holder unknown".to_string())))
            }
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the lock now (the same as dropping it).
    pub fn release(self) {
        let _ = self.file.unlock();
    }
}

fn lock_path(paths: &AofPaths) -> PathBuf {
    paths.file_path(&lock_name(paths.file_name()))
}

fn read_holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(256).read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> AofPaths {
        AofPaths::with_defaults(dir)
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("moon-lock-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn second_acquire_is_refused_until_release() {
        let d = temp_dir("excl");
        let p = paths(&d);
        assert_eq!(AofLock::holder(&p).unwrap(), None);
        let l = AofLock::acquire(&p, "moon-server").unwrap();
        assert!(p.aof_dir().is_dir(), "the AOF directory is created");
        assert_eq!(l.path(), p.aof_dir().join("appendonly.aof.lock"));
        // flock locks belong to the open file description: a second open in the same process conflicts too.
        match AofLock::acquire(&p, "compact") {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.as_deref(), Some(format!("pid {} moon-server", std::process::id()).as_str()))
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(AofLock::holder(&p).unwrap().unwrap().contains("moon-server"));
        l.release();
        assert_eq!(AofLock::holder(&p).unwrap(), None);
        let l2 = AofLock::acquire(&p, "compact").unwrap();
        drop(l2);
        assert!(p.aof_dir().join("appendonly.aof.lock").is_file(), "the lock file is never deleted");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn locks_are_per_appendfilename() {
        let d = temp_dir("names");
        let a = AofPaths::new(&d, b"appendonlydir", b"appendonly.aof").unwrap();
        let b = AofPaths::new(&d, b"appendonlydir", b"appendonly.aof2").unwrap();
        let _la = AofLock::acquire(&a, "a").unwrap();
        let _lb = AofLock::acquire(&b, "b").unwrap();
        assert!(AofLock::holder(&a).unwrap().is_some());
        fs::remove_dir_all(&d).unwrap();
    }
}
