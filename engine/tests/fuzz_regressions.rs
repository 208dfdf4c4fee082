//! Replays the fuzz corpus and every saved crash through the fuzz targets' own checks, on the stable
//! toolchain, so a crash found once by `engine/fuzz/run.sh` stays a test case: `engine/fuzz/corpus/<target>/`
//! (the checked-in seeds) and `engine/fuzz/regressions/<target>/` (inputs that once failed).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::panic;
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn corpus_and_regressions_pass_the_fuzz_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failed = Vec::new();
    for (target, check) in checks::TARGETS {
        let seeds = inputs(&root.join("corpus").join(target));
        assert!(!seeds.is_empty(), "no checked-in corpus for {target}: run engine/fuzz/seed-corpus.sh");
        for file in seeds.iter().chain(inputs(&root.join("regressions").join(target)).iter()) {
            let data = std::fs::read(file).expect("readable input");
            if panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(format!("{target}: {}", file.display()));
            }
        }
    }
    assert!(failed.is_empty(), "fuzz checks failed for:\n{}", failed.join("\n"));
}
