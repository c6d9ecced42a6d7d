//! Which files a fetch may write: the user's bytes are never destroyed.
//!
//! Before anything is created, every file of the output is one of:
//! - **missing**: it will be created, and is first added to the resume record (`record.rs`),
//!   which is saved before the file's first byte exists;
//! - **ours**: the record says this torrent created it (same path, same inode): it is
//!   resized and written as the download needs, and the resume check keeps what verifies;
//! - **someone else's**: it exists and we did not create it. It is used only if it already
//!   holds this torrent's data: its length is the manifest's and every piece that covers it
//!   verifies. Then it is never written (all its pieces are had) and the download completes
//!   or seeds from it. Otherwise the fetch stops before writing anything, naming the file.
//!   `Config::overwrite` makes such files ours instead.
//!
//! A directory torrent's own directory is treated the same way: an existing, non-empty
//! directory that we did not record may receive no new file (`-o ~` must not plant
//! `~/.ssh/authorized_keys`); it is usable only as a complete copy whose every file verifies.
//!
//! A partial fetch (`Config::select`) claims only the files it selected: the others are
//! neither created, opened nor checked, whatever is at their paths (`selection.rs`).

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use share_proto::metainfo::Metainfo;

use crate::config::Config;
use crate::error::TorrentError;
use crate::record::{Identity, Record};
use crate::selection::FetchStorage;
use crate::storage::{check_output, FileStorage};

/// Checks the output, decides which files may be written, records the ones we are about to
/// create, and opens the storage. Blocking: run it on the blocking pool.
pub(crate) fn open_for_fetch(
    meta: &Metainfo,
    paths: Vec<PathBuf>,
    root: &Path,
    config: &Config,
) -> Result<FetchStorage, TorrentError> {
    let layout = meta.layout();
    let mask = crate::selection::mask(meta, config)?;
    let selected = |i: usize| mask.as_ref().is_none_or(|m| m[i]);
    if mask.is_some() && config.state_dir.is_none() {
        return Err(TorrentError::NoStateDir);
    }
    let kept: Vec<PathBuf> = (0..paths.len())
        .filter(|&i| selected(i))
        .map(|i| paths[i].clone())
        .collect();
    check_output(root, &kept)?;
    let dir = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    std::fs::create_dir_all(dir).map_err(|source| storage_err("create", dir, source))?;
    let (output, canonical) = output_of(dir, root, &paths)?;
    let mut record = config
        .state_dir
        .as_deref()
        .map(|d| Record::load(d, meta.info_hash, &canonical));

    let (mut missing, mut adopted, mut foreign) = (Vec::new(), Vec::new(), Vec::new());
    for (i, path) in paths.iter().enumerate() {
        if layout.files()[i].pad || !selected(i) {
            // BEP 47 pad files are never on disk, and skipped files are not ours to touch:
            // nothing to create, claim or check.
            continue;
        }
        if path.symlink_metadata().is_err() {
            missing.push(i);
        } else if record.as_ref().is_some_and(|r| r.owns(i, path)) {
            // Ours: used as it is.
        } else if config.overwrite {
            adopted.push(i);
        } else {
            foreign.push(i);
        }
    }
    let recorded = record.as_ref().is_some_and(|r| !r.is_empty());
    if meta.info.multi_file && !config.overwrite && !recorded && !missing.is_empty() && has_entries(&output) {
        return Err(TorrentError::NotOurs {
            path: output,
            why: format!(
                "it is a directory share did not create, and {} is not in it",
                paths[missing[0]].display()
            ),
        });
    }
    check_foreign(meta, &paths, &foreign)?;

    if let Some(r) = record.as_mut() {
        let changed = !missing.is_empty() || !adopted.is_empty();
        for &i in &missing {
            r.claim(i, None);
        }
        for &i in &adopted {
            r.claim(i, Identity::of(&paths[i]));
        }
        if changed {
            // Before the first byte of a new file exists: a kill -9 from here on still finds
            // every file we create recorded as ours.
            r.save()?;
        }
    }
    let all = vec![true; paths.len()];
    let files = FileStorage::create_selected(
        layout.clone(),
        paths.clone(),
        root,
        config.direct_writes,
        mask.as_deref().unwrap_or(&all),
    )?;
    if let Some(r) = record.as_mut().filter(|r| r.has_pending()) {
        r.fill_identities(&paths);
        r.save()?;
    }
    let side = record.as_ref().map(Record::side_path);
    FetchStorage::new(files, layout.clone(), mask, side)
}

