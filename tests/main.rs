//! One integration-test binary for the whole workspace (saves link time); each module is a suite.
//!
//! Suites that exercise the sharded server are written as `fn name(shards: usize)` and listed in
//! [`shard_tests!`], which makes a `name::shards_1` and a `name::shards_4` test of each.

/// For each `fn name(shards: usize)` in scope, a module `name` with tests `shards_1` and `shards_4`.
macro_rules! shard_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn shards_1() {
                    super::$name(1)
                }
                #[test]
                fn shards_4() {
                    super::$name(4)
                }
            }
        )*
    };
}

mod abuse;
mod aof_e2e;
mod aof_engine;
mod aof_rewrite;
mod aof_tool;
mod benchmark;
mod bgsave;
mod cli;
mod client;
mod crash_loop;
mod debug_cmd;
mod differential;
mod faults;
mod memory;
mod protocol;
mod rdb_e2e;
mod redis_cli;
mod safety;
mod soak;
