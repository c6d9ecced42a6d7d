//! Magnet links (BEP 9, with BEP 53's `x.pe` peers): what a link names (the info hash, a
//! display name, trackers, peers), parsed with limits, and written for a manifest.
//!
//! `magnet:?xt=urn:btih:HASH&dn=NAME&tr=URL&x.pe=HOST:PORT`: the hash is 40 hex digits or 32
//! base32 characters (RFC 4648, either case); values are percent-encoded (`+` in a name is
//! a space, as forms write it). Keys we do not use are ignored; a v2-only link (`btmh`
//! without `btih`) is refused as not supported yet.

use crate::announce::percent_decode;
use crate::hash::InfoHash;

/// The longest link read.
pub const MAX_LINK: usize = 64 * 1024;
/// Trackers, and peers, kept from one link.
pub const MAX_ENTRIES: usize = 100;

/// Why a text is not a magnet link we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// Not `magnet:?...`.
    #[error("not a magnet link (it must start with \"magnet:?\")")]
    NotMagnet,
    /// Longer than [`MAX_LINK`].
    #[error("the magnet link is {0} bytes; at most {MAX_LINK} are read")]
    TooLong(usize),
    /// No `xt=urn:btih:`.
    #[error("the magnet link names no BitTorrent info hash (xt=urn:btih:...)")]
    NoHash,
    /// Only a v2 hash.
    #[error("v2-only magnet links (xt=urn:btmh:...) are not supported yet")]
    V2Only,
    /// A hash that is neither 40 hex digits nor 32 base32 characters.
    #[error("the info hash {0:?} is neither 40 hex digits nor 32 base32 characters")]
    BadHash(String),
    /// A broken `%` escape.
    #[error("the magnet link's {0} value has a broken %-escape")]
    Escape(String),
}

/// What a magnet link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info hash.
    pub info_hash: InfoHash,
    /// The display name (`dn`), if any; untrusted text, sanitize before showing.
    pub name: Option<String>,
    /// Tracker URLs (`tr`), at most [`MAX_ENTRIES`].
    pub trackers: Vec<String>,
    /// Peers (`x.pe`, `HOST:PORT`), at most [`MAX_ENTRIES`].
    pub peers: Vec<String>,
}

fn decode(key: &str, value: &[u8]) -> Result<String, MagnetError> {
    let mut out = vec![0u8; value.len()];
    let n = percent_decode(value, &mut out).ok_or_else(|| MagnetError::Escape(key.into()))?;
    out.truncate(n);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// RFC 4648 base32 (no padding) of 32 characters into 20 bytes.
fn base32(text: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
    for c in text.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = acc << 5 | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (n == 20 && text.len() == 32).then_some(out)
}

fn hash_of(text: &str) -> Result<InfoHash, MagnetError> {
    if text.len() == 40 {
        if let Some(h) = InfoHash::from_hex(&text.to_ascii_lowercase()) {
            return Ok(h);
        }
    }
    base32(text)
        .map(InfoHash)
        .ok_or_else(|| MagnetError::BadHash(text.chars().take(64).collect()))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Magnet {
    /// Parses a magnet link.
    pub fn parse(link: &str) -> Result<Self, MagnetError> {
        if link.len() > MAX_LINK {
            return Err(MagnetError::TooLong(link.len()));
        }
        let query = link
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &link[8..])
            .ok_or(MagnetError::NotMagnet)?;
        let (mut hash, mut v2, mut name) = (None, false, None);
        let (mut trackers, mut peers) = (Vec::new(), Vec::new());
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "xt" => {
                    let value = decode(key, value.as_bytes())?;
                    if let Some(h) = value.strip_prefix("urn:btih:") {
                        hash.get_or_insert(hash_of(h)?);
                    } else if value.starts_with("urn:btmh:") {
                        v2 = true;
                    }
                }
                "dn" => name = Some(decode(key, value.replace('+', " ").as_bytes())?),
                "tr" if trackers.len() < MAX_ENTRIES => {
                    let t = decode(key, value.as_bytes())?;
                    if !t.is_empty() && !trackers.contains(&t) {
                        trackers.push(t);
                    }
                }
                "x.pe" if peers.len() < MAX_ENTRIES => {
                    let p = decode(key, value.as_bytes())?;
                    if !p.is_empty() && !peers.contains(&p) {
                        peers.push(p);
                    }
                }
                _ => {}
            }
        }
        let info_hash = match hash {
            Some(h) => h,
            None if v2 => return Err(MagnetError::V2Only),
            None => return Err(MagnetError::NoHash),
        };
        Ok(Self {
            info_hash,
            name,
            trackers,
            peers,
        })
    }

    /// The link: `magnet:?xt=urn:btih:HEX`, then `dn`, every `tr` and every `x.pe`.
    pub fn to_link(&self) -> String {
        let mut link = format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex());
        if let Some(name) = &self.name {
            link.push_str(&format!("&dn={}", encode(name)));
        }
        for t in &self.trackers {
            link.push_str(&format!("&tr={}", encode(t)));
        }
        for p in &self.peers {
            link.push_str(&format!("&x.pe={}", encode(p)));
        }
        link
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn a_link_round_trips_with_its_name_trackers_and_peers() {
        let m = Magnet {
            info_hash: InfoHash::from_hex(HEX).unwrap(),
            name: Some("My File & Co.iso".into()),
            trackers: vec![
                "http://t.example:6969/announce?x=1".into(),
                "udp://u.example:80".into(),
            ],
            peers: vec!["10.0.0.1:6881".into(), "[::1]:7000".into()],
        };
        let link = m.to_link();
        assert!(link.starts_with(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=My%20File%20%26%20Co.iso&tr=http%3A%2F%2F"
        )));
        assert_eq!(Magnet::parse(&link), Ok(m));
    }

    #[test]
    fn hex_and_base32_hashes_in_either_case_name_the_same_torrent() {
        let hex = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", HEX.to_uppercase())).unwrap();
        // The same 20 bytes in base32 (RFC 4648).
        let b32 = Magnet::parse("MAGNET:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=a+b").unwrap();
        assert_eq!(hex.info_hash, b32.info_hash);
        assert_eq!(b32.name.as_deref(), Some("a b"));
        let lower = Magnet::parse("magnet:?xt=urn:btih:yex6dqdlxisuvhoj6um3gnnkpqjwpkek").unwrap();
        assert_eq!(lower.info_hash, hex.info_hash);
    }

    #[test]
    fn bad_links_are_refused_with_the_reason() {
        assert_eq!(Magnet::parse("http://x"), Err(MagnetError::NotMagnet));
        assert_eq!(Magnet::parse("magnet:?dn=x"), Err(MagnetError::NoHash));
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btmh:1220abcd"),
            Err(MagnetError::V2Only)
        );
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btih:1234"),
            Err(MagnetError::BadHash(_))
        ));
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{}", "g".repeat(40))),
            Err(MagnetError::BadHash(_))
        ));
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&tr=%zz")),
            Err(MagnetError::Escape("tr".into()))
        );
        let long = format!("magnet:?xt=urn:btih:{HEX}&dn={}", "a".repeat(MAX_LINK));
        assert!(matches!(Magnet::parse(&long), Err(MagnetError::TooLong(_))));
        // Many trackers: at most MAX_ENTRIES kept, duplicates once.
        let many: String = (0..300)
            .map(|i| format!("&tr=http://t{}.example/a", i % 150))
            .collect();
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}{many}")).unwrap();
        assert_eq!(m.trackers.len(), MAX_ENTRIES);
    }
}