/// The output entry (the file, or the torrent's directory) as spelt and canonically: the
/// first component below `root` of the first file's path.
fn output_of(dir: &Path, root: &Path, paths: &[PathBuf]) -> Result<(PathBuf, PathBuf), TorrentError> {
    let first = paths
        .first()
        .ok_or_else(|| TorrentError::Internal("a torrent with no files".into()))?;
    let name = first
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .or_else(|| first.components().next_back())
        .ok_or_else(|| TorrentError::Internal(format!("no file name in {}", first.display())))?;
    let canonical = std::fs::canonicalize(dir).map_err(|source| storage_err("open", dir, source))?;
    Ok((root.join(name), canonical.join(name)))
}

/// Deletes a removed torrent's data: the files it wants (a skipped file of a partial fetch
/// was never ours), only regular files (a link is not followed, and nothing outside the
/// torrent's paths is touched), then the directories this leaves empty up to `root` (kept),
/// then its resume record and side file. Returns the number of files deleted; a file
/// already gone is no error.
pub(crate) fn delete_data(
    meta: &Metainfo,
    paths: &[PathBuf],
    root: &Path,
    config: &Config,
) -> Result<usize, TorrentError> {
    let mask = crate::selection::mask(meta, config)?;
    let mut deleted = 0;
    let mut dirs = BTreeSet::new();
    for (i, path) in paths.iter().enumerate() {
        if meta.layout().files()[i].pad || mask.as_ref().is_some_and(|m| !m[i]) {
            continue;
        }
        match path.symlink_metadata() {
            Ok(m) if m.file_type().is_file() => {
                std::fs::remove_file(path).map_err(|source| storage_err("delete", path, source))?;
                deleted += 1;
            }
            _ => {}
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != root) {
            dirs.insert(d.to_path_buf());
            dir = d.parent();
        }
    }
    // Deepest first; a directory holding anything else stays.
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
    if let Some(state_dir) = &config.state_dir {
        let dir = if root.as_os_str().is_empty() {
            Path::new(".")
        } else {
            root
        };
        if let Ok((_, canonical)) = output_of(dir, root, paths) {
            Record::load(state_dir, meta.info_hash, &canonical).delete();
        }
    }
    Ok(deleted)
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Existing files we did not create may be used only if they hold exactly this torrent's data.
fn check_foreign(meta: &Metainfo, paths: &[PathBuf], foreign: &[usize]) -> Result<(), TorrentError> {
    let files = meta.layout().files();
    let piece_len = u64::from(meta.info.piece_length);
    let mut pieces = BTreeSet::new();
    for &i in foreign {
        let (f, path) = (&files[i], &paths[i]);
        let len = path.metadata().map(|m| m.len()).unwrap_or(0);
        if len != f.len {
            return Err(TorrentError::NotOurs {
                path: path.clone(),
                why: format!(
                    "it exists and share did not create it, and it holds {len} bytes where the manifest's file has {}",
                    f.len
                ),
            });
        }
        if f.len > 0 {
            let (first, last) = (f.offset / piece_len, (f.offset + f.len - 1) / piece_len);
            pieces.extend((first..=last).map(|p| (p as u32, i)));
        }
    }
    let mut checked = BTreeSet::new();
    for (piece, file) in pieces {
        if checked.insert(piece) && !piece_verifies(meta, paths, piece) {
            return Err(TorrentError::NotOurs {
                path: paths[file].clone(),
                why: format!(
                    "it exists and share did not create it, and its data is not this torrent's (piece {piece} fails its hash check)"
                ),
            });
        }
    }
    Ok(())
}

/// Whether piece `index` reads back from the files at `paths` with its manifest hash.
fn piece_verifies(meta: &Metainfo, paths: &[PathBuf], index: u32) -> bool {
    let g = meta.geometry();
    let Some(piece) = g.piece(index) else {
        return false;
    };
    let mut buf = vec![0u8; g.len_of(piece) as usize];
    for seg in meta.layout().segments(g.piece_offset(piece), buf.len() as u64) {
        if meta.layout().files()[seg.file].pad {
            continue; // zeros, as `buf` already holds
        }
        let range = seg.range_offset as usize..(seg.range_offset + seg.len) as usize;
        let read =
            File::open(&paths[seg.file]).and_then(|f| f.read_exact_at(&mut buf[range], seg.file_offset));
        if read.is_err() {
            return false;
        }
    }
    meta.info
        .pieces
        .get(piece.as_usize())
        .is_some_and(|h| share_proto::hash::sha1(&buf) == *h)
}

fn storage_err(op: &'static str, path: &Path, source: std::io::Error) -> TorrentError {
    TorrentError::Storage {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::output_paths;

    /// A manifest of `data` (16 KiB pieces).
    fn manifest(dir: &Path, data: &[u8]) -> Metainfo {
        let src = dir.join("src.bin");
        std::fs::write(&src, data).unwrap();
        crate::test_util::manifest_of(&src)
    }

    fn data(seed: u8) -> Vec<u8> {
        (0..100_000u32)
            .map(|i| (i.wrapping_mul(31) as u8) ^ seed)
            .collect()
    }

    #[test]
    fn only_our_own_files_or_files_holding_the_data_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let meta = manifest(dir.path(), &data(1));
        let root = dir.path().join("out");
        std::fs::create_dir(&root).unwrap();
        let out = root.join("got.bin");
        let paths = output_paths(&meta, &out);
        let config = |state: Option<&Path>| Config {
            state_dir: state.map(Path::to_path_buf),
            ..Config::default()
        };
        let with_state = config(Some(state.path()));

        // Someone else's bytes, same length: refused, not a byte changed.
        std::fs::write(&out, data(2)).unwrap();
        let e = open_for_fetch(&meta, paths.clone(), &root, &with_state).unwrap_err();
        assert!(matches!(e, TorrentError::NotOurs { .. }), "{e}");
        assert!(e.to_string().contains("piece 0 fails its hash check"), "{e}");
        assert_eq!(std::fs::read(&out).unwrap(), data(2));
        // A complete copy: used, untouched.
        std::fs::write(&out, data(1)).unwrap();
        open_for_fetch(&meta, paths.clone(), &root, &with_state).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data(1));

        // A file we create is recorded first, so whatever it holds after a crash is ours.
        std::fs::remove_file(&out).unwrap();
        drop(open_for_fetch(&meta, paths.clone(), &root, &with_state).unwrap());
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 100_000);
        std::fs::write(&out, b"half").unwrap();
        drop(open_for_fetch(&meta, paths.clone(), &root, &with_state).unwrap());
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 100_000, "ours: resized");
        // Without a record it is someone else's; with overwrite it becomes ours.
        std::fs::write(&out, b"half").unwrap();
        let e = open_for_fetch(&meta, paths.clone(), &root, &config(None)).unwrap_err();
        assert!(e.to_string().contains("it holds 4 bytes"), "{e}");
        assert_eq!(std::fs::read(&out).unwrap(), b"half");
        let overwrite = Config {
            overwrite: true,
            ..config(None)
        };
        drop(open_for_fetch(&meta, paths, &root, &overwrite).unwrap());
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 100_000);
    }
}
