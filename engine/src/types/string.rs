//! String values with Redis's three encodings: `int` (fits an i64 and prints back identically), `embstr`
//! (at most 44 bytes, as created by SET), and `raw` (longer, or modified in place by APPEND/SETRANGE).
//!
//! An `embstr` of up to [`INLINE_CAP`] bytes lives inside the value itself ([`StrValue::Inline`]), so the
//! common short value costs no allocation; longer ones ([`StrValue::Emb`]) are one exact-size heap buffer.
//! Both report `embstr` and compare equal when their bytes are equal.

use crate::util::{inline_array, parse_i64};
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

/// Longest string Redis stores as `embstr` (OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
pub const EMBSTR_LIMIT: usize = 44;

/// Longest string kept inline: what fits in a 24-byte [`StrValue`] beside its tag and length byte.
pub const INLINE_CAP: usize = 22;

/// Up to [`INLINE_CAP`] bytes stored in place. Bytes past `len` are always zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr {
    len: u8,
    buf: [u8; INLINE_CAP],
}

impl InlineStr {
    /// None when `b` is longer than [`INLINE_CAP`].
    #[inline]
    pub fn new(b: &[u8]) -> Option<InlineStr> {
        let n = b.len();
        if n > INLINE_CAP {
            return None;
        }
        // From whole words: a copy into a zeroed buffer made the value's move wait (see `inline_array`).
        let buf = inline_array(b);
        Some(InlineStr { len: n as u8, buf })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InlineStr").field(&self.as_bytes()).finish()
    }
}

#[derive(Debug, Clone)]
pub enum StrValue {
    Int(i64),
    /// `embstr` of at most [`INLINE_CAP`] bytes, without a heap allocation.
    Inline(InlineStr),
    /// `embstr` on the heap (longer than [`INLINE_CAP`], or built directly by a caller).
    Emb(Box<[u8]>),
    /// `raw`: one growable heap buffer ([`RawBuf`]).
    Raw(RawBuf),
}

/// The bytes of a `raw` string: a `Vec<u8>` whose length and capacity are kept in 32 bits each, so that it
/// fits in a [`StrValue`] and the string takes one allocation (its bytes), as an `embstr` does. A string of
/// 4 GiB or more (possible only with `proto-max-bulk-len` raised past its 512 MB default) keeps a boxed
/// `Vec` instead, marked by a capacity of `u32::MAX`.
pub struct RawBuf {
    ptr: NonNull<u8>,
    len: u32,
    cap: u32,
}

/// The capacity that marks `ptr` as a `Box<Vec<u8>>`.
const BOXED: u32 = u32::MAX;

// A RawBuf owns its bytes as a Vec<u8> does.
unsafe impl Send for RawBuf {}
unsafe impl Sync for RawBuf {}

impl RawBuf {
    pub fn from_vec(v: Vec<u8>) -> RawBuf {
        match (u32::try_from(v.len()), u32::try_from(v.capacity())) {
            (Ok(len), Ok(cap)) if cap != BOXED => {
                let mut v = ManuallyDrop::new(v);
                RawBuf { ptr: NonNull::new(v.as_mut_ptr()).expect("a Vec's pointer is never null"), len, cap }
            }
            _ => {
                let boxed = NonNull::from(Box::leak(Box::new(v)));
                RawBuf { ptr: boxed.cast(), len: 0, cap: BOXED }
            }
        }
    }

    /// Takes the bytes out as the Vec they came from, leaving an empty buffer.
    fn take_vec(&mut self) -> Vec<u8> {
        let me = std::mem::replace(self, RawBuf::from_vec(Vec::new()));
        let me = ManuallyDrop::new(me);
        // SAFETY: `ptr`, `len` and `cap` are those of a Vec<u8> (or of the Box holding one) that `from_vec`
        // took apart, and `me` is never used again.
        unsafe {
            if me.cap == BOXED {
                *Box::from_raw(me.ptr.cast::<Vec<u8>>().as_ptr())
            } else {
                Vec::from_raw_parts(me.ptr.as_ptr(), me.len as usize, me.cap as usize)
            }
        }
    }

    /// Runs `f` on the bytes as a `Vec` (APPEND, SETRANGE), then keeps what it left.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut v = self.take_vec();
        let out = f(&mut v);
        *self = RawBuf::from_vec(v);
        out
    }

    /// Bytes allocated for the string (its capacity, plus the `Vec` of a boxed one).
    pub fn heap_bytes(&self) -> usize {
        if self.cap == BOXED {
            std::mem::size_of::<Vec<u8>>() + self.boxed().capacity()
        } else {
            self.cap as usize
        }
    }

    fn boxed(&self) -> &Vec<u8> {
        // SAFETY: with `cap == BOXED`, `ptr` is the Box<Vec<u8>> that `from_vec` leaked, owned by self.
        unsafe { self.ptr.cast::<Vec<u8>>().as_ref() }
    }
}

