//! Local Service Discovery (BEP 14): one multicast socket per session. Every public, active
//! torrent is announced on the LAN (`BT-SEARCH` to 239.192.152.143:6771) when it goes active
//! and every five minutes after, at most one message a second (up to 20 info hashes each);
//! announces heard for our torrents put their sender in the dial queue. Our own messages
//! (which multicast loops back) are known by their cookie. Private torrents are never
//! announced, and announces for them are ignored.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use share_proto::lsd::{Announce, GROUP_V4, MAX_HASHES, MAX_MESSAGE, PORT};
use share_proto::InfoHash;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::session::Core;

/// How often every torrent is announced again, and the least time between two messages.
const REANNOUNCE: Duration = Duration::from_secs(5 * 60);
const MESSAGE_GAP: Duration = Duration::from_secs(1);
/// Messages taken from one address per minute, and from all of them; more are dropped.
const PER_SOURCE_PER_MINUTE: u32 = 30;
const ALL_PER_MINUTE: u32 = 600;
/// Addresses whose counts are kept in a minute; messages from more are dropped.
const MAX_SOURCES: usize = 1024;

/// The session's LSD socket.
pub(crate) struct Lsd {
    socket: UdpSocket,
    cookie: String,
    /// Woken when a torrent goes active: it is announced with the next message.
    pub wake: Notify,
    sources: Mutex<Sources>,
}

/// Messages read per source address in the current minute.
#[derive(Debug)]
struct Sources {
    since: Instant,
    counts: HashMap<IpAddr, u32>,
    all: u32,
}

impl Sources {
    fn new(now: Instant) -> Self {
        Self {
            since: now,
            counts: HashMap::new(),
            all: 0,
        }
    }

    /// Whether a message from `ip` may be read at `now`: [`PER_SOURCE_PER_MINUTE`] from each
    /// address and [`ALL_PER_MINUTE`] in all, from at most [`MAX_SOURCES`] addresses a
    /// minute (forged sources cannot reset anyone's count).
    fn admit(&mut self, ip: IpAddr, now: Instant) -> bool {
        if now.duration_since(self.since) >= Duration::from_secs(60) {
            *self = Self::new(now);
        }
        if self.all >= ALL_PER_MINUTE || (self.counts.len() >= MAX_SOURCES && !self.counts.contains_key(&ip))
        {
            return false;
        }
        let n = self.counts.entry(ip).or_insert(0);
        if *n >= PER_SOURCE_PER_MINUTE {
            return false;
        }
        *n += 1;
        self.all += 1;
        true
    }
}

/// Whether an LSD announce from `ip` can come from the LAN. The socket also takes unicast
/// datagrams from anywhere; a public source is someone forging announces from outside.
fn on_the_lan(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unique_local(),
    }
}

impl std::fmt::Debug for Lsd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lsd").finish_non_exhaustive()
    }
}

impl Lsd {
    /// Binds 0.0.0.0:6771 (shared with other clients on the host) and joins the group on
    /// `interface` (0.0.0.0: the one the system routes multicast through).
    pub fn bind(interface: Ipv4Addr) -> std::io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)).into())?;
        s.join_multicast_v4(&GROUP_V4, &interface)?;
        s.set_multicast_loop_v4(true)?;
        s.set_multicast_ttl_v4(1)?;
        if !interface.is_unspecified() {
            s.set_multicast_if_v4(&interface)?;
        }
        s.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(s.into())?;
        Ok(Self {
            socket,
            cookie: format!("{:016x}", rand::random::<u64>()),
            wake: Notify::new(),
            sources: Mutex::new(Sources::new(Instant::now())),
        })
    }

    /// Whether a message from `ip` may be read now (per-source budget, per minute).
    fn admit(&self, ip: IpAddr) -> bool {
        let mut s = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        s.admit(ip, Instant::now())
    }
}

