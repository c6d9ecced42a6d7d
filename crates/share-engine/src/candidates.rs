//! Addresses waiting for a free connection slot.
//!
//! A tracker can hand out up to `MAX_RESPONSE_PEERS` addresses while only `max_peers`
//! connections may be open or opening; the rest wait here and are dialed as slots free up,
//! instead of being dropped. Peers named by the user go to the front: they are the ones
//! most likely to be alive. The queue is bounded; when it is full, tracker addresses are
//! dropped and the oldest queued address gives way to a user's.
//!
//! The dialing itself (`Shared::add_peers`, `add_peers_first`, `dial_queued`) lives here too.
//! An address is never dialed while a live connection matches it: its remote address, the
//! address we dialed, or the listen address an incoming peer gave in its BEP 10 `p`
//! (libtorrent uses a new peer id on every connection, so the peer id cannot tell that the
//! peer which connected to us from an ephemeral port is the one a tracker lists).
//!
//! Addresses the user named (`--peer`, `Params::peers`, a restored torrent's peers) are the
//! only ones no tracker will hand out again, so when a dial to one fails, is refused (a busy
//! seeder refuses newcomers past its limits), or its connection ends, it is queued again
//! after a back-off (1 s, doubling to 60 s, jittered so that many torrents do not come back
//! at once; reset by a connection that lasted a minute), while the torrent still wants data.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::encryption::DialError;
use crate::torrent::{Shared, State};

/// Addresses that may wait for a connection slot: one full tracker answer.
pub(crate) const MAX_CANDIDATES: usize = share_proto::announce::MAX_RESPONSE_PEERS;

/// Named addresses remembered for retries; more are dialed once, like a tracker's.
const MAX_NAMED: usize = 256;
/// Addresses remembered as refusing the encryption we require.
const MAX_REFUSED: usize = 4096;
/// The first retry's delay, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// A connection that lasted this long was good: the next failure starts the back-off over.
const GOOD_CONNECTION: Duration = Duration::from_secs(60);

/// A named address's retries.
#[derive(Debug, Default, Clone, Copy)]
struct Named {
    failures: u32,
    /// A retry is scheduled: no second one.
    waiting: bool,
}

/// Queued addresses, deduplicated, at most `cap` of them; and the addresses the user named.
#[derive(Debug)]
pub(crate) struct Candidates {
    queue: VecDeque<SocketAddr>,
    queued: HashSet<SocketAddr>,
    cap: usize,
    named: HashMap<SocketAddr, Named>,
    /// Addresses that refused the encryption we require: never dialed again.
    refused: HashSet<SocketAddr>,
}

