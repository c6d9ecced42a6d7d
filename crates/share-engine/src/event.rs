//! What the engine tells its front-ends. Front-ends only render events; no front-end logic
//! lives in the engine.

use std::net::SocketAddr;

use share_proto::PeerId;

/// Counters of a torrent at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Verified bytes we have.
    pub have_bytes: u64,
    /// Total bytes of the torrent.
    pub total_bytes: u64,
    /// Verified pieces.
    pub pieces_have: u32,
    /// All pieces.
    pub pieces_total: u32,
    /// Connected peers.
    pub peers: usize,
    /// Connected peers that have every piece.
    pub seeders: usize,
    /// Payload bytes received since start.
    pub downloaded: u64,
    /// Payload bytes sent since start.
    pub uploaded: u64,
    /// Receive rate, bytes per second.
    pub down_rate: f64,
    /// Send rate, bytes per second.
    pub up_rate: f64,
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
    /// Every piece is verified.
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
    /// A fatal error: the torrent stopped.
    Fatal(String),
}
