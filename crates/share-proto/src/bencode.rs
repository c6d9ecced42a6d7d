//! A strict bencode scanner that reports byte offsets.
//!
//! serde_bencode turns bencode into typed structs but neither says where malformed input went
//! wrong nor where a value's bytes are. This scanner walks the input once, checks it against
//! the grammar (canonical integers, string lengths that fit, string keys, a depth limit, no
//! trailing bytes) and returns the byte span of a top-level dictionary value: the info hash is
//! taken over exactly those bytes, never over a re-encoding.

use std::ops::Range;

/// How deep lists and dictionaries may nest: enough for any real manifest, and a bound on
/// the scanner's recursion for hostile input.
pub const MAX_DEPTH: usize = 64;

/// A bencode syntax error and the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bencode error at byte {offset}: {what}")]
pub struct SyntaxError {
    /// Offset of the offending byte from the start of the input.
    pub offset: usize,
    /// What is wrong there.
    pub what: &'static str,
}

fn err<T>(offset: usize, what: &'static str) -> Result<T, SyntaxError> {
    Err(SyntaxError { offset, what })
}

/// Checks that `data` is exactly one well-formed bencode value.
pub fn validate(data: &[u8]) -> Result<(), SyntaxError> {
    let end = Scanner { data }.value(0, 0)?;
    if end != data.len() {
        return err(end, "trailing bytes after the value");
    }
    Ok(())
}

/// The offset just past the one well-formed bencode value that `data` starts with (bytes
/// may follow it: a BEP 9 data message carries raw bytes after its dictionary).
pub fn value_end(data: &[u8]) -> Result<usize, SyntaxError> {
    Scanner { data }.value(0, 0)
}

/// Validates `data` as one dictionary and returns the byte span of the value stored under
/// `key` at its top level, if present.
pub fn dict_value_span(data: &[u8], key: &[u8]) -> Result<Option<Range<usize>>, SyntaxError> {
    validate(data)?;
    if data.first() != Some(&b'd') {
        return err(0, "expected a dictionary");
    }
    let s = Scanner { data };
    let mut pos = 1;
    while data.get(pos) != Some(&b'e') {
        let (k, after_key) = s.string(pos)?;
        let end = s.value(after_key, 1)?;
        if k == key {
            return Ok(Some(after_key..end));
        }
        pos = end;
    }
    Ok(None)
}

struct Scanner<'a> {
    data: &'a [u8],
}

impl<'a> Scanner<'a> {
    /// Scans the value starting at `pos`; returns the offset just past it.
    fn value(&self, pos: usize, depth: usize) -> Result<usize, SyntaxError> {
        if depth > MAX_DEPTH {
            return err(pos, "nested too deeply");
        }
        match self.data.get(pos) {
            None => err(pos, "unexpected end of data"),
            Some(b'i') => self.integer(pos),
            Some(b'0'..=b'9') => self.string(pos).map(|(_, end)| end),
            Some(b'l') => {
                let mut p = pos + 1;
                loop {
                    match self.data.get(p) {
                        Some(b'e') => return Ok(p + 1),
                        None => return err(p, "unexpected end of data inside a list"),
                        Some(_) => p = self.value(p, depth + 1)?,
                    }
                }
            }
            Some(b'd') => {
                let mut p = pos + 1;
                loop {
                    match self.data.get(p) {
                        Some(b'e') => return Ok(p + 1),
                        None => return err(p, "unexpected end of data inside a dictionary"),
                        Some(b'0'..=b'9') => {
                            let (_, after_key) = self.string(p)?;
                            p = self.value(after_key, depth + 1)?;
                        }
                        Some(_) => return err(p, "dictionary key is not a string"),
                    }
                }
            }
            Some(_) => err(pos, "not the start of a bencode value"),
        }
    }

