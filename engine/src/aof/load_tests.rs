//! Tests of the loader: base (RESP or RDB) then incr files, DB 0 per file, transactions applied whole,
//! torn tails under each policy, fatal errors with file and offset, and a proptest of cut files.

use super::*;
use crate::aof::test_support::{cmd, cmds, TempDir};
use crate::cmd::testkit::Kit;
use crate::digest::{dataset_digest, to_hex};
use proptest::prelude::*;

fn digest(ks: &Keyspace) -> String {
    to_hex(&dataset_digest(ks))
}

/// Writes `parts` as files `f0`, `f1` ... (the first is the base) and returns them in load order.
fn write_files(dir: &TempDir, parts: &[&[u8]]) -> Vec<LoadFile> {
    parts
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let name = format!("appendonly.aof.{}.{}.aof", i + 1, if i == 0 { "base" } else { "incr" });
            let path = dir.path().join(&name);
            std::fs::write(&path, bytes).unwrap();
            LoadFile { path, name, kind: if i == 0 { AofKind::Base } else { AofKind::Incr } }
        })
        .collect()
}

/// Counts progress calls, to check they come with growing offsets.
struct Progress<'a> {
    inner: KeyspaceReplayer<'a>,
    offsets: Vec<u64>,
}

impl Replayer for Progress<'_> {
    fn start_file(&mut self, file: &LoadFile) {
        self.inner.start_file(file)
    }
    fn rdb_target(&mut self) -> &mut dyn LoadTarget {
        self.inner.rdb_target()
    }
    fn command(&mut self, argv: &[Bytes]) -> Result<(), ReplayError> {
        if argv[0].eq_ignore_ascii_case(b"DEL") {
            return Err(ReplayError("refused".into()));
        }
        self.inner.command(argv)
    }
    fn transaction(&mut self, commands: &[Vec<Bytes>]) -> Result<(), ReplayError> {
        self.inner.transaction(commands)
    }
    fn progress(&mut self, _file: &LoadFile, offset: u64) {
        self.offsets.push(offset);
    }
}

#[test]
fn progress_and_replayer_errors() {
    let dir = TempDir::new("load-progress");
    let bytes: Vec<u8> = (0..3000).flat_map(|i| cmd(&["SET", &format!("k{i}"), "v"])).collect();
    let files = write_files(&dir, &[&bytes]);
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let mut p = Progress { inner: KeyspaceReplayer::new(&mut ks, &cfg), offsets: Vec::new() };
    load_files(&files, &LoadOptions::new(RecoveryPolicy::Strict, cfg.clone()), &mut p).unwrap();
    assert_eq!(p.offsets.len(), 2);
    assert!(p.offsets[0] > 0 && p.offsets[0] < p.offsets[1] && p.offsets[1] < bytes.len() as u64);
    assert_eq!(ks.dbs[0].len(), 3000);

    // An error from the replayer stops the load, with the file and the command's offset.
    let dir = TempDir::new("load-refuse");
    let set = cmd(&["SET", "a", "1"]);
    let files = write_files(&dir, &[&[set.clone(), cmd(&["DEL", "a"])].concat()]);
    let mut ks = Keyspace::new(cfg.databases);
    let mut p = Progress { inner: KeyspaceReplayer::new(&mut ks, &cfg), offsets: Vec::new() };
    let e = load_files(&files, &LoadOptions::new(RecoveryPolicy::TruncateTornTail, cfg.clone()), &mut p).unwrap_err();
    assert!(matches!(&e, LoadError::Replay { offset, .. } if *offset == set.len() as u64), "{e}");
    assert!(e.to_string().contains("appendonly.aof.1.base.aof") && e.to_string().contains("refused"), "{e}");
}

fn load(files: &[LoadFile], policy: RecoveryPolicy) -> (Keyspace, Result<LoadSummary, LoadError>) {
    let cfg = EngineConfig::default();
    let mut ks = Keyspace::new(cfg.databases);
    let mut rp = KeyspaceReplayer::new(&mut ks, &cfg);
    let r = load_files(files, &LoadOptions::new(policy, cfg.clone()), &mut rp);
    (ks, r)
}

