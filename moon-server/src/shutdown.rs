//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT], the shutdown hook persistence fills in ([`prepare`]), and
//! CLIENT PAUSE / UNPAUSE with the check the connection loop makes before each command ([`pause_until`]).

use crate::client::Client;
use crate::dispatch::Next;
use crate::server::Server;
use bytes::Bytes;
use engine::cmd::spec::flags;
use engine::cmd::CommandSpec;
use engine::resp::Reply;
use engine::util::eq_ic;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a paused connection should look again (CLIENT UNPAUSE can end a pause early).
pub const PAUSE_POLL: Duration = Duration::from_millis(10);

/// What CLIENT PAUSE holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// Commands that write or may replicate (Redis's `CMD_WRITE | CMD_MAY_REPLICATE`), and EXEC of a
    /// transaction holding one.
    Write,
    /// Every command.
    All,
}

/// The CLIENT PAUSE state: a flag for the per-command fast path, the details behind a lock.
#[derive(Default)]
pub struct Pause {
    active: AtomicBool,
    state: Mutex<Option<(Instant, PauseKind)>>,
}

impl Pause {
    /// Pauses until `end`; a pause already running keeps the later end and the stronger kind.
    pub fn pause(&self, end: Instant, kind: PauseKind) {
        let mut st = self.state.lock();
        let now = Instant::now();
        *st = match *st {
            Some((e, k)) if e > now => Some((e.max(end), k.max(kind))),
            _ => Some((end, kind)),
        };
        self.active.store(true, Ordering::Release);
    }

    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Release);
    }

    /// The running pause, if any (an expired one is cleared).
    pub fn current(&self) -> Option<(Instant, PauseKind)> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut st = self.state.lock();
        match *st {
            Some((end, kind)) if end > Instant::now() => Some((end, kind)),
            _ => {
                *st = None;
                self.active.store(false, Ordering::Release);
                None
            }
        }
    }
}

/// Whether a command may write or replicate (what CLIENT PAUSE WRITE holds back).
fn may_replicate(spec: &CommandSpec) -> bool {
    spec.has(flags::WRITE) || spec.has(flags::MAY_REPLICATE)
}

/// For the connection loop, before dispatching `args` for `client`: `Some(end)` while CLIENT PAUSE holds
/// this command back. The loop should wait (at most [`PAUSE_POLL`] at a time, since CLIENT UNPAUSE can end
/// the pause early, and a new CLIENT PAUSE can extend it) and ask again, dispatching once this is `None`.
/// Commands Redis refuses before the pause check (unknown commands) are never held. As in Redis, every
/// client waits, including the one that sent CLIENT PAUSE, and in ALL mode even CLIENT UNPAUSE waits.
pub fn pause_until(server: &Server, client: &Client, args: &[Bytes]) -> Option<Instant> {
    let (end, kind) = server.pause.current()?;
    let spec = engine::cmd::lookup(args.first()?)?;
    let held = match kind {
        PauseKind::All => true,
        PauseKind::Write => {
            may_replicate(spec)
                || (spec.name == "exec"
                    && client
                        .multi
                        .as_ref()
                        .is_some_and(|q| q.iter().filter_map(|a| engine::cmd::lookup(&a[0])).any(may_replicate)))
        }
    };
    held.then_some(end)
}

/// Whether writes are paused now (active expiry and eviction should wait too, as in Redis).
pub fn writes_paused(server: &Server) -> bool {
    server.pause.current().is_some()
}

