//! The tracker's bencoded responses, written by hand straight into one pre-sized buffer.
//!
//! Dictionary keys are written in sorted byte order, as bencode requires. Tests compare every
//! shape byte for byte with serde_bencode's encoding of the same response.

use std::io::Write as _;

use share_proto::announce::ScrapeStats;
use share_proto::InfoHash;

use crate::swarm::Announced;

fn uint(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    uint(out, n);
    out.push(b'e');
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    uint(out, b.len() as u64);
    out.push(b':');
    out.extend_from_slice(b);
}

/// Options of one announce response.
#[derive(Debug, Clone, Copy)]
pub struct AnnounceShape {
    /// `interval`.
    pub interval: u32,
    /// `min interval`.
    pub min_interval: u32,
    /// Compact strings (BEP 23/7) rather than a list of dictionaries.
    pub compact: bool,
    /// In dictionary form, leave out `peer id`.
    pub no_peer_id: bool,
}

/// An announce response: `complete`, `incomplete`, `interval`, `min interval`, `peers`, then
/// `peers6` when compact and any peer is IPv6, then `warning message` when there is one.
pub fn announce(a: &Announced, shape: AnnounceShape) -> Vec<u8> {
    let mut out = Vec::with_capacity(112 + a.peers.len() * if shape.compact { 6 } else { 64 });
    out.push(b'd');
    out.extend_from_slice(b"8:complete");
    int(&mut out, a.complete.into());
    out.extend_from_slice(b"10:incomplete");
    int(&mut out, a.incomplete.into());
    out.extend_from_slice(b"8:interval");
    int(&mut out, shape.interval.into());
    out.extend_from_slice(b"12:min interval");
    int(&mut out, shape.min_interval.into());
    out.extend_from_slice(b"5:peers");
    if shape.compact {
        let v4 = a.peers.iter().filter(|p| p.v4().is_some()).count();
        uint(&mut out, v4 as u64 * 6);
        out.push(b':');
        for p in &a.peers {
            if let Some(ip) = p.v4() {
                out.extend_from_slice(&ip.octets());
                out.extend_from_slice(&p.port.to_be_bytes());
            }
        }
        let v6 = a.peers.len() - v4;
        if v6 > 0 {
            out.extend_from_slice(b"6:peers6");
            uint(&mut out, v6 as u64 * 18);
            out.push(b':');
            for p in a.peers.iter().filter(|p| p.v4().is_none()) {
                out.extend_from_slice(&p.ip.octets());
                out.extend_from_slice(&p.port.to_be_bytes());
            }
        }
    } else {
        out.push(b'l');
        let mut ip = Vec::with_capacity(40);
        for p in &a.peers {
            ip.clear();
            // Writing into a Vec cannot fail.
            let _ = match p.v4() {
                Some(v4) => write!(ip, "{v4}"),
                None => write!(ip, "{}", p.ip),
            };
            out.extend_from_slice(b"d2:ip");
            bytes(&mut out, &ip);
            if !shape.no_peer_id {
                out.extend_from_slice(b"7:peer id");
                bytes(&mut out, p.peer_id.as_bytes());
            }
            out.extend_from_slice(b"4:port");
            int(&mut out, p.port.into());
            out.push(b'e');
        }
        out.push(b'e');
    }
    if let Some(w) = a.warning {
        out.extend_from_slice(b"15:warning message");
        bytes(&mut out, w.as_bytes());
    }
    out.push(b'e');
    out
}

/// `d14:failure reason<reason>e`.
pub fn failure(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + reason.len());
    out.extend_from_slice(b"d14:failure reason");
    bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

/// A scrape response (BEP 48). `files` must be sorted by info hash without duplicates.
pub fn scrape(files: &[(InfoHash, ScrapeStats)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + files.len() * 80);
    out.extend_from_slice(b"d5:filesd");
    for (hash, s) in files {
        bytes(&mut out, hash.as_bytes());
        out.extend_from_slice(b"d8:complete");
        int(&mut out, s.complete.into());
        out.extend_from_slice(b"10:downloaded");
        int(&mut out, s.downloaded.into());
        out.extend_from_slice(b"10:incomplete");
        int(&mut out, s.incomplete.into());
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

#[cfg(test)]
#[path = "bencode_tests.rs"]
mod tests;
