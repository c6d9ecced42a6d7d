//! The peers table: every registered connection of a torrent, as the rest of the torrent
//! sees it (its pieces, choking and interest, byte counters, addresses, nickname), keyed by
//! [`PeerKey`]. Plain data under the torrent's lock; the questions asked of the whole table
//! (who is connected with this id, who listens at this address, who chats, who seeds) are
//! answered here, once.
//!
//! A peer task inserts its entry when its handshake is accepted (`peer/handshake.rs`) and a
//! guard removes it when the task ends, whatever ends it; nothing else removes entries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use share_proto::bitfield::Bitfield;
use share_proto::PeerId;
use tokio::sync::mpsc;

use crate::picker::PeerKey;
use crate::torrent::PeerCmd;

/// A connected peer, as the rest of the torrent sees it.
#[derive(Debug)]
pub(crate) struct PeerEntry {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub has: Bitfield,
    pub cmd: mpsc::Sender<PeerCmd>,
    pub am_choking: bool,
    pub interested: bool,
    pub down: u64,
    pub up: u64,
    pub down_at_rechoke: u64,
    pub up_at_rechoke: u64,
    pub dialed: Option<SocketAddr>,
    /// Where it accepts connections: the dialed address, or its address with the BEP 10 `p`
    /// it sent. Never dialed while this connection lives.
    pub listen: Option<SocketAddr>,
    /// Told to close to make room for a newcomer; no longer counted in the slots.
    pub displaced: bool,
    /// Payload bytes both ways at the last activity sample (`slots.rs`).
    pub moved: u64,
    /// When payload last moved (or when it registered).
    pub active_at: Instant,
    pub nick: Option<String>,
    pub client: Option<String>,
    pub chat: bool,
}

impl PeerEntry {
    /// A peer that just registered: it has nothing we know of, we choke it and it is not
    /// interested; `dialed` is the address we dialed it at (then also where it listens).
    pub(crate) fn new(
        addr: SocketAddr,
        peer_id: PeerId,
        pieces: u32,
        cmd: mpsc::Sender<PeerCmd>,
        dialed: Option<SocketAddr>,
    ) -> Self {
        Self {
            addr,
            peer_id,
            has: Bitfield::new(pieces),
            cmd,
            am_choking: true,
            interested: false,
            down: 0,
            up: 0,
            down_at_rechoke: 0,
            up_at_rechoke: 0,
            dialed,
            listen: dialed,
            displaced: false,
            moved: 0,
            active_at: Instant::now(),
            nick: None,
            client: None,
            chat: false,
        }
    }

    /// Whether this connection is at `addr`: its remote, dialed or listen address.
    pub(crate) fn matches(&self, addr: SocketAddr) -> bool {
        self.addr == addr || self.dialed == Some(addr) || self.listen == Some(addr)
    }

    /// Moves `active_at` to `now` if payload moved since the last sample.
    pub(crate) fn note_activity(&mut self, now: Instant) {
        let moved = self.down + self.up;
        if moved != self.moved {
            self.moved = moved;
            self.active_at = now;
        }
    }
}

/// Every registered connection of a torrent.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    by_key: HashMap<PeerKey, PeerEntry>,
}

impl Peers {
    pub fn insert(&mut self, key: PeerKey, entry: PeerEntry) {
        self.by_key.insert(key, entry);
    }

    pub fn remove(&mut self, key: PeerKey) -> Option<PeerEntry> {
        self.by_key.remove(&key)
    }

    pub fn get(&self, key: &PeerKey) -> Option<&PeerEntry> {
        self.by_key.get(key)
    }

