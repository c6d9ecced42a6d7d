//! The UDP tracker protocol (BEP 15), both directions, with no I/O: a client encodes
//! [`Request`]s and parses [`Response`]s, a tracker parses requests and encodes responses.
//!
//! Every message starts with its action and a transaction id the client chose; a client
//! drops any response whose transaction id or action is not the one it waits for. A
//! connection id (from the connect exchange) must accompany announces and scrapes, which
//! stops a forged source address from turning the tracker into an amplifier: only a client
//! that received the connect response at that address can send them.
//!
//! Parsing never panics and never allocates past the packet's own length: every length is
//! checked before the bytes are read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{AnnounceRequest, Event, PeerEntry, ScrapeStats, MAX_RESPONSE_PEERS};
use crate::hash::{InfoHash, PeerId};

/// The magic connection id of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Info hashes in one scrape: what fits a response in one ordinary datagram (BEP 15).
pub const MAX_SCRAPE: usize = 74;
/// The largest request a tracker needs to read (a scrape of [`MAX_SCRAPE`] hashes; an
/// announce may carry a BEP 41 URL data option after its 98 bytes, which is ignored).
pub const MAX_REQUEST: usize = 16 + 20 * MAX_SCRAPE;
/// Longest error message a tracker sends.
pub const MAX_ERROR: usize = 200;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// Why a datagram is not a message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    /// Too short for its action.
    #[error("{what} of {len} bytes is too short")]
    Short {
        /// What it claimed to be.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Too long to be a request we read.
    #[error("request of {0} bytes is too long")]
    Long(usize),
    /// An action we do not know.
    #[error("unknown action {0}")]
    Action(u32),
    /// A connect request without the protocol's magic number.
    #[error("not a UDP tracker connect request")]
    Magic,
    /// A scrape with no hash, or a partial one.
    #[error("scrape of a partial or missing info hash")]
    ScrapeHashes,
    /// An announce whose event is not 0 to 3.
    #[error("unknown event {0}")]
    Event(u32),
    /// An announce for port 0.
    #[error("port 0 is not a port")]
    Port,
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Asks for a connection id.
    Connect {
        /// The client's transaction id.
        transaction: u32,
    },
    /// An announce: the request carries what an HTTP announce does.
    Announce {
        /// The connection id the tracker gave this address.
        connection: u64,
        /// The client's transaction id.
        transaction: u32,
        /// The announce (`compact` is always on; `ip` is the IPv4 field, `None` for 0).
        request: AnnounceRequest,
    },
    /// Counts for up to [`MAX_SCRAPE`] swarms.
    Scrape {
        /// The connection id the tracker gave this address.
        connection: u64,
        /// The client's transaction id.
        transaction: u32,
        /// The swarms.
        hashes: Vec<InfoHash>,
    },
}

/// A tracker's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A connection id for this address.
    Connect {
        /// The client's transaction id.
        transaction: u32,
        /// The id to send with announces and scrapes.
        connection: u64,
    },
    /// Peers for an announce.
    Announce {
        /// The client's transaction id.
        transaction: u32,
        /// Seconds until the next announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Peers: 6 bytes each to an IPv4 client, 18 bytes each to an IPv6 one.
        peers: Vec<SocketAddr>,
    },
    /// Counts, in the order of the request's hashes.
    Scrape {
        /// The client's transaction id.
        transaction: u32,
        /// One line per hash asked for.
        stats: Vec<ScrapeStats>,
    },
    /// The request was refused.
    Error {
        /// The client's transaction id.
        transaction: u32,
        /// Why.
        message: String,
    },
}

/// Big-endian reader over a datagram; every read is checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
}

fn event_code(e: Event) -> u32 {
    match e {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    }
}

fn event_of(code: u32) -> Option<Event> {
    Some(match code {
        0 => Event::None,
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        _ => return None,
    })
}

