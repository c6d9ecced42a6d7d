//! Piece geometry: how a torrent's bytes divide into pieces and 16 KiB blocks.
//!
//! [`PieceIndex`] and [`Block`] can only be made by a [`Geometry`], which checks them, so code
//! downstream of the codec never re-checks an index or panics on one (the rqbit habit).

use std::fmt;

/// The block size every client requests: 16 KiB.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// A piece index known to be inside its torrent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceIndex(u32);

impl PieceIndex {
    /// The index as a number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`, for indexing per-piece tables.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "piece {}", self.0)
    }
}

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A block known to lie inside its piece: `len` bytes at `begin` of `piece`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    /// The piece it belongs to.
    pub piece: PieceIndex,
    /// Offset inside the piece.
    pub begin: u32,
    /// Length in bytes, at most [`MAX_REQUEST_LEN`].
    pub len: u32,
}

/// The largest request we serve (the design caps requests at 128 KiB).
pub const MAX_REQUEST_LEN: u32 = 128 * 1024;

/// Why a geometry cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// A piece length of zero.
    #[error("piece length is zero")]
    ZeroPieceLength,
    /// A torrent with no bytes.
    #[error("the torrent holds no data (total length is 0)")]
    Empty,
    /// More pieces than fit in a `u32`.
    #[error("{0} pieces is more than a torrent may have")]
    TooManyPieces(u64),
}

/// Why a block from the wire (a request or piece data) does not fit the torrent: each says
/// what is wrong with it, so a peer's disconnect reason is worth reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The piece index is past the last piece.
    #[error("there is no piece {index} (the torrent has {count} pieces)")]
    NoSuchPiece {
        /// The index asked for.
        index: u32,
        /// How many pieces there are.
        count: u32,
    },
    /// Zero bytes.
    #[error("it is empty")]
    Empty,
    /// Longer than any block we accept.
    #[error("it is {0} bytes long, over the {MAX_REQUEST_LEN} a block may be")]
    TooLong(u32),
    /// Runs past the end of its piece (a misaligned or oversize block).
    #[error("it ends at byte {end} of the piece, past its end at {piece_len}")]
    PastPiece {
        /// Where it ends (begin + length), inside the piece's numbering.
        end: u64,
        /// The piece's length.
        piece_len: u32,
    },
}

/// The division of `total_len` bytes into pieces of `piece_len` (the last one shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    total_len: u64,
    piece_len: u32,
    piece_count: u32,
}

impl Geometry {
    /// Checks and builds the geometry.
    pub fn new(total_len: u64, piece_len: u32) -> Result<Self, GeometryError> {
        if piece_len == 0 {
            return Err(GeometryError::ZeroPieceLength);
        }
        if total_len == 0 {
            return Err(GeometryError::Empty);
        }
        let count = total_len.div_ceil(u64::from(piece_len));
        let piece_count = u32::try_from(count).map_err(|_| GeometryError::TooManyPieces(count))?;
        Ok(Self {
            total_len,
            piece_len,
            piece_count,
        })
    }

    /// Total bytes.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// The nominal piece length (every piece but possibly the last).
    pub fn piece_len(&self) -> u32 {
        self.piece_len
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// `i` as a checked index, if it is inside the torrent.
    pub fn piece(&self, i: u32) -> Option<PieceIndex> {
        (i < self.piece_count).then_some(PieceIndex(i))
    }

    /// Every piece, in order.
    pub fn pieces(&self) -> impl Iterator<Item = PieceIndex> + use<> {
        (0..self.piece_count).map(PieceIndex)
    }

    /// Offset of the piece's first byte in the torrent.
    pub fn piece_offset(&self, piece: PieceIndex) -> u64 {
        u64::from(piece.0) * u64::from(self.piece_len)
    }

    /// Length of this piece: the nominal length, or what is left for the last one.
    pub fn len_of(&self, piece: PieceIndex) -> u32 {
        let rest = self.total_len - self.piece_offset(piece);
        // rest > 0 because piece < piece_count; min() keeps it within u32.
        rest.min(u64::from(self.piece_len)) as u32
    }

    /// Number of 16 KiB blocks in this piece.
    pub fn block_count(&self, piece: PieceIndex) -> u32 {
        self.len_of(piece).div_ceil(BLOCK_LEN)
    }

    /// The `n`th block of a piece, if there is one.
    pub fn block(&self, piece: PieceIndex, n: u32) -> Option<Block> {
        let begin = n.checked_mul(BLOCK_LEN)?;
        let piece_len = self.len_of(piece);
        (begin < piece_len).then(|| Block {
            piece,
            begin,
            len: (piece_len - begin).min(BLOCK_LEN),
        })
    }

    /// Every block of a piece, in order.
    pub fn blocks(&self, piece: PieceIndex) -> impl Iterator<Item = Block> + '_ {
        (0..self.block_count(piece)).filter_map(move |n| self.block(piece, n))
    }

