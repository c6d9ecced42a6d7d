//! Connection slots: who gets one when they are all taken, and how many one address may hold.
//!
//! At most `max_peers` connections are registered. When they are all taken a newcomer is not
//! turned away: once its handshake is done it displaces the least useful registered peer, if
//! one is displaceable, and is refused ("too many peers") only when every slot is doing
//! something useful. So connections that hold a slot and do nothing (keep-alives only, or
//! two complete peers that only keep a chat link) cannot lock honest peers out, and a swarm of
//! complete peers makes room for the peers that still need data.
//!
//! The choice ([`choose_victim`]) is a pure function of what each slot is doing:
//! - a peer that moved payload within `interest_grace`, either way, is never displaced while
//!   it, or we, still want data (it is what slots are for);
//! - first to go: links with no interest either way (seed to seed, chat only, an idle
//!   stranger), longest idle first;
//! - then peers that want data from us but have taken none for `interest_grace`, then peers
//!   we want data from that gave us none for as long (choked us, or have nothing to give).
//!
//! Besides, `newcomer_slots` handshakes may be in progress even when every slot is taken
//! (without them a newcomer would be refused at `accept` before it could displace anyone),
//! and one IP address holds at most `max_peers_per_ip` connections, counting those still in
//! their handshake. Loopback is not exempt: tests that run a whole swarm on 127.0.0.1 raise
//! the cap in their `Config`.
//!
//! Activity is sampled, not hooked into the data path: [`PeerEntry::note_activity`] compares
//! a peer's byte counters with the last sample, from the progress ticker and at admission.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::Refusal;
use crate::picker::PeerKey;
use crate::torrent::{PeerCmd, Shared, State};

/// What one registered connection is doing, as the choice of a victim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotView {
    pub key: PeerKey,
    /// Since the last payload byte either way (or since it registered).
    pub idle: Duration,
    /// It said it is interested and lacks pieces (it wants data from us).
    pub they_want: bool,
    /// It has pieces we still need.
    pub we_want: bool,
}

impl SlotView {
    /// 0: no interest either way; 1: only they want; 2: we want. Lower goes first.
    fn tier(&self) -> u8 {
        match (self.we_want, self.they_want) {
            (false, false) => 0,
            (false, true) => 1,
            (true, _) => 2,
        }
    }
}

/// The slot a newcomer may take, or `None` when every slot is in use. Links with no interest
/// either way go at any idle time; a link that wants data (theirs or ours) only after
/// `interest_grace` without payload. Within a tier the longest idle goes first.
pub(crate) fn choose_victim(slots: &[SlotView], interest_grace: Duration) -> Option<PeerKey> {
    slots
        .iter()
        .filter(|s| s.tier() == 0 || s.idle >= interest_grace)
        .min_by(|a, b| {
            a.tier()
                .cmp(&b.tier())
                .then(b.idle.cmp(&a.idle))
                .then(a.key.cmp(&b.key))
        })
        .map(|s| s.key)
}

/// Registered connections that are not on their way out.
pub(crate) fn live_peers(st: &State) -> usize {
    st.peers.live()
}

/// Connections of `ip`: registered (not on their way out) and in their handshake.
fn connections_of(st: &State, ip: IpAddr) -> usize {
    let registered = st
        .peers
        .values()
        .filter(|p| !p.displaced && p.addr.ip() == ip)
        .count();
    registered + st.connecting.iter().filter(|a| a.ip() == ip).count()
}

impl Shared {
    /// Whether an incoming connection from `ip` may start its handshake; `Err` is why not.
    /// Handshakes may run while slots are free, and `newcomer_slots` of them even when all
    /// are taken (the newcomer may displace someone once its handshake is done).
    pub(crate) fn may_accept(&self, st: &State, ip: IpAddr) -> Result<(), Refusal> {
        if st.paused {
            return Err(Refusal::Paused);
        }
        let pending = st.connecting.len();
        if live_peers(st) + pending >= self.config.max_peers && pending >= self.config.newcomer_slots {
            return Err(Refusal::TooManyPeers);
        }
        self.ip_has_room(st, ip)
    }

    /// Whether `ip` holds fewer than `max_peers_per_ip` connections (this one not counted).
    pub(crate) fn ip_has_room(&self, st: &State, ip: IpAddr) -> Result<(), Refusal> {
        let count = connections_of(st, ip);
        let max = self.config.max_peers_per_ip;
        if count >= max {
            return Err(Refusal::TooManyFromIp { ip, count, max });
        }
        Ok(())
    }

