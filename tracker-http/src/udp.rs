//! The UDP tracker (BEP 15) on the same swarm state as HTTP, usually on the same port
//! number. One task reads datagrams and answers each at once; the answer is decided by
//! [`Udp::handle`], plain code on a given clock, tested without a socket.
//!
//! - **Stateless connection ids**: an id is an HMAC-SHA1 (RustCrypto's `hmac`) of the
//!   client's address and port and the current two-minute epoch, under a key drawn at
//!   start. It is accepted during its epoch and the next (two to four minutes; BEP 15 asks
//!   clients to use one for a minute), so the tracker stores nothing per connect, and a
//!   forged source address cannot announce (it never sees the id).
//! - **No amplification**: nothing is answered to a datagram that does not parse, and an
//!   answer to an unauthenticated request (a connect, or a bad connection id) is never
//!   longer than the request.
//! - **Limits**: each source address has a token bucket (`udp_burst` requests, refilled at
//!   `udp_rate` a second); past it, datagrams are dropped unanswered. At most
//!   [`MAX_SOURCES`] addresses are remembered; when full, those idle longest go first. A
//!   scrape answers at most `max_scrape_hashes` swarms.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use share_proto::announce::udp::{Request, Response, MAX_REQUEST};
use tokio::net::UdpSocket;

use crate::state::State;

/// Source addresses whose request budget is remembered.
pub const MAX_SOURCES: usize = 65_536;

/// How long a connection id's epoch lasts.
const EPOCH: Duration = Duration::from_secs(120);

type HmacSha1 = Hmac<sha1_asm::Sha1>;

/// A source address's request budget.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The UDP side of a tracker: its connection-id key and the budgets of its sources.
#[derive(Debug)]
pub struct Udp {
    state: Arc<State>,
    key: [u8; 32],
    started: Instant,
    sources: HashMap<IpAddr, Bucket>,
}

/// The address a client is known by: an IPv4 client reached through a dual-stack socket is
/// IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

impl Udp {
    /// The UDP side of `state`, with a fresh random key.
    pub fn new(state: Arc<State>, now: Instant) -> Self {
        Self {
            state,
            key: rand::random(),
            started: now,
            sources: HashMap::new(),
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / EPOCH.as_secs()
    }

    fn connection_id(&self, addr: SocketAddr, epoch: u64) -> u64 {
        let mut mac = HmacSha1::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&epoch.to_be_bytes());
        match addr.ip() {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        mac.update(&addr.port().to_be_bytes());
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; 8];
        id.copy_from_slice(&tag[..8]);
        u64::from_be_bytes(id)
    }

    /// Whether `id` is one we gave `addr` in this epoch or the last.
    fn valid(&self, id: u64, addr: SocketAddr, now: Instant) -> bool {
        let epoch = self.epoch(now);
        id == self.connection_id(addr, epoch) || (epoch > 0 && id == self.connection_id(addr, epoch - 1))
    }

