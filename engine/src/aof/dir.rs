//! See the module map in `aof/mod.rs`.
