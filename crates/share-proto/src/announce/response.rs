//! Announce and scrape responses as a client reads them.
//!
//! A response is checked by the strict scanner first (depth limit, no trailing bytes), then
//! read as a serde_bencode value. Peers come either compact (BEP 23: 6 bytes each in `peers`,
//! 18 bytes each in BEP 7's `peers6`) or as a list of dictionaries (`ip`, `port`, `peer id`);
//! both forms are accepted. The number of peers kept is bounded.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde_bencode::value::Value;

use crate::hash::{InfoHash, PeerId};

/// At most this many peers are read from one response; the rest are ignored.
pub const MAX_RESPONSE_PEERS: usize = 2000;

/// Why a tracker response could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The tracker refused the request and said why.
    #[error("tracker refused: {0}")]
    Failure(String),
    /// The body is not well-formed bencode.
    #[error("response is not bencode: {0}")]
    Bencode(String),
    /// The body is bencode but not a dictionary, or a key holds the wrong kind of value.
    #[error("response has a bad `{0}`")]
    Bad(&'static str),
    /// A required key is absent.
    #[error("response lacks `{0}`")]
    Missing(&'static str),
}

/// A peer handed out by a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerEntry {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its id, when the tracker sent dictionary peers with ids.
    pub peer_id: Option<PeerId>,
}

/// A successful announce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    /// Seconds the client must at least wait, if the tracker says.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm, if the tracker says.
    pub complete: Option<u32>,
    /// Leechers in the swarm, if the tracker says.
    pub incomplete: Option<u32>,
    /// Peers from `peers` then `peers6`, at most [`MAX_RESPONSE_PEERS`].
    pub peers: Vec<PeerEntry>,
    /// A `warning message`: the request worked but something is worth reporting.
    pub warning: Option<String>,
}

/// One swarm's line in a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever counted.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// A scrape response: the swarms' counts, sorted by info hash.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrapeResponse {
    /// One entry per swarm the tracker reported.
    pub files: Vec<(InfoHash, ScrapeStats)>,
}

type Dict = HashMap<Vec<u8>, Value>;

/// Scans, parses, and turns a `failure reason` into [`ResponseError::Failure`].
fn top_dict(body: &[u8]) -> Result<Dict, ResponseError> {
    crate::bencode::validate(body).map_err(|e| ResponseError::Bencode(e.to_string()))?;
    let value: Value = serde_bencode::from_bytes(body).map_err(|e| ResponseError::Bencode(e.to_string()))?;
    let Value::Dict(dict) = value else {
        return Err(ResponseError::Bad("top-level dictionary"));
    };
    if let Some(reason) = dict.get(&b"failure reason"[..]) {
        let Value::Bytes(b) = reason else {
            return Err(ResponseError::Bad("failure reason"));
        };
        return Err(ResponseError::Failure(String::from_utf8_lossy(b).into_owned()));
    }
    Ok(dict)
}

/// A non-negative integer that fits in `u32` (larger counts saturate).
fn count(dict: &Dict, key: &'static str) -> Result<Option<u32>, ResponseError> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Int(i)) if *i >= 0 => Ok(Some(u32::try_from(*i).unwrap_or(u32::MAX))),
        Some(_) => Err(ResponseError::Bad(key)),
    }
}

fn compact_peers(
    bytes: &[u8],
    width: usize,
    key: &'static str,
    out: &mut Vec<PeerEntry>,
) -> Result<(), ResponseError> {
    if bytes.len() % width != 0 || (width != 6 && width != 18) {
        return Err(ResponseError::Bad(key));
    }
    let room = MAX_RESPONSE_PEERS.saturating_sub(out.len());
    out.extend(
        crate::compact::read(bytes, width == 18)
            .take(room)
            .map(|addr| PeerEntry { addr, peer_id: None }),
    );
    Ok(())
}

/// One dictionary peer; entries with an unusable address or port are skipped, as clients do.
fn dict_peer(value: &Value) -> Option<PeerEntry> {
    let Value::Dict(d) = value else { return None };
    let Some(Value::Bytes(ip)) = d.get(&b"ip"[..]) else {
        return None;
    };
    let Some(Value::Int(port)) = d.get(&b"port"[..]) else {
        return None;
    };
    let ip: IpAddr = std::str::from_utf8(ip).ok()?.parse().ok()?;
    let port = u16::try_from(*port).ok()?;
    let peer_id = match d.get(&b"peer id"[..]) {
        Some(Value::Bytes(id)) => PeerId::from_slice(id),
        _ => None,
    };
    Some(PeerEntry {
        addr: SocketAddr::new(ip, port),
        peer_id,
    })
}

