//! The Mainline DHT (BEP 5): one node per session, on the UDP port of the same number as the
//! peer listener (or any free one if that is taken), run by the `mainline` crate on its own
//! thread. Every public torrent looks its swarm up (`get_peers`) and announces itself
//! (`announce_peer`, with our peer port) when it goes active, again after two minutes while
//! it wants data and has few peers, else every fifteen minutes;
//! the peers found join its dial queue like a tracker's. Private torrents (BEP 27) never
//! touch it. The routing table is kept in the state directory (`dht-nodes`) and bootstraps
//! the next start along with the routers.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mainline::async_dht::AsyncDht;
use mainline::Id;
use tokio_util::sync::CancellationToken;

use crate::torrent::Shared;

/// Nodes kept in it, and read back (a file we read is bounded too).
const MAX_SAVED_NODES: usize = 200;
const MAX_NODES_FILE: u64 = 16 * 1024;
/// Peers taken from one lookup: a full tracker answer.
const MAX_PEERS: usize = crate::candidates::MAX_CANDIDATES;
/// How long one lookup may run, and the pause between a torrent's lookups: sooner while
/// it has too few peers.
const LOOKUP_TIME: Duration = Duration::from_secs(30);
const RELOOKUP: Duration = Duration::from_secs(15 * 60);
const RELOOKUP_HUNGRY: Duration = Duration::from_secs(2 * 60);
/// Fewer connected peers than this, while data is wanted, is hungry.
const HUNGRY_BELOW: usize = 10;

/// The DHT settings of a session.
#[derive(Debug, Clone, Default)]
pub struct DhtConfig {
    /// Nodes to bootstrap from (`HOST:PORT`); empty: the public routers `mainline` knows.
    pub bootstrap: Vec<String>,
    /// Where the routing table is kept between runs (front-ends: `STATE_DIR/dht-nodes`).
    pub nodes_file: Option<PathBuf>,
}

/// The session's DHT node.
pub(crate) struct SessionDht {
    dht: AsyncDht,
    local: SocketAddrV4,
    nodes_file: Option<PathBuf>,
}

impl std::fmt::Debug for SessionDht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDht")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Addresses saved in the state directory's routing table file, at most
/// [`MAX_SAVED_NODES`]; none if it is missing, too big or unreadable.
fn saved_nodes(file: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(file) else {
        return Vec::new();
    };
    if meta.len() > MAX_NODES_FILE {
        tracing::warn!(file = %file.display(), "DHT node file too big, ignored");
        return Vec::new();
    }
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.parse::<SocketAddrV4>().is_ok())
        .take(MAX_SAVED_NODES)
        .map(str::to_string)
        .collect()
}