fn kit(lines: &[&str]) -> Kit {
    let mut k = Kit::new();
    for l in lines {
        assert!(!k.run(l).is_error(), "{l}");
    }
    k
}

#[test]
fn resp_base_then_incrs_each_starting_in_db0() {
    let dir = TempDir::new("load-db0");
    let base = cmds(&[&["SELECT", "3"], &["SET", "a", "1"], &["SELECT", "0"], &["RPUSH", "l", "x", "y"]]);
    let incr1 = [
        b"#TS:1700000000\r\n".to_vec(),
        cmds(&[&["SELECT", "5"], &["SADD", "s", "m"], &["MULTI"], &["INCR", "n"], &["INCR", "n"], &["EXEC"]]),
    ]
    .concat();
    // No SELECT: a fresh replay client is in DB 0, whatever the previous file selected.
    let incr2 = cmds(&[&["HSET", "h", "f", "v"], &["ZADD", "z", "1.5", "m"]]);
    let files = write_files(&dir, &[&base, &incr1, &incr2]);
    let (ks, r) = load(&files, RecoveryPolicy::Strict);
    let summary = r.unwrap();
    let want = kit(&[
        "SELECT 3",
        "SET a 1",
        "SELECT 0",
        "RPUSH l x y",
        "SELECT 5",
        "SADD s m",
        "INCR n",
        "INCR n",
        "SELECT 0",
        "HSET h f v",
        "ZADD z 1.5 m",
    ]);
    assert_eq!(digest(&ks), digest(&want.ks));
    assert_eq!(summary.files.len(), 3);
    assert_eq!(summary.files[1].commands, 4);
    assert_eq!(summary.files[1].transactions, 1);
    assert_eq!(summary.files[1].annotations, 1);
    assert_eq!(summary.files[1].bytes, incr1.len() as u64);
    assert!(summary.torn().is_none());
    assert_eq!(summary.total_bytes(), (base.len() + incr1.len() + incr2.len()) as u64);
}

#[test]
fn rdb_base_is_decoded_and_keeps_expired_keys() {
    use crate::types::{StrValue, Value};
    let dir = TempDir::new("load-rdb");
    let mut k = kit(&["SET a 1", "RPUSH l x y z", "HSET h f v", "SADD s 1 2", "ZADD z 2 m", "SELECT 2", "SET b 2"]);
    k.ks.dbs[0].insert(b"expired", Value::Str(StrValue::from_bytes(b"v")), Some(1));
    let base = crate::rdb::save_keyspace(&k.ks, Vec::new(), &crate::rdb::WriteOptions::default(), true).unwrap();
    let incr = cmds(&[&["SELECT", "0"], &["SET", "after", "1"]]);
    // A legacy file: the same RDB with a RESP tail.
    let legacy = [base.clone(), incr.clone()].concat();
    k.db = 0;
    k.run("SET after 1");

    let files = write_files(&dir, &[&base, &incr]);
    let (ks, r) = load(&files, RecoveryPolicy::Strict);
    let summary = r.unwrap();
    assert_eq!(digest(&ks), digest(&k.ks));
    let (report, end) = summary.files[0].rdb.as_ref().expect("rdb base");
    assert_eq!((report.keys_loaded, *end), (7, base.len() as u64));

    let dir2 = TempDir::new("load-legacy");
    let one = write_files(&dir2, &[&legacy]);
    let (ks2, r) = load(&one, RecoveryPolicy::Strict);
    assert_eq!(r.unwrap().files[0].commands, 2);
    assert_eq!(digest(&ks2), digest(&k.ks));

    // A damaged RDB is fatal under any policy.
    for cut in [base.len() - 1, 20] {
        let dir = TempDir::new("load-rdb-bad");
        let files = write_files(&dir, &[&base[..cut]]);
        let (_, r) = load(&files, RecoveryPolicy::TruncateTornTail);
        let e = r.unwrap_err();
        assert!(matches!(e, LoadError::Rdb { .. }), "{e}");
        assert!(e.to_string().contains("appendonly.aof.1.base.aof"), "{e}");
    }
}

