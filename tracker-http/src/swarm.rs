//! Swarm state as pure synchronous code: no I/O, no clock, no lock.
//!
//! [`Swarms`] maps info hashes to swarms; it is one shard of the tracker's state and is
//! driven by two calls, [`Swarms::announce`] and [`Swarms::clean`], with `now` passed in as
//! whole seconds since the tracker started. Tests drive it like arithmetic.
//!
//! Invariants:
//! - A swarm holds at most one entry per peer id, and never exists empty after a call returns.
//! - `seeders` of a swarm is the number of its entries with `left == 0`.
//! - `downloaded` grows once per leecher-to-seeder transition of a stored peer (or a
//!   `completed` event from a peer not stored), never for a peer that started as a seeder.
//! - `peers` of the shard is the sum of its swarms' entries. The [`Budget`] shared by all
//!   shards counts every stored peer and swarm, so the totals never exceed its maxima.
//! - The response is built before the announcing peer is stored or updated, and skips the
//!   peer's own entry, so a peer never gets itself back.
//! - A peer id already stored from another address is only taken over with the same `key`.
//!
//! Entries are fixed-size (an IPv6 or v4-mapped address, port, last-seen second, key, flags)
//! in an insertion-ordered map so that a random window of peers is one contiguous walk.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use share_proto::announce::{AnnounceRequest, Event, ScrapeStats};
use share_proto::{InfoHash, PeerId};

/// The global limits on swarms and peers, shared by every shard: counts taken when a swarm
/// or peer is stored and given back when it goes. Atomics, so no shard waits for another.
#[derive(Debug)]
pub struct Budget {
    max_swarms: usize,
    max_peers: usize,
    swarms: AtomicUsize,
    peers: AtomicUsize,
}

impl Budget {
    /// Room for `max_swarms` swarms and `max_peers` peers in all.
    pub fn new(max_swarms: usize, max_peers: usize) -> Self {
        Self {
            max_swarms,
            max_peers,
            swarms: AtomicUsize::new(0),
            peers: AtomicUsize::new(0),
        }
    }

    fn take(count: &AtomicUsize, max: usize) -> bool {
        count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give(count: &AtomicUsize, n: usize) {
        count.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Per-swarm limits and defaults a shard applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Peers per swarm at most.
    pub max_peers_per_swarm: usize,
    /// Peers returned when `numwant` is absent.
    pub default_numwant: u32,
    /// Peers returned at most.
    pub max_numwant: u32,
}

/// Why an announce is refused; the text goes to the client as its `failure reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A new swarm would exceed `max_swarms`.
    #[error("the tracker is full: no new swarms are accepted")]
    TooManySwarms,
    /// The peer id is registered from another address without the same `key`.
    #[error("peer_id is registered from another address; send the same key to move it")]
    PeerIdTaken,
}

/// A peer in an announce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerOut {
    /// IPv6 or v4-mapped address.
    pub ip: Ipv6Addr,
    /// Port.
    pub port: u16,
    /// The peer's id, for dictionary responses.
    pub peer_id: PeerId,
}

impl PeerOut {
    /// The IPv4 address, if this is a v4-mapped one.
    pub fn v4(&self) -> Option<std::net::Ipv4Addr> {
        self.ip.to_ipv4_mapped()
    }
}

/// The outcome of an accepted announce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    /// Seeders, the announcing peer included.
    pub complete: u32,
    /// Leechers, the announcing peer included.
    pub incomplete: u32,
    /// Other peers, at most the `numwant` asked for.
    pub peers: Vec<PeerOut>,
    /// Set when the peer was answered but could not be stored.
    pub warning: Option<&'static str>,
}

const SEEDER: u8 = 1;
const HAS_KEY: u8 = 2;

/// One stored peer: 28 bytes.
#[derive(Debug, Clone, Copy)]
struct Peer {
    ip: [u8; 16],
    last_seen: u32,
    key: u32,
    port: u16,
    flags: u8,
}

