//! Every tunable of a torrent, with its default in one `impl Default`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::limits::Limits;

/// How a torrent behaves. Field docs give the reasons for the defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to accept peer connections; port 0 lets the OS pick (tests do).
    pub listen: SocketAddr,
    /// Registered peer connections at once, in and out. When all are taken a newcomer
    /// displaces the least useful one (see `slots.rs`), or is refused if every one is busy.
    pub max_peers: usize,
    /// Handshakes that may run even when every slot is taken, so that a newcomer gets far
    /// enough to displace an idle peer instead of being refused at `accept`.
    pub newcomer_slots: usize,
    /// Connections (registered or in their handshake) from one IP address. 8 lets a few
    /// users behind one NAT share a swarm while one host cannot take every slot; loopback is
    /// not exempt, so tests running a whole swarm on 127.0.0.1 raise it.
    pub max_peers_per_ip: usize,
    /// A peer that wants data (from us, or we from it) but moved none for this long may be
    /// displaced by a newcomer; links with no interest either way may go at any time.
    pub interest_grace: Duration,
    /// Requests kept outstanding per peer. 64 blocks (1 MiB) covers bandwidth times delay on
    /// a LAN; capped by the peer's advertised `reqq`.
    pub pipeline: usize,
    /// Outstanding requests we accept from one peer (advertised as `reqq`); one more closes
    /// the connection. aria2c keeps more than 250 outstanding on a fast link, so this is
    /// libtorrent-sized: a queued request costs 16 bytes (block data is read from disk only
    /// while the writer's backlog is small), so 2,000 of them is 32 KiB per peer.
    pub reqq: usize,
    /// Peers unchoked by the rechoke (one of them is the optimistic unchoke).
    pub upload_slots: usize,
    /// How often the choker ranks peers (BEP 3 practice: 10 s).
    pub rechoke_interval: Duration,
    /// How often the optimistic unchoke moves on (30 s).
    pub optimistic_interval: Duration,
    /// Send a keep-alive after this long without sending anything.
    pub keepalive_interval: Duration,
    /// Close a connection after this long without receiving anything (2 minutes is BEP 3's).
    pub idle_timeout: Duration,
    /// Requests unanswered this long are given to other peers; twice in a row closes.
    pub request_timeout: Duration,
    /// Longest a write to a peer may make no progress. A peer whose receive window stays
    /// shut this long is not reading; its connection closes, so it cannot pin a socket, a
    /// task and the blocks queued for it (the same patience as `request_timeout`: a live
    /// peer on the slowest link still takes some bytes every few seconds).
    pub write_timeout: Duration,
    /// Time to open a TCP connection to a peer.
    pub connect_timeout: Duration,
    /// Time for a peer to complete its handshake.
    pub handshake_timeout: Duration,
    /// Piece data held in memory while pieces are assembled and verified (at least two
    /// pieces); bounds the engine's memory whatever the file size.
    pub max_buffered_bytes: u64,
    /// Threads hashing pieces at once.
    pub hash_workers: usize,
    /// Verified pieces are written around the page cache (`O_DIRECT`) where aligned and
    /// supported; see `storage.rs`.
    pub direct_writes: bool,
    /// Peer exchange (BEP 11, `ut_pex`): tell peers whom else we are connected to and dial
    /// whom they tell us of. Private torrents never do, whatever this says.
    pub pex: bool,
    /// MSE/PE encryption of a torrent started on its own (`Torrent::start`); in a
    /// [`crate::Session`], `SessionConfig::encryption` applies to all its connections.
    pub encryption: crate::Encryption,
    /// The Mainline DHT of a torrent started on its own (`Torrent::start`); `None`: no DHT.
    /// In a [`crate::Session`], `SessionConfig::dht` applies.
    pub dht: Option<crate::DhtConfig>,
    /// Local Service Discovery (BEP 14) of a torrent started on its own; in a
    /// [`crate::Session`], `SessionConfig::lsd` applies.
    pub lsd: bool,
    /// Strikes before a peer is banned: a failed piece it shared with others, or a
    /// connection closed for breaking the protocol (a peer that alone sent a failing piece
    /// is banned at once). See `conduct.rs`.
    pub ban_strikes: u32,
    /// Peers to ask the tracker for.
    pub numwant: u32,
    /// First wait after a failed announce; doubles up to `announce_backoff_max`.
    pub announce_backoff_min: Duration,
    /// Longest wait between failed announces.
    pub announce_backoff_max: Duration,
    /// Time for one announce request.
    pub announce_timeout: Duration,
    /// How often progress events are published.
    pub progress_interval: Duration,
    /// Client name in the extension handshake.
    pub client_name: String,
    /// Our chat nickname (at most 32 bytes).
    pub nick: String,
    /// Where resume records are kept (`record.rs`): which output files this torrent created,
    /// so a rerun may resume into them. `None` keeps none: then an existing file is used only
    /// if all of its pieces verify. Front-ends pass the user's state directory.
    pub state_dir: Option<PathBuf>,
    /// Use existing output files even when we did not create them and their data does not
    /// match (they are resized and overwritten). Off: such files are refused untouched.
    pub overwrite: bool,
    /// Which files of the layout to fetch, one flag per file (`share fetch --only`); `None`
    /// fetches them all. Only the pieces holding bytes of a selected file are wanted, and
    /// skipped files are never created (`selection.rs`).
    pub select: Option<Vec<bool>>,
    /// Upload and download rate limits of a torrent started on its own (`Torrent::start`);
    /// in a [`crate::Session`] the session's limits apply to all its torrents together
    /// (`SessionConfig::limits`). Default: unlimited.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            max_peers: 50,
            newcomer_slots: 4,
            max_peers_per_ip: 8,
            interest_grace: Duration::from_secs(60),
            pipeline: 64,
            reqq: 2000,
            upload_slots: 8,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(90),
            idle_timeout: Duration::from_secs(180),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_buffered_bytes: 16 * 1024 * 1024,
            hash_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            direct_writes: true,
            ban_strikes: 3,
            pex: true,
            encryption: crate::Encryption::default(),
            dht: None,
            lsd: false,
            numwant: 50,
            announce_backoff_min: Duration::from_secs(5),
            announce_backoff_max: Duration::from_secs(300),
            announce_timeout: Duration::from_secs(15),
            progress_interval: Duration::from_millis(250),
            client_name: format!("share {}", env!("CARGO_PKG_VERSION")),
            nick: "anon".into(),
            state_dir: None,
            overwrite: false,
            select: None,
            limits: Limits::default(),
        }
    }
}
