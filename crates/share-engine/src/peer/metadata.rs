//! Serving our info dictionary by `ut_metadata` (BEP 9), so a peer that came from a magnet
//! link can start: each request is answered with its 16 KiB piece of the info dictionary's
//! exact bytes (those the info hash is taken over), or a reject for a piece that does not
//! exist. A connection may ask for every piece a few times over; past that it is a
//! violation.

use bytes::Bytes;
use share_proto::metadata::{self, MetadataMsg};
use share_proto::wire::Message;

use super::Conn;
use crate::error::{PeerError, Violation};

/// The extended message id we ask peers to send `ut_metadata` under.
pub(crate) const METADATA_ID: u8 = 2;

/// Requests a connection may make: every piece this many times, plus a few.
const REQUESTS_PER_PIECE: u32 = 4;

impl Conn {
    /// The size we announce in our extension handshake, if we serve the metadata.
    pub(super) fn metadata_size(&self) -> Option<i64> {
        let n = self.shared.meta.info_bytes.len();
        (n <= metadata::MAX_METADATA).then_some(n as i64)
    }

    pub(super) fn on_metadata(&mut self, payload: &[u8]) -> Result<(), PeerError> {
        let msg = MetadataMsg::decode(payload).map_err(Violation::Metadata)?;
        let MetadataMsg::Request { piece } = msg else {
            // We never ask within a torrent: the magnet fetch has connections of its own.
            return Ok(());
        };
        self.metadata_requests += 1;
        let info = &self.shared.meta.info_bytes;
        let allowed = REQUESTS_PER_PIECE * metadata::piece_count(info.len()) as u32 + 8;
        if self.metadata_requests > allowed {
            return Err(Violation::MetadataFlood(self.metadata_requests).into());
        }
        // A peer that did not say where it wants `ut_metadata` gets nothing.
        let Some(id) = self.metadata_id else {
            return Ok(());
        };
        let served = self.metadata_size().is_some();
        let reply = match metadata::piece_len(info.len(), piece as usize) {
            Some(len) if served => {
                let start = piece as usize * metadata::PIECE;
                MetadataMsg::Data {
                    piece,
                    total_size: info.len() as u32,
                    data: info[start..start + len].to_vec(),
                }
            }
            _ => MetadataMsg::Reject { piece },
        };
        self.send(Message::Extended {
            id,
            payload: Bytes::from(reply.encode()),
        })
    }
}