    /// `i<digits>e`, canonical: no leading zeros, no `-0`, fits in an i64.
    fn integer(&self, pos: usize) -> Result<usize, SyntaxError> {
        let start = pos + 1;
        let mut p = start;
        if self.data.get(p) == Some(&b'-') {
            p += 1;
        }
        let digits = p;
        while matches!(self.data.get(p), Some(b'0'..=b'9')) {
            p += 1;
        }
        match self.data.get(p) {
            None => return err(p, "unexpected end of data inside an integer"),
            Some(b'e') => {}
            Some(_) => return err(p, "unexpected byte inside an integer"),
        }
        let text = &self.data[start..p];
        if p == digits {
            return err(start, "integer has no digits");
        }
        if self.data[digits] == b'0' && (p - digits > 1 || digits != start) {
            return err(start, "integer is not canonical (leading zero or -0)");
        }
        // Digits and an optional sign are ASCII, so this is valid UTF-8.
        let ok = std::str::from_utf8(text).ok().and_then(|t| t.parse::<i64>().ok());
        if ok.is_none() {
            return err(start, "integer does not fit in 64 bits");
        }
        Ok(p + 1)
    }

    /// `<len>:<bytes>`; returns the bytes and the offset past them.
    fn string(&self, pos: usize) -> Result<(&'a [u8], usize), SyntaxError> {
        let mut p = pos;
        let mut len: usize = 0;
        while let Some(&c @ b'0'..=b'9') = self.data.get(p) {
            if p > pos && self.data[pos] == b'0' {
                return err(pos, "string length has a leading zero");
            }
            len = match len
                .checked_mul(10)
                .and_then(|l| l.checked_add(usize::from(c - b'0')))
            {
                Some(l) => l,
                None => return err(pos, "string length is too large"),
            };
            p += 1;
        }
        if p == pos {
            return err(pos, "expected a string length");
        }
        match self.data.get(p) {
            Some(b':') => {}
            None => return err(p, "unexpected end of data inside a string length"),
            Some(_) => return err(p, "expected ':' after a string length"),
        }
        let start = p + 1;
        match start.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok((&self.data[start..end], end)),
            _ => err(pos, "string runs past the end of the data"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_values() {
        for ok in [
            &b"i0e"[..],
            b"i-12e",
            b"0:",
            b"3:abc",
            b"le",
            b"de",
            b"l4:spami42ee",
            b"d1:ai1e1:bl1:cee",
        ] {
            validate(ok).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(ok)));
        }
    }

    #[test]
    fn rejects_with_offsets() {
        let cases: &[(&[u8], usize)] = &[
            (b"", 0),
            (b"i01e", 1),
            (b"i-0e", 1),
            (b"ie", 1),
            (b"i12", 3),
            (b"i1x2e", 2),
            (b"i99999999999999999999e", 1),
            (b"5:abc", 0),
            (b"03:abc", 0),
            (b"l", 1),
            (b"di1e1:ae", 1),
            (b"d1:a", 4),
            (b"x", 0),
            (b"i1ei2e", 3),
            (b"4", 1),
            (b"99999999999999999999999:", 0),
        ];
        for &(input, offset) in cases {
            let e = validate(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(e.offset, offset, "{:?}: {e}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn depth_is_limited() {
        let deep: Vec<u8> = std::iter::repeat_n(b'l', 100)
            .chain(std::iter::repeat_n(b'e', 100))
            .collect();
        assert_eq!(validate(&deep).unwrap_err().what, "nested too deeply");
        let fine: Vec<u8> = std::iter::repeat_n(b'l', 10)
            .chain(std::iter::repeat_n(b'e', 10))
            .collect();
        validate(&fine).unwrap();
    }

    #[test]
    fn finds_the_raw_span_of_a_key() {
        let data = b"d8:announce3:url4:infod4:name1:x1:zi1ee5:otheri1ee";
        let span = dict_value_span(data, b"info").unwrap().unwrap();
        assert_eq!(&data[span], b"d4:name1:x1:zi1ee");
        assert_eq!(dict_value_span(data, b"missing").unwrap(), None);
        assert!(dict_value_span(b"li1ee", b"info").is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let data = b"d8:announce3:url4:infod4:name1:x1:zi-1ee5:otherl1:aee";
        validate(data).unwrap();
        for cut in 0..data.len() {
            assert!(validate(&data[..cut]).is_err(), "cut at {cut}");
        }
    }
}
