//! How a torrent's byte stream maps onto its files.
//!
//! A torrent is one stream of bytes: its files laid end to end in manifest order. A piece
//! may span several files (and a file may hold many pieces). [`FileLayout::segments`] turns a
//! range of the stream into (file, offset, length) parts; empty files take no bytes and are
//! never part of a segment.
//!
//! BEP 47 pad files take their bytes in the stream like any file (the piece hashes cover them
//! as zeros) but exist nowhere: [`FileSpan::pad`] tells storage to read them as zeros, drop
//! writes to them and never create them.

use std::path::PathBuf;

/// One file of a torrent and where it lies in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpan {
    /// Path relative to the torrent's root, already checked to be safe (no `..`, not absolute,
    /// no empty components). For a single-file torrent this is the torrent's name.
    pub path: PathBuf,
    /// Length in bytes.
    pub len: u64,
    /// Offset of its first byte in the stream.
    pub offset: u64,
    /// A BEP 47 pad file: zeros, never stored.
    pub pad: bool,
}

/// A part of a stream range that lies in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index into [`FileLayout::files`].
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Offset inside the requested range.
    pub range_offset: u64,
    /// Length of this part.
    pub len: u64,
}

/// The files of a torrent laid end to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLayout {
    files: Vec<FileSpan>,
    total: u64,
}

impl FileLayout {
    /// Lays out files of the given (relative path, length), in order. `None` if the total
    /// overflows a `u64`.
    pub fn new(files: impl IntoIterator<Item = (PathBuf, u64)>) -> Option<Self> {
        Self::with_pads(files.into_iter().map(|(path, len)| (path, len, false)))
    }

    /// Lays out files of the given (relative path, length, is a pad file), in order. `None` if
    /// the total overflows a `u64`.
    pub fn with_pads(files: impl IntoIterator<Item = (PathBuf, u64, bool)>) -> Option<Self> {
        let mut total: u64 = 0;
        let files = files
            .into_iter()
            .map(|(path, len, pad)| {
                let span = FileSpan {
                    path,
                    len,
                    offset: total,
                    pad,
                };
                total = total.checked_add(len)?;
                Some(span)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { files, total })
    }

    /// The files, in stream order.
    pub fn files(&self) -> &[FileSpan] {
        &self.files
    }

    /// Total bytes of all files.
    pub fn total_len(&self) -> u64 {
        self.total
    }

    /// The parts of `len` bytes at stream `offset`, file by file. Bytes past the end of the
    /// stream are not covered.
    pub fn segments(&self, offset: u64, len: u64) -> impl Iterator<Item = Segment> + '_ {
        let end = offset.saturating_add(len).min(self.total);
        // First file whose end is past `offset`.
        let first = self.files.partition_point(|f| f.offset + f.len <= offset);
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < end)
            .filter(|(_, f)| f.len > 0)
            .map(move |(i, f)| {
                let start = offset.max(f.offset);
                let stop = end.min(f.offset + f.len);
                Segment {
                    file: first + i,
                    file_offset: start - f.offset,
                    range_offset: start - offset,
                    len: stop - start,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(lens: &[u64]) -> FileLayout {
        FileLayout::new(
            lens.iter()
                .enumerate()
                .map(|(i, &l)| (PathBuf::from(format!("f{i}")), l)),
        )
        .unwrap()
    }

    #[test]
    fn range_spanning_files_skips_empty_ones() {
        let l = layout(&[10, 0, 5, 20]);
        let segs: Vec<_> = l.segments(8, 10).collect();
        assert_eq!(
            segs,
            vec![
                Segment {
                    file: 0,
                    file_offset: 8,
                    range_offset: 0,
                    len: 2
                },
                Segment {
                    file: 2,
                    file_offset: 0,
                    range_offset: 2,
                    len: 5
                },
                Segment {
                    file: 3,
                    file_offset: 0,
                    range_offset: 7,
                    len: 3
                },
            ]
        );
    }

    #[test]
    fn every_byte_maps_once() {
        let l = layout(&[3, 0, 0, 7, 1, 16]);
        for off in 0..l.total_len() {
            for len in 1..=(l.total_len() - off) {
                let segs: Vec<_> = l.segments(off, len).collect();
                assert_eq!(segs.iter().map(|s| s.len).sum::<u64>(), len);
                let mut at = 0;
                for s in &segs {
                    assert_eq!(s.range_offset, at);
                    assert_eq!(l.files()[s.file].offset + s.file_offset, off + at);
                    at += s.len;
                }
            }
        }
    }

    #[test]
    fn past_the_end_is_cut() {
        let l = layout(&[4]);
        assert_eq!(l.segments(2, 100).map(|s| s.len).sum::<u64>(), 2);
        assert_eq!(l.segments(4, 1).count(), 0);
        assert!(FileLayout::new([(PathBuf::from("a"), u64::MAX), (PathBuf::from("b"), 1)]).is_none());
    }
}
