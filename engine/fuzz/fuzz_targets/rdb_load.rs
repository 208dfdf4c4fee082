//! libFuzzer entry point; the properties are in `checks.rs` (`checks::rdb_load`), shared with the engine's
//! stable regression test.

#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::rdb_load(data));
