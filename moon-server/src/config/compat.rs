//! Parsers for the compatibility settings whose syntax is their own (`notify-keyspace-events`,
//! `client-output-buffer-limit`, `oom-score-adj-values`, `proc-title-template`, `replicaof`,
//! `latency-tracking-info-percentiles`, `shutdown-on-sig*` ...), and the side effects redis-server 7.0 has
//! when CONFIG SET changes some of them (`after_set`). Each validates like redis-server 7.0, with its error
//! text, and returns the value in CONFIG GET form. Moon stores these values but does not act on them.

use super::directives::{value, Directive};
use super::syntax::{is_c_space, memtoull, strtoll_whole, text};
use super::Config;

/// `keyspaceEventsStringToFlags` then `keyspaceEventsFlagsToString`: `A` stands for `g$lshzxetd`.
pub(super) fn notify_keyspace_events(args: &[Vec<u8>], _current: &str) -> Result<String, String> {
    const CLASSES: &[u8] = b"g$lshzxetdn";
    const ALL: &[u8] = b"g$lshzxetd";
    let mut on = [false; 256];
    for &c in &args[0] {
        match c {
            b'A' => ALL.iter().for_each(|&a| on[usize::from(a)] = true),
            b'K' | b'E' | b'm' => on[usize::from(c)] = true,
            _ if CLASSES.contains(&c) => on[usize::from(c)] = true,
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        }
    }
    let mut out = String::new();
    if ALL.iter().all(|&a| on[usize::from(a)]) {
        out.push('A');
    } else {
        out.extend(CLASSES.iter().filter(|&&c| on[usize::from(c)]).map(|&c| c as char));
    }
    out.extend(b"KEm".iter().filter(|&&c| on[usize::from(c)]).map(|&c| c as char));
    Ok(out)
}

/// `client-output-buffer-limit <class> <hard> <soft> <soft-seconds> ...`: updates the named classes
/// (`replica` is `slave`; `master` is refused) and keeps the others.
pub(super) fn client_output_buffer_limit(args: &[Vec<u8>], current: &str) -> Result<String, String> {
    const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let class_of = |name: &[u8]| match name.to_ascii_lowercase().as_slice() {
        b"normal" => Some(0),
        b"slave" | b"replica" => Some(1),
        b"pubsub" => Some(2),
        _ => None,
    };
    let mut limits = [[0u64; 3]; 3];
    let words: Vec<&str> = current.split(' ').collect();
    for (class, chunk) in words.chunks(4).enumerate().take(3) {
        for (slot, word) in chunk.iter().skip(1).enumerate() {
            limits[class][slot] = word.parse().unwrap_or(0);
        }
    }
    let mut updates = Vec::new();
    for group in args.chunks(4) {
        let class = class_of(&group[0]).ok_or("Invalid client class specified in buffer limit configuration.")?;
        let mut values = [0u64; 3];
        for (slot, arg) in group[1..].iter().enumerate() {
            values[slot] =
                memtoull(arg).ok_or("Error in hard, soft or soft_seconds setting in buffer limit configuration.")?;
        }
        updates.push((class, values));
    }
    for (class, values) in updates {
        limits[class] = values;
    }
    let parts: Vec<String> =
        CLASSES.iter().zip(limits).map(|(name, [hard, soft, secs])| format!("{name} {hard} {soft} {secs}")).collect();
    Ok(parts.join(" "))
}

/// `oom-score-adj-values <master> <replica> <bgchild>`, each within -2000..=2000.
pub(super) fn oom_score_adj_values(args: &[Vec<u8>], _current: &str) -> Result<String, String> {
    if args.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut values = Vec::with_capacity(3);
    for arg in args {
        match strtoll_whole(arg) {
            Some(v) if (-2000..=2000).contains(&v) => values.push(v.to_string()),
            _ => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
        }
    }
    Ok(values.join(" "))
}

/// `proc-title-template`: `{name}` variables from a fixed set, `{{` for a literal brace; the expansion
/// (with an empty title and standalone mode) must not be blank.
pub(super) fn proc_title_template(args: &[Vec<u8>], _current: &str) -> Result<String, String> {
    const INVALID: &str = "template format is invalid or contains unknown variables";
    let template = text(&args[0]);
    let mut expanded = String::new();
    let mut rest = template.as_str();
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if after.is_empty() {
            return Err(INVALID.into());
        }
        if let Some(quoted) = after.strip_prefix('{') {
            expanded.push('{');
            rest = quoted;
            continue;
        }
        let close = after.find('}').ok_or(INVALID)?;
        expanded.push_str(match &after[..close] {
            "title" | "server-mode" | "unixsocket" => "",
            "listen-addr" | "port" | "tls-port" | "config-file" => "x",
            _ => return Err(INVALID.into()),
        });
        rest = &after[close + 1..];
    }
    expanded.push_str(rest);
    if expanded.trim_matches(' ').is_empty() {
        return Err(INVALID.into());
    }
    Ok(template)
}

/// `replicaof <host> <port>` or `replicaof no one` (the default, shown as ""). Immutable, so only read from
/// configuration text.
pub(super) fn replicaof(args: &[Vec<u8>], _current: &str) -> Result<String, String> {
    let [host, port] = args else {
        return Err("wrong number of arguments".into());
    };
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        return Ok(String::new());
    }
    match strtoll_whole(port) {
        Some(p) if (0..=65535).contains(&p) => Ok(format!("{} {p}", text(host))),
        _ => Err("Invalid master port".into()),
    }
}

