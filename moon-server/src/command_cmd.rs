//! COMMAND, COMMAND COUNT / INFO / DOCS / LIST / GETKEYS, from the engine's command table.

use bytes::Bytes;
use engine::cmd::spec::{self, CommandSpec, FLAG_NAMES};
use engine::resp::Reply;
use engine::util::eq_ic;

fn info(s: &CommandSpec) -> Reply {
    let flags = FLAG_NAMES.iter().filter(|(f, _)| s.has(*f)).map(|(_, n)| Reply::Simple((*n).into())).collect();
    let acl = s.acl.iter().map(|c| Reply::Simple(format!("@{c}"))).collect();
    Reply::Array(vec![
        Reply::bulk(s.name),
        Reply::Int(i64::from(s.arity)),
        Reply::Set(flags),
        Reply::Int(i64::from(s.first)),
        Reply::Int(i64::from(s.last)),
        Reply::Int(i64::from(s.step)),
        Reply::Set(acl),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn sorted() -> Vec<&'static CommandSpec> {
    let mut all: Vec<_> = spec::all().collect();
    all.sort_by_key(|s| s.name);
    all
}

pub fn run(a: &[Bytes]) -> Reply {
    if a.len() == 1 {
        return Reply::Array(sorted().into_iter().map(info).collect());
    }
    let sub = &a[1];
    if eq_ic(sub, "count") {
        return Reply::Int(spec::count() as i64);
    }
    if eq_ic(sub, "info") {
        if a.len() == 2 {
            return Reply::Array(sorted().into_iter().map(info).collect());
        }
        return Reply::Array(a[2..].iter().map(|n| spec::lookup(n).map_or(Reply::NilArray, info)).collect());
    }
    if eq_ic(sub, "docs") {
        let names: Vec<&'static CommandSpec> =
            if a.len() == 2 { sorted() } else { a[2..].iter().filter_map(|n| spec::lookup(n)).collect() };
        let mut out = Vec::new();
        for s in names {
            let group = s
                .acl
                .iter()
                .find(|c| !matches!(**c, "read" | "write" | "fast" | "slow" | "admin" | "dangerous" | "blocking"))
                .copied()
                .unwrap_or("server");
            out.push((
                Reply::bulk(s.name),
                Reply::Map(vec![
                    (Reply::bulk("summary"), Reply::bulk(format!("The {} command", s.name.to_uppercase()))),
                    (Reply::bulk("since"), Reply::bulk("1.0.0")),
                    (Reply::bulk("group"), Reply::bulk(group)),
                ]),
            ));
        }
        return Reply::Map(out);
    }
    if eq_ic(sub, "list") {
        return Reply::Array(sorted().into_iter().map(|s| Reply::bulk(s.name)).collect());
    }
    if eq_ic(sub, "getkeys") {
        if a.len() < 3 {
            return engine::cmd::arity_error("command|getkeys");
        }
        let args = &a[2..];
        let Some(s) = spec::lookup(&args[0]) else {
            return Reply::err("ERR Invalid command specified");
        };
        if !s.arity_ok(args.len()) {
            return Reply::err("ERR Invalid number of arguments specified for command");
        }
        let keys = s.key_indexes(args);
        if keys.is_empty() {
            return Reply::err("ERR The command has no key arguments");
        }
        return Reply::Array(keys.into_iter().map(|i| Reply::Bulk(args[i].clone())).collect());
    }
    if eq_ic(sub, "help") {
        let lines = [
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "HELP",
            "    Print this help.",
        ];
        return Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect());
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(sub)))
}
