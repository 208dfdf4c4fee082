//! The settings Moon only stores (`compat_table`): names, defaults, value formats, mutability, validation
//! and CONFIG REWRITE lines. Every expected text was copied from Debian's redis-server 7.0.15 (CONFIG SET and
//! CONFIG GET through redis-cli, start-up errors from `redis-server --port 0 <args>`).

use super::{args, fixture_pairs};
use crate::config::load::from_args;
use crate::config::rewrite::rewritten;
use crate::config::Config;
use std::collections::BTreeSet;

fn pairs(kv: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

fn get1(c: &Config, name: &str) -> String {
    let got = c.get(name.as_bytes());
    assert_eq!(got.len(), 1, "{name}: {got:?}");
    got[0].1.clone()
}

/// CONFIG SET of one value then CONFIG GET of it.
fn set_get(c: &mut Config, name: &str, value: &str) -> Result<String, String> {
    c.set(&pairs(&[(name, value)]))?;
    Ok(get1(c, name))
}

fn load(words: &[&str]) -> Result<Config, String> {
    from_args(&args(words), &mut std::io::empty()).map(|(c, _)| c).map_err(|e| e.reason().to_string())
}

#[test]
fn config_get_star_lists_exactly_redis_names() {
    let redis: BTreeSet<String> =
        fixture_pairs(include_str!("fixtures/default.txt")).into_iter().map(|(n, _)| n).collect();
    let moon: BTreeSet<String> =
        Config::default().get(b"*").into_iter().map(|(n, _)| n).filter(|n| n != "shards").collect();
    assert_eq!(redis.len(), 192);
    assert_eq!(moon, redis);
}

#[test]
fn hidden_settings_answer_only_by_name() {
    let mut c = Config::default();
    for (name, default) in [
        ("key-load-delay", "0"),
        ("rdb-key-save-delay", "0"),
        ("loading-process-events-interval-bytes", "2097152"),
        ("lua-enable-deprecated-api", "no"),
        ("use-exit-on-panic", "no"),
        ("watchdog-period", "0"),
    ] {
        assert_eq!(get1(&c, name), default);
        assert!(c.get(format!("{name}*").as_bytes()).is_empty(), "{name}");
    }
    assert_eq!(set_get(&mut c, "key-load-delay", "-2147483648").unwrap(), "-2147483648");
    assert_eq!(set_get(&mut c, "watchdog-period", "250").unwrap(), "250");
    // At least two cron ticks: 2 * (1000 / hz) ms.
    assert_eq!(set_get(&mut c, "watchdog-period", "1").unwrap(), "200");
    assert_eq!(set_get(&mut c, "watchdog-period", "0").unwrap(), "0");
    c.set(&pairs(&[("hz", "3")])).unwrap();
    assert_eq!(set_get(&mut c, "watchdog-period", "1").unwrap(), "666");
}

#[test]
fn compat_set_values_as_redis() {
    let mut c = Config::default();
    let c = &mut c;
    fn ok(c: &mut Config, name: &str, value: &str, expected: &str) {
        assert_eq!(set_get(c, name, value).as_deref(), Ok(expected), "{name} {value:?}");
    }
    ok(c, "activedefrag", "NO", "no");
    ok(c, "maxmemory-clients", "10%", "10%");
    ok(c, "maxmemory-clients", "0%", "0");
    ok(c, "maxmemory-clients", "100%", "100%");
    ok(c, "maxmemory-clients", "5kb", "5120");
    // A memory value past LLONG_MAX wraps to a negative number, which Redis reads as a percentage.
    ok(c, "maxmemory-clients", "99999999999999999999", "1%");
    ok(c, "maxmemory-clients", "9223372036854775807", "9223372036854775807");
    ok(c, "cluster-link-sendbuf-limit", "99999999999999999999", "18446744073709551615");
    ok(c, "cluster-link-sendbuf-limit", "1gb", "1073741824");
    ok(c, "latency-tracking-info-percentiles", "50.5 99.123456789", "50.5 99.123457");
    ok(c, "latency-tracking-info-percentiles", "1e1", "10");
    ok(c, "latency-tracking-info-percentiles", "0x10", "16");
    ok(c, "latency-tracking-info-percentiles", "-0", "-0");
    ok(c, "latency-tracking-info-percentiles", "99.99999999", "100");
    ok(c, "latency-tracking-info-percentiles", "1e-7", "0");
    ok(c, "latency-tracking-info-percentiles", "0.1 0.01 0.001 0.0001", "0.1 0.01 0.001 0.0001");
    ok(c, "latency-tracking-info-percentiles", "", "");
    ok(c, "shutdown-on-sigint", "now save", "save now");
    ok(c, "shutdown-on-sigint", "default now", "now");
    ok(c, "shutdown-on-sigint", "force now nosave", "nosave now force");
    ok(c, "shutdown-on-sigint", "SAVE", "save");
    ok(c, "shutdown-on-sigterm", "default", "default");
    ok(c, "cluster-announce-hostname", "ABC", "ABC");
    ok(c, "cluster-announce-hostname", "", "");
    ok(c, "bind-source-addr", "-1", "-1");
    ok(c, "masterauth", "sec", "sec");
    ok(c, "acl-pubsub-default", "ALLCHANNELS", "allchannels");
    ok(c, "tls-auth-clients", "optional", "optional");
    ok(c, "tls-ciphers", "a b", "a b");
    ok(c, "tls-port", "0", "0");
    // The apply step raises the backlog to 16kb, only when the value changes.
    ok(c, "repl-backlog-size", "1", "16384");
    ok(c, "repl-backlog-size", "16383", "16384");
    ok(c, "repl-backlog-size", "1mb", "1048576");
    // An alias and its name are one setting.
    ok(c, "slave-announce-port", "7000", "7000");
    assert_eq!(get1(c, "replica-announce-port"), "7000");
    ok(c, "min-slaves-to-write", "3", "3");
    assert_eq!(get1(c, "min-replicas-to-write"), "3");
    ok(c, "cluster-slave-validity-factor", "0", "0");
    assert_eq!(get1(c, "cluster-replica-validity-factor"), "0");
    // Unchanged, so no apply: a backlog loaded below 16kb stays.
    let mut c = load(&["--repl-backlog-size", "1"]).unwrap();
    assert_eq!(set_get(&mut c, "repl-backlog-size", "1").unwrap(), "1");
}

#[test]
fn compat_set_errors_as_redis() {
    let fail = |name: &str, why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
    const TLS: &str = "Unable to update TLS configuration. Check server logs.";
    // (CONFIG SET arguments, the argument named in the error, the reason)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[("activedefrag", "yes")],
            "activedefrag",
            "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified \
             Jemalloc like the one shipped by default with the Redis source distribution",
        ),
        (&[("ACTIVEDEFRAG", "maybe")], "activedefrag", "argument must be 'yes' or 'no'"),
        (
            &[("active-defrag-cycle-max", "-1")],
            "active-defrag-cycle-max",
            "argument must be between 1 and 99 inclusive",
        ),
        (
            &[("active-defrag-cycle-max", "99999999999999999999")],
            "active-defrag-cycle-max",
            "argument couldn't be parsed into an integer",
        ),
        (
            &[("active-defrag-ignore-bytes", "99999999999999999999")],
            "active-defrag-ignore-bytes",
            "argument must be between 1 and 9223372036854775807 inclusive",
        ),
        (&[("active-defrag-ignore-bytes", "-1")], "active-defrag-ignore-bytes", "argument must be a memory value"),
        (
            &[("active-defrag-threshold-upper", "1001")],
            "active-defrag-threshold-upper",
            "argument must be between 0 and 1000 inclusive",
        ),
        (
            &[("acl-pubsub-default", "x")],
            "acl-pubsub-default",
            "argument(s) must be one of the following: allchannels, resetchannels",
        ),
        (
            &[("cluster-preferred-endpoint-type", "x")],
            "cluster-preferred-endpoint-type",
            "argument(s) must be one of the following: ip, hostname, unknown-endpoint",
        ),
        (
            &[("propagation-error-behavior", "x")],
            "propagation-error-behavior",
            "argument(s) must be one of the following: ignore, panic, panic-on-replicas",
        ),
        (
            &[("sanitize-dump-payload", "x")],
            "sanitize-dump-payload",
            "argument(s) must be one of the following: no, yes, clients",
        ),
        (
            &[("tls-auth-clients", "x")],
            "tls-auth-clients",
            "argument(s) must be one of the following: no, yes, optional",
        ),
        (&[("cluster-announce-port", "-1")], "cluster-announce-port", "argument must be between 0 and 65535 inclusive"),
        (&[("SLAVE-ANNOUNCE-PORT", "x")], "slave-announce-port", "argument couldn't be parsed into an integer"),
        (
            &[("repl-backlog-size", "0")],
            "repl-backlog-size",
            "argument must be between 1 and 9223372036854775807 inclusive",
        ),
        (&[("repl-timeout", "0")], "repl-timeout", "argument must be between 1 and 2147483647 inclusive"),
        (
            &[("loading-process-events-interval-bytes", "-1")],
            "loading-process-events-interval-bytes",
            "argument must be between 1024 and 2147483647 inclusive",
        ),
        (
            &[("key-load-delay", "2147483648")],
            "key-load-delay",
            "argument must be between -2147483648 and 2147483647 inclusive",
        ),
        (&[("cluster-link-sendbuf-limit", "-1")], "cluster-link-sendbuf-limit", "argument must be a memory value"),
        (&[("maxmemory-clients", "101%")], "maxmemory-clients", "percentage argument must be less or equal to 100"),
        (
            &[("maxmemory-clients", "9223372036854775808")],
            "maxmemory-clients",
            "percentage argument must be less or equal to 100",
        ),
        (&[("maxmemory-clients", "-5%")], "maxmemory-clients", "argument must be a memory or percent value"),
        (&[("maxmemory-clients", "+5%")], "maxmemory-clients", "argument must be a memory or percent value"),
        (&[("maxmemory-clients", "5.5%")], "maxmemory-clients", "argument must be a memory or percent value"),
        (&[("maxmemory-clients", "%")], "maxmemory-clients", "argument must be a memory or percent value"),
        (&[("maxmemory-clients", "x")], "maxmemory-clients", "argument must be a memory or percent value"),
        (
            &[("latency-tracking-info-percentiles", "x")],
            "latency-tracking-info-percentiles",
            "Invalid latency-tracking-info-percentiles parameters",
        ),
        (
            &[("latency-tracking-info-percentiles", "50  99")],
            "latency-tracking-info-percentiles",
            "Invalid latency-tracking-info-percentiles parameters",
        ),
        (
            &[("latency-tracking-info-percentiles", "nan")],
            "latency-tracking-info-percentiles",
            "Invalid latency-tracking-info-percentiles parameters",
        ),
        (
            &[("latency-tracking-info-percentiles", "1e400")],
            "latency-tracking-info-percentiles",
            "Invalid latency-tracking-info-percentiles parameters",
        ),
        (
            &[("latency-tracking-info-percentiles", "1e-400")],
            "latency-tracking-info-percentiles",
            "Invalid latency-tracking-info-percentiles parameters",
        ),
        (
            &[("latency-tracking-info-percentiles", "100.0000001")],
            "latency-tracking-info-percentiles",
            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
        ),
        (
            &[("latency-tracking-info-percentiles", "inf")],
            "latency-tracking-info-percentiles",
            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
        ),
        (
            &[("latency-tracking-info-percentiles", "-1")],
            "latency-tracking-info-percentiles",
            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
        ),
        (
            &[("shutdown-on-sigint", "save nosave")],
            "shutdown-on-sigint",
            "shutdown options SAVE and NOSAVE can't be used simultaneously",
        ),
        (
            &[("shutdown-on-sigterm", "")],
            "shutdown-on-sigterm",
            "argument(s) must be one of the following: default, save, nosave, now, force",
        ),
        (
            &[("shutdown-on-sigint", "save  now")],
            "shutdown-on-sigint",
            "argument(s) must be one of the following: default, save, nosave, now, force",
        ),
        (
            &[("cluster-announce-hostname", "a_b.c-d")],
            "cluster-announce-hostname",
            "Hostnames may only contain alphanumeric characters, hyphens or dots",
        ),
        (
            &[("cluster-announce-hostname", "a b")],
            "cluster-announce-hostname",
            "Hostnames may only contain alphanumeric characters, hyphens or dots",
        ),
        // TLS cannot be turned on: the first TLS argument that changed is named.
        (&[("TLS-PORT", "5")], "tls-port", TLS),
        (&[("tls-replication", "yes")], "tls-replication", TLS),
        (&[("maxmemory", "1"), ("tls-cluster", "yes"), ("tls-ciphers", "x")], "tls-cluster", TLS),
        (&[("tls-ciphers", "x"), ("tls-replication", "yes")], "tls-ciphers", TLS),
        (&[("tls-port", "5"), ("tls-replication", "yes")], "tls-port", TLS),
        // Values are all checked before the TLS step.
        (&[("tls-replication", "yes"), ("maxmemory", "x")], "maxmemory", "argument must be a memory value"),
        (
            &[("tls-cluster", "yes"), ("activedefrag", "yes")],
            "activedefrag",
            "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified \
             Jemalloc like the one shipped by default with the Redis source distribution",
        ),
    ];
    for (kv, name, why) in cases {
        let mut c = Config::default();
        let before = c.clone();
        assert_eq!(c.set(&pairs(kv)).unwrap_err(), fail(name, why), "{kv:?}");
        assert_eq!(c, before, "a failed CONFIG SET {kv:?} changed something");
    }
    let immutable = [
        "aclfile",
        "aof_rewrite_cpulist",
        "bgsave_cpulist",
        "bio_cpulist",
        "server_cpulist",
        "cluster-config-file",
        "cluster-enabled",
        "cluster-port",
        "enable-module-command",
        "io-threads",
        "io-threads-do-reads",
        "replicaof",
        "slaveof",
        "socket-mark-id",
        "unixsocket",
        "unixsocketperm",
        "lua-enable-deprecated-api",
    ];
    for name in immutable {
        let mut c = Config::default();
        let value = get1(&c, name);
        assert_eq!(c.set(&pairs(&[(name, &value)])).unwrap_err(), fail(name, "can't set immutable config"));
    }
}