/// `latency-tracking-info-percentiles <p> ...`: each a C double (`string2d`) within 0..=100; none (or a
/// single "") means no percentiles. Printed with `%f` less its trailing zeros.
pub(super) fn latency_tracking_info_percentiles(args: &[Vec<u8>], _current: &str) -> Result<String, String> {
    if matches!(args, [only] if only.is_empty()) {
        return Ok(String::new());
    }
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let p = string2d(arg).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        let fixed = format!("{p:.6}");
        out.push(fixed.trim_end_matches('0').trim_end_matches('.').to_string());
    }
    Ok(out.join(" "))
}

/// Redis's `string2d`: `strtod` over the whole string, refusing a leading space, NaN and a result out of
/// range (an overflow to infinity or an underflow to zero; a literal `inf` is fine).
fn string2d(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let negative = t.starts_with('-');
    let v = if let Some(hex) = unsigned.strip_prefix("0x").or_else(|| unsigned.strip_prefix("0X")) {
        let v = hex_float(hex)?;
        if negative {
            -v
        } else {
            v
        }
    } else {
        // Rust's grammar is strtod's decimal one, plus the same inf/infinity/nan words.
        let v: f64 = t.parse().ok()?;
        let mantissa = unsigned.split(['e', 'E']).next().unwrap_or("");
        let literal_inf = unsigned.starts_with(['i', 'I']);
        if (v.is_infinite() && !literal_inf) || (v == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b))) {
            return None;
        }
        v
    };
    (!v.is_nan()).then_some(v)
}

/// The part of a C99 hexadecimal float after `0x`: hex digits with an optional point, then an optional
/// binary exponent `p[+-]N`.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = match s.find(['p', 'P']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut exp = -4 * i32::try_from(frac.len()).ok()?;
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        exp = exp.saturating_add(e.parse::<i32>().unwrap_or(if e.starts_with('-') { i32::MIN } else { i32::MAX }));
    }
    let v = v * 2f64.powi(exp);
    (v.is_finite() && (v != 0.0 || !mantissa.chars().any(|c| c.to_digit(16).is_some_and(|d| d != 0)))).then_some(v)
}

/// `shutdown-on-sigint` and `shutdown-on-sigterm`: one or more of the flags, printed in this order, or
/// `default` when none is set.
pub(super) fn shutdown_on_signal(args: &[Vec<u8>], _current: &str) -> Result<String, String> {
    const FLAGS: [&str; 5] = ["default", "save", "nosave", "now", "force"];
    if args.is_empty() {
        return Err(format!("argument(s) must be one of the following: {}", FLAGS.join(", ")));
    }
    let mut on = [false; 5];
    for arg in args {
        let i = FLAGS
            .iter()
            .position(|f| arg.eq_ignore_ascii_case(f.as_bytes()))
            .ok_or_else(|| format!("argument(s) must be one of the following: {}", FLAGS.join(", ")))?;
        on[i] = true;
    }
    if on[1] && on[2] {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    let set: Vec<&str> = FLAGS.iter().zip(on).skip(1).filter(|(_, on)| *on).map(|(f, _)| *f).collect();
    Ok(if set.is_empty() { "default".into() } else { set.join(" ") })
}

/// `cluster-announce-hostname`: letters, digits, `-` and `.` only (empty is fine).
pub(super) fn check_hostname(v: &[u8]) -> Result<(), &'static str> {
    if v.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        Ok(())
    } else {
        Err("Hostnames may only contain alphanumeric characters, hyphens or dots")
    }
}

/// `activedefrag`: like Debian's redis-server (built with the system jemalloc), Moon cannot defragment.
pub(super) fn no_active_defrag(on: bool) -> Result<(), &'static str> {
    if on {
        Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified \
             Jemalloc like the one shipped by default with the Redis source distribution")
    } else {
        Ok(())
    }
}

/// The smallest replication backlog Redis keeps once it resizes it at run time.
const REPL_BACKLOG_MIN_SIZE: u64 = 16 * 1024;

/// What redis-server 7.0 does after CONFIG SET stored new values, for the settings it changed (a setting
/// set to its current value is left alone, as Redis skips its apply function): `repl-backlog-size` is
/// raised to 16kb, a non-zero `watchdog-period` to two cron ticks (`2 * (1000 / hz)` ms), and a change
/// that would need TLS fails as it does on a server without certificates, since Moon has no TLS. `chosen`
/// holds each directive with the name it was given under, in argument order; the error names the
/// argument.
pub(super) fn after_set(
    before: &Config,
    updated: &mut Config,
    chosen: &[(&'static Directive, &'static str)],
) -> Result<(), (&'static str, &'static str)> {
    let compat = |c: &Config, name: &str| c.compat.get(name).cloned().unwrap_or_default();
    let tls_enabled = compat(updated, "tls-port") != "0"
        || compat(updated, "tls-replication") == "yes"
        || compat(updated, "tls-cluster") == "yes";
    for &(d, matched) in chosen {
        if value(d, before) == value(d, updated) {
            continue;
        }
        if d.name == "watchdog-period" {
            // Redis's watchdog timer cannot fire more often than every two cron ticks.
            let period: u64 = compat(updated, d.name).parse().unwrap_or(0);
            if period > 0 {
                let min = u64::from(1000 / updated.hz.max(1)) * 2;
                updated.compat.insert(d.name, period.max(min).to_string());
            }
        } else if d.name == "repl-backlog-size" {
            let size: u64 = compat(updated, d.name).parse().unwrap_or(0);
            updated.compat.insert(d.name, size.max(REPL_BACKLOG_MIN_SIZE).to_string());
        } else if d.name.starts_with("tls-") {
            let refused = if d.name == "tls-port" { compat(updated, d.name) != "0" } else { tls_enabled };
            if refused {
                return Err((matched, "Unable to update TLS configuration. Check server logs."));
            }
        }
    }
    Ok(())
}
