//! Argument parsing shared by the command families, with Redis's error texts.

use super::errors::{NOT_FLOAT, NOT_INT};
use super::CmdResult;
use crate::resp::Reply;
use crate::util::{parse_f64, parse_i64};

/// An integer argument, or `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> CmdResult<i64> {
    parse_i64(arg).ok_or_else(|| Reply::err(NOT_INT))
}

/// A float argument, or `ERR value is not a valid float`.
pub fn float(arg: &[u8]) -> CmdResult<f64> {
    parse_f64(arg).ok_or_else(|| Reply::err(NOT_FLOAT))
}

/// A non-negative count, or `ERR value is out of range, must be positive`.
pub fn positive(arg: &[u8]) -> CmdResult<i64> {
    let v = int(arg)?;
    if v < 0 {
        Err(Reply::err(super::errors::POSITIVE))
    } else {
        Ok(v)
    }
}

/// Turns Redis-style start/end indexes (negative from the end) into a clamped inclusive range over `len`
/// items; `None` when the range is empty.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_lrange() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(5, 10, 3), None);
        assert_eq!(clamp_range(0, 0, 0), None);
    }
}