impl Request {
    /// The client's transaction id.
    pub fn transaction(&self) -> u32 {
        match self {
            Request::Connect { transaction }
            | Request::Announce { transaction, .. }
            | Request::Scrape { transaction, .. } => *transaction,
        }
    }

    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(98);
        match self {
            Request::Connect { transaction } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction.to_be_bytes());
            }
            Request::Announce {
                connection,
                transaction,
                request: r,
            } => {
                out.extend_from_slice(&connection.to_be_bytes());
                out.extend_from_slice(&ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction.to_be_bytes());
                out.extend_from_slice(&r.info_hash.0);
                out.extend_from_slice(&r.peer_id.0);
                out.extend_from_slice(&r.downloaded.to_be_bytes());
                out.extend_from_slice(&r.left.to_be_bytes());
                out.extend_from_slice(&r.uploaded.to_be_bytes());
                out.extend_from_slice(&event_code(r.event).to_be_bytes());
                let ip = match r.ip {
                    Some(IpAddr::V4(v4)) => u32::from(v4),
                    _ => 0,
                };
                out.extend_from_slice(&ip.to_be_bytes());
                out.extend_from_slice(&r.key.unwrap_or(0).to_be_bytes());
                // -1: the tracker chooses.
                let numwant = r.numwant.map_or(-1i32, |n| i32::try_from(n).unwrap_or(i32::MAX));
                out.extend_from_slice(&numwant.to_be_bytes());
                out.extend_from_slice(&r.port.to_be_bytes());
            }
            Request::Scrape {
                connection,
                transaction,
                hashes,
            } => {
                out.extend_from_slice(&connection.to_be_bytes());
                out.extend_from_slice(&SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction.to_be_bytes());
                for h in hashes.iter().take(MAX_SCRAPE) {
                    out.extend_from_slice(&h.0);
                }
            }
        }
        out
    }

    /// Reads a request (a tracker's side).
    pub fn parse(data: &[u8]) -> Result<Self, UdpError> {
        let short = |what| UdpError::Short {
            what,
            len: data.len(),
        };
        if data.len() > MAX_REQUEST {
            return Err(UdpError::Long(data.len()));
        }
        let mut r = Reader(data);
        let (Some(connection), Some(action), Some(transaction)) = (r.u64(), r.u32(), r.u32()) else {
            return Err(short("request"));
        };
        match action {
            CONNECT if connection != PROTOCOL_ID => Err(UdpError::Magic),
            CONNECT => Ok(Request::Connect { transaction }),
            ANNOUNCE => {
                let fields = (|| {
                    let info_hash = InfoHash(r.take()?);
                    let peer_id = PeerId(r.take()?);
                    let (downloaded, left, uploaded) = (r.u64()?, r.u64()?, r.u64()?);
                    let (event, ip, key, numwant, port) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u16()?);
                    Some((
                        info_hash, peer_id, downloaded, left, uploaded, event, ip, key, numwant, port,
                    ))
                })();
                let (info_hash, peer_id, downloaded, left, uploaded, event, ip, key, numwant, port) =
                    fields.ok_or_else(|| short("announce"))?;
                let event = event_of(event).ok_or(UdpError::Event(event))?;
                if port == 0 {
                    return Err(UdpError::Port);
                }
                let numwant = i32::from_be_bytes(numwant.to_be_bytes());
                let request = AnnounceRequest {
                    uploaded,
                    downloaded,
                    event,
                    numwant: u32::try_from(numwant).ok(),
                    ip: (ip != 0).then(|| IpAddr::V4(Ipv4Addr::from(ip))),
                    key: Some(key),
                    ..AnnounceRequest::new(info_hash, peer_id, port, left)
                };
                Ok(Request::Announce {
                    connection,
                    transaction,
                    request,
                })
            }
            SCRAPE => {
                let rest = r.0;
                if rest.is_empty() || rest.len() % 20 != 0 {
                    return Err(UdpError::ScrapeHashes);
                }
                let hashes = rest
                    .chunks_exact(20)
                    .filter_map(|c| c.try_into().ok().map(InfoHash))
                    .collect();
                Ok(Request::Scrape {
                    connection,
                    transaction,
                    hashes,
                })
            }
            other => Err(UdpError::Action(other)),
        }
    }
}

impl Response {
    /// The client's transaction id.
    pub fn transaction(&self) -> u32 {
        match self {
            Response::Connect { transaction, .. }
            | Response::Announce { transaction, .. }
            | Response::Scrape { transaction, .. }
            | Response::Error { transaction, .. } => *transaction,
        }
    }

