//! Output and small file helpers: stdout that treats a closed pipe as the end of the run (exit 0, as
//! ripgrep does), progress bars on stderr only when it is a terminal and `--quiet` is off, the
//! `Continue? [y/N]: ` prompt, durable writes (fsync the file, then its directory), and the hidden crash
//! hook the interruption tests use.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where human output and progress go.
pub struct Ui {
    pub json: bool,
    progress: bool,
}

impl Ui {
    pub fn new(quiet: bool, json: bool) -> Ui {
        Ui { json, progress: !quiet && io::stderr().is_terminal() }
    }

    /// A byte-counting bar (hidden unless stderr is a terminal and not `--quiet`).
    pub fn bytes_bar(&self, total: u64, msg: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{msg:20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        pb.set_style(style);
        pb.set_message(msg.to_string());
        pb
    }

    /// A spinner for steps without a known size.
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    }

    /// A text line on stdout (not in `--json` mode).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.json {
            println_out(s.as_ref());
        }
    }

    /// The JSON document (only in `--json` mode).
    pub fn json(&self, v: &serde_json::Value) {
        if self.json {
            let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_string());
            println_out(&text);
        }
    }
}

/// Writes a line to stdout; a closed pipe ends the process quietly with status 0.
pub fn println_out(s: &str) {
    let mut o = io::stdout().lock();
    let r = o.write_all(s.as_bytes()).and_then(|()| o.write_all(b"\n"));
    if let Err(e) = r {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("moon-aof-tool: error writing to stdout: {e}");
        std::process::exit(2);
    }
}

pub fn flush() {
    let _ = io::stdout().flush();
}

/// Wraps a reader and advances a progress bar as bytes go through.
pub struct ProgressRead<R> {
    pub inner: R,
    pub bar: ProgressBar,
}

impl<R: Read> Read for ProgressRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Asks `Continue? [y/N]: ` on stdout and reads a line from stdin: only an answer starting with `y`/`Y`
/// is a yes (EOF is a no), as redis-check-aof does.
pub fn confirm() -> bool {
    print!("Continue? [y/N]: ");
    flush();
    let mut answer = String::new();
    match io::stdin().lock().read_line(&mut answer) {
        Ok(_) => matches!(answer.as_bytes().first(), Some(b'y' | b'Y')),
        Err(_) => false,
    }
}

/// fsyncs a directory (makes its entries durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("can't fsync directory {}", dir.display()))
}

/// The directory holding `p` (`.` for a bare name).
pub fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `path` (which must not exist), writes `data`, fsyncs it and its directory.
pub fn write_new_durable(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("can't create {}", path.display()))?;
    f.write_all(data).and_then(|()| f.sync_all()).with_context(|| format!("can't write {}", path.display()))?;
    sync_dir(&parent_dir(path))
}

/// `<file>.cut-at-<offset>` next to `file`, with `.1`, `.2` ... appended if taken: where `--fix` and
/// `--truncate-to-timestamp` keep the bytes they cut. Redis ignores files its manifest does not list.
pub fn backup_path(file: &Path, offset: u64) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let first = parent_dir(file).join(format!("{name}.cut-at-{offset}"));
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (1..)
        .map(|i| parent_dir(file).join(format!("{name}.cut-at-{offset}.{i}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

/// The hidden crash hook for interruption tests: with `MOON_AOF_TOOL_CRASH_AT=N` in the environment, the
/// process exits with status 86 just before its N-th file-changing step (counting the tool's own steps and
/// those of `engine::aof::dir::AofDir`), without any cleanup, as if it had been killed there.
pub struct Crash {
    at: Option<u32>,
}

static OWN_STEPS: AtomicU32 = AtomicU32::new(0);

/// Exit status of a simulated crash.
pub const CRASH_STATUS: i32 = 86;

impl Crash {
    pub fn from_env() -> Crash {
        Crash { at: std::env::var("MOON_AOF_TOOL_CRASH_AT").ok().and_then(|v| v.parse().ok()) }
    }

    /// One of the tool's own steps is about to run; `dir_steps` is how many `AofDir` steps ran so far.
    pub fn step(&self, dir_steps: u32, what: &str) {
        let n = OWN_STEPS.fetch_add(1, Ordering::SeqCst) + 1;
        if self.at == Some(n + dir_steps) {
            Crash::die(n + dir_steps, what);
        }
    }

    /// Arms `dir` so that its step numbered `at` (counting everything) crashes.
    pub fn arm(&self, dir: &mut engine::aof::dir::AofDir) {
        if let Some(at) = self.at {
            let done = OWN_STEPS.load(Ordering::SeqCst) + dir.steps_taken();
            if at > done {
                dir.inject_fault(at - done, engine::aof::dir::Fault::Crash);
            }
        }
    }

    pub fn die(step: u32, what: &str) -> ! {
        flush();
        eprintln!("moon-aof-tool: injected crash at step {step} ({what})");
        std::process::exit(CRASH_STATUS);
    }
}
