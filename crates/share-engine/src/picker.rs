//! The piece picker: which blocks to ask which peer for, and where received blocks go.
//! Plain synchronous code on the torrent's state, called with the torrent's one lock held.
//!
//! # States and invariants
//!
//! Every piece is in exactly one state:
//!
//! | state | meaning | leaves by |
//! | --- | --- | --- |
//! | `Missing` | wanted, not started | `pick` starts it → `Partial` |
//! | `Partial` | some blocks open, requested or received; its buffer is allocated | last block received → `Verifying` |
//! | `Verifying` | whole, handed to a hash worker; buffer moved out | `verified(ok)` → `Have`; `verified(bad)` → `Missing` |
//! | `Have` | verified and written | never |
//! | `Skipped` | not had and not wanted (a partial fetch, `--only`): never picked | never |
//!
//! `wanted` is fixed when the picker is made (`with_wanted`; every piece without a
//! selection). Complete means every wanted piece is `Have`: `wanted_left` counts the wanted
//! pieces that are not, and `missing` the wanted ones still `Missing` (endgame starts at 0).
//! A piece had already (the resume check found it) is `Have` whether it is wanted or not.
//!
//! Within a `Partial` piece each block is `Open`, `Requested` (by one peer, or by two in
//! endgame) or `Received`. A peer's requests are released (back to `Open`) when it chokes us,
//! times out or leaves. Availability counts how many connected peers have each piece; it is
//! kept on bitfield, HAVE and disconnect.
//!
//! Picking, in order: open blocks of partial pieces the peer has (finishing pieces frees
//! memory and gets them verified sooner); then new pieces, rarest first, ties going to the
//! next piece from a start point chosen at random per torrent (sequential runs for the disk,
//! different pieces in different fetchers); then, once no piece is `Missing` or open, endgame:
//! blocks another peer is fetching are also asked of this one. A new piece starts only while
//! the buffered bytes stay within the budget, which bounds memory. A piece that failed its
//! hash is fetched again from one peer only, so a second failure names the bad peer; if that
//! peer leaves, the retry starts over with the next peer that takes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use share_proto::aligned::{aligned_vec, page_offset};
use share_proto::bitfield::Bitfield;
use share_proto::geometry::{Block, Geometry, PieceIndex, BLOCK_LEN};
use share_proto::PeerId;

/// A peer connection's key within one torrent.
pub type PeerKey = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceState {
    Missing,
    Partial,
    Verifying,
    Have,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockState {
    Open,
    Requested { by: PeerKey, dup: Option<PeerKey> },
    Received,
}

#[derive(Debug)]
struct Partial {
    blocks: Vec<BlockState>,
    received: u32,
    /// The piece's bytes, at `offset` in an over-allocated, page-aligned vector.
    buf: Vec<u8>,
    offset: usize,
    contributors: Vec<(PeerKey, PeerId)>,
    /// Set for a piece that failed before: only this peer may fetch it.
    owner: Option<PeerKey>,
}

/// A whole piece, ready for hashing.
#[derive(Debug)]
pub struct Assembled {
    /// Which piece.
    pub piece: PieceIndex,
    /// Its bytes: `data[offset..offset + len]`, page aligned.
    pub data: Vec<u8>,
    /// Where the piece starts in `data`.
    pub offset: usize,
    /// Its length.
    pub len: usize,
    /// Who sent its blocks.
    pub contributors: Vec<(PeerKey, PeerId)>,
}

impl Assembled {
    /// The piece's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.offset..self.offset + self.len]
    }
}

/// Wanted pieces and their bytes, verified and in all (`Picker::progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Wanted pieces verified.
    pub pieces_have: u32,
    /// Wanted pieces.
    pub pieces_total: u32,
    /// Their bytes, verified.
    pub have_bytes: u64,
    /// Their bytes in all.
    pub total_bytes: u64,
}

/// What became of a received block.
#[derive(Debug)]
pub enum Received {
    /// Stored; nothing else to do.
    Stored,
    /// Stored, and it completed its piece.
    Complete(Assembled),
    /// Stored; the same block is also requested from this other peer (endgame): cancel it there.
    StoredCancel(PeerKey),
    /// Not needed (already received or the piece is not in progress); dropped.
    NotNeeded,
}

