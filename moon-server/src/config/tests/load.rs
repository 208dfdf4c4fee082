use super::{args, TempDir};
use crate::config::load::from_args;
use crate::config::{AppendFsync, Config, ConfigError, LogLevel, SaveRule};

fn load(words: &[&str]) -> Result<(Config, Option<std::path::PathBuf>), ConfigError> {
    from_args(&args(words), &mut std::io::empty())
}

fn load_ok(words: &[&str]) -> Config {
    load(words).unwrap().0
}

fn banner() -> String {
    format!("*** FATAL CONFIG FILE ERROR (Moon {}) ***", env!("CARGO_PKG_VERSION"))
}

/// The block redis-server prints for a rejected line, with Moon's banner.
fn line_error(line: usize, text: &str, reason: &str) -> String {
    format!("{}\nReading the configuration file, at line {line}\n>>> '{text}'\n{reason}", banner())
}

fn rules(pairs: &[(u64, u64)]) -> Vec<SaveRule> {
    pairs.iter().map(|&(seconds, changes)| SaveRule { seconds, changes }).collect()
}

#[test]
fn defaults_are_redis_7_0_but_durable() {
    let c = load_ok(&[]);
    assert_eq!(c, Config::default());
    assert!(c.appendonly);
    assert_eq!(c.appendfsync, AppendFsync::Everysec);
    assert_eq!(c.save, rules(&[(3600, 1), (300, 100), (60, 10000)]));
    assert_eq!(c.bind, vec!["*", "-::*"]);
    assert_eq!(c.port, 6379);
    assert!(c.shards >= 1);
    let e = c.engine_config();
    assert_eq!((e.databases, e.list_max_listpack_size, e.proto_max_bulk_len), (16, -2, 512 << 20));
}

