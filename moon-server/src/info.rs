//! INFO [section ...]: Redis 7.0's sections, fields and order. Sections always come out in Redis's order,
//! whatever order they were asked in; `default`, `all` and `everything` select groups; an unknown section
//! adds nothing. Fields Moon has no counterpart for keep Redis's idle values, so clients that parse INFO find
//! every field they expect.

use crate::memory_cmd::{self, human};
use crate::server::{unix_ms, Counters, Server};
use bytes::Bytes;
use engine::resp::Reply;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Every section in output order, and whether `INFO` / `INFO default` includes it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// The sections `args` (INFO's arguments, without the command name) select, in output order.
pub fn selected(args: &[Bytes]) -> Vec<&'static str> {
    let mut want = [false; SECTIONS.len()];
    if args.is_empty() {
        SECTIONS.iter().enumerate().for_each(|(i, s)| want[i] = s.1);
    }
    for a in args {
        let name = String::from_utf8_lossy(a).to_ascii_lowercase();
        match name.as_str() {
            "default" => SECTIONS.iter().enumerate().for_each(|(i, s)| want[i] |= s.1),
            "all" | "everything" => want = [true; SECTIONS.len()],
            other => {
                if let Some(i) = SECTIONS.iter().position(|s| s.0 == other) {
                    want[i] = true;
                }
            }
        }
    }
    SECTIONS.iter().zip(want).filter(|(_, w)| *w).map(|(s, _)| s.0).collect()
}

pub fn run(server: &Server, a: &[Bytes]) -> Reply {
    let mut out = String::new();
    for name in selected(&a[1..]) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section(server, name, &mut out);
    }
    Reply::Verbatim("txt".into(), Bytes::from(out))
}

fn section(server: &Server, name: &str, s: &mut String) {
    let st = &server.stats;
    let g = Counters::get;
    match name {
        "server" => {
            let up = server.started.elapsed().as_secs();
            let cfg = server.config.read();
            let _ = write!(
                s,
                "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:{}\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nmoon_version:{}\r\nshards:{}\r\n",
                os_name(),
                if monoio::utils::detect_uring() { "io_uring" } else { "epoll" },
                std::process::id(),
                server.run_id,
                server.port,
                now_usec(),
                up / 86400,
                cfg.hz,
                cfg.hz,
                lru_clock(),
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                server
                    .config_file
                    .as_ref()
                    .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()).display().to_string())
                    .unwrap_or_default(),
                env!("CARGO_PKG_VERSION"),
                server.shards.count(),
            );
        }
        "clients" => {
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                server.clients.len(),
                server.config.read().maxclients,
                crate::blocking::blocked_clients(server),
            );
        }
        "memory" => memory(server, s),
        "persistence" => {
            // Redis's `aof_state != AOF_OFF`: the pipeline is logging, or the AOF is loading at start-up.
            let aof = server.aof.is_on()
                || (server.config.read().appendonly
                    && server.persist.loading.load(std::sync::atomic::Ordering::Relaxed));
            server.persist.render(server, aof, s);
        }
        "stats" => {
            let (ops, input, output) = crate::stats::instantaneous(server);
            let (channels, patterns) = crate::pubsub::counts(server);
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{ops}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:0\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{channels}\r\npubsub_patterns:{patterns}\r\npubsubshard_channels:0\r\nlatest_fork_usec:0\r\nlatest_snapshot_max_hold_usec:{}\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\nunexpected_error_replies:{}\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
                g(&st.total_connections_received),
                g(&st.total_commands_processed),
                g(&st.net_input_bytes),
                g(&st.net_output_bytes),
                input as f64 / 1024.0,
                output as f64 / 1024.0,
                g(&st.rejected_connections),
                g(&st.expired_keys),
                g(&st.keyspace_hits),
                g(&st.keyspace_misses),
                server.snapshots.latest_max_hold_us.load(Ordering::Relaxed),
                g(&st.unexpected_error_replies),
                g(&st.total_error_replies),
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
            let (su, ss) = rusage(libc::RUSAGE_SELF);
            let (cu, cs) = rusage(libc::RUSAGE_CHILDREN);
            let (tu, ts) = rusage(libc::RUSAGE_THREAD);
            let _ = write!(
                s,
                "# CPU\r\nused_cpu_sys:{ss:.6}\r\nused_cpu_user:{su:.6}\r\nused_cpu_sys_children:{cs:.6}\r\nused_cpu_user_children:{cu:.6}\r\nused_cpu_sys_main_thread:{ts:.6}\r\nused_cpu_user_main_thread:{tu:.6}\r\n"
            );
        }
        "modules" => s.push_str("# Modules\r\n"),
        "commandstats" => {
            s.push_str("# Commandstats\r\n");
            crate::stats::commandstats(server, s);
        }
        "errorstats" => {
            s.push_str("# Errorstats\r\n");
            crate::stats::errorstats(server, s);
        }
        "latencystats" => {
            s.push_str("# Latencystats\r\n");
            crate::stats::latencystats(server, s);
        }
        "cluster" => s.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            let dbs = server.shards.databases();
            let (mut keys, mut expires) = (vec![0usize; dbs], vec![0usize; dbs]);
            for sh in 0..server.shards.count() {
                let g = server.shards.lock(sh);
                for (db, d) in g.ks.dbs.iter().enumerate().take(dbs) {
                    keys[db] += d.len();
                    expires[db] += d.expires_count();
                }
            }
            for db in 0..dbs {
                if keys[db] > 0 {
                    let _ = write!(s, "db{db}:keys={},expires={},avg_ttl=0\r\n", keys[db], expires[db]);
                }
            }
        }
        _ => {}
    }
}

