//! What a path given on the command line is. By content, not by name, except where content cannot tell:
//!
//! - a directory: an AOF directory if it holds `<appendfilename>.manifest` (or exactly one `*.manifest`);
//!   a working directory if its `<appenddirname>/` holds the manifest; else a working directory's legacy
//!   `<appendfilename>` or `dump.rdb`;
//! - a file named `*.manifest`, or whose first line that is not a `#` comment starts with the word `file`:
//!   a manifest. Only that first line decides (an AOF always starts with `*` or `#`), so an AOF holding
//!   the value `file` somewhere is not taken for a manifest, unlike redis-check-aof 7.0.15, which looks at
//!   every line;
//! - a file starting with `REDIS` or `VALKEY`: an RDB file when its name ends in `.rdb` and it is not named
//!   like the AOF (`appendfilename`), else an AOF with an RDB preamble;
//! - a file named `*.rdb` that does not start with `*` or `#` (RESP): an RDB file (a damaged one);
//! - anything else: a single AOF of RESP commands (a legacy `appendonly.aof`, or one base or incr file).

use crate::cli::Names;
use anyhow::{bail, Context, Result};
use engine::aof::dir::AofPaths;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum Input {
    /// A multi-part AOF: its manifest is `paths.manifest_path()`.
    Dir(AofPaths),
    /// One AOF file on its own (legacy or not); `preamble` when it starts with an RDB.
    SingleAof { path: PathBuf, preamble: bool },
    /// An RDB file.
    Rdb(PathBuf),
}

impl Input {
    /// A stable name for `--json`: `aof-dir`, `aof-file`, `rdb`.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Dir(_) => "aof-dir",
            Input::SingleAof { .. } => "aof-file",
            Input::Rdb(_) => "rdb",
        }
    }
}

/// The first bytes of a file.
pub fn head(path: &Path, n: usize) -> Result<Vec<u8>> {
    let mut f = fs::File::open(path).with_context(|| format!("can't open {}", path.display()))?;
    let mut buf = Vec::with_capacity(n);
    f.by_ref().take(n as u64).read_to_end(&mut buf).with_context(|| format!("can't read {}", path.display()))?;
    Ok(buf)
}

pub fn is_rdb_magic(head: &[u8]) -> bool {
    head.starts_with(b"REDIS") || head.starts_with(b"VALKEY")
}

/// Whether these first bytes are a manifest's: the first line that is not a comment starts with `file`
/// followed by white space.
pub fn looks_like_manifest(head: &[u8]) -> bool {
    for line in head.split(|&b| b == b'\n') {
        if line.first() == Some(&b'#') {
            continue;
        }
        let t = line.trim_ascii_start();
        return t.len() > 4 && t[..4].eq_ignore_ascii_case(b"file") && t[4].is_ascii_whitespace();
    }
    false
}

fn is_file(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn paths_from_manifest(manifest: &Path) -> Result<Input> {
    Ok(Input::Dir(AofPaths::from_manifest_path(manifest).map_err(|e| anyhow::anyhow!("{}: {e}", manifest.display()))?))
}

/// The AOF directory's manifest, if `dir` is one.
fn manifest_in(dir: &Path, names: &Names) -> Result<Option<PathBuf>> {
    let preferred = dir.join(format!("{}.manifest", names.appendfilename));
    if is_file(&preferred) {
        return Ok(Some(preferred));
    }
    let mut found = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("can't list {}", dir.display()))? {
        let e = e.with_context(|| format!("can't list {}", dir.display()))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".manifest") && !name.starts_with("temp-") && is_file(&e.path()) {
            found.push(e.path());
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => {
            found.sort();
            let list: Vec<String> = found.iter().map(|p| file_name(p)).collect();
            bail!("{} holds several manifests ({}): give the one to use", dir.display(), list.join(", "))
        }
    }
}

/// Classifies `path`.
pub fn detect(path: &Path, names: &Names) -> Result<Input> {
    let meta = fs::metadata(path).with_context(|| format!("can't open {}", path.display()))?;
    if meta.is_dir() {
        if let Some(m) = manifest_in(path, names)? {
            return paths_from_manifest(&m);
        }
        let sub = path.join(&names.appenddirname);
        if sub.is_dir() {
            if let Some(m) = manifest_in(&sub, names)? {
                return paths_from_manifest(&m);
            }
        }
        let legacy = path.join(&names.appendfilename);
        if is_file(&legacy) {
            return detect(&legacy, names);
        }
        let dump = path.join("dump.rdb");
        if is_file(&dump) {
            return Ok(Input::Rdb(dump));
        }
        bail!(
            "{} holds no AOF manifest, no {}/ with one, no {} and no dump.rdb",
            path.display(),
            names.appenddirname,
            names.appendfilename
        );
    }
    let name = file_name(path);
    if name.ends_with(".manifest") {
        return paths_from_manifest(path);
    }
    let head = head(path, 4096)?;
    if is_rdb_magic(&head) {
        if name.ends_with(".rdb") && name != names.appendfilename {
            return Ok(Input::Rdb(path.to_path_buf()));
        }
        return Ok(Input::SingleAof { path: path.to_path_buf(), preamble: true });
    }
    if looks_like_manifest(&head) {
        return paths_from_manifest(path);
    }
    // A damaged RDB (bad magic) is still an RDB file when its name says so and it does not look like RESP.
    if name.ends_with(".rdb") && !matches!(head.first(), Some(b'*' | b'#')) {
        return Ok(Input::Rdb(path.to_path_buf()));
    }
    Ok(Input::SingleAof { path: path.to_path_buf(), preamble: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_sniffing_looks_at_the_first_line_only() {
        assert!(looks_like_manifest(b"file appendonly.aof.1.base.rdb seq 1 type b\n"));
        assert!(looks_like_manifest(b"# comment\nFILE x seq 1 type b\n"));
        assert!(!looks_like_manifest(b"*3\r\n$3\r\nset\r\n$4\r\nfile\r\n$4\r\nfile\r\n"));
        assert!(!looks_like_manifest(b"#TS:1\r\n*1\r\n$4\r\nfile\r\nfile x seq 1 type b\n"));
        assert!(!looks_like_manifest(b""));
        assert!(!looks_like_manifest(b"filed x"));
    }
}
