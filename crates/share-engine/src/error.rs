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
            TorrentError::UnsafeOutput { .. } | TorrentError::BadOutput { .. } | TorrentError::NotOurs { .. }
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
