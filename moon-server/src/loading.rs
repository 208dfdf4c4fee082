//! Start-up loading of `dbfilename` (with `appendonly no`) while the server already accepts clients, as
//! Redis does: until the dataset is in, commands without Redis's `loading` flag get `-LOADING Redis is
//! loading the dataset in memory` (see `bgsave::refusal`), and `INFO persistence` shows `loading:1` with the
//! `loading_*` progress fields.
//!
//! The load runs on its own thread and goes through one function, [`load_dataset`]: the single place to
//! swap in another loader (a parallel one). Loading holds the shards only in short batches, so the few
//! commands allowed meanwhile that look at the keyspace (INFO keyspace, DEBUG DIGEST) wait at most one batch;
//! no other client can write, so releasing them between batches changes nothing.
//!
//! The hidden `key-load-delay` setting (microseconds per key, negative = 1 µs every `-n` keys, as Redis's
//! debug delay) slows the load down so tests can watch it.

use crate::server::Server;
use engine::rdb::{LoadReport, RdbError};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A start-up load's thread (of `dbfilename` here, of the AOF in `aof::startup`), which the main thread
/// can wait for with a timeout: the server stops answering -LOADING as soon as the data is in, not at the
/// next tick of a poll.
pub struct LoaderThread<T> {
    thread: JoinHandle<T>,
    /// Closed when the thread ends (its sender is dropped).
    done: Receiver<()>,
}

impl<T: Send + 'static> LoaderThread<T> {
    pub fn spawn(name: &str, f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<Self> {
        let (tx, done) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            let _ended = tx;
            f()
        })?;
        Ok(LoaderThread { thread, done })
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits up to `timeout` for the thread to end.
    pub fn wait(&self, timeout: Duration) {
        if let Err(RecvTimeoutError::Disconnected) = self.done.recv_timeout(timeout) {
            // The closure has returned; the thread ends a moment later.
            while !self.thread.is_finished() {
                std::thread::yield_now();
            }
        }
    }

    /// The thread's result; `Err` if it panicked.
    pub fn join(self) -> std::thread::Result<T> {
        self.thread.join()
    }
}

/// A start-up load in progress.
pub struct Loading {
    path: PathBuf,
    thread: LoaderThread<Result<LoadReport, RdbError>>,
}

/// With `appendonly no` and `dbfilename` present, raises the `loading` flag and starts loading it. Call
/// before the shard threads accept clients, so none sees an empty dataset.
pub fn start(server: &Arc<Server>) -> anyhow::Result<Option<Loading>> {
    if server.config.read().appendonly {
        return Ok(None);
    }
    let path = crate::persist::rdb_path(server);
    if !path.exists() {
        return Ok(None);
    }
    crate::persist::set_loading(server, Some(&path));
    let (srv, p) = (server.clone(), path.clone());
    let thread = LoaderThread::spawn("moon-loader", move || load_dataset(&srv, &p))?;
    Ok(Some(Loading { path, thread }))
}

impl Loading {
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits up to `timeout` for the load to end.
    pub fn wait(&self, timeout: Duration) {
        self.thread.wait(timeout);
    }

    /// Waits for the load. On success lowers the `loading` flag; on failure leaves it up (the server exits:
    /// no client may write to a half-loaded dataset) and returns the fatal error text.
    pub fn finish(self, server: &Server) -> Result<(), String> {
        match self.thread.join() {
            Ok(Ok(_)) => {
                crate::persist::set_loading(server, None);
                Ok(())
            }
            Ok(Err(e)) => Err(crate::persist::fatal_load_error(&self.path, &e)),
            Err(_) => {
                Err(format!("Fatal error loading the DB from '{}': the loader panicked. Exiting.", self.path.display()))
            }
        }
    }
}

/// The loader call: reads `path` into the shards, decoding and inserting on one thread per shard (see
/// `rdb_load`, which also holds each shard for one batch of keys at a time, honours `key-load-delay` and
/// reports progress).
pub fn load_dataset(server: &Server, path: &Path) -> Result<LoadReport, RdbError> {
    crate::persist::load_with(server, |opts| crate::rdb_load::load_file(server, path, opts))
}
