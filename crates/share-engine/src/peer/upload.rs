//! Serving a peer: its requests are checked and queued, then read from disk in batches while
//! the writer's backlog is small.
//!
//! A file we serve can change under us: shrink, be deleted, or sit on a failing disk. A read
//! that fails is neither fatal to the torrent nor held against the peer who asked: every
//! piece that touches that file is withheld from then on (requests for it are ignored, like
//! requests for pieces we lack, and new peers get a bitfield without it), one
//! `Event::FileUnavailable` names the file, and every other piece is still served. Withheld
//! pieces stay withheld while the torrent runs; a restart re-checks (`share seed` rehashes).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use share_proto::bitfield::Bitfield;
use share_proto::geometry::{Block, Geometry, PieceIndex};
use share_proto::wire::{BlockRequest, Message};

use super::{Conn, READ_BATCH, WRITE_BACKLOG};
use crate::error::{PeerError, TorrentError, Violation};

/// Pieces we have but no longer serve, because a file under them could not be read.
#[derive(Debug)]
pub(crate) struct Withheld {
    geometry: Geometry,
    pieces: Bitfield,
    /// Files already reported, so each is reported once.
    files: HashSet<usize>,
}

impl Withheld {
    pub fn new(geometry: Geometry) -> Self {
        Self {
            geometry,
            pieces: Bitfield::new(geometry.piece_count()),
            files: HashSet::new(),
        }
    }

    /// Whether `piece` is withheld.
    pub fn has(&self, piece: PieceIndex) -> bool {
        self.pieces.has(piece)
    }

    /// The pieces of `have` we still serve.
    pub fn served(&self, have: &Bitfield) -> Bitfield {
        if self.pieces.count() == 0 {
            return have.clone();
        }
        let mut out = Bitfield::new(have.len());
        for p in have.ones().filter_map(|i| self.geometry.piece(i)) {
            if !self.pieces.has(p) {
                out.set(p);
            }
        }
        out
    }

    /// Withholds every piece overlapping bytes `start..start + len` of the torrent; returns
    /// how many were newly withheld, or `None` if `file` was already reported.
    pub(crate) fn withhold(&mut self, file: usize, start: u64, len: u64) -> Option<u32> {
        if !self.files.insert(file) {
            return None;
        }
        let piece_len = u64::from(self.geometry.piece_len());
        let first = start / piece_len;
        let end = if len == 0 {
            first
        } else {
            (start + len).div_ceil(piece_len)
        };
        let mut n = 0;
        for i in first..end {
            if let Some(p) = u32::try_from(i).ok().and_then(|i| self.geometry.piece(i)) {
                n += u32::from(self.pieces.set(p));
            }
        }
        Some(n)
    }
}

/// What one blocking read of queued blocks gave: the blocks read, and the reads that failed
/// because a file could not be read.
pub(crate) struct ReadBatch {
    blocks: Vec<(Block, Bytes)>,
    unreadable: Vec<(usize, PathBuf, std::io::Error)>,
}

impl Conn {
    pub(super) fn on_request(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        let block = self
            .shared
            .geometry
            .check_block(r.index, r.begin, r.length)
            .map_err(|why| Violation::RequestOutOfRange {
                index: r.index,
                begin: r.begin,
                length: r.length,
                why,
            })?;
        if self.am_choking {
            return Ok(());
        }
        if self.queue.len() >= self.shared.config.reqq {
            return Err(Violation::TooManyRequests(self.shared.config.reqq).into());
        }
        if !self.shared.serves(block.piece) {
            return Ok(());
        }
        self.queue.push_back(block);
        Ok(())
    }

    /// Starts reading queued blocks from disk while the writer's backlog is small and our
    /// upload limit, if any, lets them go.
    pub(super) fn start_read(&mut self) {
        if self.reading.is_some()
            || self.up_until.is_some()
            || self.queue.is_empty()
            || self.backlog.load(Ordering::Relaxed) >= WRITE_BACKLOG
        {
            return;
        }
        let mut n = self.queue.len().min(READ_BATCH);
        if let Some(up) = &self.shared.session.config.limits.up {
            // At most a burst's worth (at least one block) is charged and read at a time, so
            // a slow limit is not spent on one peer's long batch; the blocks are charged
            // before they are read, and the next batch waits while the limit is in debt.
            n = blocks_within(&self.queue, n, up.burst());
            let bytes = self.queue.iter().take(n).map(|b| u64::from(b.len)).sum();
            if let Err(wait) = up.try_take(bytes) {
                self.up_until = Some(tokio::time::Instant::now() + wait);
                return;
            }
        }
        let mut batch: Vec<Block> = self.queue.drain(..n).collect();
        // Requests queued before a file became unreadable are dropped here.
        self.shared.drop_withheld(&mut batch);
        if batch.is_empty() {
            return;
        }
        let storage = self.shared.storage.clone();
        let geometry = self.shared.geometry;
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let mut out = ReadBatch {
                blocks: Vec::with_capacity(batch.len()),
                unreadable: Vec::new(),
            };
            for run in contiguous_runs(&batch, |b| geometry.block_offset(b)) {
                let start = geometry.block_offset(&run[0]);
                let len: usize = run.iter().map(|b| b.len as usize).sum();
                let data = match crate::storage::read_bytes(&*storage, start, len) {
                    Ok(data) => data,
                    Err(TorrentError::Unreadable { file, path, source }) => {
                        out.unreadable.push((file, path, source));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut at = 0;
                for b in run {
                    out.blocks.push((*b, data.slice(at..at + b.len as usize)));
                    at += b.len as usize;
                }
            }
            Ok(out)
        }));
    }

    /// A disk read finished: send what was read, withhold what could not be.
    pub(super) fn read_done(&mut self, batch: ReadBatch) -> Result<(), PeerError> {
        for (file, path, error) in batch.unreadable {
            self.shared.stop_serving(file, path, &error);
        }
        self.send_blocks(batch.blocks)
    }

    fn send_blocks(&mut self, blocks: Vec<(Block, Bytes)>) -> Result<(), PeerError> {
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
        self.shared.uploaded_to(self.key, sent);
        Ok(())
    }
}

/// How many of the first `max` blocks of `queue` fit in `budget` bytes (at least one).
fn blocks_within(queue: &VecDeque<Block>, max: usize, budget: u64) -> usize {
    let mut total = 0;
    let fit = queue
        .iter()
        .take(max)
        .take_while(|b| {
            total += u64::from(b.len);
            total <= budget
        })
        .count();
    fit.max(1).min(max)
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
    fn a_limited_batch_holds_a_burst_of_blocks_and_never_none() {
        let g = Geometry::new(4 * 32 * 1024, 32 * 1024).unwrap();
        let queue: VecDeque<Block> = (0..8)
            .map(|i| g.block(g.piece(i / 2).unwrap(), i % 2).unwrap())
            .collect();
        assert_eq!(blocks_within(&queue, 8, 3 * 16384), 3);
        assert_eq!(blocks_within(&queue, 8, 3 * 16384 + 100), 3);
        assert_eq!(blocks_within(&queue, 2, 3 * 16384), 2, "READ_BATCH still caps it");
        assert_eq!(blocks_within(&queue, 8, 100), 1, "a block always goes");
        assert_eq!(blocks_within(&queue, 8, u64::MAX), 8);
    }

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