impl Deref for RawBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.cap == BOXED {
            self.boxed()
        } else {
            // SAFETY: `ptr` holds `len` initialised bytes of a Vec's buffer owned by self.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
        }
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        drop(self.take_vec());
    }
}

impl Clone for RawBuf {
    fn clone(&self) -> Self {
        RawBuf::from_vec(self.to_vec())
    }
}

impl PartialEq for RawBuf {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}

impl std::fmt::Debug for RawBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawBuf").field(&&self[..]).finish()
    }
}

/// Equal when both report the same encoding and hold the same bytes (inline and heap `embstr` alike).
impl PartialEq for StrValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StrValue::Int(a), StrValue::Int(b)) => a == b,
            (StrValue::Raw(a), StrValue::Raw(b)) => a == b,
            (StrValue::Inline(_) | StrValue::Emb(_), StrValue::Inline(_) | StrValue::Emb(_)) => {
                self.with_bytes(|a| other.with_bytes(|b| a == b))
            }
            _ => false,
        }
    }
}

impl StrValue {
    /// Encodes bytes the way `SET` does (Redis `tryObjectEncoding`).
    pub fn from_bytes(b: &[u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(v) = parse_i64(b) {
                return StrValue::Int(v);
            }
        }
        StrValue::from_bytes_no_int(b)
    }

    /// A string built without trying the integer encoding (e.g. INCRBYFLOAT's result).
    pub fn from_bytes_no_int(b: &[u8]) -> StrValue {
        if let Some(s) = InlineStr::new(b) {
            StrValue::Inline(s)
        } else if b.len() <= EMBSTR_LIMIT {
            StrValue::Emb(b.into())
        } else {
            StrValue::from_raw(b.to_vec())
        }
    }

    pub fn from_i64(v: i64) -> StrValue {
        StrValue::Int(v)
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            StrValue::Int(_) => "int",
            StrValue::Inline(_) | StrValue::Emb(_) => "embstr",
            StrValue::Raw(_) => "raw",
        }
    }

    /// The bytes of the value (integers are printed in decimal).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StrValue::Int(v) => v.to_string().into_bytes(),
            StrValue::Inline(s) => s.as_bytes().to_vec(),
            StrValue::Emb(b) => b.to_vec(),
            StrValue::Raw(b) => b.to_vec(),
        }
    }

    /// Calls `f` with the value's bytes without allocating for the non-integer encodings.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrValue::Int(v) => f(v.to_string().as_bytes()),
            StrValue::Inline(s) => f(s.as_bytes()),
            StrValue::Emb(b) => f(b),
            StrValue::Raw(b) => f(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(v) => {
                let mut n = if *v < 0 { 2 } else { 1 };
                let mut x = v.unsigned_abs();
                while x >= 10 {
                    x /= 10;
                    n += 1;
                }
                n
            }
            StrValue::Inline(s) => usize::from(s.len),
            StrValue::Emb(b) => b.len(),
            StrValue::Raw(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as an integer, when it is one in Redis's strict sense.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrValue::Int(v) => Some(*v),
            StrValue::Inline(s) => parse_i64(s.as_bytes()),
            StrValue::Emb(b) => parse_i64(b),
            StrValue::Raw(b) => parse_i64(b),
        }
    }
    /// A `raw` string that owns `buf` as is (SETRANGE on a missing key creates one, as Redis does).
    pub fn from_raw(buf: Vec<u8>) -> StrValue {
        StrValue::Raw(RawBuf::from_vec(buf))
    }

    /// APPEND: adds `tail` at the end, leaving the value `raw`; returns the new length.
    pub fn append(&mut self, tail: &[u8]) -> usize {
        self.edit_raw(|buf| {
            buf.extend_from_slice(tail);
            buf.len()
        })
    }

    /// SETRANGE: writes `bytes` at `offset`, padding with zero bytes when the value is shorter, leaving it
    /// `raw`; returns the new length. An empty `bytes` changes nothing (not even the encoding).
    pub fn set_range(&mut self, offset: usize, bytes: &[u8]) -> usize {
        if bytes.is_empty() {
            return self.len();
        }
        self.edit_raw(|buf| {
            let end = offset + bytes.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[offset..end].copy_from_slice(bytes);
            buf.len()
        })
    }

    /// Turns the value into a growable `raw` buffer (APPEND, SETRANGE) and runs `f` on it.
    pub fn edit_raw<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        if !matches!(self, StrValue::Raw(_)) {
            *self = StrValue::from_raw(self.to_bytes());
        }
        match self {
            StrValue::Raw(b) => b.edit(f),
            _ => unreachable!("just converted to raw"),
        }
    }

    /// Bytes this value owns on the heap (0 for `int` and inline `embstr`).
    pub fn heap_bytes(&self) -> usize {
        match self {
            StrValue::Int(_) | StrValue::Inline(_) => 0,
            StrValue::Emb(b) => b.len(),
            StrValue::Raw(b) => b.heap_bytes(),
        }
    }
}

