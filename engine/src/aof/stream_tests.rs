//! Tests of the stream reader and the verdict: every redis-check-aof message and offset (hard-coded from
//! what 7.0.15 printed, and compared live with /usr/bin/redis-check-aof when it is installed), cuts at
//! every offset, flipped bytes, chunk boundaries, annotations, RDB preambles, huge lengths.

use super::*;
use crate::aof::check::{check_reader, CheckOptions, TimestampCut, Verdict};
use crate::aof::test_support::{cmd, cmds, render_check_aof, run_check_aof, TempDir};

fn verdict_with(bytes: &[u8], opts: &CheckOptions) -> Verdict {
    check_reader(AofReader::from_bytes(Bytes::copy_from_slice(bytes)), opts).expect("in-memory check")
}

fn verdict(bytes: &[u8]) -> Verdict {
    verdict_with(bytes, &CheckOptions::default())
}

/// Every event, read with a given chunk size through a reader that hands out at most 3 bytes per read.
fn events(bytes: &[u8], chunk: usize) -> (Vec<String>, Option<Damage>, u64, u64, u64) {
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    let mut r = AofReader::from_reader(Dribble(bytes.to_vec(), 0), None).chunk_size(chunk);
    let mut out = Vec::new();
    let damage = loop {
        match r.next_event() {
            Ok(None) => break None,
            Ok(Some(Event::Command(c))) => {
                let args: Vec<String> = c.argv.iter().map(|a| a.escape_ascii().to_string()).collect();
                out.push(format!("{}..{} {:?} {}", c.offset, c.end, c.kind, args.join(" ")));
            }
            Ok(Some(Event::Annotation(a))) => out.push(format!("{} #{:?}", a.offset, a.timestamp())),
            Err(ReadError::Damage(d)) => break Some(d),
            Err(e) => panic!("unexpected {e}"),
        }
    };
    (out, damage, r.ok_up_to(), r.lines(), r.loader_valid_up_to())
}

/// Compares our rendering of redis-check-aof's output with the real tool's, when installed.
fn same_as_redis_check_aof(dir: &TempDir, bytes: &[u8]) {
    let Some(run) = run_check_aof(dir, "t.aof", bytes, &[]) else { return };
    let name = dir.path().join("t.aof").display().to_string();
    let ours = render_check_aof(&verdict(bytes), &name);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&run.stdout),
        "input {:?}",
        bytes.escape_ascii().to_string()
    );
    let valid = verdict(bytes).diff() == 0;
    assert_eq!(run.code, if valid { 0 } else { 1 });
}

