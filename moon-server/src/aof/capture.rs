//! Capturing what a command propagates and appending it to the ordered buffer.
//!
//! The hot path: a command that changed nothing and expired nothing costs one relaxed atomic load. A write
//! is encoded into a thread-local scratch buffer without any lock, then copied into the shared buffer under
//! its mutex, where SELECT and `#TS:` are decided (they depend on what was appended last, by anyone). The
//! caller still holds the command's shard locks, which is what makes the log order agree with execution
//! order for every key (see the module docs of `aof`).
//!
//! Shapes, as Redis 7.0 writes them (checked against redis-server 7.0.15):
//! - keys found expired while the command ran come first, as `DEL key` (`UNLINK` with lazyfree-lazy-expire),
//!   never inside MULTI (Redis propagates them at once, outside the command's own batch);
//! - then the command: the engine's replacements when it set any (`Ctx::propagate`), else the client's argv
//!   when it changed something (`Ctx::dirty`);
//! - several commands from one command (SPOP with a count) or one EXEC are wrapped in MULTI ... EXEC; a
//!   single one is not.

use super::pipeline::{Log, Shared};
use super::Policy;
use crate::server::Server;
use bytes::Bytes;
use engine::aof::encode_command;
use engine::cmd::Ctx;
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";

/// Records encoded on this thread and not yet appended, as (db, end offset) segments.
struct Scratch {
    dels: Vec<u8>,
    del_segs: Vec<(usize, usize)>,
    ops: Vec<u8>,
    op_segs: Vec<(usize, usize)>,
    /// Inside EXEC: keep collecting until [`end_exec`].
    in_exec: bool,
}

impl Scratch {
    fn clear(&mut self) {
        self.dels.clear();
        self.del_segs.clear();
        self.ops.clear();
        self.op_segs.clear();
    }

    fn push_expired(&mut self, sh: &Shared, db: usize, key: &[u8]) {
        let name: &[u8] = if sh.unlink_expired.load(Ordering::Relaxed) { b"UNLINK" } else { b"DEL" };
        encode_command(&mut self.dels, &[name, key]);
        self.del_segs.push((db, self.dels.len()));
    }

    fn push_op<A: AsRef<[u8]>>(&mut self, db: usize, argv: &[A]) {
        encode_command(&mut self.ops, argv);
        self.op_segs.push((db, self.ops.len()));
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            dels: Vec::new(),
            del_segs: Vec::new(),
            ops: Vec::new(),
            op_segs: Vec::new(),
            in_exec: false,
        })
    };
    /// Under `always`: the stream offset the replies of this thread's current command must wait for.
    static WAIT_TARGET: Cell<u64> = const { Cell::new(0) };
}

/// Logs what the command that just ran in `ctx` propagates (call before releasing its shards). `db` is the
/// DB the command ran in; `args` the client's argv (`None` when the caller always sets `ctx.propagate`, as
/// the blocking pops do). Takes `ctx.propagate`.
#[inline]
pub fn feed(server: &Server, ctx: &mut Ctx<'_>, db: usize, args: Option<&[Bytes]>) {
    let sh = &*server.aof.shared;
    if !sh.on.load(Ordering::Relaxed) || (ctx.dirty == 0 && ctx.propagate.is_none() && ctx.expired.is_empty()) {
        return;
    }
    let propagate = ctx.propagate.take();
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        for (edb, key) in &ctx.expired {
            s.push_expired(sh, *edb, key);
        }
        match (&propagate, args) {
            (Some(list), _) => list.iter().for_each(|argv| s.push_op(db, argv)),
            (None, Some(a)) if ctx.dirty > 0 => s.push_op(db, a),
            _ => {}
        }
        if !s.in_exec {
            commit(sh, &mut s, true);
        }
    });
}

/// Logs keys deleted by active expiry in `db` (the shard's cron, under the shard's lock).
pub fn feed_expired(server: &Server, db: usize, keys: &[Box<[u8]>]) {
    let sh = &*server.aof.shared;
    if keys.is_empty() || !sh.on.load(Ordering::Relaxed) {
        return;
    }
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        for key in keys {
            s.push_expired(sh, db, key);
        }
        if !s.in_exec {
            commit(sh, &mut s, false);
        }
    });
}

