//! SLOWLOG GET / LEN / RESET / HELP and the log itself: commands that ran for at least
//! `slowlog-log-slower-than` microseconds (negative: off), newest first, at most `slowlog-max-len` of them.
//! Entries keep at most 32 arguments and 128 bytes of each, as Redis does.

use crate::client::Client;
use crate::server::{unix_ms, Server};
use crate::stats::Observability;
use bytes::Bytes;
use engine::cmd::CommandSpec;
use engine::resp::Reply;
use engine::util::eq_ic;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// Arguments kept per entry (the last slot says how many more there were).
const MAX_ARGS: usize = 32;
/// Bytes kept per argument.
const MAX_ARG_LEN: usize = 128;

struct Entry {
    id: u64,
    /// Unix seconds.
    time: i64,
    us: u64,
    args: Vec<Bytes>,
    addr: String,
    name: Bytes,
}

#[derive(Default)]
struct Inner {
    /// Newest first.
    entries: VecDeque<Entry>,
    /// Ids keep growing across SLOWLOG RESET, as in Redis.
    next_id: u64,
}

/// The slow log: locked only to add a slow command or to read it.
#[derive(Default)]
pub struct SlowLog {
    inner: Mutex<Inner>,
}

impl SlowLog {
    /// Adds the command when it ran long enough.
    pub fn push_if_needed(&self, obs: &Observability, client: &Client, spec: &CommandSpec, args: &[Bytes], us: u64) {
        let threshold = obs.slowlog_threshold_us.load(Ordering::Relaxed);
        if threshold < 0 || us < threshold as u64 {
            return;
        }
        let max_len = obs.slowlog_max_len.load(Ordering::Relaxed) as usize;
        let entry = Entry {
            id: 0,
            time: unix_ms() / 1000,
            us,
            args: logged_args(spec, args),
            addr: client.shared.addr.to_string(),
            name: client.shared.name.lock().clone().unwrap_or_default(),
        };
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push_front(Entry { id, ..entry });
        inner.entries.truncate(max_len);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn reset(&self) {
        self.inner.lock().entries.clear();
    }
}

/// The arguments as the log keeps them: secrets redacted, long lists and long strings cut.
fn logged_args(spec: &CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
    let redacted = redacted_positions(spec, args);
    let keep = args.len().min(MAX_ARGS);
    let mut out = Vec::with_capacity(keep);
    for (i, a) in args.iter().enumerate().take(keep) {
        if keep == MAX_ARGS && i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
            out.push(Bytes::from(format!("... ({} more arguments)", args.len() - MAX_ARGS + 1)));
        } else if redacted.contains(&i) {
            out.push(Bytes::from_static(b"(redacted)"));
        } else if a.len() > MAX_ARG_LEN {
            let mut s = a[..MAX_ARG_LEN].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            out.push(Bytes::from(s));
        } else {
            // A copy: `a` is a slice of the connection's read buffer, which a clone would keep alive.
            out.push(Bytes::copy_from_slice(a));
        }
    }
    out
}

/// Arguments Redis hides from the slow log: AUTH's, and HELLO's AUTH username and password.
fn redacted_positions(spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    match spec.name {
        "auth" => (1..args.len()).collect(),
        "hello" => {
            let mut v = Vec::new();
            let mut i = 2;
            while i < args.len() {
                if eq_ic(&args[i], "auth") && i + 2 < args.len() {
                    v.extend([i + 1, i + 2]);
                    i += 3;
                } else {
                    i += 1;
                }
            }
            v
        }
        _ => Vec::new(),
    }
}

/// SLOWLOG <subcommand> ...
pub fn run(server: &Server, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    let log = &server.obs.slowlog;
    if eq_ic(sub, "get") && a.len() <= 3 {
        let count = match a.get(2) {
            None => 10,
            Some(c) => match engine::util::parse_i64(c) {
                Some(n) if n >= -1 => n,
                _ => return Reply::err("ERR count should be greater than or equal to -1"),
            },
        };
        let inner = log.inner.lock();
        let n = if count == -1 { inner.entries.len() } else { (count as usize).min(inner.entries.len()) };
        let rows = inner.entries.iter().take(n).map(entry_reply).collect();
        return Reply::Array(rows);
    }
    if eq_ic(sub, "len") && a.len() == 2 {
        return Reply::Int(log.len() as i64);
    }
    if eq_ic(sub, "reset") && a.len() == 2 {
        log.reset();
        return Reply::ok();
    }
    if eq_ic(sub, "help") && a.len() == 2 {
        let lines = [
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ];
        return Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect());
    }
    if eq_ic(sub, "get") {
        return Reply::err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    if ["len", "reset", "help"].iter().any(|s| eq_ic(sub, s)) {
        return engine::cmd::arity_error(&format!("slowlog|{}", String::from_utf8_lossy(sub).to_lowercase()));
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try SLOWLOG HELP.", String::from_utf8_lossy(sub)))
}

fn entry_reply(e: &Entry) -> Reply {
    Reply::Array(vec![
        Reply::Int(e.id as i64),
        Reply::Int(e.time),
        Reply::Int(e.us as i64),
        Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
        Reply::bulk(e.addr.clone()),
        Reply::Bulk(e.name.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static CommandSpec {
        engine::cmd::lookup(name.as_bytes()).unwrap()
    }

    fn strs(v: &[Bytes]) -> Vec<String> {
        v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    #[test]
    fn kept_arguments_do_not_share_the_read_buffer() {
        // A connection's arguments are slices of its (large) read buffer.
        let buffer = Bytes::from(vec![b'x'; 1 << 20]);
        let args = [Bytes::from_static(b"set"), buffer.slice(0..4), buffer.slice(4..8)];
        let out = logged_args(spec("set"), &args);
        assert_eq!(strs(&out), ["set", "xxxx", "xxxx"]);
        let inside = |b: &Bytes| buffer.as_ptr_range().contains(&b.as_ptr());
        assert!(!out.iter().any(inside), "a slow log entry pins the connection's read buffer");
    }

    #[test]
    fn long_argument_lists_are_cut_like_redis() {
        // DEL with 40 keys: DEL, 1..30, "... (10 more arguments)".
        let mut args = vec![Bytes::from_static(b"del")];
        args.extend((1..=40).map(|i| Bytes::from(i.to_string())));
        let out = strs(&logged_args(spec("del"), &args));
        assert_eq!(out.len(), 32);
        assert_eq!(out[30], "30");
        assert_eq!(out[31], "... (10 more arguments)");
        // Exactly 32 arguments are all kept.
        let out = logged_args(spec("del"), &args[..32]);
        assert_eq!(strs(&out)[31], "31");
    }

    #[test]
    fn long_strings_are_cut_like_redis() {
        let key = Bytes::from(vec![b'k'; 130]);
        let out = strs(&logged_args(spec("set"), &[Bytes::from_static(b"set"), key, Bytes::from_static(b"v")]));
        assert_eq!(out[1], format!("{}... (2 more bytes)", "k".repeat(128)));
        assert_eq!(out[2], "v");
    }

    #[test]
    fn secrets_are_redacted() {
        let a: Vec<Bytes> = ["auth", "user", "pass"].iter().map(|s| Bytes::from(s.to_string())).collect();
        assert_eq!(strs(&logged_args(spec("auth"), &a)), ["auth", "(redacted)", "(redacted)"]);
        let h: Vec<Bytes> = ["hello", "3", "AUTH", "default", "pw", "SETNAME", "x"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(
            strs(&logged_args(spec("hello"), &h)),
            ["hello", "3", "AUTH", "(redacted)", "(redacted)", "SETNAME", "x"]
        );
    }
}
