//! The session: what is per process. One listener for every torrent, the limits they share,
//! one peer id, the event bus and the root cancellation. A [`Torrent`] is a handle into it.
//!
//! Incoming connections are admitted by the session (at most `max_half_open` of them waiting
//! for their handshake, `max_pending_per_ip` from one address), which reads the first 48
//! bytes of the handshake (protocol string, reserved bits, info hash) under
//! `handshake_timeout`, finds the torrent by its info hash and hands it the stream with the
//! bytes already read; an unknown info hash is refused (and counted) without a byte of ours
//! sent. From there the torrent applies its own slots (`slots.rs`).
//!
//! Shared by all torrents: registered connections (`max_connections`), outgoing connects in
//! flight (`max_dials`), the hash workers (`hash_workers` permits for piece verification),
//! and resume checks at a time (`checks_at_once`). A torrent is cancelled with a child of the
//! session's token, so shutting the session down stops every torrent.
//!
//! [`Torrent::start`] runs a torrent in a session of its own (`solo`): the session's limits
//! are then derived from the torrent's `Config`, and refusals made before a connection is
//! routed are reported on that torrent's events too, as they were before sessions existed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use share_proto::mse::{self, MseError};
use share_proto::wire::{self, HANDSHAKE_LEN};
use share_proto::{InfoHash, PeerId};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::encryption::{self, Encryption, HandshakeFailure, PeerStream};
use crate::error::{PeerError, Refusal, TorrentError};
use crate::event::{Event, TorrentState};
use crate::limits::Limits;
use crate::torrent::{Params, Shared, Torrent};

/// Bytes of the handshake read before the torrent is known: protocol string, reserved bits
/// and info hash.
pub(crate) const HEAD_LEN: usize = 48;
const _: () = assert!(HEAD_LEN < HANDSHAKE_LEN);

/// A torrent's number in its session, in the order they were added (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TorrentId(pub u64);

impl std::fmt::Display for TorrentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event of the session: of one torrent, or (`torrent: None`) of the session itself, such
/// as a connection refused before it named a torrent.
#[derive(Debug, Clone)]
pub struct SessionEvent {
    /// The torrent it is about.
    pub torrent: Option<TorrentId>,
    /// What happened.
    pub event: Event,
}

/// The per-process tunables. Field docs give the reasons for the defaults.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where to accept peer connections for every torrent; port 0 lets the OS pick.
    pub listen: SocketAddr,
    /// Registered peer connections over all torrents (each torrent has its own `max_peers`
    /// too). 500 is about what a desktop client keeps open; a file descriptor each.
    pub max_connections: usize,
    /// Incoming connections waiting for the first 48 bytes of their handshake, in all. They
    /// cost a socket and a small task each, for at most `handshake_timeout`.
    pub max_half_open: usize,
    /// Of those, from one IP address: one host cannot take them all.
    pub max_pending_per_ip: usize,
    /// Outgoing TCP connects in flight at once, over all torrents.
    pub max_dials: usize,
    /// Time for an incoming connection to name its torrent.
    pub handshake_timeout: Duration,
    /// Threads hashing pieces at once, over all torrents.
    pub hash_workers: usize,
    /// Torrents checking their existing data at once: checks read the disk flat out, and
    /// two at once only make both slower.
    pub checks_at_once: usize,
    /// Bytes of pieces in progress (held in memory until verified) over all torrents; each
    /// torrent also keeps within its own `Config::max_buffered_bytes`. A torrent with
    /// nothing in progress may always start one piece (`picker::MemoryBudget`).
    pub max_buffered_bytes: u64,
    /// Events each torrent holds for a subscriber that falls behind (a slower one misses
    /// the oldest). Each costs about 150 bytes whether used or not, so a session of a
    /// thousand torrents keeps this small.
    pub event_buffer: usize,
    /// Upload and download rates shared by every torrent of the session (`limits.rs`).
    /// Default: unlimited.
    pub limits: Limits,
    /// Where the session records its torrents (`persist.rs`): added torrents are written
    /// there and [`Session::restore`] adds them back; a torrent added again resumes without
    /// hashing its unchanged files. `None` records nothing.
    pub state_dir: Option<std::path::PathBuf>,
    /// MSE/PE on every connection, in and out (`encryption.rs`). Default: prefer.
    pub encryption: crate::Encryption,
    /// One Mainline DHT node for every public torrent (`dht.rs`); `None` (the default):
    /// no DHT. Front-ends turn it on.
    pub dht: Option<crate::DhtConfig>,
    /// Local Service Discovery (BEP 14, `lsd.rs`) for every public torrent. Off by default;
    /// front-ends turn it on.
    pub lsd: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            max_connections: 500,
            max_half_open: 64,
            max_pending_per_ip: 16,
            max_dials: 32,
            handshake_timeout: Duration::from_secs(10),
            hash_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            checks_at_once: 1,
            max_buffered_bytes: 64 * 1024 * 1024,
            event_buffer: 256,
            limits: Limits::default(),
            state_dir: None,
            encryption: crate::Encryption::default(),
            dht: None,
            lsd: false,
        }
    }
}

