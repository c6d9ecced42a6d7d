//! The `share_chat` BEP 10 extension: chat messages carried over peer-wire connections.
//!
//! A message is a bencoded dictionary: `o` origin peer id (20 bytes), `s` sequence number per
//! origin, `t` unix time in milliseconds, `n` nickname (≤ 32 bytes of UTF-8), `m` text
//! (≤ 1,024 bytes of UTF-8), `h` hops left (≤ 6), and for a direct message `to`, the target's
//! peer id. Decoding checks every limit; [`sanitize`] (the crate's one sanitizer, in
//! [`crate::sanitize`]) strips control characters and terminal escape sequences before anything
//! is displayed.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::hash::PeerId;

/// The extension's name in the BEP 10 handshake.
pub const EXTENSION: &str = "share_chat";
/// The longest nickname, in bytes of UTF-8.
pub const MAX_NICK: usize = 32;
/// The longest text, in bytes of UTF-8.
pub const MAX_TEXT: usize = 1024;
/// Hops a room message starts with.
pub const MAX_HOPS: u8 = 6;
/// The largest payload we decode (a full message is about 1.2 KB).
pub const MAX_PAYLOAD: usize = 2048;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who wrote it.
    pub origin: PeerId,
    /// Its number among the origin's messages.
    pub seq: u64,
    /// When it was written, unix milliseconds (the author's clock).
    pub time_ms: u64,
    /// The author's nickname.
    pub nick: String,
    /// The text.
    pub text: String,
    /// How many more times it may be forwarded.
    pub hops: u8,
    /// For a direct message, its target.
    pub to: Option<PeerId>,
}

/// Why a chat payload is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Too large to be a chat message.
    #[error("chat payload of {0} bytes is over the {MAX_PAYLOAD} allowed")]
    TooLarge(usize),
    /// Not a bencoded chat dictionary.
    #[error("malformed chat message")]
    Malformed,
    /// A field that is not UTF-8.
    #[error("chat {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A nickname or text over its limit, or an empty text.
    #[error("chat {0} is empty or too long")]
    Length(&'static str),
    /// A peer id that is not 20 bytes.
    #[error("chat {0} is not a 20-byte peer id")]
    BadId(&'static str),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    h: i64,
    m: ByteBuf,
    n: ByteBuf,
    o: ByteBuf,
    s: i64,
    t: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<ByteBuf>,
}

impl ChatMessage {
    /// The bencoded payload.
    pub fn encode(&self) -> Vec<u8> {
        let w = Wire {
            h: i64::from(self.hops),
            m: ByteBuf::from(self.text.as_bytes().to_vec()),
            n: ByteBuf::from(self.nick.as_bytes().to_vec()),
            o: ByteBuf::from(self.origin.0.to_vec()),
            s: i64::try_from(self.seq).unwrap_or(i64::MAX),
            t: i64::try_from(self.time_ms).unwrap_or(i64::MAX),
            to: self.to.map(|t| ByteBuf::from(t.0.to_vec())),
        };
        serde_bencode::to_bytes(&w).expect("a chat message always encodes")
    }

    /// Decodes and checks a payload from a peer. Text and nickname are kept as sent (they
    /// are UTF-8 within limits); display code must still [`sanitize`] them.
    pub fn decode(payload: &[u8]) -> Result<Self, ChatError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(ChatError::TooLarge(payload.len()));
        }
        crate::bencode::validate(payload).map_err(|_| ChatError::Malformed)?;
        let w: Wire = serde_bencode::from_bytes(payload).map_err(|_| ChatError::Malformed)?;
        let text = String::from_utf8(w.m.into_vec()).map_err(|_| ChatError::NotUtf8("text"))?;
        let nick = String::from_utf8(w.n.into_vec()).map_err(|_| ChatError::NotUtf8("nickname"))?;
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err(ChatError::Length("text"));
        }
        if nick.len() > MAX_NICK {
            return Err(ChatError::Length("nickname"));
        }
        let origin = PeerId::from_slice(&w.o).ok_or(ChatError::BadId("origin"))?;
        let to = match w.to {
            Some(t) => Some(PeerId::from_slice(&t).ok_or(ChatError::BadId("target"))?),
            None => None,
        };
        Ok(Self {
            origin,
            seq: u64::try_from(w.s).map_err(|_| ChatError::Malformed)?,
            time_ms: u64::try_from(w.t).unwrap_or(0),
            nick,
            text,
            hops: u8::try_from(w.h.clamp(0, i64::from(MAX_HOPS))).unwrap_or(0),
            to,
        })
    }
}

/// The one sanitizer for strangers' text (see [`crate::sanitize`]), here too because chat
/// was its first user.
pub use crate::sanitize::sanitize;

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> ChatMessage {
        ChatMessage {
            origin: PeerId([1; 20]),
            seq: 7,
            time_ms: 1_700_000_000_000,
            nick: "ana".into(),
            text: "héllo".into(),
            hops: 6,
            to: None,
        }
    }

    #[test]
    fn round_trip() {
        let m = msg();
        assert_eq!(ChatMessage::decode(&m.encode()), Ok(m.clone()));
        let direct = ChatMessage {
            to: Some(PeerId([2; 20])),
            ..m
        };
        assert_eq!(ChatMessage::decode(&direct.encode()), Ok(direct));
    }

    #[test]
    fn limits_are_checked() {
        let long = ChatMessage {
            text: "x".repeat(MAX_TEXT + 1),
            ..msg()
        };
        assert_eq!(
            ChatMessage::decode(&long.encode()),
            Err(ChatError::Length("text"))
        );
        let empty = ChatMessage {
            text: String::new(),
            ..msg()
        };
        assert_eq!(
            ChatMessage::decode(&empty.encode()),
            Err(ChatError::Length("text"))
        );
        let nick = ChatMessage {
            nick: "n".repeat(MAX_NICK + 1),
            ..msg()
        };
        assert_eq!(
            ChatMessage::decode(&nick.encode()),
            Err(ChatError::Length("nickname"))
        );
        assert_eq!(
            ChatMessage::decode(&vec![b'x'; MAX_PAYLOAD + 1]),
            Err(ChatError::TooLarge(MAX_PAYLOAD + 1))
        );
        assert_eq!(ChatMessage::decode(b"d1:hi1ee"), Err(ChatError::Malformed));
        assert_eq!(ChatMessage::decode(b"not bencode"), Err(ChatError::Malformed));
        let bad_utf8 = msg().encode().replace_bytes(b"6:h\xc3\xa9llo", b"6:h\xff\xfello");
        assert_eq!(ChatMessage::decode(&bad_utf8), Err(ChatError::NotUtf8("text")));
        let many_hops = msg().encode().replace_bytes(b"1:hi6e", b"1:hi99e");
        assert_eq!(
            ChatMessage::decode(&many_hops).unwrap().hops,
            MAX_HOPS,
            "hops are capped"
        );
        let short_id = msg()
            .encode()
            .replace_bytes(&[b'2', b'0', b':', 1, 1], &[b'1', b'9', b':', 1]);
        assert_eq!(ChatMessage::decode(&short_id), Err(ChatError::BadId("origin")));
    }

    trait Replace {
        fn replace_bytes(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
    }

    impl Replace for Vec<u8> {
        fn replace_bytes(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
            let i = self
                .windows(from.len())
                .position(|w| w == from)
                .expect("pattern present");
            [&self[..i], to, &self[i + from.len()..]].concat()
        }
    }

    #[test]
    fn truncate_at_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
