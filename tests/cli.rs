//! The binaries start and answer `--version` / `--help`.

use moon_tests::bin_path;
use std::process::Command;

#[test]
fn binaries_report_version() {
    for name in ["moon-server", "moon-aof-tool"] {
        let out = Command::new(bin_path(name)).arg("--version").output().expect(name);
        assert!(out.status.success(), "{name} --version failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{name}: {text}");
    }
}