impl SessionConfig {
    /// The session of one torrent: its listen address and hash workers, and connection
    /// limits that leave the torrent's own (`max_peers`, `newcomer_slots`,
    /// `max_peers_per_ip`) in charge, and its rate limits.
    pub fn for_torrent(config: &Config) -> Self {
        Self {
            listen: config.listen,
            max_connections: config.max_peers + config.newcomer_slots,
            max_half_open: config.max_peers.max(config.newcomer_slots),
            max_pending_per_ip: config.max_peers_per_ip,
            max_dials: config.max_peers.max(1),
            handshake_timeout: config.handshake_timeout,
            hash_workers: config.hash_workers,
            checks_at_once: 1,
            // The torrent's own budget is the one in charge.
            max_buffered_bytes: u64::MAX,
            event_buffer: 4096,
            limits: config.limits.clone(),
            state_dir: None,
            encryption: config.encryption,
            dht: config.dht.clone(),
            lsd: config.lsd,
        }
    }
}

/// Counters of the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Torrents in the session.
    pub torrents: usize,
    /// Incoming connections refused because no torrent of the session has their info hash.
    pub unknown_refused: u64,
    /// Incoming connections handed to a torrent.
    pub routed: u64,
}

/// Where an info hash leads.
enum Slot {
    /// Added, still checking its data: not accepting yet.
    Checking,
    /// Accepting connections.
    Ready(Arc<Shared>),
}

#[derive(Default)]
struct Registry {
    by_hash: HashMap<InfoHash, Slot>,
    all: HashMap<TorrentId, Arc<Shared>>,
}

/// Incoming connections not yet routed.
#[derive(Default)]
struct Pending {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// What the session's tasks and its torrents share.
pub(crate) struct Core {
    pub config: SessionConfig,
    pub peer_id: PeerId,
    pub listen_addr: SocketAddr,
    pub hash_permits: Arc<Semaphore>,
    pub check_permits: Semaphore,
    /// Bytes of pieces in progress over all torrents.
    pub memory: Arc<crate::picker::MemoryBudget>,
    /// The HTTP client of every tracker announce, built on first use (`Core::http`).
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    pub connections: Arc<Semaphore>,
    pub dials: Semaphore,
    pub events: broadcast::Sender<SessionEvent>,
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
    registry: Mutex<Registry>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    unknown_refused: AtomicU64,
    routed: AtomicU64,
    /// A session of one torrent (`Torrent::start`).
    solo: bool,
    /// The session's DHT node, if it runs one.
    pub dht: Option<Arc<crate::dht::SessionDht>>,
    /// The session's LSD socket, if it runs one.
    pub lsd: Option<Arc<crate::lsd::Lsd>>,
    /// `session{listen}`: the parent of the spans of its own tasks.
    span: tracing::Span,
}

impl Core {
    /// The session's HTTP client (a cheap handle), or why it cannot be built. It keeps no
    /// idle connection: announces are minutes apart, and trackers close idle connections
    /// (opentracker after every answer), so a kept one was reset under the next announce
    /// (`hostile_tracker`, once in a full run).
    pub fn http(&self) -> Result<reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// The public torrents that are checked and not paused: what LSD announces.
    pub fn lsd_torrents(&self) -> Vec<InfoHash> {
        let ready: Vec<(InfoHash, Arc<Shared>)> = self
            .registry()
            .by_hash
            .iter()
            .filter_map(|(h, s)| match s {
                Slot::Ready(t) if !t.meta.info.private => Some((*h, t.clone())),
                _ => None,
            })
            .collect();
        ready
            .into_iter()
            .filter(|(_, t)| {
                let st = t.lock();
                st.checked && !st.paused
            })
            .map(|(h, _)| h)
            .collect()
    }

