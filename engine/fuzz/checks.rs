//! The properties each fuzz target checks, one function per target. Shared by the libFuzzer binaries
//! (`fuzz_targets/*.rs`, nightly) and by the engine's stable regression test
//! (`engine/tests/fuzz_regressions.rs`), which replays the checked-in corpus and every saved crash through
//! the same functions, so a crash found once stays a test case.
//!
//! Only `engine` and `bytes` are used here, so the file compiles in both places.

use bytes::{Bytes, BytesMut};
use engine::aof::check::{check_reader, CheckOptions, Verdict};
use engine::aof::load::{load_one, LoadError, LoadFile, LoadOptions, ReplayError, Replayer};
use engine::aof::manifest::{AofKind, Manifest};
use engine::aof::stream::{AofReader, Event, RdbSniff, ReadError};
use engine::aof::RecoveryPolicy;
use engine::config::EngineConfig;
use engine::keyspace::Keyspace;
use engine::rdb::{self, ShardTarget};
use engine::resp::{parse_frame, parse_frame_bytes, ParserLimits, ProtocolError, RequestParser};
use engine::types::Value;
use std::io::Read;

/// One target's checks.
pub type Check = fn(&[u8]);

/// The targets, by the name of their fuzz binary and corpus directory.
pub const TARGETS: &[(&str, Check)] =
    &[("rdb_load", rdb_load), ("resp_request", resp_request), ("aof_stream", aof_stream), ("manifest", manifest)];

/// A small deterministic generator for split points, seeded from the input so a crash replays exactly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------------------
// rdb_load

/// The RDB loader on arbitrary bytes: no panic, no huge allocation; the parallel loader agrees with the
/// sequential one (same keys, or the same error at the same offset). The same bytes also go through
/// RESTORE's payload check and value decoding.
pub fn rdb_load(data: &[u8]) {
    // Without the CRC check almost any change would be refused before decoding.
    let opts = rdb::LoadOptions { verify_checksum: false, ..rdb::LoadOptions::default() };
    let mut seq = Keyspace::new(opts.cfg.databases);
    let want = rdb::load(data, &opts, &mut seq);

    let mut shards = [Keyspace::new(opts.cfg.databases), Keyspace::new(opts.cfg.databases)];
    let mut targets: Vec<&mut dyn ShardTarget> = shards.iter_mut().map(|k| k as &mut dyn ShardTarget).collect();
    let route = |key: &[u8]| key.first().map_or(0, |&b| usize::from(b & 1));
    let got = rdb::load_sharded(data, &opts, &route, &mut targets, &|_| {});
    match (&want, &got) {
        (Ok(w), Ok(g)) => {
            assert_eq!(
                (w.keys_loaded, w.expires_loaded, w.expired_dropped, w.empty_skipped, &w.dbs),
                (g.keys_loaded, g.expires_loaded, g.expired_dropped, g.empty_skipped, &g.dbs)
            );
            let held: usize = shards.iter().flat_map(|s| s.dbs.iter()).map(|d| d.len()).sum();
            assert_eq!(held as u64, w.keys_loaded);
            for (db, d) in seq.dbs.iter().enumerate() {
                for e in d.table.iter() {
                    let found = shards[route(e.key())].dbs[db].get(e.key()).expect("every key in its shard");
                    assert!(found.value == e.value && found.expire_at() == e.expire_at());
                    round_trips(&e.value);
                }
            }
        }
        (Err(w), Err(g)) => assert_eq!((w.code(), w.offset(), w.to_string()), (g.code(), g.offset(), g.to_string())),
        _ => panic!("sequential {:?} vs parallel {:?}", want.as_ref().err(), got.as_ref().err()),
    }

    // RESTORE: the footer check, then the value decoder on the type byte and the rest.
    let _ = rdb::verify_dump_payload(data);
    if let Some((&ty, body)) = data.split_first() {
        let _ = rdb::decode_value(ty, body, &EngineConfig::default());
    }
}