#[test]
fn compat_load_values_as_redis() {
    let c = load(&[
        "--unixsocketperm",
        "0700",
        "--replicaof",
        "127.0.0.1 +1",
        "--io-threads",
        "3",
        "--socket-mark-id",
        "7",
        "--aclfile",
        "",
        "--server_cpulist",
        "0-1",
        "--enable-module-command",
        "local",
        "--cluster-config-file",
        "a b",
        "--maxmemory-clients",
        "99999999999999999999",
        "--latency-tracking-info-percentiles",
        "",
        "--shutdown-on-sigterm",
        "now force",
    ])
    .unwrap();
    for (name, value) in [
        ("unixsocketperm", "700"),
        ("replicaof", "127.0.0.1 1"),
        ("slaveof", "127.0.0.1 1"),
        ("io-threads", "3"),
        ("socket-mark-id", "7"),
        ("aclfile", ""),
        ("server_cpulist", "0-1"),
        ("enable-module-command", "local"),
        ("cluster-config-file", "a b"),
        ("maxmemory-clients", "1%"),
        ("latency-tracking-info-percentiles", ""),
        ("shutdown-on-sigterm", "now force"),
    ] {
        assert_eq!(get1(&c, name), value, "{name}");
    }
    for (words, name, value) in [
        (&["--replicaof", "x 0"][..], "replicaof", "x 0"),
        (&["--replicaof", "x ''"], "replicaof", "x 0"),
        (&["--replicaof", "x ' 5'"], "replicaof", "x 5"),
        (&["--replicaof", "NO ONE"], "replicaof", ""),
        (&["--unixsocketperm", ""], "unixsocketperm", "0"),
        (&["--unixsocketperm", " 7"], "unixsocketperm", "7"),
        (&["--unixsocketperm", "+7"], "unixsocketperm", "7"),
        (&["--unixsocketperm", "-0"], "unixsocketperm", "0"),
        (&["--latency-tracking-info-percentiles"], "latency-tracking-info-percentiles", ""),
        (&["--repl-backlog-size", "1"], "repl-backlog-size", "1"),
    ] {
        assert_eq!(get1(&load(words).unwrap(), name), value, "{words:?}");
    }
}

