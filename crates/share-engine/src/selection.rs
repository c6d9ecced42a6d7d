//! A partial fetch (`share fetch --only`): which pieces a selection of files wants, and the
//! storage that keeps the bytes of skipped files out of the output.
//!
//! Pieces are verified whole, so a wanted piece that also covers a skipped file brings bytes
//! of that file. They are never written into it (the user did not ask for it, and a skipped
//! file is never created), and they are not thrown away either: we seed that piece, and a
//! rerun must verify it. So every write that touches a skipped file (a piece straddling a
//! selected and a skipped file) is also written whole into the **side file**, at its offset
//! in the torrent's stream, and reads of a skipped file's bytes come from there. The side
//! file is sparse: only those pieces take space, at most two per selected file.
//!
//! It lives in the state directory beside the resume record (`record.rs`): never in the
//! user's output, never colliding with a file of the torrent, opened without following a
//! link. A later fetch of the same output that wants more (another `--only`, or none) reads
//! the pieces its files lack from there (`Storage::read_aside`), hashes them, and writes
//! them where it keeps them (`check.rs`); a fetch of every file removes the side file once
//! its resume check is over. Nothing read from the side file is trusted unhashed: a damaged
//! or stale one costs a download, never a wrong byte.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use share_proto::bitfield::Bitfield;
use share_proto::layout::FileLayout;
use share_proto::metainfo::Metainfo;

use crate::config::Config;
use crate::error::TorrentError;
use crate::storage::{FileStorage, Storage};

/// The files a fetch selected (`Config::select`), one flag per file of the layout with pad
/// files counted as selected (storage reads them as zeros); `None` when every file is (then
/// nothing differs from an ordinary fetch).
pub(crate) fn mask(meta: &Metainfo, config: &Config) -> Result<Option<Vec<bool>>, TorrentError> {
    let Some(select) = &config.select else {
        return Ok(None);
    };
    let files = meta.layout().files();
    if select.len() != files.len() {
        return Err(TorrentError::Internal(format!(
            "a selection of {} files for a torrent of {}",
            select.len(),
            files.len()
        )));
    }
    let mask: Vec<bool> = files.iter().zip(select).map(|(f, &s)| s || f.pad).collect();
    Ok((!mask.iter().all(|&s| s)).then_some(mask))
}

/// The pieces a fetch with `config` wants.
pub(crate) fn wanted(meta: &Metainfo, config: &Config) -> Result<Bitfield, TorrentError> {
    Ok(wanted_pieces(meta, mask(meta, config)?.as_deref()))
}

/// The pieces holding bytes of a selected file (every piece without a selection).
pub(crate) fn wanted_pieces(meta: &Metainfo, mask: Option<&[bool]>) -> Bitfield {
    let g = meta.geometry();
    let Some(mask) = mask else {
        return Bitfield::full(g.piece_count());
    };
    let piece_len = u64::from(g.piece_len());
    let mut wanted = Bitfield::new(g.piece_count());
    for (f, _) in meta
        .layout()
        .files()
        .iter()
        .zip(mask)
        .filter(|(f, &s)| s && !f.pad && f.len > 0)
    {
        let (first, last) = (f.offset / piece_len, (f.offset + f.len - 1) / piece_len);
        for i in first..=last {
            if let Some(piece) = g.piece(i as u32) {
                wanted.set(piece);
            }
        }
    }
    wanted
}

/// A fetch's storage: the files it writes, and the side file of a partial fetch.
#[derive(Debug)]
pub(crate) struct FetchStorage {
    files: FileStorage,
    layout: FileLayout,
    /// Per file of the layout: kept in its own file. `None`: every file is.
    mask: Option<Vec<bool>>,
    /// Always there for a partial fetch; for a full one, only if an earlier partial fetch
    /// left one (read by the resume check, then removed).
    side: Option<Side>,
}

#[derive(Debug)]
struct Side {
    file: File,
    path: PathBuf,
}

impl FetchStorage {
    /// Wraps the opened `files`. A partial fetch (`mask`) opens or creates its side file at
    /// `side` (none: no state directory, which a partial fetch needs); a full one opens an
    /// existing side file there to read from.
    pub fn new(
        files: FileStorage,
        layout: FileLayout,
        mask: Option<Vec<bool>>,
        side: Option<PathBuf>,
    ) -> Result<Self, TorrentError> {
        let side = match (&mask, side) {
            (Some(_), None) => return Err(TorrentError::NoStateDir),
            (Some(_), Some(path)) => Some(Side::create(path)?),
            (None, Some(path)) => Side::open_existing(path),
            (None, None) => None,
        };
        Ok(Self {
            files,
            layout,
            mask,
            side,
        })
    }