/// CLIENT PAUSE timeout [WRITE|ALL]
pub fn client_pause(server: &Server, a: &[Bytes]) -> Reply {
    if a.len() < 3 {
        return engine::cmd::arity_error("client|pause");
    }
    if a.len() != 3 && a.len() != 4 {
        return Reply::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&a[1])
        ));
    }
    let ms = match engine::util::parse_i64(&a[2]) {
        Some(n) if n < 0 => return Reply::err("ERR timeout is negative"),
        Some(n) => n as u64,
        None => return Reply::err("ERR timeout is not an integer or out of range"),
    };
    let kind = match a.get(3) {
        None => PauseKind::All,
        Some(m) if eq_ic(m, "all") => PauseKind::All,
        Some(m) if eq_ic(m, "write") => PauseKind::Write,
        Some(_) => return Reply::err("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let now = Instant::now();
    // Far-future timeouts (Redis accepts any non-negative 64-bit value) are capped at about 30 years.
    let end = now.checked_add(Duration::from_millis(ms)).unwrap_or(now + Duration::from_secs(1 << 30));
    server.pause.pause(end, kind);
    Reply::ok()
}

/// CLIENT UNPAUSE
pub fn client_unpause(server: &Server, a: &[Bytes]) -> Reply {
    if a.len() != 2 {
        return engine::cmd::arity_error("client|unpause");
    }
    server.pause.unpause();
    Reply::ok()
}

/// The work before the process exits, run by SHUTDOWN and on SIGTERM/SIGINT.
///
/// `save`: `Some(true)` for SHUTDOWN SAVE, `Some(false)` for NOSAVE, `None` to follow the configuration
/// (save when `save` points are configured). `force` (SHUTDOWN FORCE) goes on past the errors that would
/// otherwise refuse the shutdown, as Redis does. An `Err` (only without `force`) refuses the shutdown and
/// leaves the server as it was running, with the AOF open.
///
/// Refuses first, before stopping anything, while the first rewrite after `CONFIG SET appendonly yes` runs:
/// none of the dataset is in the AOF yet, so with `appendonly yes` in the config file a restart would come
/// up empty. Then stops a running BGSAVE or AOF rewrite (their temp files are removed), then writes the
/// final RDB when asked (as Redis, also with `appendonly yes`), never while the dataset is still loading:
/// that would replace the file with part of itself. Then, whether or not it saved (SHUTDOWN NOSAVE too, or
/// a failed save under FORCE), flushes, fsyncs and closes the AOF ([`crate::aof::close_for_exit`], which
/// keeps every shard held until the process exits). Redis flushes the AOF before the RDB save; Moon does
/// it after, so that a failed save that refuses the shutdown leaves the AOF running.
pub fn prepare(server: &Server, save: Option<bool>, force: bool) -> Result<(), String> {
    if crate::aof::rewrite::writing_initial_aof(server) {
        if !force {
            return Err("Writing initial AOF, can't exit.".into());
        }
        crate::warning!("Writing initial AOF. Exit anyway.");
    }
    let save_points = !server.config.read().save.is_empty();
    crate::bgsave::stop_and_wait(server);
    crate::aof::rewrite::stop_and_wait(server);
    let loading = server.persist.loading.load(Ordering::Acquire);
    if save.unwrap_or(save_points) && !loading {
        crate::notice!("Saving the final RDB snapshot before exiting.");
        if crate::persist::save_rdb(server).is_err() {
            if !force {
                return Err("Error trying to save the DB, can't exit.".into());
            }
            crate::warning!("Error trying to save the DB. Exit anyway.");
        }
    }
    crate::aof::close_for_exit(server);
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. On success the connection closes without a reply and the
/// process exits; a failed [`prepare`] without FORCE leaves the server running.
pub fn command(server: &Server, client: &mut Client, a: &[Bytes]) -> Next {
    let (mut save, mut nosave, mut force, mut abort, mut now) = (false, false, false, false, false);
    for arg in &a[1..] {
        if eq_ic(arg, "nosave") {
            nosave = true;
        } else if eq_ic(arg, "save") {
            save = true;
        } else if eq_ic(arg, "now") {
            now = true;
        } else if eq_ic(arg, "force") {
            force = true;
        } else if eq_ic(arg, "abort") {
            abort = true;
        } else {
            return Next::Reply(Reply::err(engine::cmd::errors::SYNTAX));
        }
    }
    if (save && nosave) || (abort && a.len() > 2) {
        return Next::Reply(Reply::err(engine::cmd::errors::SYNTAX));
    }
    if abort {
        // Moon never waits for replicas before exiting, so there is never a shutdown to abort.
        return Next::Reply(Reply::err("ERR No shutdown in progress."));
    }
    let _ = now; // Nothing to wait for: there are no replicas.
    crate::notice!("User requested shutdown...");
    let wanted = if save {
        Some(true)
    } else if nosave {
        Some(false)
    } else {
        None
    };
    if let Err(e) = prepare(server, wanted, force) {
        crate::warning!("{e}");
        crate::warning!("Errors trying to shut down the server. Check the logs for more information.");
        return Next::Reply(Reply::err("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    server.shutting_down.store(true, Ordering::Relaxed);
    // Redis closes the connection without replying.
    client.reply_skip = true;
    Next::Close(Reply::ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_keeps_the_later_end_and_stronger_kind() {
        let p = Pause::default();
        assert!(p.current().is_none());
        let now = Instant::now();
        p.pause(now + Duration::from_secs(10), PauseKind::All);
        p.pause(now + Duration::from_secs(5), PauseKind::Write);
        let (end, kind) = p.current().unwrap();
        assert_eq!(kind, PauseKind::All);
        assert_eq!(end, now + Duration::from_secs(10));
        p.unpause();
        assert!(p.current().is_none());
    }

    #[test]
    fn an_expired_pause_is_gone_and_replaced() {
        let p = Pause::default();
        let now = Instant::now();
        p.pause(now, PauseKind::All);
        assert!(p.current().is_none());
        p.pause(now + Duration::from_secs(1), PauseKind::All);
        p.pause(now, PauseKind::Write);
        assert_eq!(p.current().map(|x| x.1), Some(PauseKind::All));
    }

    #[test]
    fn write_pause_holds_writes_and_may_replicate_commands() {
        for (name, held) in [("set", true), ("publish", true), ("get", false), ("ping", false), ("del", true)] {
            assert_eq!(may_replicate(engine::cmd::lookup(name.as_bytes()).unwrap()), held, "{name}");
        }
    }
}
