//! Parsers for the compatibility settings whose syntax is their own (`notify-keyspace-events`,
//! `client-output-buffer-limit`, `oom-score-adj-values`, `proc-title-template`). Each validates like
//! redis-server 7.0, with its error text, and returns the value in CONFIG GET form. Moon stores these
//! values but does not act on them.

use super::syntax::{memtoull, strtoll_whole, text};

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
        out.extend(
            CLASSES
                .iter()
                .filter(|&&c| on[usize::from(c)])
                .map(|&c| c as char),
        );
    }
    out.extend(
        b"KEm"
            .iter()
            .filter(|&&c| on[usize::from(c)])
            .map(|&c| c as char),
    );
    Ok(out)
}

/// `client-output-buffer-limit <class> <hard> <soft> <soft-seconds> ...`: updates the named classes
/// (`replica` is `slave`; `master` is refused) and keeps the others.
pub(super) fn client_output_buffer_limit(
    args: &[Vec<u8>],
    current: &str,
) -> Result<String, String> {
    const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
    if args.len() % 4 != 0 {
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
        let class = class_of(&group[0])
            .ok_or("Invalid client class specified in buffer limit configuration.")?;
        let mut values = [0u64; 3];
        for (slot, arg) in group[1..].iter().enumerate() {
            values[slot] = memtoull(arg).ok_or(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            )?;
        }
        updates.push((class, values));
    }
    for (class, values) in updates {
        limits[class] = values;
    }
    let parts: Vec<String> = CLASSES
        .iter()
        .zip(limits)
        .map(|(name, [hard, soft, secs])| format!("{name} {hard} {soft} {secs}"))
        .collect();
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
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
                )
            }
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