    /// Takes one request from `ip`'s budget; false when it is spent.
    fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        let config = self.state.config();
        let (rate, burst) = (f64::from(config.udp_rate), f64::from(config.udp_burst.max(1)));
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            // Forget the sources idle longest: those whose buckets have refilled.
            self.sources
                .retain(|_, b| b.tokens + rate * now.saturating_duration_since(b.at).as_secs_f64() < burst);
            if self.sources.len() >= MAX_SOURCES {
                self.sources.clear();
            }
        }
        let b = self.sources.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + rate * now.saturating_duration_since(b.at).as_secs_f64()).min(burst);
        b.at = now;
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }

    /// The answer to datagram `data` from `from` at `now`, if any.
    pub fn handle(&mut self, data: &[u8], from: SocketAddr, now: Instant) -> Option<Vec<u8>> {
        let from = canonical(from);
        if !self.admit(from.ip(), now) {
            tracing::trace!(%from, "udp request over its address's budget");
            return None;
        }
        let request = match Request::parse(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::trace!(%from, error = %e, "udp datagram dropped");
                return None;
            }
        };
        let transaction = request.transaction();
        let expired = || Response::Error {
            transaction,
            message: "connection id expired".into(),
        };
        let response = match request {
            Request::Connect { transaction } => Response::Connect {
                transaction,
                connection: self.connection_id(from, self.epoch(now)),
            },
            Request::Announce { connection, .. } | Request::Scrape { connection, .. }
                if !self.valid(connection, from, now) =>
            {
                expired()
            }
            Request::Announce {
                transaction, request, ..
            } => match self.state.announce(from.ip(), &request) {
                Ok(announced) => {
                    let v6 = from.is_ipv6();
                    let peers = announced
                        .peers
                        .iter()
                        .filter_map(|p| {
                            let ip = match p.ip.to_ipv4_mapped() {
                                Some(v4) if !v6 => IpAddr::V4(v4),
                                None if v6 => IpAddr::V6(p.ip),
                                _ => return None,
                            };
                            Some(SocketAddr::new(ip, p.port))
                        })
                        .collect();
                    Response::Announce {
                        transaction,
                        interval: self.state.config().interval,
                        leechers: announced.incomplete,
                        seeders: announced.complete,
                        peers,
                    }
                }
                Err(refusal) => Response::Error {
                    transaction,
                    message: refusal.to_string(),
                },
            },
            Request::Scrape {
                transaction,
                mut hashes,
                ..
            } => {
                hashes.truncate(self.state.config().max_scrape_hashes);
                Response::Scrape {
                    transaction,
                    stats: self.state.scrape(&hashes).into_iter().map(|(_, s)| s).collect(),
                }
            }
        };
        let bytes = response.encode();
        // An unauthenticated answer never outgrows its request.
        let authenticated = !matches!(response, Response::Connect { .. } | Response::Error { .. });
        (authenticated || bytes.len() <= data.len().max(16)).then_some(bytes)
    }
}

