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
use std::sync::Arc;
use std::thread::JoinHandle;

/// A start-up load in progress.
pub struct Loading {
    path: PathBuf,
    thread: JoinHandle<Result<LoadReport, RdbError>>,
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
    let thread = std::thread::Builder::new().name("moon-loader".into()).spawn(move || load_dataset(&srv, &p))?;
    Ok(Some(Loading { path, thread }))
}

impl Loading {
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
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
