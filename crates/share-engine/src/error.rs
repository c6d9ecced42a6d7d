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
    /// A file we have could not be read: it shrank, was deleted, or the disk failed. While
    /// seeding this withholds the file's pieces instead of stopping (`peer/upload.rs`).
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// Its index in the torrent's file list.
        file: usize,
        /// The file.
        path: PathBuf,
        /// The cause, naming what changed ("it is now 1000 bytes, the manifest says 65536").
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
    /// An output path that cannot be used as asked (a file where a directory must go, or
    /// the reverse): bad input, named by the path.
    #[error("cannot save to {}: {why}", path.display())]
    BadOutput {
        /// The path as the caller spelt it.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Existing data we did not write and that is not this torrent's: never destroyed
    /// unless the caller asks for it (`Config::overwrite`).
    #[error("refusing to use {}: {why}", path.display())]
    NotOurs {
        /// The file or directory.
        path: PathBuf,
        /// What is there and why it cannot be used.
        why: String,
    },
    /// The listen socket could not be bound.
    #[error("cannot listen for peers on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A partial fetch keeps pieces that straddle skipped files in the state directory
    /// (`selection.rs`), and there is none.
    #[error("fetching only some files needs a state directory (for the pieces they share with the files skipped), and there is none: pass --state-dir DIR")]
    NoStateDir,
    /// The session already runs a torrent with this info hash.
    #[error("this session already has the torrent {0}")]
    AlreadyAdded(share_proto::InfoHash),
    /// The session was shut down.
    #[error("the session has stopped")]
    SessionStopped,
    /// A file of the session's state (`persist.rs`) cannot be read back; that torrent is
    /// skipped, the others go on.
    #[error("cannot read the session state {}: {reason}", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No torrent of the session has this id (it was removed, or never added).
    #[error("no torrent {0} in this session")]
    NoSuchTorrent(u64),
    /// A blocking task died.
    #[error("an internal task failed: {0}")]
    Internal(String),
}

impl TorrentError {
    /// The message with its causes, `: `-separated ("cannot write out.bin: No space left on
    /// device (os error 28)"): what a front-end shows when the torrent stops.
    pub fn chain(&self) -> String {
        chain(self)
    }

    /// Whether the caller's input is at fault (an output path that cannot or must not be
    /// written), rather than something failing while running.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TorrentError::UnsafeOutput { .. }
                | TorrentError::BadOutput { .. }
                | TorrentError::NotOurs { .. }
                | TorrentError::NoStateDir
        )
    }
}

/// Any error with its causes on one line, `: `-separated.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Ends one peer connection. Which kinds count against the peer is decided by their type,
/// never by their text: [`PeerError::Violation`], [`PeerError::Wire`] and
/// [`PeerError::Bitfield`] are the peer's bytes breaking a rule (a strike, `conduct.rs`);
/// the rest are a lost link, a slow peer, a refusal at the handshake, or our own failure.
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
    #[error(transparent)]
    Violation(#[from] Violation),
    /// The peer is for another swarm, is us, is banned or is already connected.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Nothing heard for too long, requests never answered, or our writes not taken.
    #[error("{0}")]
    Timeout(String),
    /// Our side failed (a task died); never held against the peer.
    #[error("{0}")]
    Local(String),
}

/// A rule of the peer wire broken by the peer's own messages: a strike (`conduct.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A HAVE for a piece the torrent does not have.
    #[error("HAVE for piece {0}, past the last piece")]
    HaveOutOfRange(u32),
    /// A request outside the torrent or the piece, empty, or over 128 KiB.
    #[error("request for {length} bytes at {begin} of piece {index}: {why}")]
    RequestOutOfRange {
        /// The piece.
        index: u32,
        /// The offset in the piece.
        begin: u32,
        /// The length.
        length: u32,
        /// What is wrong with it.
        why: share_proto::geometry::BlockError,
    },
    /// More requests queued than the `reqq` we advertise.
    #[error("more than {0} outstanding requests")]
    TooManyRequests(usize),
    /// Block data outside the torrent or the piece, empty, or over 128 KiB.
    #[error("piece data of {len} bytes at {begin} of piece {index}: {why}")]
    DataOutOfRange {
        /// The piece.
        index: u32,
        /// The offset in the piece.
        begin: u32,
        /// Its length.
        len: u32,
        /// What is wrong with it.
        why: share_proto::geometry::BlockError,
    },
    /// Block data we never asked for.
    #[error("piece data at {begin} of piece {index} that we never requested")]
    Unrequested {
        /// The piece.
        index: u32,
        /// The offset in the piece.
        begin: u32,
    },
    /// Chat messages far over the budget of a connection or an author (`chat_limits.rs`).
    #[error("chat flood: {0}")]
    ChatFlood(&'static str),
    /// A `ut_metadata` message that is not one (BEP 9).
    #[error("{0}")]
    Metadata(share_proto::metadata::MetadataError),
    /// More `ut_metadata` requests than the info dictionary has pieces, several times over.
    #[error("{0} ut_metadata requests on one connection")]
    MetadataFlood(u32),
}

/// Why a connection was turned away at the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Its handshake names another info hash.
    #[error("handshake for another swarm")]
    AnotherSwarm,
    /// Its peer id is ours: we dialed our own listener.
    #[error("connected to ourselves")]
    Ourselves,
    /// Its peer id is banned.
    #[error("banned")]
    Banned,
    /// A connection to that peer id is already open.
    #[error("already connected")]
    AlreadyConnected,
    /// Every connection slot is taken and nobody may be displaced.
    #[error("too many peers")]
    TooManyPeers,
    /// The torrent is paused.
    #[error("the torrent is paused")]
    Paused,
    /// Its address already holds `max_peers_per_ip` connections.
    #[error("too many connections from {ip}: {count} already, max_peers_per_ip is {max}")]
    TooManyFromIp {
        /// The address.
        ip: std::net::IpAddr,
        /// Its connections now.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// We dialed the address where a peer already connected to us listens.
    #[error("already connected: {other} connected to us and listens at {listen}")]
    AlreadyConnectedAt {
        /// Where its connection to us comes from.
        other: SocketAddr,
        /// Where it listens (the address we dialed).
        listen: SocketAddr,
    },
    /// Every connection the session allows (`SessionConfig::max_connections`) is open.
    #[error("the session's {0} connections are all in use")]
    SessionFull(usize),
    /// No torrent of the session has its info hash yet: it is still checking its data.
    #[error("that torrent is still checking its data")]
    Checking,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_names_the_file_and_the_cause() {
        let e = TorrentError::Storage {
            op: "write",
            path: PathBuf::from("/mnt/full/out.bin"),
            source: std::io::Error::from_raw_os_error(28),
        };
        assert_eq!(
            e.chain(),
            "cannot write /mnt/full/out.bin: No space left on device (os error 28)"
        );
    }
}