#[test]
fn compat_load_errors_as_redis() {
    for (words, reason) in [
        (&["--cluster-port", "65536"][..], "argument must be between 0 and 65535 inclusive"),
        (&["--io-threads", "0"], "argument must be between 1 and 128 inclusive"),
        (&["--io-threads", "+5"], "argument couldn't be parsed into an integer"),
        (&["--io-threads-do-reads", "x"], "argument must be 'yes' or 'no'"),
        (&["--cluster-enabled", "x"], "argument must be 'yes' or 'no'"),
        (&["--enable-module-command", "x"], "argument(s) must be one of the following: no, yes, local"),
        (&["--socket-mark-id", "4294967296"], "argument must be between 0 and 4294967295 inclusive"),
        (&["--socket-mark-id", "-1"], "argument must be between 0 and 4294967295 inclusive"),
        (&["--unixsocketperm", "8"], "argument couldn't be parsed as an octal number"),
        (&["--unixsocketperm", "0x7"], "argument couldn't be parsed as an octal number"),
        (&["--unixsocketperm", "7 "], "argument couldn't be parsed as an octal number"),
        (&["--unixsocketperm", "1000"], "argument must be between 0 and 777 inclusive"),
        (&["--unixsocketperm", "-1"], "argument must be between 0 and 777 inclusive"),
        (&["--replicaof", "x"], "wrong number of arguments"),
        (&["--slaveof", "a b c"], "wrong number of arguments"),
        (&["--replicaof", "x y"], "Invalid master port"),
        (&["--replicaof", "x 70000"], "Invalid master port"),
        (&["--replicaof", "no x"], "Invalid master port"),
        (
            &["--activedefrag", "yes"],
            "Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified \
             Jemalloc like the one shipped by default with the Redis source distribution",
        ),
        (&["--latency-tracking-info-percentiles", "1e400"], "Invalid latency-tracking-info-percentiles parameters"),
        (&["--shutdown-on-sigint", "save nosave"], "shutdown options SAVE and NOSAVE can't be used simultaneously"),
        (&["--maxmemory-clients", "101%"], "percentage argument must be less or equal to 100"),
        (
            &["--cluster-announce-hostname", "a_b"],
            "Hostnames may only contain alphanumeric characters, hyphens or dots",
        ),
    ] {
        assert_eq!(load(words).unwrap_err(), reason, "{words:?}");
    }
    // Starting with TLS or cluster options is accepted, as Redis's configuration reader does.
    for words in [&["--tls-port", "1234"][..], &["--tls-replication", "yes"], &["--cluster-enabled", "yes"]] {
        load(words).unwrap();
    }
}

