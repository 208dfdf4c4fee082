//! MONITOR: every command any client runs is streamed to the monitoring clients as a status line in Redis's
//! format, `+1700000000.123456 [0 127.0.0.1:5555] "set" "a" "1"`. Like Redis, admin commands are not shown,
//! rejected commands (unknown, wrong arity, not authenticated, queued in MULTI) are not shown, commands run
//! by EXEC are shown before the EXEC itself, and AUTH / HELLO passwords are replaced by `(redacted)`.

use crate::client::Client;
use crate::dispatch::Next;
use crate::server::Server;
use bytes::Bytes;
use engine::cmd::spec::flags;
use engine::cmd::CommandSpec;
use engine::resp::Reply;
use engine::util::eq_ic;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The monitoring clients' outboxes.
#[derive(Default)]
pub struct Monitors {
    /// Number of monitors, read without the lock on every command.
    count: AtomicUsize,
    list: Mutex<Vec<Arc<crate::outbox::Outbox>>>,
}

/// MONITOR outside a transaction. A client already monitoring gets no reply at all, as in Redis.
pub fn start(server: &Server, client: &mut Client) -> Next {
    if client.monitor {
        return Next::Replies(Vec::new());
    }
    let ob = crate::pubsub::outbox(client);
    let mut list = server.monitors.list.lock();
    // +OK is queued under the lock, so it precedes every line fed to this monitor.
    ob.push(Bytes::from_static(b"+OK\r\n"));
    list.push(ob);
    server.monitors.count.store(list.len(), Ordering::Relaxed);
    drop(list);
    client.monitor = true;
    crate::pubsub::refresh_flags(client, false);
    Next::Replies(Vec::new())
}

/// MONITOR queued in MULTI.
pub fn in_exec() -> Reply {
    Reply::err("ERR MONITOR isn't allowed for DENY BLOCKING client")
}

/// Leaves monitor mode (RESET, disconnect).
pub fn stop(server: &Server, client: &mut Client) {
    if !client.monitor {
        return;
    }
    client.monitor = false;
    if let Some(ob) = client.outbox.as_ref() {
        let mut list = server.monitors.list.lock();
        list.retain(|o| !Arc::ptr_eq(o, ob));
        server.monitors.count.store(list.len(), Ordering::Relaxed);
    }
    crate::pubsub::refresh_flags(client, false);
}

/// Shows a command that was just executed to every monitor. The client's own line (when it monitors
/// itself) is kept in `client.monitor_echo` so the connection writes it after the command's reply.
pub fn feed(server: &Server, client: &mut Client, spec: &CommandSpec, args: &[Bytes]) {
    if server.monitors.count.load(Ordering::Relaxed) == 0 || spec.has(flags::ADMIN) || spec.has(flags::SKIP_MONITOR) {
        return;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let line =
        Bytes::from(format_line(now.as_secs(), now.subsec_micros(), client.db, &client.shared.addr.to_string(), args));
    let own = client.outbox.as_ref().filter(|_| client.monitor);
    for ob in server.monitors.list.lock().iter() {
        if own.is_some_and(|o| Arc::ptr_eq(o, ob)) {
            continue;
        }
        ob.push(line.clone());
    }
    if own.is_some() {
        client.monitor_echo.push(line);
    }
}

/// Which arguments Redis hides: every argument of AUTH, and the two after HELLO's AUTH.
fn redacted(args: &[Bytes]) -> Vec<bool> {
    let mut hide = vec![false; args.len()];
    if eq_ic(&args[0], "auth") {
        hide.iter_mut().skip(1).for_each(|h| *h = true);
    } else if eq_ic(&args[0], "hello") {
        let mut i = 2;
        while i < args.len() {
            if eq_ic(&args[i], "auth") {
                for h in hide.iter_mut().skip(i + 1).take(2) {
                    *h = true;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    }
    hide
}

/// One monitor line, CRLF included.
fn format_line(secs: u64, micros: u32, db: usize, addr: &str, args: &[Bytes]) -> Vec<u8> {
    let mut out = format!("+{secs}.{micros:06} [{db} {addr}]").into_bytes();
    for (arg, hide) in args.iter().zip(redacted(args)) {
        out.push(b' ');
        if hide {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(arg, &mut out);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes and `\xHH` for unprintable bytes.
fn quote(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&[u8]]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s)).collect()
    }

    fn line(v: &[&[u8]]) -> String {
        String::from_utf8(format_line(1700000000, 1234, 0, "127.0.0.1:5555", &args(v))).unwrap()
    }

    #[test]
    fn formats_like_redis() {
        assert_eq!(line(&[b"set", b"a", b"1"]), "+1700000000.001234 [0 127.0.0.1:5555] \"set\" \"a\" \"1\"\r\n");
        assert_eq!(
            line(&[b"ECHO", b"a\"b\\c\x01\xc3\xa9\n\r\t\x07\x08"]),
            "+1700000000.001234 [0 127.0.0.1:5555] \"ECHO\" \"a\\\"b\\\\c\\x01\\xc3\\xa9\\n\\r\\t\\a\\b\"\r\n"
        );
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(line(&[b"AUTH", b"pw"]), "+1700000000.001234 [0 127.0.0.1:5555] \"AUTH\" \"(redacted)\"\r\n");
        assert_eq!(
            line(&[b"auth", b"u", b"pw"]),
            "+1700000000.001234 [0 127.0.0.1:5555] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
        assert_eq!(
            line(&[b"HELLO", b"2", b"AUTH", b"default", b"pw", b"SETNAME", b"n"]),
            "+1700000000.001234 [0 127.0.0.1:5555] \"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"
        );
        assert_eq!(line(&[b"HELLO", b"3"]), "+1700000000.001234 [0 127.0.0.1:5555] \"HELLO\" \"3\"\r\n");
    }
}
