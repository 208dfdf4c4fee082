//! Tests for the request parser: streaming equivalence, Redis's inline
//! splitting, every protocol error, and bounded allocation.

use super::*;
use crate::util::parse_i64 as string2ll;
use proptest::prelude::*;

/// What feeding a byte stream produced: the commands, the error that ended
/// it (if any) and the bytes left unconsumed (none recorded after an error).
#[derive(Debug, PartialEq)]
struct Outcome {
    commands: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
    leftover: Vec<u8>,
}

/// Feeds `input` in chunks of the given sizes (cycled; the rest in one go
/// when `sizes` is empty), draining all complete commands after each chunk.
fn feed(input: &[u8], limits: ParserLimits, sizes: &[usize]) -> Outcome {
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    let mut rest = input;
    let mut i = 0;
    loop {
        let n = if sizes.is_empty() { rest.len() } else { sizes[i % sizes.len()].clamp(1, rest.len().max(1)) };
        i += 1;
        let n = n.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty());
                    commands.push(args);
                }
                Ok(None) => break,
                Err(e) => {
                    // What is buffered at an error depends on the chunking;
                    // the connection is closed anyway.
                    return Outcome { commands, error: Some(e), leftover: Vec::new() };
                }
            }
        }
        if rest.is_empty() {
            return Outcome { commands, error: None, leftover: buf.to_vec() };
        }
    }
}

fn whole(input: &[u8]) -> Outcome {
    feed(input, ParserLimits::default(), &[])
}

fn bytewise(input: &[u8]) -> Outcome {
    feed(input, ParserLimits::default(), &[1])
}

