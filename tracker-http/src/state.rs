//! The tracker's shared state: the pure [`Swarms`] split into shards by info hash, each behind
//! a `std::sync::Mutex`, plus the clock that turns instants into the seconds the pure code
//! takes.
//!
//! A shard's lock is held only for one synchronous call into [`Swarms`] (microseconds) and
//! never across an `.await`; the response bytes are written after it is released. Sharding lets
//! the runtime's worker threads announce to different swarms at the same time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use share_proto::announce::{AnnounceRequest, ScrapeStats};
use share_proto::InfoHash;

use crate::swarm::{Announced, Budget, Limits, Refusal, SwarmSummary, Swarms};
use crate::Config;

/// Number of shards: a power of two, a few per core.
const SHARDS: usize = 16;

/// Swarm names remembered at most (names come from an embedding program, not from clients).
const MAX_NAMES: usize = 10_000;

/// Longest name kept, in bytes.
const MAX_NAME_LEN: usize = 200;

/// Totals over all swarms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Swarms tracked.
    pub swarms: usize,
    /// Peers stored.
    pub peers: usize,
    /// Of which seeders.
    pub seeders: usize,
}

/// Sharded swarm state and its clock.
#[derive(Debug)]
pub struct State {
    shards: Box<[Mutex<Swarms>]>,
    config: Config,
    started: Instant,
    /// Display names for the index page, set by the program embedding the tracker.
    names: Mutex<HashMap<InfoHash, String>>,
}

impl State {
    /// Empty state applying `config`'s limits: per swarm in each shard, totals in one
    /// budget shared by the shards.
    pub fn new(config: Config) -> Self {
        let limits = Limits {
            max_peers_per_swarm: config.max_peers_per_swarm,
            default_numwant: config.default_numwant,
            max_numwant: config.max_numwant,
        };
        let budget = Arc::new(Budget::new(config.max_swarms, config.max_peers));
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        let shards = (0..SHARDS as u64)
            .map(|i| {
                let seed = seed ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                Mutex::new(Swarms::new(limits, budget.clone(), seed))
            })
            .collect();
        Self {
            shards,
            config,
            started: Instant::now(),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Gives a swarm a display name (cut to 200 bytes); ignored once 10,000 names are known.
    pub fn set_name(&self, info_hash: InfoHash, name: &str) {
        let mut cut = name.len().min(MAX_NAME_LEN);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() < MAX_NAMES || names.contains_key(&info_hash) {
            names.insert(info_hash, name[..cut].to_owned());
        }
    }

    /// The display name of a swarm, if one was set.
    pub fn name(&self, info_hash: &InfoHash) -> Option<String> {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(info_hash)
            .cloned()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whole seconds since the state was created: the pure code's clock.
    pub fn now(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn shard(&self, info_hash: &InfoHash) -> MutexGuard<'_, Swarms> {
        let i = usize::from(info_hash.0[0]) % SHARDS;
        // A panic while holding a shard cannot leave it inconsistent in a way worse than
        // losing the tracker, so a poisoned lock is simply used again.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One announce from `addr` now.
    pub fn announce(&self, addr: IpAddr, request: &AnnounceRequest) -> Result<Announced, Refusal> {
        let now = self.now();
        self.shard(&request.info_hash).announce(now, addr, request)
    }

    /// Counts for each of `hashes`, in the same order.
    pub fn scrape(&self, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        hashes.iter().map(|h| (*h, self.shard(h).scrape(h))).collect()
    }

    /// Up to `limit` swarms, sorted by info hash.
    pub fn list(&self, limit: usize) -> Vec<SwarmSummary> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            if out.len() >= limit {
                break;
            }
            shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .list(limit, &mut out);
        }
        out.sort_by_key(|s| s.info_hash);
        out
    }

    /// Totals over all shards.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let (peers, seeders) = shard.peer_counts();
            t.swarms += shard.swarm_count();
            t.peers += peers;
            t.seeders += seeders;
        }
        t
    }

    /// The periodic sweep, one shard at a time so announces to other shards go on meanwhile.
    /// Returns how many peers expired.
    pub fn clean(&self) -> usize {
        let now = self.now();
        let timeout = self.config.peer_timeout;
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clean(now, timeout))
            .sum()
    }
}
