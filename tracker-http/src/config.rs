//! The tracker's settings, every default in one `impl Default`.
//!
//! The limits bound memory whatever clients send: at most `max_peers` peers are stored in
//! all (about 80 bytes each, see docs/tracker.md), in at most `max_swarms` swarms of at most
//! `max_peers_per_swarm` peers, and every list the tracker returns is capped.

use std::time::Duration;

/// How the tracker behaves and how much it accepts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seconds between regular announces, told to clients as `interval`.
    pub interval: u32,
    /// Seconds a client must at least wait between announces (`min interval`).
    pub min_interval: u32,
    /// Seconds after its last announce that a peer is forgotten: twice the interval, and never
    /// less than twice [`CLIENT_MAX_INTERVAL`] (clients that announce less often than told).
    pub peer_timeout: u32,
    /// Peers returned when the client does not send `numwant`.
    pub default_numwant: u32,
    /// Peers returned at most, whatever `numwant` asks.
    pub max_numwant: u32,
    /// Swarms tracked at most; announces for new swarms beyond it are refused.
    pub max_swarms: usize,
    /// Peers stored per swarm at most; more are answered but not stored.
    pub max_peers_per_swarm: usize,
    /// Peers stored in all at most; the memory bound.
    pub max_peers: usize,
    /// Info hashes accepted in one scrape.
    pub max_scrape_hashes: usize,
    /// Swarms listed at most by a scrape without `info_hash`, by `/` and by `/stats`.
    pub max_listed_swarms: usize,
    /// Longest query string accepted, in bytes; longer requests get 414.
    pub max_query_len: usize,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A connection on which no request starts for this long (between one and two times it)
    /// is closed: idle kept-alive clients and clients that send headers too slowly cannot
    /// hold the connection slots.
    pub idle_timeout: Duration,
    /// UDP requests (BEP 15) one source address may send a second, after its burst; the
    /// rest are dropped unanswered.
    pub udp_rate: u32,
    /// UDP requests one source address may send at once.
    pub udp_burst: u32,
}

/// The longest a real client may wait between announces whatever `interval` says:
/// libtorrent (and qBittorrent on it) re-announce at most every `min_announce_interval`,
/// 300 s by default. Peers are kept at least twice this, so a short `--interval` does not
/// make them vanish between their announces.
pub const CLIENT_MAX_INTERVAL: u32 = 300;

impl Config {
    /// The defaults with another announce interval; `min interval` (half of it) and the peer
    /// timeout (twice the later of it and [`CLIENT_MAX_INTERVAL`]) follow.
    pub fn with_interval(interval: u32) -> Self {
        let interval = interval.max(1);
        Self {
            interval,
            min_interval: (interval / 2).max(1),
            peer_timeout: interval.max(CLIENT_MAX_INTERVAL).saturating_mul(2),
            ..Self::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interval: 1800,
            min_interval: 900,
            peer_timeout: 3600,
            default_numwant: share_proto::announce::DEFAULT_NUMWANT,
            max_numwant: 200,
            max_swarms: 100_000,
            max_peers_per_swarm: 100_000,
            max_peers: 2_000_000,
            max_scrape_hashes: 64,
            max_listed_swarms: 1000,
            max_query_len: 4096,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(15),
            udp_rate: 50,
            udp_burst: 200,
        }
    }
}
