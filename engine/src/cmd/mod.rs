//! The command table and the single executor.
//!
//! Every command has a [`CommandSpec`]: name, arity, flags and key positions as Redis's `COMMAND INFO` gives
//! them. The server routes by the key positions, the AOF logs what the write flag and [`Ctx::dirty`] say.
//! [`execute`] checks arity in one place and calls the family handler; it is the one implementation used by
//! live traffic and by AOF replay. Commands that need the connection or the server (PING, MULTI, CONFIG ...)
//! are listed with [`Handler::Server`] so the table stays complete for `COMMAND`, and the server runs them.
//!
//! One file per family: [`keys`], [`strings`], [`lists`], [`hashes`], [`sets`], [`zsets`], [`dump`] (DUMP and
//! RESTORE), [`server`].

pub mod args;
pub mod ctx;
pub mod dump;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod server;
pub mod sets;
pub mod spec;
pub mod strings;
#[cfg(test)]
pub mod testkit;
pub mod zsets;

pub use ctx::{Ctx, Stats};
pub use spec::{lookup, Arity, CommandSpec, Handler, KeySpec, LastLookup};

use crate::resp::Reply;
use bytes::Bytes;

/// Exact Redis error texts shared by all families.
pub mod errors {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const OUT_OF_RANGE: &str = "ERR index out of range";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    pub const POSITIVE: &str = "ERR value is out of range, must be positive";
}

/// Result type of command helpers: an error is already the reply to send.
pub type CmdResult<T = Reply> = Result<T, Reply>;

/// `ERR wrong number of arguments for '<name>' command`.
pub fn arity_error(name: &str) -> Reply {
    Reply::err(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()))
}

/// Redis 7.0's reply for an unknown command.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let name = args.first().map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default();
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let s = String::from_utf8_lossy(a);
        let cut: String = s.chars().take(room).collect();
        rest.push_str(&format!("'{cut}' "));
    }
    let name: String = name.chars().take(128).collect();
    let msg = format!("ERR unknown command '{name}', with args beginning with: {rest}");
    Reply::err(msg.replace(['\r', '\n'], " "))
}

/// Runs one command against the store. Arity and the existence of the command are checked here; everything
/// else is the handler's. Server-level commands return an error here: the server intercepts them first.
pub fn execute(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(name) = args.first() else {
        return Reply::err("ERR empty command");
    };
    let Some(spec) = lookup(name) else {
        return unknown_command(args);
    };
    execute_spec(ctx, spec, args)
}

/// [`execute`] for a caller that already looked `args[0]` up (the server's dispatcher): `spec` must be the
/// table entry of `args[0]`.
pub fn execute_spec(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    if !spec.arity_ok(args.len()) {
        return arity_error(spec.name);
    }
    match spec.handler {
        Handler::Engine(f) => f(ctx, args),
        Handler::Server => unknown_command(args),
    }
}
