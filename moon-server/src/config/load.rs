//! Start-up loading, as redis-server's `main` and `loadServerConfig` do it: the command line becomes
//! configuration text (`--port 6380` turns into the line `port "6380"`), appended after the file and stdin
//! with one extra line break, and the whole text is read line by line. `include` reads another file (a glob
//! pattern may match several, or none) with its own line numbers.

use super::directives::{apply, lookup, Mode};
use super::error::strerror;
use super::syntax::{repr, split_args, text, trim};
use super::{Config, ConfigError};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Settings Redis 7.0 still accepts in a file and ignores.
const DEPRECATED: &[&[u8]] = &[b"list-max-ziplist-entries", b"list-max-ziplist-value", b"lua-replicate-commands"];

/// Redis has no limit and overflows its stack on an include loop; Moon reports it.
const MAX_INCLUDE_DEPTH: usize = 32;

pub(super) fn from_args(args: &[String], stdin: &mut dyn Read) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let mut next = 0;
    let mut file = None;
    if let Some(first) = args.first() {
        if !first.starts_with('-') {
            file = Some(std::path::absolute(first).unwrap_or_else(|_| PathBuf::from(first)));
            next = 1;
        }
    }
    let (options, from_stdin) = options_text(args, next);

    let mut text = Vec::new();
    if let Some(file) = &file {
        read_config(file, &mut text)?;
    }
    if from_stdin {
        stdin
            .read_to_end(&mut text)
            .map_err(|e| ConfigError::Check { reason: format!("Can't read config from stdin: {}", strerror(&e)) })?;
    }
    text.push(b'\n');
    text.extend_from_slice(&options);

    let mut config = Config::default();
    load_text(&text, &mut config, &mut Mode::File { save_seen: false }, 0)?;
    check_logfile(&config)?;
    Ok((config, file))
}

/// The option part of the command line as configuration text, and whether `-` asked for stdin (only as
/// the first or the last argument). After a bare `--name`, the next argument is its value even if it
/// starts with `--`; `--save` followed by another option, or last, means `save ""`.
fn options_text(args: &[String], start: usize) -> (Vec<u8>, bool) {
    let mut options = Vec::new();
    let mut from_stdin = false;
    let mut value_seen = true;
    for j in start..args.len() {
        let arg = &args[j];
        let last = j + 1 == args.len();
        if arg == "-" && (j == 0 || last) {
            from_stdin = true;
        } else if value_seen && arg.starts_with("--") {
            if !options.is_empty() {
                options.push(b'\n');
            }
            options.extend_from_slice(&arg.as_bytes()[2..]);
            options.push(b' ');
            if split_args(arg.as_bytes()).is_some_and(|a| a.len() == 1) {
                value_seen = false;
                if arg.eq_ignore_ascii_case("--save") && (last || args[j + 1].starts_with("--")) {
                    options.extend_from_slice(b"\"\"");
                    value_seen = !last;
                }
            } else {
                // `"--port 6380"` as one argument carries its own value.
                value_seen = true;
            }
        } else {
            options.extend_from_slice(repr(arg.as_bytes()).as_bytes());
            options.push(b' ');
            value_seen = true;
        }
    }
    (options, from_stdin)
}

/// Appends the content of a configuration file, or of every file a glob pattern matches (none is fine).
fn read_config(path: &Path, out: &mut Vec<u8>) -> Result<(), ConfigError> {
    let files = if has_wildcard(path.as_os_str().as_bytes()) { glob(path) } else { vec![path.to_path_buf()] };
    for file in files {
        let content =
            std::fs::read(&file).map_err(|e| ConfigError::Open { path: file.clone(), reason: strerror(&e) })?;
        out.extend_from_slice(&content);
    }
    Ok(())
}

fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// `glob(3)` for configuration paths: each component with a wildcard is matched against the directory's
/// entries (hidden ones only by a pattern starting with `.`), results sorted; only existing paths result.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::new()];
    for component in pattern.components() {
        let part = component.as_os_str().as_bytes();
        if !matches!(component, Component::Normal(_)) || !has_wildcard(part) {
            paths.iter_mut().for_each(|p| p.push(component));
            continue;
        }
        let mut matched = Vec::new();
        for dir in &paths {
            let listing = if dir.as_os_str().is_empty() { Path::new(".") } else { dir.as_path() };
            let Ok(entries) = std::fs::read_dir(listing) else {
                continue;
            };
            let mut names: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| {
                    let n = n.as_bytes();
                    (part.first() == Some(&b'.') || n.first() != Some(&b'.'))
                        && engine::glob::glob_match(part, n, false)
                })
                .collect();
            names.sort();
            matched.extend(names.into_iter().map(|n| dir.join(n)));
        }
        paths = matched;
    }
    paths.retain(|p| p.exists());
    paths
}

/// `loadServerConfigFromString`: reads configuration text into `config`.
pub(super) fn load_text(content: &[u8], config: &mut Config, mode: &mut Mode, depth: usize) -> Result<(), ConfigError> {
    for (index, raw) in content.split(|&b| b == b'\n').enumerate() {
        let line = trim(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let fail = |reason: String| ConfigError::Line { line: index + 1, text: text(line), reason };
        let argv = split_args(line).ok_or_else(|| fail("Unbalanced quotes in configuration line".into()))?;
        let Some(name) = argv.first().map(|n| n.to_ascii_lowercase()) else {
            continue;
        };
        if let Some((directive, _)) = lookup(&name) {
            let values = if !directive.multi_arg() {
                if argv.len() != 2 {
                    return Err(fail("wrong number of arguments".into()));
                }
                argv[1..].to_vec()
            } else if argv.len() == 2 && !argv[1].is_empty() {
                // `--save "900 1 300 10"` is one argument holding several.
                split_args(&argv[1]).unwrap_or_default()
            } else {
                argv[1..].to_vec()
            };
            apply(directive, config, &values, mode).map_err(fail)?;
        } else if DEPRECATED.contains(&name.as_slice()) {
            continue;
        } else if name == b"include" && argv.len() == 2 {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(fail("include nesting is too deep".into()));
            }
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(&argv[1]));
            let mut included = Vec::new();
            read_config(&path, &mut included)?;
            load_text(&included, config, mode, depth + 1)?;
        } else {
            return Err(fail("Bad directive or wrong number of arguments".into()));
        }
    }
    Ok(())
}

/// Redis checks at start-up that the log file can be opened for appending (creating it if needed).
fn check_logfile(config: &Config) -> Result<(), ConfigError> {
    if let Some(path) = &config.logfile {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| ConfigError::Check { reason: format!("Can't open the log file: {}", strerror(&e)) })?;
    }
    Ok(())
}