    pub fn get_mut(&mut self, key: &PeerKey) -> Option<&mut PeerEntry> {
        self.by_key.get_mut(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PeerKey, &PeerEntry)> {
        self.by_key.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&PeerKey, &mut PeerEntry)> {
        self.by_key.iter_mut()
    }

    pub fn values(&self) -> impl Iterator<Item = &PeerEntry> {
        self.by_key.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut PeerEntry> {
        self.by_key.values_mut()
    }

    /// Whether a connection with this peer id is registered.
    pub fn has_id(&self, id: &PeerId) -> bool {
        self.values().any(|p| p.peer_id == *id)
    }

    /// The connections with this peer id: address, dialed address, command channel.
    pub fn with_id(&self, id: &PeerId) -> Vec<(SocketAddr, Option<SocketAddr>, mpsc::Sender<PeerCmd>)> {
        self.values()
            .filter(|p| p.peer_id == *id)
            .map(|p| (p.addr, p.dialed, p.cmd.clone()))
            .collect()
    }

    /// The connection whose peer listens at `addr`, if any.
    pub fn listening_at(&self, addr: SocketAddr) -> Option<&PeerEntry> {
        self.values().find(|p| p.listen == Some(addr))
    }

    /// Whether any connection is at `addr` (remote, dialed or listen address).
    pub fn any_at(&self, addr: SocketAddr) -> bool {
        self.values().any(|p| p.matches(addr))
    }

    /// Where the connected peers accept connections (those we know of).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.values().filter_map(|p| p.listen).collect()
    }

    /// Connections that are not on their way out (`slots.rs`).
    pub fn live(&self) -> usize {
        self.values().filter(|p| !p.displaced).count()
    }

    /// Peers we upload to now.
    pub fn unchoked(&self) -> usize {
        self.values().filter(|p| !p.am_choking).count()
    }

    /// Peers that have every piece.
    pub fn seeders(&self) -> usize {
        self.values().filter(|p| p.has.is_full()).count()
    }

    /// The chat-capable connections: key and peer id.
    pub fn chat_links(&self) -> impl Iterator<Item = (PeerKey, PeerId)> + '_ {
        self.iter().filter(|(_, p)| p.chat).map(|(k, p)| (*k, p.peer_id))
    }

    /// The command channels of `keys` still registered.
    pub fn cmds_of(&self, keys: &[PeerKey]) -> Vec<mpsc::Sender<PeerCmd>> {
        keys.iter()
            .filter_map(|k| self.get(k))
            .map(|p| p.cmd.clone())
            .collect()
    }

    /// The command channels of every connection (`chat`: of those that chat).
    pub fn cmds(&self, chat: bool) -> Vec<mpsc::Sender<PeerCmd>> {
        self.values()
            .filter(|p| !chat || p.chat)
            .map(|p| p.cmd.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, listen: Option<u16>) -> (PeerEntry, mpsc::Receiver<PeerCmd>) {
        let (cmd, rx) = mpsc::channel(1);
        let addr = SocketAddr::from(([10, 0, 0, n], 40_000));
        let e = PeerEntry {
            listen: listen.map(|p| SocketAddr::new(addr.ip(), p)),
            chat: n % 2 == 0,
            ..PeerEntry::new(addr, PeerId([n; 20]), 4, cmd, None)
        };
        (e, rx)
    }

    #[test]
    fn the_table_answers_by_id_address_and_role() {
        let mut peers = Peers::default();
        let mut keep = Vec::new();
        for n in 1..=4u8 {
            let (mut e, rx) = entry(n, (n <= 2).then_some(6881));
            if n == 3 {
                e.has = Bitfield::full(4);
                e.am_choking = false;
            }
            if n == 4 {
                e.displaced = true;
            }
            peers.insert(u64::from(n), e);
            keep.push(rx);
        }
        assert!(peers.has_id(&PeerId([2; 20])) && !peers.has_id(&PeerId([9; 20])));
        let at = SocketAddr::from(([10, 0, 0, 1], 6881));
        assert_eq!(peers.listening_at(at).map(|p| p.peer_id), Some(PeerId([1; 20])));
        assert!(peers.any_at(at) && peers.any_at(SocketAddr::from(([10, 0, 0, 3], 40_000))));
        assert!(!peers.any_at(SocketAddr::from(([10, 0, 0, 3], 6881))));
        let mut listen = peers.listen_addrs();
        listen.sort();
        assert_eq!(listen.len(), 2);
        assert_eq!((peers.live(), peers.unchoked(), peers.seeders()), (3, 1, 1));
        let mut chat: Vec<_> = peers.chat_links().map(|(k, _)| k).collect();
        chat.sort_unstable();
        assert_eq!(chat, vec![2, 4]);
        assert_eq!(peers.cmds(true).len(), 2);
        assert_eq!(peers.cmds_of(&[1, 9]).len(), 1, "an unregistered key is skipped");
        assert_eq!(peers.remove(1).map(|p| p.peer_id), Some(PeerId([1; 20])));
        assert!(!peers.has_id(&PeerId([1; 20])));
    }
}
