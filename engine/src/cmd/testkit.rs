//! Test support: a one-shard keyspace with a controllable clock, driven by string commands.

use super::{execute, Ctx};
use crate::config::EngineConfig;
use crate::keyspace::Keyspace;
use crate::resp::{Protocol, Reply};
use bytes::Bytes;

/// A keyspace plus the connection state a client would have (selected db, protocol) and a fake clock.
pub struct Kit {
    pub ks: Keyspace,
    pub cfg: EngineConfig,
    /// Unix ms used as "now" by the next command.
    pub now: i64,
    pub db: usize,
    pub proto: Protocol,
    /// What the last command asked to log (None = the command itself, if dirty).
    pub propagated: Option<Vec<Vec<Bytes>>>,
    pub dirty: u64,
}

impl Default for Kit {
    fn default() -> Self {
        Kit::new()
    }
}

impl Kit {
    pub fn new() -> Self {
        let cfg = EngineConfig::default();
        Kit {
            ks: Keyspace::new(cfg.databases),
            cfg,
            now: 1_700_000_000_000,
            db: 0,
            proto: Protocol::Resp2,
            propagated: None,
            dirty: 0,
        }
    }

    /// Runs a command given as separate arguments.
    pub fn run_args(&mut self, args: &[&[u8]]) -> Reply {
        let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut ctx = Ctx::new(&mut self.ks, &self.cfg, self.now);
        ctx.db = self.db;
        ctx.proto = self.proto;
        let r = execute(&mut ctx, &argv);
        self.db = ctx.db;
        self.propagated = ctx.propagate.take();
        self.dirty = ctx.dirty;
        r
    }

    /// Runs a command written as one line, split on spaces (no quoting: use `run_args` for odd bytes).
    pub fn run(&mut self, line: &str) -> Reply {
        let parts: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.run_args(&parts)
    }

    /// Runs several lines, returning the last reply.
    pub fn run_all(&mut self, lines: &[&str]) -> Reply {
        let mut last = Reply::Nil;
        for l in lines {
            last = self.run(l);
        }
        last
    }
}

/// `Reply::Bulk` from a str.
pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// An array of bulk strings.
pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

/// An error reply with the given full text.
pub fn err(s: &str) -> Reply {
    Reply::Error(s.to_string())
}
