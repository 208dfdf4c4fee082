//! Helpers for the AOF unit tests: encoding commands, temporary directories, and running Debian's
//! `redis-check-aof` 7.0.15 on the same bytes (skipped with a message when it is missing, unless
//! `MOON_REQUIRE_REDIS` is set).

use super::check::Verdict;
use super::encode_command;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// One command, RESP-encoded.
pub fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(&mut out, args);
    out
}

/// Several commands concatenated.
pub fn cmds(list: &[&[&str]]) -> Vec<u8> {
    list.iter().flat_map(|c| cmd(c)).collect()
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("moon-aof-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Redis tool from /usr/bin or PATH; `None` (after printing why) when missing and `MOON_REQUIRE_REDIS`
/// is unset.
pub fn redis_tool(name: &str) -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin").join(name);
    let found = if fixed.is_file() {
        Some(fixed)
    } else {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
    };
    if found.is_none() {
        assert!(std::env::var_os("MOON_REQUIRE_REDIS").is_none(), "{name} is missing and MOON_REQUIRE_REDIS is set");
        eprintln!("skipping the comparison with {name}: not installed (apt-get install redis-tools)");
    }
    found
}

/// What redis-check-aof printed (without its first line, "Start checking ...") and its exit code.
pub struct CheckAofRun {
    pub stdout: Vec<u8>,
    pub code: i32,
    /// The file's size afterwards (it changes with --truncate-to-timestamp).
    pub size_after: u64,
}

/// Runs redis-check-aof on `bytes` written to `dir/name` (old-style single file), with `args` before the
/// file name. `None` when the tool is missing.
pub fn run_check_aof(dir: &TempDir, name: &str, bytes: &[u8], args: &[&str]) -> Option<CheckAofRun> {
    let tool = redis_tool("redis-check-aof")?;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write aof");
    let out = Command::new(tool).args(args).arg(&path).output().expect("run redis-check-aof");
    let size_after = std::fs::metadata(&path).expect("stat").len();
    let mut stdout = out.stdout;
    if stdout.starts_with(b"Start checking") {
        let nl = stdout.iter().position(|&b| b == b'\n').map_or(stdout.len(), |i| i + 1);
        stdout.drain(..nl);
    }
    Some(CheckAofRun { stdout, code: out.status.code().unwrap_or(-1), size_after })
}

/// What redis-check-aof prints for a single old-style file without `--fix` (after "Start checking"), built
/// from our verdict: the error line, the summary, the result.
pub fn render_check_aof(v: &Verdict, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if v.size == 0 {
        out.extend_from_slice(format!("AOF {name} is empty\n").as_bytes());
        return out;
    }
    if let Some(text) = v.damage.as_ref().and_then(|d| d.check_aof_text(name, name)) {
        out.extend_from_slice(&text);
        out.push(b'\n');
    }
    out.extend_from_slice(v.summary_line(name, v.ok_up_to_line()).as_bytes());
    out.push(b'\n');
    if v.diff() > 0 {
        out.extend_from_slice(format!("AOF {name} is not valid. Use the --fix option to try fixing it.\n").as_bytes());
    } else {
        out.extend_from_slice(format!("AOF {name} is valid\n").as_bytes());
    }
    out
}
