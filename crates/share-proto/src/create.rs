//! `share create`: scan a file or directory, hash its pieces on every core, encode a manifest.
//!
//! The output depends only on the input bytes, the file names and the options (no clock unless
//! a creation date is asked for), so two people who create a manifest for the same file with the
//! same options get the same info hash. Hashing streams the data a batch at a time: memory is
//! a few MiB per thread whatever the size of the input.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_bytes::ByteBuf;

use crate::geometry::{Geometry, BLOCK_LEN};
use crate::hash::{sha1, InfoHash, HASH_LEN};
use crate::layout::FileLayout;
use crate::metainfo::{RawFile, RawInfo, RawTorrent};

/// Smallest automatic (and allowed) piece size: one block.
pub const MIN_PIECE_LEN: u32 = BLOCK_LEN;
/// Largest automatic (and allowed) piece size.
pub const MAX_CREATE_PIECE_LEN: u32 = 16 * 1024 * 1024;
/// Automatic piece sizes aim for at most this many pieces (and so at least half as many).
pub const TARGET_MAX_PIECES: u64 = 2000;

/// Why a manifest cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The input could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file or directory at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input has no bytes to share.
    #[error("{0} is empty: there is nothing to share")]
    Empty(PathBuf),
    /// A name that is not UTF-8 cannot go into a manifest that other clients read.
    #[error("{0} has a name that is not valid UTF-8")]
    NotUtf8(PathBuf),
    /// Neither a regular file nor a directory.
    #[error("{0} is neither a regular file nor a directory")]
    NotAFile(PathBuf),
    /// A file shrank while it was being hashed.
    #[error("{0} changed while it was being hashed (it is shorter than when scanned)")]
    Changed(PathBuf),
    /// A piece size that is not a power of two in range.
    #[error("piece size {0} is not a power of two between 16 KiB and 16 MiB")]
    PieceSize(u64),
    /// Too many bytes for any piece size.
    #[error(transparent)]
    Geometry(#[from] crate::geometry::GeometryError),
}

/// What to share: a file or a directory's files, laid out as the manifest will list them.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file, or the directory whose files are listed.
    pub root: PathBuf,
    /// The torrent's name: the file or directory name.
    pub name: String,
    /// Whether this is a directory torrent.
    pub multi_file: bool,
    /// The files in stream order, paths relative to `root` (for one file: its name).
    pub layout: FileLayout,
}

impl Source {
    /// Where the file at `index` of the layout is on disk.
    pub fn file_path(&self, index: usize) -> PathBuf {
        if self.multi_file {
            self.root.join(&self.layout.files()[index].path)
        } else {
            self.root.clone()
        }
    }
}

/// Options of `share create` that go into the manifest.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Tracker URLs; the first is `announce`, and all of them, one tier each, `announce-list`.
    pub trackers: Vec<String>,
    /// Piece length; `None` picks one from the total size.
    pub piece_len: Option<u32>,
    /// BEP 27 private flag.
    pub private: bool,
    /// Free text.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date` (unix seconds); `None` leaves it out, keeping the output deterministic.
    pub creation_date: Option<i64>,
}

