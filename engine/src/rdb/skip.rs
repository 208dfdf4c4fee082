//! Values Moon cannot hold, validated and passed over: streams (RDB types 15, 19, 21) and module data
//! (type 7 values and MODULE_AUX records). Their layout is walked completely, so the next key is found and
//! a damaged stream or module record is still reported as corruption.
//!
//! Also [`value_extent`]: the parallel loader's scan, which finds where a value of a type Moon holds ends
//! by reading only its lengths, so that the value can be decoded later on the thread of its shard.
//!
//! Stream layout (`rdbLoadObject`, 7.0 and 7.2):
//! ```text
//! len nodes, nodes x (string 16-byte master ID, string listpack)
//! len length, len last_id.ms, len last_id.seq
//! [v2+] len first_id.ms, len first_id.seq, len max_deleted.ms, len max_deleted.seq, len entries_added
//! len groups, groups x (string name, len last_id.ms, len last_id.seq, [v2+] len entries_read,
//!     len pel, pel x (16-byte raw ID, 8-byte delivery time, len delivery count),
//!     len consumers, consumers x (string name, 8-byte seen time, [v3] 8-byte active time,
//!         len pel, pel x 16-byte raw ID))
//! ```
//! Module values: `len module_id`, then opcode-tagged items (`len` opcode: 1 signed / 2 unsigned `len`,
//! 3 float (4 bytes), 4 double (8 bytes), 5 string) until opcode 0.

use super::blobs;
use super::error::{err, ErrorKind, RdbError, Result};
use super::input::Input;
use super::types::*;

/// Size of a raw stream ID (two big-endian u64).
const STREAM_ID: usize = 16;
/// Size of a millisecond time stored raw.
const MILLIS: usize = 8;

pub(crate) fn stream(inp: &mut Input, ty: u8) -> Result<()> {
    let v2 = ty >= STREAM_LISTPACKS_2;
    let v3 = ty >= STREAM_LISTPACKS_3;
    let nodes = inp.count(2)?;
    for _ in 0..nodes {
        let at = inp.pos();
        if inp.blob()?.len() != STREAM_ID {
            return err(ErrorKind::BadValue("Stream node key entry is not the size of a stream ID".into()), at);
        }
        let at = inp.pos();
        let lp = inp.blob()?;
        let mut elems = Vec::new();
        blobs::listpack(&lp, &mut elems).map_err(|_| RdbError::new(ErrorKind::BadBlob("Stream listpack"), at))?;
        if elems.is_empty() {
            return err(ErrorKind::BadValue("Empty listpack inside stream".into()), at);
        }
    }
    // length and last ID; then first ID, max deleted ID and entries added for v2+.
    for _ in 0..if v2 { 8 } else { 3 } {
        inp.len()?;
    }
    let groups = inp.count(1)?;
    for _ in 0..groups {
        inp.string()?;
        for _ in 0..if v2 { 3 } else { 2 } {
            inp.len()?;
        }
        let pel = inp.count(STREAM_ID + MILLIS + 1)?;
        for _ in 0..pel {
            inp.take(STREAM_ID + MILLIS)?;
            inp.len()?;
        }
        let consumers = inp.count(1 + MILLIS + 1)?;
        for _ in 0..consumers {
            inp.string()?;
            inp.take(if v3 { 2 * MILLIS } else { MILLIS })?;
            let pel = inp.count(STREAM_ID)?;
            inp.take(pel * STREAM_ID)?;
        }
    }
    Ok(())
}

/// Moves `inp` past the value of RDB type `ty` reading only lengths (blobs, LZF data and element contents are
/// not looked at). `Ok(false)` for the types the scan does not pass over this way (streams, modules, and
/// types [`super::decode::read_object`] refuses): the caller decodes those in place. An error here only means
/// the value is damaged; the caller decodes it in place to report exactly what `read_object` reports.
pub(crate) fn value_extent(inp: &mut Input, ty: u8) -> Result<bool> {
    match ty {
        STRING | SET_INTSET | SET_LISTPACK | ZSET_ZIPLIST | ZSET_LISTPACK | HASH_ZIPMAP | HASH_ZIPLIST
        | HASH_LISTPACK | LIST_ZIPLIST => inp.skip_str()?,
        LIST | SET | LIST_QUICKLIST => {
            for _ in 0..inp.count(1)? {
                inp.skip_str()?;
            }
        }
        HASH => {
            for _ in 0..inp.count(2)? {
                inp.skip_str()?;
                inp.skip_str()?;
            }
        }
        ZSET_2 => {
            for _ in 0..inp.count(9)? {
                inp.skip_str()?;
                inp.take(8)?;
            }
        }
        ZSET => {
            for _ in 0..inp.count(2)? {
                inp.skip_str()?;
                // Score as text: a length byte, or 253-255 for NaN and the infinities.
                match inp.u8()? {
                    253..=255 => {}
                    n => {
                        inp.take(usize::from(n))?;
                    }
                }
            }
        }
        LIST_QUICKLIST_2 => {
            for _ in 0..inp.count(2)? {
                if !matches!(inp.len()?, 1 | 2) {
                    return Ok(false);
                }
                inp.skip_str()?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Opcode-tagged module items up to and including the EOF opcode.
fn module_items(inp: &mut Input) -> Result<()> {
    loop {
        let at = inp.pos();
        match inp.len()? {
            0 => return Ok(()),
            1 | 2 => {
                inp.len()?;
            }
            3 => {
                inp.take(4)?;
            }
            4 => {
                inp.take(8)?;
            }
            5 => {
                inp.string()?;
            }
            op => return err(ErrorKind::BadValue(format!("Unknown module opcode {op}")), at),
        }
    }
}

/// A type 7 value; returns the module type's name.
pub(crate) fn module_value(inp: &mut Input) -> Result<String> {
    let id = inp.len()?;
    module_items(inp)?;
    Ok(module_name(id))
}

/// A MODULE_AUX record (after its opcode); returns the module type's name.
pub(crate) fn module_aux(inp: &mut Input) -> Result<String> {
    let id = inp.len()?;
    let at = inp.pos();
    if inp.len()? != 2 {
        return err(ErrorKind::BadValue("Module AUX 'when' is not an unsigned integer".into()), at);
    }
    inp.len()?;
    module_items(inp)?;
    Ok(module_name(id))
}

/// The 9-character module type name packed in the top 54 bits of a module ID (6 bits per character; the
/// low 10 bits are the encoding version).
pub fn module_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..9).rev().map(|i| char::from(CHARSET[((id >> (10 + 6 * i)) & 63) as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        let id = b"mymodule1".iter().fold(0u64, |acc, &c| {
            let idx = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .iter()
                .position(|&x| x == c)
                .unwrap();
            (acc << 6) | idx as u64
        });
        assert_eq!(module_name((id << 10) | 3), "mymodule1");
        assert_eq!(module_name(0), "AAAAAAAAA");
    }

    #[test]
    fn module_items_all_opcodes() {
        let data = [1, 5, 2, 7, 3, 0, 0, 0xc0, 0x3f, 4, 0, 0, 0, 0, 0, 0, 4, 0x40, 5, 2, b'h', b'i', 0];
        let mut inp = Input::new(&data);
        module_items(&mut inp).unwrap();
        assert_eq!(inp.remaining(), 0);
        assert_eq!(module_items(&mut Input::new(&[9])).unwrap_err().code(), "bad-value");
        assert_eq!(module_items(&mut Input::new(&[1])).unwrap_err().code(), "unexpected-eof");
    }
}