/// One swarm: its peers and counters.
#[derive(Debug, Default)]
struct Swarm {
    peers: IndexMap<PeerId, Peer>,
    seeders: u32,
    downloaded: u32,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        let len = u32::try_from(self.peers.len()).unwrap_or(u32::MAX);
        ScrapeStats {
            complete: self.seeders,
            downloaded: self.downloaded,
            incomplete: len - self.seeders,
        }
    }

    /// Up to `want` peers from a random window, skipping the entry at `skip`.
    fn pick(&self, want: usize, skip: Option<usize>, rng: &mut u64) -> Vec<PeerOut> {
        let n = self.peers.len();
        let others = n - usize::from(skip.is_some());
        let want = want.min(others);
        let mut out = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        let start = if others <= want {
            0
        } else {
            next_random(rng) as usize % n
        };
        let (tail, head) = (start..n, 0..start);
        for i in tail.chain(head) {
            if Some(i) == skip {
                continue;
            }
            if let Some((id, p)) = self.peers.get_index(i) {
                out.push(PeerOut {
                    ip: Ipv6Addr::from(p.ip),
                    port: p.port,
                    peer_id: *id,
                });
            }
            if out.len() == want {
                break;
            }
        }
        out
    }
}

/// xorshift64*: response order only needs to be unpredictable enough to spread load.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A swarm's line in a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwarmSummary {
    /// The swarm.
    pub info_hash: InfoHash,
    /// Its counts.
    pub stats: ScrapeStats,
}

/// A set of swarms: one shard of the tracker.
#[derive(Debug)]
pub struct Swarms {
    swarms: HashMap<InfoHash, Swarm>,
    peers: usize,
    limits: Limits,
    budget: Arc<Budget>,
    rng: u64,
}

impl Swarms {
    /// An empty shard drawing on `budget`; `seed` starts the generator that picks response
    /// windows.
    pub fn new(limits: Limits, budget: Arc<Budget>, seed: u64) -> Self {
        Self {
            swarms: HashMap::new(),
            peers: 0,
            limits,
            budget,
            rng: seed | 1,
        }
    }

    /// Forgets the swarm `info_hash` if it is empty, giving its place back to the budget.
    fn drop_if_empty(&mut self, info_hash: &InfoHash) {
        if self.swarms.get(info_hash).is_some_and(|s| s.peers.is_empty()) {
            self.swarms.remove(info_hash);
            Budget::give(&self.budget.swarms, 1);
        }
    }

    /// Handles one announce from `addr` (the connection's address; `request.ip` overrides it)
    /// at second `now`.
    pub fn announce(
        &mut self,
        now: u32,
        addr: IpAddr,
        request: &AnnounceRequest,
    ) -> Result<Announced, Refusal> {
        let ip = match request.ip.unwrap_or(addr).to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        if request.event == Event::Stopped {
            return self.stop(ip, request);
        }
        let limits = self.limits;
        if !self.swarms.contains_key(&request.info_hash)
            && !Budget::take(&self.budget.swarms, self.budget.max_swarms)
        {
            return Err(Refusal::TooManySwarms);
        }
        let swarm = self.swarms.entry(request.info_hash).or_default();
        let existing = swarm.peers.get_index_of(&request.peer_id);
        if let Some((_, stored)) = existing.and_then(|i| swarm.peers.get_index(i)) {
            if !may_update(stored, ip, request) {
                return Err(Refusal::PeerIdTaken);
            }
        }
        let want = request
            .numwant
            .unwrap_or(limits.default_numwant)
            .min(limits.max_numwant);
        let peers = swarm.pick(want as usize, existing, &mut self.rng);

        let seeder = request.is_seeder();
        let mut peer = Peer {
            ip,
            last_seen: now,
            key: request.key.unwrap_or(0),
            port: request.port,
            flags: if seeder { SEEDER } else { 0 } | if request.key.is_some() { HAS_KEY } else { 0 },
        };
        let mut warning = None;
        let was_seeder = match existing {
            Some(i) => swarm.peers.get_index_mut(i).map(|(_, stored)| {
                let was = stored.flags & SEEDER != 0;
                if request.key.is_none() {
                    // Keep the key the peer registered with.
                    peer.key = stored.key;
                    peer.flags |= stored.flags & HAS_KEY;
                }
                *stored = peer;
                was
            }),
            None if swarm.peers.len() >= limits.max_peers_per_swarm
                || !Budget::take(&self.budget.peers, self.budget.max_peers) =>
            {
                warning = Some("the swarm is full: you were answered but not registered");
                None
            }
            None => {
                swarm.peers.insert(request.peer_id, peer);
                self.peers += 1;
                Some(false)
            }
        };
        if let Some(was) = was_seeder {
            match (was, seeder) {
                (false, true) => swarm.seeders += 1,
                (true, false) => swarm.seeders -= 1,
                _ => {}
            }
            // A download counts when a stored leecher reports `left=0` (whatever the event:
            // aria2c goes straight to `stopped`), or a peer new to us says `completed`.
            if !was && seeder && (existing.is_some() || request.event == Event::Completed) {
                swarm.downloaded = swarm.downloaded.saturating_add(1);
            }
        }
        let stats = swarm.stats();
        self.drop_if_empty(&request.info_hash);
        Ok(Announced {
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers,
            warning,
        })
    }

