//! Downloading from a peer: keeping its request pipeline full and taking its blocks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use share_proto::geometry::Block;
use share_proto::wire::Message;

use super::{request_of, Conn, RELEASED_MEMORY};
use crate::error::{PeerError, Violation};
use crate::picker::Received;

impl Conn {
    pub(super) fn on_piece(&mut self, index: u32, begin: u32, data: Bytes) -> Result<(), PeerError> {
        let len = data.len() as u32;
        let block = self
            .shared
            .geometry
            .check_block(index, begin, len)
            .map_err(|why| Violation::DataOutOfRange {
                index,
                begin,
                len,
                why,
            })?;
        match self.outstanding.iter().position(|b| *b == block) {
            Some(pos) => {
                self.outstanding.remove(pos);
            }
            None if self.released.contains(&(index, begin)) => {}
            None => return Err(Violation::Unrequested { index, begin }.into()),
        }
        self.last_block = Instant::now();
        self.timeouts = 0;
        let len = data.len() as u64;
        self.shared.downloaded.fetch_add(len, Ordering::Relaxed);
        if let Some(down) = &self.shared.session.config.limits.down {
            if let Some(wait) = down.charge(len) {
                self.down_pause(wait);
            }
        }
        match self.shared.block_arrived(self.key, self.peer_id, &block, &data) {
            Received::Complete(piece) => self.shared.verify(piece),
            Received::StoredCancel(other) => self.shared.cancel_at(other, block),
            Received::Stored | Received::NotNeeded => {}
        }
        Ok(())
    }

    /// Stops reading from this peer for `wait`: our download limit is in debt.
    fn down_pause(&mut self, wait: Duration) {
        self.down_until = Some(tokio::time::Instant::now() + wait);
        self.paused_at.get_or_insert_with(Instant::now);
    }

    /// The pause is over: read again if the (shared) limit is out of debt, else wait on. The
    /// time we did not read is added to the peer's deadlines, so our limit never makes its
    /// requests (`request_timeout`) or its liveness (`idle_timeout`) look late.
    pub(super) fn down_resume(&mut self) {
        let debt = self
            .shared
            .session
            .config
            .limits
            .down
            .as_ref()
            .and_then(|d| d.debt());
        if let Some(wait) = debt {
            self.down_until = Some(tokio::time::Instant::now() + wait);
            return;
        }
        self.down_until = None;
        if let Some(at) = self.paused_at.take() {
            let paused = at.elapsed();
            self.last_block += paused;
            self.last_recv += paused;
        }
    }

    pub(super) fn remember_released(&mut self, b: &Block) {
        if self.released.len() >= RELEASED_MEMORY {
            self.released.pop_front();
        }
        self.released.push_back((b.piece.get(), b.begin));
    }

    /// Keeps the request pipeline full while they unchoke us and we want something.
    pub(super) fn refill(&mut self) -> Result<(), PeerError> {
        if self.peer_choking || !self.am_interested || self.outstanding.len() * 2 > self.pipeline {
            return Ok(());
        }
        let want = self.pipeline - self.outstanding.len();
        for b in self.shared.pick_for(self.key, want) {
            self.send(Message::Request(request_of(&b)))?;
            self.outstanding.push_back(b);
        }
        Ok(())
    }
}
