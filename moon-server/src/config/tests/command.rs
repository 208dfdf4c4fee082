use super::{args, fixture_pairs, TempDir};
use crate::config::load::from_args;
use crate::config::{Config, ProtectedAction, SaveRule};

/// Settings whose CONFIG GET value depends on how the fixture server was started, or where Moon's default
/// differs on purpose.
const NOT_COMPARED: &[&str] = &["port", "dir", "pidfile", "logfile", "daemonize", "appendonly"];

fn pairs(kv: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

fn get1(c: &Config, name: &str) -> String {
    let got = c.get(name.as_bytes());
    assert_eq!(got.len(), 1, "{name}: {got:?}");
    got[0].1.clone()
}

/// Every setting Moon has, compared with `CONFIG GET *` of a real server.
fn assert_matches_fixture(c: &Config, fixture: &str) {
    let redis = fixture_pairs(fixture);
    let mut compared = 0;
    for (name, value) in c.get(b"*") {
        if name == "shards" {
            continue;
        }
        let Some((_, expected)) = redis.iter().find(|(n, _)| *n == name) else {
            panic!("{name} is not a redis-server 7.0 setting");
        };
        if !NOT_COMPARED.contains(&name.as_str()) {
            assert_eq!(&value, expected, "CONFIG GET {name}");
            compared += 1;
        }
    }
    assert!(compared > 90, "only {compared} settings compared");
}

#[test]
fn config_get_defaults_match_redis() {
    assert_matches_fixture(&Config::default(), include_str!("fixtures/default.txt"));
    assert_eq!(get1(&Config::default(), "appendonly"), "yes");
}

#[test]
fn config_get_after_loading_matches_redis() {
    let dir = TempDir::new();
    let conf = dir.file("custom.conf", include_str!("fixtures/custom.conf"));
    let mut words = vec![conf.to_str().unwrap().to_string()];
    words.extend(include_str!("fixtures/custom.args").split_whitespace().map(String::from));
    let (c, _) = from_args(&words, &mut std::io::empty()).unwrap();
    assert_matches_fixture(&c, include_str!("fixtures/custom.txt"));
}

#[test]
fn config_get_patterns() {
    let c = Config::default();
    let names = |p: &[&[u8]]| c.get_many(p).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    // An exact name is echoed as typed; a pattern reports each name once, aliases included.
    assert_eq!(c.get(b"PORT"), vec![("PORT".to_string(), "6379".to_string())]);
    assert_eq!(names(&[b"port", b"PORT"]), vec!["port"]);
    assert_eq!(names(&[b"PORT", b"p*rt"]), vec!["PORT"]);
    assert_eq!(names(&[b"p*rt", b"PORT"]), vec!["port"]);
    assert_eq!(names(&[b"nonexistent"]), Vec::<String>::new());
    assert_eq!(get1(&c, "hash-max-ziplist-entries"), "512");
    let mut ziplist = names(&[b"*max-ziplist*"]);
    ziplist.sort();
    assert_eq!(
        ziplist,
        [
            "hash-max-ziplist-entries",
            "hash-max-ziplist-value",
            "list-max-ziplist-size",
            "zset-max-ziplist-entries",
            "zset-max-ziplist-value"
        ]
    );
    let mut hash = names(&[b"HASH-max-*"]);
    hash.sort();
    assert_eq!(
        hash,
        ["hash-max-listpack-entries", "hash-max-listpack-value", "hash-max-ziplist-entries", "hash-max-ziplist-value"]
    );
    assert_eq!(names(&[b"DATABASE?"]), vec!["databases"]);
    assert_eq!(get1(&c, "save"), "3600 1 300 100 60 10000");
    assert_eq!(get1(&c, "bind"), "* -::*");
    assert_eq!(get1(&c, "auto-aof-rewrite-min-size"), "67108864");
    assert_eq!(get1(&c, "requirepass"), "");
    assert_eq!(get1(&c, "dir"), std::env::current_dir().unwrap().to_string_lossy());
}

#[test]
fn config_set_values_as_redis() {
    let mut c = Config::default();
    c.set(&pairs(&[
        ("maxmemory", "1GB"),
        ("save", "900 1 300 10"),
        ("bind", "127.0.0.1 -::1"),
        ("loglevel", "WARNING"),
        ("appendonly", "NO"),
        ("hz", "1000"),
        ("hash-max-ziplist-entries", "5"),
        ("requirepass", "pw"),
        ("maxclients", "5"),
    ]))
    .unwrap();
    assert_eq!(get1(&c, "maxmemory"), "1073741824");
    assert_eq!(get1(&c, "save"), "900 1 300 10");
    assert_eq!(get1(&c, "bind"), "127.0.0.1 -::1");
    assert_eq!(get1(&c, "loglevel"), "warning");
    assert_eq!(get1(&c, "appendonly"), "no");
    assert_eq!(get1(&c, "hz"), "500");
    assert_eq!(c.hash_max_listpack_entries, 5);
    assert_eq!(c.requirepass.as_deref(), Some("pw"));
    c.set(&pairs(&[("hz", "0"), ("requirepass", ""), ("save", ""), ("maxmemory", "")])).unwrap();
    assert_eq!((c.hz, c.requirepass.clone(), c.save.clone(), c.maxmemory), (1, None, vec![], 0));
    // `sdssplitlen` on single spaces: a trailing space makes an empty "changes", which strtoll reads as 0.
    c.set(&pairs(&[("save", "900 ")])).unwrap();
    assert_eq!(c.save, vec![SaveRule { seconds: 900, changes: 0 }]);
    c.set(&pairs(&[("save", "+900 1")])).unwrap();
    assert_eq!(get1(&c, "save"), "900 1");
    // An alias and its name are separate entries, so both apply, in order.
    c.set(&pairs(&[("hash-max-listpack-entries", "3"), ("hash-max-ziplist-entries", "4")])).unwrap();
    assert_eq!(c.hash_max_listpack_entries, 4);
    c.set(&pairs(&[
        ("notify-keyspace-events", "KEA"),
        ("client-output-buffer-limit", "pubsub 1mb 2k 3 replica 5gb 0 0"),
        ("oom-score-adj-values", "+1 2 3"),
    ]))
    .unwrap();
    assert_eq!(get1(&c, "notify-keyspace-events"), "AKE");
    assert_eq!(get1(&c, "client-output-buffer-limit"), "normal 0 0 0 slave 5368709120 0 0 pubsub 1048576 2000 3");
    assert_eq!(c.compat_value("oom-score-adj-values"), Some("1 2 3"));
}

/// Replies copied from redis-cli against redis-server 7.0.15.
#[test]
fn config_set_errors_as_redis() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("HASH-MAX-ZIPLIST-ENTRIES", "abc")],
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-entries') - argument couldn't be parsed into an integer"),
        (&[("databases", "5")],
            "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
        (&[("DATABASES", "5")],
            "ERR CONFIG SET failed (possibly related to argument 'DATABASES') - can't set immutable config"),
        (&[("port", "7455"), ("PORT", "7455")],
            "ERR CONFIG SET failed (possibly related to argument 'PORT') - duplicate parameter"),
        (&[("port", "7455"), ("foo", "1"), ("databases", "3")],
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (&[("databases", "3"), ("foo", "1")],
            "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
        (&[("foo", "1"), ("databases", "3")],
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        (&[("maxmemory", "5"), ("port", "x")],
            "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"),
        (&[("dir", "/tmp")],
            "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
        (&[("dbfilename", "a.rdb")],
            "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config"),
        (&[("appendfilename", "x")],
            "ERR CONFIG SET failed (possibly related to argument 'appendfilename') - can't set immutable config"),
        (&[("enable-debug-command", "yes")],
            "ERR CONFIG SET failed (possibly related to argument 'enable-debug-command') - can't set immutable config"),
        (&[("daemonize", "no")],
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"),
        (&[("rdbchecksum", "no")],
            "ERR CONFIG SET failed (possibly related to argument 'rdbchecksum') - can't set immutable config"),
        (&[("pidfile", "x")],
            "ERR CONFIG SET failed (possibly related to argument 'pidfile') - can't set immutable config"),
        (&[("logfile", "x")],
            "ERR CONFIG SET failed (possibly related to argument 'logfile') - can't set immutable config"),
        (&[("shards", "2")],
            "ERR CONFIG SET failed (possibly related to argument 'shards') - can't set immutable config"),
        (&[("save", "900  1")],
            "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
        (&[("save", "900 1 ")],
            "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
        (&[("save", " 900 1")],
            "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
        (&[("bind", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17")],
            "ERR CONFIG SET failed (possibly related to argument 'bind') - Too many bind addresses specified."),
        (&[("maxclients", "-5")],
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"),
        (&[("hash-max-listpack-entries", "-5")],
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-listpack-entries') - argument must be between 0 and 9223372036854775807 inclusive"),
        (&[("hash-max-listpack-value", "99999999999999999999")],
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-listpack-value') - argument must be between 0 and 9223372036854775807 inclusive"),
        (&[("client-query-buffer-limit", "99999999999999999999")],
            "ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and 9223372036854775807 inclusive"),
        (&[("client-output-buffer-limit", "master 1 2 3")],
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration."),
        (&[("client-output-buffer-limit", "normal 1 2 -3")],
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Error in hard, soft or soft_seconds setting in buffer limit configuration."),
        (&[("oom-score-adj-values", "-2001 0 0")],
            "ERR CONFIG SET failed (possibly related to argument 'oom-score-adj-values') - Invalid oom-score-adj-values, elements must be between -2000 and 2000."),
        (&[("proc-title-template", "{title}")],
            "ERR CONFIG SET failed (possibly related to argument 'proc-title-template') - template format is invalid or contains unknown variables"),
        (&[("tcp-backlog", "511")],
            "ERR CONFIG SET failed (possibly related to argument 'tcp-backlog') - can't set immutable config"),
        (&[], "ERR wrong number of arguments for 'config|set' command"),
    ];
    for (kv, expected) in cases {
        let mut c = Config::default();
        let before = c.clone();
        assert_eq!(c.set(&pairs(kv)).unwrap_err(), *expected, "{kv:?}");
        assert_eq!(c, before, "a failed CONFIG SET {kv:?} changed something");
    }
}

#[test]
fn config_set_is_all_or_nothing() {
    let mut c = Config::default();
    let before = c.clone();
    let err = c
        .set(&pairs(&[("maxmemory", "5"), ("timeout", "9"), ("save", "1 2"), ("appendfsync", "sometimes")]))
        .unwrap_err();
    assert_eq!(
        err,
        "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the \
         following: everysec, always, no"
    );
    assert_eq!(c, before);
}

#[test]
fn protected_configs_follow_enable_protected_configs() {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    let (mut c, _) = from_args(&args(&["--enable-protected-configs", "local"]), &mut std::io::empty()).unwrap();
    assert_eq!(c.enable_protected_configs, ProtectedAction::Local);
    assert!(c.set(&pairs(&[("dir", d)])).unwrap_err().contains("can't set protected config"));
    c.set_from(&pairs(&[("dir", d), ("dbfilename", "x.rdb")]), true).unwrap();
    assert_eq!((c.dir.as_path(), c.dbfilename.as_str()), (dir.path(), "x.rdb"));
    let err = c.set_from(&pairs(&[("dir", "/nonexistent-moon-dir")]), true).unwrap_err();
    assert_eq!(err, "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory");
    let err = c.set_from(&pairs(&[("dbfilename", "a/b")]), true).unwrap_err();
    assert_eq!(
        err,
        "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename"
    );
    assert!(ProtectedAction::Yes.allows(false) && !ProtectedAction::No.allows(true));
}

/// Every table entry pairs its kind with a matching slot, names are unique, and each value read by CONFIG
/// GET can be set back unchanged.
#[test]
fn every_directive_round_trips_its_value() {
    use crate::config::directives::{all, apply, lookup, Mode, IMMUTABLE, NULL_IF_EMPTY, PROTECTED};
    use crate::config::syntax::split_spaces;
    let mut names: Vec<&str> = all().flat_map(|d| std::iter::once(d.name).chain(d.alias)).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a name or alias appears twice");
    let (mut c, _) = from_args(&args(&["--enable-protected-configs", "yes"]), &mut std::io::empty()).unwrap();
    for d in all() {
        assert!(lookup(d.name.to_uppercase().as_bytes()).is_some());
        let before = get1(&c, d.name);
        if before.is_empty() && d.multi_arg() && d.flags & NULL_IF_EMPTY != 0 {
            // `replicaof` unset has no configuration line to read back.
            continue;
        }
        if d.flags & IMMUTABLE != 0 {
            // CONFIG SET refuses these; the file path must still accept their value.
            let value = before.as_bytes().to_vec();
            let values = if d.multi_arg() { split_spaces(&value) } else { vec![value] };
            apply(d, &mut c, &values, &mut Mode::File { save_seen: true }).unwrap();
            assert_eq!(get1(&c, d.name), before, "{}", d.name);
            continue;
        }
        assert!(d.flags & PROTECTED == 0 || c.enable_protected_configs.allows(false));
        c.set(&pairs(&[(d.name, &before)])).unwrap_or_else(|e| panic!("{}: {e}", d.name));
        assert_eq!(get1(&c, d.name), before, "{}", d.name);
    }
}