/// Every message checked against `redis-server --port 0 <args>` (so option lines start at line 3).
#[test]
fn command_line_errors_match_redis() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--port", "abc"], r#"port "abc""#, "argument couldn't be parsed into an integer"),
        (&["--foo", "bar"], r#"foo "bar""#, "Bad directive or wrong number of arguments"),
        (&["--port", "70000"], r#"port "70000""#, "argument must be between 0 and 65535 inclusive"),
        (&["--port", "007"], r#"port "007""#, "argument couldn't be parsed into an integer"),
        (&["--port", "+5"], r#"port "+5""#, "argument couldn't be parsed into an integer"),
        (
            &["--port", "99999999999999999999"],
            r#"port "99999999999999999999""#,
            "argument couldn't be parsed into an integer",
        ),
        (&["--port", "1", "2"], r#"port "1" "2""#, "wrong number of arguments"),
        (&["--requirepass"], "requirepass", "wrong number of arguments"),
        (&["--requirepass", "--port", "x"], r#"requirepass "--port" "x""#, "wrong number of arguments"),
        (
            &["--loglevel", "nothing"],
            r#"loglevel "nothing""#,
            "argument(s) must be one of the following: debug, verbose, notice, warning",
        ),
        (&["--appendonly", "maybe"], r#"appendonly "maybe""#, "argument must be 'yes' or 'no'"),
        (&["--maxmemory", "-1"], r#"maxmemory "-1""#, "argument must be a memory value"),
        (&["--maxmemory", "1x"], r#"maxmemory "1x""#, "argument must be a memory value"),
        (&["--save", "0", "1"], r#"save "0" "1""#, "Invalid save parameters"),
        (&["--save", "1"], r#"save "1""#, "Invalid save parameters"),
        (&["--save", "100 x"], r#"save "100 x""#, "Invalid save parameters"),
        (&["--databases", "0"], r#"databases "0""#, "argument must be between 1 and 2147483647 inclusive"),
        (&["--maxclients", "0"], r#"maxclients "0""#, "argument must be between 1 and 4294967295 inclusive"),
        (
            &["--slowlog-max-len", "-1"],
            r#"slowlog-max-len "-1""#,
            "argument must be between 0 and 9223372036854775807 inclusive",
        ),
        (
            &["--slowlog-log-slower-than", "-2"],
            r#"slowlog-log-slower-than "-2""#,
            "argument must be between -1 and 9223372036854775807 inclusive",
        ),
        (
            &["--proto-max-bulk-len", "1000"],
            r#"proto-max-bulk-len "1000""#,
            "argument must be between 1048576 and 9223372036854775807 inclusive",
        ),
        (
            &["--auto-aof-rewrite-min-size", "99999999999999999999"],
            r#"auto-aof-rewrite-min-size "99999999999999999999""#,
            "argument must be between 0 and 9223372036854775807 inclusive",
        ),
        (
            &["--list-max-listpack-size", "99999999999"],
            r#"list-max-listpack-size "99999999999""#,
            "argument must be between -2147483648 and 2147483647 inclusive",
        ),
        (&["--appendfilename", "a/b"], r#"appendfilename "a/b""#, "appendfilename can't be a path, just a filename"),
        (&["--appendfilename", ""], r#"appendfilename """#, "appendfilename can't be empty"),
        (&["--appenddirname", ""], r#"appenddirname """#, "appenddirname can't be empty"),
        (&["--appenddirname", "a/b"], r#"appenddirname "a/b""#, "appenddirname can't be a path, just a dirname"),
        (&["--dbfilename", "a\\b"], r#"dbfilename "a\\b""#, "dbfilename can't be a path, just a filename"),
        (&["--dir", "/nonexistent-moon-dir"], r#"dir "/nonexistent-moon-dir""#, "No such file or directory"),
        (&["--dir", "/etc/passwd"], r#"dir "/etc/passwd""#, "Not a directory"),
        (
            &["--enable-debug-command", "maybe"],
            r#"enable-debug-command "maybe""#,
            "argument(s) must be one of the following: no, yes, local",
        ),
        (
            &["--maxmemory-policy", "x"],
            r#"maxmemory-policy "x""#,
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, \
             volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
        ),
        (
            &["--bind", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17"],
            r#"bind "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17""#,
            "Too many bind addresses specified.",
        ),
        (
            &["--notify-keyspace-events", "bogus"],
            r#"notify-keyspace-events "bogus""#,
            "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
        ),
        (
            &["--client-output-buffer-limit", "bogus"],
            r#"client-output-buffer-limit "bogus""#,
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (&["--oom-score-adj-values", "bogus"], r#"oom-score-adj-values "bogus""#, "wrong number of arguments"),
        (
            &["--supervised", "x"],
            r#"supervised "x""#,
            "argument(s) must be one of the following: upstart, systemd, auto, no",
        ),
        (
            &["--active-expire-effort", "11"],
            r#"active-expire-effort "11""#,
            "argument must be between 1 and 10 inclusive",
        ),
        (
            &["--proc-title-template", "{foo}"],
            r#"proc-title-template "{foo}""#,
            "template format is invalid or contains unknown variables",
        ),
        (&["--port", "\"x"], r#"port "\"x""#, "argument couldn't be parsed into an integer"),
        (&["--include"], "include", "Bad directive or wrong number of arguments"),
    ];
    for (words, text, reason) in cases {
        let mut all = vec!["--port", "0"];
        all.extend_from_slice(words);
        let got = load(&all).map(|_| ()).unwrap_err().to_string();
        assert_eq!(got, line_error(3, text, reason), "{words:?}");
    }
}

#[test]
fn later_lines_keep_counting_and_deprecated_ones_are_skipped() {
    let err = |w: &[&str]| load(w).map(|_| ()).unwrap_err().to_string();
    let port_x = |line| line_error(line, r#"port "x""#, "argument couldn't be parsed into an integer");
    assert_eq!(err(&["--hz", "1000", "--port", "x"]), port_x(3));
    assert_eq!(err(&["--save", "--port", "x"]), port_x(3));
    assert_eq!(err(&["--save", "", "--port", "x"]), port_x(3));
    assert_eq!(err(&["--list-max-ziplist-value", "3", "--lua-replicate-commands", "yes", "--port", "x"]), port_x(4));
    assert_eq!(err(&["--appendfsync", "Always", "--port", "x"]), port_x(3));
}

#[test]
fn file_errors_quote_the_trimmed_line() {
    let dir = TempDir::new();
    let cases = [
        ("port 0\nsave \"1 2\" 3\n", 2, r#"save "1 2" 3"#, "Invalid save parameters"),
        ("port 0\nsave \"1 2\n", 2, r#"save "1 2"#, "Unbalanced quotes in configuration line"),
        ("port 0\n  PORT   \"x\"y  \n", 2, r#"PORT   "x"y"#, "Unbalanced quotes in configuration line"),
        ("# c\n\n\tport 6379 # trailing\n", 3, "port 6379 # trailing", "wrong number of arguments"),
        ("bogus-line here\n", 1, "bogus-line here", "Bad directive or wrong number of arguments"),
    ];
    for (content, line, text, reason) in cases {
        let file = dir.file("bad.conf", content);
        let got = load(&[file.to_str().unwrap()]).map(|_| ()).unwrap_err();
        assert_eq!(got.to_string(), line_error(line, text, reason), "{content:?}");
    }
}

#[test]
fn missing_files_and_log_file() {
    let err = load(&["/nonexistent-moon.conf"]).map(|_| ()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Fatal error, can't open config file '/nonexistent-moon.conf': No such file or directory"
    );
    let err = load(&["--include", "/nonexistent-moon.conf"]).map(|_| ()).unwrap_err();
    assert!(matches!(err, ConfigError::Open { .. }));
    let err = load(&["--logfile", "/nonexistent-moon-dir/x.log"]).map(|_| ()).unwrap_err();
    assert_eq!(err.to_string(), format!("{}\nCan't open the log file: No such file or directory", banner()));
    assert_eq!(err.reason(), "Can't open the log file: No such file or directory");
}

#[test]
fn file_grammar_overrides_and_includes() {
    let dir = TempDir::new();
    let inc = dir.file("inc.conf", "# included\ntimeout 30\nmaxmemory 2mb\n");
    dir.file("conf.d-a.conf", "tcp-keepalive 11\n");
    dir.file("conf.d-b.conf", "tcp-keepalive 12\n");
    let main = dir.file(
        "redis.conf",
        &format!(
            "# comment\n\
             \n\
             PORT 7000\n\
             \tport 7001  \r\n\
             maxmemory 1gb\n\
             include {}\n\
             include {}/conf.d-*.conf\n\
             include {}/nothing-*.conf\n\
             save 900 1\n\
             save \"300 10\"\n\
             requirepass 'it\\'s \"x\"'\n\
             bind 127.0.0.1 \"-::1\"\n\
             hash-max-ziplist-entries 100\n\
             appendfsync ALWAYS\n\
             loglevel Warning\n\
             hz 0\n",
            inc.display(),
            dir.path().display(),
            dir.path().display()
        ),
    );
    let (c, file) = load(&[main.to_str().unwrap(), "--maxmemory", "3mb", "--save", "60", "5"]).unwrap();
    assert_eq!(file.as_deref(), Some(main.as_path()));
    assert_eq!(c.port, 7001);
    assert_eq!(c.timeout, 30);
    assert_eq!(c.tcp_keepalive, 12);
    assert_eq!(c.maxmemory, 3 << 20);
    assert_eq!(c.save, rules(&[(900, 1), (300, 10), (60, 5)]));
    assert_eq!(c.requirepass.as_deref(), Some("it's \"x\""));
    assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);
    assert_eq!(c.hash_max_listpack_entries, 100);
    assert_eq!(c.appendfsync, AppendFsync::Always);
    assert_eq!(c.loglevel, LogLevel::Warning);
    assert_eq!(c.hz, 1);

    // An error inside an included file is numbered within that file.
    let bad = dir.file("bad-inc.conf", "# one\nmaxmemory x\n");
    let main = dir.file("main2.conf", &format!("port 0\n\ninclude {}\nport 1\n", bad.display()));
    let err = load(&[main.to_str().unwrap(), "--port", "5"]).map(|_| ()).unwrap_err();
    assert_eq!(err.to_string(), line_error(2, "maxmemory x", "argument must be a memory value"));

    // Command-line lines come after the file's, with one extra line break.
    let main = dir.file("main3.conf", "port 1\nport 2\n");
    let err = load(&[main.to_str().unwrap(), "--hz", "x"]).map(|_| ()).unwrap_err();
    assert_eq!(err.to_string(), line_error(4, r#"hz "x""#, "argument couldn't be parsed into an integer"));
}

#[test]
fn save_lines_accumulate_and_empty_save_clears() {
    let save = |w: &[&str]| load_ok(w).save;
    assert_eq!(save(&["--save", "900", "1", "--save", "300", "10"]), rules(&[(900, 1), (300, 10)]));
    assert_eq!(save(&["--save", "900 1 300 10"]), rules(&[(900, 1), (300, 10)]));
    assert_eq!(save(&["--save", ""]), rules(&[]));
    assert_eq!(save(&["--save"]), rules(&[]));
    assert_eq!(save(&["--save", "--port", "1"]), rules(&[]));
    assert_eq!(save(&["--save", "900", "1", "--save", "", "--save", "60", "5"]), rules(&[(60, 5)]));
    assert_eq!(save(&["--save", "", "--save", "60", "5"]), rules(&[(60, 5)]));
}

#[test]
fn command_line_values() {
    let c = load_ok(&["--bind", "127.0.0.1 ::1", "--requirepass", "a b", "--maxmemory", ""]);
    assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
    assert_eq!(c.requirepass.as_deref(), Some("a b"));
    assert_eq!(c.maxmemory, 0);
    // One argument holding name and value.
    assert_eq!(load_ok(&["--port 6380", "--timeout", "3"]).port, 6380);
    assert!(load_ok(&["--bind", ""]).bind.is_empty());
    assert_eq!(load_ok(&["--hz", "1000"]).hz, 500);
    assert!(!load_ok(&["--daemonize", "no", "--appendonly", "no"]).appendonly);
    assert_eq!(load_ok(&["--shards", "3"]).shards, 3);
    assert_eq!(load_ok(&["--maxmemory", "20000000000gb"]).maxmemory, 3028092406290448384);
}

#[test]
fn stdin_is_read_when_dash_is_first_or_last() {
    let words = args(&["-", "--port", "5"]);
    let (c, file) = from_args(&words, &mut &b"port 7\ntimeout 9\n"[..]).unwrap();
    assert_eq!((c.port, c.timeout, file), (5, 9, None));
    let words = args(&["--timeout", "4", "-"]);
    let (c, _) = from_args(&words, &mut &b"port 7\ntimeout 9\n"[..]).unwrap();
    assert_eq!((c.port, c.timeout), (7, 4));
}

#[test]
fn dir_resolves_like_chdir() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let base = dir.path().to_str().unwrap();
    let c = load_ok(&["--dir", base, "--dir", "sub"]);
    assert_eq!(c.dir, dir.path().join("sub"));
    let c = load_ok(&["--dir", &format!("{base}/sub/..")]);
    assert_eq!(c.dir, dir.path());
    assert_eq!(c.get(b"dir"), vec![("dir".to_string(), base.to_string())]);
}