impl AnnounceResponse {
    /// Parses a response body. A `failure reason` becomes [`ResponseError::Failure`].
    pub fn from_bencode(body: &[u8]) -> Result<Self, ResponseError> {
        let dict = top_dict(body)?;
        let interval = count(&dict, "interval")?.ok_or(ResponseError::Missing("interval"))?;
        let mut peers = Vec::new();
        match dict.get(&b"peers"[..]) {
            None => {}
            Some(Value::Bytes(b)) => compact_peers(b, 6, "peers", &mut peers)?,
            Some(Value::List(list)) => {
                peers.extend(list.iter().filter_map(dict_peer).take(MAX_RESPONSE_PEERS));
            }
            Some(_) => return Err(ResponseError::Bad("peers")),
        }
        match dict.get(&b"peers6"[..]) {
            None => {}
            Some(Value::Bytes(b)) => compact_peers(b, 18, "peers6", &mut peers)?,
            Some(_) => return Err(ResponseError::Bad("peers6")),
        }
        let warning = match dict.get(&b"warning message"[..]) {
            Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        Ok(Self {
            interval,
            min_interval: count(&dict, "min interval")?,
            complete: count(&dict, "complete")?,
            incomplete: count(&dict, "incomplete")?,
            peers,
            warning,
        })
    }
}

impl ScrapeResponse {
    /// Parses a scrape body (BEP 48): `files` maps 20-byte info hashes to their counts.
    pub fn from_bencode(body: &[u8]) -> Result<Self, ResponseError> {
        let dict = top_dict(body)?;
        let Some(Value::Dict(files)) = dict.get(&b"files"[..]) else {
            return Err(ResponseError::Missing("files"));
        };
        let mut out = Vec::with_capacity(files.len());
        for (hash, stats) in files {
            let hash = InfoHash::from_slice(hash).ok_or(ResponseError::Bad("files"))?;
            let Value::Dict(stats) = stats else {
                return Err(ResponseError::Bad("files"));
            };
            out.push((
                hash,
                ScrapeStats {
                    complete: count(stats, "complete")?.unwrap_or(0),
                    downloaded: count(stats, "downloaded")?.unwrap_or(0),
                    incomplete: count(stats, "incomplete")?.unwrap_or(0),
                },
            ));
        }
        out.sort_by_key(|(h, _)| *h);
        Ok(Self { files: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn compact_and_v6_peers() {
        let mut body =
            b"d8:completei2e10:incompletei1e8:intervali1800e12:min intervali900e5:peers12:".to_vec();
        body.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(&[0x1a, 0xe2, b'e']);
        let r = AnnounceResponse::from_bencode(&body).unwrap();
        assert_eq!(
            (r.interval, r.min_interval, r.complete, r.incomplete),
            (1800, Some(900), Some(2), Some(1))
        );
        let addrs: Vec<String> = r.peers.iter().map(|p| p.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:6881", "10.0.0.2:80", "[::1]:6882"]);
    }

    #[test]
    fn dictionary_peers_with_and_without_ids() {
        let body = b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:-SH0100-abcdefghijkl4:porti7eed2:ip3:::14:porti8eed2:ip4:host4:porti9eeee";
        let r = AnnounceResponse::from_bencode(body).unwrap();
        assert_eq!(r.peers.len(), 2, "the host-name entry is skipped");
        assert_eq!(r.peers[0].addr, "127.0.0.1:7".parse().unwrap());
        assert_eq!(r.peers[0].peer_id, Some(PeerId(*b"-SH0100-abcdefghijkl")));
        assert_eq!(
            (r.peers[1].addr, r.peers[1].peer_id),
            ("[::1]:8".parse().unwrap(), None)
        );
    }

    #[test]
    fn failures_and_bad_bodies() {
        let fail = AnnounceResponse::from_bencode(b"d14:failure reason12:missing porte");
        assert_eq!(fail, Err(ResponseError::Failure("missing port".into())));
        assert_eq!(
            AnnounceResponse::from_bencode(b"de"),
            Err(ResponseError::Missing("interval"))
        );
        assert_eq!(
            AnnounceResponse::from_bencode(b"d8:intervali1e5:peers5:12345e"),
            Err(ResponseError::Bad("peers"))
        );
        assert_eq!(
            AnnounceResponse::from_bencode(b"d8:intervali-1ee"),
            Err(ResponseError::Bad("interval"))
        );
        assert!(matches!(
            AnnounceResponse::from_bencode(b"d8:intervali1ee?"),
            Err(ResponseError::Bencode(_))
        ));
        assert!(matches!(
            AnnounceResponse::from_bencode(&[b'l'; 100_000]),
            Err(ResponseError::Bencode(_))
        ));
        assert_eq!(
            AnnounceResponse::from_bencode(b"le"),
            Err(ResponseError::Bad("top-level dictionary"))
        );
    }

    #[test]
    fn scrape_files_sorted() {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&[2; 20]);
        body.extend_from_slice(b"d8:completei1e10:downloadedi5e10:incompletei3ee20:");
        body.extend_from_slice(&[1; 20]);
        body.extend_from_slice(b"deee");
        let r = ScrapeResponse::from_bencode(&body).unwrap();
        assert_eq!(r.files[0], (InfoHash([1; 20]), ScrapeStats::default()));
        assert_eq!(
            r.files[1],
            (
                InfoHash([2; 20]),
                ScrapeStats {
                    complete: 1,
                    downloaded: 5,
                    incomplete: 3
                }
            )
        );
        assert_eq!(
            ScrapeResponse::from_bencode(b"de"),
            Err(ResponseError::Missing("files"))
        );
    }
}