    /// Checks a request or piece message from the wire: inside the torrent and the piece,
    /// non-empty, at most [`MAX_REQUEST_LEN`] long; the error says which.
    pub fn check_block(&self, index: u32, begin: u32, len: u32) -> Result<Block, BlockError> {
        let piece = self.piece(index).ok_or(BlockError::NoSuchPiece {
            index,
            count: self.piece_count,
        })?;
        if len == 0 {
            return Err(BlockError::Empty);
        }
        if len > MAX_REQUEST_LEN {
            return Err(BlockError::TooLong(len));
        }
        let end = u64::from(begin) + u64::from(len);
        let piece_len = self.len_of(piece);
        if end > u64::from(piece_len) {
            return Err(BlockError::PastPiece { end, piece_len });
        }
        Ok(Block { piece, begin, len })
    }

    /// Offset of a block's first byte in the torrent.
    pub fn block_offset(&self, block: &Block) -> u64 {
        self.piece_offset(block.piece) + u64::from(block.begin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_last_piece_and_blocks() {
        let g = Geometry::new(100_000, 32_768).unwrap();
        assert_eq!(g.piece_count(), 4);
        let last = g.piece(3).unwrap();
        assert_eq!(g.len_of(last), 100_000 - 3 * 32_768);
        assert_eq!(g.block_count(last), 1);
        assert_eq!(g.block(last, 0).unwrap().len, 1_696);
        assert!(g.block(last, 1).is_none());
        assert!(g.piece(4).is_none());
        let first = g.piece(0).unwrap();
        let blocks: Vec<_> = g.blocks(first).collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[1].begin, blocks[1].len), (16_384, 16_384));
        let sum: u64 = g
            .pieces()
            .flat_map(|p| g.blocks(p).collect::<Vec<_>>())
            .map(|b| u64::from(b.len))
            .sum();
        assert_eq!(sum, 100_000);
    }

    #[test]
    fn exact_multiple_has_full_last_piece() {
        let g = Geometry::new(65_536, 16_384).unwrap();
        assert_eq!(g.piece_count(), 4);
        assert_eq!(g.len_of(g.piece(3).unwrap()), 16_384);
    }

    #[test]
    fn rejects_bad_geometry() {
        assert_eq!(Geometry::new(0, 16_384), Err(GeometryError::Empty));
        assert_eq!(Geometry::new(10, 0), Err(GeometryError::ZeroPieceLength));
        assert!(matches!(
            Geometry::new(u64::MAX, 1),
            Err(GeometryError::TooManyPieces(_))
        ));
    }

    #[test]
    fn checks_wire_blocks() {
        let g = Geometry::new(100_000, 32_768).unwrap();
        assert!(g.check_block(0, 0, 16_384).is_ok());
        assert!(g.check_block(0, 16_384, 16_384).is_ok());
        let why = |i, b, l| g.check_block(i, b, l).unwrap_err().to_string();
        // A misaligned block that runs past its piece says so, not "outside the torrent".
        assert_eq!(
            why(0, 16_385, 16_384),
            "it ends at byte 32769 of the piece, past its end at 32768"
        );
        assert_eq!(
            why(3, 0, 1_697),
            "it ends at byte 1697 of the piece, past its end at 1696"
        );
        assert_eq!(why(4, 0, 1), "there is no piece 4 (the torrent has 4 pieces)");
        assert_eq!(why(0, 0, 0), "it is empty");
        assert_eq!(
            why(0, u32::MAX, 2),
            "it ends at byte 4294967297 of the piece, past its end at 32768"
        );
        let big = Geometry::new(1 << 30, 1 << 20).unwrap();
        assert!(big.check_block(0, 0, MAX_REQUEST_LEN).is_ok());
        assert_eq!(
            big.check_block(0, 0, MAX_REQUEST_LEN + 1),
            Err(BlockError::TooLong(MAX_REQUEST_LEN + 1))
        );
        assert_eq!(
            big.check_block(0, 0, MAX_REQUEST_LEN + 1)
                .unwrap_err()
                .to_string(),
            "it is 131073 bytes long, over the 131072 a block may be"
        );
    }
}