    fn selected(&self, file: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[file])
    }

    fn side(&self) -> Result<&Side, TorrentError> {
        self.side
            .as_ref()
            .ok_or_else(|| TorrentError::Internal("a partial fetch without its side file".into()))
    }
}

impl Side {
    fn create(path: PathBuf) -> Result<Side, TorrentError> {
        let err = |source| TorrentError::Storage {
            op: "create the side file",
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(err)?;
        Ok(Side { file, path })
    }

    fn open_existing(path: PathBuf) -> Option<Side> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        Some(Side { file, path })
    }
}

impl Storage for FetchStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TorrentError> {
        if self.mask.is_none() {
            return self.files.read_at(offset, buf);
        }
        for seg in self.layout.segments(offset, buf.len() as u64) {
            let at = offset + seg.range_offset;
            let part = &mut buf[seg.range_offset as usize..(seg.range_offset + seg.len) as usize];
            if self.selected(seg.file) {
                self.files.read_at(at, part)?;
            } else {
                let side = self.side()?;
                side.file
                    .read_exact_at(part, at)
                    .map_err(|source| TorrentError::Unreadable {
                        file: seg.file,
                        path: side.path.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), TorrentError> {
        if self.mask.is_none() {
            return self.files.write_at(offset, data);
        }
        let mut straddles = false;
        for seg in self.layout.segments(offset, data.len() as u64) {
            if self.selected(seg.file) {
                let part = &data[seg.range_offset as usize..(seg.range_offset + seg.len) as usize];
                self.files.write_at(offset + seg.range_offset, part)?;
            } else {
                straddles = true;
            }
        }
        if straddles {
            // Whole, so that a later fetch reads the piece back from one place.
            let side = self.side()?;
            side.file
                .write_all_at(data, offset)
                .map_err(|source| TorrentError::Storage {
                    op: "write",
                    path: side.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), TorrentError> {
        self.files.sync()
    }

    fn read_aside(&self, offset: u64, buf: &mut [u8]) -> bool {
        self.side
            .as_ref()
            .is_some_and(|s| s.file.read_exact_at(buf, offset).is_ok())
    }

    fn check_done(&self) -> Result<(), TorrentError> {
        match (&self.mask, &self.side) {
            (None, Some(side)) => match std::fs::remove_file(&side.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(TorrentError::Storage {
                    op: "remove the side file",
                    path: side.path.clone(),
                    source: e,
                }),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Where the side file of the resume record at `record` is.
pub(crate) fn side_path(record: &Path) -> PathBuf {
    record.with_extension("parts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(lens: &[u64]) -> FileLayout {
        FileLayout::new(
            lens.iter()
                .enumerate()
                .map(|(i, &l)| (PathBuf::from(format!("d/f{i}")), l)),
        )
        .unwrap()
    }

    fn partial(dir: &Path, l: &FileLayout, mask: &[bool]) -> FetchStorage {
        let paths: Vec<_> = l.files().iter().map(|f| dir.join(&f.path)).collect();
        let files = FileStorage::create_selected(l.clone(), paths, dir, true, mask).unwrap();
        FetchStorage::new(
            files,
            l.clone(),
            Some(mask.to_vec()),
            Some(dir.join("state/x.parts")),
        )
        .unwrap()
    }

    /// A directory torrent of files of `lens` bytes, 16 KiB pieces.
    fn manifest(dir: &Path, lens: &[usize]) -> Metainfo {
        let src = dir.join("src");
        for (i, &len) in lens.iter().enumerate() {
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join(format!("f{i}")), vec![i as u8; len]).unwrap();
        }
        crate::test_util::manifest_of(&src)
    }

    #[test]
    fn the_wanted_pieces_are_those_holding_a_selected_file() {
        let dir = tempfile::tempdir().unwrap();
        // Stream: f0 0..5000, f1 5000..25000, f2 25000..25003, f3 empty, f4 25003..65003:
        // pieces 0..=3 of 16 KiB, 65003 bytes in all.
        let meta = manifest(dir.path(), &[5000, 20_000, 3, 0, 40_000]);
        let ones = |select: [bool; 5]| {
            let config = Config {
                select: Some(select.to_vec()),
                ..Config::default()
            };
            wanted(&meta, &config).unwrap().ones().collect::<Vec<_>>()
        };
        assert_eq!(ones([false, true, false, false, false]), [0, 1]);
        assert_eq!(
            ones([false, false, true, false, false]),
            [1],
            "three bytes, one piece"
        );
        assert_eq!(ones([true, false, false, false, true]), [0, 1, 2, 3]);
        assert_eq!(
            ones([false, false, false, true, false]),
            [] as [u32; 0],
            "an empty file needs no piece"
        );
        let all = Config {
            select: Some(vec![true; 5]),
            ..Config::default()
        };
        assert_eq!(mask(&meta, &all).unwrap(), None, "every file: an ordinary fetch");
        assert!(wanted(&meta, &all).unwrap().is_full());
        let wrong = Config {
            select: Some(vec![true; 4]),
            ..Config::default()
        };
        assert!(mask(&meta, &wrong).is_err());
    }

    #[test]
    fn bytes_of_skipped_files_go_to_the_side_file_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(&[5, 7, 3]);
        let s = partial(dir.path(), &l, &[false, true, false]);
        assert!(!dir.path().join("d/f0").exists() && !dir.path().join("d/f2").exists());
        // One "piece" over all three files: the middle file gets its part, the side the whole.
        let data: Vec<u8> = (1..=15).collect();
        s.write_at(0, &data).unwrap();
        assert_eq!(std::fs::read(dir.path().join("d/f1")).unwrap(), &data[5..12]);
        assert!(
            !dir.path().join("d/f0").exists() && !dir.path().join("d/f2").exists(),
            "skipped files are never created"
        );
        let side = std::fs::read(dir.path().join("state/x.parts")).unwrap();
        assert_eq!(side, data, "the straddling write, whole, at its stream offset");
        let mut back = [0u8; 15];
        s.read_at(0, &mut back).unwrap();
        assert_eq!(back.as_slice(), data.as_slice());
        // A write inside the selected file alone leaves the side file alone.
        s.write_at(6, &[9, 9]).unwrap();
        assert_eq!(std::fs::read(dir.path().join("state/x.parts")).unwrap(), data);
        // A later partial fetch with another selection reads skipped parts the same way.
        drop(s);
        let again = partial(dir.path(), &l, &[false, true, false]);
        let mut back = [0u8; 5];
        again.read_at(0, &mut back).unwrap();
        assert_eq!(back, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_full_fetch_reads_the_side_file_aside_then_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(&[5, 7, 3]);
        let data: Vec<u8> = (1..=15).collect();
        partial(dir.path(), &l, &[false, true, false])
            .write_at(0, &data)
            .unwrap();
        let paths: Vec<_> = l.files().iter().map(|f| dir.path().join(&f.path)).collect();
        let files = FileStorage::create(l.clone(), paths, dir.path(), true).unwrap();
        let side = dir.path().join("state/x.parts");
        let full = FetchStorage::new(files, l.clone(), None, Some(side.clone())).unwrap();
        let mut buf = [0u8; 15];
        full.read_at(0, &mut buf).unwrap();
        assert_ne!(
            buf.as_slice(),
            data.as_slice(),
            "the new files do not hold it yet"
        );
        assert!(full.read_aside(0, &mut buf));
        assert_eq!(buf.as_slice(), data.as_slice());
        full.write_at(0, &buf).unwrap();
        assert_eq!(std::fs::read(dir.path().join("d/f0")).unwrap(), &data[..5]);
        full.check_done().unwrap();
        assert!(!side.exists(), "no longer needed");
        assert!(!full.read_aside(15, &mut buf), "past the end there is nothing");
    }

    #[test]
    fn the_side_file_is_not_opened_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("state/x.parts")).unwrap();
        let l = layout(&[5, 7]);
        let paths: Vec<_> = l.files().iter().map(|f| dir.path().join(&f.path)).collect();
        let mask = [false, true];
        let files = FileStorage::create_selected(l.clone(), paths, dir.path(), true, &mask).unwrap();
        let e = FetchStorage::new(
            files,
            l,
            Some(mask.to_vec()),
            Some(dir.path().join("state/x.parts")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("side file"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
