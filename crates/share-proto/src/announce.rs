//! Announce and scrape types shared by the tracker and its clients (BEP 3, 7, 23, 48).
//!
//! Both directions live here so that the tracker and the engine's tracker client agree on one
//! definition: [`AnnounceRequest`] is built into a query string by a client
//! ([`AnnounceRequest::to_query`]) and parsed from the raw query bytes by the tracker
//! ([`AnnounceRequest::parse_query`]); the tracker writes bencoded responses and a client reads
//! them back with [`AnnounceResponse::from_bencode`] and [`ScrapeResponse::from_bencode`].
//!
//! Info hashes and peer ids are raw binary, percent-encoded byte by byte in the query string, so
//! the query is parsed from its raw bytes: decoding it into a `String` first would break them.
//! Parsing never allocates and never panics on any input; every error names the parameter.

mod query;
mod response;
pub mod udp;

pub use query::{parse_scrape_query, percent_decode, scrape_query, QueryError, QueryPairs};
pub use response::{
    AnnounceResponse, PeerEntry, ResponseError, ScrapeResponse, ScrapeStats, MAX_RESPONSE_PEERS,
};

use crate::hash::{InfoHash, PeerId};
use std::net::IpAddr;

/// What an announce reports, beyond the regular periodic update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Event {
    /// A regular announce (no `event`, or `event=empty`).
    #[default]
    None,
    /// The first announce of a download.
    Started,
    /// The download finished (sent once, not when starting as a seeder).
    Completed,
    /// The peer is leaving the swarm.
    Stopped,
}

impl Event {
    /// The query-string value, or `None` for a regular announce.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// Parses a query-string value; `empty` and the empty string are regular announces.
    pub fn parse(value: &[u8]) -> Option<Self> {
        match value {
            b"" | b"empty" => Some(Event::None),
            b"started" => Some(Event::Started),
            b"completed" => Some(Event::Completed),
            b"stopped" => Some(Event::Stopped),
            _ => None,
        }
    }
}

/// Peers a tracker returns when the client does not say (`numwant` absent).
pub const DEFAULT_NUMWANT: u32 = 50;

/// One `GET /announce` (BEP 3, with BEP 23's `compact` and the common `key`, `numwant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The port the peer accepts connections on (never 0).
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing; 0 makes the peer a seeder.
    pub left: u64,
    /// Why this announce is sent.
    pub event: Event,
    /// Compact peer strings (BEP 23) rather than a list of dictionaries. Default on.
    pub compact: bool,
    /// In dictionary mode, leave out each peer's id.
    pub no_peer_id: bool,
    /// How many peers the client wants; `None` lets the tracker choose.
    pub numwant: Option<u32>,
    /// The address to hand out instead of the connection's source address.
    pub ip: Option<IpAddr>,
    /// A per-session secret that lets a peer prove it is the same one after an address change.
    /// Sent as 8 hex digits; other forms are folded into 32 bits when parsed.
    pub key: Option<u32>,
}

impl AnnounceRequest {
    /// A `started` announce with the defaults: compact, tracker-chosen `numwant`, no `ip`/`key`.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16, left: u64) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: Event::Started,
            compact: true,
            no_peer_id: false,
            numwant: None,
            ip: None,
            key: None,
        }
    }

    /// Whether this peer has the whole content.
    pub fn is_seeder(&self) -> bool {
        self.left == 0
    }

    /// The query string (without `?`): ids percent-encoded byte by byte, then the numbers.
    pub fn to_query(&self) -> String {
        query::announce_query(self)
    }

    /// The full announce URL: `base` plus this query, after `?` or `&` as `base` requires.
    pub fn url(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{}", self.to_query())
    }

    /// Parses the raw bytes of a query string (without `?`). `info_hash`, `peer_id`, `port`
    /// and `left` are required; unknown parameters are ignored; the first of a repeated
    /// parameter wins.
    pub fn parse_query(raw: &[u8]) -> Result<Self, QueryError> {
        query::parse_announce(raw)
    }
}

/// The scrape URL for an announce URL, per BEP 48's convention: the last path segment must
/// start with `announce`, which becomes `scrape`. `None` when the tracker cannot scrape.
pub fn scrape_url(announce: &str) -> Option<String> {
    let (path, query) = match announce.find('?') {
        Some(i) => (&announce[..i], &announce[i..]),
        None => (announce, ""),
    };
    let slash = path.rfind('/')?;
    let last = &path[slash + 1..];
    let rest = last.strip_prefix("announce")?;
    Some(format!("{}scrape{rest}{query}", &path[..=slash]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_url_follows_bep48() {
        let cases = [
            ("http://t.example/announce", Some("http://t.example/scrape")),
            (
                "http://t.example/x/announce.php",
                Some("http://t.example/x/scrape.php"),
            ),
            (
                "http://t.example/announce?k=1",
                Some("http://t.example/scrape?k=1"),
            ),
            ("http://t.example/a", None),
            ("http://t.example/announce/x", None),
        ];
        for (announce, want) in cases {
            assert_eq!(scrape_url(announce).as_deref(), want, "{announce}");
        }
    }

    #[test]
    fn events_round_trip() {
        for e in [Event::None, Event::Started, Event::Completed, Event::Stopped] {
            assert_eq!(Event::parse(e.as_str().unwrap_or("").as_bytes()), Some(e));
        }
        assert_eq!(Event::parse(b"paused"), None);
    }

    #[test]
    fn url_picks_the_separator() {
        let r = AnnounceRequest::new(InfoHash([1; 20]), PeerId([2; 20]), 6881, 0);
        assert!(r
            .url("http://h/announce")
            .starts_with("http://h/announce?info_hash="));
        assert!(r
            .url("http://h/announce?p=1")
            .starts_with("http://h/announce?p=1&info_hash="));
    }
}