/// Finds what to share at `path`: one regular file, or every regular file below a directory
/// (following links to files, not links to directories), sorted by path.
pub fn scan(path: &Path) -> Result<Source, CreateError> {
    let io = |source| CreateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let abs = std::path::absolute(path).map_err(io)?;
    let name_path = if abs.file_name().is_some() {
        abs.clone()
    } else {
        abs.canonicalize().map_err(io)?
    };
    let name = name_path
        .file_name()
        .ok_or_else(|| CreateError::NotAFile(path.to_path_buf()))?
        .to_str()
        .ok_or_else(|| CreateError::NotUtf8(path.to_path_buf()))?
        .to_string();
    if meta.is_file() {
        if meta.len() == 0 {
            return Err(CreateError::Empty(path.to_path_buf()));
        }
        let layout =
            FileLayout::new([(PathBuf::from(&name), meta.len())]).expect("one length cannot overflow");
        return Ok(Source {
            root: path.to_path_buf(),
            name,
            multi_file: false,
            layout,
        });
    }
    if !meta.is_dir() {
        return Err(CreateError::NotAFile(path.to_path_buf()));
    }
    let mut files = Vec::new();
    walk(path, Path::new(""), &mut files)?;
    // Sorted by the whole path's bytes, as mktorrent does, so both give the same info hash.
    files.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    let layout = FileLayout::new(files).ok_or_else(|| CreateError::Empty(path.to_path_buf()))?;
    if layout.total_len() == 0 {
        return Err(CreateError::Empty(path.to_path_buf()));
    }
    Ok(Source {
        root: path.to_path_buf(),
        name,
        multi_file: true,
        layout,
    })
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<(), CreateError> {
    let dir = root.join(rel);
    let io = |source| CreateError::Io {
        path: dir.clone(),
        source,
    };
    for entry in std::fs::read_dir(&dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let rel_path = rel.join(entry.file_name());
        if entry.file_name().to_str().is_none() {
            return Err(CreateError::NotUtf8(root.join(rel_path)));
        }
        let kind = entry.file_type().map_err(io)?;
        let full = root.join(&rel_path);
        if kind.is_dir() {
            walk(root, &rel_path, out)?;
        } else {
            // Links are followed to files; links to directories are skipped (no loops).
            let meta = std::fs::metadata(&full).map_err(|source| CreateError::Io {
                path: full.clone(),
                source,
            })?;
            if meta.is_file() {
                out.push((rel_path, meta.len()));
            }
        }
    }
    Ok(())
}

/// The automatic piece length for `total` bytes: the smallest power of two from 16 KiB to
/// 16 MiB that makes at most [`TARGET_MAX_PIECES`] pieces.
pub fn auto_piece_len(total: u64) -> u32 {
    let mut len = MIN_PIECE_LEN;
    while len < MAX_CREATE_PIECE_LEN && total.div_ceil(u64::from(len)) > TARGET_MAX_PIECES {
        len *= 2;
    }
    len
}

/// Checks a piece length asked for by the user.
pub fn check_piece_len(len: u64) -> Result<u32, CreateError> {
    match u32::try_from(len) {
        Ok(l) if l.is_power_of_two() && (MIN_PIECE_LEN..=MAX_CREATE_PIECE_LEN).contains(&l) => Ok(l),
        _ => Err(CreateError::PieceSize(len)),
    }
}

/// Bytes each hashing thread reads at a time (rounded up to whole pieces).
const BATCH_BYTES: u64 = 1024 * 1024;

/// Hashes every piece of `source`, on `threads` threads. `progress` is called with the number
/// of bytes each time a batch is hashed.
pub fn hash_pieces(
    source: &Source,
    piece_len: u32,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<[u8; HASH_LEN]>, CreateError> {
    let geometry = Geometry::new(source.layout.total_len(), piece_len)?;
    let per_batch = (BATCH_BYTES / u64::from(piece_len)).max(1) as u32;
    let batches = geometry.piece_count().div_ceil(per_batch);
    let hashes = Mutex::new(vec![[0u8; HASH_LEN]; geometry.piece_count() as usize]);
    let init = || (Reader::new(source), Vec::new());
    crate::parallel::for_each_index(batches, threads, init, |(reader, storage), batch| {
        let first = batch * per_batch;
        let last = (first + per_batch).min(geometry.piece_count());
        let start = u64::from(first) * u64::from(piece_len);
        let end = (u64::from(last) * u64::from(piece_len)).min(geometry.total_len());
        let buf = crate::aligned::aligned_slice(storage, (end - start) as usize);
        reader.read_at(start, buf)?;
        let done: Vec<[u8; HASH_LEN]> = buf.chunks(piece_len as usize).map(sha1).collect();
        // Lock only to store the results; never poisoned because nothing panics inside.
        let mut all = hashes.lock().unwrap_or_else(|p| p.into_inner());
        all[first as usize..last as usize].copy_from_slice(&done);
        drop(all);
        progress(end - start);
        Ok::<_, CreateError>(())
    })?;
    Ok(hashes.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// Reads ranges of a source's byte stream, keeping the last opened file.
struct Reader<'a> {
    source: &'a Source,
    open: Option<(usize, File)>,
}

impl<'a> Reader<'a> {
    fn new(source: &'a Source) -> Self {
        Self { source, open: None }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), CreateError> {
        for seg in self.source.layout.segments(offset, buf.len() as u64) {
            let path = self.source.file_path(seg.file);
            if self.open.as_ref().is_none_or(|(i, _)| *i != seg.file) {
                let f = File::open(&path).map_err(|source| CreateError::Io {
                    path: path.clone(),
                    source,
                })?;
                self.open = Some((seg.file, f));
            }
            let (_, file) = self.open.as_ref().expect("opened above");
            let part = &mut buf[seg.range_offset as usize..(seg.range_offset + seg.len) as usize];
            file.read_exact_at(part, seg.file_offset)
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::UnexpectedEof => CreateError::Changed(path.clone()),
                    _ => CreateError::Io {
                        path: path.clone(),
                        source,
                    },
                })?;
        }
        Ok(())
    }
}

/// Encodes a manifest for `source` with its piece hashes; returns the bytes and the info hash.
pub fn encode(
    source: &Source,
    piece_len: u32,
    pieces: &[[u8; HASH_LEN]],
    options: &CreateOptions,
) -> (Vec<u8>, InfoHash) {
    let files = source.multi_file.then(|| {
        source
            .layout
            .files()
            .iter()
            .map(|f| RawFile {
                length: f.len,
                path: f
                    .path
                    .iter()
                    .map(|c| c.to_str().expect("scan checked UTF-8").to_string())
                    .collect(),
            })
            .collect()
    });
    let info = RawInfo {
        files,
        length: (!source.multi_file).then(|| source.layout.total_len()),
        name: source.name.clone(),
        piece_length: u64::from(piece_len),
        pieces: ByteBuf::from(pieces.concat()),
        private: options.private.then_some(1),
    };
    let info_bytes = serde_bencode::to_bytes(&info).expect("a manifest always encodes");
    let torrent = RawTorrent {
        announce: options.trackers.first().cloned(),
        announce_list: (options.trackers.len() > 1)
            .then(|| options.trackers.iter().map(|t| vec![t.clone()]).collect()),
        comment: options.comment.clone().map(|c| ByteBuf::from(c.into_bytes())),
        created_by: options.created_by.clone().map(|c| ByteBuf::from(c.into_bytes())),
        creation_date: options.creation_date,
        info,
    };
    let bytes = serde_bencode::to_bytes(&torrent).expect("a manifest always encodes");
    (bytes, InfoHash(sha1(&info_bytes)))
}

/// Scans, hashes and encodes in one call: the whole of `share create` but the progress bar.
pub fn create(
    path: &Path,
    options: &CreateOptions,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Vec<u8>, InfoHash), CreateError> {
    let source = scan(path)?;
    let piece_len = match options.piece_len {
        Some(l) => check_piece_len(u64::from(l))?,
        None => auto_piece_len(source.layout.total_len()),
    };
    let pieces = hash_pieces(&source, piece_len, threads, progress)?;
    Ok(encode(&source, piece_len, &pieces, options))
}

#[cfg(test)]
mod tests;