/// The piece picker of one torrent.
#[derive(Debug)]
pub struct Picker {
    geometry: Geometry,
    state: Vec<PieceState>,
    have: Bitfield,
    availability: Vec<u32>,
    partial: HashMap<u32, Partial>,
    failed_before: Vec<bool>,
    /// The pieces this fetch wants; all of them unless `with_wanted` said otherwise.
    wanted: Bitfield,
    /// Wanted pieces not yet `Have`: complete at 0.
    wanted_left: u32,
    missing: u32,
    buffered: u64,
    max_buffered: u64,
    /// The session's budget over all its torrents, which `buffered` is also charged to.
    budget: Option<Arc<MemoryBudget>>,
    /// Where the search for a new piece starts: ties in rarity go to the first piece from
    /// here, so a download proceeds in long sequential runs (disk locality) from a point that
    /// differs between peers (so fetchers hold different pieces to trade).
    start: u32,
    /// Buffers of verified pieces, reused for new ones: no allocation, zeroing or page faults
    /// per piece. Every byte of a reused buffer is overwritten before its piece completes.
    spare: Vec<Vec<u8>>,
}

impl Picker {
    /// A picker for a torrent of which we have `have`.
    pub fn new(geometry: Geometry, have: Bitfield, max_buffered: u64) -> Self {
        let n = geometry.piece_count() as usize;
        let state: Vec<_> = (0..n as u32)
            .map(|i| {
                if have.has_raw(i) {
                    PieceState::Have
                } else {
                    PieceState::Missing
                }
            })
            .collect();
        let missing = n as u32 - have.count();
        Self {
            geometry,
            state,
            have,
            availability: vec![0; n],
            partial: HashMap::new(),
            failed_before: vec![false; n],
            wanted: Bitfield::full(n as u32),
            wanted_left: missing,
            missing,
            buffered: 0,
            max_buffered,
            budget: None,
            start: 0,
            spare: Vec::new(),
        }
    }

