//! Peer exchange (BEP 11, `ut_pex`): connected peers tell each other whom else they are
//! connected to. A message lists addresses `added` and `dropped` since the last one, compact
//! (6 bytes an IPv4 address and port in `added`/`dropped`, 18 bytes an IPv6 one in
//! `added6`/`dropped6`); `added.f` carries a flag byte per added IPv4 peer, which we write
//! as 0 and do not read. At most [`MAX_ADDED`] of each list are read or written.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The extension's name in the BEP 10 handshake.
pub const EXTENSION: &str = "ut_pex";
/// Addresses read from or written to one list of a message (BEP 11: 50).
pub const MAX_ADDED: usize = 50;

/// One `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers the sender connected to since its last message.
    pub added: Vec<SocketAddr>,
    /// Peers it is no longer connected to.
    pub dropped: Vec<SocketAddr>,
}

#[derive(Serialize, Deserialize, Default)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    added: Option<ByteBuf>,
    #[serde(rename = "added.f", default, skip_serializing_if = "Option::is_none")]
    added_f: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    added6: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dropped6: Option<ByteBuf>,
}

fn compact(addrs: &[SocketAddr], v6: bool) -> Option<ByteBuf> {
    let mut out = Vec::new();
    for a in addrs.iter().filter(|a| a.is_ipv6() == v6).take(MAX_ADDED) {
        crate::compact::write(a, &mut out);
    }
    (!out.is_empty()).then(|| ByteBuf::from(out))
}

fn addrs(bytes: &Option<ByteBuf>, v6: bool) -> Vec<SocketAddr> {
    let Some(b) = bytes else { return Vec::new() };
    crate::compact::read(b, v6)
        .take(MAX_ADDED)
        .filter(|a| a.port() != 0)
        .collect()
}

impl PexMessage {
    /// The payload.
    pub fn encode(&self) -> Vec<u8> {
        let added = compact(&self.added, false);
        let wire = Wire {
            added_f: added.as_ref().map(|a| ByteBuf::from(vec![0u8; a.len() / 6])),
            added,
            added6: compact(&self.added, true),
            dropped: compact(&self.dropped, false),
            dropped6: compact(&self.dropped, true),
        };
        serde_bencode::to_bytes(&wire).expect("a dictionary of strings encodes")
    }

    /// Reads a payload; `None` if it is not a `ut_pex` dictionary.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        crate::bencode::validate(payload).ok()?;
        let wire: Wire = serde_bencode::from_bytes(payload).ok()?;
        let mut added = addrs(&wire.added, false);
        added.extend(addrs(&wire.added6, true));
        let mut dropped = addrs(&wire.dropped, false);
        dropped.extend(addrs(&wire.dropped6, true));
        Some(Self { added, dropped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_in_both_families_and_lists_are_capped() {
        let m = PexMessage {
            added: vec![
                "10.0.0.1:6881".parse().unwrap(),
                "[2001:db8::1]:7000".parse().unwrap(),
            ],
            dropped: vec!["10.0.0.2:51413".parse().unwrap()],
        };
        let bytes = m.encode();
        assert!(
            bytes.starts_with(b"d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f1:\x00"),
            "{bytes:?}"
        );
        assert_eq!(PexMessage::decode(&bytes), Some(m));
        let many = PexMessage {
            added: (1..=200u16)
                .map(|p| SocketAddr::from(([10, 0, 0, 1], p)))
                .collect(),
            dropped: vec![],
        };
        assert_eq!(PexMessage::decode(&many.encode()).unwrap().added.len(), MAX_ADDED);
        // Port 0 and a partial entry are skipped; junk is refused.
        let odd = b"d5:added8:\x0a\x00\x00\x01\x00\x00\x0a\x00e";
        assert_eq!(PexMessage::decode(odd), Some(PexMessage::default()));
        assert_eq!(PexMessage::decode(b"nope"), None);
        assert_eq!(PexMessage::decode(b"d5:addedi3ee"), None);
    }
}
