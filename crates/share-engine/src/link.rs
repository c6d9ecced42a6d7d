//! What a connection asks of its torrent: every step of a peer task that reads or changes
//! the torrent's shared state is one method here, which takes the torrent's lock, asks the
//! owning parts (`peers.rs`, the picker, `have_log.rs`, `conduct.rs`, `chat.rs`, `slots.rs`)
//! and returns what the task must do. `peer/` never takes the lock itself, so the lock's
//! critical sections are all in view in `torrent.rs`, `chat.rs`, `choker.rs` and here.
//!
//! Registration takes a connection slot (`slots.rs`: displacing the least useful peer when
//! all are taken) and refuses duplicates: our own peer id, a banned one, one already
//! connected, and a dial that reaches a peer already connected to us (its BEP 10 `p` named
//! the address we dialed). Once an incoming peer's `p` is known it is recorded, so that
//! address is not dialed while the connection lives.

use std::net::SocketAddr;

use bytes::Bytes;
use share_proto::bitfield::Bitfield;
use share_proto::geometry::{Block, PieceIndex};
use share_proto::wire::Handshake;
use share_proto::PeerId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{PeerError, Refusal};
use crate::picker::{PeerKey, Received};
use crate::torrent::{PeerCmd, PeerEntry, Shared, State};

/// What a peer task learns after telling the torrent about the peer's pieces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    /// We want something the peer has.
    pub wanted: bool,
    /// We are complete and so is the peer: nothing to trade.
    pub both_complete: bool,
}

/// The HAVEs a peer task owes its peer, and what it should think of the peer now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Haves {
    pub new: Vec<u32>,
    /// The log position after them.
    pub told: usize,
    pub interest: Interest,
}

impl Shared {
    /// A connection's handshake ended (either way): it no longer counts as connecting.
    pub(crate) fn handshake_over(&self, addr: SocketAddr) {
        self.lock().connecting.remove(&addr);
    }

    /// We dialed ourselves at `addr`: never again.
    pub(crate) fn connected_to_self(&self, addr: SocketAddr) {
        self.lock().self_addrs.insert(addr);
    }

