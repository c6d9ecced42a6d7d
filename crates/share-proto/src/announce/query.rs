//! Query strings of announce and scrape: building them (client side) and parsing their raw
//! bytes (tracker side).
//!
//! Parsing works on bytes and decodes each value into a fixed stack buffer: no allocation, no
//! UTF-8 assumption, and no panic whatever the input. `+` is kept as a literal byte, not a
//! space: clients percent-encode binary ids byte by byte (RFC 3986), and a few leave `+` bare.

use std::fmt::Write as _;

use super::{AnnounceRequest, Event};
use crate::hash::{InfoHash, PeerId, HASH_LEN};

/// A query parameter that is missing or malformed, named so the client can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required parameter is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A parameter is present but its value is not acceptable.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A scrape asks for more swarms than allowed.
    #[error("too many info_hash values (at most {0})")]
    TooMany(usize),
}

/// Longest decoded value accepted for any parameter; ids are 20 bytes and numbers at most 20
/// digits, an IPv6 address at most 45 characters.
const MAX_VALUE: usize = 64;

/// Bytes left unencoded in ids: RFC 3986's unreserved set.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_bytes(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

pub(super) fn announce_query(r: &AnnounceRequest) -> String {
    let mut q = String::with_capacity(256);
    q.push_str("info_hash=");
    encode_bytes(&mut q, r.info_hash.as_bytes());
    q.push_str("&peer_id=");
    encode_bytes(&mut q, r.peer_id.as_bytes());
    // Writing into a String cannot fail.
    let _ = write!(
        q,
        "&port={}&uploaded={}&downloaded={}&left={}&compact={}",
        r.port,
        r.uploaded,
        r.downloaded,
        r.left,
        u8::from(r.compact)
    );
    if r.no_peer_id {
        q.push_str("&no_peer_id=1");
    }
    if let Some(event) = r.event.as_str() {
        let _ = write!(q, "&event={event}");
    }
    if let Some(n) = r.numwant {
        let _ = write!(q, "&numwant={n}");
    }
    if let Some(ip) = r.ip {
        q.push_str("&ip=");
        encode_bytes(&mut q, ip.to_string().as_bytes());
    }
    if let Some(key) = r.key {
        let _ = write!(q, "&key={key:08X}");
    }
    q
}

/// The query string of a scrape for `hashes` (without `?`).
pub fn scrape_query(hashes: &[InfoHash]) -> String {
    let mut q = String::with_capacity(hashes.len() * 71);
    for (i, h) in hashes.iter().enumerate() {
        if i > 0 {
            q.push('&');
        }
        q.push_str("info_hash=");
        encode_bytes(&mut q, h.as_bytes());
    }
    q
}

/// The `key=value` pairs of a raw query string, split on `&`, keys and values still encoded.
/// Empty segments are skipped; a segment without `=` has an empty value.
#[derive(Debug, Clone)]
pub struct QueryPairs<'a> {
    rest: &'a [u8],
}

impl<'a> QueryPairs<'a> {
    /// Pairs of `raw`.
    pub fn new(raw: &'a [u8]) -> Self {
        Self { rest: raw }
    }
}

impl<'a> Iterator for QueryPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (seg, rest) = match self.rest.iter().position(|&b| b == b'&') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            if seg.is_empty() {
                continue;
            }
            return Some(match seg.iter().position(|&b| b == b'=') {
                Some(i) => (&seg[..i], &seg[i + 1..]),
                None => (seg, &[][..]),
            });
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `src` into `dst`; returns the decoded length, or `None` when `src` has a
/// broken `%` escape or decodes to more than `dst` holds.
pub fn percent_decode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let (mut i, mut n) = (0, 0);
    while let Some(&b) = src.get(i) {
        let byte = if b == b'%' {
            let hi = hex_val(*src.get(i + 1)?)?;
            let lo = hex_val(*src.get(i + 2)?)?;
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b
        };
        *dst.get_mut(n)? = byte;
        n += 1;
    }
    Some(n)
}

/// Decodes a value into `buf`, returning the decoded bytes.
fn decode<'b>(
    value: &[u8],
    buf: &'b mut [u8; MAX_VALUE],
    name: &'static str,
) -> Result<&'b [u8], QueryError> {
    let n = percent_decode(value, buf).ok_or(QueryError::Malformed(name))?;
    Ok(&buf[..n])
}

fn decode_id(value: &[u8], name: &'static str) -> Result<[u8; HASH_LEN], QueryError> {
    let mut out = [0u8; HASH_LEN];
    match percent_decode(value, &mut out) {
        Some(HASH_LEN) => Ok(out),
        _ => Err(QueryError::Malformed(name)),
    }
}

/// A plain decimal number: digits only, no sign, no overflow.
fn parse_u64(value: &[u8], name: &'static str) -> Result<u64, QueryError> {
    let mut buf = [0u8; MAX_VALUE];
    let digits = decode(value, &mut buf, name)?;
    if digits.is_empty() {
        return Err(QueryError::Malformed(name));
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return Err(QueryError::Malformed(name));
        }
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .ok_or(QueryError::Malformed(name))
    })
}

