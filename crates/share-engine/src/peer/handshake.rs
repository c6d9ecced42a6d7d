//! The peer-wire handshake and the registration of a connected peer in the torrent.
//!
//! Registration takes a connection slot (`slots.rs`: displacing the least useful peer when
//! all are taken) and refuses duplicates: our own peer id, a banned one, one already
//! connected, and a dial that reaches a peer already connected to us (its BEP 10 `p` named
//! the address we dialed). Once an incoming peer's `p` is known, [`note_listen_port`] records
//! it so that address is not dialed while the connection lives.

use std::net::SocketAddr;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use share_proto::bitfield::Bitfield;
use share_proto::wire::{self, Handshake, HANDSHAKE_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{PeerError, Refusal};
use crate::picker::PeerKey;
use crate::session::HEAD_LEN;
use crate::torrent::{PeerCmd, PeerEntry, Shared, State};

/// Runs the handshake. For an incoming connection the session has read `head` (the first
/// 48 bytes: protocol, reserved bits, info hash) to route it here; we reply, then read the
/// peer id. A dialed connection sends ours first.
pub(super) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    head: Option<[u8; HEAD_LEN]>,
) -> Result<Handshake, PeerError> {
    let ours = Handshake::ours(shared.info_hash, shared.peer_id).encode();
    let mut buf = [0u8; HANDSHAKE_LEN];
    match head {
        Some(head) => buf[..HEAD_LEN].copy_from_slice(&head),
        None => {
            stream.write_all(&ours).await?;
            // Read up to the info hash first: some clients wait for our reply before
            // sending their peer id.
            stream.read_exact(&mut buf[..HEAD_LEN]).await?;
        }
    }
    if &buf[..20] != wire::PROTOCOL {
        return Err(wire::WireError::NotBitTorrent.into());
    }
    if buf[28..48] != shared.info_hash.0 {
        return Err(Refusal::AnotherSwarm.into());
    }
    if head.is_some() {
        stream.write_all(&ours).await?;
    }
    stream.read_exact(&mut buf[HEAD_LEN..]).await?;
    Ok(Handshake::decode(&buf)?)
}

pub(super) fn register(
    shared: &Shared,
    key: PeerKey,
    addr: SocketAddr,
    dialed: bool,
    theirs: &Handshake,
    cmd: mpsc::Sender<PeerCmd>,
) -> Result<CancellationToken, PeerError> {
    let mut st = shared.lock();
    if st.paused {
        return Err(Refusal::Paused.into());
    }
    if theirs.peer_id == shared.peer_id {
        return Err(Refusal::Ourselves.into());
    }
    if st.bans.is_banned(&theirs.peer_id) {
        return Err(Refusal::Banned.into());
    }
    if st.peers.has_id(&theirs.peer_id) {
        return Err(Refusal::AlreadyConnected.into());
    }
    if dialed {
        if let Some(p) = st.peers.listening_at(addr) {
            return Err(Refusal::AlreadyConnectedAt {
                other: p.addr,
                listen: addr,
            }
            .into());
        }
    }
    shared.ip_has_room(&st, addr.ip())?;
    shared.make_room(&mut st, addr)?;
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
        listen: dialed.then_some(addr),
        displaced: false,
        moved: 0,
        active_at: Instant::now(),
        nick: None,
        client: None,
        chat: false,
    };
    st.peers.insert(key, entry);
    Ok(st.active.clone())
}

/// Records the listen address an incoming peer gave in its extension handshake (`p`), drops
/// it from the addresses waiting to be dialed, and returns why to close this connection if we
/// dialed that address too: the peer then has two connections to us, and ours, dialed to the
/// address it listens at, is the one to keep (libtorrent keeps the same one: it drops the
/// older of two connections once our `p` tells it they are one peer).
pub(crate) fn note_listen_port(st: &mut State, key: PeerKey, p: Option<i64>) -> Option<String> {
    let entry = st.peers.get_mut(&key)?;
    if entry.dialed.is_some() {
        return None;
    }
    let port = p.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0)?;
    let listen = SocketAddr::new(entry.addr.ip(), port);
    entry.listen = Some(listen);
    st.candidates.remove(listen);
    st.peers
        .iter()
        .any(|(k, p)| *k != key && !p.displaced && p.dialed == Some(listen))
        .then(|| format!("duplicate connection: we are connected to {listen}, where this peer listens"))
}
