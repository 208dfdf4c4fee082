//! The table of settings, modelled on redis-server 7.0's `standardConfig` table: each directive's name,
//! alias, flags, syntax (`Kind`, with the C type's bounds) and where its value lives (`Slot`). Parsing,
//! CONFIG GET formatting and CONFIG REWRITE lines are written once per kind here. This file holds the
//! settings Moon acts on (`OWN`); `compat_table` holds the rest of Redis's, which Moon only stores.

use super::compat_table::COMPAT;
use super::error::strerror;
use super::syntax::{format_memory, memtoull, repr, strtoll_octal, strtoll_whole, text};
use super::{AppendFsync, Config, ConfigEnum, LogLevel, MaxmemoryPolicy, ProtectedAction, SaveRule};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// CONFIG SET refuses it: "can't set immutable config".
pub(super) const IMMUTABLE: u8 = 1;
/// CONFIG SET needs `enable-protected-configs`: "can't set protected config".
pub(super) const PROTECTED: u8 = 2;
/// A string Redis stores as NULL when empty: CONFIG REWRITE drops its lines instead of writing "".
pub(super) const NULL_IF_EMPTY: u8 = 4;
/// Left out of CONFIG GET patterns (debugging knobs); CONFIG GET by exact name still shows it.
pub(super) const HIDDEN: u8 = 8;

pub(super) const INT_MIN: i128 = i32::MIN as i128;
pub(super) const INT_MAX: i128 = i32::MAX as i128;
pub(super) const UINT_MAX: i128 = u32::MAX as i128;
pub(super) const LONG_MAX: i128 = i64::MAX as i128;
pub(super) const ULLONG_MAX: i128 = u64::MAX as i128;
const MB: i128 = 1024 * 1024;

/// A numeric setting: its bounds, whether the C variable is unsigned (which decides how a negative integer
/// or a huge memory value is compared), whether memory units are accepted, whether `N%` is accepted too
/// (kept as `-N`, as Redis does), and whether it is written in octal.
#[derive(Clone, Copy)]
pub(super) struct Num {
    pub min: i128,
    pub max: i128,
    pub unsigned: bool,
    pub memory: bool,
    pub percent: bool,
    pub octal: bool,
}

