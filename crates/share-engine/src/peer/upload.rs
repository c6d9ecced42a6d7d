//! Serving a peer: its requests are checked and queued, then read from disk in batches while
//! the writer's backlog is small.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use share_proto::geometry::Block;
use share_proto::wire::{BlockRequest, Message};

use super::{Conn, READ_BATCH, WRITE_BACKLOG};
use crate::error::PeerError;

impl Conn {
    pub(super) fn on_request(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        let Some(block) = self.shared.geometry.check_block(r.index, r.begin, r.length) else {
            return Err(PeerError::Protocol(format!(
                "request for {} bytes at {} of piece {} is outside the torrent or over 128 KiB",
                r.length, r.begin, r.index
            )));
        };
        if self.am_choking {
            return Ok(());
        }
        if self.queue.len() >= self.shared.config.reqq {
            return Err(PeerError::Protocol(format!(
                "more than {} outstanding requests",
                self.shared.config.reqq
            )));
        }
        if !self.shared.lock().picker.have().has(block.piece) {
            return Ok(());
        }
        self.queue.push_back(block);
        Ok(())
    }

    /// Starts reading queued blocks from disk while the writer's backlog is small.
    pub(super) fn start_read(&mut self) {
        if self.reading.is_some()
            || self.queue.is_empty()
            || self.backlog.load(Ordering::Relaxed) >= WRITE_BACKLOG
        {
            return;
        }
        let batch: Vec<Block> = self.queue.drain(..self.queue.len().min(READ_BATCH)).collect();
        let storage = self.shared.storage.clone();
        let geometry = self.shared.geometry;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|b| {
                    Ok((
                        b,
                        crate::storage::read_bytes(&*storage, geometry.block_offset(&b), b.len as usize)?,
                    ))
                })
                .collect()
        }));
    }

    pub(super) fn send_blocks(&mut self, blocks: Vec<(Block, Bytes)>) -> Result<(), PeerError> {
        if self.am_choking {
            return Ok(());
        }
        let mut sent = 0u64;
        for (b, data) in blocks {
            sent += data.len() as u64;
            self.backlog.fetch_add(data.len(), Ordering::Relaxed);
            self.send(Message::Piece {
                index: b.piece.get(),
                begin: b.begin,
                data,
            })?;
        }
        self.shared.uploaded.fetch_add(sent, Ordering::Relaxed);
        if let Some(e) = self.shared.lock().peers.get_mut(&self.key) {
            e.up += sent;
        }
        Ok(())
    }
}
