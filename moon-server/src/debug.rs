//! DEBUG: DIGEST, DIGEST-VALUE, SLEEP, OBJECT, SET-ACTIVE-EXPIRE, RELOAD, LOADAOF, HELP. Allowed per
//! `enable-debug-command` (no / yes / local), with Redis's refusal text.
//!
//! RELOAD works on `dbfilename` whether or not the AOF is on, as in Redis 7.0: it saves the RDB, empties the
//! dataset and loads the RDB back (dropping expired keys); the AOF files are not touched and nothing is
//! logged to them. LOADAOF (`aof::debug_loadaof`) reloads from the AOF directory.

use crate::client::Client;
use crate::config::ProtectedAction;
use crate::server::Server;
use crate::shards::LockedShards;
use bytes::Bytes;
use engine::digest::{dataset_digest, to_hex, value_digest};
use engine::keyspace::Store;
use engine::resp::Reply;
use engine::util::eq_ic;

const NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

fn allowed(server: &Server, client: &Client) -> bool {
    let policy: ProtectedAction = server.config.read().enable_debug_command;
    policy.allows(client.shared.addr.ip().is_loopback())
}

pub fn run(server: &Server, client: &mut Client, a: &[Bytes]) -> Reply {
    if !allowed(server, client) {
        return Reply::err(NOT_ALLOWED);
    }
    let sub = &a[1];
    if eq_ic(sub, "digest") || eq_ic(sub, "digest-value") {
        let mut view = server.shards.lock_all();
        return digest_in_view(&mut view, client, a);
    }
    if eq_ic(sub, "sleep") && a.len() == 3 {
        let secs = engine::util::parse_f64(&a[2]).unwrap_or(0.0);
        if secs > 0.0 {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
        }
        return Reply::ok();
    }
    if eq_ic(sub, "object") && a.len() == 3 {
        let key = &a[2];
        let shard = server.shards.lock(server.shards.shard_of(key));
        return match shard.ks.dbs[client.db].get(key) {
            None => Reply::err("ERR no such key"),
            Some(e) => Reply::Simple(format!(
                "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:0 lru_seconds_idle:0",
                e.value.encoding_name(),
                e.value.heap_bytes()
            )),
        };
    }
    if eq_ic(sub, "reload") {
        return reload(server, &a[2..]);
    }
    if eq_ic(sub, "loadaof") && a.len() == 2 {
        return crate::aof::debug_loadaof(server);
    }
    if eq_ic(sub, "set-active-expire") && a.len() == 3 {
        let on = engine::util::parse_i64(&a[2]).unwrap_or(0) != 0;
        server.active_expire.store(on, std::sync::atomic::Ordering::Relaxed);
        return Reply::ok();
    }
    if eq_ic(sub, "help") {
        let lines = [
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "OBJECT <key>",
            "    Show low level info about the `key` and associated value.",
            "LOADAOF",
            "    Flush the AOF buffers on disk and reload the AOF in memory.",
            "RELOAD [option ...]",
            "    Save the RDB on disk and reload it back to memory. Available options:",
            "    * MERGE: Merge the content of the RDB with the current dataset, keys in the RDB replace the",
            "      existing ones.",
            "    * NOFLUSH: Do not empty the dataset before loading the RDB.",
            "    * NOSAVE: Do not save the dataset before loading the RDB.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "HELP",
            "    Print this help.",
        ];
        return Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect());
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try DEBUG HELP.", String::from_utf8_lossy(sub)))
}

/// RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the dataset, load the file back, all with every shard held.
fn reload(server: &Server, opts: &[Bytes]) -> Reply {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for o in opts {
        if eq_ic(o, "merge") {
            merge = true;
        } else if eq_ic(o, "noflush") {
            flush = false;
        } else if eq_ic(o, "nosave") {
            save = false;
        } else {
            return Reply::err("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
        }
    }
    let mut view = server.shards.lock_all();
    if save && crate::persist::save_locked(server, &view).is_err() {
        return Reply::err("ERR");
    }
    if flush {
        crate::persist::flush_locked(&mut view);
    }
    let path = crate::persist::rdb_path(server);
    if let Err(e) = crate::persist::load_locked(server, &mut view, &path, merge) {
        crate::warning!("DEBUG RELOAD: can't load '{}': {e}", path.display());
        return Reply::err("ERR Error trying to load the RDB dump, check server logs.");
    }
    crate::notice!("DB reloaded by DEBUG RELOAD");
    Reply::ok()
}

/// DIGEST / DIGEST-VALUE against shards already held (all of them for DIGEST).
pub fn digest_in_view(view: &mut LockedShards<'_>, client: &Client, a: &[Bytes]) -> Reply {
    if eq_ic(&a[1], "digest") {
        if a.len() != 2 {
            return engine::cmd::arity_error("debug|digest");
        }
        if !view.holds_all() {
            return Reply::err("ERR DEBUG DIGEST needs every shard");
        }
        return Reply::Simple(to_hex(&dataset_digest(view)));
    }
    let mut out = Vec::new();
    for key in &a[2..] {
        let d = value_digest(view.db_for_ref(client.db, key).get(key));
        out.push(Reply::Simple(to_hex(&d)));
    }
    Reply::Array(out)
}