    /// The public torrent of `hash`, for a peer LSD found.
    pub fn lsd_torrent(&self, hash: &InfoHash) -> Option<Arc<Shared>> {
        match self.registry().by_hash.get(hash) {
            Some(Slot::Ready(t)) if !t.meta.info.private => Some(t.clone()),
            _ => None,
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a session event; nobody listening is fine.
    pub fn emit(&self, torrent: Option<TorrentId>, event: Event) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(SessionEvent { torrent, event });
        }
    }

    /// Reserves an info hash for a new torrent and numbers it.
    pub fn reserve(&self, info_hash: InfoHash) -> Result<TorrentId, TorrentError> {
        if self.cancel.is_cancelled() {
            return Err(TorrentError::SessionStopped);
        }
        let mut reg = self.registry();
        if reg.by_hash.contains_key(&info_hash) {
            return Err(TorrentError::AlreadyAdded(info_hash));
        }
        reg.by_hash.insert(info_hash, Slot::Checking);
        Ok(TorrentId(self.next_id.fetch_add(1, Ordering::Relaxed)))
    }

    /// Gives back a reservation whose torrent failed to start.
    pub fn release(&self, info_hash: InfoHash) {
        self.registry().by_hash.remove(&info_hash);
    }

    /// Lists a started torrent (still checking: not accepting yet).
    pub fn insert(&self, shared: &Arc<Shared>) {
        self.registry().all.insert(shared.id, shared.clone());
    }

    /// The torrent accepts connections from now on.
    pub fn ready(&self, shared: &Arc<Shared>) {
        let mut reg = self.registry();
        if reg.all.contains_key(&shared.id) {
            reg.by_hash.insert(shared.info_hash, Slot::Ready(shared.clone()));
        }
    }

    /// Forgets a stopped torrent: its info hash is unknown again.
    pub fn remove(&self, shared: &Shared) {
        let mut reg = self.registry();
        if reg.all.remove(&shared.id).is_some() {
            reg.by_hash.remove(&shared.info_hash);
        }
    }

    /// A connection refused before it named a torrent.
    fn refused(&self, addr: SocketAddr, reason: String) {
        tracing::debug!(%addr, %reason, "connection refused");
        let event = Event::PeerRefused { addr, reason };
        if self.solo {
            let torrents: Vec<_> = self.registry().all.values().cloned().collect();
            for t in torrents {
                t.emit_local(event.clone());
            }
        }
        self.emit(None, event);
    }

    /// Admits an incoming connection to the wait for its handshake, or says why not.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<PendingGuard, Refusal> {
        let mut p = self.pending();
        if p.total >= self.config.max_half_open {
            return Err(Refusal::TooManyPeers);
        }
        let count = p.per_ip.get(&ip).copied().unwrap_or(0);
        let max = self.config.max_pending_per_ip;
        if count >= max {
            return Err(Refusal::TooManyFromIp { ip, count, max });
        }
        p.total += 1;
        *p.per_ip.entry(ip).or_insert(0) += 1;
        Ok(PendingGuard {
            core: self.clone(),
            ip,
        })
    }

