//! What we tell a peer we have: the bitfield in our greeting, then a HAVE for every piece
//! verified after it, from the torrent's log of verified pieces (`have_log.rs`).
//!
//! No piece may fall between the two. The greeting reads the log's length under the lock,
//! and a verification appends to the log under the lock and then wakes the `have_changed`
//! watch. So the task subscribes to the watch *before* it reads the log: a piece appended
//! after the read wakes the subscription and is sent from the position read; one appended
//! before is in the bitfield (and its wake-up finds nothing new). Reading first and
//! subscribing second lost a piece verified in between for good: the subscription starts
//! from the watch's current value, so that wake-up was never seen.

use share_proto::wire::Message;
use tokio::sync::watch;

use super::Conn;
use crate::error::PeerError;

/// Subscribes to `changed`, then runs `read`: whatever is appended to the log once `read`
/// has looked at it marks the returned receiver changed.
fn subscribe_then_read<T>(
    changed: &watch::Sender<usize>,
    read: impl FnOnce() -> T,
) -> (watch::Receiver<usize>, T) {
    let rx = changed.subscribe();
    (rx, read())
}

impl Conn {
    /// Our bitfield, then the extension handshake: the bitfield must be the first message
    /// (BEP 3); clients put the extension handshake right after it. Returns the subscription
    /// that wakes the task for every piece verified after the bitfield was taken.
    pub(super) fn greet(&mut self) -> Result<watch::Receiver<usize>, PeerError> {
        let (rx, (bitfield, told)) =
            subscribe_then_read(&self.shared.have_changed, || self.shared.greeting());
        self.told = told;
        if let Some(b) = bitfield {
            self.send(Message::Bitfield(b))?;
        }
        if self.extended {
            self.send_ext_handshake()?;
        }
        // BEP 5: a peer with a DHT node is told where ours listens.
        if let (true, Some(port)) = (self.their_dht, self.shared.dht_port()) {
            self.send(Message::Port(port))?;
        }
        Ok(rx)
    }

    /// HAVE for every piece verified since we last told this peer; closes when both sides
    /// are complete.
    pub(super) fn send_haves(&mut self) -> Result<Option<String>, PeerError> {
        let haves = self.shared.haves_since(self.key, self.told);
        self.told = haves.told;
        for piece in haves.new {
            self.send(Message::Have(piece))?;
        }
        self.on_interest(haves.interest)
    }

    /// Closes when neither side has anything for the other, else shows interest as it is.
    pub(super) fn on_interest(
        &mut self,
        interest: crate::link::Interest,
    ) -> Result<Option<String>, PeerError> {
        if interest.both_complete && self.nothing_to_share() {
            return Ok(Some("both have everything".into()));
        }
        self.set_interest(interest.wanted)?;
        Ok(None)
    }

    pub(super) fn set_interest(&mut self, wanted: bool) -> Result<(), PeerError> {
        let wanted = wanted && self.shared.download;
        if wanted != self.am_interested {
            self.am_interested = wanted;
            self.send(if wanted {
                Message::Interested
            } else {
                Message::NotInterested
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The race of issue 10, made deterministic: the verifier appends and wakes right after
    /// the greeting read the log. The piece must still reach the peer.
    #[test]
    fn a_piece_verified_right_after_the_greeting_still_wakes_the_peer() {
        let (changed, _) = watch::channel(0usize);
        let log = Mutex::new(vec![3u32]);
        let (mut rx, told) = subscribe_then_read(&changed, || {
            let told = log.lock().unwrap().len();
            // What `Shared::piece_checked` does, landing between our read and what follows.
            log.lock().unwrap().push(7);
            changed.send_replace(2);
            told
        });
        assert_eq!(told, 1, "piece 3 went out in the bitfield");
        assert!(rx.has_changed().unwrap(), "the task is woken for piece 7");
        rx.borrow_and_update();
        let log = log.lock().unwrap();
        assert_eq!(&log[told..], [7], "and sends HAVE 7 from where it read");
    }
}