fn cmd(args: &[&[u8]]) -> Vec<Bytes> {
    args.iter().map(|a| Bytes::copy_from_slice(a)).collect()
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses `input` whole and byte by byte, checks both agree, returns one.
fn both(input: &[u8]) -> Outcome {
    let w = whole(input);
    assert_eq!(w, bytewise(input), "bytewise differs for {input:?}");
    w
}

fn commands(input: &[u8]) -> Vec<Vec<Bytes>> {
    let out = both(input);
    assert_eq!(out.error, None, "{input:?}");
    assert!(out.leftover.is_empty(), "{input:?}");
    out.commands
}

fn error(input: &[u8]) -> ProtocolError {
    both(input).error.expect("expected a protocol error")
}

#[test]
fn multibulk_and_pipelining() {
    assert_eq!(commands(b"*1\r\n$4\r\nPING\r\n"), vec![cmd(&[b"PING"])]);
    let input = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nPING\r\n\
                  *1\r\n$6\r\na\r\n\0bc\r\n";
    assert_eq!(
        commands(input),
        vec![cmd(&[b"GET", b"a"]), cmd(&[b"SET", b"k", b""]), cmd(&[b"PING"]), cmd(&[b"a\r\n\0bc"]),]
    );
}

#[test]
fn partial_command_stays_in_buffer() {
    let out = both(b"*2\r\n$3\r\nGET\r\n$1\r\n");
    assert!(out.commands.is_empty() && out.error.is_none());
    assert_eq!(out.leftover, b"*2\r\n$3\r\nGET\r\n$1\r\n");
    let out = both(b"PING\r\nECHO x");
    assert_eq!(out.commands, vec![cmd(&[b"PING"])]);
    assert_eq!(out.leftover, b"ECHO x");
}

#[test]
fn empty_commands_are_skipped() {
    assert_eq!(
        commands(b"\r\n\n   \r\n\t\x0b\x0c\nPING\n*0\r\n*-1\r\n*-7\r\nECHO\r\n"),
        vec![cmd(&[b"PING"]), cmd(&[b"ECHO"])]
    );
    assert!(commands(b"\r\n*0\r\n").is_empty());
}

#[test]
fn inline_splitting_like_sdssplitargs() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (b"PING\r\n", &[b"PING"]),
        (b"PING\n", &[b"PING"]),
        (b"  set   k  v \r\n", &[b"set", b"k", b"v"]),
        (b"SET k \"a b\\n\" 'c\\'d'\r\n", &[b"SET", b"k", b"a b\n", b"c'd"]),
        (b"x \"\\x41\\x4g\\r\\t\\b\\a\\\\\\\"\\q\"\n", &[b"x", b"Ax4g\r\t\x08\x07\\\"q"]),
        (b"x 'a\\nb' 'q\\'s'\n", &[b"x", b"a\\nb", b"q's"]),
        (b"a\"b c\" d\n", &[b"ab c", b"d"]),
        (b"\"\" ''\n", &[b"", b""]),
        (b"a\x0bb\n", &[b"a\x0bb"]),
        (b"GET a\0b c\r\n", &[b"GET", b"a"]),
        (b"k \"v\"\x0bz\n", &[b"k", b"v", b"z"]),
        (b"a\rb\r\n", &[b"a", b"b"]),
    ];
    for (input, want) in cases {
        assert_eq!(commands(input), vec![cmd(want)], "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn unbalanced_quotes() {
    for input in [
        &b"SET \"a\r\n"[..],
        b"SET \"a\"b\r\n",
        b"SET 'a\r\n",
        b"'a'b\n",
        b"\"a\\\"\n",
        b"\"abc\0\"\n",
        b"x '\\\\'\n",
        b"a\"b c\"d\n",
    ] {
        assert_eq!(error(input), ProtocolError::UnbalancedQuotes, "{input:?}");
    }
}

#[test]
fn length_errors() {
    use ProtocolError::*;
    let cases: &[(&[u8], ProtocolError)] = &[
        (b"*abc\r\n", InvalidMultibulkLength),
        (b"*\r\n", InvalidMultibulkLength),
        (b"*01\r\n", InvalidMultibulkLength),
        (b"*+1\r\n", InvalidMultibulkLength),
        (b"* 1\r\n", InvalidMultibulkLength),
        (b"*-\r\n", InvalidMultibulkLength),
        (b"*2147483648\r\n", InvalidMultibulkLength),
        (b"*99999999999999999999\r\n", InvalidMultibulkLength),
        (b"*1\r\n$-1\r\n", InvalidBulkLength),
        (b"*1\r\n$\r\n", InvalidBulkLength),
        (b"*1\r\n$x\r\n", InvalidBulkLength),
        (b"*1\r\n$536870913\r\n", InvalidBulkLength),
        (b"*1\r\n$99999999999999999999\r\n", InvalidBulkLength),
        (b"*1\r\nfoo\r\n", ExpectedDollar(b'f')),
        (b"*1\r\n\r\n", ExpectedDollar(b'\r')),
        (b"*2\r\n$1\r\na\r\n:1\r\n", ExpectedDollar(b':')),
    ];
    for (input, want) in cases {
        assert_eq!(error(input), *want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn error_texts_are_redis_texts() {
    use ProtocolError::*;
    let cases = [
        (InvalidMultibulkLength, "Protocol error: invalid multibulk length"),
        (InvalidBulkLength, "Protocol error: invalid bulk length"),
        (ExpectedDollar(b'f'), "Protocol error: expected '$', got 'f'"),
        (ExpectedDollar(b'\r'), "Protocol error: expected '$', got ' '"),
        (TooBigInlineRequest, "Protocol error: too big inline request"),
        (TooBigMbulkCountString, "Protocol error: too big mbulk count string"),
        (TooBigBulkCountString, "Protocol error: too big bulk count string"),
        (UnbalancedQuotes, "Protocol error: unbalanced quotes in request"),
        (UnauthenticatedMultibulkLength, "Protocol error: unauthenticated multibulk length"),
        (UnauthenticatedBulkLength, "Protocol error: unauthenticated bulk length"),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
        assert_eq!(err.to_reply(), Reply::Error(format!("ERR {text}")));
    }
}

#[test]
fn too_big_lines() {
    let limit = ParserLimits::default().max_inline_len;
    let mut line = vec![b'a'; limit];
    assert_eq!(whole(&line).error, None);
    line.push(b'a');
    assert_eq!(whole(&line).error, Some(ProtocolError::TooBigInlineRequest));
    // A terminated line is accepted whatever its length, as in Redis.
    line.push(b'\n');
    assert_eq!(whole(&line).commands.len(), 1);

    let mut mbulk = vec![b'*'];
    mbulk.resize(limit + 1, b'1');
    assert_eq!(whole(&mbulk).error, Some(ProtocolError::TooBigMbulkCountString));
    assert_eq!(whole(&mbulk[..limit]).error, None);

    let mut bulk = b"*1\r\n$".to_vec();
    bulk.resize(4 + limit + 1, b'1');
    assert_eq!(whole(&bulk).error, Some(ProtocolError::TooBigBulkCountString));
    assert_eq!(whole(&bulk[..4 + limit]).error, None);

    // Redis looks at the `$` only once the line is complete.
    let mut no_dollar = b"*1\r\n".to_vec();
    no_dollar.resize(4 + limit + 1, b'x');
    assert_eq!(whole(&no_dollar).error, Some(ProtocolError::TooBigBulkCountString));
}

#[test]
fn unauthenticated_limits() {
    let limits = ParserLimits { require_auth: true, ..ParserLimits::default() };
    let out = feed(b"*11\r\n", limits.clone(), &[]);
    assert_eq!(out.error, Some(ProtocolError::UnauthenticatedMultibulkLength));
    let out = feed(b"*1\r\n$16385\r\n", limits.clone(), &[]);
    assert_eq!(out.error, Some(ProtocolError::UnauthenticatedBulkLength));
    let mut ok = b"*10\r\n".to_vec();
    for _ in 0..10 {
        ok.extend_from_slice(b"$0\r\n\r\n");
    }
    assert_eq!(feed(&ok, limits.clone(), &[]).commands.len(), 1);
    let big = multibulk(&[vec![b'x'; 16384]]);
    assert_eq!(feed(&big, limits, &[]).commands.len(), 1);
}

#[test]
fn huge_counts_do_not_allocate() {
    let mut parser = RequestParser::new(ParserLimits::default());
    let mut buf = BytesMut::from(&b"*2147483647\r\n$1\r\na\r\n"[..]);
    assert_eq!(parser.parse(&mut buf), Ok(None));
    assert!(parser.args.capacity() <= MAX_PREALLOC_ARGS);
    assert!(buf.capacity() < 4096);

    let mut buf = BytesMut::from(&b"*1\r\n$536870913\r\n"[..]);
    let mut parser = RequestParser::new(ParserLimits::default());
    assert_eq!(parser.parse(&mut buf), Err(ProtocolError::InvalidBulkLength));
    assert!(buf.capacity() < 4096);
}

#[test]
fn big_bulk_is_reserved_once_and_sliced_without_copy() {
    const LEN: usize = 1 << 20;
    let limits = ParserLimits { max_bulk_len: LEN, ..ParserLimits::default() };
    let mut parser = RequestParser::new(limits);
    let header = format!("*2\r\n$3\r\nSET\r\n${LEN}\r\n");
    let mut buf = BytesMut::from(header.as_bytes());
    buf.extend_from_slice(b"0123456789");
    assert_eq!(parser.parse(&mut buf), Ok(None));
    assert_eq!(parser.wanted(), LEN + 2 - 10);
    assert!(buf.capacity() >= header.len() + LEN + 2);

    let base = buf.as_ptr();
    let chunk = vec![b'z'; 4096];
    while parser.wanted() > 0 {
        let n = parser.wanted().min(chunk.len());
        buf.extend_from_slice(&chunk[..n]);
        assert_eq!(buf.as_ptr(), base, "buffer was reallocated");
        if n == parser.wanted() {
            break;
        }
        assert_eq!(parser.parse(&mut buf), Ok(None));
    }
    let args = parser.parse(&mut buf).unwrap().unwrap();
    assert_eq!(args.len(), 2);
    assert_eq!(args[1].len(), LEN);
    assert_eq!(&args[1][..10], b"0123456789");
    // The argument is a view of the original buffer, not a copy.
    assert_eq!(args[1].as_ptr(), base.wrapping_add(header.len()));
    assert_eq!(parser.wanted(), 0);
    assert!(buf.is_empty());

    // A bulk over the configured limit is refused.
    let mut buf = BytesMut::from(format!("*1\r\n${}\r\n", LEN + 1).as_bytes());
    assert_eq!(parser.parse(&mut buf), Err(ProtocolError::InvalidBulkLength));
}

#[test]
fn trailing_bytes_after_bulk_are_not_checked() {
    // Redis skips two bytes after the data whatever they are; so do we.
    assert_eq!(commands(b"*1\r\n$1\r\naXY"), vec![cmd(&[b"a"])]);
    // And it only needs some byte after the CR of a count line.
    assert_eq!(commands(b"*1\rX$1\rYb\r\n"), vec![cmd(&[b"b"])]);
}

#[test]
fn survives_caller_consuming_the_buffer() {
    let mut parser = RequestParser::new(ParserLimits::default());
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\n"[..]);
    assert_eq!(parser.parse(&mut buf), Ok(None));
    buf.clear();
    assert_eq!(parser.parse(&mut buf), Ok(None));
    buf.extend_from_slice(b"PING\r\n");
    assert_eq!(parser.parse(&mut buf), Ok(Some(cmd(&[b"PING"]))));
}

#[test]
fn string2ll_matches_redis() {
    let ok: &[(&[u8], i64)] =
        &[(b"0", 0), (b"1", 1), (b"-1", -1), (b"9223372036854775807", i64::MAX), (b"-9223372036854775808", i64::MIN)];
    for (s, v) in ok {
        assert_eq!(string2ll(s), Some(*v));
    }
    for s in [
        &b""[..],
        b"-",
        b"-0",
        b"00",
        b"01",
        b"+1",
        b" 1",
        b"1 ",
        b"1a",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"18446744073709551616",
        b"000000000000000000001",
    ] {
        assert_eq!(string2ll(s), None, "{s:?}");
    }
}

#[test]
fn corpus_is_split_invariant() {
    let corpus: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nGET k\r\n\r\n*0\r\n*1\r\n$4\r\nPING\r\n",
        b"ECHO \"a\\x00b\" 'c d'\nPING\r\n*1\r\n$2\r\nab",
        b"*1\r\n$3\r\nabc\r\n*1\r\n$x\r\n",
        b"PING\r\n\"unbalanced\r\n",
        b"*2\r\n$3\r\nGET\r\n+oops\r\n",
    ];
    for input in corpus {
        for size in 1..8 {
            assert_eq!(feed(input, ParserLimits::default(), &[size]), whole(input), "chunk {size} of {input:?}");
        }
    }
}

fn arb_command() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..5).prop_map(|args| multibulk(&args)),
        prop::collection::vec("[a-zA-Z0-9]{1,6}", 1..4).prop_map(|w| {
            let mut line = w.join(" ").into_bytes();
            line.extend_from_slice(b"\r\n");
            line
        }),
        Just(b"\r\n".to_vec()),
        Just(b"*0\r\n".to_vec()),
        Just(b"\"quoted \\x41\" 'x'\n".to_vec()),
    ]
}

proptest! {
    #[test]
    fn random_splits_equal_whole(
        cmds in prop::collection::vec(arb_command(), 1..6),
        garbage in prop::collection::vec(any::<u8>(), 0..16),
        sizes in prop::collection::vec(1usize..24, 1..6),
    ) {
        let mut input = cmds.concat();
        input.extend_from_slice(&garbage);
        let w = whole(&input);
        prop_assert_eq!(&feed(&input, ParserLimits::default(), &sizes), &w);
        prop_assert!(w.commands.len() >= cmds.iter().filter(|c| c[0] != b'\r' && c[..2] != *b"*0").count());
    }
}
