//! How the engine answers peers that misbehave: a connection closed for breaking the
//! protocol gives its peer a strike, and repeated strikes ban it; connections refused at the
//! handshake are reported with their reason.
//!
//! Violations are the peer's bytes breaking a rule: a malformed or oversize frame, a bad
//! bitfield, a request out of range or beyond the `reqq` we advertise, data we never asked
//! for. They share the tally of shared pieces that failed their hash (`State::strikes`), and
//! at `Config::ban_strikes` the peer id is banned (and the address, if we dialed it), so a
//! peer that reconnects to try again is turned away. Timeouts and I/O errors are not
//! violations: a slow or vanished peer is not hostile; nor is our own failure (a disk read
//! that fails is the file changing under us, `PeerError::Local` a task of ours dying). The
//! decision is made on the error's type, never on its text.

use std::net::SocketAddr;

use share_proto::PeerId;

use crate::error::PeerError;
use crate::event::Event;
use crate::torrent::Shared;

/// Whether `error` is the peer breaking the protocol (rather than a timeout or a lost link).
pub(crate) fn is_violation(error: &PeerError) -> bool {
    matches!(
        error,
        PeerError::Wire(_) | PeerError::Bitfield(_) | PeerError::Violation(_)
    )
}

impl Shared {
    /// Counts a protocol violation against `peer_id`; bans it once its strikes reach
    /// `ban_strikes`. Call while the peer is still registered, so the ban names its address.
    pub(crate) fn strike(&self, peer_id: PeerId, reason: &str) {
        let strikes = {
            let mut st = self.lock();
            let n = st.strikes.entry(peer_id).or_insert(0);
            *n += 1;
            *n
        };
        if strikes >= self.config.ban_strikes {
            self.ban(
                peer_id,
                format!("broke the protocol {strikes} times, last: {reason}"),
            );
        }
    }

    /// Reports a connection that ended before it was registered as a peer.
    pub(crate) fn refused(&self, addr: SocketAddr, reason: String) {
        tracing::debug!(%addr, %reason, "connection refused");
        self.emit(Event::PeerRefused { addr, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Refusal, Violation};

    #[test]
    fn only_the_peers_own_bytes_are_violations() {
        let strikes = [
            PeerError::Violation(Violation::HaveOutOfRange(7)),
            PeerError::Violation(Violation::TooManyRequests(2000)),
            PeerError::Violation(Violation::ChatFlood("x")),
            PeerError::Wire(share_proto::wire::WireError::NotBitTorrent),
        ];
        for e in &strikes {
            assert!(is_violation(e), "{e}");
        }
        let not = [
            PeerError::Io(std::io::ErrorKind::BrokenPipe.into()),
            PeerError::Timeout("nothing received for 180 s".into()),
            PeerError::Refused(Refusal::Ourselves),
            // Our disk read task dying is our failure, not the requester's.
            PeerError::Local("disk read task failed: panicked".into()),
        ];
        for e in &not {
            assert!(!is_violation(e), "{e}");
        }
        // Messages are unchanged by the typing: front-ends and tests read them.
        assert_eq!(Refusal::Ourselves.to_string(), "connected to ourselves");
        assert_eq!(
            PeerError::from(Violation::TooManyRequests(250)).to_string(),
            "more than 250 outstanding requests"
        );
    }
}