fn memory(server: &Server, s: &mut String) {
    let r = memory_cmd::report(server);
    let (maxmemory, policy) = {
        let cfg = server.config.read();
        (cfg.maxmemory, cfg.maxmemory_policy.as_str())
    };
    let total = memory_cmd::total_system_memory();
    let frag_bytes = r.rss as i64 - r.used as i64;
    let aof_buffer = server.persist.aof_buffer_length.load(Ordering::Relaxed);
    let _ = write!(
        s,
        "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:{}\r\nused_memory_dataset:{}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\ntotal_system_memory:{total}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_lua_human:0B\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:0\r\nnumber_of_functions:0\r\nnumber_of_libraries:0\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:0\r\nused_memory_vm_total_human:0B\r\nused_memory_functions:0\r\nused_memory_scripts:0\r\nused_memory_scripts_human:0B\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{policy}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{frag_bytes}\r\nrss_overhead_ratio:1.00\r\nrss_overhead_bytes:0\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{frag_bytes}\r\nmem_not_counted_for_evict:{aof_buffer}\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_cluster_links:0\r\nmem_aof_buffer:{aof_buffer}\r\nmem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
        r.used,
        human(r.used),
        r.rss,
        human(r.rss),
        r.peak,
        human(r.peak),
        r.peak_perc(),
        r.overhead,
        r.startup,
        r.dataset,
        r.dataset_perc(),
        r.used,
        r.used,
        r.rss,
        human(total),
        human(maxmemory),
        r.frag_ratio(),
        r.frag_ratio(),
    );
}

fn now_usec() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(unix_ms() * 1000, |d| d.as_micros() as i64)
}

/// Redis's LRU clock: seconds, modulo 2^24.
fn lru_clock() -> i64 {
    (unix_ms() / 1000) & ((1 << 24) - 1)
}

/// `uname -s -r -m`, as Redis prints it.
fn os_name() -> String {
    // SAFETY: utsname is plain old data; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", field(&u.sysname), field(&u.release), field(&u.machine))
}

/// (user, system) CPU seconds for `who`.
fn rusage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: rusage is plain old data, filled by getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(v: &[&str]) -> Vec<&'static str> {
        let args: Vec<Bytes> = v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        selected(&args)
    }

    #[test]
    fn sections_come_in_redis_order() {
        assert_eq!(
            sel(&[]),
            [
                "server",
                "clients",
                "memory",
                "persistence",
                "stats",
                "replication",
                "cpu",
                "modules",
                "errorstats",
                "cluster",
                "keyspace"
            ]
        );
        assert_eq!(sel(&["cpu", "SERVER"]), ["server", "cpu"]);
        assert_eq!(sel(&["all"]).len(), SECTIONS.len());
        assert_eq!(sel(&["everything"]).len(), SECTIONS.len());
        assert!(sel(&["foo"]).is_empty());
        assert_eq!(sel(&["commandstats", "foo"]), ["commandstats"]);
        assert_eq!(sel(&["default", "latencystats"]).len(), 12);
    }

    #[test]
    fn os_and_clock() {
        assert!(os_name().split(' ').count() >= 3);
        assert!(lru_clock() < 1 << 24);
    }
}
