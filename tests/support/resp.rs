//! A small RESP2/RESP3 client for byte-level tests: encode commands, parse replies into [`Value`] trees that
//! keep every distinction the wire makes (simple string vs bulk, RESP2 nil bulk vs nil array vs RESP3 null),
//! and a blocking connection with timeouts that can pipeline thousands of commands without deadlocking.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Socket read/write timeout of a [`RawConn`].
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One reply exactly as it came over the wire.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// RESP2 `$-1`.
    NilBulk,
    /// RESP2 `*-1`.
    NilArray,
    Array(Vec<Value>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `,` (kept as text so formatting differences show).
    Double(String),
    Bool(bool),
    BigNumber(String),
    Verbatim(String, Vec<u8>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Push(Vec<Value>),
}

impl Value {
    pub fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    pub fn simple(s: &str) -> Value {
        Value::Simple(s.to_string())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }

    /// The text of a simple string, bulk string or error.
    pub fn text(&self) -> String {
        match self {
            Value::Simple(s) | Value::Error(s) | Value::Double(s) | Value::BigNumber(s) => s.clone(),
            Value::Bulk(b) | Value::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
            Value::Int(i) => i.to_string(),
            other => panic!("not a string reply: {other:?}"),
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            Value::Int(i) => *i,
            other => panic!("not an integer reply: {other:?}"),
        }
    }

    pub fn array(&self) -> &[Value] {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => v,
            other => panic!("not an array reply: {other:?}"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "+{s}"),
            Value::Error(s) => write!(f, "-{s}"),
            Value::Int(i) => write!(f, ":{i}"),
            Value::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Value::NilBulk => write!(f, "$-1"),
            Value::NilArray => write!(f, "*-1"),
            Value::Array(v) => f.debug_list().entries(v).finish(),
            Value::Null => write!(f, "_"),
            Value::Double(d) => write!(f, ",{d}"),
            Value::Bool(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            Value::BigNumber(n) => write!(f, "({n}"),
            Value::Verbatim(fmt_, b) => write!(f, "={fmt_}:{:?}", String::from_utf8_lossy(b)),
            Value::Map(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            Value::Set(v) => write!(f, "~{v:?}"),
            Value::Push(v) => write!(f, ">{v:?}"),
        }
    }
}

/// Appends one command as a RESP multibulk.
pub fn encode_into<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One command as a RESP multibulk.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, args);
    out
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(format!("line without CRLF: {:?}", String::from_utf8_lossy(&line))));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| bad(format!("non-UTF-8 header line: {e}")))
}

fn parse_len(s: &str) -> io::Result<i64> {
    s.parse().map_err(|_| bad(format!("bad length {s:?}")))
}

fn read_blob(r: &mut impl BufRead, len: i64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize + 2];
    r.read_exact(&mut buf)?;
    if !buf.ends_with(b"\r\n") {
        return Err(bad("bulk without CRLF".into()));
    }
    buf.truncate(len as usize);
    Ok(buf)
}

fn read_many(r: &mut impl BufRead, n: i64) -> io::Result<Vec<Value>> {
    (0..n).map(|_| read_value(r)).collect()
}

/// Reads one reply (RESP2 or RESP3). A closed connection is `UnexpectedEof`.
pub fn read_value(r: &mut impl BufRead) -> io::Result<Value> {
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(1.min(line.len()));
    Ok(match kind {
        "+" => Value::Simple(rest.to_string()),
        "-" => Value::Error(rest.to_string()),
        ":" => Value::Int(parse_len(rest)?),
        "$" => match parse_len(rest)? {
            -1 => Value::NilBulk,
            n => Value::Bulk(read_blob(r, n)?),
        },
        "*" => match parse_len(rest)? {
            -1 => Value::NilArray,
            n => Value::Array(read_many(r, n)?),
        },
        "_" => Value::Null,
        "," => Value::Double(rest.to_string()),
        "#" => Value::Bool(rest == "t"),
        "(" => Value::BigNumber(rest.to_string()),
        "=" => {
            let blob = read_blob(r, parse_len(rest)?)?;
            let fmt_ = String::from_utf8_lossy(&blob[..3.min(blob.len())]).into_owned();
            Value::Verbatim(fmt_, blob[4.min(blob.len())..].to_vec())
        }
        "%" => {
            let n = parse_len(rest)?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let k = read_value(r)?;
                pairs.push((k, read_value(r)?));
            }
            Value::Map(pairs)
        }
        "~" => Value::Set(read_many(r, parse_len(rest)?)?),
        ">" => Value::Push(read_many(r, parse_len(rest)?)?),
        _ => return Err(bad(format!("unknown reply type in {line:?}"))),
    })
}

/// A blocking TCP connection speaking raw RESP, with [`IO_TIMEOUT`] on every read and write.
pub struct RawConn {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl RawConn {
    /// Connects to 127.0.0.1:`port`; panics when that fails within 5 seconds.
    pub fn connect(port: u16) -> RawConn {
        Self::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    pub fn try_connect(port: u16) -> io::Result<RawConn> {
        let addr = ([127, 0, 0, 1], port).into();
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(RawConn { reader: BufReader::new(stream.try_clone()?), stream })
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).expect("set_read_timeout");
    }

    /// Sends one command and reads its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        self.send(&encode(args));
        self.read()
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Writes raw bytes, reporting failure instead of panicking (the server may have closed the socket).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply; panics on a closed connection, a timeout or garbage.
    pub fn read(&mut self) -> Value {
        self.try_read().expect("read reply")
    }

    pub fn try_read(&mut self) -> io::Result<Value> {
        read_value(&mut self.reader)
    }

    /// Reads raw bytes until `n` bytes arrived or the connection closed.
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = (&mut self.reader).take(n as u64).read_to_end(&mut out);
        out
    }

    /// True when the server closes the connection (EOF or reset) within the read timeout; any reply bytes
    /// that arrive first are returned as an error.
    pub fn is_closed(&mut self) -> Result<(), String> {
        let mut buf = [0u8; 256];
        match self.reader.read(&mut buf) {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("expected close, got {:?}", String::from_utf8_lossy(&buf[..n]))),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                Err("expected close, but the read timed out".to_string())
            }
            Err(e) => Err(format!("expected close, got error {e}")),
        }
    }

    /// Writes `bytes` from a helper thread while reading `n` replies here, so a long pipeline cannot deadlock
    /// on full socket buffers.
    pub fn pipeline(&mut self, bytes: Vec<u8>, n: usize) -> Vec<Value> {
        let mut writer = self.stream.try_clone().expect("clone stream");
        let handle = std::thread::spawn(move || writer.write_all(&bytes));
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            match self.try_read() {
                Ok(v) => out.push(v),
                Err(e) => panic!("pipeline: reading reply {i} of {n}: {e}"),
            }
        }
        handle.join().expect("writer thread").expect("pipeline write");
        out
    }
}
