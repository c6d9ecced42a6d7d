//! Where a torrent's bytes live: positioned reads and writes (`pread`/`pwrite`) over the files
//! of its [`FileLayout`], behind the small synchronous [`Storage`] trait. Callers run it on
//! the blocking pool, never on the async workers.
//!
//! Output safety: every path is the output root joined with components the metainfo parser
//! already checked (no `..`, not absolute, no empty parts), and before a file is created each
//! existing ancestor below the root is checked not to be a symlink, so a manifest cannot make
//! us write outside the output.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use share_proto::aligned::aligned_vec;
use share_proto::layout::FileLayout;
use share_proto::metainfo::Metainfo;

use crate::error::TorrentError;

/// Positioned access to a torrent's byte stream.
pub trait Storage: Send + Sync + 'static {
    /// Fills `buf` from stream offset `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TorrentError>;
    /// Writes `data` at stream offset `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), TorrentError>;
    /// Flushes written data to stable storage.
    fn sync(&self) -> Result<(), TorrentError>;
}

/// The files of a torrent on the local file system.
#[derive(Debug)]
pub struct FileStorage {
    layout: FileLayout,
    paths: Vec<PathBuf>,
    files: Vec<Option<File>>,
}

/// Where each file of `meta` goes when the torrent is saved as `out`: a single-file torrent
/// is `out` itself; a directory torrent's files go below the directory `out`.
pub fn output_paths(meta: &Metainfo, out: &Path) -> Vec<PathBuf> {
    if meta.info.multi_file {
        meta.layout().files().iter().map(|f| out.join(&f.path)).collect()
    } else {
        vec![out.to_path_buf()]
    }
}

impl FileStorage {
    /// Opens existing files read-only (seeding data we already have).
    pub fn open(layout: FileLayout, paths: Vec<PathBuf>) -> Result<Self, TorrentError> {
        let files = layout
            .files()
            .iter()
            .zip(&paths)
            .map(|(f, path)| {
                let file = File::open(path).map_err(|source| storage_err("open", path, source))?;
                let len = file
                    .metadata()
                    .map_err(|source| storage_err("open", path, source))?
                    .len();
                if len != f.len {
                    let why = io::Error::other(format!("it is {len} bytes, the manifest says {}", f.len));
                    return Err(storage_err("seed", path, why));
                }
                Ok(Some(file))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { layout, paths, files })
    }

    /// Opens or creates the files for writing below `root`, sized as the manifest says
    /// (sparse), keeping what is already there for the resume check.
    pub fn create(layout: FileLayout, paths: Vec<PathBuf>, root: &Path) -> Result<Self, TorrentError> {
        let mut files = Vec::with_capacity(paths.len());
        for (f, path) in layout.files().iter().zip(&paths) {
            check_no_symlinks(root, path)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| storage_err("create", parent, source))?;
                check_no_symlinks(root, path)?;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|source| storage_err("create", path, source))?;
            let len = file
                .metadata()
                .map_err(|source| storage_err("create", path, source))?
                .len();
            if len != f.len {
                file.set_len(f.len)
                    .map_err(|source| storage_err("size", path, source))?;
            }
            files.push(Some(file));
        }
        Ok(Self { layout, paths, files })
    }

    /// Whether any file already holds data (then a resume check is worth running).
    pub fn has_existing_data(layout: &FileLayout, paths: &[PathBuf]) -> bool {
        layout
            .files()
            .iter()
            .zip(paths)
            .any(|(f, p)| f.len > 0 && p.metadata().is_ok_and(|m| m.len() > 0))
    }

    fn each_segment(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(&File, u64, std::ops::Range<usize>) -> io::Result<()>,
        op: &'static str,
    ) -> Result<(), TorrentError> {
        for seg in self.layout.segments(offset, len as u64) {
            let path = &self.paths[seg.file];
            let file = self.files[seg.file]
                .as_ref()
                .ok_or_else(|| storage_err(op, path, io::ErrorKind::NotFound.into()))?;
            let range = seg.range_offset as usize..(seg.range_offset + seg.len) as usize;
            f(file, seg.file_offset, range).map_err(|source| storage_err(op, path, source))?;
        }
        Ok(())
    }
}

