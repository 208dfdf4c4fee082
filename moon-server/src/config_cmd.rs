//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP, on top of the `config` module.

use crate::client::Client;
use crate::server::Server;
use bytes::Bytes;
use engine::resp::Reply;
use engine::util::eq_ic;

pub fn run(server: &Server, client: &mut Client, a: &[Bytes]) -> Reply {
    let sub = &a[1];
    if eq_ic(sub, "get") {
        if a.len() < 3 {
            return engine::cmd::arity_error("config|get");
        }
        let patterns: Vec<&[u8]> = a[2..].iter().map(|p| &p[..]).collect();
        let pairs = server.config.read().get_many(&patterns);
        return Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk(k), Reply::bulk(v))).collect());
    }
    if eq_ic(sub, "set") {
        if a.len() < 4 || !a.len().is_multiple_of(2) {
            return engine::cmd::arity_error("config|set");
        }
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = a[2..].chunks(2).map(|c| (c[0].to_vec(), c[1].to_vec())).collect();
        let local = client.shared.addr.ip().is_loopback();
        let mut cfg = server.config.write();
        let before = crate::aof::rewrite::config_before(&cfg);
        return match cfg.set_from(&pairs, local) {
            Ok(()) => {
                *server.engine_cfg.write() = cfg.engine_config();
                let level = match cfg.loglevel {
                    crate::config::LogLevel::Debug => crate::log::Level::Debug,
                    crate::config::LogLevel::Verbose => crate::log::Level::Verbose,
                    crate::config::LogLevel::Notice => crate::log::Level::Notice,
                    crate::config::LogLevel::Warning => crate::log::Level::Warning,
                };
                crate::log::set_level(level);
                drop(cfg);
                crate::stats::config_changed(server);
                crate::aof::config_changed(server);
                if let Err(e) = crate::aof::rewrite::config_changed(server, before) {
                    return e;
                }
                Reply::ok()
            }
            Err(e) => Reply::err(e),
        };
    }
    if eq_ic(sub, "resetstat") {
        if a.len() != 2 {
            return engine::cmd::arity_error("config|resetstat");
        }
        server.stats.reset();
        crate::stats::reset(server);
        server.persist.reset_stats();
        return Reply::ok();
    }
    if eq_ic(sub, "rewrite") {
        if a.len() != 2 {
            return engine::cmd::arity_error("config|rewrite");
        }
        let Some(path) = &server.config_file else {
            return Reply::err("ERR The server is running without a config file");
        };
        return match server.config.read().rewrite(path) {
            Ok(()) => {
                crate::notice!("CONFIG REWRITE executed with success.");
                Reply::ok()
            }
            Err(e) => {
                crate::warning!("CONFIG REWRITE failed: {e}");
                Reply::err(format!("ERR Rewriting config file: {e}"))
            }
        };
    }
    if eq_ic(sub, "help") {
        let lines = [
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Print this help.",
        ];
        return Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect());
    }
    Reply::err(format!("ERR unknown subcommand '{}'. Try CONFIG HELP.", String::from_utf8_lossy(sub)))
}