/// What a load kept (listpacks and nodes as the file had them, among others) reads the same both ways, and
/// saves and loads back to the same value.
fn round_trips(v: &Value) {
    if let Value::ZSet(z) = v {
        let n = z.len();
        let mut back: Vec<(&[u8], f64)> = z.range(n.saturating_sub(1), n, true).collect();
        back.reverse();
        assert!(z.iter().eq(back), "a zset reads the same backwards");
    }
    let payload = rdb::dump_payload(v, &rdb::WriteOptions::default());
    let (ty, body) = rdb::verify_dump_payload(&payload).expect("Moon's payload");
    let again = rdb::decode_value(ty, body, &EngineConfig::default()).expect("Moon's payload decodes");
    assert!(again.as_ref() == Some(v), "a value saved and loaded again is the same");
}

// ---------------------------------------------------------------------------------------------------------
// resp_request

/// What a connection's parser made of a byte stream: the commands, the error that closed it (if any), and
/// the bytes left waiting for more.
#[derive(Debug, PartialEq)]
struct Parsed {
    commands: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
    left: Vec<u8>,
}

/// Feeds `chunks` to one parser as reads would arrive, parsing after each read as the server does.
fn parse_stream<'a>(limits: &ParserLimits, chunks: impl Iterator<Item = &'a [u8]>) -> Parsed {
    let mut parser = RequestParser::new(limits.clone());
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "a parsed command has at least one argument");
                    commands.push(args);
                }
                Ok(None) => break,
                Err(error) => return Parsed { commands, error: Some(error), left: Vec::new() },
            }
        }
    }
    Parsed { commands, error: None, left: buf.to_vec() }
}

/// Errors that depend on how much of a line had arrived when the parser gave up.
fn is_size_error(e: &ProtocolError) -> bool {
    matches!(
        e,
        ProtocolError::TooBigInlineRequest
            | ProtocolError::TooBigMbulkCountString
            | ProtocolError::TooBigBulkCountString
    )
}

