//! DEBUG: DIGEST, DIGEST-VALUE, SLEEP, OBJECT, POPULATE, SET-ACTIVE-EXPIRE, RELOAD, LOADAOF, HELP. Allowed per
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
    if eq_ic(sub, "populate") && (3..=5).contains(&a.len()) {
        return populate(server, client, &a[2..]);
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
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named <prefix>:<num> (prefix `key` by default) holding value:<num>,",
            "    or that text cut or padded with zero bytes to <size> bytes. Existing keys are left alone.",
            "    Nothing is written to the AOF.",
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
    Reply::err(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// POPULATE count [prefix] [size]: Redis's test filler, with every shard held (the server waits, as Redis
/// does). Not logged to the AOF and not counted as changes, as in Redis.
fn populate(server: &Server, client: &Client, a: &[Bytes]) -> Reply {
    let non_negative = |b: &Bytes| engine::util::parse_i64(b).filter(|n| *n >= 0);
    let Some(count) = non_negative(&a[0]) else {
        return Reply::err("ERR value is out of range, must be positive");
    };
    let prefix = a.get(1).map_or(&b"key"[..], |p| &p[..]);
    let size = match a.get(2).map(non_negative) {
        None => 0,
        // Larger than any value a client could send (`proto-max-bulk-len`'s ceiling): refused, not attempted.
        Some(Some(n)) if n > 512 << 20 => return Reply::err("ERR value is out of range, must be positive"),
        Some(Some(n)) => n as usize,
        Some(None) => return Reply::err("ERR value is out of range, must be positive"),
    };
    let mut view = server.shards.lock_all();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut value = Vec::new();
    for j in 0..count as u64 {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(j.to_string().as_bytes());
        let db = view.db_for(client.db, &key);
        if db.get(&key).is_some() {
            continue;
        }
        value.clear();
        value.extend_from_slice(format!("value:{j}").as_bytes());
        if size != 0 {
            value.resize(size, 0);
        }
        db.insert(&key, engine::types::Value::Str(engine::types::StrValue::from_bytes(&value)), None);
    }
    Reply::ok()
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
