//! How the engine answers peers that misbehave: a connection closed for breaking the
//! protocol gives its peer a strike, and repeated strikes ban it; connections refused at the
//! handshake are reported with their reason.
//!
//! Violations are the peer's bytes breaking a rule: a malformed or oversize frame, a bad
//! bitfield, a request out of range or beyond the `reqq` we advertise, data we never asked
//! for. They share the tally of shared pieces that failed their hash ([`Bans`]), and at
//! `Config::ban_strikes` the peer id is banned (and the address, if we dialed it), so a peer
//! that reconnects to try again is turned away. Timeouts and I/O errors are not violations:
//! a slow or vanished peer is not hostile; nor is our own failure (a disk read that fails is
//! the file changing under us, `PeerError::Local` a task of ours dying). The decision is
//! made on the error's type, never on its text.
//!
//! [`Bans`] is plain data under the torrent's lock: its methods say whom to ban, and
//! `Shared::ban` closes their connections and reports it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use share_proto::PeerId;

use crate::error::PeerError;
use crate::event::Event;
use crate::torrent::Shared;

/// Peer ids (and, separately, addresses) a torrent remembers, banned or with strikes: the
/// oldest is forgotten past this, so peers that invent a new id per connection cannot grow
/// the tables without bound.
const REMEMBERED: usize = 10_000;

/// Whether `error` is the peer breaking the protocol (rather than a timeout or a lost link).
pub(crate) fn is_violation(error: &PeerError) -> bool {
    matches!(
        error,
        PeerError::Wire(_) | PeerError::Bitfield(_) | PeerError::Violation(_)
    )
}

