//! Redis 7 multi-part AOF: the one module that knows what an AOF directory means (DESIGN.md §5). The server
//! drives it while running; `moon-aof-tool` uses the same code offline, so the two never disagree.
//!
//! Byte formats and every transition, with what a crash at each step leaves, are in `engine/FORMAT.md`
//! ("AOF") and FORMATS.md §1-§3.
//!
//! Submodules:
//! - [`manifest`]: the manifest's types, parser (Redis's grammar and error texts) and writer (`sdscatrepr`
//!   quoting), and the file-name rules.
//! - [`dir`]: the persistence state of one `appendonlydir/`: reading it at start-up, the legacy upgrade,
//!   atomic manifest replacement, rotation before a rewrite, rewrite done/failed, history removal, the
//!   temp incr of `CONFIG SET appendonly yes`.
//! - [`lock`]: the advisory lock file a running server holds on its AOF directory, so the offline tool
//!   refuses to rewrite or fix files under it.
//! - [`stream`]: the RESP command stream of a base or incr file: commands with their byte offsets,
//!   `#` annotations, an RDB preamble, MULTI/EXEC balance, torn tails and format errors.
//! - [`check`]: the verdict on one file as `redis-check-aof` reports it (`ok_up_to`, line, diff, the first
//!   damage, whether only the tail is torn, `--truncate-to-timestamp` cut points).
//! - [`load`]: loading a whole directory: the base (RDB decoded straight into the keyspace, or RESP replayed),
//!   then each incr replayed through the caller's executor, under a [`RecoveryPolicy`].
//! - [`writer`]: the incr file being appended to: whole-buffer writes (a short write is truncated back),
//!   fsync, and poisoning by a failed fsync. What goes into the buffer (SELECT, `#TS:`, the propagated
//!   commands) is decided by the server's write path.
//! - [`rewrite`]: the RESP form of a key for a RESP base (`SET`/`RPUSH`/`SADD`/`ZADD`/`HMSET`, at most 64
//!   items per command, then `PEXPIREAT`).

pub mod check;
pub mod dir;
pub mod load;
pub mod lock;
pub mod manifest;
#[cfg(test)]
mod powerloss_tests;
pub mod rewrite;
pub mod stream;
#[cfg(test)]
mod test_support;
pub mod writer;

/// What loading may do about damage (shared by the server's start-up and `moon-aof-tool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryPolicy {
    /// Any damage is an error (`aof-load-truncated no`).
    Strict,
    /// A torn tail of the **last** file (an unfinished command or an unclosed MULTI at its end) is dropped:
    /// the file is truncated to its last complete command and loading goes on (`aof-load-truncated yes`).
    /// Damage anywhere else is still an error.
    TruncateTornTail,
}

/// Appends `argv` to `out` as one RESP multibulk (`*<argc>\r\n` then `$<len>\r\n<arg>\r\n` per argument), the
/// form every AOF command takes.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    let mut num = [0u8; 20];
    out.push(b'*');
    out.extend_from_slice(fmt_usize(&mut num, argv.len()));
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(fmt_usize(&mut num, a.len()));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `n` in decimal, written at the end of `buf`.
fn fmt_usize(buf: &mut [u8; 20], mut n: usize) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_redis_does() {
        let mut out = Vec::new();
        encode_command(&mut out, &["SELECT", "0"]);
        encode_command(&mut out, &[b"set".as_slice(), b"", b"0123456789"]);
        assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$0\r\n\r\n$10\r\n0123456789\r\n");
    }
}
