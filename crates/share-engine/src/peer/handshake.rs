//! The peer-wire handshake (registering the connected peer in its torrent is
//! `Shared::register`, `link.rs`).

use share_proto::wire::{self, Handshake, HANDSHAKE_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{PeerError, Refusal};
use crate::session::HEAD_LEN;

use super::Opening;
use crate::torrent::Shared;

/// Runs the handshake. For an incoming connection the session has read the first 48 bytes
/// (protocol, reserved bits, info hash) to route it here; we reply, then read the peer id.
/// A dialed connection sends ours first (unless MSE sent it already).
pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    opening: Opening,
) -> Result<Handshake, PeerError> {
    let ours = shared.our_handshake().encode();
    let mut buf = [0u8; HANDSHAKE_LEN];
    let head = match opening {
        Opening::Accepted(head) => {
            buf[..HEAD_LEN].copy_from_slice(&head);
            Some(head)
        }
        Opening::Dialed { sent_ours } => {
            if !sent_ours {
                stream.write_all(&ours).await?;
                stream.flush().await?;
            }
            // Read up to the info hash first: some clients wait for our reply before
            // sending their peer id.
            stream.read_exact(&mut buf[..HEAD_LEN]).await?;
            None
        }
    };
    if &buf[..20] != wire::PROTOCOL {
        return Err(wire::WireError::NotBitTorrent.into());
    }
    if buf[28..48] != shared.info_hash.0 {
        return Err(Refusal::AnotherSwarm.into());
    }
    if head.is_some() {
        stream.write_all(&ours).await?;
        stream.flush().await?;
    }
    stream.read_exact(&mut buf[HEAD_LEN..]).await?;
    Ok(Handshake::decode(&buf)?)
}