/// Serves BEP 15 on `socket` until `shutdown` completes.
pub async fn serve(state: Arc<State>, socket: UdpSocket, shutdown: impl Future<Output = ()>) {
    let mut udp = Udp::new(state, Instant::now());
    let mut buf = vec![0u8; MAX_REQUEST + 1];
    tokio::pin!(shutdown);
    if let Ok(local) = socket.local_addr() {
        tracing::info!(%local, "udp tracker serving");
    }
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // An ICMP error from an earlier send, or a transient failure: go on.
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        if let Some(reply) = udp.handle(&buf[..n], from, Instant::now()) {
            if let Err(e) = socket.send_to(&reply, from).await {
                tracing::debug!(%from, error = %e, "udp send failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use share_proto::announce::udp::UdpError;
    use share_proto::announce::{AnnounceRequest, Event};
    use share_proto::{InfoHash, PeerId};

    fn udp(config: Config) -> (Udp, Instant) {
        let now = Instant::now();
        (Udp::new(Arc::new(State::new(config)), now), now)
    }

    fn parse(bytes: Option<Vec<u8>>, v6: bool) -> Response {
        Response::parse(&bytes.expect("an answer"), v6).unwrap()
    }

    fn connect(u: &mut Udp, from: SocketAddr, now: Instant) -> u64 {
        let r = u.handle(&Request::Connect { transaction: 7 }.encode(), from, now);
        match parse(r, false) {
            Response::Connect {
                transaction: 7,
                connection,
            } => connection,
            other => panic!("{other:?}"),
        }
    }

    fn announce(connection: u64, peer: u8, port: u16, left: u64) -> Vec<u8> {
        Request::Announce {
            connection,
            transaction: 9,
            request: AnnounceRequest {
                event: Event::Started,
                ..AnnounceRequest::new(InfoHash([1; 20]), PeerId([peer; 20]), port, left)
            },
        }
        .encode()
    }

    #[test]
    fn connect_announce_scrape_share_the_swarm_state() {
        let (mut u, now) = udp(Config::default());
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let ca = connect(&mut u, a, now);
        let cb = connect(&mut u, b, now);
        assert_ne!(ca, cb, "ids are per address");
        match parse(u.handle(&announce(ca, 1, 6881, 0), a, now), false) {
            Response::Announce {
                seeders,
                leechers,
                peers,
                interval,
                ..
            } => {
                assert_eq!((seeders, leechers, interval), (1, 0, 1800));
                assert!(peers.is_empty(), "never itself");
            }
            other => panic!("{other:?}"),
        }
        match parse(u.handle(&announce(cb, 2, 7000, 5), b, now), false) {
            Response::Announce {
                seeders,
                leechers,
                peers,
                ..
            } => {
                assert_eq!((seeders, leechers), (1, 1));
                assert_eq!(peers, vec!["10.0.0.1:6881".parse::<SocketAddr>().unwrap()]);
            }
            other => panic!("{other:?}"),
        }
        let scrape = Request::Scrape {
            connection: ca,
            transaction: 3,
            hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        };
        match parse(u.handle(&scrape.encode(), a, now), false) {
            Response::Scrape {
                transaction: 3,
                stats,
            } => {
                assert_eq!(stats.len(), 2);
                assert_eq!((stats[0].complete, stats[0].incomplete), (1, 1));
                assert_eq!(stats[1].complete + stats[1].incomplete, 0);
            }
            other => panic!("{other:?}"),
        }
        // The HTTP side sees the same swarm.
        assert_eq!(u.state.scrape(&[InfoHash([1; 20])])[0].1.complete, 1);
    }

    #[test]
    fn connection_ids_are_bound_to_the_address_and_expire() {
        let (mut u, now) = udp(Config::default());
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let id = connect(&mut u, a, now);
        let expired = |r: Option<Vec<u8>>| matches!(parse(r, false), Response::Error { message, .. } if message.contains("expired"));
        // Another port, another address, or a made-up id: refused.
        assert!(expired(u.handle(
            &announce(id, 1, 6881, 0),
            "10.0.0.1:5001".parse().unwrap(),
            now
        )));
        assert!(expired(u.handle(
            &announce(id, 1, 6881, 0),
            "10.0.0.9:5000".parse().unwrap(),
            now
        )));
        assert!(expired(u.handle(&announce(id ^ 1, 1, 6881, 0), a, now)));
        // Good for the rest of its epoch and the next, not after.
        let later = |s: u64| now + Duration::from_secs(s);
        assert!(matches!(
            parse(u.handle(&announce(id, 1, 6881, 0), a, later(239)), false),
            Response::Announce { .. }
        ));
        assert!(expired(u.handle(&announce(id, 1, 6881, 0), a, later(240))));
        // An IPv4 client through a dual-stack socket is the same client.
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
        assert!(matches!(
            parse(u.handle(&announce(id, 1, 6881, 0), mapped, now), false),
            Response::Announce { .. }
        ));
    }

    #[test]
    fn junk_gets_no_answer_and_unauthenticated_answers_are_no_longer_than_the_request() {
        let (mut u, now) = udp(Config::default());
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        assert_eq!(
            Request::parse(&[1, 2, 3]),
            Err(UdpError::Short {
                what: "request",
                len: 3
            })
        );
        for junk in [&[1u8, 2, 3][..], &[0; 16], &[0xff; 40], &[0; 2000]] {
            assert_eq!(u.handle(junk, a, now), None, "{junk:?}");
        }
        let connect = Request::Connect { transaction: 1 }.encode();
        assert_eq!(u.handle(&connect, a, now).unwrap().len(), connect.len());
        // A scrape with a bad id: the error is cut to the request's length.
        let scrape = Request::Scrape {
            connection: 5,
            transaction: 1,
            hashes: vec![InfoHash([1; 20])],
        }
        .encode();
        let answer = u.handle(&scrape, a, now).unwrap();
        assert!(
            answer.len() <= scrape.len(),
            "{} > {}",
            answer.len(),
            scrape.len()
        );
    }

    #[test]
    fn a_flooding_address_is_cut_at_its_budget_and_others_are_still_served() {
        let (mut u, now) = udp(Config {
            udp_rate: 10,
            udp_burst: 50,
            ..Config::default()
        });
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let connect = Request::Connect { transaction: 1 }.encode();
        let answered = (0..1000).filter(|_| u.handle(&connect, a, now).is_some()).count();
        assert_eq!(answered, 50, "the burst, then nothing");
        // A second later, ten more.
        let later = now + Duration::from_secs(1);
        let answered = (0..1000)
            .filter(|_| u.handle(&connect, a, later).is_some())
            .count();
        assert_eq!(answered, 10);
        assert!(u
            .handle(&connect, "10.0.0.2:5000".parse().unwrap(), later)
            .is_some());
        // The table of sources stays bounded.
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            u.handle(&connect, SocketAddr::new(ip, 1), later);
        }
        assert!(u.sources.len() <= MAX_SOURCES);
    }
}