#[test]
fn torn_tail_of_the_last_file() {
    let dir = TempDir::new("load-torn");
    let base = cmds(&[&["SET", "a", "1"]]);
    let good = cmds(&[&["SELECT", "0"], &["INCR", "n"]]);
    let torn_multi = [
        good.clone(),
        b"#TS:1\r\n".to_vec(),
        cmds(&[&["MULTI"], &["INCR", "n"], &["SET", "in-multi", "1"]]),
        cmd(&["INCR", "n"])[..9].to_vec(),
    ]
    .concat();
    let files = write_files(&dir, &[&base, &torn_multi]);
    let size = torn_multi.len() as u64;

    let (_, r) = load(&files, RecoveryPolicy::Strict);
    match r.unwrap_err() {
        LoadError::Torn { last: true, valid_up_to, size: s, ref damage, .. } => {
            assert_eq!((valid_up_to, s), (good.len() as u64, size));
            assert!(damage.torn);
        }
        e => panic!("{e}"),
    }

    let (ks, r) = load(&files, RecoveryPolicy::TruncateTornTail);
    let summary = r.unwrap();
    let torn = summary.torn().expect("torn tail reported");
    // Redis's valid_up_to: before the open MULTI, and before the annotation that followed the last command.
    assert_eq!(torn.offset, good.len() as u64);
    assert_eq!(torn.dropped(), size - good.len() as u64);
    assert_eq!(torn.path, files[1].path);
    // Never half applied: n is 1 (not 2), in-multi does not exist.
    assert_eq!(digest(&ks), digest(&kit(&["SET a 1", "INCR n"]).ks));
    // The loader does not touch the file; the caller truncates.
    assert_eq!(std::fs::metadata(&files[1].path).unwrap().len(), size);
    truncate_file(&torn.path, torn.offset).unwrap();
    assert_eq!(std::fs::metadata(&files[1].path).unwrap().len(), good.len() as u64);
    let (ks, r) = load(&files, RecoveryPolicy::Strict);
    assert!(r.unwrap().torn().is_none());
    assert_eq!(digest(&ks), digest(&kit(&["SET a 1", "INCR n"]).ks));
    // Truncation never grows a file.
    assert!(truncate_file(&torn.path, size + 10).is_err());
}

