//! The peer-wire handshake and the registration of a connected peer in the torrent.

use std::net::SocketAddr;

use share_proto::bitfield::Bitfield;
use share_proto::wire::{self, Handshake, HANDSHAKE_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{PeerError, Refusal};
use crate::picker::PeerKey;
use crate::torrent::{PeerCmd, PeerEntry, Shared};

pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    dialed: bool,
) -> Result<Handshake, PeerError> {
    let ours = Handshake::ours(shared.info_hash, shared.peer_id).encode();
    if dialed {
        stream.write_all(&ours).await?;
    }
    // Read up to the info hash first: an incoming peer learns which swarm we are only after
    // we check it, and some clients wait for our reply before sending their peer id.
    let mut buf = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut buf[..48]).await?;
    if &buf[..20] != wire::PROTOCOL {
        return Err(wire::WireError::NotBitTorrent.into());
    }
    if buf[28..48] != shared.info_hash.0 {
        return Err(Refusal::AnotherSwarm.into());
    }
    if !dialed {
        stream.write_all(&ours).await?;
    }
    stream.read_exact(&mut buf[48..]).await?;
    Ok(Handshake::decode(&buf)?)
}

pub(super) fn register(
    shared: &Shared,
    key: PeerKey,
    addr: SocketAddr,
    dialed: bool,
    theirs: &Handshake,
    cmd: mpsc::Sender<PeerCmd>,
) -> Result<(), PeerError> {
    let mut st = shared.lock();
    if theirs.peer_id == shared.peer_id {
        return Err(Refusal::Ourselves.into());
    }
    if st.banned.contains(&theirs.peer_id) {
        return Err(Refusal::Banned.into());
    }
    if st.peers.values().any(|p| p.peer_id == theirs.peer_id) {
        return Err(Refusal::AlreadyConnected.into());
    }
    if st.peers.len() >= shared.config.max_peers {
        return Err(Refusal::TooManyPeers.into());
    }
    let entry = PeerEntry {
        addr,
        peer_id: theirs.peer_id,
        has: Bitfield::new(shared.geometry.piece_count()),
        cmd,
        am_choking: true,
        interested: false,
        down: 0,
        up: 0,
        down_at_rechoke: 0,
        up_at_rechoke: 0,
        dialed: dialed.then_some(addr),
        nick: None,
        client: None,
        chat: false,
    };
    st.peers.insert(key, entry);
    Ok(())
}
