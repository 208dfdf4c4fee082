//! Test-only fault injection into the incr files the write pipeline appends to (issue 7, "Faults"), so an
//! end-to-end test can make the real binary's AOF fsync fail or its writes come out short. Off unless the
//! environment variable `MOON_TEST_FAULT` is set when the first incr file is opened; read once.
//!
//! Grammar (`N` and `K` are decimal; `K` defaults to 1):
//! - `fsync-fail-after:N[:K]`: the first `N` fsyncs of incr files succeed, the next `K` fail with `EIO`,
//!   later ones succeed again (a disk that recovers: the server must still not retry on the same file).
//! - `short-write-after:N[:K]`: the first `N` writes succeed; each of the next `K` writes is short (half of
//!   the buffer reaches the file) and the write call that would continue it fails with `ENOSPC`; later writes
//!   succeed again (space came back).
//!
//! The counts are per process, over every incr file (a rewrite's new incr continues the count), so a
//! fault fires once and the file installed after it is healthy.

use engine::aof::writer::AofFile;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The environment variable read at start-up.
const VAR: &str = "MOON_TEST_FAULT";
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FsyncFail,
    ShortWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    kind: Kind,
    /// Operations of `kind` that succeed before the first fault.
    after: u64,
    /// How many operations fail.
    times: u64,
}

impl Plan {
    fn parse(spec: &str) -> Option<Plan> {
        let mut parts = spec.split(':');
        let kind = match parts.next()? {
            "fsync-fail-after" => Kind::FsyncFail,
            "short-write-after" => Kind::ShortWrite,
            _ => return None,
        };
        let after = parts.next()?.parse().ok()?;
        let times = match parts.next() {
            Some(k) => k.parse().ok()?,
            None => 1,
        };
        parts.next().is_none().then_some(Plan { kind, after, times })
    }

    /// Whether the operation numbered `n` (0-based) of this plan's kind fails.
    fn fires(&self, n: u64) -> bool {
        n >= self.after && n - self.after < self.times
    }
}

fn plan() -> Option<Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    *PLAN.get_or_init(|| {
        let spec = std::env::var(VAR).ok()?;
        let plan = Plan::parse(&spec);
        match plan {
            Some(_) => crate::warning!("{VAR}={spec}: injecting faults into the AOF incr files (tests only)"),
            None => crate::warning!("{VAR}={spec} is not understood: no fault is injected"),
        }
        plan
    })
}

/// Operations of the plan's kind so far, over every wrapped file.
static OPS: AtomicU64 = AtomicU64::new(0);

/// `file` as the pipeline should use it: wrapped when a fault is planned, untouched otherwise.
pub(super) fn wrap(file: Arc<dyn AofFile>) -> Arc<dyn AofFile> {
    match plan() {
        Some(plan) => Arc::new(Faulty { inner: file, plan, cut: AtomicBool::new(false) }),
        None => file,
    }
}

struct Faulty {
    inner: Arc<dyn AofFile>,
    plan: Plan,
    /// A short write happened: the call that would continue it fails.
    cut: AtomicBool,
}

impl AofFile for Faulty {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        if self.plan.kind == Kind::ShortWrite {
            if self.cut.swap(false, Ordering::AcqRel) {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
            if buf.len() > 1 && self.plan.fires(OPS.fetch_add(1, Ordering::AcqRel)) {
                let n = self.inner.append(&buf[..buf.len() / 2])?;
                self.cut.store(true, Ordering::Release);
                return Ok(n);
            }
        }
        self.inner.append(buf)
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.plan.kind == Kind::FsyncFail && self.plan.fires(OPS.fetch_add(1, Ordering::AcqRel)) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        self.inner.sync_data()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        assert_eq!(Plan::parse("fsync-fail-after:3"), Some(Plan { kind: Kind::FsyncFail, after: 3, times: 1 }));
        assert_eq!(Plan::parse("short-write-after:0:2"), Some(Plan { kind: Kind::ShortWrite, after: 0, times: 2 }));
        for bad in ["", "fsync-fail-after", "fsync-fail-after:x", "short-write-after:1:2:3", "disk-full:1"] {
            assert_eq!(Plan::parse(bad), None, "{bad}");
        }
        let p = Plan::parse("fsync-fail-after:2:2").unwrap();
        assert_eq!((0..6).map(|n| p.fires(n)).collect::<Vec<_>>(), [false, false, true, true, false, false]);
    }
}