    /// `event=stopped`: forget the peer, answer with the counts and no peers.
    fn stop(&mut self, ip: [u8; 16], request: &AnnounceRequest) -> Result<Announced, Refusal> {
        let Some(swarm) = self.swarms.get_mut(&request.info_hash) else {
            return Ok(Announced::default());
        };
        if let Some((i, _, stored)) = swarm.peers.get_full(&request.peer_id) {
            if !may_update(stored, ip, request) {
                return Err(Refusal::PeerIdTaken);
            }
            if stored.flags & SEEDER != 0 {
                swarm.seeders -= 1;
            } else if request.is_seeder() {
                // A leecher that leaves complete finished its download.
                swarm.downloaded = swarm.downloaded.saturating_add(1);
            }
            swarm.peers.swap_remove_index(i);
            self.peers -= 1;
            Budget::give(&self.budget.peers, 1);
        }
        let stats = swarm.stats();
        self.drop_if_empty(&request.info_hash);
        Ok(Announced {
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers: Vec::new(),
            warning: None,
        })
    }

    /// The one periodic sweep: forgets peers not heard from in `timeout` seconds and drops
    /// empty swarms. Returns how many peers were forgotten.
    pub fn clean(&mut self, now: u32, timeout: u32) -> usize {
        let before = self.peers;
        let swarms_before = self.swarms.len();
        let mut total = 0;
        self.swarms.retain(|_, swarm| {
            swarm
                .peers
                .retain(|_, p| now.saturating_sub(p.last_seen) < timeout);
            swarm.seeders = swarm.peers.values().filter(|p| p.flags & SEEDER != 0).count() as u32;
            // Give memory back after churn: a swarm that shrank keeps at most twice its size.
            if swarm.peers.capacity() > 2 * swarm.peers.len() + 16 {
                swarm.peers.shrink_to_fit();
            }
            total += swarm.peers.len();
            !swarm.peers.is_empty()
        });
        if self.swarms.capacity() > 2 * self.swarms.len() + 64 {
            self.swarms.shrink_to_fit();
        }
        self.peers = total;
        Budget::give(&self.budget.peers, before - total);
        Budget::give(&self.budget.swarms, swarms_before - self.swarms.len());
        before - total
    }

    /// Counts for one swarm (zeros when unknown).
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.swarms.get(info_hash).map(Swarm::stats).unwrap_or_default()
    }

    /// Appends up to `limit` swarm summaries to `out` in no particular order.
    pub fn list(&self, limit: usize, out: &mut Vec<SwarmSummary>) {
        let room = limit.saturating_sub(out.len());
        out.extend(self.swarms.iter().take(room).map(|(h, s)| SwarmSummary {
            info_hash: *h,
            stats: s.stats(),
        }));
    }

    /// Number of swarms.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of stored peers, and how many of them are seeders.
    pub fn peer_counts(&self) -> (usize, usize) {
        (self.peers, self.swarms.values().map(|s| s.seeders as usize).sum())
    }
}

/// Whether a request may update or remove the stored entry of its peer id: from the same
/// address, or with the same `key` it registered with.
fn may_update(stored: &Peer, ip: [u8; 16], request: &AnnounceRequest) -> bool {
    stored.ip == ip || (stored.flags & HAS_KEY != 0 && request.key == Some(stored.key))
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
