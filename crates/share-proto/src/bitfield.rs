//! Which pieces a peer has: one bit per piece, high bit first, as on the wire (BEP 3).
//!
//! A bitfield from the wire is checked once in [`Bitfield::from_wire`]: exactly
//! `ceil(pieces / 8)` bytes and no spare bits set past the last piece.

use crate::geometry::PieceIndex;

/// A bitfield of `len` pieces.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

/// Why a bitfield from the wire is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    /// Not `ceil(pieces / 8)` bytes.
    #[error("bitfield is {got} bytes, but {pieces} pieces need {want}")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        want: usize,
        /// Pieces in the torrent.
        pieces: u32,
    },
    /// Bits set past the last piece.
    #[error("bitfield has spare bits set past piece {0}")]
    SpareBits(u32),
}

impl Bitfield {
    /// No pieces.
    pub fn new(len: u32) -> Self {
        Self {
            bytes: vec![0; (len as usize).div_ceil(8)],
            len,
            ones: 0,
        }
    }

    /// Every piece.
    pub fn full(len: u32) -> Self {
        let mut b = Self::new(len);
        for i in 0..len {
            b.set_raw(i);
        }
        b
    }

    /// Checks a bitfield received from a peer.
    pub fn from_wire(bytes: &[u8], len: u32) -> Result<Self, BitfieldError> {
        let want = (len as usize).div_ceil(8);
        if bytes.len() != want {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                want,
                pieces: len,
            });
        }
        let spare = (want * 8) as u32 - len;
        if spare > 0 {
            let mask = (1u8 << spare) - 1;
            if bytes[want - 1] & mask != 0 {
                return Err(BitfieldError::SpareBits(len - 1));
            }
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Self {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    /// Number of pieces the field covers.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it covers no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the piece is set.
    pub fn has(&self, piece: PieceIndex) -> bool {
        self.has_raw(piece.get())
    }

    /// Whether bit `i` is set (false past the end).
    pub fn has_raw(&self, i: u32) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Sets the piece; returns whether it was newly set.
    pub fn set(&mut self, piece: PieceIndex) -> bool {
        self.set_raw(piece.get())
    }

    fn set_raw(&mut self, i: u32) -> bool {
        if i >= self.len || self.has_raw(i) {
            return false;
        }
        self.bytes[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    /// Number of pieces set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every piece is set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Indexes of the pieces set.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.has_raw(i))
    }

    /// The wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{})", self.ones, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Geometry;

    #[test]
    fn wire_checks() {
        assert!(Bitfield::from_wire(&[0xff, 0xc0], 10).is_ok());
        assert_eq!(
            Bitfield::from_wire(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBits(9))
        );
        assert_eq!(
            Bitfield::from_wire(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                want: 2,
                pieces: 10
            })
        );
        assert!(Bitfield::from_wire(&[0xff, 0xff, 0], 10).is_err());
        let b = Bitfield::from_wire(&[0b1010_0000], 3).unwrap();
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(b.count(), 2);
        assert!(!b.has_raw(1) && !b.has_raw(99));
    }

    #[test]
    fn set_and_full() {
        let g = Geometry::new(10 * 16_384, 16_384).unwrap();
        let mut b = Bitfield::new(10);
        for p in g.pieces() {
            assert!(b.set(p));
            assert!(!b.set(p));
        }
        assert!(b.is_full());
        assert_eq!(b, Bitfield::full(10));
        assert_eq!(b.as_bytes(), &[0xff, 0xc0]);
        assert_eq!(Bitfield::from_wire(b.as_bytes(), 10).unwrap(), b);
    }
}