/// The request parser and the reply/AOF frame decoder on arbitrary bytes. The first byte picks the limits
/// (small ones reach the size errors quickly; `require_auth`) and seeds the read sizes.
///
/// Properties: no panic; the commands and the error are the same whether the bytes arrive at once or in
/// random pieces (except that a size limit may trip earlier on a partial line, leaving a prefix of the
/// commands); every command re-encoded as a multibulk parses back to itself; the frame decoder's two entry
/// points agree and every proper prefix of a decoded frame is "incomplete".
pub fn resp_request(data: &[u8]) {
    let Some((&cfg, body)) = data.split_first() else { return };
    let mut limits = ParserLimits::default();
    if cfg & 1 != 0 {
        limits.max_bulk_len = 40;
        limits.max_multibulk_len = 12;
        limits.max_inline_len = 48;
    }
    limits.require_auth = cfg & 2 != 0;

    let whole = parse_stream(&limits, std::iter::once(body));
    let mut rng = Rng::new(u64::from(cfg) << 32 | body.len() as u64);
    let mut pieces = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = 1 + rng.below(if cfg & 4 != 0 { 4 } else { 64 });
        let (head, tail) = rest.split_at(n.min(rest.len()));
        pieces.push(head);
        rest = tail;
    }
    let split = parse_stream(&limits, pieces.into_iter());
    match &split.error {
        Some(e) if is_size_error(e) => {
            assert!(
                whole.commands.starts_with(&split.commands),
                "split reads gave commands that one read did not: {split:?} vs {whole:?}"
            );
        }
        _ => assert_eq!(whole, split, "one read and split reads disagree"),
    }

    let mut encoded = Vec::new();
    for args in &whole.commands {
        encoded.clear();
        engine::aof::encode_command(&mut encoded, args);
        let again = parse_stream(&ParserLimits::default(), std::iter::once(&encoded[..]));
        assert_eq!(again.commands, std::slice::from_ref(args), "re-encoded command parses back");
        assert!(again.error.is_none() && again.left.is_empty());
    }

    let copied = parse_frame(body);
    let shared = parse_frame_bytes(&Bytes::copy_from_slice(body));
    assert_eq!(copied, shared, "parse_frame and parse_frame_bytes disagree");
    if let Ok(Some((frame, used))) = copied {
        assert!(used > 0 && used <= body.len());
        assert_eq!(parse_frame(&body[..used]), Ok(Some((frame, used))), "a frame needs nothing after it");
        for cut in [used - 1, used / 2] {
            assert_eq!(parse_frame(&body[..cut]), Ok(None), "a proper prefix of a frame is incomplete (cut {cut})");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// aof_stream

/// A source that returns a few bytes per read, sized by `rng`.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    rng: Rng,
}

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = (1 + self.rng.below(97)).min(out.len()).min(self.data.len() - self.pos);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Everything a reader reported, in a comparable form.
#[derive(Debug, PartialEq)]
struct Scan {
    events: Vec<String>,
    end: String,
    ok_up_to: u64,
    lines: u64,
    loader_valid_up_to: u64,
    in_multi: bool,
}

fn scan(mut r: AofReader) -> Scan {
    let mut events = Vec::new();
    let end = loop {
        match r.next_event() {
            Ok(None) => break "end".to_string(),
            Ok(Some(Event::Command(c))) => {
                assert!(c.offset < c.end, "a command has bytes");
                events.push(format!("cmd {} {} {} {:?} {:?}", c.offset, c.end, c.argc, c.kind, c.argv));
            }
            Ok(Some(Event::Annotation(a))) => events.push(format!("ann {} {:?}", a.offset, a.line)),
            Err(ReadError::Damage(d)) => break format!("damage {d:?}"),
            Err(ReadError::Rdb(e)) => break format!("rdb {} {:?} {e}", e.code(), e.offset()),
            Err(e) => panic!("unexpected error from memory: {e}"),
        }
    };
    Scan {
        events,
        end,
        ok_up_to: r.ok_up_to(),
        lines: r.lines(),
        loader_valid_up_to: r.loader_valid_up_to(),
        in_multi: r.in_multi(),
    }
}

fn check(data: &[u8], sniff: RdbSniff) -> Verdict {
    let opts = CheckOptions { sniff, ..CheckOptions::default() };
    let v = check_reader(AofReader::from_bytes(Bytes::copy_from_slice(data)), &opts).expect("no I/O from memory");
    assert_eq!(v.size, data.len() as u64);
    assert!(v.ok_up_to <= v.size && v.loader_valid_up_to <= v.size, "offsets within the file: {v:?}");
    assert_eq!(v.is_valid(), v.damage.is_none() && v.rdb_error.is_none(), "valid means no damage: {v:?}");
    v
}

/// Counts what the loader hands over, without running it (the executor is not under test here).
struct Recorder {
    commands: u64,
    ks: Keyspace,
}

impl Replayer for Recorder {
    fn start_file(&mut self, _file: &LoadFile) {}
    fn rdb_target(&mut self) -> &mut dyn rdb::LoadTarget {
        &mut self.ks
    }
    fn command(&mut self, _argv: &[Bytes]) -> Result<(), ReplayError> {
        self.commands += 1;
        Ok(())
    }
    fn transaction(&mut self, commands: &[Vec<Bytes>]) -> Result<(), ReplayError> {
        self.commands += commands.len() as u64;
        Ok(())
    }
}

fn load(data: &[u8], policy: RecoveryPolicy) -> Result<engine::aof::load::FileReport, LoadError> {
    let file = LoadFile { path: "fuzz.aof".into(), name: "fuzz.aof".into(), kind: AofKind::Incr };
    let opts = LoadOptions::new(policy, EngineConfig::default());
    let mut rec = Recorder { commands: 0, ks: Keyspace::new(16) };
    load_one(&file, AofReader::from_bytes(Bytes::copy_from_slice(data)), true, &opts, &mut rec)
}

/// The AOF reader, checker and loader on arbitrary bytes (the first byte sets the read sizes).
///
/// Properties: no panic; reading the file whole or from a source that returns a few bytes at a time, with
/// tiny chunks, gives the same items, the same damage at the same offsets and the same counters; the
/// checker's offsets stay within the file; a torn tail the loader drops leaves a file that loads strictly;
/// a file without damage stays valid or torn (never a format error) when cut anywhere, as a crash cuts it.
pub fn aof_stream(data: &[u8]) {
    let Some((&cfg, body)) = data.split_first() else { return };
    let whole = scan(AofReader::from_bytes(Bytes::copy_from_slice(body)));
    let src = Trickle { data: body.to_vec(), pos: 0, rng: Rng::new(u64::from(cfg)) };
    let hint = (cfg & 0x80 != 0).then_some(body.len() as u64);
    let pieces = scan(AofReader::from_reader(src, hint).chunk_size(1 + usize::from(cfg & 0x3f)));
    assert_eq!(whole, pieces, "whole and chunked reads disagree");

    let auto = check(body, RdbSniff::Auto);
    check(body, RdbSniff::Never);
    let ts = CheckOptions { truncate_to_timestamp: Some(i64::from(cfg) * 1000), ..CheckOptions::default() };
    let cut = check_reader(AofReader::from_bytes(Bytes::copy_from_slice(body)), &ts).expect("no I/O from memory");
    if let Some(engine::aof::check::TimestampCut::At(at) | engine::aof::check::TimestampCut::Invalid(at)) =
        cut.timestamp
    {
        assert!(at < body.len() as u64);
    }

    match load(body, RecoveryPolicy::TruncateTornTail) {
        Ok(report) => match report.torn {
            Some(torn) => {
                assert!(auto.torn_only(), "the loader dropped a tail the checker does not call torn: {auto:?}");
                assert_eq!(torn.offset, auto.loader_valid_up_to);
                let kept = &body[..torn.offset as usize];
                let again = load(kept, RecoveryPolicy::Strict);
                assert!(again.as_ref().is_ok_and(|r| r.torn.is_none()), "truncated file loads: {again:?}");
            }
            None => assert!(auto.is_valid(), "the loader accepted a file the checker refuses: {auto:?}"),
        },
        Err(LoadError::Torn { .. }) => panic!("a torn tail of the last file is dropped under TruncateTornTail"),
        Err(_) => {}
    }

    // A crash leaves a prefix of a file as Moon or Redis writes it: every cut is valid or torn, never a format
    // error. (Files with padded numbers, which nothing writes, may call a cut a format error: refusing is
    // the safe side.)
    if auto.is_valid() && auto.rdb.is_none() && !body.is_empty() && is_canonical(body) {
        let mut rng = Rng::new(body.len() as u64);
        for _ in 0..4 {
            let at = rng.below(body.len());
            let v = check(&body[..at], RdbSniff::Auto);
            assert!(v.is_valid() || v.torn_only(), "cut at {at} of a valid file is not torn: {v:?}");
            assert!(v.loader_valid_up_to <= at as u64);
        }
    }
}

/// Whether `body` is exactly what the writer produces for its items: canonical multibulks and annotations.
fn is_canonical(body: &[u8]) -> bool {
    let mut r = AofReader::from_bytes(Bytes::copy_from_slice(body));
    let mut out = Vec::with_capacity(body.len());
    loop {
        match r.next_event() {
            Ok(None) => return out == body,
            Ok(Some(Event::Command(c))) => engine::aof::encode_command(&mut out, &c.argv),
            Ok(Some(Event::Annotation(a))) => out.extend_from_slice(&a.line),
            Err(_) => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// manifest

/// The manifest parser on arbitrary bytes. Properties: no panic; what it accepts has at most one base, incr
/// seqs strictly increasing, file names without `/` or `\`; writing an accepted manifest and parsing it
/// again gives the same manifest, and writing that gives the same bytes.
pub fn manifest(data: &[u8]) {
    let Ok(m) = Manifest::parse(data) else { return };
    if m.files().next().is_none() {
        // Only comments: Redis accepts it, but nothing writes it (an empty file would be refused).
        return;
    }
    assert!(m.incrs.windows(2).all(|w| w[0].seq < w[1].seq), "incr seqs increase: {m:?}");
    assert!(m.files().all(|f| !f.name.contains(&b'/') && !f.name.contains(&b'\\') && f.seq > 0));
    assert!(m.base.as_ref().is_none_or(|b| b.kind == AofKind::Base));
    let Ok(bytes) = m.encode() else { return };
    let again = Manifest::parse(&bytes).unwrap_or_else(|e| panic!("our own manifest is refused: {e}: {bytes:?}"));
    assert_eq!(again, m, "parse(encode(m)) != m for {bytes:?}");
    assert_eq!(again.encode().expect("encodes again"), bytes);
}
