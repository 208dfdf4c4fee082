//! Reply encoding: writes a [`Reply`] as RESP2 or RESP3 bytes, byte for byte
//! what Redis 7.0 sends, and formats doubles the way Redis 7.0 does
//! (`printf("%.17g")`).

use bytes::BufMut;

use super::{Protocol, Reply};

const CRLF: &[u8] = b"\r\n";

/// Appends the encoding of `reply` in protocol `proto` to `out` (a `Vec<u8>`
/// or a `BytesMut`).
///
/// RESP3-only types are downgraded for RESP2 as Redis does: maps become flat
/// arrays, sets and pushes arrays, booleans `:1`/`:0`, doubles, big numbers
/// and verbatim strings bulk strings. CR and LF inside simple strings and
/// errors are replaced by spaces so a reply can never break the framing.
pub fn encode<B: BufMut>(reply: &Reply, proto: Protocol, out: &mut B) {
    let resp3 = proto == Protocol::Resp3;
    match reply {
        Reply::Simple(s) => put_line(out, b'+', s.as_bytes()),
        Reply::Error(s) => put_line(out, b'-', s.as_bytes()),
        Reply::Int(n) => put_int_line(out, b':', *n),
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
        Reply::Nil => out.put_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NilArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => put_aggregate(out, b'*', items, proto),
        Reply::Double(d) => {
            let text = format_double_g17(*d);
            if resp3 {
                out.put_u8(b',');
                out.put_slice(text.as_bytes());
                out.put_slice(CRLF);
            } else {
                put_bulk(out, text.as_bytes());
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                put_len_line(out, b'%', pairs.len());
            } else {
                put_len_line(out, b'*', pairs.len().saturating_mul(2));
            }
            for (k, v) in pairs {
                encode(k, proto, out);
                encode(v, proto, out);
            }
        }
        Reply::Set(items) => put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Reply::Push(items) => put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Reply::Verbatim(format, data) => {
            if resp3 {
                // The format is always three bytes on the wire; anything else
                // would make the `fmt:` prefix unparseable, so fall back.
                let format = if format.len() == 3 { format.as_bytes() } else { b"txt" };
                put_len_line(out, b'=', data.len() + 4);
                out.put_slice(format);
                out.put_u8(b':');
                out.put_slice(data);
                out.put_slice(CRLF);
            } else {
                put_bulk(out, data);
            }
        }
        Reply::BigNumber(s) if resp3 => put_line(out, b'(', s.as_bytes()),
        Reply::BigNumber(s) => put_bulk(out, s.as_bytes()),
    }
}

fn put_aggregate<B: BufMut>(out: &mut B, kind: u8, items: &[Reply], proto: Protocol) {
    put_len_line(out, kind, items.len());
    for item in items {
        encode(item, proto, out);
    }
}