impl Candidates {
    pub fn new(cap: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            queued: HashSet::new(),
            cap,
            named: HashMap::new(),
            refused: HashSet::new(),
        }
    }

    /// Remembers `addr` as named by the user: retried when its dials or connections end.
    pub fn name(&mut self, addr: SocketAddr) {
        if self.named.len() < MAX_NAMED || self.named.contains_key(&addr) {
            self.named.entry(addr).or_default();
        }
    }

    /// A dial to `addr` (or its connection, after `lasted`) ended: when to queue it again,
    /// if it is named and no retry is scheduled. `jitter` in 0..1 spreads the delay over
    /// 50% to 150% of the back-off.
    pub fn retry_after(&mut self, addr: SocketAddr, lasted: Duration, jitter: f64) -> Option<Duration> {
        let n = self.named.get_mut(&addr)?;
        if n.waiting {
            return None;
        }
        if lasted >= GOOD_CONNECTION {
            n.failures = 0;
        }
        let backoff = RETRY_FIRST.saturating_mul(1 << n.failures.min(6)).min(RETRY_MAX);
        n.failures += 1;
        n.waiting = true;
        Some(backoff.mul_f64(0.5 + jitter.clamp(0.0, 1.0)))
    }

    /// The scheduled retry of `addr` is due: it is queued again now.
    pub fn retry_due(&mut self, addr: SocketAddr) {
        if let Some(n) = self.named.get_mut(&addr) {
            n.waiting = false;
        }
    }

    /// Queues `addr` behind the others; false if it was queued already or the queue is full.
    pub fn push_back(&mut self, addr: SocketAddr) -> bool {
        if self.queue.len() >= self.cap || !self.queued.insert(addr) {
            return false;
        }
        self.queue.push_back(addr);
        true
    }

    /// Queues `addr` ahead of the others (moving it there if it was queued), making room by
    /// dropping the last one if the queue is full.
    pub fn push_front(&mut self, addr: SocketAddr) {
        if self.cap == 0 {
            return;
        }
        if !self.queued.insert(addr) {
            self.queue.retain(|a| *a != addr);
        } else if self.queue.len() >= self.cap {
            if let Some(last) = self.queue.pop_back() {
                self.queued.remove(&last);
            }
        }
        self.queue.push_front(addr);
    }

    /// Never dials `addr` again: it refused the encryption we require.
    pub fn give_up(&mut self, addr: SocketAddr) {
        self.remove(addr);
        self.named.remove(&addr);
        if self.refused.len() < MAX_REFUSED {
            self.refused.insert(addr);
        }
    }

    /// Whether `addr` refused the encryption we require.
    pub fn gave_up(&self, addr: SocketAddr) -> bool {
        self.refused.contains(&addr)
    }

    /// Drops `addr` from the queue (it connected to us meanwhile).
    pub fn remove(&mut self, addr: SocketAddr) {
        if self.queued.remove(&addr) {
            self.queue.retain(|a| *a != addr);
        }
    }

    pub fn pop(&mut self) -> Option<SocketAddr> {
        let addr = self.queue.pop_front()?;
        self.queued.remove(&addr);
        Some(addr)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl Shared {
    /// Queues addresses from a tracker behind the ones already waiting, and dials what fits.
    pub fn add_peers(self: &Arc<Self>, addrs: impl IntoIterator<Item = SocketAddr>) {
        {
            let mut st = self.lock();
            for addr in addrs {
                if self.dialable(&st, addr) {
                    st.candidates.push_back(addr);
                }
            }
        }
        self.progress_wake.notify_one();
        self.dial_queued();
    }

    /// Queues addresses the user named ahead of every other, and dials what fits; they are
    /// dialed again when their dials or connections end (the module doc).
    pub fn add_peers_first(self: &Arc<Self>, addrs: impl IntoIterator<Item = SocketAddr>) {
        {
            let mut st = self.lock();
            let addrs: Vec<_> = addrs.into_iter().collect();
            for a in &addrs {
                st.candidates.name(*a);
            }
            let addrs: Vec<_> = addrs.into_iter().filter(|a| self.dialable(&st, *a)).collect();
            // Reversed so that the first address named is dialed first.
            for addr in addrs.into_iter().rev() {
                st.candidates.push_front(addr);
            }
        }
        self.progress_wake.notify_one();
        self.dial_queued();
    }

    /// Not connected (by remote, dialed or listen address), connecting, banned, ourselves
    /// or unusable.
    fn dialable(&self, st: &State, addr: SocketAddr) -> bool {
        let known = st.connecting.contains(&addr)
            || st.self_addrs.contains(&addr)
            || st.bans.is_banned_addr(&addr)
            || st.candidates.gave_up(addr)
            || st.peers.any_at(addr);
        !known && addr.port() != 0 && !addr.ip().is_unspecified() && !is_own(addr, self.listen_addr)
    }

    /// Dials queued addresses while a slot is free (or, while we need data, a newcomer slot
    /// and someone to displace: `slots.rs`). Called whenever addresses are queued and
    /// whenever a dial or a connection (ours or accepted) ends.
    pub fn dial_queued(self: &Arc<Self>) {
        if self.cancel.is_cancelled() {
            return;
        }
        let mut st = self.lock();
        // Nothing is dialed while the check runs (the picker it ends with must see every
        // peer's pieces) or while paused; the queue waits.
        if !st.checked || st.paused {
            return;
        }
        let mut displaceable = None;
        while !st.candidates.is_empty() && self.may_dial(&mut st, &mut displaceable) {
            let Some(addr) = st.candidates.pop() else {
                break;
            };
            // It may have connected to us, or been banned, while it waited; and one host
            // holds at most `max_peers_per_ip` connections.
            if !self.dialable(&st, addr) || self.ip_has_room(&st, addr.ip()).is_err() {
                continue;
            }
            st.connecting.insert(addr);
            let shared = self.clone();
            self.spawn_peer("dialed peer", addr, async move {
                // The session bounds connects in flight over all its torrents.
                let permit = tokio::select! {
                    p = shared.session.dials.acquire() => p,
                    () = shared.cancel.cancelled() => return,
                };
                let Ok(permit) = permit else { return };
                let started = std::time::Instant::now();
                let ours = shared.our_handshake().encode();
                let connect = crate::encryption::dial(
                    addr,
                    shared.info_hash.0,
                    &ours,
                    shared.session.config.encryption,
                    shared.config.connect_timeout,
                    shared.config.handshake_timeout,
                );
                let res = tokio::select! {
                    r = connect => r,
                    () = shared.cancel.cancelled() => return,
                };
                drop(permit);
                match res {
                    // `peer::run` takes it out of `connecting` once the handshake ends.
                    Ok((stream, sent_ours)) => {
                        let opening = crate::peer::Opening::Dialed { sent_ours };
                        crate::peer::run(shared.clone(), stream, addr, opening).await;
                    }
                    Err(DialError::Connect(e)) => {
                        tracing::debug!(%addr, error = %e, "connect failed");
                        shared.lock().connecting.remove(&addr);
                    }
                    Err(DialError::Refused(reason)) => {
                        // It will not encrypt, and we require it: not dialed again.
                        {
                            let mut st = shared.lock();
                            st.connecting.remove(&addr);
                            st.candidates.give_up(addr);
                        }
                        shared.refused(addr, reason);
                        shared.dial_queued();
                        return;
                    }
                }
                shared.retry_later(addr, started.elapsed());
                shared.dial_queued();
            });
        }
    }

    /// A dial to `addr`, or the connection it made, ended after `lasted`: a named address is
    /// queued again after its back-off while the torrent wants data (or chat) and runs.
    fn retry_later(self: &Arc<Self>, addr: SocketAddr, lasted: Duration) {
        if self.cancel.is_cancelled() {
            return;
        }
        let delay = {
            let mut st = self.lock();
            let wants = !self.download || !st.picker.is_complete();
            if !wants {
                return;
            }
            match st.candidates.retry_after(addr, lasted, rand::random::<f64>()) {
                Some(d) => d,
                None => return,
            }
        };
        tracing::debug!(%addr, ?delay, "dialing a named peer again later");
        let s = self.clone();
        self.spawn("retry a named peer", async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = s.cancel.cancelled() => return,
            }
            s.lock().candidates.retry_due(addr);
            let still = !s.download || !s.lock().picker.is_complete();
            if still {
                s.add_peers_first([addr]);
            }
        });
    }
}

