//! CONFIG GET and CONFIG SET with redis-server 7.0's matching, ordering of checks and error replies.

use super::compat::after_set;
use super::directives::{all, apply, lookup, value, Directive, Mode, HIDDEN, IMMUTABLE, PROTECTED};
use super::syntax::{split_spaces, text};
use super::Config;

/// CONFIG GET: an argument without `*`, `?` or `[` names one setting (or alias) case-insensitively and is
/// echoed as typed; a pattern matches names and aliases without regard to case, except hidden settings. A
/// name is reported once even if several arguments match it.
pub(super) fn get(config: &Config, patterns: &[&[u8]]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let seen = |out: &[(String, String)], name: &str| out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    for &pattern in patterns {
        if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            let name = text(pattern);
            if let Some((d, _)) = lookup(pattern).filter(|_| !seen(&out, &name)) {
                out.push((name, value(d, config)));
            }
            continue;
        }
        for d in all().filter(|d| d.flags & HIDDEN == 0) {
            for name in std::iter::once(d.name).chain(d.alias) {
                if engine::glob::glob_match(pattern, name.as_bytes(), true) && !seen(&out, name) {
                    out.push((name.to_string(), value(d, config)));
                }
            }
        }
    }
    out
}

/// CONFIG SET: first every name is checked (unknown, immutable, protected, repeated) without touching
/// anything, then the values are parsed into a copy, Redis's side effects of the changes are checked
/// (`after_set`), and the copy replaces `config` only if all of that succeeded.
pub(super) fn set(config: &mut Config, pairs: &[(Vec<u8>, Vec<u8>)], local_client: bool) -> Result<(), String> {
    if pairs.is_empty() {
        return Err("ERR wrong number of arguments for 'config|set' command".into());
    }
    let mut unknown: Option<&[u8]> = None;
    let mut refused: Option<(&[u8], &str)> = None;
    let mut chosen: Vec<(&'static Directive, &'static str, &[u8])> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let Some((d, matched)) = lookup(name) else {
            if refused.is_none() && unknown.is_none() {
                unknown = Some(name);
            }
            continue;
        };
        if unknown.is_some() || refused.is_some() {
            continue;
        }
        if d.flags & IMMUTABLE != 0 {
            refused = Some((name, "can't set immutable config"));
        } else if d.flags & PROTECTED != 0 && !config.enable_protected_configs.allows(local_client) {
            refused = Some((name, "can't set protected config"));
        } else if chosen.iter().any(|(_, m, _)| *m == matched) {
            // An alias and its name are separate entries in Redis, so only an exact repeat is refused.
            refused = Some((name, "duplicate parameter"));
        }
        chosen.push((d, matched, value));
    }
    if let Some(name) = unknown {
        return Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{}'", text(name)));
    }
    if let Some((name, why)) = refused {
        return Err(failed(&text(name), why));
    }

    let mut updated = config.clone();
    for &(d, matched, value) in &chosen {
        let args = if d.multi_arg() { split_spaces(value) } else { vec![value.to_vec()] };
        apply(d, &mut updated, &args, &mut Mode::Set).map_err(|why| failed(matched, &why))?;
    }
    let changed: Vec<_> = chosen.iter().map(|&(d, matched, _)| (d, matched)).collect();
    after_set(config, &mut updated, &changed).map_err(|(name, why)| failed(name, why))?;
    *config = updated;
    Ok(())
}

fn failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}