#[test]
fn torn_middle_file_is_fatal_and_untouched() {
    let dir = TempDir::new("load-middle");
    let torn = [cmd(&["SET", "a", "1"]), b"*2\r\n$3\r\nDE".to_vec()].concat();
    let files = write_files(&dir, &[&torn, &cmd(&["SET", "b", "2"])]);
    for policy in [RecoveryPolicy::Strict, RecoveryPolicy::TruncateTornTail] {
        let (_, r) = load(&files, policy);
        let e = r.unwrap_err();
        assert!(matches!(e, LoadError::Torn { last: false, valid_up_to: 27, .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("the truncated file is not the last file") && text.contains("moon-aof-tool check --fix"));
        assert_eq!(e.file(), "appendonly.aof.1.base.aof");
    }
    assert_eq!(std::fs::metadata(&files[0].path).unwrap().len(), torn.len() as u64);
}

/// A torn incr followed only by empty incr files (a power loss during a rotation) counts as the last file:
/// its tail is dropped under TruncateTornTail. A torn base, or a torn incr with data after it, stays fatal.
#[test]
fn torn_incr_before_empty_files_counts_as_last() {
    let dir = TempDir::new("load-rotated");
    let base = cmd(&["SET", "a", "1"]);
    let good = cmd(&["SET", "b", "2"]);
    let torn = [good.clone(), b"*2\r\n$3\r\nDE".to_vec()].concat();
    let files = write_files(&dir, &[&base, &torn, b"", b""]);
    let (ks, r) = load(&files, RecoveryPolicy::TruncateTornTail);
    let report = r.unwrap();
    let cut = report.torn().expect("the torn tail is reported");
    assert_eq!((cut.name.as_str(), cut.offset), ("appendonly.aof.2.incr.aof", good.len() as u64));
    assert_eq!(digest(&ks), digest(&kit(&["SET a 1", "SET b 2"]).ks));
    let (_, r) = load(&files, RecoveryPolicy::Strict);
    assert!(matches!(r.unwrap_err(), LoadError::Torn { .. }));

    // Data after the torn file: fatal, as in Redis.
    let dir = TempDir::new("load-rotated-data");
    let files = write_files(&dir, &[&base, &torn, b"", &good]);
    let (_, r) = load(&files, RecoveryPolicy::TruncateTornTail);
    assert!(matches!(r.unwrap_err(), LoadError::Torn { last: false, .. }));
    // A torn base before empty incr files: fatal.
    let dir = TempDir::new("load-rotated-base");
    let files = write_files(&dir, &[&torn, b""]);
    let (_, r) = load(&files, RecoveryPolicy::TruncateTornTail);
    assert!(matches!(r.unwrap_err(), LoadError::Torn { last: false, .. }));

    assert!(counts_as_last(AofKind::Base, []));
    assert!(counts_as_last(AofKind::Incr, [Some(0), Some(0)]));
    assert!(!counts_as_last(AofKind::Incr, [Some(0), None]));
    assert!(!counts_as_last(AofKind::Base, [Some(0)]));
}

#[test]
fn format_errors_unknown_and_empty_commands_are_fatal() {
    let set = cmd(&["SET", "foo", "hello"]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            [set.clone(), b"!!!".to_vec()].concat(),
            "Bad file format reading the append only file appendonly.aof.1.base.aof",
        ),
        ([set.clone(), b"*1\r\n$4\r\nPINGxx".to_vec()].concat(), "Expected \\r\\n, got: 7878 at offset 41"),
        (cmds(&[&["MULTI"], &["MULTI"]]), "Unexpected MULTI at offset 23"),
        (cmds(&[&["EXEC"]]), "Unexpected EXEC at offset 8"),
        (
            [set.clone(), cmd(&["bla"])].concat(),
            "Unknown command 'bla' reading the append only file appendonly.aof.1.base.aof at offset 33",
        ),
        (cmds(&[&["MULTI"], &["nope", "x"], &["EXEC"]]), "Unknown command 'nope' reading the append only file"),
        ([set.clone(), b"*0\r\n".to_vec()].concat(), "a command with no arguments at offset 33"),
    ];
    for (bytes, want) in cases {
        for policy in [RecoveryPolicy::Strict, RecoveryPolicy::TruncateTornTail] {
            let dir = TempDir::new("load-bad");
            let files = write_files(&dir, &[&bytes]);
            let (_, r) = load(&files, policy);
            let e = r.unwrap_err().to_string();
            assert!(e.contains(want), "{e}\nwanted {want}");
            if !e.starts_with("Unknown command") {
                assert!(e.contains("moon-aof-tool check --fix"), "{e}");
            }
        }
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = TempDir::new("load-missing");
    let files = vec![LoadFile { path: dir.path().join("nope.aof"), name: "nope.aof".into(), kind: AofKind::Incr }];
    let (_, r) = load(&files, RecoveryPolicy::Strict);
    let e = r.unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }) && e.to_string().contains("nope.aof"), "{e}");
}

#[test]
fn empty_files_load() {
    let dir = TempDir::new("load-empty");
    let files = write_files(&dir, &[b"", b"", &cmd(&["SET", "a", "1"]), b""]);
    let (ks, r) = load(&files, RecoveryPolicy::Strict);
    assert_eq!(r.unwrap().commands(), 1);
    assert_eq!(digest(&ks), digest(&kit(&["SET a 1"]).ks));
}

