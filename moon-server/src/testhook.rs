//! Test-only pauses at named steps of the persistence protocols, so that a crash test can kill -9 the server
//! at an exact step (tests/crash_loop.rs). With `MOON_TEST_PAUSE_AT=<point>` in the environment, the thread
//! that reaches `<point>` logs `test pause at <point>` and blocks forever; the test waits for the line, kills
//! the process and checks what a restart finds. The variable is read once at start-up ([`init`]); when it is
//! unset (always, outside tests) every hook is one load of a static.
//!
//! Points between the server's own steps call [`pause`]. Points inside the engine's `AofDir` transitions use
//! its fault injection: [`arm`] makes the named step a simulated crash (the step and everything after it do
//! not run, nothing is cleaned up), and [`crashed`] turns the resulting error into the pause. Step numbers
//! count `AofDir`'s file operations (engine/src/aof/dir.rs); the crash test checks the files on disk at each
//! pause, so a change there that moves a point makes the test fail rather than test another step.
//!
//! | point | where | what is on disk |
//! | --- | --- | --- |
//! | `aofrw-incr-created` | `start_rewrite`, AOF on, before the directory fsync | the next incr, not listed |
//! | `aofrw-incr-opened` | rewrite thread, before the walk | the next incr listed and being appended to |
//! | `aofrw-temp-synced` | rewrite thread, after the temp base's fsync | the complete temp base |
//! | `aofrw-before-rename` | `rewrite_done`, before renaming the temp base | the same |
//! | `aofrw-before-manifest` | `rewrite_done`, after the rename and the directory fsync | the new base, not listed |
//! | `aofrw-manifest-temp` | `rewrite_done`, the temp manifest fsynced, not renamed | the same, plus the temp manifest |
//! | `aofrw-before-history` | `rewrite_done`, after the manifest's commit | the new manifest, history files not removed |
//! | `bgsave-temp-synced` | BGSAVE thread, after the temp RDB's fsync, before its rename | the complete temp RDB |

use engine::aof::dir::{AofDir, AofState, DirError, Fault};
use std::sync::OnceLock;

static POINT: OnceLock<Option<Box<str>>> = OnceLock::new();

/// Reads `MOON_TEST_PAUSE_AT` (call once, at start-up).
pub fn init() {
    let _ = POINT.set(std::env::var("MOON_TEST_PAUSE_AT").ok().filter(|p| !p.is_empty()).map(Into::into));
}

fn point() -> Option<&'static str> {
    POINT.get().and_then(|p| p.as_deref())
}

/// Blocks this thread forever if `name` is the configured point.
pub fn pause(name: &str) {
    if point() == Some(name) {
        crate::notice!("test pause at {name}");
        loop {
            std::thread::park();
        }
    }
}

/// Which `AofDir` transition is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    StartRewrite,
    RewriteDone,
}

/// Makes the configured point's step of `transition` a simulated crash (see [`crashed`]). If the transition
/// ends before that step (say, no history to remove), the fault stays armed for a later step: only crash tests
/// set a point, and they fail when its pause line never comes.
pub fn arm(dir: &mut AofDir, transition: Transition) {
    let Some(point) = point() else { return };
    // In WaitRewrite, `rewrite_done` renames the temp incr right after the base.
    let wait = u32::from(dir.state() == AofState::WaitRewrite);
    // `start_rewrite` in state On: open the incr, fsync the directory, then the manifest's commit.
    // `rewrite_done`: fsync the temp base, rename it (and the temp incr), fsync the directory, then the
    // manifest's commit (open, write, fsync its temp file, rename it, fsync the directory), then the history.
    let step = match (transition, point) {
        (Transition::StartRewrite, "aofrw-incr-created") if dir.state() == AofState::On => 2,
        (Transition::RewriteDone, "aofrw-before-rename") => 2,
        (Transition::RewriteDone, "aofrw-before-manifest") => 4 + wait,
        (Transition::RewriteDone, "aofrw-manifest-temp") => 7 + wait,
        (Transition::RewriteDone, "aofrw-before-history") => 9 + wait,
        _ => return,
    };
    dir.inject_fault(step, Fault::Crash);
}

/// The pause of an armed step: blocks forever when `e` is the simulated crash.
pub fn crashed(e: &DirError) {
    if e.is_injected_crash() {
        pause(point().unwrap_or_default());
    }
}
