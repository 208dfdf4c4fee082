//! Per-command accounting after each command: INFO commandstats, SLOWLOG and LATENCY feed from here.

use crate::client::Client;
use crate::dispatch::Next;
use crate::server::Server;
use bytes::Bytes;
use engine::cmd::CommandSpec;
use std::time::Duration;

/// Called once per executed command (not for queued MULTI commands, which are counted at EXEC).
pub fn record(_server: &Server, _client: &Client, _spec: &CommandSpec, _args: &[Bytes], _took: Duration, _next: &Next) {}
