//! Manifest grammar: round trips, every error of FORMATS.md §1.2 / §6.2 part 1, and the same cases fed to
//! redis-check-aof 7.0.15 (which runs Redis's own parser) and, for manifests it would not recognise as
//! manifests, to redis-server 7.0.15.

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Expect = Result<Vec<(&'static [u8], u64, AofKind)>, (ManifestErrorKind, Option<(usize, &'static [u8])>)>;

fn long(n: usize) -> Vec<u8> {
    vec![b'a'; n]
}

fn ok(files: &[(&'static [u8], u64, AofKind)]) -> Expect {
    Ok(files.to_vec())
}

fn err(kind: ManifestErrorKind, line: Option<(usize, &'static [u8])>) -> Expect {
    Err((kind, line))
}

/// `(label, manifest, expected)`. Every case of FORMATS.md §1.2 and §6.2 part 1 that is about the manifest.
fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use AofKind::*;
    use ManifestErrorKind::*;
    // Lines of exactly 1023 and 1024 bytes before the `\n` (padding in an ignored key/value pair).
    let pad1023 = [b"file a seq 1 type i k ".as_slice(), &long(1023 - 22), b"\n"].concat();
    let pad1024 = [b"file a seq 1 type i k ".as_slice(), &long(1024 - 22), b"\n"].concat();
    let long_comment = [b"#".as_slice(), &long(1500), b"\nfile a seq 1 type i\n"].concat();
    let long_comment_tail = [b"#".as_slice(), &long(1022), b"bXX\nfile a seq 1 type i\n"].concat();
    let comment_no_newline = [b"file a seq 1 type i\n#".as_slice(), &long(1000)].concat();
    let long_comment_no_newline = [b"file a seq 1 type i\n#".as_slice(), &long(2000)].concat();
    let gc = b"file appendonly.aof.7.base.rdb seq 7 type b\nfile appendonly.aof.2.incr.aof seq 2 type h\n\
               file appendonly.aof.6.base.rdb seq 6 type h\nfile appendonly.aof.1.incr.aof seq 1 type h\n\
               file appendonly.aof.5.base.rdb seq 5 type h\nfile appendonly.aof.3.incr.aof seq 3 type i\n";
    let mut v: Vec<(&'static str, Vec<u8>, Expect)> = Vec::new();
    let mut add = |label: &'static str, text: &[u8], want: Expect| v.push((label, text.to_vec(), want));
    add("single incr", b"file a seq 1 type i\n", ok(&[(b"a", 1, Incr)]));
    add(
        "auto gc example (history newest first)",
        gc,
        ok(&[
            (b"appendonly.aof.7.base.rdb", 7, Base),
            (b"appendonly.aof.2.incr.aof", 2, History),
            (b"appendonly.aof.6.base.rdb", 6, History),
            (b"appendonly.aof.1.incr.aof", 1, History),
            (b"appendonly.aof.5.base.rdb", 5, History),
            (b"appendonly.aof.3.incr.aof", 3, Incr),
        ]),
    );
    add(
        "discontinuous incr seqs",
        b"file b seq 1 type b\nfile i1 seq 1 type i\nfile i3 seq 3 type i\n",
        ok(&[(b"b", 1, Base), (b"i1", 1, Incr), (b"i3", 3, Incr)]),
    );
    add(
        "whitespace name quoted",
        b"file \" file seq \\n\\n.aof .2.base.rdb\" seq 2 type b\n",
        ok(&[(b" file seq \n\n.aof .2.base.rdb", 2, Base)]),
    );
    add("comments", b"# one\nfile a seq 1 type i\n#two\n", ok(&[(b"a", 1, Incr)]));
    add("only comments = empty manifest", b"# hello\n#\n", ok(&[]));
    add("comment without newline at the end", &comment_no_newline, ok(&[(b"a", 1, Incr)]));
    add("new key-value pair ignored", b"file a seq 1 type b newkey newvalue\n", ok(&[(b"a", 1, Base)]));
    add("redis 8 offsets ignored", b"file a seq 1 type i startoffset 10 endoffset 20\n", ok(&[(b"a", 1, Incr)]));
    add("keys case-insensitive, type word", b"FILE a SEQ 1 TYPE incr\n", ok(&[(b"a", 1, Incr)]));
    add("repeated key: last wins", b"file a file b seq 1 type i\n", ok(&[(b"b", 1, Incr)]));
    add("seq via atoll: 12abc", b"file a seq 12abc type i\n", ok(&[(b"a", 12, Incr)]));
    add("seq via atoll: +3", b"file a seq +3 type i\n", ok(&[(b"a", 3, Incr)]));
    add("seq via atoll: saturates", b"file a seq 99999999999999999999 type i\n", ok(&[(b"a", i64::MAX as u64, Incr)]));
    add("trimmed line with CR", b"  file a seq 1 type i \t \r\n", ok(&[(b"a", 1, Incr)]));
    add("single-quoted name", b"file 'a b' seq 1 type i\n", ok(&[(b"a b", 1, Incr)]));
    add("1023-byte line", &pad1023, ok(&[(b"a", 1, Incr)]));
    // Errors.
    add("empty manifest", b"", err(Empty, None));
    add("blank line", b"file a seq 1 type i\n\nfile b seq 2 type i\n", err(InvalidFormat, Some((2, b""))));
    add("trailing blank line", b"file a seq 1 type i\n\n", err(InvalidFormat, Some((2, b""))));
    add("white-space-only line", b"file a seq 1 type i\n \t \n", err(InvalidFormat, Some((2, b""))));
    add("1024-byte line", &pad1024, err(LineTooLong, None));
    add("no trailing newline", b"file a seq 1 type i", err(LineTooLong, None));
    add("comment over 1024 bytes without newline", &long_comment_no_newline, err(LineTooLong, None));
    add("NUL before newline", b"file a\0zz seq 1 type i\n", err(LineTooLong, None));
    add("comment over 1024 bytes: rest is a line", &long_comment, err(InvalidFormat, Some((2, &[b'a'; 477]))));
    add("comment over 1024 bytes: rest parsed", &long_comment_tail, err(InvalidFormat, Some((2, b"XX"))));
    let l2: &[u8] = b"file b seq 2 type i";
    add("non-monotonic incr seq", b"file a seq 2 type i\nfile b seq 2 type i\n", err(NonMonotonicSeq, Some((2, l2))));
    let l2: &[u8] = b"file b seq 1 type i";
    add("decreasing incr seq", b"file a seq 2 type i\nfile b seq 1 type i\n", err(NonMonotonicSeq, Some((2, l2))));
    let l2: &[u8] = b"file b seq 2 type b";
    add("duplicate base", b"file a seq 1 type b\nfile b seq 2 type b\n", err(DuplicateBase, Some((2, l2))));
    // One-line errors: the line Redis echoes is the input without its newline.
    let one_line: [(&'static str, &'static [u8], ManifestErrorKind); 15] = [
        ("unknown type", b"file a seq 1 type x", UnknownType),
        ("type is case-sensitive", b"file a seq 1 type I", UnknownType),
        ("missing key", b"file a seq 1 type", InvalidFormat),
        ("line too short", b"file a type i", InvalidFormat),
        ("odd parameter", b"file a seq 1 type i newkey", InvalidFormat),
        ("seq 0", b"file a seq 0 type i", InvalidFormat),
        ("seq not a number", b"file a seq x type i", InvalidFormat),
        ("empty type value", b"file a seq 1 type \"\"", InvalidFormat),
        ("no file key", b"name a seq 1 type i", InvalidFormat),
        ("unbalanced quotes", b"file \"a seq 1 type i", InvalidFormat),
        ("closing quote not followed by space", b"file \"a\"b seq 1 type i", InvalidFormat),
        ("bare quote inside a name", b"file a'b seq 1 type i", InvalidFormat),
        ("path", b"file ../a seq 1 type i", NotBaseName),
        ("backslash path", b"file a\\\\b seq 1 type i", NotBaseName),
        ("path checked before the other keys", b"file a/b seq 0 type z", NotBaseName),
    ];
    for (label, line, kind) in one_line {
        add(label, &[line, b"\n"].concat(), err(kind, Some((1, line))));
    }
    let l4: &[u8] = b"file a seq 1 type q";
    add(
        "error line numbers count comments",
        b"# c\nfile a seq 1 type i\n# d\nfile a seq 1 type q\n",
        err(UnknownType, Some((4, l4))),
    );
    v
}

fn check(label: &str, got: &Result<Manifest, ManifestError>, want: &Expect) {
    match (got, want) {
        (Ok(m), Ok(files)) => {
            let got: Vec<(&[u8], u64, AofKind)> = m.files().map(|f| (&f.name[..], f.seq, f.kind)).collect();
            let want: Vec<(&[u8], u64, AofKind)> = files.iter().map(|&(n, s, k)| (n, s, k)).collect();
            assert_eq!(got, want, "{label}");
        }
        (Err(e), Err((kind, line))) => {
            assert_eq!(e.kind, *kind, "{label}");
            let got_line = e.line.as_ref().map(|l| (l.number, &l.text[..]));
            assert_eq!(got_line, line.map(|(n, t)| (n, t)), "{label}");
        }
        _ => panic!("{label}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn parses_every_case_like_redis() {
    for (label, text, want) in cases() {
        check(label, &Manifest::parse(&text), &want);
    }
}

#[test]
fn negative_seq_is_rejected_unlike_redis() {
    let e = Manifest::parse(b"file a seq -1 type b\n").unwrap_err();
    assert_eq!(e.kind, ManifestErrorKind::InvalidFormat);
}

#[test]
fn writes_redis_order_and_round_trips() {
    for (label, text, want) in cases() {
        let Ok(m) = Manifest::parse(&text) else { continue };
        let bytes = m.encode().expect("encodable");
        if m.files().next().is_none() {
            assert!(m.is_empty() && bytes.is_empty(), "{label}");
            continue;
        }
        assert_eq!(Manifest::parse(&bytes).ok().as_ref(), Some(&m), "{label}");
        assert!(want.is_ok(), "{label}");
    }
    // Redis's own output, byte for byte (FORMATS.md §1.2).
    let gc = b"file appendonly.aof.7.base.rdb seq 7 type b\nfile appendonly.aof.2.incr.aof seq 2 type h\n\
               file appendonly.aof.6.base.rdb seq 6 type h\nfile appendonly.aof.1.incr.aof seq 1 type h\n\
               file appendonly.aof.5.base.rdb seq 5 type h\nfile appendonly.aof.3.incr.aof seq 3 type i\n";
    assert_eq!(Manifest::parse(gc).unwrap().encode().unwrap(), gc.to_vec());
    let ws = b"file \" file seq \\n\\n.aof .2.base.rdb\" seq 2 type b\n";
    assert_eq!(Manifest::parse(ws).unwrap().encode().unwrap(), ws.to_vec());
    // Line order comes from the fields, not from the input order.
    let shuffled = b"file i seq 3 type i\nfile h seq 1 type h\nfile b seq 2 type b\n";
    let out = Manifest::parse(shuffled).unwrap().encode().unwrap();
    assert_eq!(out, b"file b seq 2 type b\nfile h seq 1 type h\nfile i seq 3 type i\n".to_vec());
}

#[test]
fn quotes_names_like_sdscatrepr() {
    let m = |name: &[u8]| Manifest { base: Some(AofInfo::new(name, 1, AofKind::Base)), ..Manifest::default() };
    let line = |name: &[u8]| String::from_utf8(m(name).encode().unwrap()).unwrap();
    assert_eq!(line(b"plain.aof"), "file plain.aof seq 1 type b\n");
    assert_eq!(line(b"a b"), "file \"a b\" seq 1 type b\n");
    assert_eq!(line(b"q\"b\\s"), "file \"q\\\"b\\\\s\" seq 1 type b\n");
    assert_eq!(line(b"\n\r\t\x07\x08"), "file \"\\n\\r\\t\\a\\b\" seq 1 type b\n");
    assert_eq!(line(b"\x01\x7f\xff\x0b"), "file \"\\x01\\x7f\\xff\\x0b\" seq 1 type b\n");
    // Quoted although Redis would not (it then cannot read the line back).
    assert_eq!(line(b"a'b"), "file \"a'b\" seq 1 type b\n");
    assert_eq!(line(b""), "file \"\" seq 1 type b\n");
    for name in [&b"a'b"[..], b"", b"\xc3\xa9 \"'\n", b"#x"] {
        assert_eq!(Manifest::parse(&m(name).encode().unwrap()).unwrap(), m(name));
    }
}

#[test]
fn refuses_to_write_an_unreadable_line() {
    let ok = Manifest { incrs: vec![AofInfo::new(long(1023 - 18), 1, AofKind::Incr)], ..Manifest::default() };
    let bytes = ok.encode().unwrap();
    assert_eq!(bytes.len(), 1024);
    assert_eq!(Manifest::parse(&bytes).unwrap(), ok);
    let too_long = Manifest { incrs: vec![AofInfo::new(long(1024 - 18), 1, AofKind::Incr)], ..Manifest::default() };
    assert_eq!(too_long.encode().unwrap_err().kind, ManifestErrorKind::LineTooLong);
}

#[test]
fn current_sequence_numbers() {
    let m = Manifest::parse(b"file b seq 5 type b\nfile h seq 9 type h\nfile x seq 2 type i\nfile y seq 7 type i\n")
        .unwrap();
    assert_eq!((m.curr_base_seq(), m.curr_incr_seq()), (5, 7));
    assert_eq!(m.last_incr().map(|i| &i.name[..]), Some(&b"y"[..]));
    assert_eq!(
        m.files_to_load().map(|f| f.name.clone()).collect::<Vec<_>>(),
        vec![b"b".to_vec(), b"x".into(), b"y".into()]
    );
    assert!(m.mentions(b"h") && !m.mentions(b"z"));
    let empty = Manifest::parse(b"file h seq 3 type h\n").unwrap();
    assert!(empty.is_empty());
    assert_eq!((empty.curr_base_seq(), empty.curr_incr_seq()), (0, 0));
}

#[test]
fn file_names() {
    assert_eq!(base_name(b"appendonly.aof", 1, BaseFormat::Rdb), b"appendonly.aof.1.base.rdb");
    assert_eq!(base_name(b"appendonly.aof", 12, BaseFormat::Resp), b"appendonly.aof.12.base.aof");
    assert_eq!(incr_name(b"appendonly.aof", 3), b"appendonly.aof.3.incr.aof");
    assert_eq!(manifest_name(b"appendonly.aof"), b"appendonly.aof.manifest");
    assert_eq!(temp_manifest_name(b"appendonly.aof"), b"temp-appendonly.aof.manifest");
    assert_eq!(temp_incr_name(b"appendonly.aof"), b"temp-appendonly.aof.incr");
    assert_eq!(rewrite_temp_name(4242), b"temp-rewriteaof-bg-4242.aof");
    assert_eq!(sync_rewrite_temp_name(7), b"temp-rewriteaof-7.aof");
    assert!(is_base_name(b"a.aof") && !is_base_name(b"d/a") && !is_base_name(b"d\\a") && is_base_name(b"a\0/b"));
}

#[test]
fn error_log_lines_match_redis() {
    let e = Manifest::parse(b"file a seq 1 type i\n\n").unwrap_err();
    assert_eq!(
        e.log_lines(),
        [
            "",
            "*** FATAL AOF MANIFEST FILE ERROR ***",
            "Reading the manifest file, at line 2",
            ">>> ''",
            "Invalid AOF manifest file format"
        ]
    );
    let e = Manifest::parse(b"").unwrap_err();
    assert_eq!(e.log_lines(), ["", "*** FATAL AOF MANIFEST FILE ERROR ***", "Found an empty AOF manifest"]);
    assert_eq!(e.to_string(), "Found an empty AOF manifest");
    let e = Manifest::parse(b"file a seq 1 type z\n").unwrap_err();
    assert_eq!(e.to_string(), "Unknown AOF file type (at line 1: 'file a seq 1 type z')");
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet = b"file seq type bhi0123 \"'\\x\n\r\t#\0/";
    for _ in 0..20_000 {
        let len = rng.usize(0..80);
        let data: Vec<u8> = (0..len).map(|_| alphabet[rng.usize(0..alphabet.len())]).collect();
        if let Ok(m) = Manifest::parse(&data) {
            if let Ok(bytes) = m.encode() {
                let want = if m.files().next().is_none() { None } else { Some(m) };
                assert_eq!(Manifest::parse(&bytes).ok(), want);
            }
        }
    }
}

// ---- Against the real thing ----

fn redis_tool(name: &str) -> bool {
    let present = Command::new(name).arg("--version").output().is_ok();
    if !present {
        assert!(std::env::var_os("MOON_REQUIRE_REDIS").is_none(), "MOON_REQUIRE_REDIS is set but {name} is missing");
        eprintln!("{name} not found: skipping the comparison with Redis");
    }
    present
}

/// A temp directory removed on drop, also when the test fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("moon-manifest-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    TempDir(d)
}

/// The text of Redis's log lines (`<pid>:<role> <date> <level> <text>`) and plain lines, without blanks.
fn log_texts(out: &[u8]) -> Vec<Vec<u8>> {
    let mut texts = Vec::new();
    for line in out.split(|&c| c == b'\n') {
        let text = match line.windows(3).position(|w| w == b" # " || w == b" * ") {
            Some(i) if line.iter().take_while(|c| c.is_ascii_digit()).count() > 0 => &line[i + 3..],
            _ => line,
        };
        if !text.is_empty() {
            texts.push(text.to_vec());
        }
    }
    texts
}

/// What Redis's parser said: `Ok` or the error lines after the FATAL banner.
fn redis_verdict(texts: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    let i = texts.iter().position(|t| t == b"*** FATAL AOF MANIFEST FILE ERROR ***")?;
    Some(texts[i + 1..].iter().take_while(|t| !t.starts_with(b"Start ")).cloned().collect())
}

fn lossy(lines: &[Vec<u8>]) -> Vec<String> {
    lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
}

fn our_verdict(e: &ManifestError) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    if let Some(l) = &e.line {
        lines.push(format!("Reading the manifest file, at line {}", l.number).into_bytes());
        lines.push([b">>> '".as_slice(), &l.text, b"'"].concat());
    }
    lines.push(e.kind.message().as_bytes().to_vec());
    lines
}

/// redis-check-aof treats a file as a manifest only if a non-comment line starts with `file`; the others go
/// to redis-server, which always parses `appendonlydir/appendonly.aof.manifest`.
fn looks_like_manifest_to_check_aof(text: &[u8]) -> bool {
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..]
            .iter()
            .take(MANIFEST_MAX_LINE)
            .position(|&c| c == b'\n')
            .map_or((pos + MANIFEST_MAX_LINE).min(text.len()), |i| pos + i + 1);
        if text[pos] != b'#' && text[pos..end].starts_with(b"file") {
            return true;
        }
        pos = end;
    }
    false
}

fn run_check_aof(dir: &Path, text: &[u8], files: &[Vec<u8>]) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::write(dir.join("t.manifest"), text).unwrap();
    for f in files {
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(f)), b"").unwrap();
    }
    let out = Command::new("redis-check-aof").arg("t.manifest").current_dir(dir).output().expect("redis-check-aof");
    for f in files {
        let _ = std::fs::remove_file(dir.join(std::ffi::OsStr::from_bytes(f)));
    }
    let texts = log_texts(&out.stdout);
    assert_eq!(out.status.success(), redis_verdict(&texts).is_none(), "{}", String::from_utf8_lossy(&out.stdout));
    texts
}

