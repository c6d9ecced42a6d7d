//! The metadata exchange (BEP 9, `ut_metadata`): the info dictionary travels in 16 KiB
//! pieces, each asked for with a `request`, answered with `data` (a bencoded dictionary
//! followed by the piece's raw bytes) or `reject`. The extension handshake says how large
//! the whole is (`metadata_size`); it is capped at [`MAX_METADATA`], and the whole is
//! trusted only once its SHA-1 is the info hash.

use serde::{Deserialize, Serialize};

/// Bytes in a metadata piece (the last may be shorter).
pub const PIECE: usize = 16 * 1024;
/// The largest info dictionary accepted or served.
pub const MAX_METADATA: usize = 16 * 1024 * 1024;
/// The extension's name in the BEP 10 handshake.
pub const EXTENSION: &str = "ut_metadata";

/// Why a `ut_metadata` payload is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Not a bencoded dictionary of the message's keys.
    #[error("malformed ut_metadata message")]
    Malformed,
    /// A `msg_type` other than 0, 1, 2.
    #[error("unknown ut_metadata message type {0}")]
    Type(i64),
    /// A piece index past the metadata, or a data piece of the wrong length.
    #[error("ut_metadata piece {0} is out of range or the wrong size")]
    Piece(i64),
}

/// One `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMsg {
    /// Asks for piece `piece`.
    Request {
        /// The piece.
        piece: u32,
    },
    /// Piece `piece` of a whole of `total_size` bytes.
    Data {
        /// The piece.
        piece: u32,
        /// The whole's size.
        total_size: u32,
        /// The piece's bytes.
        data: Vec<u8>,
    },
    /// Piece `piece` will not be sent.
    Reject {
        /// The piece.
        piece: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct Head {
    msg_type: i64,
    piece: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_size: Option<i64>,
}

/// Pieces of a whole of `size` bytes.
pub fn piece_count(size: usize) -> usize {
    size.div_ceil(PIECE)
}

/// The length of piece `piece` of a whole of `size` bytes, if it has one.
pub fn piece_len(size: usize, piece: usize) -> Option<usize> {
    let start = piece.checked_mul(PIECE)?;
    (start < size).then(|| (size - start).min(PIECE))
}

impl MetadataMsg {
    /// The payload (after the extended message id).
    pub fn encode(&self) -> Vec<u8> {
        let (head, data) = match self {
            MetadataMsg::Request { piece } => (
                Head {
                    msg_type: 0,
                    piece: i64::from(*piece),
                    total_size: None,
                },
                &[][..],
            ),
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => (
                Head {
                    msg_type: 1,
                    piece: i64::from(*piece),
                    total_size: Some(i64::from(*total_size)),
                },
                &data[..],
            ),
            MetadataMsg::Reject { piece } => (
                Head {
                    msg_type: 2,
                    piece: i64::from(*piece),
                    total_size: None,
                },
                &[][..],
            ),
        };
        let mut out = serde_bencode::to_bytes(&head).expect("a dictionary of integers encodes");
        out.extend_from_slice(data);
        out
    }

    /// Reads a payload. A data piece must be whole: [`PIECE`] bytes, or the rest of a whole
    /// of at most [`MAX_METADATA`] bytes.
    pub fn decode(payload: &[u8]) -> Result<Self, MetadataError> {
        let end = crate::bencode::value_end(payload).map_err(|_| MetadataError::Malformed)?;
        let (head, rest) = payload.split_at(end);
        let head: Head = serde_bencode::from_bytes(head).map_err(|_| MetadataError::Malformed)?;
        let piece = u32::try_from(head.piece).map_err(|_| MetadataError::Piece(head.piece))?;
        match head.msg_type {
            0 | 2 if !rest.is_empty() => Err(MetadataError::Malformed),
            0 => Ok(MetadataMsg::Request { piece }),
            2 => Ok(MetadataMsg::Reject { piece }),
            1 => {
                let size = head.total_size.ok_or(MetadataError::Malformed)?;
                let total_size = u32::try_from(size)
                    .ok()
                    .filter(|s| (1..=MAX_METADATA as u32).contains(s))
                    .ok_or(MetadataError::Piece(head.piece))?;
                if piece_len(total_size as usize, piece as usize) != Some(rest.len()) {
                    return Err(MetadataError::Piece(head.piece));
                }
                Ok(MetadataMsg::Data {
                    piece,
                    total_size,
                    data: rest.to_vec(),
                })
            }
            other => Err(MetadataError::Type(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_bep_9s_layout() {
        let r = MetadataMsg::Request { piece: 3 };
        assert_eq!(r.encode(), b"d8:msg_typei0e5:piecei3ee");
        assert_eq!(MetadataMsg::decode(&r.encode()), Ok(r));
        let d = MetadataMsg::Data {
            piece: 1,
            total_size: (PIECE + 5) as u32,
            data: vec![7; 5],
        };
        let bytes = d.encode();
        assert!(bytes.starts_with(b"d8:msg_typei1e5:piecei1e10:total_sizei16389ee"));
        assert_eq!(MetadataMsg::decode(&bytes), Ok(d));
        let x = MetadataMsg::Reject { piece: 0 };
        assert_eq!(MetadataMsg::decode(&x.encode()), Ok(x));
    }

    #[test]
    fn bad_messages_are_errors() {
        let data = |piece: u32, total: u32, len: usize| {
            MetadataMsg::decode(
                &MetadataMsg::Data {
                    piece,
                    total_size: total,
                    data: vec![0; len],
                }
                .encode(),
            )
        };
        assert!(data(0, 100, 100).is_ok());
        assert_eq!(data(0, 100, 99), Err(MetadataError::Piece(0)), "short");
        assert_eq!(data(1, 100, 0), Err(MetadataError::Piece(1)), "past the end");
        assert_eq!(
            data(0, MAX_METADATA as u32 + 1, PIECE),
            Err(MetadataError::Piece(0)),
            "too large"
        );
        assert_eq!(
            MetadataMsg::decode(b"d8:msg_typei7e5:piecei0ee"),
            Err(MetadataError::Type(7))
        );
        assert_eq!(
            MetadataMsg::decode(b"d8:msg_typei0e5:piecei-1ee"),
            Err(MetadataError::Piece(-1))
        );
        assert_eq!(
            MetadataMsg::decode(b"d8:msg_typei0e5:piecei0eexx"),
            Err(MetadataError::Malformed)
        );
        assert_eq!(MetadataMsg::decode(b"garbage"), Err(MetadataError::Malformed));
        assert_eq!(MetadataMsg::decode(b""), Err(MetadataError::Malformed));
        assert_eq!(
            (
                piece_count(0),
                piece_count(1),
                piece_count(PIECE),
                piece_count(PIECE + 1)
            ),
            (0, 1, 1, 2)
        );
    }
}