/// A command the proptest generates, with the Kit form of it.
fn arb_command() -> impl Strategy<Value = Vec<String>> {
    let key = prop::sample::select(vec!["a", "b", "c", "l", "h"]);
    let val = "[a-z0-9]{0,6}";
    prop_oneof![
        (key.clone(), val).prop_map(|(k, v)| vec!["SET".into(), k.into(), v]),
        key.clone().prop_map(|k| vec!["INCR".into(), k.into()]),
        (key.clone(), val, val).prop_map(|(k, a, b)| vec!["RPUSH".into(), k.into(), a, b]),
        (key.clone(), val).prop_map(|(k, f)| vec!["HSET".into(), k.into(), f, "v".into()]),
        key.clone().prop_map(|k| vec!["DEL".into(), k.into()]),
        (0..3u8).prop_map(|d| vec!["SELECT".into(), d.to_string()]),
        Just(vec!["MULTI".into()]),
        Just(vec!["EXEC".into()]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random command sequences (with balanced transactions), encoded, cut anywhere: loading under
    /// TruncateTornTail gives the state of the complete commands before the cut (without an open
    /// transaction), and reports exactly the bytes after them as the torn tail.
    #[test]
    fn cut_files_load_their_complete_prefix(seq in prop::collection::vec(arb_command(), 1..30), cut in any::<prop::sample::Index>()) {
        // Balance MULTI/EXEC: drop a nested MULTI or a stray EXEC.
        let mut commands: Vec<Vec<String>> = Vec::new();
        let mut multi = false;
        for c in seq {
            match c[0].as_str() {
                "MULTI" if multi => continue,
                "EXEC" if !multi => continue,
                "MULTI" => multi = true,
                "EXEC" => multi = false,
                _ => {}
            }
            commands.push(c);
        }
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for c in &commands {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            bytes.extend(cmd(&args));
            ends.push(bytes.len());
        }
        let cut = cut.index(bytes.len() + 1);
        // Expected: replay complete commands, transactions only when their EXEC is in.
        let mut want = Kit::new();
        let mut queued: Option<Vec<&Vec<String>>> = None;
        let mut valid = 0;
        let mut valid_before_multi = 0;
        for (c, &end) in commands.iter().zip(&ends) {
            if end > cut {
                break;
            }
            match c[0].as_str() {
                "MULTI" => {
                    valid_before_multi = valid;
                    queued = Some(Vec::new());
                }
                "EXEC" => {
                    for q in queued.take().unwrap_or_default() {
                        let args: Vec<&[u8]> = q.iter().map(|s| s.as_bytes()).collect();
                        want.run_args(&args);
                    }
                }
                _ => match queued.as_mut() {
                    Some(q) => q.push(c),
                    None => {
                        let args: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
                        want.run_args(&args);
                    }
                },
            }
            valid = end;
        }
        let valid = if queued.is_some() { valid_before_multi } else { valid };
        let dir = TempDir::new("load-prop");
        let files = write_files(&dir, &[&bytes[..cut]]);
        let (ks, r) = load(&files, RecoveryPolicy::TruncateTornTail);
        let summary = r.unwrap();
        prop_assert_eq!(digest(&ks), digest(&want.ks));
        match summary.torn() {
            Some(t) => {
                prop_assert_eq!(t.offset, valid as u64);
                prop_assert!(t.damage.torn);
                prop_assert!(valid < cut);
            }
            None => prop_assert_eq!(valid, cut),
        }
        // Strict refuses exactly the torn cases.
        let (_, strict) = load(&files, RecoveryPolicy::Strict);
        prop_assert_eq!(strict.is_err(), valid != cut);
        if let Err(e) = &strict {
            let torn = matches!(e, LoadError::Torn { damage, last: true, .. } if damage.torn);
            prop_assert!(torn, "{}", e);
        }
    }
}
