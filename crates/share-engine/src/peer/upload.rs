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
        let block = self
            .shared
            .geometry
            .check_block(r.index, r.begin, r.length)
            .map_err(|why| {
                PeerError::Protocol(format!(
                    "request for {} bytes at {} of piece {}: {why}",
                    r.length, r.begin, r.index
                ))
            })?;
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
            let mut out = Vec::with_capacity(batch.len());
            for run in contiguous_runs(&batch, |b| geometry.block_offset(b)) {
                let start = geometry.block_offset(&run[0]);
                let len: usize = run.iter().map(|b| b.len as usize).sum();
                let data = crate::storage::read_bytes(&*storage, start, len)?;
                let mut at = 0;
                for b in run {
                    out.push((*b, data.slice(at..at + b.len as usize)));
                    at += b.len as usize;
                }
            }
            Ok(out)
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

/// Splits `blocks` into runs that follow each other on disk, so that a run is read with one
/// system call into one buffer and each block is a slice of it (peers mostly ask for a
/// piece's blocks in order).
fn contiguous_runs(blocks: &[Block], offset: impl Fn(&Block) -> u64) -> impl Iterator<Item = &[Block]> {
    blocks.chunk_by(move |a, b| offset(a) + u64::from(a.len) == offset(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use share_proto::geometry::Geometry;

    #[test]
    fn blocks_in_disk_order_are_read_as_one_run() {
        let g = Geometry::new(4 * 32 * 1024, 32 * 1024).unwrap();
        let b = |piece: u32, n: u32| g.block(g.piece(piece).unwrap(), n).unwrap();
        // 0/0 0/1 1/0 follow each other; 3/1 jumps; 3/0 goes backwards; 2/0 jumps again.
        let blocks = [b(0, 0), b(0, 1), b(1, 0), b(3, 1), b(3, 0), b(2, 0), b(2, 1)];
        let runs: Vec<Vec<(u32, u32)>> = contiguous_runs(&blocks, |x| g.block_offset(x))
            .map(|r| r.iter().map(|x| (x.piece.get(), x.begin)).collect())
            .collect();
        assert_eq!(
            runs,
            [
                vec![(0, 0), (0, 16384), (1, 0)],
                vec![(3, 16384)],
                vec![(3, 0)],
                vec![(2, 0), (2, 16384)],
            ]
        );
    }
}