fn put_bulk<B: BufMut>(out: &mut B, data: &[u8]) {
    put_len_line(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(CRLF);
}

/// `kind` + text + CRLF, with CR/LF in the text turned into spaces.
fn put_line<B: BufMut>(out: &mut B, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    let mut rest = text;
    while let Some(i) = rest.iter().position(|&c| c == b'\r' || c == b'\n') {
        out.put_slice(&rest[..i]);
        out.put_u8(b' ');
        rest = &rest[i + 1..];
    }
    out.put_slice(rest);
    out.put_slice(CRLF);
}

fn put_len_line<B: BufMut>(out: &mut B, kind: u8, len: usize) {
    out.put_u8(kind);
    let mut buf = [0u8; 20];
    out.put_slice(format_u64(len as u64, &mut buf));
    out.put_slice(CRLF);
}

fn put_int_line<B: BufMut>(out: &mut B, kind: u8, n: i64) {
    out.put_u8(kind);
    if n < 0 {
        out.put_u8(b'-');
    }
    let mut buf = [0u8; 20];
    out.put_slice(format_u64(n.unsigned_abs(), &mut buf));
    out.put_slice(CRLF);
}

/// Decimal digits of `n` at the end of `buf` (u64::MAX has 20 digits).
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `%.17g` of a nonzero `d` under 10^13 in magnitude that is a multiple of 1/16 (an integer, or `x.5`,
/// `x.25`, `x.0625` ...): its decimal expansion is exact in at most 13 + 4 digits, so `%.17g` prints exactly
/// that, in plain notation (the magnitude is at least 1/16, so the exponent is at least -2). None otherwise.
/// The common scores and doubles without the general formatter's work.
fn short_decimal(d: f64) -> Option<String> {
    if d == 0.0 || d.is_nan() || d.abs() >= 1e13 {
        return None;
    }
    // Multiplying by a power of two is exact.
    let sixteenths = d * 16.0;
    if sixteenths.fract() != 0.0 {
        return None;
    }
    let n = sixteenths.abs() as u64;
    let mut out = String::with_capacity(20);
    if d < 0.0 {
        out.push('-');
    }
    let mut buf = [0u8; 20];
    out.extend(format_u64(n / 16, &mut buf).iter().map(|&c| char::from(c)));
    // frac / 16 = frac * 625 / 10^4: four decimal digits, without the trailing zeros.
    let mut frac = (n % 16) * 625;
    if frac != 0 {
        out.push('.');
        let mut div = 1000;
        while frac != 0 {
            out.push(char::from(b'0' + (frac / div) as u8));
            frac %= div;
            div /= 10;
        }
    }
    Some(out)
}

/// Formats `d` exactly like C's `printf("%.17g", d)` with glibc, which is what
/// Redis 7.0 sends for ZSCORE, INCRBYFLOAT-free double replies and RESP3
/// doubles: `1.1` → `1.1000000000000001`, `3.0` → `3`, `1e20` → `1e+20`,
/// `1e-5` → `1.0000000000000001e-05`, infinities `inf`/`-inf`, NaN `nan`
/// (glibc's `-nan` when the sign bit is set), negative zero `-0`.
pub fn format_double_g17(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    short_decimal(d).unwrap_or_else(|| g17_general(d))
}

/// [`format_double_g17`] for any finite `d`: its 17 significant digits and decimal exponent, then `%g`'s
/// layout.
fn g17_general(d: f64) -> String {
    let (negative, digits, exp) = match g17_digits_exact(d) {
        Some((digits, exp)) => (d < 0.0, digits, exp),
        None => g17_digits_std(d),
    };
    g17_layout(negative, &digits, exp)
}

/// The 17 significant digits (ASCII) and the decimal exponent of `d` by Rust's exact-precision formatting,
/// which rounds the true binary value half to even, as glibc does: printf's digits.
fn g17_digits_std(d: f64) -> (bool, [u8; 17], i32) {
    let sci = format!("{:.16e}", d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let mut digits = [b'0'; 17];
    for (slot, c) in digits.iter_mut().zip(mantissa.bytes().filter(|c| c.is_ascii_digit())) {
        *slot = c;
    }
    (negative, digits, exp)
}

/// [`g17_digits_std`] without its formatting machinery for `|d|` in [1e-4, 1e16), where every value times
/// the power of ten that gives it 17 integer digits fits in 128 bits: the exact product, rounded half to
/// even on the exact remainder. None outside that range (and for zero).
fn g17_digits_exact(d: f64) -> Option<([u8; 17], i32)> {
    let a = d.abs();
    if !(1e-4..1e16).contains(&a) {
        return None;
    }
    // a = m * 2^e exactly (a is normal in this range).
    let bits = a.to_bits();
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let e = ((bits >> 52) & 0x7ff) as i32 - 1075;
    // 10^16 <= a * 10^k < 10^17 for k = 16 - floor(log10 a); the estimate is corrected below.
    let mut exp = a.log10().floor() as i32;
    for _ in 0..3 {
        let k = 16 - exp;
        // k is in 1..=20 here: 10^k < 2^67 and m < 2^53, so the product fits; e is in -66..=1.
        let scaled = m * 10u128.pow(k as u32);
        let (q, r, half) = if e >= 0 {
            (scaled << e, 0, 1)
        } else {
            let shift = (-e) as u32;
            (scaled >> shift, scaled & ((1 << shift) - 1), 1u128 << (shift - 1))
        };
        if q < 10u128.pow(16) {
            exp -= 1;
            continue;
        }
        if q >= 10u128.pow(17) {
            exp += 1;
            continue;
        }
        let mut n = q;
        if r > half || (r == half && n % 2 == 1) {
            n += 1;
        }
        if n == 10u128.pow(17) {
            n = 10u128.pow(16);
            exp += 1;
        }
        let mut digits = [b'0'; 17];
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        return Some((digits, exp));
    }
    None
}

/// `%g`'s layout of 17 significant digits with decimal exponent `exp`: plain notation for exponents -4 to
/// 16, else scientific, trailing zeros dropped.
fn g17_layout(negative: bool, digits: &[u8; 17], exp: i32) -> String {
    let mut out = String::with_capacity(24);
    if negative {
        out.push('-');
    }
    let push_digits = |out: &mut String, ds: &[u8]| out.extend(ds.iter().map(|&c| c as char));
    let trim = |ds: &[u8]| -> usize { ds.iter().rposition(|&c| c != b'0').map_or(0, |i| i + 1) };

    if !(-4..17).contains(&exp) {
        push_digits(&mut out, &digits[..1]);
        let frac = &digits[1..];
        let frac = &frac[..trim(frac)];
        if !frac.is_empty() {
            out.push('.');
            push_digits(&mut out, frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp >= 0 {
        let split = exp as usize + 1;
        push_digits(&mut out, &digits[..split]);
        let frac = &digits[split..];
        let frac = &frac[..trim(frac)];
        if !frac.is_empty() {
            out.push('.');
            push_digits(&mut out, frac);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        push_digits(&mut out, &digits[..trim(digits)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};

    fn r2(r: &Reply) -> Vec<u8> {
        r.to_vec(Protocol::Resp2)
    }

    fn r3(r: &Reply) -> Vec<u8> {
        r.to_vec(Protocol::Resp3)
    }

    #[test]
    fn scalars_both_protocols() {
        let cases: Vec<(Reply, &[u8], &[u8])> = vec![
            (Reply::ok(), b"+OK\r\n", b"+OK\r\n"),
            (Reply::Simple("a\r\nb".into()), b"+a  b\r\n", b"+a  b\r\n"),
            (Reply::err("ERR unknown command 'x'"), b"-ERR unknown command 'x'\r\n", b"-ERR unknown command 'x'\r\n"),
            (Reply::err("WRONGTYPE a\nb"), b"-WRONGTYPE a b\r\n", b"-WRONGTYPE a b\r\n"),
            (Reply::Int(0), b":0\r\n", b":0\r\n"),
            (Reply::Int(-42), b":-42\r\n", b":-42\r\n"),
            (Reply::Int(i64::MIN), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n"),
            (Reply::Int(i64::MAX), b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
            (Reply::bulk("foo"), b"$3\r\nfoo\r\n", b"$3\r\nfoo\r\n"),
            (Reply::bulk_from_slice(b""), b"$0\r\n\r\n", b"$0\r\n\r\n"),
            (Reply::bulk(vec![b'\r', 0]), b"$2\r\n\r\0\r\n", b"$2\r\n\r\0\r\n"),
            (Reply::Nil, b"$-1\r\n", b"_\r\n"),
            (Reply::NilArray, b"*-1\r\n", b"_\r\n"),
            (Reply::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
            (Reply::Double(1.1), b"$18\r\n1.1000000000000001\r\n", b",1.1000000000000001\r\n"),
            (Reply::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n"),
            (Reply::Double(f64::NEG_INFINITY), b"$4\r\n-inf\r\n", b",-inf\r\n"),
            (Reply::Bool(true), b":1\r\n", b"#t\r\n"),
            (Reply::Bool(false), b":0\r\n", b"#f\r\n"),
            (Reply::Verbatim("txt".into(), Bytes::from_static(b"hi")), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
            (Reply::Verbatim("markdown".into(), Bytes::from_static(b"")), b"$0\r\n\r\n", b"=4\r\ntxt:\r\n"),
            (
                Reply::BigNumber("1234567890123456789012".into()),
                b"$22\r\n1234567890123456789012\r\n",
                b"(1234567890123456789012\r\n",
            ),
        ];
        for (reply, want2, want3) in cases {
            assert_eq!(r2(&reply), want2, "RESP2 {reply:?}");
            assert_eq!(r3(&reply), want3, "RESP3 {reply:?}");
        }
    }

    #[test]
    fn aggregates_both_protocols() {
        let arr = Reply::Array(vec![Reply::bulk("a"), Reply::Int(1), Reply::Nil]);
        assert_eq!(r2(&arr), b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n");
        assert_eq!(r3(&arr), b"*3\r\n$1\r\na\r\n:1\r\n_\r\n");
        assert_eq!(r2(&Reply::Array(vec![])), b"*0\r\n");

        let map =
            Reply::Map(vec![(Reply::bulk("k"), Reply::Double(2.0)), (Reply::Simple("s".into()), Reply::Bool(true))]);
        assert_eq!(r2(&map), b"*4\r\n$1\r\nk\r\n$1\r\n2\r\n+s\r\n:1\r\n".as_slice());
        assert_eq!(r3(&map), b"%2\r\n$1\r\nk\r\n,2\r\n+s\r\n#t\r\n".as_slice());

        let set = Reply::Set(vec![Reply::bulk("x")]);
        assert_eq!(r2(&set), b"*1\r\n$1\r\nx\r\n");
        assert_eq!(r3(&set), b"~1\r\n$1\r\nx\r\n");

        let push = Reply::Push(vec![Reply::bulk("message"), Reply::NilArray]);
        assert_eq!(r2(&push), b"*2\r\n$7\r\nmessage\r\n*-1\r\n");
        assert_eq!(r3(&push), b">2\r\n$7\r\nmessage\r\n_\r\n");

        let nested = Reply::Array(vec![Reply::Array(vec![Reply::Int(1)]), Reply::Set(vec![])]);
        assert_eq!(r2(&nested), b"*2\r\n*1\r\n:1\r\n*0\r\n");
        assert_eq!(r3(&nested), b"*2\r\n*1\r\n:1\r\n~0\r\n");
    }

    #[test]
    fn encodes_into_bytes_mut_and_appends() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        encode(&Reply::Int(7), Protocol::Resp2, &mut out);
        assert_eq!(&out[..], b"prefix:7\r\n");
        let mut v = b"x".to_vec();
        encode(&Reply::ok(), Protocol::Resp3, &mut v);
        assert_eq!(v, b"x+OK\r\n");
    }

    #[test]
    fn reply_helpers() {
        assert!(Reply::err("ERR x").is_error());
        assert!(!Reply::ok().is_error());
        assert_eq!(Reply::bulk(b"ab".to_vec()), Reply::bulk_from_slice(b"ab"));
        assert_eq!(Reply::bulk(Bytes::from_static(b"ab")), Reply::bulk("ab"));
    }

    /// Expected strings from `python3 -c 'print("%.17g" % x)'`, which uses the
    /// platform's correctly rounded conversion just as glibc's printf does.
    #[test]
    fn g17_matches_printf() {
        let table: &[(f64, &str)] = &[
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (3.0, "3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1.5, "1.5"),
            (2.5e-5, "2.5000000000000001e-05"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e16, "10000000000000000"),
            (99999999999999999.0, "1e+17"),
            (0.30000000000000004, "0.30000000000000004"),
            (0.3, "0.29999999999999999"),
            (1e20, "1e+20"),
            (0.0001, "0.0001"),
            (1e-5, "1.0000000000000001e-05"),
            (0.001, "0.001"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (0.00012345, "0.00012344999999999999"),
            (12345678901234567.0, "12345678901234568"),
            (1234567890123456.7, "1234567890123456.8"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "4.9406564584124654e-324"),
            // Exact ties at the 17th digit round half to even, as in glibc.
            (1e14 + 0.125, "100000000000000.12"),
            (1e14 + 0.375, "100000000000000.38"),
            (9007199254740993.0, "9007199254740992"),
            (-2.0f64.powi(70), "-1.1805916207174113e+21"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in table {
            assert_eq!(format_double_g17(*x), *want, "{x:e}");
        }
    }

    /// The exact 128-bit digits are Rust's exact-precision digits (glibc's), ties included.
    #[test]
    fn exact_digits_match_the_standard_formatter() {
        let mut rng = fastrand::Rng::with_seed(17);
        let ties = [1e14 + 0.125, 1e14 + 0.375, 0.1, 0.3, 1.1, 9_999_999_999_999_998.0, 1e-4, 1e16 - 2.0];
        let random = (0..300_000).map(|i| match i % 3 {
            // Uniform over the bits of the range, over decimals with few digits, and near powers of ten.
            0 => f64::from_bits(rng.u64(0x3f1a_36e2_eb1c_432d..0x4341_c379_37e0_8000)),
            1 => rng.i64(1..10_000_000_000) as f64 / 10f64.powi(rng.i32(0..9)),
            _ => 10f64.powi(rng.i32(-4..16)) * (1.0 + (rng.f64() - 0.5) * 1e-12),
        });
        let mut exact = 0;
        for d in ties.into_iter().chain(random) {
            for d in [d, -d] {
                let std = g17_digits_std(d);
                if let Some((digits, exp)) = g17_digits_exact(d) {
                    assert_eq!((d < 0.0, digits, exp), std, "{d:e}");
                    exact += 1;
                }
            }
        }
        assert!(exact > 550_000, "{exact}");
        for d in [0.0, 9.9e-5, 1e16, 1e300, 5e-324] {
            assert_eq!(g17_digits_exact(d), None, "{d:e}");
        }
    }

    /// The shortcut for multiples of 1/16 prints what the general formatter prints.
    #[test]
    fn short_decimals_match_the_general_formatter() {
        let mut rng = fastrand::Rng::with_seed(9);
        let top = 1e13 - 1.0 / 16.0;
        let edges = [1.0 / 16.0, 0.5, 1.0, top, -top, 1e13 - 1.0, 123.4375];
        let random = (0..100_000).map(|i| {
            let scale = [16, 1 << 10, 1 << 30, 1 << 47][i % 4];
            rng.i64(-scale..scale) as f64 / 16.0
        });
        let mut short = 0;
        for d in edges.into_iter().chain(random) {
            if let Some(s) = short_decimal(d) {
                assert_eq!(s, g17_general(d), "{d:e}");
                short += 1;
            }
        }
        assert!(short > 90_000, "{short}");
        for d in [0.1, 1e13, 1e14 + 0.125, 1.0 / 32.0, 0.0, -0.0, f64::NAN, f64::INFINITY] {
            assert_eq!(short_decimal(d), None, "{d:e}");
        }
    }
}