    /// Registers a connection whose handshake succeeded, if the torrent takes it: returns
    /// the token of the torrent's active spell, which ends the connection on pause.
    pub(crate) fn register(
        &self,
        key: PeerKey,
        addr: SocketAddr,
        dialed: bool,
        theirs: &Handshake,
        cmd: mpsc::Sender<PeerCmd>,
    ) -> Result<CancellationToken, PeerError> {
        let mut st = self.lock();
        if st.paused {
            return Err(Refusal::Paused.into());
        }
        if theirs.peer_id == self.peer_id {
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
        self.ip_has_room(&st, addr.ip())?;
        self.make_room(&mut st, addr)?;
        let entry = PeerEntry::new(
            addr,
            theirs.peer_id,
            self.geometry.piece_count(),
            cmd,
            dialed.then_some(addr),
        );
        st.peers.insert(key, entry);
        let active = st.active.clone();
        drop(st);
        self.progress_wake.notify_one();
        Ok(active)
    }

    /// The connection ended: its entry, its pieces' availability, its chat budget and its
    /// optimistic unchoke go.
    pub(crate) fn unregister(&self, key: PeerKey) {
        let mut st = self.lock();
        if let Some(entry) = st.peers.remove(key) {
            st.picker.remove_peer(key, &entry.has);
        }
        st.chat.limits.forget_link(key);
        if st.optimistic == Some(key) {
            st.optimistic = None;
        }
    }

    /// Our greeting: the bitfield of the pieces we serve (none: no bitfield), and the have
    /// log's position it covers.
    pub(crate) fn greeting(&self) -> (Option<Bytes>, usize) {
        let st = self.lock();
        let have = st.withheld.served(st.picker.have());
        (
            (have.count() > 0).then(|| Bytes::copy_from_slice(have.as_bytes())),
            st.have_log.len(),
        )
    }

    /// The pieces verified since `told`, for peer `key`.
    pub(crate) fn haves_since(&self, key: PeerKey, told: usize) -> Haves {
        let st = self.lock();
        let (new, told) = st.have_log.since(told);
        let (wanted, full) = st.peers.get(&key).map_or((false, false), |p| {
            (st.picker.wants_from(&p.has), p.has.is_full())
        });
        Haves {
            new,
            told,
            interest: Interest {
                wanted,
                both_complete: st.picker.is_complete() && full,
            },
        }
    }

    /// Peer `key` has `piece` (a HAVE); `interested`: we already want something of it.
    pub(crate) fn peer_has(&self, key: PeerKey, piece: PieceIndex, interested: bool) -> Interest {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(entry) = st.peers.get_mut(&key) else {
            return Interest::default();
        };
        if entry.has.set(piece) {
            st.picker.peer_has(piece);
        }
        Interest {
            wanted: interested || st.picker.needs(piece.get()),
            both_complete: st.picker.is_complete() && entry.has.is_full(),
        }
    }

    /// Peer `key` sent its bitfield: it replaces what we knew of its pieces.
    pub(crate) fn peer_bitfield(&self, key: PeerKey, has: Bitfield) -> Interest {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(entry) = st.peers.get_mut(&key) else {
            return Interest::default();
        };
        st.picker.replace_peer(&entry.has, &has);
        let interest = Interest {
            wanted: st.picker.wants_from(&has),
            both_complete: st.picker.is_complete() && has.is_full(),
        };
        entry.has = has;
        interest
    }

    /// Peer `key` is interested; true when it is unchoked at once (a slot is free).
    pub(crate) fn peer_interested(&self, key: PeerKey) -> bool {
        let mut st = self.lock();
        let unchoked = st.peers.unchoked();
        let Some(entry) = st.peers.get_mut(&key) else {
            return false;
        };
        entry.interested = true;
        let free = entry.am_choking && unchoked < self.config.upload_slots;
        if free {
            entry.am_choking = false;
        }
        free
    }

    /// Peer `key` is no longer interested.
    pub(crate) fn peer_not_interested(&self, key: PeerKey) {
        if let Some(e) = self.lock().peers.get_mut(&key) {
            e.interested = false;
        }
    }

    /// Up to `want` blocks to request from peer `key`.
    pub(crate) fn pick_for(&self, key: PeerKey, want: usize) -> Vec<Block> {
        let mut st = self.lock();
        let st = &mut *st;
        match st.peers.get(&key) {
            Some(p) => st.picker.pick(key, &p.has, want),
            None => Vec::new(),
        }
    }

    /// Peer `key` will not send what we asked of it (it choked us, or the requests timed
    /// out): its blocks go back to the picker.
    pub(crate) fn release_all(&self, key: PeerKey) {
        self.lock().picker.release_all(key);
    }

    /// A block we asked for arrived from peer `key`.
    pub(crate) fn block_arrived(
        &self,
        key: PeerKey,
        peer_id: PeerId,
        block: &Block,
        data: &[u8],
    ) -> Received {
        let mut st = self.lock();
        if let Some(e) = st.peers.get_mut(&key) {
            e.down += data.len() as u64;
        }
        st.picker.received(key, peer_id, block, data)
    }

    /// Tells peer `other` (in endgame, the other holder of `block`) not to send it.
    pub(crate) fn cancel_at(&self, other: PeerKey, block: Block) {
        let cmd = self.lock().peers.get(&other).map(|p| p.cmd.clone());
        if let Some(cmd) = cmd {
            let _ = cmd.try_send(PeerCmd::Cancel(block));
        }
    }

    /// We sent `bytes` of blocks to peer `key`.
    pub(crate) fn uploaded_to(&self, key: PeerKey, bytes: u64) {
        if let Some(e) = self.lock().peers.get_mut(&key) {
            e.up += bytes;
        }
    }

    /// Whether we serve `piece` now: we have it and no file under it became unreadable.
    pub(crate) fn serves(&self, piece: PieceIndex) -> bool {
        let st = self.lock();
        st.picker.have().has(piece) && !st.withheld.has(piece)
    }

    /// Drops from `batch` the blocks of pieces withheld since they were queued.
    pub(crate) fn drop_withheld(&self, batch: &mut Vec<Block>) {
        let st = self.lock();
        batch.retain(|b| !st.withheld.has(b.piece));
    }

    /// A file we serve could not be read: withhold its pieces and say so, once per file.
    pub(crate) fn stop_serving(&self, file: usize, path: std::path::PathBuf, error: &std::io::Error) {
        let Some(span) = self.meta.layout().files().get(file) else {
            return;
        };
        let Some(pieces) = self.lock().withheld.withhold(file, span.offset, span.len) else {
            return;
        };
        let reason = crate::error::chain(error);
        tracing::warn!(path = %path.display(), %reason, pieces, "no longer serving a file");
        self.emit(crate::event::Event::FileUnavailable { path, reason, pieces });
    }

    /// Where the peers other than `except` listen (those we know), for peer exchange.
    pub(crate) fn pex_peers(&self, except: PeerKey) -> Vec<SocketAddr> {
        let st = self.lock();
        st.peers
            .iter()
            .filter(|(k, p)| **k != except && !p.displaced)
            .filter_map(|(_, p)| p.listen)
            .collect()
    }

    /// Our nickname now.
    pub(crate) fn nick(&self) -> String {
        self.lock().chat.nick.clone()
    }

    /// Peer `key` named itself again (a later BEP 10 handshake, after its `/nick`).
    pub(crate) fn peer_renamed(&self, key: PeerKey, nick: Option<String>) {
        if let (Some(e), Some(nick)) = (self.lock().peers.get_mut(&key), nick) {
            e.nick = Some(nick);
        }
    }

    /// Peer `key`'s first BEP 10 handshake: whether it chats, its nickname and client, the
    /// port it listens at (`p`). Returns whether both sides are complete, and why to close
    /// this connection when it duplicates one we dialed.
    pub(crate) fn peer_extended(
        &self,
        key: PeerKey,
        chat: bool,
        nick: Option<String>,
        client: Option<String>,
        p: Option<i64>,
    ) -> (bool, Option<String>) {
        let mut st = self.lock();
        let complete = st.picker.is_complete();
        let Some(entry) = st.peers.get_mut(&key) else {
            return (false, None);
        };
        entry.chat = chat;
        entry.nick = nick;
        entry.client = client;
        let full = entry.has.is_full();
        (complete && full, note_listen_port(&mut st, key, p))
    }
}

/// Records the listen address an incoming peer gave in its extension handshake (`p`), drops
/// it from the addresses waiting to be dialed, and returns why to close this connection if we
/// dialed that address too: the peer then has two connections to us, and ours, dialed to the
/// address it listens at, is the one to keep (libtorrent keeps the same one: it drops the
/// older of two connections once our `p` tells it they are one peer).
fn note_listen_port(st: &mut State, key: PeerKey, p: Option<i64>) -> Option<String> {
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
