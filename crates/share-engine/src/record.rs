//! Resume records: the small file that says which output files a torrent created, so that a
//! rerun may resume into them and nothing else is ever resized or overwritten.
//!
//! One record per (canonical output path, info hash), in `STATE_DIR/resume/`, named by the
//! info hash and a digest of the path. It is plain text, one fact a line:
//!
//! ```text
//! share resume record 1
//! info_hash 0123…
//! output /home/me/Downloads/album
//! file 0 2049 1234567
//! file 3 -
//! ```
//!
//! `file INDEX DEV INODE` is a file of the layout we created; `file INDEX -` is one we are
//! about to create (written before its first byte exists, so a `kill -9` at any moment still
//! finds it recorded) whose identity is filled in once it exists. A recorded identity must
//! match the file on disk, so a file the user later put at the same path is not taken for
//! ours. Records are replaced atomically (a temporary file, `fsync`, `rename`): a crash
//! leaves the old record or the new one, never half of one. An unreadable or foreign record
//! is treated as no record, which only ever makes us more careful.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use share_proto::InfoHash;

use crate::error::TorrentError;

const HEADER: &str = "share resume record 1";

/// Which file it is on disk: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    /// The identity of the file at `path` (not following a final symlink).
    pub fn of(path: &Path) -> Option<Identity> {
        let m = path.symlink_metadata().ok()?;
        Some(Identity {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// The files of one output that this torrent created.
#[derive(Debug)]
pub(crate) struct Record {
    path: PathBuf,
    info_hash: InfoHash,
    output: PathBuf,
    /// Layout file index → its identity, or `None` while it is being created.
    files: BTreeMap<usize, Option<Identity>>,
}

impl Record {
    /// The record for `output` (canonical) and `info_hash` in `state_dir`, empty if there is
    /// none or it cannot be read.
    pub fn load(state_dir: &Path, info_hash: InfoHash, output: &Path) -> Record {
        let mut key = output.as_os_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(info_hash.as_bytes());
        let digest = hex(&share_proto::hash::sha1(&key)[..8]);
        let path = state_dir
            .join("resume")
            .join(format!("{}-{digest}", info_hash.to_hex()));
        let mut record = Record {
            path,
            info_hash,
            output: output.to_path_buf(),
            files: BTreeMap::new(),
        };
        if let Ok(text) = std::fs::read_to_string(&record.path) {
            match parse(&text, info_hash) {
                Some(files) => record.files = files,
                None => {
                    tracing::warn!(record = %record.path.display(), "ignoring an unreadable resume record")
                }
            }
        }
        record
    }

    /// Deletes the record and its side file (the torrent was removed with its data).
    pub fn delete(self) {
        let _ = std::fs::remove_file(self.side_path());
        let _ = std::fs::remove_file(&self.path);
    }

    /// Where this record's side file is (`selection.rs`): the pieces a partial fetch of
    /// this output keeps for files it skipped.
    pub fn side_path(&self) -> PathBuf {
        crate::selection::side_path(&self.path)
    }

    /// Whether file `index` is ours and is the file now at `path`. A file recorded while it
    /// was being created (no identity yet) is ours whatever its identity.
    pub fn owns(&self, index: usize, path: &Path) -> bool {
        match self.files.get(&index) {
            Some(Some(id)) => Identity::of(path) == Some(*id),
            Some(None) => true,
            None => false,
        }
    }

    /// Whether the record names any file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Marks file `index` as ours, with its identity if it exists already.
    pub fn claim(&mut self, index: usize, identity: Option<Identity>) {
        self.files.insert(index, identity);
    }

    /// Whether some file's identity is still to be filled in.
    pub fn has_pending(&self) -> bool {
        self.files.values().any(Option::is_none)
    }

    /// Fills in the identities of pending files that now exist at `paths`.
    pub fn fill_identities(&mut self, paths: &[PathBuf]) {
        for (index, id) in self.files.iter_mut() {
            if id.is_none() {
                *id = paths.get(*index).and_then(|p| Identity::of(p));
            }
        }
    }

    /// Replaces the record on disk atomically.
    pub fn save(&self) -> Result<(), TorrentError> {
        let err = |source| TorrentError::Storage {
            op: "write the resume record",
            path: self.path.clone(),
            source,
        };
        let mut text = format!(
            "{HEADER}\ninfo_hash {}\noutput {}\n",
            self.info_hash.to_hex(),
            self.output.display()
        );
        for (index, id) in &self.files {
            match id {
                Some(id) => text.push_str(&format!("file {index} {} {}\n", id.dev, id.ino)),
                None => text.push_str(&format!("file {index} -\n")),
            }
        }
        crate::persist::write_atomically(&self.path, text.as_bytes()).map_err(err)
    }
}

fn parse(text: &str, info_hash: InfoHash) -> Option<BTreeMap<usize, Option<Identity>>> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let mut files = BTreeMap::new();
    let mut hash_ok = false;
    for line in lines {
        let mut words = line.split(' ');
        match words.next()? {
            "info_hash" => hash_ok = words.next()? == info_hash.to_hex(),
            "output" => {}
            "file" => {
                let index = words.next()?.parse().ok()?;
                let id = match words.next()? {
                    "-" => None,
                    dev => Some(Identity {
                        dev: dev.parse().ok()?,
                        ino: words.next()?.parse().ok()?,
                    }),
                };
                files.insert(index, id);
            }
            _ => return None,
        }
    }
    hash_ok.then_some(files)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_checks_identities() {
        let state = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let hash = InfoHash([7; 20]);
        let out = data.path().join("out");
        let files = [data.path().join("a"), data.path().join("b")];
        let mut r = Record::load(state.path(), hash, &out);
        assert!(r.is_empty());
        r.claim(0, None);
        r.claim(1, None);
        r.save().unwrap();
        // A pending file is ours as soon as it exists, whatever it is.
        std::fs::write(&files[0], b"x").unwrap();
        let again = Record::load(state.path(), hash, &out);
        assert!(again.owns(0, &files[0]) && again.has_pending());
        r.fill_identities(&files);
        r.save().unwrap();
        let again = Record::load(state.path(), hash, &out);
        assert!(again.owns(0, &files[0]), "identity recorded and matching");
        assert!(again.owns(1, &files[1]), "b does not exist yet: still pending");
        assert!(!again.owns(2, &files[1]));
        // The same path replaced by another file is no longer ours.
        std::fs::remove_file(&files[0]).unwrap();
        std::fs::write(data.path().join("keep"), b"hold the inode").unwrap();
        std::fs::write(&files[0], b"someone else's").unwrap();
        let replaced = Identity::of(&files[0]);
        let recorded = again.files[&0];
        assert_eq!(again.owns(0, &files[0]), replaced == recorded);
        // Another torrent or another output has its own record.
        assert!(Record::load(state.path(), InfoHash([8; 20]), &out).is_empty());
        assert!(Record::load(state.path(), hash, &data.path().join("other")).is_empty());
    }

    #[test]
    fn a_damaged_record_counts_as_none() {
        let hash = InfoHash([1; 20]);
        assert!(parse("share resume record 1\ninfo_hash 00\nfile 0 -\n", hash).is_none());
        assert!(parse("garbage", hash).is_none());
        let ok = format!("{HEADER}\ninfo_hash {}\nfile 2 5 6\n", hash.to_hex());
        assert_eq!(parse(&ok, hash).unwrap().len(), 1);
        assert!(parse(&format!("{ok}file x -\n"), hash).is_none());
    }
}