    /// Charges the bytes of pieces in progress to `budget` too, shared with the session's
    /// other torrents: a new piece starts only within both (or when this torrent has none in
    /// progress, so that no torrent starves).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        if let Some(old) = self.budget.replace(budget.clone()) {
            old.give_back(self.buffered);
        }
        budget.take(self.buffered);
        self
    }

    /// Starts the search for new pieces at `piece` (see `start`).
    pub fn start_at(&mut self, piece: u32) {
        self.start = piece % self.geometry.piece_count().max(1);
    }

    /// Restricts a new picker to the `wanted` pieces (a partial fetch): the others are
    /// skipped unless we have them already. A bitfield of another length wants nothing
    /// past its end.
    pub fn with_wanted(mut self, wanted: Bitfield) -> Self {
        for (i, s) in self.state.iter_mut().enumerate() {
            if *s == PieceState::Missing && !wanted.has_raw(i as u32) {
                *s = PieceState::Skipped;
                self.missing -= 1;
            }
        }
        self.wanted_left = (0..self.state.len() as u32)
            .filter(|&i| wanted.has_raw(i) && !self.have.has_raw(i))
            .count() as u32;
        self.wanted = wanted;
        self
    }

    /// The pieces we have.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// The pieces this fetch wants.
    pub fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// Whether every wanted piece is verified (every piece, without a selection).
    pub fn is_complete(&self) -> bool {
        self.wanted_left == 0
    }

    /// Verified bytes of every piece (what a tracker's `left` is counted from).
    pub fn have_bytes(&self) -> u64 {
        self.bytes_of(self.have.count(), self.have.has_raw(self.last()))
    }

    /// What a progress bar shows: wanted pieces and their bytes, verified and in all.
    pub fn progress(&self) -> Progress {
        let pieces_total = self.wanted.count().min(self.state.len() as u32);
        let pieces_have = pieces_total.saturating_sub(self.wanted_left);
        let last = self.last();
        let wants_last = self.wanted.has_raw(last);
        Progress {
            pieces_have,
            pieces_total,
            have_bytes: self.bytes_of(pieces_have, wants_last && self.have.has_raw(last)),
            total_bytes: self.bytes_of(pieces_total, wants_last),
        }
    }

    fn last(&self) -> u32 {
        self.geometry.piece_count().saturating_sub(1)
    }

    /// Bytes of `count` pieces, the short last one among them if `with_last`.
    fn bytes_of(&self, count: u32, with_last: bool) -> u64 {
        let full = u64::from(count) * u64::from(self.geometry.piece_len());
        match self
            .geometry
            .piece(self.last())
            .filter(|_| with_last && count > 0)
        {
            Some(last) => full - u64::from(self.geometry.piece_len() - self.geometry.len_of(last)),
            None => full,
        }
    }

    /// Bytes of piece data held in memory.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Whether `peer_has` holds a piece we still need.
    pub fn wants_from(&self, peer_has: &Bitfield) -> bool {
        !self.is_complete() && peer_has.ones().any(|i| self.needs(i))
    }

    /// Whether piece `i` is one we still need (for interest after a HAVE).
    pub fn needs(&self, i: u32) -> bool {
        self.state
            .get(i as usize)
            .is_some_and(|s| !matches!(s, PieceState::Have | PieceState::Skipped))
    }

    /// A peer's bitfield arrived.
    pub fn add_peer(&mut self, peer_has: &Bitfield) {
        for i in peer_has.ones() {
            self.availability[i as usize] += 1;
        }
    }

    /// A peer sent a new bitfield in place of what it had (some clients send it late).
    pub fn replace_peer(&mut self, old: &Bitfield, new: &Bitfield) {
        for i in old.ones() {
            let a = &mut self.availability[i as usize];
            *a = a.saturating_sub(1);
        }
        self.add_peer(new);
    }

    /// A peer announced a piece.
    pub fn peer_has(&mut self, piece: PieceIndex) {
        self.availability[piece.as_usize()] += 1;
    }

    /// A peer left: its pieces no longer count and its requests reopen.
    pub fn remove_peer(&mut self, peer: PeerKey, peer_has: &Bitfield) {
        for i in peer_has.ones() {
            let a = &mut self.availability[i as usize];
            *a = a.saturating_sub(1);
        }
        self.release_all(peer);
        // A retry it owned would otherwise wait for it forever. It starts over, so that the
        // next peer to take it is its only sender again.
        for p in self.partial.values_mut() {
            if p.owner == Some(peer) {
                p.owner = None;
                p.blocks.fill(BlockState::Open);
                p.received = 0;
                p.contributors.clear();
            }
        }
    }

    /// Reopens every block requested from `peer` (it choked us, timed out or left).
    pub fn release_all(&mut self, peer: PeerKey) {
        for p in self.partial.values_mut() {
            for b in &mut p.blocks {
                release(b, peer);
            }
        }
    }

    /// Reopens one block requested from `peer`.
    pub fn release(&mut self, peer: PeerKey, block: &Block) {
        if let Some(p) = self.partial.get_mut(&block.piece.get()) {
            if let Some(b) = p.blocks.get_mut((block.begin / BLOCK_LEN) as usize) {
                release(b, peer);
            }
        }
    }

    /// Up to `max` blocks for `peer`, which has `peer_has`; marks them requested by it.
    pub fn pick(&mut self, peer: PeerKey, peer_has: &Bitfield, max: usize) -> Vec<Block> {
        let mut out = Vec::new();
        if max == 0 || self.is_complete() {
            return out;
        }
        // 1. Open blocks of pieces already in progress.
        let mut keys: Vec<u32> = self
            .partial
            .keys()
            .copied()
            .filter(|&i| peer_has.has_raw(i))
            .collect();
        keys.sort_unstable_by_key(|i| std::cmp::Reverse(self.partial[i].received));
        for i in keys {
            let piece = PieceIndex::from_picker(self.geometry, i);
            let p = self.partial.get_mut(&i).expect("key listed above");
            if p.owner.is_some_and(|o| o != peer) {
                continue;
            }
            if self.failed_before[i as usize] {
                // A retry whose owner left: this peer takes it over.
                p.owner = Some(peer);
            }
            for (n, b) in p.blocks.iter_mut().enumerate() {
                if *b == BlockState::Open {
                    *b = BlockState::Requested { by: peer, dup: None };
                    out.push(
                        self.geometry
                            .block(piece, n as u32)
                            .expect("block index in range"),
                    );
                    if out.len() == max {
                        return out;
                    }
                }
            }
        }
        // 2. New pieces, rarest first.
        while out.len() < max {
            let Some(i) = self.rarest_missing(peer_has) else {
                break;
            };
            let piece = PieceIndex::from_picker(self.geometry, i);
            let len = self.geometry.len_of(piece) as u64;
            if self.buffered > 0 && !self.room_for(len) {
                break;
            }
            if self.buffered == 0 {
                if let Some(b) = &self.budget {
                    b.take(len);
                }
            }
            self.start(piece, peer);
            let p = self.partial.get_mut(&i).expect("just started");
            for (n, b) in p.blocks.iter_mut().enumerate() {
                *b = BlockState::Requested { by: peer, dup: None };
                out.push(
                    self.geometry
                        .block(piece, n as u32)
                        .expect("block index in range"),
                );
                if out.len() == max {
                    // The rest of the piece stays open for the next pick.
                    return out;
                }
            }
        }
        // 3. Endgame: nothing left to start and no open block; duplicate others' requests.
        if out.is_empty() && self.missing == 0 {
            for (&i, p) in &mut self.partial {
                if !peer_has.has_raw(i) || p.owner.is_some_and(|o| o != peer) {
                    continue;
                }
                let piece = PieceIndex::from_picker(self.geometry, i);
                for (n, b) in p.blocks.iter_mut().enumerate() {
                    if let BlockState::Requested { by, dup: dup @ None } = b {
                        if *by != peer {
                            *dup = Some(peer);
                            out.push(
                                self.geometry
                                    .block(piece, n as u32)
                                    .expect("block index in range"),
                            );
                            if out.len() == max {
                                return out;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn rarest_missing(&self, peer_has: &Bitfield) -> Option<u32> {
        let n = self.state.len() as u32;
        let mut best: Option<(u32, u32)> = None;
        for k in 0..n {
            let i = (self.start + k) % n;
            if self.state[i as usize] == PieceState::Missing && peer_has.has_raw(i) {
                let a = self.availability[i as usize];
                if best.is_none_or(|(_, ba)| a < ba) {
                    best = Some((i, a));
                    if a <= 1 {
                        break;
                    }
                }
            }
        }
        best.map(|(i, _)| i)
    }

    fn start(&mut self, piece: PieceIndex, peer: PeerKey) {
        let i = piece.as_usize();
        let len = self.geometry.len_of(piece) as usize;
        // Every buffer holds a whole nominal piece (the last, shorter piece fits too).
        let (buf, offset) = match self.spare.pop() {
            Some(b) => {
                let offset = page_offset(&b);
                (b, offset)
            }
            None => aligned_vec(self.geometry.piece_len() as usize),
        };
        self.buffered += len as u64;
        self.state[i] = PieceState::Partial;
        self.missing -= 1;
        let owner = self.failed_before[i].then_some(peer);
        let blocks = vec![BlockState::Open; self.geometry.block_count(piece) as usize];
        self.partial.insert(
            piece.get(),
            Partial {
                blocks,
                received: 0,
                buf,
                offset,
                contributors: Vec::new(),
                owner,
            },
        );
    }

    /// Stores a block that arrived from `peer` (already checked to lie inside its piece).
    pub fn received(&mut self, peer: PeerKey, peer_id: PeerId, block: &Block, data: &[u8]) -> Received {
        let i = block.piece.get();
        let Some(p) = self.partial.get_mut(&i) else {
            return Received::NotNeeded;
        };
        let n = (block.begin / BLOCK_LEN) as usize;
        let expected = self.geometry.block(block.piece, n as u32);
        if block.begin % BLOCK_LEN != 0 || expected.map(|b| b.len) != Some(data.len() as u32) {
            return Received::NotNeeded;
        }
        let other = match p.blocks[n] {
            BlockState::Received => return Received::NotNeeded,
            BlockState::Requested { by, dup } if by == peer => dup,
            BlockState::Requested { by, dup: Some(d) } if d == peer => Some(by),
            BlockState::Requested { by, .. } => Some(by),
            BlockState::Open => None,
        };
        let at = p.offset + block.begin as usize;
        p.buf[at..at + data.len()].copy_from_slice(data);
        p.blocks[n] = BlockState::Received;
        p.received += 1;
        if !p.contributors.iter().any(|(k, _)| *k == peer) {
            p.contributors.push((peer, peer_id));
        }
        if p.received as usize == p.blocks.len() {
            let p = self.partial.remove(&i).expect("present above");
            self.state[i as usize] = PieceState::Verifying;
            let len = self.geometry.len_of(block.piece) as usize;
            return Received::Complete(Assembled {
                piece: block.piece,
                data: p.buf,
                offset: p.offset,
                len,
                contributors: p.contributors,
            });
        }
        match other {
            Some(o) if o != peer => Received::StoredCancel(o),
            _ => Received::Stored,
        }
    }

    /// Whether a new piece of `len` bytes fits this torrent's budget and (charging it
    /// there) the session's.
    fn room_for(&self, len: u64) -> bool {
        self.buffered + len <= self.max_buffered && self.budget.as_ref().is_none_or(|b| b.try_take(len))
    }

    /// Takes back the buffer of a piece that was hashed (and written), for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let keep = (self.max_buffered / u64::from(self.geometry.piece_len()).max(1)).max(1) as usize;
        if self.spare.len() < keep && !self.is_complete() {
            self.spare.push(buf);
        }
    }

    /// The hash check of a piece finished; `len` bytes of buffer are freed either way.
    /// Returns whether the torrent just completed.
    pub fn verified(&mut self, piece: PieceIndex, ok: bool) -> bool {
        let i = piece.as_usize();
        let len = u64::from(self.geometry.len_of(piece)).min(self.buffered);
        self.buffered -= len;
        if let Some(b) = &self.budget {
            b.give_back(len);
        }
        if self.state[i] != PieceState::Verifying {
            return false;
        }
        if ok {
            self.state[i] = PieceState::Have;
            self.have.set(piece);
            self.wanted_left = self.wanted_left.saturating_sub(1);
            let complete = self.is_complete();
            if complete {
                // Nothing more to fetch: the spare buffers go back to the allocator.
                self.spare = Vec::new();
            }
            complete
        } else {
            self.state[i] = PieceState::Missing;
            self.failed_before[i] = true;
            self.missing += 1;
            false
        }
    }
}

fn release(b: &mut BlockState, peer: PeerKey) {
    match *b {
        BlockState::Requested { by, dup: None } if by == peer => *b = BlockState::Open,
        BlockState::Requested { by, dup: Some(d) } if by == peer => {
            *b = BlockState::Requested { by: d, dup: None }
        }
        BlockState::Requested { by, dup: Some(d) } if d == peer => {
            *b = BlockState::Requested { by, dup: None }
        }
        _ => {}
    }
}

/// Piece indexes the picker made itself are in range by construction.
trait FromPicker {
    fn from_picker(g: Geometry, i: u32) -> PieceIndex;
}

impl FromPicker for PieceIndex {
    fn from_picker(g: Geometry, i: u32) -> PieceIndex {
        g.piece(i)
            .expect("the picker only holds indexes inside the torrent")
    }
}

impl Drop for Picker {
    /// Pieces still in progress when a torrent stops (or its picker is replaced after a
    /// check) give their bytes back to the session.
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give_back(self.buffered);
        }
    }
}

/// Bytes of pieces in progress over every torrent of a session (`SessionConfig::
/// max_buffered_bytes`): with each torrent's own `max_buffered_bytes`, what bounds a
/// session's memory however many torrents download at once. A torrent with nothing in
/// progress may always start one piece, so the total can pass the limit by at most one
/// piece per downloading torrent.
#[derive(Debug)]
pub struct MemoryBudget {
    used: AtomicU64,
    limit: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `n` bytes if they fit.
    fn try_take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    /// Charges `n` bytes whether they fit or not.
    fn take(&self, n: u64) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    fn give_back(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| Some(u.saturating_sub(n)));
    }
}

#[cfg(test)]
mod tests;
