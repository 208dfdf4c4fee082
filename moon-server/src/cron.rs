//! Each shard thread's periodic work (Redis's `serverCron` share for that shard): active expiry, a few
//! buckets of incremental rehash, and closing idle clients; shard 0 also starts scheduled BGSAVEs and the
//! ones the `save` points call for.

use crate::server::{unix_ms, Counters, Server};
use std::sync::Arc;
use std::time::Duration;

/// Buckets scanned per database per tick by the active expiry cycle.
const EXPIRE_BUDGET: usize = 64;
/// Buckets moved per database per tick by the background rehash.
const REHASH_BUDGET: usize = 100;

pub async fn run(server: Arc<Server>, shard: usize) {
    loop {
        let hz = server.config.read().hz.clamp(1, 500);
        monoio::time::sleep(Duration::from_millis(1000 / u64::from(hz))).await;
        if server.is_shutting_down() {
            return;
        }
        tick(&server, shard);
    }
}

fn tick(server: &Server, shard: usize) {
    // The loader holds the shards in batches and nothing expires meanwhile (Redis's cron does not either).
    if server.persist.loading.load(std::sync::atomic::Ordering::Acquire) {
        return;
    }
    let now = unix_ms();
    let mut expired = 0;
    {
        let mut s = server.shards.lock(shard);
        // As in Redis, keys do not expire by themselves while CLIENT PAUSE holds writes back.
        let active =
            server.active_expire.load(std::sync::atomic::Ordering::Relaxed) && !crate::shutdown::writes_paused(server);
        for db in 0..s.ks.dbs.len() {
            let dead = if active { s.ks.dbs[db].active_expire_step(now, EXPIRE_BUDGET) } else { Vec::new() };
            expired += dead.len() as u64;
            crate::aof::feed_expired(server, db, &dead);
            for key in &dead {
                s.touch(db, key);
            }
            s.ks.dbs[db].table.rehash_step(REHASH_BUDGET);
        }
    }
    Counters::add(&server.stats.expired_keys, expired);
    if shard == 0 {
        crate::stats::cron(server);
        crate::aof::rewrite::cron(server);
        crate::bgsave::cron(server);
    }
    // Idle clients: every thread checks all, which is cheap and needs no ownership map.
    if shard == 0 {
        let timeout = u64::from(server.config.read().timeout);
        if timeout > 0 {
            for c in server.clients.snapshot() {
                use std::sync::atomic::Ordering::Relaxed;
                let idle = now - c.last_cmd_ms.load(Relaxed);
                // As Redis: blocked, pub/sub and MONITOR clients are exempt from `timeout`.
                let exempt = c.subs.load(Relaxed) + c.psubs.load(Relaxed) > 0 || {
                    let flags = c.flags.lock();
                    flags.contains('b') || flags.contains('O') || flags.contains('P')
                };
                if idle > (timeout * 1000) as i64 && !exempt {
                    c.kill();
                }
            }
        }
    }
}
