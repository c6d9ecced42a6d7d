//! Two kinds of error, on purpose (the cratetorrent habit): [`TorrentError`] stops the
//! torrent; [`PeerError`] drops one peer. There is no `From` between them, so `?` cannot turn
//! one peer's bad bytes into the end of the download, nor hide a full disk as a peer problem.

use std::net::SocketAddr;
use std::path::PathBuf;

use share_proto::bitfield::BitfieldError;
use share_proto::wire::WireError;

/// Fatal to the torrent.
#[derive(Debug, thiserror::Error)]
pub enum TorrentError {
    /// The output or input could not be opened, read or written.
    #[error("cannot {op} {}", path.display())]
    Storage {
        /// What was being done: "create", "open", "read", "write".
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A path in the output already exists as something we must not write through.
    #[error("refusing to write through {}: {why}", path.display())]
    UnsafeOutput {
        /// The path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// The listen socket could not be bound.
    #[error("cannot listen for peers on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A blocking task died.
    #[error("an internal task failed: {0}")]
    Internal(String),
}

/// Ends one peer connection.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// Bytes that break the wire protocol.
    #[error("protocol: {0}")]
    Wire(#[from] WireError),
    /// A bad bitfield.
    #[error("bitfield: {0}")]
    Bitfield(#[from] BitfieldError),
    /// A message that breaks the rules (out of range, unrequested, too many requests).
    #[error("{0}")]
    Protocol(String),
    /// The peer is for another swarm, is us, is banned or is already connected.
    #[error("{0}")]
    Refused(String),
    /// Nothing heard for too long, or requests never answered.
    #[error("{0}")]
    Timeout(String),
}