/// EXEC starts running its queue: collect its records until [`end_exec`].
pub fn begin_exec() {
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        s.clear();
        s.in_exec = true;
    });
}

/// EXEC ran its queue (its shards are still held): append its records, wrapped in MULTI/EXEC when there
/// are several.
pub fn end_exec(server: &Server) {
    let sh = &*server.aof.shared;
    SCRATCH.with(|cell| {
        let mut s = cell.borrow_mut();
        s.in_exec = false;
        if sh.on.load(Ordering::Relaxed) {
            commit(sh, &mut s, true);
        } else {
            s.clear();
        }
    });
}

/// The stream offset this thread's last command(s) must see durable before replying (0: nothing to wait
/// for); resets it. The connection calls it after each command.
#[inline]
pub fn take_wait_target() -> u64 {
    WAIT_TARGET.with(|t| t.replace(0))
}

/// Under `always`, the stream offset any reply must wait for before it is sent: everything appended so far.
/// So no reply, not even a read's, shows data that a crash could still take away (Redis gets the same by
/// fsyncing before it writes any reply of an event-loop turn). 0 otherwise. Also what a client served while
/// blocked waits for: its pop was logged by another thread just before it was woken.
#[inline]
pub fn read_barrier(server: &Server) -> u64 {
    let sh = &*server.aof.shared;
    if !sh.on.load(Ordering::Relaxed) || sh.policy() != Policy::Always {
        return 0;
    }
    sh.appended.load(Ordering::Relaxed)
}

/// Appends the scratch records to the shared buffer and clears them.
fn commit(sh: &Shared, s: &mut Scratch, reply_waits: bool) {
    if s.del_segs.is_empty() && s.op_segs.is_empty() {
        return;
    }
    let ts = sh.timestamps.load(Ordering::Relaxed).then(|| crate::server::unix_ms() / 1000);
    let mut guard = sh.log.lock();
    let log = &mut *guard;
    if !log.on {
        drop(guard);
        s.clear();
        return;
    }
    let before = log.buf.len();
    if let Some(now) = ts {
        if now > log.last_ts {
            log.buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            log.last_ts = now;
        }
    }
    let mut start = 0;
    for &(db, end) in &s.del_segs {
        emit(log, db, &s.dels[start..end]);
        start = end;
    }
    let wrap = s.op_segs.len() > 1;
    if let (true, Some(&(first, _))) = (wrap, s.op_segs.first()) {
        emit(log, first, MULTI);
    }
    start = 0;
    for &(db, end) in &s.op_segs {
        emit(log, db, &s.ops[start..end]);
        start = end;
    }
    if let (true, Some(&(last, _))) = (wrap, s.op_segs.last()) {
        emit(log, last, EXEC);
    }
    log.end += (log.buf.len() - before) as u64;
    let end = log.end;
    sh.appended.store(end, Ordering::Relaxed);
    // Under `always` the writer thread fsyncs for the waiting replies: wake it. Under `everysec` / `no` the
    // replying connection writes its records itself (`Shared::write_inline`), and a reply that cannot asks
    // the writer (`add_waiter`); records nobody waits for (expired keys' DELs) go at the writer's next tick.
    // Not waking it per append spares a context switch per command on a busy CPU.
    let wake = sh.policy() == Policy::Always && sh.wake_writer(log);
    drop(guard);
    if wake {
        sh.notify_writer();
    }
    if reply_waits {
        // The reply waits for the fsync (`always`) or the write (`everysec`, `no`) of this record.
        WAIT_TARGET.with(|t| t.set(t.get().max(end)));
    }
    s.clear();
}

/// Appends one record, preceded by SELECT when it runs in another DB than the last one logged.
#[inline]
fn emit(log: &mut Log, db: usize, bytes: &[u8]) {
    if log.selected_db != Some(db) {
        let n = db.to_string();
        encode_command(&mut log.buf, &[b"SELECT".as_slice(), n.as_bytes()]);
        log.selected_db = Some(db);
    }
    log.buf.extend_from_slice(bytes);
}