/// INCRBYFLOAT's arithmetic, bit for bit as Redis 7.0 on x86-64 does it: both operands are read with
/// `strtold` into an x87 80-bit `long double` (64-bit significand, round half to even), added once, and the
/// sum is printed with `"%.17Lf"` minus trailing zeros. Plain `f64` arithmetic gives different text for
/// common inputs (0.1 + 0.2 is "0.3" in Redis, "1000.1" is "1000.09999999999999998"), so the operation is
/// emulated exactly with a small big-integer helper. The cost is a few microseconds for ordinary values.
pub mod long_double {
    use std::cmp::Ordering;

    /// Why INCRBYFLOAT refuses, mapped to Redis's two error texts by the caller.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FloatError {
        /// "ERR value is not a valid float" (either operand).
        NotFloat,
        /// "ERR increment would produce NaN or Infinity".
        NanOrInfinity,
    }

    /// `current + incr` printed the way INCRBYFLOAT replies and stores it.
    pub fn incr_by_float(current: &[u8], incr: &[u8]) -> Result<String, FloatError> {
        let a = parse(current).ok_or(FloatError::NotFloat)?;
        let b = parse(incr).ok_or(FloatError::NotFloat)?;
        match (a, b) {
            (Num::Finite(x), Num::Finite(y)) => add(x, y).map(format_human).ok_or(FloatError::NanOrInfinity),
            _ => Err(FloatError::NanOrInfinity),
        }
    }

    /// Redis refuses strings this long before calling `strtold` (MAX_LONG_DOUBLE_CHARS).
    const MAX_CHARS: usize = 5 * 1024;
    /// Weight of the last bit of the smallest subnormal long double.
    const MIN_LSB_EXP: i64 = -16445;
    /// Largest weight the leading bit of a finite long double may have.
    const MAX_LEAD_EXP: i64 = 16383;

    /// A finite long double: `(-1)^neg * m * 2^e`; zero when `m == 0`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Ext {
        neg: bool,
        m: u64,
        e: i64,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Num {
        Finite(Ext),
        Inf,
    }

    /// `strtold` as Redis's `string2ld` uses it: the whole string must be one number, no leading space,
    /// overflow and underflow to zero are refused, NaN is refused, infinities and hex floats are accepted.
    fn parse(s: &[u8]) -> Option<Num> {
        if s.is_empty() || s.len() >= MAX_CHARS || matches!(s[0], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Num::Inf);
        }
        let hex = body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x';
        let (radix, body) = if hex { (16, &body[2..]) } else { (10, body) };
        let digit = |c: u8| (c as char).to_digit(radix);
        let int_len = body.iter().take_while(|&&c| digit(c).is_some()).count();
        let mut rest = &body[int_len..];
        let mut frac_len = 0;
        if rest.first() == Some(&b'.') {
            frac_len = rest[1..].iter().take_while(|&&c| digit(c).is_some()).count();
            rest = &rest[1 + frac_len..];
        }
        if int_len + frac_len == 0 {
            return None;
        }
        let mut exp: i64 = 0;
        if let Some(&c) = rest.first() {
            if (c | 0x20) != if hex { b'p' } else { b'e' } {
                return None;
            }
            let (eneg, edigits) = match rest.get(1) {
                Some(b'-') => (true, &rest[2..]),
                Some(b'+') => (false, &rest[2..]),
                _ => (false, &rest[1..]),
            };
            if edigits.is_empty() || !edigits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for &d in edigits {
                exp = (exp * 10 + i64::from(d - b'0')).min(1_000_000_000);
            }
            if eneg {
                exp = -exp;
            }
        }
        let frac = &body[int_len..][..if frac_len > 0 { 1 + frac_len } else { 0 }];
        let digits: Vec<u32> = body[..int_len]
            .iter()
            .chain(frac.iter().skip(1))
            .map(|&c| digit(c).unwrap_or(0))
            .skip_while(|&d| d == 0)
            .collect();
        if digits.is_empty() {
            return Some(Num::Finite(Ext { neg, m: 0, e: 0 }));
        }
        let value = if hex {
            let mut mag = Big::default();
            for d in digits {
                mag.mul_add(16, d);
            }
            round(neg, &mag, exp - 4 * frac_len as i64, false)?
        } else {
            from_decimal(neg, &digits, exp - frac_len as i64)?
        };
        // A non-zero number that rounds to zero is an underflow, which string2ld refuses.
        (value.m != 0).then_some(Num::Finite(value))
    }

    /// The long double nearest to `digits * 10^e10` (None on overflow).
    fn from_decimal(neg: bool, digits: &[u32], e10: i64) -> Option<Ext> {
        let magnitude = digits.len() as i64 + e10; // the value is below 10^magnitude
        if magnitude > 4933 {
            return None;
        }
        if magnitude < -4952 {
            return Some(Ext { neg, m: 0, e: 0 });
        }
        let mut d = Big::default();
        for &c in digits {
            d.mul_add(10, c);
        }
        if e10 >= 0 {
            d.mul_pow10(e10 as u32);
            return round(neg, &d, 0, false);
        }
        let mut p = Big::from_u128(1);
        p.mul_pow10((-e10) as u32);
        // Scale so the quotient has 66 or 67 bits: enough for the significand, a rounding bit and more.
        let s = d.bits() as i64 - p.bits() as i64 - 66;
        let (q, inexact) = if s > 0 { quotient(&d, &p.shl(s as u64)) } else { quotient(&d.shl((-s) as u64), &p) };
        round(neg, &Big::from_u128(q), s, inexact)
    }

    /// `floor(n / d)` (known to be below 2^100) and whether the division left a remainder.
    fn quotient(n: &Big, d: &Big) -> (u128, bool) {
        let mut rem = n.clone();
        let mut q = 0u128;
        if n.bits() >= d.bits() {
            for i in (0..=n.bits() - d.bits()).rev() {
                let ds = d.shl(i);
                if rem.cmp(&ds) != Ordering::Less {
                    rem.sub_assign(&ds);
                    q |= 1 << i;
                }
            }
        }
        (q, !rem.is_zero())
    }

    /// Rounds `mag * 2^exp2` (plus a positive amount below one unit of `mag` when `sticky`) to a long
    /// double, half to even, with subnormals. None when the result overflows.
    fn round(neg: bool, mag: &Big, exp2: i64, sticky: bool) -> Option<Ext> {
        if mag.is_zero() {
            return Some(Ext { neg, m: 0, e: 0 });
        }
        let lsb = (exp2 + mag.bits() as i64 - 64).max(MIN_LSB_EXP);
        let shift = lsb - exp2;
        let mut m = if shift > 0 {
            let shift = shift as u64;
            let q = mag.shr(shift).to_u128();
            let half = mag.bit(shift - 1);
            let rest = sticky || mag.any_low_bits(shift - 1);
            q + u128::from(half && (rest || q & 1 == 1))
        } else {
            mag.shl((-shift) as u64).to_u128()
        };
        let mut lsb = lsb;
        if m >> 64 != 0 {
            m >>= 1;
            lsb += 1;
        }
        if m != 0 && lsb + (128 - m.leading_zeros() as i64) - 1 > MAX_LEAD_EXP {
            return None;
        }
        Some(Ext { neg, m: m as u64, e: lsb })
    }

    /// One correctly rounded long double addition. None when the sum overflows to infinity.
    fn add(x: Ext, y: Ext) -> Option<Ext> {
        if x.m == 0 {
            return Some(if y.m == 0 { Ext { neg: x.neg && y.neg, m: 0, e: 0 } } else { y });
        }
        if y.m == 0 {
            return Some(x);
        }
        let norm = |v: Ext| {
            let z = v.m.leading_zeros();
            Ext { m: v.m << z, e: v.e - i64::from(z), ..v }
        };
        let (x, y) = (norm(x), norm(y));
        let (a, b) = if (x.e, x.m) >= (y.e, y.m) { (x, y) } else { (y, x) };
        // 62 guard bits; whatever falls off the smaller operand is kept as a sticky low bit, which keeps
        // the final rounding exact for both addition and subtraction.
        let big_a = u128::from(a.m) << 62;
        let mut big_b = u128::from(b.m) << 62;
        let d = (a.e - b.e) as u64;
        if d >= 128 {
            big_b = 1;
        } else if d > 0 {
            let lost = big_b & ((1u128 << d) - 1) != 0;
            big_b = (big_b >> d) | u128::from(lost);
        }
        let sum = if a.neg == b.neg { big_a + big_b } else { big_a - big_b };
        if sum == 0 {
            return Some(Ext { neg: false, m: 0, e: 0 });
        }
        round(a.neg, &Big::from_u128(sum), a.e - 62, false)
    }

    /// `"%.17Lf"` with trailing zeros (and a bare point) removed, and "-0" printed as "0".
    fn format_human(x: Ext) -> String {
        let mut p = Big::from_u128(u128::from(x.m));
        p.mul_pow10(17);
        let q = if x.e >= 0 {
            p.shl(x.e as u64)
        } else {
            let sh = (-x.e) as u64;
            let mut q = p.shr(sh);
            if p.bit(sh - 1) && (p.any_low_bits(sh - 1) || q.bit(0)) {
                q.mul_add(1, 1);
            }
            q
        };
        let mut digits = q.to_decimal();
        if digits.len() < 18 {
            digits = format!("{}{digits}", "0".repeat(18 - digits.len()));
        }
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if x.neg && !q.is_zero() {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out
    }

    /// Unsigned big integer, little-endian 32-bit limbs, no high zero limbs.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u128(mut v: u128) -> Big {
            let mut limbs = Vec::new();
            while v != 0 {
                limbs.push(v as u32);
                v >>= 32;
            }
            Big(limbs)
        }

        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        /// `self = self * mul + add`.
        fn mul_add(&mut self, mul: u32, add: u32) {
            let mut carry = u64::from(add);
            for limb in &mut self.0 {
                let v = u64::from(*limb) * u64::from(mul) + carry;
                *limb = v as u32;
                carry = v >> 32;
            }
            if carry != 0 {
                self.0.push(carry as u32);
            }
            self.trim();
        }

        fn mul_pow10(&mut self, mut n: u32) {
            while n >= 9 {
                self.mul_add(1_000_000_000, 0);
                n -= 9;
            }
            self.mul_add(10u32.pow(n), 0);
        }

        fn bits(&self) -> u64 {
            match self.0.last() {
                None => 0,
                Some(&top) => self.0.len() as u64 * 32 - u64::from(top.leading_zeros()),
            }
        }

        fn bit(&self, i: u64) -> bool {
            let limb = (i / 32) as usize;
            limb < self.0.len() && (self.0[limb] >> (i % 32)) & 1 == 1
        }

        /// Whether any of the lowest `n` bits is set.
        fn any_low_bits(&self, n: u64) -> bool {
            let full = ((n / 32) as usize).min(self.0.len());
            if self.0[..full].iter().any(|&l| l != 0) {
                return true;
            }
            let part = n % 32;
            full < self.0.len() && part > 0 && self.0[full] & ((1u32 << part) - 1) != 0
        }

        fn shl(&self, n: u64) -> Big {
            if self.is_zero() {
                return Big::default();
            }
            let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
            let mut out = vec![0u32; limbs];
            let mut carry = 0u32;
            for &l in &self.0 {
                out.push((l << bits) | carry);
                carry = if bits == 0 { 0 } else { l >> (32 - bits) };
            }
            out.push(carry);
            let mut b = Big(out);
            b.trim();
            b
        }

        fn shr(&self, n: u64) -> Big {
            let limbs = n / 32;
            if limbs >= self.0.len() as u64 {
                return Big::default();
            }
            let (src, bits) = (&self.0[limbs as usize..], (n % 32) as u32);
            let out = (0..src.len())
                .map(|i| {
                    let hi = if bits == 0 { 0 } else { src.get(i + 1).map_or(0, |&h| h << (32 - bits)) };
                    (src[i] >> bits) | hi
                })
                .collect();
            let mut b = Big(out);
            b.trim();
            b
        }

        fn cmp(&self, o: &Big) -> Ordering {
            self.0.len().cmp(&o.0.len()).then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
        }

        /// `self -= o`, with `self >= o`.
        fn sub_assign(&mut self, o: &Big) {
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let v = i64::from(self.0[i]) - i64::from(o.0.get(i).copied().unwrap_or(0)) - borrow;
                borrow = i64::from(v < 0);
                self.0[i] = (v + (borrow << 32)) as u32;
            }
            self.trim();
        }

        /// The value when it fits in 128 bits (callers guarantee it).
        fn to_u128(&self) -> u128 {
            self.0.iter().take(4).rev().fold(0u128, |acc, &l| (acc << 32) | u128::from(l))
        }

        fn to_decimal(&self) -> String {
            let mut n = self.clone();
            let mut chunks = Vec::new();
            while !n.is_zero() {
                let mut rem = 0u64;
                for limb in n.0.iter_mut().rev() {
                    let cur = (rem << 32) | u64::from(*limb);
                    *limb = (cur / 1_000_000_000) as u32;
                    rem = cur % 1_000_000_000;
                }
                n.trim();
                chunks.push(rem as u32);
            }
            let mut out = chunks.pop().map_or_else(|| "0".to_string(), |c| c.to_string());
            for c in chunks.iter().rev() {
                out.push_str(&format!("{c:09}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length takes its bytes and leaves the rest of the buffer zero (equality compares the buffer).
    #[test]
    fn inline_strings_of_every_length() {
        let src: Vec<u8> = (1..=INLINE_CAP as u8 + 1).map(|i| i.wrapping_mul(37) | 1).collect();
        for n in 0..=INLINE_CAP {
            let s = InlineStr::new(&src[..n]).expect("fits");
            assert_eq!(s.as_bytes(), &src[..n]);
            assert!(s.buf[n..].iter().all(|&b| b == 0), "{n}");
            let mut buf = [0u8; INLINE_CAP];
            buf[..n].copy_from_slice(&src[..n]);
            assert!(s == InlineStr { len: n as u8, buf }, "{n}");
        }
        assert!(InlineStr::new(&src).is_none());
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(StrValue::from_bytes(b"12345").encoding_name(), "int");
        assert_eq!(StrValue::from_bytes(b"012").encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 44]).encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes(&[b'a'; 45]).encoding_name(), "raw");
        assert_eq!(StrValue::Int(-120).len(), 4);
        assert_eq!(StrValue::Int(0).len(), 1);
        assert_eq!(StrValue::Int(i64::MIN).len(), 20);
        assert_eq!(StrValue::Int(i64::MAX).len(), 19);
        assert_eq!(StrValue::from_bytes(b"-9223372036854775808"), StrValue::Int(i64::MIN));
        assert_eq!(StrValue::from_bytes(b"9223372036854775808").encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes_no_int(b"12").encoding_name(), "embstr");
        assert_eq!(StrValue::from_bytes_no_int(&[b'1'; 45]).encoding_name(), "raw");
    }

    #[test]
    fn in_place_edits_make_raw() {
        let mut v = StrValue::from_bytes(b"12");
        assert_eq!(v.append(b"3"), 3);
        assert_eq!(v, StrValue::from_raw(b"123".to_vec()));
        assert_eq!(v.as_i64(), Some(123));

        let mut v = StrValue::from_bytes(b"hello");
        assert_eq!(v.set_range(7, b"xy"), 9);
        assert_eq!(v.to_bytes(), b"hello\0\0xy".to_vec());
        assert_eq!(v.encoding_name(), "raw");

        let mut v = StrValue::from_bytes(b"7");
        assert_eq!(v.set_range(0, b""), 1);
        assert_eq!(v.encoding_name(), "int");
        assert_eq!(v.set_range(0, b"8"), 1);
        assert_eq!(v.to_bytes(), b"8".to_vec());
        assert_eq!(v.encoding_name(), "raw");
    }

    #[test]
    fn raw_strings_are_one_allocation_and_grow_in_place() {
        assert_eq!(std::mem::size_of::<RawBuf>(), 16);
        let mut v = StrValue::from_bytes(&[b'a'; 100]);
        assert_eq!((v.encoding_name(), v.heap_bytes()), ("raw", 100));
        assert_eq!(v.append(b"bc"), 102);
        assert!(v.heap_bytes() >= 102);
        assert_eq!(v.set_range(200, b"z"), 201);
        let bytes = v.to_bytes();
        assert_eq!((&bytes[..100], &bytes[100..102], bytes[150], bytes[200]), (&[b'a'; 100][..], &b"bc"[..], 0, b'z'));
        assert_eq!(v.clone(), v);
        // A buffer whose capacity does not fit in 32 bits is kept boxed, with the same behaviour (the 4 GiB
        // are reserved, not touched).
        let mut big = Vec::with_capacity(u32::MAX as usize);
        big.extend_from_slice(b"huge");
        let mut v = StrValue::from_raw(big);
        assert_eq!((v.len(), v.append(b"!"), v.to_bytes()), (4, 5, b"huge!".to_vec()));
        assert!(v.heap_bytes() >= u32::MAX as usize);
        assert_eq!(v, StrValue::from_raw(b"huge!".to_vec()));
    }

    #[test]
    fn short_embstr_is_inline() {
        assert!(std::mem::size_of::<StrValue>() <= 24);
        assert_eq!(std::mem::size_of::<crate::types::Value>(), 24);
        let v = StrValue::from_bytes(b"value-1234");
        assert!(matches!(v, StrValue::Inline(_)));
        assert_eq!((v.heap_bytes(), v.len(), v.encoding_name()), (0, 10, "embstr"));
        assert_eq!(v.to_bytes(), b"value-1234".to_vec());
        assert!(v.with_bytes(|b| b == b"value-1234"));
        assert_eq!(StrValue::from_bytes(b"").heap_bytes(), 0);
        assert!(StrValue::from_bytes(b"").is_empty());

        let at_cap = StrValue::from_bytes(&[b'x'; INLINE_CAP]);
        assert!(matches!(at_cap, StrValue::Inline(_)));
        assert_eq!((at_cap.len(), at_cap.heap_bytes()), (INLINE_CAP, 0));
        let past_cap = StrValue::from_bytes(&[b'x'; INLINE_CAP + 1]);
        assert_eq!((past_cap.encoding_name(), past_cap.heap_bytes()), ("embstr", INLINE_CAP + 1));

        // Inline and heap embstr with the same bytes are the same value.
        assert_eq!(StrValue::Emb(b"abc"[..].into()), StrValue::from_bytes(b"abc"));
        assert_eq!(StrValue::Emb(Box::default()), StrValue::from_bytes(b""));
        assert_ne!(StrValue::from_bytes(b"abc"), StrValue::from_raw(b"abc".to_vec()));
        assert_ne!(StrValue::from_bytes(b"abc"), StrValue::from_bytes(b"abd"));
        assert_eq!(StrValue::from_bytes_no_int(b"12").as_i64(), Some(12));

        let mut v = StrValue::from_bytes(b"ab");
        v.edit_raw(|b| b.push(b'c'));
        assert_eq!(v, StrValue::from_raw(b"abc".to_vec()));
    }

    /// (current value, increment, what redis-server 7.0.15 on x86-64 replied), "NotFloat" and
    /// "NanOrInfinity" standing for its two errors.
    #[rustfmt::skip]
    const REDIS_INCRBYFLOAT: &[(&str, &str, &str)] = &[
        ("0", "0.1", "0.1"),
        ("0.1", "0.2", "0.3"),
        ("1000", "0.1", "1000.09999999999999998"),
        ("0", "1000.1", "1000.09999999999999998"),
        ("0", "123456.789", "123456.78900000000000148"),
        ("123456.789", "0.1", "123456.8890000000000029"),
        ("0", "3.14159265358979323846", "3.14159265358979324"),
        ("0", "12345678901234567890.123", "12345678901234567890"),
        ("0", "1e400", "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"),
        ("0", "1e4933", "NotFloat"),
        ("0", "1e-4950", "0"),
        ("0", "1e-4951", "NotFloat"),
        ("0", "1e-4952", "NotFloat"),
        ("0", "1e-5000", "NotFloat"),
        ("0", "0x10", "16"),
        ("0", "0x1p-3", "0.125"),
        ("0", "0X1.8P1", "3"),
        ("0", "0x", "NotFloat"),
        ("0", "0x.8", "0.5"),
        ("0", ".5", "0.5"),
        ("0", "5.", "5"),
        ("0", ".", "NotFloat"),
        ("0", "1e", "NotFloat"),
        ("0", "1e+", "NotFloat"),
        ("0", "1e+2", "100"),
        ("0", "+1", "1"),
        ("0", "++1", "NotFloat"),
        ("0", "-.5e-1", "-0.05"),
        ("0", "infinity", "NanOrInfinity"),
        ("0", "-inf", "NanOrInfinity"),
        ("0", "nan", "NotFloat"),
        ("0", "1_0", "NotFloat"),
        ("0", "0x1p99999", "NotFloat"),
        ("0", "1e-20", "0"),
        ("0", "1.7976931348623157e308", "179769313486231569995921046774104434048386446944329178485314420765176628523124396354701868608387085564428793419425520689308708363451136055357897278026477617073498977686288394835618163294045594434929537447290627480669417384648879122776218333598953852832103282504751611691208117720159985926376802466863339536384"),
        ("0", "2e308", "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096"),
        ("0", "-1e-30", "0"),
        ("0", "0e999999999999", "0"),
        ("0", "1e99999999999999999999", "NotFloat"),
        ("0", "0.1e-4931", "0"),
        ("0", "123e-4960", "NotFloat"),
        ("0", "1e-4945", "0"),
        ("0", "3.6e-4951", "0"),
        ("0", "0.30000000000000004", "0.30000000000000004"),
        ("0", "9007199254740993", "9007199254740993"),
        ("0", "18446744073709551615", "18446744073709551615"),
        ("0", "18446744073709551617", "18446744073709551616"),
        ("0", "36893488147419103231", "36893488147419103232"),
        ("1", "1e-17", "1.00000000000000001"),
        ("1", "1e-18", "1"),
        ("1.5", "1.5", "3"),
        ("0", "1e17", "100000000000000000"),
        ("0", "1.1e17", "110000000000000000"),
        ("0", "0.000000000000000005", "0"),
        ("0", "0.000000000000000015", "0.00000000000000002"),
        ("0", "0.000000000000000025", "0.00000000000000002"),
        ("0", "0.0000000000000000250001", "0.00000000000000003"),
        ("1e4931", "-1e4931", "0"),
        ("1e4932", "1e4932", "NanOrInfinity"),
        ("inf", "inf", "NanOrInfinity"),
        ("-inf", "1", "NanOrInfinity"),
        ("-inf", "-inf", "NanOrInfinity"),
        ("1", "nan", "NotFloat"),
        ("1", "NaN", "NotFloat"),
        ("1", " 1", "NotFloat"),
        ("1", "1 ", "NotFloat"),
        ("0", "0x1P-16445", "0"),
        ("0", "0x1P-16446", "NotFloat"),
        ("0", "0x1.8P-16446", "0"),
        ("0", "0x1p16384", "NotFloat"),
        ("0", "0x1.ffffffffffffffffp16383", "NotFloat"),
        ("0", "INF", "NanOrInfinity"),
        ("0", "Infinity", "NanOrInfinity"),
        ("0", "infinit", "NotFloat"),
        ("0", "0x1e5", "485"),
        ("0", "0x1.p1", "2"),
        ("0", "0x1p", "NotFloat"),
        ("0", "00012", "12"),
        ("0", "-0", "0"),
        ("-0", "-0", "0"),
        ("0", "1e-4951", "NotFloat"),
        ("0", "00.000e5", "0"),
        ("301868.9460797075", "71764.00861337851", "373632.95469308600999625"),
        ("14871.466378840501", "-132708.6326752283", "-117837.16629638779900091"),
        ("-150961.62171497208", "0x1cf28c105d1fb17c24p61", "1231288337777875358459598492276019429376"),
        ("15.420589723499731", "0824.6281", "840.048689723499731"),
        ("142408.7828235845", "-805138.8480105333", "-662730.06518694880003295"),
        ("-11e20", "8.949e-4030", "-1100000000000000000000"),
        ("1.5", "0.25", "1.75"),
        ("10.5", "0.1", "10.6"),
        ("5.0e3", "2.0e2", "5200"),
        ("3.0", "0", "3"),
        ("17179869184", "1.5", "17179869185.5"),
    ];

    #[test]
    fn incrbyfloat_matches_redis_long_double() {
        use long_double::{incr_by_float, FloatError};
        for &(cur, by, want) in REDIS_INCRBYFLOAT {
            let got = match incr_by_float(cur.as_bytes(), by.as_bytes()) {
                Ok(s) => s,
                Err(FloatError::NotFloat) => "NotFloat".into(),
                Err(FloatError::NanOrInfinity) => "NanOrInfinity".into(),
            };
            assert_eq!(got, want, "{cur} + {by}");
        }
        // Largest magnitudes print every integer digit, as %.17Lf does.
        let big = incr_by_float(b"0", b"1e4932").unwrap();
        assert_eq!(big.len(), 4933);
        assert!(big.starts_with("10000000000000000000060189493879638913238377742545331147737850413525"));
        let max = incr_by_float(b"0", b"0x1.fffffffffffffffep16383").unwrap();
        assert!(max.starts_with("118973149535723176502126385303097020516906332229462420044032"));
        // string2ld's buffer: 5119 characters are read, 5120 are refused.
        let mut longest = vec![b'0'; 5118];
        longest.push(b'1');
        assert_eq!(incr_by_float(b"0", &longest).as_deref(), Ok("1"));
        longest.insert(0, b'0');
        assert_eq!(incr_by_float(b"0", &longest), Err(FloatError::NotFloat));
        assert_eq!(incr_by_float(b"1\x002", b"1"), Err(FloatError::NotFloat));
    }
}