/// CONFIG REWRITE of redis-server 7.0.15 on a file holding these lines: strings Redis keeps as NULL when
/// empty lose their line, the others are written back with "".
#[test]
fn compat_rewrite_as_redis() {
    let mut old = String::new();
    for name in [
        "aclfile",
        "aof_rewrite_cpulist",
        "bgsave_cpulist",
        "bio_cpulist",
        "server_cpulist",
        "bind-source-addr",
        "cluster-announce-hostname",
        "cluster-announce-ip",
        "cluster-config-file",
        "ignore-warnings",
        "masterauth",
        "masteruser",
        "replica-announce-ip",
        "tls-ca-cert-dir",
        "tls-ca-cert-file",
        "tls-cert-file",
        "tls-ciphers",
        "tls-ciphersuites",
        "tls-client-cert-file",
        "tls-client-key-file",
        "tls-client-key-file-pass",
        "tls-dh-params-file",
        "tls-key-file",
        "tls-key-file-pass",
        "tls-protocols",
        "unixsocket",
    ] {
        old.push_str(&format!("{name} \"\"\n"));
    }
    old.push_str("replicaof no one\nunixsocketperm 700\n");
    let dir = super::TempDir::new();
    let conf = dir.file("r.conf", &old);
    let mut c = load(&[conf.to_str().unwrap()]).unwrap();
    c.set(&pairs(&[
        ("maxmemory-clients", "10%"),
        ("cluster-link-sendbuf-limit", "2mb"),
        ("repl-backlog-size", "3mb"),
        ("active-defrag-ignore-bytes", "1gb"),
        ("latency-tracking-info-percentiles", "1.5 99.123456789"),
        ("shutdown-on-sigint", "now save"),
        ("shutdown-on-sigterm", "force"),
        ("key-load-delay", "5"),
        ("tls-ciphers", "a b"),
        ("masterauth", "x\"y"),
    ]))
    .unwrap();
    let out = rewritten(&c, old.as_bytes());
    let (head, tail) = out.split_once("# Generated by CONFIG REWRITE\n").unwrap();
    assert_eq!(
        head,
        "aclfile \"\"\n\ncluster-config-file \"\"\nignore-warnings \"\"\nmasterauth \"x\\\"y\"\n\n\
         tls-ciphers \"a b\"\n\nunixsocketperm 700\n\n"
    );
    let mut tail: Vec<&str> = tail.lines().filter(|l| !l.starts_with("dir ")).collect();
    tail.sort_unstable();
    assert_eq!(
        tail,
        [
            "active-defrag-ignore-bytes 1gb",
            "cluster-link-sendbuf-limit 2mb",
            "key-load-delay 5",
            "latency-tracking-info-percentiles 1.5 99.123457",
            "maxmemory-clients 10%",
            "repl-backlog-size 3mb",
            "shutdown-on-sigint save now",
            "shutdown-on-sigterm force",
        ]
    );

    let conf = dir.file("r2.conf", "replicaof 1.2.3.4 6379\nmaxmemory-clients 1mb\nmasterauth \"\"\n");
    let mut c = load(&[conf.to_str().unwrap()]).unwrap();
    c.set(&pairs(&[("latency-tracking-info-percentiles", "")])).unwrap();
    let out = rewritten(&c, b"replicaof 1.2.3.4 6379\nmaxmemory-clients 1mb\nmasterauth \"\"\n");
    assert!(
        out.starts_with("replicaof 1.2.3.4 6379\nmaxmemory-clients 1mb\n\n# Generated by CONFIG REWRITE\n"),
        "{out}"
    );
    assert!(out.contains("\nlatency-tracking-info-percentiles \"\"\n"), "{out}");
}
