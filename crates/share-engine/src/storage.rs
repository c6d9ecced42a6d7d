//! Where a torrent's bytes live: positioned reads and writes (`pread`/`pwrite`) over the files
//! of its [`FileLayout`], behind the small synchronous [`Storage`] trait. Callers run it on
//! the blocking pool, never on the async workers.
//!
//! Output safety: every path is the output root joined with components the metainfo parser
//! already checked (no `..`, not absolute, no empty parts), and before a file is created
//! [`check_output`] walks every component below the root, however the paths are spelt, and
//! refuses a symbolic link anywhere there (so neither a manifest nor a planted link can make
//! us write outside the output). Which existing files may be written at all is decided
//! before this, in `claim.rs`.
//!
//! BEP 47 pad files (`FileSpan::pad`) are never opened or created: reads of their ranges
//! give zeros, writes to them are dropped.
//!
//! Direct writes: verified pieces leave page-aligned buffers, so when a write's buffer, file
//! offset and length are all multiples of the page size ([`PAGE`], which covers every logical
//! block size in use) it goes through a second handle opened with `O_DIRECT`: the disk reads
//! it from our buffer, and the kernel neither copies it into the page cache nor allocates
//! cache pages for it. On this machine class that copy was a
//! quarter of a fetch's CPU time, and buffered writes of 1 GiB took 0.5-5 s of system time
//! where direct ones took 0.9-1.4 s of wall time (`bench/README.md`). Anything unaligned (the
//! short last piece, pieces that straddle files) and any file system that refuses `O_DIRECT`
//! (tmpfs) uses the ordinary handle; a direct write that fails is retried through it, so the
//! error reported is always the ordinary one. Reads always use the ordinary handle; the
//! kernel keeps the two coherent.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use share_proto::aligned::{aligned_vec, PAGE};
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
    /// Fills `buf` from stream offset `offset` out of the copy a partial fetch kept aside
    /// (`selection.rs`); false if there is none. The caller hashes it before trusting it.
    fn read_aside(&self, _offset: u64, _buf: &mut [u8]) -> bool {
        false
    }
    /// The resume check is over (and was not cancelled): copies kept aside that this fetch
    /// no longer needs may go.
    fn check_done(&self) -> Result<(), TorrentError> {
        Ok(())
    }
}

/// The files of a torrent on the local file system.
#[derive(Debug)]
pub struct FileStorage {
    layout: FileLayout,
    paths: Vec<PathBuf>,
    files: Vec<Option<File>>,
    /// `O_DIRECT` handles for writing, where the file system allows them.
    direct: Vec<Option<File>>,
    /// Cleared the first time a direct write fails for want of alignment or support.
    direct_ok: AtomicBool,
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
                if f.pad {
                    return Ok(None);
                }
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
        Ok(Self {
            layout,
            paths,
            files,
            direct: Vec::new(),
            direct_ok: AtomicBool::new(false),
        })
    }

    /// Opens or creates the files for writing below `root`, sized as the manifest says
    /// (sparse), keeping what is already there for the resume check.
    /// With `direct`, aligned writes bypass the page cache (see the module documentation).
    pub fn create(
        layout: FileLayout,
        paths: Vec<PathBuf>,
        root: &Path,
        direct: bool,
    ) -> Result<Self, TorrentError> {
        let all = vec![true; layout.files().len()];
        Self::create_selected(layout, paths, root, direct, &all)
    }

    /// [`FileStorage::create`] for the files `selected` says (by layout index); the others
    /// are neither created nor opened, and reading or writing them is an error: a partial
    /// fetch routes their bytes elsewhere (`selection.rs`).
    pub fn create_selected(
        layout: FileLayout,
        paths: Vec<PathBuf>,
        root: &Path,
        direct: bool,
        selected: &[bool],
    ) -> Result<Self, TorrentError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut direct_files = Vec::with_capacity(paths.len());
        let kept: Vec<PathBuf> = paths
            .iter()
            .enumerate()
            .filter(|(i, _)| selected.get(*i) == Some(&true))
            .map(|(_, p)| p.clone())
            .collect();
        check_output(root, &kept)?;
        for (i, (f, path)) in layout.files().iter().zip(&paths).enumerate() {
            if f.pad || selected.get(i) != Some(&true) {
                files.push(None);
                direct_files.push(None);
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| storage_err("create", parent, source))?;
                // Again, now that the directories exist: one must not have become a link.
                check_output(root, std::slice::from_ref(path))?;
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
            // Refused by file systems without direct I/O (EINVAL on tmpfs): then buffered.
            direct_files.push(if direct && f.len > 0 {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
                    .ok()
            } else {
                None
            });
        }
        let direct_ok = AtomicBool::new(direct_files.iter().any(Option::is_some));
        Ok(Self {
            layout,
            paths,
            files,
            direct: direct_files,
            direct_ok,
        })
    }

    /// Whether any write so far could go, or went, around the page cache.
    pub fn direct_writes(&self) -> bool {
        self.direct_ok.load(Ordering::Relaxed)
    }

    /// Writes one segment through the `O_DIRECT` handle if everything is aligned; false if
    /// it did not (then the caller writes it through the ordinary handle).
    fn write_direct(&self, file: usize, at: u64, data: &[u8]) -> bool {
        let aligned = |n: usize| n % PAGE == 0;
        if !self.direct_ok.load(Ordering::Relaxed)
            || !aligned(data.as_ptr() as usize)
            || !aligned(data.len())
            || at % PAGE as u64 != 0
        {
            return false;
        }
        let Some(direct) = self.direct.get(file).and_then(Option::as_ref) else {
            return false;
        };
        match direct.write_all_at(data, at) {
            Ok(()) => true,
            Err(e) => {
                if e.raw_os_error() == Some(libc::EINVAL) {
                    tracing::debug!(error = %e, "direct writes refused; writing through the page cache");
                    self.direct_ok.store(false, Ordering::Relaxed);
                }
                false
            }
        }
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
        mut f: impl FnMut(usize, &File, u64, std::ops::Range<usize>) -> io::Result<()>,
        op: &'static str,
    ) -> Result<(), TorrentError> {
        for seg in self.layout.segments(offset, len as u64) {
            if self.layout.files()[seg.file].pad {
                continue;
            }
            let path = &self.paths[seg.file];
            let file = self.files[seg.file]
                .as_ref()
                .ok_or_else(|| storage_err(op, path, io::ErrorKind::NotFound.into()))?;
            let range = seg.range_offset as usize..(seg.range_offset + seg.len) as usize;
            f(seg.file, file, seg.file_offset, range).map_err(|source| storage_err(op, path, source))?;
        }
        Ok(())
    }
}

