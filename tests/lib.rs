//! Helpers shared by Moon's end-to-end tests: locating the built binaries, free loopback ports, and
//! temporary directories that clean themselves up.

use std::path::PathBuf;

/// Path of a binary built by this workspace (`moon-server`, `moon-aof-tool`), next to the test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("current_exe");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}