/// Starts redis-server on a hand-made manifest; returns its log once it has exited or finished starting.
fn run_server(dir: &Path, text: &[u8]) -> Vec<Vec<u8>> {
    let _ = std::fs::remove_dir_all(dir.join("appendonlydir"));
    std::fs::create_dir_all(dir.join("appendonlydir")).unwrap();
    std::fs::write(dir.join("appendonlydir/appendonly.aof.manifest"), text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let log = dir.join("redis.log");
    let _ = std::fs::remove_file(&log);
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = child.try_wait().expect("wait").is_some();
        let text = std::fs::read(&log).unwrap_or_default();
        let ready = text.windows(21).any(|w| w == b"Ready to accept conne");
        if done || ready || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return log_texts(&text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_agrees_on_every_case() {
    if !redis_tool("redis-check-aof") || !redis_tool("redis-server") {
        return;
    }
    let guard = temp_dir("redis");
    let dir = guard.0.as_path();
    for (label, text, _) in cases() {
        let ours = Manifest::parse(&text);
        let texts = if looks_like_manifest_to_check_aof(&text) {
            let files: Vec<Vec<u8>> =
                ours.as_ref().map(|m| m.files_to_load().map(|f| f.name.clone()).collect()).unwrap_or_default();
            run_check_aof(dir, &text, &files)
        } else {
            run_server(dir, &text)
        };
        match (&ours, redis_verdict(&texts)) {
            (Ok(_), None) => {}
            (Err(e), Some(theirs)) => assert_eq!(lossy(&our_verdict(e)), lossy(&theirs), "{label}"),
            (ours, theirs) => panic!("{label}: ours {ours:?}, Redis {theirs:?}"),
        }
    }
}

#[test]
fn redis_reads_what_we_write() {
    if !redis_tool("redis-check-aof") {
        return;
    }
    let guard = temp_dir("written");
    let dir = guard.0.as_path();
    let names: [&[u8]; 5] =
        [b"appendonly.aof.3.base.rdb", b"a b.aof.1.incr.aof", b"it's.aof", b"q\"x\ty.aof", b"\xc3\xa9\x01.aof"];
    let m = Manifest {
        base: Some(AofInfo::new(names[0], 3, AofKind::Base)),
        history: vec![AofInfo::new(b"old.aof".as_slice(), 2, AofKind::History)],
        incrs: names[1..].iter().enumerate().map(|(i, n)| AofInfo::new(*n, i as u64 + 1, AofKind::Incr)).collect(),
    };
    let text = m.encode().unwrap();
    let files: Vec<Vec<u8>> = m.files_to_load().map(|f| f.name.clone()).collect();
    let texts = run_check_aof(dir, &text, &files);
    assert!(texts.iter().any(|t| t == b"All AOF files and manifest are valid"), "{:?}", lossy(&texts));
}