/// (input, error line with the file called `t.aof`, ok_up_to, ok_up_to_line, torn) as redis-check-aof
/// 7.0.15 printed them.
type KnownCase = (Vec<u8>, Option<&'static str>, u64, u64, Option<bool>);

fn known_cases() -> Vec<KnownCase> {
    let set_foo = b"*2\r\n$3\r\nset\r\n$3\r\nfoo\r\n".to_vec();
    let with = |tail: &[u8]| [&set_foo[..], tail].concat();
    let ann = |n: usize| [b"*1\r\n$4\r\nPING\r\n".to_vec(), vec![b'#'; n]].concat();
    vec![
        (
            b"*3\r\n$3\r\nset\r\n$3\r\nfoo\r\n$5\r\nhello\r\n!!!".to_vec(),
            Some("AOF t.aof format error"),
            33,
            8,
            Some(false),
        ),
        (with(b"*2\r\n$3\r\nfoo\r\n$"), Some("0x              23: Expected \\r\\n, got: 0000"), 22, 9, Some(true)),
        (with(b"*2\r\n$3\r\nfoo\r\n$3"), Some("0x              23: Expected \\r\\n, got: 0000"), 22, 9, Some(true)),
        (with(b"*2\r\n$3\r\nfoo\r\n$3\r"), Some("0x              23: Expected \\r\\n, got: 0d00"), 22, 9, Some(true)),
        (with(b"*2\r\n$3\r\nfoo\r\n"), None, 22, 9, Some(true)),
        (with(b"*2\r\n$3\r\nfoo\r\n$5\r\nab"), Some("0x              27: Expected to read 7 bytes, got 2 bytes"), 22, 10, Some(true)),
        (
            with(b"*2\r\n$3\r\nfoo\r\n$-1\r\nab"),
            Some("0x              23: Expected to read string of -1 bytes, which is not in the suitable range"),
            22,
            10,
            Some(false),
        ),
        (
            b"*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nmulti\r\n".to_vec(),
            Some("0x              17: Unexpected MULTI in AOF t.aof"),
            0,
            7,
            Some(false),
        ),
        (b"*1\r\n$4\r\nEXEC\r\n".to_vec(), Some("0x               8: Unexpected EXEC in AOF t.aof"), 0, 4, Some(false)),
        (
            b"*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
            Some("0x              17: Reached EOF before reading EXEC for MULTI"),
            0,
            7,
            Some(true),
        ),
        (
            b"*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nPING\r\n#TS:5\r\n".to_vec(),
            Some("0x              1d: Reached EOF before reading EXEC for MULTI"),
            0,
            7,
            Some(true),
        ),
        (
            b"*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nset\r\n".to_vec(),
            Some("0x              1c: Reached EOF before reading EXEC for MULTI"),
            0,
            7,
            Some(true),
        ),
        (
            b"*2\r\n$5\r\nMULTI\r\n".to_vec(),
            Some("0x               f: Reached EOF before reading EXEC for MULTI"),
            0,
            4,
            Some(true),
        ),
        (b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nexec\r\n".to_vec(), None, 0, 7, Some(true)),
        (b"*1\r\n$4\r\nPING\r\n*0\r\n*-3\r\n*\r\n$\r\n".to_vec(), Some("AOF t.aof format error"), 26, 7, Some(false)),
        (b"*1\r\n$4\r\nPINGxx".to_vec(), Some("0x               8: Expected \\r\\n, got: 7878"), 0, 3, Some(false)),
        (
            b"*1\r\n$4\r\nPING\r\n*1\r\n$\xe94\r\nPING\r\n".to_vec(),
            Some("0x              12: Expected \\r\\n, got: ffffffe934"),
            14,
            5,
            Some(false),
        ),
        (b"*1\n$4\r\nPING\r\n".to_vec(), Some("0x               0: Expected \\r\\n, got: 0a00"), 0, 1, Some(false)),
        (b"*1\r\n$ 4\r\nPING\r\n".to_vec(), None, 15, 4, None),
        (b"*1\r\n$ \r\nPING\r\n".to_vec(), Some("0x               4: Expected \\r\\n, got: 200d"), 0, 2, Some(false)),
        (b"*1\r\nx4\r\nPING\r\n".to_vec(), Some("0x               4: Expected prefix '$', got: 'x'"), 0, 2, Some(false)),
        (
            b"*1\r\n$9223372036854775806\r\nPING\r\n".to_vec(),
            Some("0x               4: Expected to read string of 9223372036854775806 bytes, which is not in the suitable range"),
            0,
            3,
            Some(false),
        ),
        (
            b"*1\r\n$99999999999999999999999\r\nPING\r\n".to_vec(),
            Some("0x               4: Expected to read string of 9223372036854775807 bytes, which is not in the suitable range"),
            0,
            3,
            Some(false),
        ),
        (b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nP\0NG\r\n*1\r\n$5\r\nmu\0ti\r\n".to_vec(), None, 43, 10, None),
        ([ann(1030), b"\r\n*1\r\n$4\r\nPING\r\n".to_vec()].concat(), None, 1060, 7, None),
        ([ann(1022), b"*1\r\n$4\r\nPING\r\n".to_vec()].concat(), Some("AOF t.aof format error"), 1037, 4, Some(false)),
        ([ann(1023), b"*1\r\n$4\r\nPING\r\n".to_vec()].concat(), None, 1051, 7, None),
        (
            [b"*".to_vec(), vec![b'0'; 124], b"1\r\n$4\r\nPING\r\n".to_vec()].concat(),
            Some("0x               0: Expected \\r\\n, got: 0d00"),
            0,
            1,
            Some(false),
        ),
        (Vec::new(), None, 0, 1, None),
        // A lone `*` (the commonest torn tail): the byte after the NUL is left over from the last `*` line.
        (b"*1\r\n$4\r\nPING\r\n*".to_vec(), Some("0x               e: Expected \\r\\n, got: 000d"), 14, 4, Some(true)),
        (b"*1\r\n$4\r\nPING\r\n*1".to_vec(), Some("0x               e: Expected \\r\\n, got: 000a"), 14, 4, Some(true)),
        (
            b"*2\r\n$4\r\nPING\r\n$10\r\n0123456789\r\n*1".to_vec(),
            Some("0x              1f: Expected \\r\\n, got: 000a"),
            31,
            6,
            Some(true),
        ),
        (b"*1\r\n$4\r\nPING\r\n*1234567".to_vec(), Some("0x               e: Expected \\r\\n, got: 0000"), 14, 4, Some(true)),
        (b"*".to_vec(), Some("0x               0: Expected \\r\\n, got: 0000"), 0, 1, Some(true)),
        // A NUL ends the message (it goes through `%s`).
        (b"*1\r\n\x004\r\nPING\r\n".to_vec(), Some("0x               4: Expected prefix '$', got: '"), 0, 2, Some(false)),
    ]
}

#[test]
fn redis_check_aof_messages_and_offsets() {
    let dir = TempDir::new("known");
    for (input, error, ok_up_to, line, torn) in known_cases() {
        let shown = input.escape_ascii().to_string();
        let v = verdict(&input);
        let text = v.damage.as_ref().and_then(|d| d.check_aof_text("t.aof", "t.aof"));
        assert_eq!(text.as_deref().map(String::from_utf8_lossy).as_deref(), error, "{shown}");
        assert_eq!(v.ok_up_to, ok_up_to, "ok_up_to of {shown}");
        assert_eq!(v.ok_up_to_line(), line, "ok_up_to_line of {shown}");
        assert_eq!(v.size, input.len() as u64);
        assert_eq!(v.damage.as_ref().map(|d| d.torn), torn, "torn of {shown}");
        assert_eq!(v.torn_only(), torn == Some(true));
        same_as_redis_check_aof(&dir, &input);
    }
}

#[test]
fn empty_commands_pass_the_checker_but_are_flagged() {
    let v = verdict(b"*1\r\n$4\r\nPING\r\n*0\r\n*-3\r\n*\r\n");
    assert!(v.is_valid());
    assert_eq!(v.empty_command_at, Some(14));
    assert!(!v.loads_in_redis());
    assert_eq!(v.commands, 4);
}

/// A small file with every kind of item: SELECT, binary and empty arguments, annotations, a transaction.
fn sample() -> Vec<u8> {
    let mut f = cmds(&[&["SELECT", "0"], &["set", "k", "a\r\nb"], &["SET", "", "x"]]);
    f.extend_from_slice(b"#TS:1700000000\r\n");
    f.extend(cmds(&[&["MULTI"], &["INCR", "n"], &["RPUSH", "l", "1", "2"], &["EXEC"], &["DEL", "k"]]));
    f
}

/// (start, end, is-command, inside-MULTI-after) of each item of `bytes` (a valid file).
fn items(bytes: &[u8]) -> Vec<(u64, u64, bool, bool)> {
    let mut r = AofReader::from_bytes(Bytes::copy_from_slice(bytes));
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(e) = r.next_event().expect("valid sample") {
        let end = r.offset();
        out.push((at, end, matches!(e, Event::Command(_)), r.in_multi()));
        at = end;
    }
    out
}

#[test]
fn every_cut_is_a_torn_tail_with_the_right_offsets() {
    let file = sample();
    let items = items(&file);
    let dir = TempDir::new("cuts");
    for cut in 0..=file.len() {
        let part = &file[..cut];
        let v = verdict(part);
        let cut = cut as u64;
        // redis-check-aof: the start of the item being read, or of the open MULTI.
        let mut ok = 0;
        let mut multi_start = None;
        let mut valid = 0;
        let mut valid_before_multi = 0;
        for &(s, e, is_cmd, multi_after) in &items {
            if multi_start.is_none() {
                ok = s;
            }
            if e > cut {
                break;
            }
            if is_cmd {
                if multi_after && multi_start.is_none() {
                    multi_start = Some(s);
                    valid_before_multi = valid;
                } else if !multi_after {
                    multi_start = None;
                }
                valid = e;
            }
            if multi_start.is_none() {
                ok = e;
            }
        }
        // An annotation cut short is still an annotation: the file is valid up to the cut.
        let in_annotation = items.iter().any(|&(s, e, c, _)| !c && s < cut && cut < e);
        let ok = if in_annotation && multi_start.is_none() { cut } else { ok };
        assert_eq!(v.ok_up_to, ok, "ok_up_to at cut {cut}");
        let at_boundary = cut == 0 || items.iter().any(|&(_, e, _, _)| e == cut) || in_annotation;
        if at_boundary && multi_start.is_none() {
            assert!(v.damage.is_none() && v.is_valid(), "cut {cut}: {:?}", v.damage);
        } else {
            let d = v.damage.as_ref().unwrap_or_else(|| panic!("cut {cut} must be damaged"));
            assert!(d.torn, "cut {cut} must be torn: {d}");
            assert!(v.torn_only());
            let want = if multi_start.is_some() { valid_before_multi } else { valid };
            assert_eq!(v.loader_valid_up_to, want, "loader offset at cut {cut}");
        }
        // Same answer whatever the chunking.
        let whole = events(part, 1 << 20);
        for chunk in [1, 2, 5, 17] {
            assert_eq!(events(part, chunk), whole, "cut {cut} chunk {chunk}");
        }
        same_as_redis_check_aof(&dir, part);
    }
}

#[test]
fn flipped_bytes_match_redis_check_aof() {
    let file = cmds(&[&["SELECT", "0"], &["MULTI"], &["set", "k", "v"], &["EXEC"], &["DEL", "k"]]);
    let dir = TempDir::new("flips");
    for i in 0..file.len() {
        for b in [b'x', b'\n', b'\r', b'*', b'$', b'#', b'9', b'-', 0, 0xff] {
            let mut f = file.clone();
            f[i] = b;
            let v = verdict(&f);
            assert!(v.ok_up_to <= f.len() as u64);
            assert_eq!(events(&f, 3), events(&f, 1 << 20), "flip {i} to {b}");
            same_as_redis_check_aof(&dir, &f);
        }
    }
}

#[test]
fn events_carry_arguments_kinds_and_offsets() {
    let file = sample();
    let (ev, damage, ok, lines, valid) = events(&file, 7);
    assert!(damage.is_none());
    assert_eq!(ok, file.len() as u64);
    assert_eq!(valid, file.len() as u64);
    // 1 + 2 * argc per command.
    assert_eq!(lines, 5 + 7 + 7 + 3 + 5 + 9 + 3 + 5);
    assert_eq!(ev[0], "0..23 Plain SELECT 0");
    assert_eq!(ev[1], "23..53 Plain set k a\\r\\nb");
    assert_eq!(ev[2], "53..79 Plain SET  x");
    assert_eq!(ev[3], "79 #Valid(1700000000)");
    assert!(ev[4].ends_with("Multi MULTI"), "{}", ev[4]);
    assert!(ev[7].ends_with("Exec EXEC"), "{}", ev[7]);
    // keep_args(false) keeps only the name.
    let mut r = AofReader::from_bytes(Bytes::from(file)).keep_args(false);
    let Some(Event::Command(c)) = r.next_event().unwrap() else { panic!("command") };
    assert_eq!((c.argc, c.argv.len(), c.name()), (2, 1, Some(&b"SELECT"[..])));
}

#[test]
fn timestamp_annotations() {
    let ts = |line: &[u8]| Annotation { offset: 0, line: Bytes::copy_from_slice(line) }.timestamp();
    assert_eq!(ts(b"#TS:1628217470\r\n"), Timestamp::Valid(1628217470));
    assert_eq!(ts(b"#TS: -5\r\n"), Timestamp::Valid(-5));
    assert_eq!(ts(b"#TS:\r\n"), Timestamp::Valid(0), "strtol finds no digits and stops at \\r");
    assert_eq!(ts(b"#TS:12\n"), Timestamp::Invalid);
    assert_eq!(ts(b"#TS:12"), Timestamp::Invalid);
    assert_eq!(ts(b"#TS:12x\r\n"), Timestamp::Invalid);
    assert_eq!(ts(b"#TS:99999999999999999999\r\n"), Timestamp::Invalid);
    assert_eq!(ts(b"#ts:12\r\n"), Timestamp::None);
    assert_eq!(ts(b"# hello\r\n"), Timestamp::None);
}

#[test]
fn truncate_to_timestamp_matches_redis_check_aof() {
    let ping = cmd(&["PING"]);
    let file = [
        ping.clone(),
        b"#TS:100\r\n".to_vec(),
        ping.clone(),
        b"#TS:200\r\n".to_vec(),
        b"#TS:200\r\n".to_vec(),
        ping.clone(),
        b"#TS:300\r\n".to_vec(),
    ]
    .concat();
    let bad = [ping.clone(), b"#TS:100\r\n".to_vec(), ping.clone(), b"#TS:200\n".to_vec(), ping.clone()].concat();
    let first = [b"#TS:100\r\n".to_vec(), ping.clone()].concat();
    let torn = [ping.clone(), b"#TS:100\r\n".to_vec(), ping[..5].to_vec()].concat();
    let dir = TempDir::new("ts");
    let cases: Vec<(&[u8], i64, Option<TimestampCut>)> = vec![
        (&file, 150, Some(TimestampCut::At(37))),
        (&file, 50, Some(TimestampCut::At(14))),
        (&file, 250, Some(TimestampCut::At(69))),
        (&file, 300, Some(TimestampCut::Nothing)),
        (&bad, 50, Some(TimestampCut::At(14))),
        (&bad, 150, Some(TimestampCut::Invalid(37))),
        (&first, 50, Some(TimestampCut::At(0))),
        (&torn, 500, Some(TimestampCut::Nothing)),
        (&torn, 50, Some(TimestampCut::At(14))),
    ];
    for (bytes, t, want) in cases {
        let opts = CheckOptions { truncate_to_timestamp: Some(t), ..CheckOptions::default() };
        let v = verdict_with(bytes, &opts);
        assert_eq!(v.timestamp, want, "T={t} on {}", bytes.escape_ascii());
        let Some(run) = run_check_aof(&dir, "t.aof", bytes, &["--truncate-to-timestamp", &t.to_string()]) else {
            continue;
        };
        let out = String::from_utf8_lossy(&run.stdout);
        match v.timestamp {
            Some(TimestampCut::At(0)) => assert!(out.contains("has nothing before timestamp"), "{out}"),
            Some(TimestampCut::At(off)) => {
                assert!(out.contains("Successfully truncated AOF"), "{out}");
                assert_eq!(run.size_after, off);
            }
            Some(TimestampCut::Invalid(_)) => assert!(out.starts_with("Invalid timestamp annotation"), "{out}"),
            _ if v.diff() == 0 => assert!(out.starts_with("Truncate nothing"), "{out}"),
            _ => assert!(out.contains("is not valid"), "{out}"),
        }
        assert_eq!(run.code == 0, matches!(v.timestamp, Some(TimestampCut::At(1..))) || v.diff() == 0, "{out}");
    }
}

#[test]
fn huge_lengths_never_allocate_what_the_file_does_not_have() {
    for (input, code) in [
        (&b"*1\r\n$9223372036854775805\r\nPING\r\n"[..], "short-read"),
        (b"*9223372036854775807\r\n$1\r\nx\r\n", "eof"),
        (b"*1\r\n$4294967296\r\nPI", "short-read"),
    ] {
        for hint in [None, Some(input.len() as u64)] {
            let r = AofReader::from_reader(io::Cursor::new(input.to_vec()), hint).chunk_size(8);
            let v = check_reader(r, &CheckOptions::default()).unwrap();
            let d = v.damage.expect("damaged");
            assert_eq!(d.code(), code);
            assert!(d.torn);
        }
    }
}

#[test]
fn never_panics_on_random_bytes() {
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet = b"*$#\r\n0123456789-+ xMULTIEXECmulti";
    for _ in 0..20_000 {
        let len = rng.usize(0..40);
        let bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
        let v = verdict(&bytes);
        assert!(v.ok_up_to <= v.size && v.loader_valid_up_to <= v.size);
        assert_eq!(events(&bytes, 2), events(&bytes, 64));
    }
}

/// Count lines around the reader's direct parse (up to 18 digits; longer ones, signs and spaces take the
/// strtol path): the same commands and the same verdicts as redis-check-aof.
#[test]
fn count_lines_with_leading_zeros_and_long_numbers() {
    let dir = TempDir::new("counts");
    let valid: [(&[u8], &str); 4] = [
        (b"*03\r\n$3\r\nSET\r\n$01\r\nk\r\n$1\r\nv\r\n", "Plain SET k v"),
        (b"*1\r\n$000000000000000004\r\nPING\r\n", "Plain PING"),
        (b"*1\r\n$0000000000000000004\r\nPING\r\n", "Plain PING"),
        (b"*+1\r\n$ 4\r\nPING\r\n", "Plain PING"),
    ];
    for (input, want) in valid {
        let want = format!("0..{} {want}", input.len());
        for chunk in [1, 4, 64] {
            let (got, damage, ..) = events(input, chunk);
            assert_eq!((got, damage), (vec![want.clone()], None), "{}", input.escape_ascii());
        }
        same_as_redis_check_aof(&dir, input);
    }
    for input in
        [&b"*1\r\n$99999999999999999999\r\nPING\r\n"[..], b"*1\r\n$9999999999999999999\r\nPING\r\n", b"*0001x\r\n"]
    {
        assert!(events(input, 64).1.is_some(), "{}", input.escape_ascii());
        same_as_redis_check_aof(&dir, input);
    }
    // The longest length read directly: redis-check-aof tries to allocate it and aborts; we report it.
    let input = b"*1\r\n$123456789012345678\r\nPING\r\n";
    let v = verdict(input);
    let text = v.damage.as_ref().and_then(|d| d.check_aof_text("t.aof", "t.aof")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&text),
        "0x              19: Expected to read 123456789012345680 bytes, got 6 bytes"
    );
}

#[test]
fn random_commands_with_noise_match_redis_check_aof() {
    let dir = TempDir::new("noise");
    let mut rng = fastrand::Rng::with_seed(11);
    let pieces: [&[u8]; 12] =
        [b"*", b"$", b"\r\n", b"\n", b"#TS:5\r\n", b"1", b"2", b"-", b" ", b"x", b"MULTI", b"EXEC"];
    for _ in 0..300 {
        let mut f = Vec::new();
        for _ in 0..rng.usize(1..6) {
            match rng.u8(0..4) {
                0 => f.extend(cmd(&["MULTI"])),
                1 => f.extend(cmd(&["EXEC"])),
                _ => f.extend(cmd(&["SET", "k", "v"])),
            }
            for _ in 0..rng.usize(0..2) {
                f.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
        }
        let cut = rng.usize(0..=f.len());
        f.truncate(cut);
        same_as_redis_check_aof(&dir, &f);
    }
}

mod preamble {
    use super::*;
    use crate::cmd::testkit::Kit;
    use crate::keyspace::Keyspace;
    use crate::rdb::WriteOptions;
    use crate::types::{StrValue, Value};

    /// Every type, a TTL, and a key that has already expired (an AOF base keeps it).
    pub(crate) fn dataset() -> Kit {
        let mut k = Kit::new();
        k.run_all(&[
            "SET a 1",
            "RPUSH l x y z",
            "HSET h f v",
            "SADD s 1 2 3",
            "ZADD z 1.5 m",
            "PEXPIREAT a 4102444800000",
        ]);
        k.ks.dbs[0].insert(b"old", Value::Str(StrValue::from_bytes(b"v")), Some(1));
        k
    }

    pub(crate) fn rdb_bytes(k: &Kit) -> Vec<u8> {
        crate::rdb::save_keyspace(&k.ks, Vec::new(), &WriteOptions::default(), true).unwrap()
    }

    #[test]
    fn rdb_then_resp_tail() {
        let mut k = dataset();
        let rdb = rdb_bytes(&k);
        let tail = cmds(&[&["SELECT", "0"], &["SET", "after", "1"], &["RPUSH", "l", "w"]]);
        k.run_all(&["SET after 1", "RPUSH l w"]);
        let file = [rdb.clone(), tail.clone()].concat();

        let mut r = AofReader::from_reader(io::Cursor::new(file.clone()), None).chunk_size(16);
        assert!(r.has_rdb_preamble().unwrap());
        let mut ks = Keyspace::new(16);
        let report = r.load_rdb_preamble(&rdb::LoadOptions::default(), &mut ks).unwrap().unwrap();
        assert!(report.is_aof_base());
        assert_eq!(report.keys_loaded, 6, "the expired key is kept");
        assert_eq!(r.rdb_end(), Some(rdb.len() as u64));
        let mut names = Vec::new();
        while let Some(Event::Command(c)) = r.next_event().unwrap() {
            assert!(c.offset >= rdb.len() as u64);
            names.push(c.argv[0].clone());
        }
        assert_eq!(names, ["SELECT", "SET", "RPUSH"]);

        let v = verdict(&file);
        assert!(v.is_valid() && v.rdb.is_some());
        assert_eq!(v.rdb.as_ref().map(|r| r.1), Some(rdb.len() as u64));
        assert_eq!(v.commands, 3);

        // A cut inside the RESP tail is a torn tail; inside the RDB it is an RDB error, never torn.
        let cut = verdict(&file[..file.len() - 3]);
        assert!(cut.torn_only());
        assert_eq!(cut.loader_valid_up_to, (rdb.len() + tail.len() - cmd(&["RPUSH", "l", "w"]).len()) as u64);
        let cut = verdict(&file[..rdb.len() - 1]);
        assert!(cut.rdb_error.is_some() && !cut.torn_only() && !cut.is_valid());
        let mut flipped = file.clone();
        flipped[rdb.len() / 2] ^= 0x5a;
        assert!(verdict(&flipped).rdb_error.is_some());

        // Not sniffed (an incr file as redis-check-aof reads it): a format error at 0.
        let opts = CheckOptions { sniff: RdbSniff::Never, ..CheckOptions::default() };
        let v = verdict_with(&file, &opts);
        assert_eq!(v.damage.map(|d| (d.code(), d.offset)), Some(("format-error", 0)));

        // Reading events without loading the preamble validates it first.
        let mut r = AofReader::from_bytes(Bytes::from(file.clone()));
        assert!(matches!(r.next_event().unwrap(), Some(Event::Command(_))));

        let dir = TempDir::new("preamble");
        if let Some(run) = run_check_aof(&dir, "p.aof", &file, &[]) {
            let out = String::from_utf8_lossy(&run.stdout);
            assert!(out.contains("RDB preamble is OK, proceeding with AOF tail..."), "{out}");
            let name = dir.path().join("p.aof").display().to_string();
            let v = verdict(&file);
            assert!(
                out.ends_with(&format!("{}\nAOF {name} is valid\n", v.summary_line(&name, v.ok_up_to_line()))),
                "{out}"
            );
        }
    }
}

#[test]
fn size_counts_unread_bytes_after_early_damage() {
    let mut bytes = cmd(&["PING"]);
    bytes.push(b'!');
    bytes.extend(std::iter::repeat_n(b'x', 1000));
    let r = AofReader::from_reader(io::Cursor::new(bytes.clone()), None).chunk_size(4);
    let v = check_reader(r, &CheckOptions::default()).unwrap();
    assert_eq!((v.size, v.ok_up_to, v.diff()), (bytes.len() as u64, 14, bytes.len() as u64 - 14));
    let mut r = AofReader::from_reader(io::Cursor::new(bytes.clone()), None).chunk_size(4);
    assert!(r.next_event().unwrap().is_some());
    assert!(r.next_event().is_err());
    assert_eq!(r.total_size().unwrap(), bytes.len() as u64);
    assert_eq!(r.total_size().unwrap(), bytes.len() as u64, "stable after draining");
    assert!(r.next_event().unwrap().is_none());
}