    /// The datagram. An announce's peers are written in the family of the first one (a
    /// tracker answers an IPv4 client with IPv4 peers, an IPv6 one with IPv6 peers); peers
    /// of the other family are left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let head = |out: &mut Vec<u8>, action: u32, transaction: u32| {
            out.extend_from_slice(&action.to_be_bytes());
            out.extend_from_slice(&transaction.to_be_bytes());
        };
        match self {
            Response::Connect {
                transaction,
                connection,
            } => {
                head(&mut out, CONNECT, *transaction);
                out.extend_from_slice(&connection.to_be_bytes());
            }
            Response::Announce {
                transaction,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                head(&mut out, ANNOUNCE, *transaction);
                for v in [interval, leechers, seeders] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                let v6 = peers.first().is_some_and(SocketAddr::is_ipv6);
                for p in peers.iter().filter(|p| p.is_ipv6() == v6) {
                    crate::compact::write(p, &mut out);
                }
            }
            Response::Scrape { transaction, stats } => {
                head(&mut out, SCRAPE, *transaction);
                for s in stats.iter().take(MAX_SCRAPE) {
                    for v in [s.complete, s.downloaded, s.incomplete] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            Response::Error { transaction, message } => {
                head(&mut out, ERROR, *transaction);
                let mut cut = message.len().min(MAX_ERROR);
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.extend_from_slice(&message.as_bytes()[..cut]);
            }
        }
        out
    }

    /// Reads a response (a client's side); `v6`: the tracker was reached over IPv6, so its
    /// peers are 18 bytes each. Peers past [`MAX_RESPONSE_PEERS`] are ignored, and so is a
    /// partial one at the end.
    pub fn parse(data: &[u8], v6: bool) -> Result<Self, UdpError> {
        let short = |what| UdpError::Short {
            what,
            len: data.len(),
        };
        let mut r = Reader(data);
        let (Some(action), Some(transaction)) = (r.u32(), r.u32()) else {
            return Err(short("response"));
        };
        match action {
            CONNECT => Ok(Response::Connect {
                transaction,
                connection: r.u64().ok_or_else(|| short("connect response"))?,
            }),
            ANNOUNCE => {
                let (Some(interval), Some(leechers), Some(seeders)) = (r.u32(), r.u32(), r.u32()) else {
                    return Err(short("announce response"));
                };
                let peers = crate::compact::read(r.0, v6).take(MAX_RESPONSE_PEERS).collect();
                Ok(Response::Announce {
                    transaction,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            SCRAPE => Ok(Response::Scrape {
                transaction,
                stats: r
                    .0
                    .chunks_exact(12)
                    .take(MAX_SCRAPE)
                    .map(|c| {
                        let n = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                        ScrapeStats {
                            complete: n(0),
                            downloaded: n(4),
                            incomplete: n(8),
                        }
                    })
                    .collect(),
            }),
            ERROR => Ok(Response::Error {
                transaction,
                message: String::from_utf8_lossy(&r.0[..r.0.len().min(MAX_ERROR)]).into_owned(),
            }),
            other => Err(UdpError::Action(other)),
        }
    }

    /// An announce response as the HTTP client's [`super::AnnounceResponse`].
    pub fn into_announce(self) -> Option<super::AnnounceResponse> {
        let Response::Announce {
            interval,
            leechers,
            seeders,
            peers,
            ..
        } = self
        else {
            return None;
        };
        Some(super::AnnounceResponse {
            interval,
            min_interval: None,
            complete: Some(seeders),
            incomplete: Some(leechers),
            peers: peers
                .into_iter()
                .filter(|p| p.port() != 0)
                .map(|addr| PeerEntry { addr, peer_id: None })
                .collect(),
            warning: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce() -> AnnounceRequest {
        AnnounceRequest {
            uploaded: 7,
            downloaded: 8,
            event: Event::Completed,
            numwant: Some(30),
            ip: Some("10.1.2.3".parse().unwrap()),
            key: Some(0xdead_beef),
            ..AnnounceRequest::new(InfoHash([0xab; 20]), PeerId([0xcd; 20]), 6881, 99)
        }
    }

    #[test]
    fn requests_have_bep_15s_layout_and_round_trip() {
        let connect = Request::Connect {
            transaction: 0x0102_0304,
        };
        let bytes = connect.encode();
        assert_eq!(
            bytes,
            [0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(Request::parse(&bytes), Ok(connect));

        let a = Request::Announce {
            connection: 0x1122_3344_5566_7788,
            transaction: 9,
            request: announce(),
        };
        let bytes = a.encode();
        assert_eq!(bytes.len(), 98);
        assert_eq!(&bytes[8..12], &[0, 0, 0, 1], "action 1");
        assert_eq!(&bytes[80..84], &[0, 0, 0, 1], "event 1: completed");
        assert_eq!(&bytes[84..88], &[10, 1, 2, 3], "ip");
        assert_eq!(&bytes[96..98], &6881u16.to_be_bytes(), "port last");
        assert_eq!(Request::parse(&bytes), Ok(a));
        // numwant -1 is the tracker's choice; a BEP 41 option after the 98 bytes is ignored.
        let mut bytes = Request::Announce {
            connection: 1,
            transaction: 2,
            request: AnnounceRequest {
                numwant: None,
                ..announce()
            },
        }
        .encode();
        assert_eq!(&bytes[92..96], &[0xff; 4]);
        bytes.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
        let Ok(Request::Announce { request, .. }) = Request::parse(&bytes) else {
            panic!("parsed")
        };
        assert_eq!(request.numwant, None);

        let s = Request::Scrape {
            connection: 5,
            transaction: 6,
            hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        };
        assert_eq!(Request::parse(&s.encode()), Ok(s));
    }

    #[test]
    fn bad_requests_are_errors_at_every_length() {
        let good = Request::Announce {
            connection: 1,
            transaction: 2,
            request: announce(),
        }
        .encode();
        for n in 0..98 {
            assert!(Request::parse(&good[..n]).is_err(), "truncated to {n}");
        }
        let mut connect = Request::Connect { transaction: 1 }.encode();
        connect[0] = 9;
        assert_eq!(Request::parse(&connect), Err(UdpError::Magic));
        let mut bad = good.clone();
        bad[83] = 7;
        assert_eq!(Request::parse(&bad), Err(UdpError::Event(7)));
        let mut port0 = good.clone();
        port0[96..98].copy_from_slice(&[0, 0]);
        assert_eq!(Request::parse(&port0), Err(UdpError::Port));
        let mut action = good.clone();
        action[11] = 9;
        assert_eq!(Request::parse(&action), Err(UdpError::Action(9)));
        let scrape = |n: usize| {
            let mut b = vec![0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 1];
            b.extend(std::iter::repeat_n(7u8, n));
            Request::parse(&b)
        };
        assert_eq!(scrape(0), Err(UdpError::ScrapeHashes));
        assert_eq!(scrape(21), Err(UdpError::ScrapeHashes));
        assert_eq!(scrape(20 * MAX_SCRAPE + 20), Err(UdpError::Long(16 + 20 * 75)));
    }

    #[test]
    fn responses_round_trip_in_both_families() {
        let v4 = Response::Announce {
            transaction: 3,
            interval: 1800,
            leechers: 2,
            seeders: 5,
            peers: vec!["1.2.3.4:5".parse().unwrap(), "9.8.7.6:65535".parse().unwrap()],
        };
        let bytes = v4.encode();
        assert_eq!(bytes.len(), 20 + 12);
        assert_eq!(Response::parse(&bytes, false), Ok(v4.clone()));
        let v6 = Response::Announce {
            transaction: 3,
            interval: 1800,
            leechers: 2,
            seeders: 5,
            peers: vec!["[::1]:80".parse().unwrap(), "[2001:db8::7]:6881".parse().unwrap()],
        };
        let bytes = v6.encode();
        assert_eq!(bytes.len(), 20 + 36);
        assert_eq!(Response::parse(&bytes, true), Ok(v6));
        let a = Response::parse(&v4.encode(), false)
            .unwrap()
            .into_announce()
            .unwrap();
        assert_eq!(
            (a.interval, a.complete, a.incomplete, a.peers.len()),
            (1800, Some(5), Some(2), 2)
        );
        for r in [
            Response::Connect {
                transaction: 1,
                connection: 77,
            },
            Response::Scrape {
                transaction: 2,
                stats: vec![ScrapeStats {
                    complete: 1,
                    downloaded: 2,
                    incomplete: 3,
                }],
            },
            Response::Error {
                transaction: 4,
                message: "connection id expired".into(),
            },
        ] {
            assert_eq!(Response::parse(&r.encode(), false), Ok(r));
        }
        // A partial peer at the end is ignored; a short header is an error.
        let mut bytes = v4.encode();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Response::parse(&bytes, false), Ok(v4));
        assert!(Response::parse(&[0, 0, 0, 1, 0, 0, 0, 3, 0, 0], false).is_err());
        assert!(Response::parse(&[0, 0, 0, 0, 0, 0, 0, 1, 0], false).is_err());
    }
}
