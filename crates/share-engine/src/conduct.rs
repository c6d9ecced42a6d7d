//! How the engine answers peers that misbehave: a connection closed for breaking the
//! protocol gives its peer a strike, and repeated strikes ban it; connections refused at the
//! handshake are reported with their reason.
//!
//! Violations are the peer's bytes breaking a rule: a malformed or oversize frame, a bad
//! bitfield, a request out of range or beyond the `reqq` we advertise, data we never asked
//! for. They share the tally of shared pieces that failed their hash (`State::strikes`), and
//! at `Config::ban_strikes` the peer id is banned (and the address, if we dialed it), so a
//! peer that reconnects to try again is turned away. Timeouts and I/O errors are not
//! violations: a slow or vanished peer is not hostile.

use std::net::SocketAddr;

use share_proto::PeerId;

use crate::error::PeerError;
use crate::event::Event;
use crate::torrent::Shared;

/// Whether `error` is the peer breaking the protocol (rather than a timeout or a lost link).
pub(crate) fn is_violation(error: &PeerError) -> bool {
    matches!(
        error,
        PeerError::Wire(_) | PeerError::Bitfield(_) | PeerError::Protocol(_)
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