impl Storage for FileStorage {
    /// A read that fails names its file ([`TorrentError::Unreadable`]): while seeding, the
    /// file's pieces are then withheld instead of the torrent stopping.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TorrentError> {
        for seg in self.layout.segments(offset, buf.len() as u64) {
            let unreadable = |source| TorrentError::Unreadable {
                file: seg.file,
                path: self.paths[seg.file].clone(),
                source,
            };
            let range = seg.range_offset as usize..(seg.range_offset + seg.len) as usize;
            if self.layout.files()[seg.file].pad {
                buf[range].fill(0); // BEP 47: a pad file's bytes are zeros, never on disk
                continue;
            }
            let file = self.files[seg.file]
                .as_ref()
                .ok_or_else(|| unreadable(io::ErrorKind::NotFound.into()))?;
            let expected = self.layout.files()[seg.file].len;
            read_segment(file, &mut buf[range], seg.file_offset, expected).map_err(unreadable)?;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), TorrentError> {
        self.each_segment(
            offset,
            data.len(),
            |n, file, at, range| {
                let data = &data[range];
                if self.write_direct(n, at, data) {
                    return Ok(());
                }
                file.write_all_at(data, at)
            },
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

/// Fills `buf` from `at` in a file the manifest says is `expected` bytes. We read through the
/// handle opened at the start, so a file deleted since would still read: a deleted file
/// (no links left) is refused as such, and a short read says what the file shrank to instead
/// of "failed to fill whole buffer". One `fstat` per read batch (up to 512 KiB) is noise.
fn read_segment(file: &File, buf: &mut [u8], at: u64, expected: u64) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if file.metadata()?.nlink() == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, "it was deleted"));
    }
    match file.read_exact_at(buf, at) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            let now = file.metadata()?.len();
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("it is now {now} bytes, the manifest says {expected}"),
            ))
        }
        other => other,
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

/// Checks every output path before anything is created: each must lie below `root` (the
/// directory that receives the output), `root` and its ancestors must be directories where
/// they exist, and no component from the first one below `root` down to the file may be a
/// symbolic link or a non-directory on the way. Paths are made absolute against the current
/// directory by joining, never by resolving `..` lexically: `a/..` is wherever the kernel
/// says (the parent of what `a` points at, when `a` is a link), so each component is looked
/// up through the same path the file will be opened by. Links in `root` itself and above it
/// are followed: that is the directory the user chose.
pub fn check_output(root: &Path, paths: &[PathBuf]) -> Result<(), TorrentError> {
    for a in root.ancestors() {
        if a.as_os_str().is_empty() {
            break;
        }
        match a.metadata() {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(bad_output(a, "it is not a directory")),
            Err(_) => {}
        }
    }
    let abs_root = absolute(root)?;
    for path in paths {
        let abs = absolute(path)?;
        let rel = abs.strip_prefix(&abs_root).map_err(|_| {
            TorrentError::Internal(format!(
                "output file {} is not inside its root {}",
                path.display(),
                root.display()
            ))
        })?;
        let parts: Vec<_> = rel.components().collect();
        if parts.is_empty() || parts.iter().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(bad_output(
                path,
                "it is not a file name below the output directory",
            ));
        }
        let (mut at, mut shown) = (abs_root.clone(), root.to_path_buf());
        for (i, c) in parts.iter().enumerate() {
            at.push(c);
            shown.push(c);
            let last = i + 1 == parts.len();
            match at.symlink_metadata() {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(TorrentError::UnsafeOutput {
                        path: shown,
                        why: "it is a symbolic link",
                    })
                }
                Ok(m) if last && m.is_dir() => return Err(bad_output(&shown, "it is a directory")),
                Ok(m) if !last && !m.is_dir() => return Err(bad_output(&shown, "it is not a directory")),
                Ok(_) => {}
                // Nothing below a missing component exists yet; other errors surface when
                // the file is opened, with their own cause.
                Err(_) => break,
            }
        }
    }
    Ok(())
}