    /// Reads the opening of an incoming connection: the first 48 bytes of a plain
    /// handshake, or an MSE handshake and then those 48 bytes under it (`encryption.rs`).
    async fn open(self: &Arc<Self>, mut tcp: TcpStream) -> Result<(PeerStream, [u8; HEAD_LEN]), String> {
        let io = |e: std::io::Error| PeerError::from(e).to_string();
        let not_bt = || PeerError::from(wire::WireError::NotBitTorrent).to_string();
        let mut head = [0u8; HEAD_LEN];
        let mut first = [0u8; 20];
        tcp.read_exact(&mut first).await.map_err(io)?;
        let encryption = self.config.encryption;
        if mse::looks_plain(&first) {
            if encryption == Encryption::Require {
                return Err(
                    "a plaintext handshake, and encryption is required (--encryption require)".into(),
                );
            }
            head[..20].copy_from_slice(&first);
            tcp.read_exact(&mut head[20..]).await.map_err(io)?;
            return Ok((PeerStream::plain(tcp), head));
        }
        if encryption == Encryption::Off {
            return Err(format!(
                "{} (nor one we would decrypt: --encryption is off)",
                not_bt()
            ));
        }
        let core = self.clone();
        let lookup: mse::Lookup = Box::new(move |named| {
            core.registry()
                .by_hash
                .keys()
                .find(|h| &mse::req2(&h.0) == named)
                .map(|h| h.0)
        });
        let (mut stream, hash) = encryption::respond(tcp, &first, encryption, lookup)
            .await
            .map_err(|e| match e {
                HandshakeFailure::Mse(MseError::NoSync(_)) => format!("{} (nor an encrypted one)", not_bt()),
                HandshakeFailure::Mse(MseError::UnknownTorrent) => {
                    PeerError::from(Refusal::AnotherSwarm).to_string()
                }
                e => e.to_string(),
            })?;
        stream.read_exact(&mut head).await.map_err(io)?;
        if &head[..20] != wire::PROTOCOL {
            return Err(not_bt());
        }
        if head[28..48] != hash {
            return Err("the encrypted handshake and the BitTorrent one name different torrents".into());
        }
        Ok((stream, head))
    }

    /// Reads the head of an incoming handshake and hands the connection to its torrent.
    async fn route(self: Arc<Self>, stream: TcpStream, addr: SocketAddr, pending: PendingGuard) {
        let _ = stream.set_nodelay(true);
        let timeout = self.config.handshake_timeout;
        let opened = tokio::select! {
            r = tokio::time::timeout(timeout, self.open(stream)) => r,
            () = self.cancel.cancelled() => return,
        };
        let (stream, head) = match opened {
            Err(_) => {
                let secs = timeout.as_secs_f64();
                return self.refused(addr, format!("handshake not completed within {secs} s"));
            }
            Ok(Err(reason)) => return self.refused(addr, format!("handshake failed: {reason}")),
            Ok(Ok(opened)) => opened,
        };
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&head[28..48]);
        let target = match self.registry().by_hash.get(&InfoHash(hash)) {
            None => Err(Refusal::AnotherSwarm),
            Some(Slot::Checking) => Err(Refusal::Checking),
            Some(Slot::Ready(shared)) => Ok(shared.clone()),
        };
        match target {
            Ok(shared) => {
                drop(pending);
                self.routed.fetch_add(1, Ordering::Relaxed);
                shared.accepted(stream, addr, head);
            }
            Err(refusal) => {
                if refusal == Refusal::AnotherSwarm {
                    self.unknown_refused.fetch_add(1, Ordering::Relaxed);
                }
                self.refused(addr, format!("handshake failed: {}", PeerError::from(refusal)));
            }
        }
    }
}

/// An incoming connection counted as waiting for its handshake until dropped.
struct PendingGuard {
    core: Arc<Core>,
    ip: IpAddr,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut p = self.core.pending();
        p.total -= 1;
        if let Some(n) = p.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                p.per_ip.remove(&self.ip);
            }
        }
    }
}

async fn accept_loop(core: Arc<Core>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = core.cancel.cancelled() => return,
        };
        match accepted {
            Ok((stream, addr)) => match core.admit(addr.ip()) {
                Ok(pending) => {
                    let c = core.clone();
                    let span = tracing::info_span!(parent: &core.span, "route", %addr);
                    core.tasks.spawn(tracing::Instrument::instrument(
                        c.route(stream, addr, pending),
                        span,
                    ));
                }
                Err(refusal) => core.refused(addr, refusal.to_string()),
            },
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = core.cancel.cancelled() => return,
                }
            }
        }
    }
}