impl Storage for FileStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TorrentError> {
        let len = buf.len();
        self.each_segment(
            offset,
            len,
            |file, at, range| file.read_exact_at(&mut buf[range], at),
            "read",
        )
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), TorrentError> {
        self.each_segment(
            offset,
            data.len(),
            |file, at, range| file.write_all_at(&data[range], at),
            "write",
        )
    }

    fn sync(&self) -> Result<(), TorrentError> {
        for (file, path) in self.files.iter().zip(&self.paths) {
            if let Some(file) = file {
                file.sync_data()
                    .map_err(|source| storage_err("sync", path, source))?;
            }
        }
        Ok(())
    }
}

/// Storage for a torrent joined only to chat: it has no data, and is never asked for any
/// (we never announce a piece), so every call is an error.
#[derive(Debug)]
pub struct NoStorage;

impl Storage for NoStorage {
    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<(), TorrentError> {
        Err(TorrentError::Internal(
            "a chat-only torrent has no data to read".into(),
        ))
    }

    fn write_at(&self, _: u64, _: &[u8]) -> Result<(), TorrentError> {
        Err(TorrentError::Internal(
            "a chat-only torrent stores no data".into(),
        ))
    }

    fn sync(&self) -> Result<(), TorrentError> {
        Ok(())
    }
}

fn storage_err(op: &'static str, path: &Path, source: io::Error) -> TorrentError {
    TorrentError::Storage {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses when `path` or any ancestor strictly below `root` is a symlink (or a non-directory
/// ancestor): a manifest's file must land inside the output, not where a link points.
fn check_no_symlinks(root: &Path, path: &Path) -> Result<(), TorrentError> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match at.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(TorrentError::UnsafeOutput {
                    path: at,
                    why: "it is a symbolic link",
                })
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Reads `len` bytes at `offset` into a new aligned buffer, returned as `Bytes` without a copy.
pub fn read_bytes(storage: &dyn Storage, offset: u64, len: usize) -> Result<Bytes, TorrentError> {
    let (mut v, off) = aligned_vec(len);
    storage.read_at(offset, &mut v[off..off + len])?;
    Ok(Bytes::from(v).slice(off..off + len))
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

    #[test]
    fn writes_span_files_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(&[5, 0, 7, 3]);
        let paths: Vec<_> = l.files().iter().map(|f| dir.path().join(&f.path)).collect();
        let s = FileStorage::create(l.clone(), paths.clone(), dir.path()).unwrap();
        s.write_at(3, b"abcdefghij").unwrap();
        let back = read_bytes(&s, 3, 10).unwrap();
        assert_eq!(&back[..], b"abcdefghij");
        assert_eq!(std::fs::read(&paths[0]).unwrap(), b"\0\0\0ab");
        assert_eq!(std::fs::read(&paths[2]).unwrap(), b"cdefghi");
        assert_eq!(std::fs::read(&paths[3]).unwrap(), b"j\0\0");
        assert_eq!(std::fs::metadata(&paths[1]).unwrap().len(), 0);
        assert!(FileStorage::has_existing_data(&l, &paths));
        let ro = FileStorage::open(l, paths).unwrap();
        assert!(ro.write_at(0, b"x").is_err(), "opened read-only");
    }

    #[test]
    fn refuses_symlinks_inside_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("d")).unwrap();
        let l = layout(&[4]);
        let paths: Vec<_> = l.files().iter().map(|f| root.join(&f.path)).collect();
        let e = FileStorage::create(l, paths, &root).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside"
        );
    }

    #[test]
    fn seeding_checks_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(&[4]);
        let p = dir.path().join("d/f0");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"abc").unwrap();
        let e = FileStorage::open(l, vec![p]).unwrap_err();
        assert!(format!("{e} {:?}", std::error::Error::source(&e)).contains("3 bytes, the manifest says 4"));
    }
}