pub(super) enum Kind {
    /// `yes` / `no`.
    Bool,
    /// `yes` / `no` with a check of the value (Redis's `isValid` function), e.g. refusing `yes`.
    BoolValid(fn(bool) -> Result<(), &'static str>),
    Num(Num),
    /// One of these words, case-insensitive.
    Enum(&'static [&'static str]),
    /// Free text with a validity check.
    Str(fn(&[u8]) -> Result<(), &'static str>),
    /// `save <seconds> <changes> ...` (several arguments).
    Save,
    /// `bind <addr> ...` (several arguments).
    Bind,
    /// `dir`: must name an existing directory.
    Dir,
    /// A compatibility setting with its own syntax; `parse(args, current)` returns the CONFIG GET form.
    Custom {
        multi: bool,
        parse: fn(&[Vec<u8>], &str) -> Result<String, String>,
    },
}

/// Where a directive's value lives.
pub(super) enum Slot {
    Bool(fn(&Config) -> bool, fn(&mut Config, bool)),
    Num(fn(&Config) -> i128, fn(&mut Config, i128)),
    Enum(fn(&Config) -> usize, fn(&mut Config, usize)),
    Str(fn(&Config) -> String, fn(&mut Config, String)),
    /// `save`, `bind`, `dir`: the kind's own code reads and writes the field.
    Own,
    /// `Config::compat`, under the directive's name; the default in CONFIG GET form.
    Compat(&'static str),
}

pub(super) struct Directive {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub flags: u8,
    pub kind: Kind,
    pub slot: Slot,
}

impl Directive {
    /// Settings that take several arguments on a config line, and whose CONFIG SET value is split on spaces.
    pub fn multi_arg(&self) -> bool {
        matches!(self.kind, Kind::Save | Kind::Bind | Kind::Custom { multi: true, .. })
    }
}

/// How a value arrives: from configuration text (where `save` lines add up after the first one) or from
/// CONFIG SET (where `save` replaces).
pub(super) enum Mode {
    File { save_seen: bool },
    Set,
}

/// Every directive, in the order CONFIG GET `*` and CONFIG REWRITE list them.
pub(super) fn all() -> impl Iterator<Item = &'static Directive> {
    OWN.iter().chain(COMPAT)
}

/// Finds a directive by name or alias, case-insensitively; also returns the lowercase name it was found
/// under (Redis reports value errors under that name).
pub(super) fn lookup(name: &[u8]) -> Option<(&'static Directive, &'static str)> {
    all().find_map(|d| {
        if name.eq_ignore_ascii_case(d.name.as_bytes()) {
            Some((d, d.name))
        } else {
            d.alias.filter(|a| name.eq_ignore_ascii_case(a.as_bytes())).map(|a| (d, a))
        }
    })
}

/// Parses `args` for `d` and stores the result in `c`. Single-value kinds get exactly one argument.
pub(super) fn apply(d: &Directive, c: &mut Config, args: &[Vec<u8>], mode: &mut Mode) -> Result<(), String> {
    match &d.kind {
        Kind::Save => return set_save(c, args, mode),
        Kind::Bind => return set_bind(c, args),
        Kind::Dir => return set_dir(c, &args[0]),
        Kind::Custom { parse, .. } => {
            // Multi-argument ones may get no argument at all (CONFIG SET name "").
            let current = c.compat.get(d.name).map_or("", String::as_str);
            let formatted = parse(args, current)?;
            c.compat.insert(d.name, formatted);
            return Ok(());
        }
        _ => {}
    }
    let v = &args[0];
    let formatted = match (&d.kind, &d.slot) {
        (Kind::Bool, Slot::Bool(_, set)) => return parse_bool(v).map(|b| set(c, b)),
        (Kind::Num(n), Slot::Num(_, set)) => return parse_num(*n, v).map(|x| set(c, x)),
        (Kind::Enum(names), Slot::Enum(_, set)) => return parse_enum(names, v).map(|i| set(c, i)),
        (Kind::Str(check), Slot::Str(_, set)) => {
            check(v)?;
            set(c, text(v));
            return Ok(());
        }
        (Kind::Bool, Slot::Compat(_)) => yes_no(parse_bool(v)?).to_string(),
        (Kind::BoolValid(check), Slot::Compat(_)) => {
            let b = parse_bool(v)?;
            check(b)?;
            yes_no(b).to_string()
        }
        (Kind::Num(n), Slot::Compat(_)) => format_num(*n, parse_num(*n, v)?),
        (Kind::Enum(names), Slot::Compat(_)) => names[parse_enum(names, v)?].to_string(),
        (Kind::Str(check), Slot::Compat(_)) => {
            check(v)?;
            text(v)
        }
        _ => unreachable!("directive {} pairs a kind with the wrong slot", d.name),
    };
    c.compat.insert(d.name, formatted);
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn parse_bool(v: &[u8]) -> Result<bool, String> {
    if v.eq_ignore_ascii_case(b"yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case(b"no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

/// Redis's `numericParseString` then `numericBoundaryCheck`. A percentage `N%` comes back as `-N`.
fn parse_num(n: Num, v: &[u8]) -> Result<i128, String> {
    const NOT_MEMORY_OR_PERCENT: &str = "argument must be a memory or percent value";
    let x = if n.octal {
        let ll = strtoll_octal(v).ok_or("argument couldn't be parsed as an octal number")?;
        i128::from(ll)
    } else if let (true, Some(digits)) = (n.percent, v.strip_suffix(b"%")) {
        match engine::util::parse_i64(digits) {
            Some(p) if p >= 0 => -i128::from(p),
            _ => return Err(NOT_MEMORY_OR_PERCENT.into()),
        }
    } else if n.memory {
        let ull =
            memtoull(v).ok_or(if n.percent { NOT_MEMORY_OR_PERCENT } else { "argument must be a memory value" })?;
        if n.unsigned {
            i128::from(ull)
        } else {
            i128::from(ull as i64)
        }
    } else {
        let ll = engine::util::parse_i64(v).ok_or("argument couldn't be parsed into an integer")?;
        if n.unsigned {
            i128::from(ll as u64)
        } else {
            i128::from(ll)
        }
    };
    // A negative value of a percent setting (typed as `N%`, or a memory value past `LLONG_MAX`) is a
    // percentage.
    if n.percent && x < 0 {
        if x < -100 {
            return Err("percentage argument must be less or equal to 100".into());
        }
        return Ok(x);
    }
    if x < n.min || x > n.max {
        let (min, max) = if n.octal {
            (format!("{:o}", n.min), format!("{:o}", n.max))
        } else {
            (n.min.to_string(), n.max.to_string())
        };
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(x)
}

/// A numeric value as CONFIG GET prints it.
fn format_num(n: Num, x: i128) -> String {
    if n.percent && x < 0 {
        format!("{}%", -x)
    } else if n.octal {
        format!("{x:o}")
    } else {
        x.to_string()
    }
}

fn parse_enum(names: &[&str], v: &[u8]) -> Result<usize, String> {
    names
        .iter()
        .position(|n| v.eq_ignore_ascii_case(n.as_bytes()))
        .ok_or_else(|| format!("argument(s) must be one of the following: {}", names.join(", ")))
}

/// `setConfigSaveOption`: pairs of `strtoll` numbers, seconds at least 1, changes at least 0. A single ""
/// means no rules. Reading a file, the first `save` line replaces the defaults and later ones add rules.
fn set_save(c: &mut Config, args: &[Vec<u8>], mode: &mut Mode) -> Result<(), String> {
    let args = if args.len() == 1 && args[0].is_empty() {
        // `save ""` drops every rule, even those of earlier lines.
        c.save.clear();
        &[][..]
    } else {
        args
    };
    let invalid = || "Invalid save parameters".to_string();
    if args.len() % 2 == 1 {
        return Err(invalid());
    }
    let mut rules = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks(2) {
        let seconds = strtoll_whole(&pair[0]).filter(|&s| s >= 1).ok_or_else(invalid)?;
        let changes = strtoll_whole(&pair[1]).filter(|&s| s >= 0).ok_or_else(invalid)?;
        rules.push(SaveRule { seconds: seconds as u64, changes: changes as u64 });
    }
    match mode {
        Mode::File { save_seen } => {
            if !*save_seen {
                *save_seen = true;
                c.save.clear();
            }
            c.save.extend(rules);
        }
        Mode::Set => c.save = rules,
    }
    Ok(())
}

/// `setConfigBindOption`: at most 16 addresses; a single "" means none. Whether they can be bound is the
/// server's business when it applies the change.
fn set_bind(c: &mut Config, args: &[Vec<u8>]) -> Result<(), String> {
    if args.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    c.bind = if args.len() == 1 && args[0].is_empty() { Vec::new() } else { args.iter().map(|a| text(a)).collect() };
    Ok(())
}

/// `dir`: Redis `chdir`s at once, so a relative path is taken from the current `dir`, and a missing
/// directory is an error worded like `strerror`. Moon resolves the path instead of changing directory.
fn set_dir(c: &mut Config, v: &[u8]) -> Result<(), String> {
    if v.is_empty() {
        return Err("No such file or directory".into());
    }
    let path = absolute(&c.dir).join(Path::new(std::ffi::OsStr::from_bytes(v)));
    let resolved = std::fs::canonicalize(&path).map_err(|e| strerror(&e))?;
    if !resolved.is_dir() {
        return Err("Not a directory".into());
    }
    c.dir = resolved;
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The value as CONFIG GET prints it.
pub(super) fn value(d: &Directive, c: &Config) -> String {
    match (&d.kind, &d.slot) {
        (Kind::Save, _) => c.save.iter().map(|r| format!("{} {}", r.seconds, r.changes)).collect::<Vec<_>>().join(" "),
        (Kind::Bind, _) => c.bind.join(" "),
        (Kind::Dir, _) => absolute(&c.dir).to_string_lossy().into_owned(),
        (_, Slot::Bool(get, _)) => yes_no(get(c)).to_string(),
        (_, Slot::Num(get, _)) => get(c).to_string(),
        (Kind::Enum(names), Slot::Enum(get, _)) => names[get(c)].to_string(),
        (_, Slot::Str(get, _)) => get(c),
        (_, Slot::Compat(default)) => c.compat.get(d.name).map_or(*default, |s| s).to_string(),
        _ => unreachable!("directive {} pairs a kind with the wrong slot", d.name),
    }
}

/// The lines CONFIG REWRITE writes for the current value; none for a NULL string.
pub(super) fn rewrite_lines(d: &Directive, c: &Config) -> Vec<String> {
    let v = value(d, c);
    let line = |rest: &str| vec![format!("{} {rest}", d.name)];
    match &d.kind {
        Kind::Save if c.save.is_empty() => line("\"\""),
        Kind::Save => c.save.iter().map(|r| format!("save {} {}", r.seconds, r.changes)).collect(),
        Kind::Bind if c.bind.is_empty() => line("\"\""),
        Kind::Str(_) | Kind::Dir | Kind::Custom { .. } if v.is_empty() && d.flags & NULL_IF_EMPTY != 0 => Vec::new(),
        Kind::Str(_) | Kind::Dir | Kind::Custom { multi: false, .. } => line(&repr(v.as_bytes())),
        Kind::Custom { multi: true, .. } if v.is_empty() => line("\"\""),
        Kind::Num(n) if n.memory && !v.ends_with('%') => line(&format_memory(v.parse().unwrap_or(0))),
        _ => line(&v),
    }
}

/// The defaults of the compatibility settings, for `Config::default`.
pub(super) fn compat_defaults() -> BTreeMap<&'static str, String> {
    COMPAT
        .iter()
        .filter_map(|d| match d.slot {
            Slot::Compat(default) => Some((d.name, default.to_string())),
            _ => None,
        })
        .collect()
}

const fn num(min: i128, max: i128, unsigned: bool, memory: bool) -> Kind {
    Kind::Num(Num { min, max, unsigned, memory, percent: false, octal: false })
}
pub(super) const fn int(min: i128, max: i128) -> Kind {
    num(min, max, false, false)
}
pub(super) const fn uint(min: i128, max: i128) -> Kind {
    num(min, max, true, false)
}
pub(super) const fn mem(min: i128, max: i128) -> Kind {
    num(min, max, false, true)
}
pub(super) const fn umem(min: i128, max: i128) -> Kind {
    num(min, max, true, true)
}
/// A signed memory value that also accepts a percentage `N%` (0..=100).
pub(super) const fn mem_or_percent(min: i128, max: i128) -> Kind {
    Kind::Num(Num { min, max, unsigned: false, memory: true, percent: true, octal: false })
}
/// An integer read and written in octal (file permissions).
pub(super) const fn octal(min: i128, max: i128) -> Kind {
    Kind::Num(Num { min, max, unsigned: false, memory: false, percent: false, octal: true })
}
pub(super) const fn d(name: &'static str, flags: u8, kind: Kind, slot: Slot) -> Directive {
    Directive { name, alias: None, flags, kind, slot }
}
pub(super) const fn da(name: &'static str, alias: &'static str, flags: u8, kind: Kind, slot: Slot) -> Directive {
    Directive { name, alias: Some(alias), flags, kind, slot }
}

pub(super) fn any_string(_: &[u8]) -> Result<(), &'static str> {
    Ok(())
}

fn is_base_name(v: &[u8]) -> bool {
    !v.contains(&b'/') && !v.contains(&b'\\')
}

fn check_dbfilename(v: &[u8]) -> Result<(), &'static str> {
    if is_base_name(v) {
        Ok(())
    } else {
        Err("dbfilename can't be a path, just a filename")
    }
}

fn check_appendfilename(v: &[u8]) -> Result<(), &'static str> {
    match v {
        [] => Err("appendfilename can't be empty"),
        _ if !is_base_name(v) => Err("appendfilename can't be a path, just a filename"),
        _ => Ok(()),
    }
}

fn check_appenddirname(v: &[u8]) -> Result<(), &'static str> {
    match v {
        [] => Err("appenddirname can't be empty"),
        _ if !is_base_name(v) => Err("appenddirname can't be a path, just a dirname"),
        _ => Ok(()),
    }
}

fn path_text(p: &Option<PathBuf>) -> String {
    p.as_ref().map_or_else(String::new, |p| p.to_string_lossy().into_owned())
}

fn non_empty_path(v: String) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

macro_rules! bool_slot {
    ($f:ident) => {
        Slot::Bool(|c| c.$f, |c, v| c.$f = v)
    };
}
macro_rules! num_slot {
    ($f:ident) => {
        Slot::Num(|c| c.$f as i128, |c, v| c.$f = v as _)
    };
}
macro_rules! enum_slot {
    ($f:ident) => {
        Slot::Enum(|c| c.$f.index(), |c, i| c.$f = ConfigEnum::from_index(i))
    };
}

const C: Slot = Slot::Own;

/// The settings Moon acts on, in the order CONFIG GET `*` and CONFIG REWRITE list them.
#[rustfmt::skip]
static OWN: &[Directive] = &[
    d("port", 0, int(0, 65535), num_slot!(port)),
    d("bind", 0, Kind::Bind, C),
    d("dir", PROTECTED, Kind::Dir, C),
    d("requirepass", NULL_IF_EMPTY, Kind::Str(any_string), Slot::Str(
        |c| c.requirepass.clone().unwrap_or_default(),
        |c, v| c.requirepass = (!v.is_empty()).then_some(v),
    )),
    d("databases", IMMUTABLE, int(1, INT_MAX), num_slot!(databases)),
    d("maxclients", 0, uint(1, UINT_MAX), num_slot!(maxclients)),
    d("timeout", 0, int(0, INT_MAX), num_slot!(timeout)),
    d("tcp-keepalive", 0, int(0, INT_MAX), num_slot!(tcp_keepalive)),
    d("save", 0, Kind::Save, C),
    d("appendonly", 0, Kind::Bool, bool_slot!(appendonly)),
    d("appendfsync", 0, Kind::Enum(AppendFsync::NAMES), enum_slot!(appendfsync)),
    d("appendfilename", IMMUTABLE, Kind::Str(check_appendfilename), Slot::Str(
        |c| c.appendfilename.clone(), |c, v| c.appendfilename = v,
    )),
    d("appenddirname", IMMUTABLE, Kind::Str(check_appenddirname), Slot::Str(
        |c| c.appenddirname.clone(), |c, v| c.appenddirname = v,
    )),
    d("dbfilename", PROTECTED, Kind::Str(check_dbfilename), Slot::Str(
        |c| c.dbfilename.clone(), |c, v| c.dbfilename = v,
    )),
    d("aof-use-rdb-preamble", 0, Kind::Bool, bool_slot!(aof_use_rdb_preamble)),
    d("aof-load-truncated", 0, Kind::Bool, bool_slot!(aof_load_truncated)),
    d("aof-timestamp-enabled", 0, Kind::Bool, bool_slot!(aof_timestamp_enabled)),
    d("aof-disable-auto-gc", 0, Kind::Bool, bool_slot!(aof_disable_auto_gc)),
    d("aof-rewrite-incremental-fsync", 0, Kind::Bool, bool_slot!(aof_rewrite_incremental_fsync)),
    d("no-appendfsync-on-rewrite", 0, Kind::Bool, bool_slot!(no_appendfsync_on_rewrite)),
    d("auto-aof-rewrite-percentage", 0, int(0, INT_MAX), num_slot!(auto_aof_rewrite_percentage)),
    d("auto-aof-rewrite-min-size", 0, mem(0, LONG_MAX), num_slot!(auto_aof_rewrite_min_size)),
    d("rdbcompression", 0, Kind::Bool, bool_slot!(rdbcompression)),
    d("rdbchecksum", IMMUTABLE, Kind::Bool, bool_slot!(rdbchecksum)),
    d("stop-writes-on-bgsave-error", 0, Kind::Bool, bool_slot!(stop_writes_on_bgsave_error)),
    d("loglevel", 0, Kind::Enum(LogLevel::NAMES), enum_slot!(loglevel)),
    d("logfile", IMMUTABLE, Kind::Str(any_string), Slot::Str(
        |c| path_text(&c.logfile), |c, v| c.logfile = non_empty_path(v),
    )),
    da("hash-max-listpack-entries", "hash-max-ziplist-entries", 0, uint(0, LONG_MAX),
        num_slot!(hash_max_listpack_entries)),
    da("hash-max-listpack-value", "hash-max-ziplist-value", 0, umem(0, LONG_MAX),
        num_slot!(hash_max_listpack_value)),
    d("set-max-intset-entries", 0, uint(0, LONG_MAX), num_slot!(set_max_intset_entries)),
    // Redis 7.2's names for the largest set of strings kept packed (still reported as a hashtable, as 7.0
    // does). Hidden: CONFIG GET * lists 7.0's names only.
    d("set-max-listpack-entries", HIDDEN, uint(0, LONG_MAX), num_slot!(set_max_listpack_entries)),
    d("set-max-listpack-value", HIDDEN, umem(0, LONG_MAX), num_slot!(set_max_listpack_value)),
    da("zset-max-listpack-entries", "zset-max-ziplist-entries", 0, uint(0, LONG_MAX),
        num_slot!(zset_max_listpack_entries)),
    da("zset-max-listpack-value", "zset-max-ziplist-value", 0, umem(0, LONG_MAX),
        num_slot!(zset_max_listpack_value)),
    da("list-max-listpack-size", "list-max-ziplist-size", 0, int(INT_MIN, INT_MAX),
        num_slot!(list_max_listpack_size)),
    d("list-compress-depth", 0, int(0, INT_MAX), num_slot!(list_compress_depth)),
    d("proto-max-bulk-len", 0, mem(MB, LONG_MAX), num_slot!(proto_max_bulk_len)),
    d("client-query-buffer-limit", 0, umem(MB, LONG_MAX), num_slot!(client_query_buffer_limit)),
    d("protected-mode", 0, Kind::Bool, bool_slot!(protected_mode)),
    d("enable-debug-command", IMMUTABLE, Kind::Enum(ProtectedAction::NAMES),
        enum_slot!(enable_debug_command)),
    d("enable-protected-configs", IMMUTABLE, Kind::Enum(ProtectedAction::NAMES),
        enum_slot!(enable_protected_configs)),
    d("daemonize", IMMUTABLE, Kind::Bool, bool_slot!(daemonize)),
    d("pidfile", IMMUTABLE | NULL_IF_EMPTY, Kind::Str(any_string), Slot::Str(
        |c| path_text(&c.pidfile), |c, v| c.pidfile = non_empty_path(v),
    )),
    // Redis accepts any hz and caps it to 1..=500 when applying it.
    d("hz", 0, int(0, INT_MAX), Slot::Num(|c| i128::from(c.hz), |c, v| c.hz = v.clamp(1, 500) as u32)),
    d("maxmemory", 0, umem(0, ULLONG_MAX), num_slot!(maxmemory)),
    d("maxmemory-policy", 0, Kind::Enum(MaxmemoryPolicy::NAMES), enum_slot!(maxmemory_policy)),
    d("lazyfree-lazy-eviction", 0, Kind::Bool, bool_slot!(lazyfree_lazy_eviction)),
    d("lazyfree-lazy-expire", 0, Kind::Bool, bool_slot!(lazyfree_lazy_expire)),
    d("lazyfree-lazy-server-del", 0, Kind::Bool, bool_slot!(lazyfree_lazy_server_del)),
    d("lazyfree-lazy-user-del", 0, Kind::Bool, bool_slot!(lazyfree_lazy_user_del)),
    d("lazyfree-lazy-user-flush", 0, Kind::Bool, bool_slot!(lazyfree_lazy_user_flush)),
    d("slowlog-log-slower-than", 0, int(-1, LONG_MAX), num_slot!(slowlog_log_slower_than)),
    d("slowlog-max-len", 0, uint(0, LONG_MAX), num_slot!(slowlog_max_len)),
    d("latency-monitor-threshold", 0, int(0, LONG_MAX), num_slot!(latency_monitor_threshold)),
    d("shards", IMMUTABLE, int(1, 1024), num_slot!(shards)),
];
