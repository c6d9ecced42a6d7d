//! BEP 10 extension protocol: the extension handshake (extended message id 0).
//!
//! Each side lists the extensions it speaks in `m`, a dictionary from name to the message id
//! *it* wants to receive them under. Unknown keys are ignored; a malformed handshake is the
//! caller's to drop (it is not fatal to the connection).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Extended message id of the extension handshake.
pub const HANDSHAKE_ID: u8 = 0;

/// The extension handshake payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedHandshake {
    /// Extension name → the id the sender wants it under (0 means disabled).
    #[serde(default)]
    pub m: BTreeMap<String, i64>,
    /// The sender's listen port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<i64>,
    /// Client name and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<ByteBuf>,
    /// How many outstanding requests the sender accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reqq: Option<i64>,
    /// Our address as the sender sees it (4 or 16 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yourip: Option<ByteBuf>,
    /// The size of the sender's info dictionary, which it serves by `ut_metadata` (BEP 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_size: Option<i64>,
    /// The sender's chat nickname (a `share` key; other clients ignore it).
    #[serde(rename = "share_nick", default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<ByteBuf>,
}

impl ExtendedHandshake {
    /// Bencodes it.
    pub fn encode(&self) -> Vec<u8> {
        serde_bencode::to_bytes(self).expect("a handshake always encodes")
    }

    /// Parses a payload; `None` if it is not a well-formed handshake.
    pub fn decode(payload: &[u8]) -> Option<Self> {
        crate::bencode::validate(payload).ok()?;
        serde_bencode::from_bytes(payload).ok()
    }

    /// The id the sender wants `name` under, if it speaks it (1..=255).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m
            .get(name)
            .and_then(|&id| u8::try_from(id).ok())
            .filter(|&id| id != 0)
    }

    /// The sender's nickname, printable and at most 32 bytes.
    pub fn nick(&self) -> Option<String> {
        self.nick.as_ref().map(|n| {
            crate::chat::truncate(
                &crate::chat::sanitize(&String::from_utf8_lossy(n)),
                crate::chat::MAX_NICK,
            )
            .to_string()
        })
    }

    /// The client name, printable.
    pub fn client(&self) -> Option<String> {
        self.v.as_ref().map(|v| {
            String::from_utf8_lossy(v)
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let mut h = ExtendedHandshake {
            reqq: Some(250),
            v: Some(ByteBuf::from(b"share 0.1".to_vec())),
            ..Default::default()
        };
        h.m.insert("share_chat".into(), 3);
        h.m.insert("ut_pex".into(), 0);
        let bytes = h.encode();
        assert_eq!(
            bytes,
            b"d1:md10:share_chati3e6:ut_pexi0ee4:reqqi250e1:v9:share 0.1e"
        );
        let back = ExtendedHandshake::decode(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.id_of("share_chat"), Some(3));
        assert_eq!(back.id_of("ut_pex"), None);
        assert_eq!(back.id_of("ut_metadata"), None);
        assert_eq!(back.client().as_deref(), Some("share 0.1"));
    }

    #[test]
    fn tolerates_unknown_keys_and_refuses_garbage() {
        let h =
            ExtendedHandshake::decode(b"d1:md11:ut_metadatai2ee13:metadata_sizei5e1:v4:\x1b[0me").unwrap();
        assert_eq!(h.id_of("ut_metadata"), Some(2));
        assert_eq!(h.client().as_deref(), Some("[0m"));
        assert!(ExtendedHandshake::decode(b"d1:m").is_none());
        assert!(ExtendedHandshake::decode(b"i1e").is_none());
        assert!(ExtendedHandshake::decode(b"d1:mi1ee").is_none());
        assert!(ExtendedHandshake::decode(b"d1:md1:xi999999eee")
            .unwrap()
            .id_of("x")
            .is_none());
    }
}
