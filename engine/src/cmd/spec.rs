//! Command metadata: arity, flags and key positions, as Redis 7.0's `COMMAND INFO` reports them, and the
//! name lookup. Each family file exports its own `COMMANDS` slice; this file joins them.

use super::ctx::Ctx;
use crate::resp::Reply;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A handler run by the engine, or a marker that the server runs it (needs the connection or server state).
#[derive(Clone, Copy)]
pub enum Handler {
    Engine(fn(&mut Ctx, &[Bytes]) -> Reply),
    Server,
}

/// Redis arity: positive = exact argument count (including the name), negative = at least that many.
pub type Arity = i32;

/// Command flags (the names `COMMAND INFO` prints are in [`FLAG_NAMES`]).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    pub const MOVABLE_KEYS: u32 = 1 << 16;
    /// Not a Redis flag: the command visits every key of the database (KEYS, SCAN, FLUSHDB ...), so a
    /// sharded server must hold every shard.
    pub const ALL_SHARDS: u32 = 1 << 24;
}

/// Flag names in `COMMAND INFO` order.
pub const FLAG_NAMES: &[(u32, &str)] = &[
    (flags::WRITE, "write"),
    (flags::READONLY, "readonly"),
    (flags::DENYOOM, "denyoom"),
    (flags::ADMIN, "admin"),
    (flags::PUBSUB, "pubsub"),
    (flags::NOSCRIPT, "noscript"),
    (flags::BLOCKING, "blocking"),
    (flags::LOADING, "loading"),
    (flags::STALE, "stale"),
    (flags::SKIP_MONITOR, "skip_monitor"),
    (flags::SKIP_SLOWLOG, "skip_slowlog"),
    (flags::FAST, "fast"),
    (flags::NO_AUTH, "no_auth"),
    (flags::MAY_REPLICATE, "may_replicate"),
    (flags::NO_MULTI, "no_multi"),
    (flags::ALLOW_BUSY, "allow_busy"),
    (flags::MOVABLE_KEYS, "movablekeys"),
];

/// Where the keys of a command are.
#[derive(Clone, Copy)]
pub enum KeySpec {
    None,
    /// Keys from `first` to `last` (negative counts from the end: -1 is the last argument) every `step`.
    Range {
        first: i32,
        last: i32,
        step: i32,
    },
    /// `numkeys` at `numkeys_at`, keys right after it; `extra` is one more key before it (e.g. a destination).
    Numkeys {
        numkeys_at: usize,
        extra: Option<usize>,
    },
    /// Anything else.
    Custom(fn(&[Bytes]) -> Vec<usize>),
}

/// One command's metadata.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    pub arity: Arity,
    pub flags: u32,
    /// Legacy (first, last, step) triple for `COMMAND INFO`.
    pub first: i32,
    pub last: i32,
    pub step: i32,
    pub keys: KeySpec,
    /// ACL categories without the '@' (for `COMMAND INFO`), e.g. `&["write", "string", "slow"]`.
    pub acl: &'static [&'static str],
    pub handler: Handler,
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let a = i64::from(self.arity);
        if a >= 0 {
            argc == a
        } else {
            argc >= -a
        }
    }

    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Indexes of the key arguments in `args` (arity already checked). Invalid numkeys yields what fits;
    /// the handler reports the error.
    pub fn key_indexes(&self, args: &[Bytes]) -> Vec<usize> {
        let n = args.len();
        match self.keys {
            KeySpec::None => Vec::new(),
            KeySpec::Range { first, last, step } => {
                if first <= 0 || n == 0 {
                    return Vec::new();
                }
                let last = if last < 0 { n as i64 + i64::from(last) } else { i64::from(last) };
                let mut out = Vec::new();
                let mut i = i64::from(first);
                while i <= last && (i as usize) < n {
                    out.push(i as usize);
                    i += i64::from(step.max(1));
                }
                out
            }
            KeySpec::Numkeys { numkeys_at, extra } => {
                let mut out: Vec<usize> = extra.into_iter().filter(|&e| e < n).collect();
                let numkeys =
                    args.get(numkeys_at).and_then(|a| crate::util::parse_i64(a)).filter(|&k| k > 0).unwrap_or(0)
                        as usize;
                let start = numkeys_at + 1;
                out.extend((start..start.saturating_add(numkeys)).take_while(|&i| i < n));
                out
            }
            KeySpec::Custom(f) => f(args),
        }
    }
}

/// Shorthand used by the family tables.
#[allow(clippy::too_many_arguments)]
pub const fn spec(
    name: &'static str,
    arity: Arity,
    flags: u32,
    first: i32,
    last: i32,
    step: i32,
    acl: &'static [&'static str],
    handler: Handler,
) -> CommandSpec {
    let keys = if first > 0 { KeySpec::Range { first, last, step } } else { KeySpec::None };
    CommandSpec { name, arity, flags, first, last, step, keys, acl, handler }
}

impl CommandSpec {
    /// Replaces the key positions (for numkeys-style commands).
    pub const fn with_keys(mut self, keys: KeySpec) -> Self {
        self.keys = keys;
        self.flags |= flags::MOVABLE_KEYS;
        self
    }
}

/// Every command Moon knows, in no particular order.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    super::keys::COMMANDS
        .iter()
        .chain(super::strings::COMMANDS)
        .chain(super::lists::COMMANDS)
        .chain(super::hashes::COMMANDS)
        .chain(super::sets::COMMANDS)
        .chain(super::zsets::COMMANDS)
        .chain(super::dump::COMMANDS)
        .chain(super::server::COMMANDS)
}

/// FNV-1a: command names are short and trusted-size (at most 32 bytes), so a simple hash beats SipHash here.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type Registry = HashMap<&'static str, &'static CommandSpec, std::hash::BuildHasherDefault<Fnv>>;

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| all().map(|s| (s.name, s)).collect())
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let s = std::str::from_utf8(lower).ok()?;
    registry().get(s).copied()
}

/// [`lookup`] that remembers the last command it found: a pipeline or a log repeating a command compares the
/// name with that one instead of lowercasing and hashing it again.
#[derive(Default, Clone, Copy)]
pub struct LastLookup(Option<&'static CommandSpec>);

impl LastLookup {
    pub fn lookup(&mut self, name: &[u8]) -> Option<&'static CommandSpec> {
        match self.0 {
            Some(s) if s.name.as_bytes().eq_ignore_ascii_case(name) => Some(s),
            _ => {
                let s = lookup(name)?;
                self.0 = Some(s);
                Some(s)
            }
        }
    }
}

/// Number of commands (`COMMAND COUNT`).
pub fn count() -> usize {
    registry().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lookup_finds_what_lookup_finds() {
        let mut last = LastLookup::default();
        for name in ["GET", "get", "Get", "nosuch", "set", "SET", "", "getx", "get"] {
            let (want, got) = (lookup(name.as_bytes()), last.lookup(name.as_bytes()));
            assert_eq!(want.map(|s| s.name), got.map(|s| s.name), "{name}");
        }
    }
}