/// `path` made absolute against the current directory, components kept as spelt.
fn absolute(path: &Path) -> Result<PathBuf, TorrentError> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|source| storage_err("find the current directory of", path, source))?;
    Ok(cwd.join(path))
}

fn bad_output(path: &Path, why: &str) -> TorrentError {
    TorrentError::BadOutput {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
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
        let s = FileStorage::create(l.clone(), paths.clone(), dir.path(), true).unwrap();
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
    fn pad_files_read_as_zeros_drop_writes_and_never_exist() {
        let dir = tempfile::tempdir().unwrap();
        let l = FileLayout::with_pads([
            (PathBuf::from("a"), 3, false),
            (PathBuf::from(".pad/5"), 5, true),
            (PathBuf::from("b"), 4, false),
        ])
        .unwrap();
        let paths: Vec<_> = l.files().iter().map(|f| dir.path().join(&f.path)).collect();
        let s = FileStorage::create(l.clone(), paths.clone(), dir.path(), true).unwrap();
        s.write_at(0, b"abcXXXXXdefg").unwrap();
        assert!(
            !dir.path().join(".pad").exists(),
            "no pad file or directory is created"
        );
        assert_eq!(std::fs::read(&paths[0]).unwrap(), b"abc");
        assert_eq!(std::fs::read(&paths[2]).unwrap(), b"defg");
        let mut buf = [0xffu8; 12];
        s.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"abc\0\0\0\0\0defg");
        let seeding = FileStorage::open(l, paths).unwrap();
        let back = read_bytes(&seeding, 2, 8).unwrap();
        assert_eq!(&back[..], b"c\0\0\0\0\0de");
    }

    #[test]
    fn aligned_writes_go_direct_and_read_back_with_unaligned_ones_around_them() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(&[3 * 4096, 4096 + 100]);
        let paths: Vec<_> = l.files().iter().map(|f| dir.path().join(&f.path)).collect();
        let s = FileStorage::create(l.clone(), paths.clone(), dir.path(), true).unwrap();
        let supported = s.direct_writes();
        // Two aligned pages at 4096, then a piece straddling both files, then the short tail.
        let (mut v, off) = aligned_vec(2 * 4096);
        v[off..off + 2 * 4096].fill(7);
        s.write_at(4096, &v[off..off + 2 * 4096]).unwrap();
        assert_eq!(s.direct_writes(), supported, "an aligned write did not fall back");
        s.write_at(3 * 4096 - 10, &[9; 20]).unwrap();
        s.write_at(4 * 4096, &[5; 100]).unwrap();
        let back = read_bytes(&s, 0, 4 * 4096 + 100).unwrap();
        let mut want = vec![0u8; 4 * 4096 + 100];
        want[4096..3 * 4096].fill(7);
        want[3 * 4096 - 10..3 * 4096 + 10].fill(9);
        want[4 * 4096..].fill(5);
        assert!(back[..] == want[..], "read back what was written");
        assert_eq!(std::fs::read(&paths[0]).unwrap(), want[..3 * 4096]);
        let without = FileStorage::create(l, paths, dir.path(), false).unwrap();
        assert!(!without.direct_writes());
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
        let e = FileStorage::create(l, paths, &root, true).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside"
        );
    }

    #[test]
    fn reads_of_a_file_that_shrank_or_was_deleted_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout(&[100, 100]);
        let paths: Vec<_> = l.files().iter().map(|f| dir.path().join(&f.path)).collect();
        std::fs::create_dir_all(paths[0].parent().unwrap()).unwrap();
        std::fs::write(&paths[0], [1; 100]).unwrap();
        std::fs::write(&paths[1], [2; 100]).unwrap();
        let s = FileStorage::open(l, paths.clone()).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&paths[0])
            .unwrap()
            .set_len(10)
            .unwrap();
        match s.read_at(0, &mut [0; 50]).unwrap_err() {
            TorrentError::Unreadable { file, path, source } => {
                assert_eq!((file, &path), (0, &paths[0]));
                assert_eq!(source.to_string(), "it is now 10 bytes, the manifest says 100");
            }
            e => panic!("{e}"),
        }
        assert_eq!(
            &read_bytes(&s, 100, 100).unwrap()[..],
            [2; 100],
            "the other file still reads"
        );
        std::fs::remove_file(&paths[1]).unwrap();
        let e = s.read_at(150, &mut [0; 10]).unwrap_err();
        assert!(
            matches!(&e, TorrentError::Unreadable { file: 1, source, .. } if source.to_string() == "it was deleted"),
            "{e:?}"
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
