//! Peer exchange (BEP 11, `ut_pex`) over one connection. We tell the peer where the others
//! we are connected to listen (those whose listen address we know: dialed, or named by their
//! BEP 10 `p`): all of them (at most 50) right after its extension handshake, then what
//! changed, at most once a minute. What it tells us joins the torrent's dial queue behind
//! the user's peers; messages closer together than [`RECEIVE_EVERY`] are ignored, and at
//! most 50 addresses are read from one. Private torrents (BEP 27) neither send nor take
//! peers this way, nor does a torrent with `Config::pex` off (`--no-pex`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use share_proto::pex::{PexMessage, MAX_ADDED};
use share_proto::wire::Message;

use super::Conn;
use crate::error::PeerError;

/// The extended message id we ask peers to send `ut_pex` under.
pub(crate) const PEX_ID: u8 = 3;
/// How often we send what changed (BEP 11: at most once a minute).
pub(crate) const SEND_EVERY: Duration = Duration::from_secs(60);
/// A message that follows the last one sooner is ignored.
const RECEIVE_EVERY: Duration = Duration::from_secs(10);

/// What this connection told its peer, and when.
#[derive(Debug, Default)]
pub(crate) struct PexState {
    /// The id the peer wants `ut_pex` under.
    pub id: Option<u8>,
    sent: HashSet<SocketAddr>,
    sent_at: Option<Instant>,
    got_at: Option<Instant>,
}

impl Conn {
    /// Whether this torrent exchanges peers (`Config::pex`, and never a private one).
    pub(super) fn pex_allowed(&self) -> bool {
        self.shared.config.pex && !self.shared.meta.info.private
    }

    /// Sends the peers added and dropped since our last message, if the peer speaks
    /// `ut_pex` and anything changed.
    pub(super) fn send_pex(&mut self) -> Result<(), PeerError> {
        let Some(id) = self.pex.id.filter(|_| self.pex_allowed()) else {
            return Ok(());
        };
        let now: HashSet<SocketAddr> = self.shared.pex_peers(self.key).into_iter().collect();
        let added: Vec<SocketAddr> = now.difference(&self.pex.sent).take(MAX_ADDED).copied().collect();
        let dropped: Vec<SocketAddr> = self.pex.sent.difference(&now).take(MAX_ADDED).copied().collect();
        self.pex.sent.extend(&added);
        for d in &dropped {
            self.pex.sent.remove(d);
        }
        self.pex.sent_at = Some(Instant::now());
        if added.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        self.send(Message::Extended {
            id,
            payload: Bytes::from(PexMessage { added, dropped }.encode()),
        })
    }

    /// Sends what changed once a minute has passed since the last message.
    pub(super) fn pex_tick(&mut self) -> Result<(), PeerError> {
        match self.pex.sent_at {
            Some(at) if at.elapsed() >= SEND_EVERY => self.send_pex(),
            _ => Ok(()),
        }
    }

    /// A `ut_pex` message from the peer: its added peers go to the dial queue.
    pub(super) fn on_pex(&mut self, payload: &[u8]) {
        if !self.pex_allowed() {
            return;
        }
        if self.pex.got_at.is_some_and(|at| at.elapsed() < RECEIVE_EVERY) {
            return;
        }
        self.pex.got_at = Some(Instant::now());
        let Some(msg) = PexMessage::decode(payload) else {
            tracing::debug!(addr = %self.addr, "malformed ut_pex message ignored");
            return;
        };
        if !msg.added.is_empty() {
            tracing::debug!(addr = %self.addr, added = msg.added.len(), "peers from ut_pex");
            self.shared.add_peers(msg.added);
        }
    }
}