/// `key`: 8 hex digits as most clients send it, anything else folded with FNV-1a.
fn parse_key(value: &[u8]) -> Result<u32, QueryError> {
    let mut buf = [0u8; MAX_VALUE];
    let key = decode(value, &mut buf, "key")?;
    if !key.is_empty() && key.len() <= 8 {
        if let Some(v) = key
            .iter()
            .try_fold(0u32, |acc, &b| Some(acc << 4 | u32::from(hex_val(b)?)))
        {
            return Ok(v);
        }
    }
    Ok(key.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }))
}

pub(super) fn parse_announce(raw: &[u8]) -> Result<AnnounceRequest, QueryError> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut left = None;
    let mut r = AnnounceRequest {
        info_hash: InfoHash([0; HASH_LEN]),
        peer_id: PeerId([0; HASH_LEN]),
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::None,
        compact: true,
        no_peer_id: false,
        numwant: None,
        ip: None,
        key: None,
    };
    let (mut seen_up, mut seen_down, mut seen_event, mut seen_compact) = (false, false, false, false);
    let (mut seen_numwant, mut seen_ip, mut seen_key, mut seen_npi) = (false, false, false, false);
    for (k, v) in QueryPairs::new(raw) {
        match k {
            b"info_hash" if info_hash.is_none() => info_hash = Some(decode_id(v, "info_hash")?),
            b"peer_id" if peer_id.is_none() => peer_id = Some(decode_id(v, "peer_id")?),
            b"port" if port.is_none() => {
                let p = parse_u64(v, "port")?;
                port = Some(
                    u16::try_from(p)
                        .ok()
                        .filter(|&p| p != 0)
                        .ok_or(QueryError::Malformed("port"))?,
                );
            }
            b"left" if left.is_none() => left = Some(parse_u64(v, "left")?),
            b"uploaded" if !seen_up => {
                seen_up = true;
                r.uploaded = parse_u64(v, "uploaded")?;
            }
            b"downloaded" if !seen_down => {
                seen_down = true;
                r.downloaded = parse_u64(v, "downloaded")?;
            }
            b"event" if !seen_event => {
                seen_event = true;
                let mut buf = [0u8; MAX_VALUE];
                r.event =
                    Event::parse(decode(v, &mut buf, "event")?).ok_or(QueryError::Malformed("event"))?;
            }
            b"compact" if !seen_compact => {
                seen_compact = true;
                r.compact = v != b"0";
            }
            b"no_peer_id" if !seen_npi => {
                seen_npi = true;
                r.no_peer_id = v != b"0";
            }
            b"numwant" if !seen_numwant => {
                seen_numwant = true;
                // Some clients send -1 for "whatever you like".
                if v != b"-1" {
                    let n = parse_u64(v, "numwant")?;
                    r.numwant = Some(u32::try_from(n).unwrap_or(u32::MAX));
                }
            }
            b"ip" if !seen_ip => {
                seen_ip = true;
                let mut buf = [0u8; MAX_VALUE];
                // A host name is allowed by BEP 3 but not resolved here: the connection's
                // address is used instead.
                r.ip = std::str::from_utf8(decode(v, &mut buf, "ip")?)
                    .ok()
                    .and_then(|s| s.parse().ok());
            }
            b"key" if !seen_key => {
                seen_key = true;
                r.key = Some(parse_key(v)?);
            }
            _ => {}
        }
    }
    r.info_hash = InfoHash(info_hash.ok_or(QueryError::Missing("info_hash"))?);
    r.peer_id = PeerId(peer_id.ok_or(QueryError::Missing("peer_id"))?);
    r.port = port.ok_or(QueryError::Missing("port"))?;
    r.left = left.ok_or(QueryError::Missing("left"))?;
    Ok(r)
}