/// A set that forgets its oldest member past [`REMEMBERED`].
#[derive(Debug)]
struct Bounded<T: std::hash::Hash + Eq + Copy> {
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: std::hash::Hash + Eq + Copy> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Copy> Bounded<T> {
    fn insert(&mut self, v: T) {
        if self.set.insert(v) {
            self.order.push_back(v);
            if self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, v: &T) -> bool {
        self.set.contains(v)
    }
}

/// A torrent's banned peer ids and addresses, and the strikes toward a ban.
#[derive(Debug, Default)]
pub(crate) struct Bans {
    ids: Bounded<PeerId>,
    addrs: Bounded<SocketAddr>,
    strikes: HashMap<PeerId, u32>,
    strike_order: VecDeque<PeerId>,
}

impl Bans {
    /// Whether `id` is banned.
    pub fn is_banned(&self, id: &PeerId) -> bool {
        self.ids.contains(id)
    }

    /// Whether `addr` is banned (we dialed a banned peer there).
    pub fn is_banned_addr(&self, addr: &SocketAddr) -> bool {
        self.addrs.contains(addr)
    }

    /// Strikes against `id` so far.
    #[cfg(test)]
    pub fn strikes(&self, id: &PeerId) -> u32 {
        self.strikes.get(id).copied().unwrap_or(0)
    }

    fn add_strike(&mut self, id: PeerId) -> u32 {
        let n = self.strikes.entry(id).or_insert_with(|| {
            self.strike_order.push_back(id);
            0
        });
        *n += 1;
        let n = *n;
        if self.strike_order.len() > REMEMBERED {
            if let Some(old) = self.strike_order.pop_front() {
                self.strikes.remove(&old);
            }
        }
        n
    }

    /// One protocol violation by `id`: its strikes, if they reach `ban_at` (the caller
    /// bans it), else `None`.
    pub fn violation(&mut self, id: PeerId, ban_at: u32) -> Option<u32> {
        let n = self.add_strike(id);
        (n >= ban_at).then_some(n)
    }

    /// A piece sent by `senders` failed its hash: each gets a strike. Returns those to ban:
    /// a sole sender at once (the bad data can only be its), shared senders at `ban_at`.
    pub fn piece_failed(&mut self, senders: &[PeerId], ban_at: u32) -> Vec<PeerId> {
        let sole = senders.len() == 1;
        senders
            .iter()
            .filter(|id| {
                let n = self.add_strike(**id);
                sole || n >= ban_at
            })
            .copied()
            .collect()
    }

    /// Bans `id`, and the addresses we dialed it at (an address it connected from may be
    /// shared by others behind one NAT, so that is not banned).
    pub fn ban(&mut self, id: PeerId, dialed: impl IntoIterator<Item = SocketAddr>) {
        self.ids.insert(id);
        for a in dialed {
            self.addrs.insert(a);
        }
    }
}

impl Shared {
    /// Counts a protocol violation against `peer_id`; bans it once its strikes reach
    /// `ban_strikes`. Call while the peer is still registered, so the ban names its address.
    pub(crate) fn strike(&self, peer_id: PeerId, reason: &str) {
        let ban = self.lock().bans.violation(peer_id, self.config.ban_strikes);
        if let Some(strikes) = ban {
            self.ban(
                peer_id,
                format!("broke the protocol {strikes} times, last: {reason}"),
            );
        }
    }

    /// Reports a connection that ended before it was registered as a peer.
    pub(crate) fn refused(&self, addr: SocketAddr, reason: String) {
        tracing::debug!(%addr, %reason, "connection refused");
        self.emit(Event::PeerRefused { addr, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Refusal, Violation};

    #[test]
    fn only_the_peers_own_bytes_are_violations() {
        let strikes = [
            PeerError::Violation(Violation::HaveOutOfRange(7)),
            PeerError::Violation(Violation::TooManyRequests(2000)),
            PeerError::Violation(Violation::ChatFlood("x")),
            PeerError::Wire(share_proto::wire::WireError::NotBitTorrent),
        ];
        for e in &strikes {
            assert!(is_violation(e), "{e}");
        }
        let not = [
            PeerError::Io(std::io::ErrorKind::BrokenPipe.into()),
            PeerError::Timeout("nothing received for 180 s".into()),
            PeerError::Refused(Refusal::Ourselves),
            // Our disk read task dying is our failure, not the requester's.
            PeerError::Local("disk read task failed: panicked".into()),
        ];
        for e in &not {
            assert!(!is_violation(e), "{e}");
        }
        // Messages are unchanged by the typing: front-ends and tests read them.
        assert_eq!(Refusal::Ourselves.to_string(), "connected to ourselves");
        assert_eq!(
            PeerError::from(Violation::TooManyRequests(250)).to_string(),
            "more than 250 outstanding requests"
        );
    }

    fn id(n: u8) -> PeerId {
        PeerId([n; 20])
    }

    #[test]
    fn violations_ban_at_the_threshold_and_only_then() {
        let mut b = Bans::default();
        assert_eq!(b.violation(id(1), 3), None);
        assert_eq!(b.violation(id(1), 3), None);
        assert_eq!(b.violation(id(2), 3), None, "strikes are per peer");
        assert_eq!(b.violation(id(1), 3), Some(3));
        assert!(!b.is_banned(&id(1)), "the caller bans");
        let a: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        b.ban(id(1), [a]);
        assert!(b.is_banned(&id(1)) && b.is_banned_addr(&a));
        assert!(!b.is_banned(&id(2)));
    }

    #[test]
    fn a_sole_sender_of_a_bad_piece_is_banned_at_once_shared_senders_at_the_threshold() {
        let mut b = Bans::default();
        assert_eq!(b.piece_failed(&[id(1)], 3), vec![id(1)]);
        assert_eq!(b.piece_failed(&[id(2), id(3)], 3), vec![]);
        assert_eq!(b.piece_failed(&[id(2), id(3)], 3), vec![]);
        // A protocol violation counts toward the same tally.
        assert_eq!(b.violation(id(3), 3), Some(3));
        assert_eq!(b.piece_failed(&[id(2), id(4)], 3), vec![id(2)]);
        assert_eq!(b.strikes(&id(4)), 1);
    }

    #[test]
    fn the_tables_forget_their_oldest_past_their_bound() {
        let mut b = Bans::default();
        for i in 0..=REMEMBERED as u32 {
            let mut p = [0u8; 20];
            p[..4].copy_from_slice(&i.to_be_bytes());
            b.violation(PeerId(p), 3);
            b.ban(PeerId(p), []);
        }
        assert_eq!(b.strikes.len(), REMEMBERED);
        assert_eq!(b.strike_order.len(), REMEMBERED);
        assert!(!b.is_banned(&PeerId([0; 20])), "the oldest is forgotten");
        let mut last = [0u8; 20];
        last[..4].copy_from_slice(&(REMEMBERED as u32).to_be_bytes());
        assert!(b.is_banned(&PeerId(last)));
    }
}
