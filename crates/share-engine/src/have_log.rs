//! The log of verified pieces: every piece in the order it was verified. Each peer task
//! remembers how far it has told its peer (a position in the log) and sends `Have` for what
//! came after, woken by the torrent's `have_changed` watch (which carries the log's length).
//! Plain data under the torrent's lock; it only grows while the torrent runs (a resume check
//! sets it once, before any peer connects).

/// Pieces in the order they were verified.
#[derive(Debug, Default)]
pub(crate) struct HaveLog {
    pieces: Vec<u32>,
}

impl HaveLog {
    /// A log that starts with `pieces` (those trusted or found when it starts).
    pub fn from_pieces(pieces: impl IntoIterator<Item = u32>) -> Self {
        Self {
            pieces: pieces.into_iter().collect(),
        }
    }

    /// Appends a verified piece; returns the log's new length (what `have_changed` sends).
    pub fn push(&mut self, piece: u32) -> usize {
        self.pieces.push(piece);
        self.pieces.len()
    }

    /// The position after the last entry.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// The pieces after position `told`, and the position after them.
    pub fn since(&self, told: usize) -> (Vec<u32>, usize) {
        let from = told.min(self.pieces.len());
        (self.pieces[from..].to_vec(), self.pieces.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reader_gets_what_came_after_its_position_once() {
        let mut log = HaveLog::from_pieces([4, 1]);
        assert_eq!(log.since(0), (vec![4, 1], 2));
        assert_eq!(log.push(7), 3);
        let (new, told) = log.since(2);
        assert_eq!((new, told), (vec![7], 3));
        assert_eq!(log.since(told), (vec![], 3));
        // A position past the end (never handed out) reads nothing rather than panicking.
        assert_eq!(log.since(99), (vec![], 3));
    }
}