    /// Whether we may dial one more address now: a slot is free, or (while we still need
    /// data) a newcomer slot is free and someone is displaceable. `displaceable` caches the
    /// last answer to that question for one pass of dialing under the lock.
    pub(crate) fn may_dial(&self, st: &mut State, displaceable: &mut Option<bool>) -> bool {
        let pending = st.connecting.len();
        if live_peers(st) + pending < self.config.max_peers {
            return true;
        }
        if !self.download || st.picker.is_complete() || pending >= self.config.newcomer_slots {
            return false;
        }
        *displaceable.get_or_insert_with(|| self.victim(st).is_some())
    }

    /// Makes room for a connection that finished its handshake: nothing to do while a slot
    /// is free; otherwise the least useful peer is told to close (`Err` when nobody may go).
    /// The victim stays registered until its task ends, marked `displaced` so that it is
    /// neither counted nor chosen again.
    pub(crate) fn make_room(&self, st: &mut State, newcomer: std::net::SocketAddr) -> Result<(), Refusal> {
        if live_peers(st) < self.config.max_peers {
            return Ok(());
        }
        while let Some(key) = self.victim(st) {
            let Some(entry) = st.peers.get_mut(&key) else {
                break;
            };
            entry.displaced = true;
            let idle = entry.active_at.elapsed().as_secs();
            let reason = format!("displaced by {newcomer}: every slot was taken and this one was the least useful (idle {idle} s)");
            // A peer whose command queue is full is not listening: it stays marked (its
            // idle timeout ends it) and the next one is asked.
            if entry.cmd.try_send(PeerCmd::Close(reason)).is_ok() {
                return Ok(());
            }
        }
        Err(Refusal::TooManyPeers)
    }

    /// The peer a newcomer would displace now, after sampling everyone's activity.
    fn victim(&self, st: &mut State) -> Option<PeerKey> {
        let now = Instant::now();
        let st = &mut *st;
        let mut views = Vec::with_capacity(st.peers.len());
        for (key, p) in st.peers.iter_mut().filter(|(_, p)| !p.displaced) {
            p.note_activity(now);
            views.push(SlotView {
                key: *key,
                idle: now.saturating_duration_since(p.active_at),
                they_want: p.interested && !p.has.is_full(),
                we_want: self.download && st.picker.wants_from(&p.has),
            });
        }
        choose_victim(&views, self.config.interest_grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(60);

    fn slot(key: PeerKey, idle_s: u64, they_want: bool, we_want: bool) -> SlotView {
        SlotView {
            key,
            idle: Duration::from_secs(idle_s),
            they_want,
            we_want,
        }
    }

    #[test]
    fn links_nobody_needs_go_first_longest_idle_first() {
        let slots = [
            slot(1, 500, true, false),
            slot(2, 5, false, false),
            slot(3, 30, false, false),
            slot(4, 900, false, true),
        ];
        assert_eq!(
            choose_victim(&slots, GRACE),
            Some(3),
            "idle and not interested, longest idle"
        );
        assert_eq!(choose_victim(&slots[..2], GRACE), Some(2));
    }

    #[test]
    fn a_fresh_idle_link_may_go_at_once() {
        // Keep-alive-only strangers that just connected are worth nothing yet.
        assert_eq!(choose_victim(&[slot(7, 0, false, false)], GRACE), Some(7));
    }

    #[test]
    fn peers_that_want_data_go_only_after_the_grace_and_ours_last() {
        let busy = [
            slot(1, 10, true, false),
            slot(2, 59, false, true),
            slot(3, 0, true, true),
        ];
        assert_eq!(choose_victim(&busy, GRACE), None, "everyone is exchanging data");
        let stale = [
            slot(1, 61, false, true),
            slot(2, 60, true, false),
            slot(3, 0, true, true),
        ];
        assert_eq!(
            choose_victim(&stale, GRACE),
            Some(2),
            "a peer that only wants from us goes before one we want from"
        );
        assert_eq!(choose_victim(&stale[..1], GRACE), Some(1));
    }

    #[test]
    fn ties_are_broken_by_key() {
        let slots = [slot(9, 3, false, false), slot(4, 3, false, false)];
        assert_eq!(choose_victim(&slots, GRACE), Some(4));
        assert_eq!(choose_victim(&[], GRACE), None);
    }
}
