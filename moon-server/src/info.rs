//! INFO [section ...]: Redis's sections and field names (server, clients, memory, persistence, stats,
//! replication, cpu, keyspace, commandstats), `default`, `all` and `everything`.

use crate::server::{unix_ms, Counters, Server};
use bytes::Bytes;
use engine::resp::Reply;
use std::fmt::Write;
use std::sync::atomic::Ordering;

const DEFAULT: &[&str] = &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];
const ALL: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "commandstats", "keyspace"];

pub fn run(server: &Server, a: &[Bytes]) -> Reply {
    let mut wanted: Vec<String> = Vec::new();
    if a.len() == 1 {
        wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
    }
    for s in &a[1..] {
        let s = String::from_utf8_lossy(s).to_ascii_lowercase();
        match s.as_str() {
            "default" => wanted.extend(DEFAULT.iter().map(|s| s.to_string())),
            "all" | "everything" => wanted.extend(ALL.iter().map(|s| s.to_string())),
            other => wanted.push(other.to_string()),
        }
    }
    let mut out = String::new();
    let mut seen = Vec::new();
    for name in &wanted {
        if seen.contains(name) {
            continue;
        }
        seen.push(name.clone());
        let body = section(server, name);
        if let Some(body) = body {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(&body);
        }
    }
    Reply::Verbatim("txt".into(), Bytes::from(out))
}

fn section(server: &Server, name: &str) -> Option<String> {
    let mut s = String::new();
    let st = &server.stats;
    let g = Counters::get;
    match name {
        "server" => {
            let up = server.started.elapsed().as_secs();
            let cfg = server.config.read();
            let _ = write!(
                s,
                "# Server\r\nredis_version:7.0.15\r\nmoon_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:{}\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:0\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nshards:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                if monoio::utils::detect_uring() { "io_uring" } else { "epoll" },
                std::process::id(),
                server.run_id,
                server.port,
                unix_ms() * 1000,
                up,
                up / 86400,
                cfg.hz,
                cfg.hz,
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                server.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                server.shards.count(),
            );
        }
        "clients" => {
            let clients = server.clients.snapshot();
            let pubsub = clients.iter().filter(|c| c.subs.load(Ordering::Relaxed) + c.psubs.load(Ordering::Relaxed) > 0).count();
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\npubsub_clients:{}\r\n",
                clients.len(),
                server.config.read().maxclients,
                pubsub
            );
        }
        "memory" => {
            let used = used_memory(server);
            let rss = rss_bytes();
            let _ = write!(
                s,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{used}\r\nmaxmemory:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:libc\r\n",
                human(used),
                human(rss),
                server.config.read().maxmemory,
                server.config.read().maxmemory_policy.as_str(),
                if used > 0 { rss as f64 / used as f64 } else { 0.0 }
            );
        }
        "persistence" => {
            let aof = server.config.read().appendonly;
            let _ = write!(
                s,
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\naof_enabled:{}\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
                server.dirty.load(Ordering::Relaxed),
                server.lastsave.load(Ordering::Relaxed),
                u8::from(aof)
            );
        }
        "stats" => {
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:0\r\npubsub_patterns:0\r\ntotal_error_replies:{}\r\nunexpected_error_replies:{}\r\ntotal_auth_failures:{}\r\n",
                g(&st.total_connections_received),
                g(&st.total_commands_processed),
                g(&st.net_input_bytes),
                g(&st.net_output_bytes),
                g(&st.rejected_connections),
                g(&st.expired_keys),
                g(&st.keyspace_hits),
                g(&st.keyspace_misses),
                g(&st.total_error_replies),
                g(&st.unexpected_error_replies),
                g(&st.auth_failures),
            );
        }
        "replication" => {
            let _ = write!(
                s,
                "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                server.run_id
            );
        }
        "cpu" => {
            let (user, sys) = cpu_times();
            let _ = write!(s, "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n");
        }
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            for db in 0..server.shards.databases() {
                let (mut keys, mut expires) = (0, 0);
                for sh in 0..server.shards.count() {
                    let g = server.shards.lock(sh);
                    keys += g.ks.dbs[db].len();
                    expires += g.ks.dbs[db].expires_count();
                }
                if keys > 0 {
                    let _ = write!(s, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
                }
            }
        }
        "commandstats" => s.push_str("# Commandstats\r\n"),
        _ => return None,
    }
    Some(s)
}

/// Bytes used by the dataset: tables plus values (what `used_memory` approximates in Moon).
pub fn used_memory(server: &Server) -> u64 {
    let mut total = 0usize;
    for sh in 0..server.shards.count() {
        let g = server.shards.lock(sh);
        for db in &g.ks.dbs {
            total += db.table.heap_bytes();
            for e in db.table.iter() {
                total += e.value.heap_bytes();
            }
        }
    }
    total as u64 + 1024 * 1024
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn cpu_times() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (0.0, 0.0) };
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = 100.0;
    let user = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    let sys = f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / tick;
    (user, sys)
}

fn human(n: u64) -> String {
    let f = n as f64;
    if f < 1024.0 {
        format!("{n}B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.2}K", f / 1024.0)
    } else if f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", f / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", f / 1024.0 / 1024.0 / 1024.0)
    }
}