/// A running session. Dropping it does not stop it; call [`Session::shutdown`].
#[derive(Clone)]
pub struct Session {
    core: Arc<Core>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("listen", &self.core.listen_addr)
            .finish()
    }
}

impl Session {
    /// Binds the listener and starts accepting.
    pub async fn start(config: SessionConfig) -> Result<Session, TorrentError> {
        Self::start_with(config, false).await
    }

    pub(crate) async fn start_with(config: SessionConfig, solo: bool) -> Result<Session, TorrentError> {
        let listen = config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| TorrentError::Listen { addr: listen, source })?;
        let listen_addr = listener
            .local_addr()
            .map_err(|source| TorrentError::Listen { addr: listen, source })?;
        let dht = match &config.dht {
            None => None,
            Some(c) => match crate::dht::SessionDht::start(c, listen_addr).await {
                Ok(d) => Some(Arc::new(d)),
                Err(e) => {
                    tracing::warn!(error = %e, "no DHT: its node did not start");
                    None
                }
            },
        };
        let lsd = match config.lsd {
            false => None,
            true => {
                let interface = match listen_addr.ip() {
                    IpAddr::V4(ip) => ip,
                    IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
                };
                match crate::lsd::Lsd::bind(interface) {
                    Ok(l) => Some(Arc::new(l)),
                    Err(e) => {
                        tracing::warn!(error = %e, "no local service discovery: its socket did not open");
                        None
                    }
                }
            }
        };
        let core = Arc::new(Core {
            dht,
            lsd,
            peer_id: PeerId::ours(rand::random()),
            listen_addr,
            hash_permits: Arc::new(Semaphore::new(config.hash_workers.max(1))),
            check_permits: Semaphore::new(config.checks_at_once.max(1)),
            memory: crate::picker::MemoryBudget::new(config.max_buffered_bytes),
            http: std::sync::OnceLock::new(),
            connections: Arc::new(Semaphore::new(config.max_connections.min(Semaphore::MAX_PERMITS))),
            dials: Semaphore::new(config.max_dials.clamp(1, Semaphore::MAX_PERMITS)),
            events: broadcast::channel(4096).0,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            registry: Mutex::default(),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            unknown_refused: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            solo,
            config,
            span: tracing::info_span!(parent: None, "session", listen = %listen_addr),
        });
        if let Some(lsd) = core.lsd.clone() {
            let span = tracing::info_span!(parent: &core.span, "lsd");
            core.tasks.spawn(tracing::Instrument::instrument(
                crate::lsd::run(core.clone(), lsd),
                span,
            ));
        }
        let span = tracing::info_span!(parent: &core.span, "accept");
        core.tasks.spawn(tracing::Instrument::instrument(
            accept_loop(core.clone(), listener),
            span,
        ));
        Ok(Session { core })
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Where the session's DHT node listens, if it runs one.
    pub fn dht_addr(&self) -> Option<SocketAddr> {
        self.core.dht.as_ref().map(|d| SocketAddr::V4(d.local_addr()))
    }

    /// Adds a torrent. Its `config.listen` is ignored: the session's listener serves it.
    pub async fn add(&self, params: Params) -> Result<Torrent, TorrentError> {
        Torrent::in_session(self.core.clone(), params, false, false).await
    }