/// Whether `addr` is our own listening socket (same port on loopback or the same address).
fn is_own(addr: SocketAddr, listen: SocketAddr) -> bool {
    addr.port() == listen.port()
        && (addr.ip() == listen.ip()
            || addr.ip().is_loopback()
            || listen.ip().is_unspecified() && addr.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn drain(c: &mut Candidates) -> Vec<u16> {
        std::iter::from_fn(|| c.pop()).map(|s| s.port()).collect()
    }

    #[test]
    fn tracker_addresses_queue_in_order_without_duplicates_up_to_the_cap() {
        let mut c = Candidates::new(3);
        assert!(c.push_back(a(1)));
        assert!(c.push_back(a(2)));
        assert!(!c.push_back(a(1)), "already queued");
        assert!(c.push_back(a(3)));
        assert!(!c.push_back(a(4)), "full");
        assert_eq!(c.len(), 3);
        assert_eq!(drain(&mut c), [1, 2, 3]);
        assert!(c.push_back(a(1)), "popped addresses can be queued again");
    }

    #[test]
    fn user_addresses_jump_the_queue_and_evict_the_last() {
        let mut c = Candidates::new(3);
        for p in 1..=3 {
            c.push_back(a(p));
        }
        c.push_front(a(9));
        assert_eq!(c.len(), 3);
        c.push_front(a(2));
        assert_eq!(drain(&mut c), [2, 9, 1]);
    }

    #[test]
    fn a_removed_address_is_not_dialed_and_may_come_back() {
        let mut c = Candidates::new(3);
        for p in 1..=3 {
            c.push_back(a(p));
        }
        c.remove(a(2));
        c.remove(a(7));
        assert_eq!(c.len(), 2);
        assert!(c.push_back(a(2)));
        assert_eq!(drain(&mut c), [1, 3, 2]);
    }

    #[test]
    fn a_zero_cap_queues_nothing() {
        let mut c = Candidates::new(0);
        assert!(!c.push_back(a(1)));
        c.push_front(a(1));
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn named_addresses_come_back_after_a_doubling_jittered_back_off() {
        let mut c = Candidates::new(8);
        let quick = Duration::from_millis(10);
        assert_eq!(c.retry_after(a(5), quick, 0.5), None, "not named: dialed once");
        c.name(a(1));
        assert_eq!(c.retry_after(a(1), quick, 0.5), Some(Duration::from_secs(1)));
        assert_eq!(c.retry_after(a(1), quick, 0.5), None, "one retry at a time");
        c.retry_due(a(1));
        assert_eq!(c.retry_after(a(1), quick, 0.5), Some(Duration::from_secs(2)));
        for _ in 0..8 {
            c.retry_due(a(1));
            c.retry_after(a(1), quick, 0.5);
        }
        c.retry_due(a(1));
        assert_eq!(c.retry_after(a(1), quick, 0.5), Some(RETRY_MAX), "capped");
        c.retry_due(a(1));
        // Jitter spreads it over half to one and a half times the back-off.
        assert_eq!(c.retry_after(a(1), quick, 0.0), Some(RETRY_MAX / 2));
        c.retry_due(a(1));
        // A connection that lasted starts the back-off over.
        assert_eq!(
            c.retry_after(a(1), GOOD_CONNECTION, 1.0),
            Some(Duration::from_millis(1500))
        );
        // At most MAX_NAMED are remembered.
        for p in 100..100 + MAX_NAMED as u16 {
            c.name(a(p));
        }
        assert_eq!(c.named.len(), MAX_NAMED);
    }
}