/// The info hashes of a scrape query, in order, duplicates kept. At most `max` of them.
pub fn parse_scrape_query(raw: &[u8], max: usize) -> Result<Vec<InfoHash>, QueryError> {
    let mut out = Vec::new();
    for (k, v) in QueryPairs::new(raw) {
        if k == b"info_hash" {
            if out.len() == max {
                return Err(QueryError::TooMany(max));
            }
            out.push(InfoHash(decode_id(v, "info_hash")?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash(*b"\x00\x01%&=+ ~abcXYZ\xff\x80\x7f?#/"),
            peer_id: PeerId(*b"-SH0100-\x00\xff\x10abcdef&=+"),
            port: 51413,
            uploaded: 1,
            downloaded: u64::MAX,
            left: 0,
            event: Event::Completed,
            compact: false,
            no_peer_id: true,
            numwant: Some(200),
            ip: Some("2001:db8::1".parse().unwrap()),
            key: Some(0xDEAD_BEEF),
        }
    }

    #[test]
    fn announce_round_trips_through_the_query() {
        let r = full();
        let q = r.to_query();
        assert!(q.is_ascii());
        assert_eq!(AnnounceRequest::parse_query(q.as_bytes()), Ok(r));
        let plain = AnnounceRequest::new(InfoHash([7; 20]), PeerId([8; 20]), 1, 5);
        assert_eq!(
            AnnounceRequest::parse_query(plain.to_query().as_bytes()),
            Ok(plain)
        );
    }

    #[test]
    fn parses_what_real_clients_send() {
        // Shape of a Transmission 3.00 announce (the ids are made up).
        let q = b"info_hash=%1a%2B%3c%4D%5e%6F%70%81%92%a3%b4%c5%d6%e7%f8%09%1a%2b%3c%4d\
                  &peer_id=-TR3000-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=1024\
                  &numwant=80&key=6c3b1f2a&compact=1&supportcrypto=1&event=started";
        let r = AnnounceRequest::parse_query(q).unwrap();
        assert_eq!(r.info_hash.to_hex(), "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d");
        assert_eq!(&r.peer_id.0[..8], b"-TR3000-");
        assert_eq!(
            (r.port, r.left, r.numwant, r.key),
            (51413, 1024, Some(80), Some(0x6c3b_1f2a))
        );
        assert_eq!((r.event, r.compact, r.no_peer_id), (Event::Started, true, false));
    }

    #[test]
    fn errors_name_the_parameter() {
        let good = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&left=0";
        let cases: &[(&str, QueryError)] = &[
            (
                "peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&left=0",
                QueryError::Missing("info_hash"),
            ),
            (
                "info_hash=aaaaaaaaaaaaaaaaaaaa&port=1&left=0",
                QueryError::Missing("peer_id"),
            ),
            (
                "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&left=0",
                QueryError::Missing("port"),
            ),
            (
                "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1",
                QueryError::Missing("left"),
            ),
            (
                "info_hash=short&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&left=0",
                QueryError::Malformed("info_hash"),
            ),
            (
                "info_hash=%zzaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb",
                QueryError::Malformed("info_hash"),
            ),
            (
                "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbbb",
                QueryError::Malformed("peer_id"),
            ),
            ("port=65536", QueryError::Malformed("port")),
            ("port=0", QueryError::Malformed("port")),
            ("port=-1", QueryError::Malformed("port")),
            ("left=18446744073709551616", QueryError::Malformed("left")),
            ("uploaded=1e3", QueryError::Malformed("uploaded")),
            ("downloaded=", QueryError::Malformed("downloaded")),
            ("event=paused", QueryError::Malformed("event")),
            ("numwant=x", QueryError::Malformed("numwant")),
            ("key=%", QueryError::Malformed("key")),
        ];
        for (q, want) in cases {
            // Single-parameter cases go before a complete query, so theirs is the first value.
            let q = if q.contains("info_hash") || q.contains("peer_id") {
                q.to_string()
            } else {
                format!("{q}&{good}")
            };
            assert_eq!(AnnounceRequest::parse_query(q.as_bytes()), Err(*want), "{q}");
        }
    }

    #[test]
    fn lenient_where_clients_differ() {
        let base = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&left=0";
        let r =
            AnnounceRequest::parse_query(format!("{base}&numwant=-1&ip=host.example&&x").as_bytes()).unwrap();
        assert_eq!((r.numwant, r.ip, r.compact), (None, None, true));
        let r = AnnounceRequest::parse_query(format!("{base}&port=2&key=not-hex-at-all&event=").as_bytes())
            .unwrap();
        assert_eq!(r.port, 1, "the first of a repeated parameter wins");
        assert!(r.key.is_some());
        assert_eq!(r.event, Event::None);
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte() {
        let q = full().to_query().into_bytes();
        for end in 0..=q.len() {
            let _ = AnnounceRequest::parse_query(&q[..end]);
            let _ = parse_scrape_query(&q[..end], 4);
        }
        for b in 0..=255u8 {
            let mut q = q.clone();
            for i in 0..q.len() {
                let old = q[i];
                q[i] = b;
                let _ = AnnounceRequest::parse_query(&q);
                q[i] = old;
            }
        }
    }

    #[test]
    fn scrape_query_round_trips_and_is_bounded() {
        let hashes = [
            InfoHash([0; 20]),
            InfoHash(*b"%%%%%%%%%%&&&&&&&&&&"),
            InfoHash([0; 20]),
        ];
        let q = scrape_query(&hashes);
        assert_eq!(parse_scrape_query(q.as_bytes(), 3).unwrap(), hashes);
        assert_eq!(parse_scrape_query(q.as_bytes(), 2), Err(QueryError::TooMany(2)));
        assert_eq!(parse_scrape_query(b"", 2).unwrap(), vec![]);
        assert_eq!(
            parse_scrape_query(b"info_hash=x", 2),
            Err(QueryError::Malformed("info_hash"))
        );
    }

    #[test]
    fn percent_decode_is_bounded() {
        let mut buf = [0u8; 2];
        assert_eq!(percent_decode(b"%41b", &mut buf), Some(2));
        assert_eq!(&buf, b"Ab");
        assert_eq!(percent_decode(b"abc", &mut buf), None);
        assert_eq!(percent_decode(b"%4", &mut buf), None);
        assert_eq!(percent_decode(b"+", &mut buf), Some(1));
        assert_eq!(buf[0], b'+');
    }
}