    /// Adds back every torrent recorded in `SessionConfig::state_dir` (none without one),
    /// each with `config` but for its recorded file selection and resume records, paused if
    /// it was: those whose files are unchanged start without hashing them. A record that cannot be read
    /// is an `Err` here (a `TorrentError::BadState` naming the file) and the others still
    /// start.
    pub async fn restore(&self, config: &Config) -> Vec<Result<Torrent, TorrentError>> {
        let Some(dir) = self.core.config.state_dir.clone() else {
            return Vec::new();
        };
        let found = tokio::task::spawn_blocking(move || crate::persist::load_all(&dir))
            .await
            .unwrap_or_default();
        let mut started = Vec::new();
        for found in found {
            let (meta, entry) = match found {
                Ok(it) => it,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a recorded torrent");
                    started.push(Err(e));
                    continue;
                }
            };
            let params = Params {
                meta,
                mode: entry.mode().unwrap_or(crate::torrent::Mode::Fetch),
                paths: entry.paths,
                root: entry.root,
                trackers: entry.trackers,
                peers: entry.peers,
                config: Config {
                    select: entry.select,
                    state_dir: entry.records,
                    ..config.clone()
                },
            };
            started.push(Torrent::in_session(self.core.clone(), params, false, entry.paused).await);
        }
        started
    }

    /// Where peers connect to every torrent of the session.
    pub fn listen_addr(&self) -> SocketAddr {
        self.core.listen_addr
    }

    /// Our peer id, the same in every swarm of the session.
    pub fn peer_id(&self) -> PeerId {
        self.core.peer_id
    }

    /// Every event of every torrent (and of the session), from the moment of subscribing.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.core.events.subscribe()
    }

    /// The torrents, by id.
    pub fn torrents(&self) -> Vec<(TorrentId, InfoHash)> {
        let mut list: Vec<_> = self
            .core
            .registry()
            .all
            .values()
            .map(|s| (s.id, s.info_hash))
            .collect();
        list.sort();
        list
    }

    fn find(&self, id: TorrentId) -> Result<Arc<Shared>, TorrentError> {
        self.core
            .registry()
            .all
            .get(&id)
            .cloned()
            .ok_or(TorrentError::NoSuchTorrent(id.0))
    }

    /// Where torrent `id` is in its life.
    pub fn state(&self, id: TorrentId) -> Result<TorrentState, TorrentError> {
        Ok(self.find(id)?.state())
    }

    /// Pauses torrent `id` (see [`TorrentState::Paused`]); `Ok(false)` if it was already.
    pub fn pause(&self, id: TorrentId) -> Result<bool, TorrentError> {
        Ok(self.find(id)?.pause())
    }

    /// Resumes torrent `id`; `Ok(false)` if it was not paused.
    pub fn resume(&self, id: TorrentId) -> Result<bool, TorrentError> {
        Ok(self.find(id)?.resume())
    }

    /// Stops torrent `id` and forgets it (its info hash may be added again); with
    /// `delete_data`, also deletes its files, the directories that leaves empty, and its
    /// resume record. Returns the number of files deleted.
    pub async fn remove(&self, id: TorrentId, delete_data: bool) -> Result<usize, TorrentError> {
        let shared = self.find(id)?;
        shared.forget();
        shared.stop().await;
        if !delete_data {
            return Ok(0);
        }
        let s = shared.clone();
        tokio::task::spawn_blocking(move || s.delete_data())
            .await
            .map_err(|e| TorrentError::Internal(e.to_string()))?
    }

    /// Current counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            torrents: self.core.registry().all.len(),
            unknown_refused: self.core.unknown_refused.load(Ordering::Relaxed),
            routed: self.core.routed.load(Ordering::Relaxed),
        }
    }

    /// Stops every torrent and the listener, and waits for their tasks (at most 5 s).
    pub async fn shutdown(self) {
        shutdown_core(&self.core).await;
    }
}

pub(crate) async fn shutdown_core(core: &Arc<Core>) {
    core.cancel.cancel();
    let torrents: Vec<_> = core.registry().all.drain().map(|(_, s)| s).collect();
    core.registry().by_hash.clear();
    core.tasks.close();
    let wait = async {
        for t in &torrents {
            t.tasks.close();
            t.tasks.wait().await;
        }
        core.tasks.wait().await;
    };
    let finished = tokio::time::timeout(Duration::from_secs(5), wait).await.is_ok();
    // What each torrent has now is what a restart resumes from.
    for t in torrents {
        let _ = tokio::task::spawn_blocking(move || t.save(finished)).await;
    }
    if let Some(dht) = &core.dht {
        let _ = tokio::time::timeout(Duration::from_secs(2), dht.save()).await;
    }
}
