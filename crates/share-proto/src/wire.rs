//! The peer wire protocol (BEP 3) with the BEP 10 extension bit: the handshake, and a strict
//! message codec over `BytesMut` with no runtime in it (the engine wraps it in a tokio-util
//! codec).
//!
//! Strictness, so nothing downstream trusts a length it did not check: a frame longer than
//! the decoder's maximum is refused as soon as its length prefix is read (before buffering
//! it); every message id has an exact length (or a minimum, for `bitfield`, `piece` and
//! `extended`); a `piece` carries at most [`MAX_REQUEST_LEN`] bytes. Unknown ids are
//! returned as [`Message::Unknown`] for the caller to skip, as BEP 3 asks.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::geometry::MAX_REQUEST_LEN;
use crate::hash::{InfoHash, PeerId};

/// `\x13BitTorrent protocol`.
pub const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";
/// Bytes in a handshake.
pub const HANDSHAKE_LEN: usize = 68;
/// Default largest frame: a 128 KiB block with its header, with room to spare. Bitfields of
/// very large torrents need more; the engine raises it to fit the torrent's bitfield.
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;

/// The opening 68 bytes of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: [u8; 8],
    /// The swarm.
    pub info_hash: InfoHash,
    /// The sender.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Our handshake: BEP 10 extension protocol advertised (bit 20 from the right).
    pub fn ours(info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut reserved = [0u8; 8];
        reserved[5] |= 0x10;
        Self {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// Whether the sender speaks BEP 10 extension messages.
    pub fn supports_extended(&self) -> bool {
        self.reserved[5] & 0x10 != 0
    }

    /// Advertises a DHT node (BEP 5: the last reserved bit); a PORT message follows.
    pub fn with_dht(mut self) -> Self {
        self.reserved[7] |= 0x01;
        self
    }

    /// Whether the sender runs a DHT node (and may be told our node's port).
    pub fn supports_dht(&self) -> bool {
        self.reserved[7] & 0x01 != 0
    }

    /// The wire form.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(self.info_hash.as_bytes());
        out[48..].copy_from_slice(self.peer_id.as_bytes());
        out
    }

    /// Parses 68 bytes; fails if the protocol string is not BitTorrent's.
    pub fn decode(b: &[u8; HANDSHAKE_LEN]) -> Result<Self, WireError> {
        if &b[..20] != PROTOCOL {
            return Err(WireError::NotBitTorrent);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&b[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&b[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&b[48..68]);
        Ok(Self {
            reserved,
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }
}

/// A request or cancel: `length` bytes at `begin` of piece `index`, unchecked against the
/// torrent (the engine checks it with `Geometry::check_block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRequest {
    /// Piece index.
    pub index: u32,
    /// Offset in the piece.
    pub begin: u32,
    /// Length.
    pub length: u32,
}

/// One peer-wire message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A zero-length frame.
    KeepAlive,
    /// id 0.
    Choke,
    /// id 1.
    Unchoke,
    /// id 2.
    Interested,
    /// id 3.
    NotInterested,
    /// id 4: the sender has this piece now.
    Have(u32),
    /// id 5: the sender's pieces (checked against the torrent by `Bitfield::from_wire`).
    Bitfield(Bytes),
    /// id 6.
    Request(BlockRequest),
    /// id 7: a block of data.
    Piece {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// The block, at most 128 KiB.
        data: Bytes,
    },
    /// id 8.
    Cancel(BlockRequest),
    /// id 9: the sender's DHT port.
    Port(u16),
    /// id 20: a BEP 10 extension message (`id` 0 is the extension handshake).
    Extended {
        /// Extension message id, as the receiver assigned it.
        id: u8,
        /// The bencoded (or extension-defined) payload.
        payload: Bytes,
    },
    /// Any other id: its payload is skipped.
    Unknown(u8),
}

/// What is wrong with bytes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The handshake did not start with `\x13BitTorrent protocol`.
    #[error("the handshake is not BitTorrent's")]
    NotBitTorrent,
    /// A frame longer than allowed.
    #[error("frame of {len} bytes is longer than the {max} allowed")]
    FrameTooLong {
        /// The length prefix.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A message whose length does not fit its id.
    #[error("message id {id} with {len} bytes of payload has the wrong length")]
    BadLength {
        /// Message id.
        id: u8,
        /// Payload bytes after the id.
        len: usize,
    },
}

/// Decodes length-prefixed messages with a maximum frame length.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max_frame: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder {
    /// A decoder refusing frames over `max_frame` bytes (not counting the 4-byte prefix).
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// Takes one message off the front of `buf`, if a whole one is there. On `Ok(None)` it
    /// has reserved room for the rest of the frame.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame {
            return Err(WireError::FrameTooLong {
                len,
                max: self.max_frame,
            });
        }
        if buf.len() < 4 + len {
            buf.reserve(4 + len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        if len == 0 {
            return Ok(Some(Message::KeepAlive));
        }
        let mut frame = buf.split_to(len);
        let id = frame.get_u8();
        let n = frame.len();
        let exact = |want: usize| {
            if n == want {
                Ok(())
            } else {
                Err(WireError::BadLength { id, len: n })
            }
        };
        let msg = match id {
            0 => exact(0).map(|()| Message::Choke)?,
            1 => exact(0).map(|()| Message::Unchoke)?,
            2 => exact(0).map(|()| Message::Interested)?,
            3 => exact(0).map(|()| Message::NotInterested)?,
            4 => exact(4).map(|()| Message::Have(frame.get_u32()))?,
            5 if n >= 1 => Message::Bitfield(frame.freeze()),
            6 | 8 => {
                exact(12)?;
                let r = BlockRequest {
                    index: frame.get_u32(),
                    begin: frame.get_u32(),
                    length: frame.get_u32(),
                };
                if id == 6 {
                    Message::Request(r)
                } else {
                    Message::Cancel(r)
                }
            }
            7 if n > 8 && n - 8 <= MAX_REQUEST_LEN as usize => {
                let index = frame.get_u32();
                let begin = frame.get_u32();
                Message::Piece {
                    index,
                    begin,
                    data: frame.freeze(),
                }
            }
            9 => exact(2).map(|()| Message::Port(frame.get_u16()))?,
            20 if n >= 1 => Message::Extended {
                id: frame.get_u8(),
                payload: frame.freeze(),
            },
            5 | 7 | 20 => return Err(WireError::BadLength { id, len: n }),
            other => Message::Unknown(other),
        };
        Ok(Some(msg))
    }
}

/// Appends the wire form of `msg` to `buf`.
pub fn encode(msg: &Message, buf: &mut BytesMut) {
    let simple = |buf: &mut BytesMut, id: u8| {
        buf.put_u32(1);
        buf.put_u8(id);
    };
    match msg {
        Message::KeepAlive => buf.put_u32(0),
        Message::Choke => simple(buf, 0),
        Message::Unchoke => simple(buf, 1),
        Message::Interested => simple(buf, 2),
        Message::NotInterested => simple(buf, 3),
        Message::Have(i) => {
            buf.put_u32(5);
            buf.put_u8(4);
            buf.put_u32(*i);
        }
        Message::Bitfield(b) => {
            buf.put_u32(1 + b.len() as u32);
            buf.put_u8(5);
            buf.put_slice(b);
        }
        Message::Request(r) | Message::Cancel(r) => {
            buf.put_u32(13);
            buf.put_u8(if matches!(msg, Message::Request(_)) { 6 } else { 8 });
            buf.put_u32(r.index);
            buf.put_u32(r.begin);
            buf.put_u32(r.length);
        }
        Message::Piece { index, begin, data } => {
            buf.reserve(13 + data.len());
            buf.put_u32(9 + data.len() as u32);
            buf.put_u8(7);
            buf.put_u32(*index);
            buf.put_u32(*begin);
            buf.put_slice(data);
        }
        Message::Port(p) => {
            buf.put_u32(3);
            buf.put_u8(9);
            buf.put_u16(*p);
        }
        Message::Extended { id, payload } => {
            buf.put_u32(2 + payload.len() as u32);
            buf.put_u8(20);
            buf.put_u8(*id);
            buf.put_slice(payload);
        }
        // Never sent: an unknown id has no payload we could write.
        Message::Unknown(id) => simple(buf, *id),
    }
}

#[cfg(test)]
mod tests;