/// The session's LSD task: announces and listens until the session ends.
pub(crate) async fn run(core: Arc<Core>, lsd: Arc<Lsd>) {
    let port = core.listen_addr.port();
    let group = SocketAddr::V4(SocketAddrV4::new(GROUP_V4, PORT));
    // Info hashes announced, and when: each goes again after REANNOUNCE.
    let mut announced: HashMap<InfoHash, Instant> = HashMap::new();
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut next_send = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = core.cancel.cancelled() => return,
            r = lsd.socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    heard(&core, &lsd, &buf[..n], from);
                }
            }
            () = tokio::time::sleep_until(next_send) => {
                let due = due(&core, &mut announced);
                if due.is_empty() {
                    // Nothing to say: wait for a torrent to go active, or the next round.
                    next_send = tokio::time::Instant::now() + Duration::from_secs(30);
                    continue;
                }
                let msg = Announce { port, info_hashes: due, cookie: Some(lsd.cookie.clone()) };
                if let Err(e) = lsd.socket.send_to(&msg.encode(), group).await {
                    tracing::debug!(error = %e, "LSD announce not sent");
                }
                next_send = tokio::time::Instant::now() + MESSAGE_GAP;
            }
            () = lsd.wake.notified() => {
                next_send = next_send.min(tokio::time::Instant::now() + MESSAGE_GAP);
            }
        }
    }
}

/// Up to [`MAX_HASHES`] public, active torrents not announced within [`REANNOUNCE`].
fn due(core: &Core, announced: &mut HashMap<InfoHash, Instant>) -> Vec<[u8; 20]> {
    let live = core.lsd_torrents();
    let set: std::collections::HashSet<InfoHash> = live.iter().copied().collect();
    announced.retain(|h, _| set.contains(h));
    let mut due = Vec::new();
    for h in live {
        if due.len() == MAX_HASHES {
            break;
        }
        if announced.get(&h).is_none_or(|at| at.elapsed() >= REANNOUNCE) {
            announced.insert(h, Instant::now());
            due.push(h.0);
        }
    }
    due
}

/// An announce heard from `from`: its sender joins the dial queue of each torrent of ours it
/// names.
fn heard(core: &Core, lsd: &Lsd, bytes: &[u8], from: SocketAddr) {
    if !on_the_lan(from.ip()) {
        return;
    }
    // Parsing is bounded (one datagram of at most MAX_MESSAGE bytes); our own messages,
    // looped back, do not count against our address.
    let Some(a) = Announce::parse(bytes) else {
        return;
    };
    if a.cookie.as_deref() == Some(lsd.cookie.as_str()) || !lsd.admit(from.ip()) {
        return;
    }
    let peer = SocketAddr::new(from.ip(), a.port);
    for h in a.info_hashes {
        if let Some(t) = core.lsd_torrent(&InfoHash(h)) {
            tracing::debug!(%peer, "LSD peer");
            t.add_peers([peer]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_is_read_30_times_a_minute_and_forged_floods_stay_bounded() {
        let t0 = Instant::now();
        let mut s = Sources::new(t0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..PER_SOURCE_PER_MINUTE {
            assert!(s.admit(a, t0));
        }
        assert!(!s.admit(a, t0), "the 31st message of the minute is dropped");
        assert!(s.admit(b, t0), "another source has its own budget");
        let t1 = t0 + Duration::from_secs(61);
        assert!(s.admit(a, t1), "a new minute, a new budget");
        for _ in 1..PER_SOURCE_PER_MINUTE {
            assert!(s.admit(a, t1));
        }
        // Forged sources neither grow the table past MAX_SOURCES nor reset a's count, and
        // all of them together get at most ALL_PER_MINUTE messages read.
        let mut read = 0;
        for i in 0..(3 * MAX_SOURCES as u32) {
            read += u32::from(s.admit(IpAddr::from(i.to_be_bytes()), t1));
            assert!(s.counts.len() <= MAX_SOURCES);
        }
        assert!(read + PER_SOURCE_PER_MINUTE <= ALL_PER_MINUTE, "{read}");
        assert!(!s.admit(a, t1), "the flood did not give a a new budget");
    }

    #[test]
    fn only_lan_sources_are_heard() {
        for lan in [
            "10.1.2.3",
            "192.168.0.9",
            "172.16.5.5",
            "169.254.1.1",
            "127.0.0.1",
            "fe80::1",
            "fd00::7",
        ] {
            assert!(on_the_lan(lan.parse().unwrap()), "{lan}");
        }
        for far in ["8.8.8.8", "100.64.0.1", "2001:db8::1"] {
            assert!(!on_the_lan(far.parse().unwrap()), "{far}");
        }
    }
}
