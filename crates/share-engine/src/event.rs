//! What the engine tells its front-ends. Front-ends only render events; no front-end logic
//! lives in the engine.

use std::net::SocketAddr;

use share_proto::PeerId;

/// Counters of a torrent at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Verified bytes of the pieces we want.
    pub have_bytes: u64,
    /// Bytes of the pieces we want: the torrent's, or those of the files a partial fetch
    /// selected (with the pieces they share with skipped files).
    pub total_bytes: u64,
    /// Wanted pieces verified.
    pub pieces_have: u32,
    /// Wanted pieces (every piece without a selection).
    pub pieces_total: u32,
    /// Connected peers.
    pub peers: usize,
    /// Connected peers that have every piece.
    pub seeders: usize,
    /// Peer addresses waiting for a connection slot.
    pub queued_peers: usize,
    /// Payload bytes received since start.
    pub downloaded: u64,
    /// Payload bytes sent since start.
    pub uploaded: u64,
    /// Receive rate, bytes per second.
    pub down_rate: f64,
    /// Send rate, bytes per second.
    pub up_rate: f64,
}

/// Where a torrent is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TorrentState {
    /// Existing data is being verified; no peer is dialed or accepted until it ends.
    Checking,
    /// Fetching what it wants.
    Downloading,
    /// It has what it wants and serves it.
    Seeding,
    /// Paused: no peers, no announces; its pieces, and the addresses of the peers it had,
    /// are kept for [`crate::Torrent::resume`].
    Paused,
    /// Stopped or removed.
    Stopped,
    /// Stopped by a fatal error.
    Error(String),
}

impl TorrentState {
    /// Its name in lower case, as the JSON front-ends print it.
    pub fn name(&self) -> &'static str {
        match self {
            TorrentState::Checking => "checking",
            TorrentState::Downloading => "downloading",
            TorrentState::Seeding => "seeding",
            TorrentState::Paused => "paused",
            TorrentState::Stopped => "stopped",
            TorrentState::Error(_) => "error",
        }
    }
}

impl std::fmt::Display for TorrentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TorrentState::Error(reason) => write!(f, "error: {reason}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// Existing data is being re-checked.
    Checking {
        /// Bytes checked so far.
        done: u64,
        /// Bytes to check.
        total: u64,
    },
    /// Periodic counters.
    Progress(Stats),
    /// A peer finished its handshake.
    PeerUp {
        /// Its address.
        addr: SocketAddr,
        /// Its id.
        peer_id: PeerId,
        /// Its client name, from the extension handshake when it arrives.
        client: Option<String>,
        /// Whether the connection's handshake (MSE) and data (RC4) are encrypted.
        encryption: crate::encryption::Crypto,
    },
    /// A DHT round of the torrent ended: our announce, then a lookup of its swarm.
    Dht {
        /// Whether a node took our announce.
        announced: bool,
        /// Peers found (they join the dial queue).
        peers: usize,
    },
    /// A connection ended at or before its handshake: another swarm, a handshake that never
    /// completed, a banned or duplicate peer, ourselves.
    PeerRefused {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A peer connection ended.
    PeerDown {
        /// Its address.
        addr: SocketAddr,
        /// Its id.
        peer_id: PeerId,
        /// Why.
        reason: String,
    },
    /// A piece passed its SHA-1 check and is on disk.
    PieceVerified {
        /// The piece.
        piece: u32,
        /// The peers whose blocks made it.
        from: Vec<PeerId>,
    },
    /// A piece failed its SHA-1 check and will be fetched again.
    PieceFailed {
        /// The piece.
        piece: u32,
        /// The peers whose blocks made it.
        from: Vec<PeerId>,
    },
    /// A peer was banned for sending bad data or breaking the protocol.
    PeerBanned {
        /// Its address.
        addr: SocketAddr,
        /// Its id.
        peer_id: PeerId,
        /// Why.
        reason: String,
    },
    /// Every wanted piece is verified (every piece, unless the fetch selected some files).
    Complete,
    /// A tracker answered.
    TrackerOk {
        /// The announce URL.
        url: String,
        /// Peers it returned.
        peers: usize,
    },
    /// A tracker could not be reached or refused us; the engine retries with back-off.
    TrackerError {
        /// The announce URL.
        url: String,
        /// What went wrong.
        error: String,
    },
    /// A chat message for us: to the room, or direct. Nickname and text are sanitized.
    Chat {
        /// Its author.
        from: PeerId,
        /// The author's nickname.
        nick: String,
        /// The text.
        text: String,
        /// When the author wrote it (unix milliseconds, the author's clock).
        time_ms: u64,
        /// Whether it was sent to us alone.
        direct: bool,
        /// The connection it came over.
        via: SocketAddr,
    },
    /// A chat payload was dropped (malformed, oversize, invalid UTF-8, misdirected).
    ChatDropped {
        /// The connection it came over.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A file we serve can no longer be read (it shrank, was deleted, or the disk failed):
    /// its pieces are no longer served; every other piece still is. Once per file.
    FileUnavailable {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
        /// Pieces withheld because of it.
        pieces: u32,
    },
    /// The torrent moved to another [`TorrentState`] (its first, `checking` or the state
    /// after it, and each change after that; `Fatal` says `error` itself).
    State(TorrentState),
    /// A fatal error: the torrent stopped.
    Fatal(String),
}