impl SessionDht {
    /// Starts the node on `listen`'s IPv4 address and port number (any free port if that
    /// UDP port is taken).
    pub async fn start(config: &DhtConfig, listen: SocketAddr) -> std::io::Result<Self> {
        let ip = match listen {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let nodes_file = config.nodes_file.clone();
        let saved = nodes_file.as_deref().map(saved_nodes).unwrap_or_default();
        let bootstrap = config.bootstrap.clone();
        // `mainline` resolves bootstrap names as it builds: off the async workers. Its
        // default, adaptive mode, answers other nodes only once it is found reachable.
        let build = move |port: u16| {
            let mut b = mainline::Dht::builder();
            b.bind_address(ip).port(port);
            if !bootstrap.is_empty() {
                b.bootstrap(&bootstrap);
            }
            if !saved.is_empty() {
                b.extra_bootstrap(&saved);
            }
            b.build()
        };
        let port = listen.port();
        let dht = tokio::task::spawn_blocking(move || build(port).or_else(|_| build(0)))
            .await
            .map_err(std::io::Error::other)??;
        let dht = dht.as_async();
        let local = dht.info().await.local_addr();
        tracing::info!(%local, "DHT node started");
        Ok(Self {
            dht,
            local,
            nodes_file,
        })
    }

    /// Where the node listens.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Peers of `info_hash`, from a lookup of at most [`LOOKUP_TIME`].
    pub async fn get_peers(&self, info_hash: [u8; 20]) -> Vec<SocketAddr> {
        let id = Id::from_bytes(info_hash).expect("20 bytes");
        let mut stream = self.dht.get_peers(id);
        let mut found = Vec::new();
        let lookup = async {
            while let Some(batch) = stream.next().await {
                for p in batch {
                    let p = SocketAddr::V4(p);
                    if found.len() < MAX_PEERS && !found.contains(&p) {
                        found.push(p);
                    }
                }
            }
        };
        let _ = tokio::time::timeout(LOOKUP_TIME, lookup).await;
        found
    }

    /// Announces us at `port` for `info_hash`; `Err` says why not (no node answered).
    pub async fn announce(&self, info_hash: [u8; 20], port: u16) -> Result<(), String> {
        let id = Id::from_bytes(info_hash).expect("20 bytes");
        match tokio::time::timeout(LOOKUP_TIME, self.dht.announce_peer(id, Some(port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", LOOKUP_TIME.as_secs())),
        }
    }

    /// Writes the routing table to the state directory, for the next start.
    pub async fn save(&self) {
        let Some(file) = self.nodes_file.clone() else {
            return;
        };
        let nodes = self.dht.to_bootstrap().await;
        let text: String = nodes
            .iter()
            .take(MAX_SAVED_NODES)
            .map(|n| format!("{n}\n"))
            .collect();
        let _ = tokio::task::spawn_blocking(move || crate::persist::write_atomically(&file, text.as_bytes()))
            .await;
    }
}

impl Shared {
    /// Our handshake for this torrent: with the DHT bit when the session runs a node and
    /// the torrent is public.
    pub(crate) fn our_handshake(&self) -> share_proto::wire::Handshake {
        let hs = share_proto::wire::Handshake::ours(self.info_hash, self.peer_id);
        if self.dht_port().is_some() {
            hs.with_dht()
        } else {
            hs
        }
    }

    /// The port of the session's DHT node, if this torrent uses it (public torrents do).
    pub(crate) fn dht_port(&self) -> Option<u16> {
        let dht = self.session.dht.as_ref()?;
        (!self.meta.info.private).then(|| dht.local_addr().port())
    }
}

/// Looks up the peers of `info_hash` with a DHT node of its own on `listen`'s port (a
/// magnet link's fetch, before its torrent and session exist); the routing table is saved.
pub async fn lookup(
    config: &DhtConfig,
    listen: SocketAddr,
    info_hash: [u8; 20],
) -> std::io::Result<Vec<SocketAddr>> {
    let dht = SessionDht::start(config, listen).await?;
    let peers = dht.get_peers(info_hash).await;
    dht.save().await;
    Ok(peers)
}

/// A torrent's DHT task while it is active: announce, look up, wait, again.
pub(crate) async fn run(shared: Arc<Shared>, dht: Arc<SessionDht>, active: CancellationToken) {
    let port = shared.listen_addr.port();
    loop {
        let announced = tokio::select! {
            a = dht.announce(shared.info_hash.0, port) => a,
            () = active.cancelled() => return,
        };
        if let Err(e) = &announced {
            tracing::debug!(error = %e, "DHT announce failed");
        }
        let peers = tokio::select! {
            p = dht.get_peers(shared.info_hash.0) => p,
            () = active.cancelled() => return,
        };
        tracing::debug!(found = peers.len(), "DHT lookup");
        let found = peers.len();
        shared.add_peers(peers);
        shared.emit(crate::Event::Dht {
            announced: announced.is_ok(),
            peers: found,
        });
        let hungry = {
            let st = shared.lock();
            !st.picker.is_complete() && st.peers.len() < HUNGRY_BELOW
        };
        let wait = if hungry { RELOOKUP_HUNGRY } else { RELOOKUP };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = active.cancelled() => return,
        }
    }
}
