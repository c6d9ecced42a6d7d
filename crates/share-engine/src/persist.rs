//! What a session remembers across restarts, in `SessionConfig::state_dir`:
//! `torrents/HEX.torrent` (the manifest: its info dictionary and trackers) and
//! `torrents/HEX.json` (an [`Entry`]: where the files are, seed or fetch, paused or not, the
//! file selection, the pieces verified, and each file's length and modification time as
//! they were when that was written). Both are written atomically (a temporary file, fsync,
//! rename), the entry on every change of state, every few seconds while pieces arrive, and
//! when the torrent or the session stops.
//!
//! Fast resume: a torrent added again with an entry for the same files and selection trusts
//! the recorded pieces of every file whose length and modification time are unchanged (so
//! a complete file is never hashed again); only pieces touching a changed file are checked.
//! A pieces list is only ever recorded after those pieces were written, so a trusted piece
//! is always on disk. The reverse (every piece on disk is in the list) holds only for a
//! *clean* entry: one written when no more writes could follow (a seed, a complete fetch, a
//! torrent whose tasks have all ended). A piece may be written between reading the list and
//! reading the stamps, or in the same clock tick as the stamp (file times are coarse), and a
//! `kill -9` may follow; so an entry that is not clean is never taken for "nothing to check":
//! its untrusted pieces are hashed. While a torrent's check runs, its entry keeps what it
//! had (the check has not told us yet what is on disk).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use share_proto::bitfield::Bitfield;
use share_proto::metainfo::Metainfo;
use share_proto::InfoHash;

use crate::error::TorrentError;
use crate::torrent::Mode;

/// The largest entry or manifest read back: an entry holds paths and one bit a piece, and
/// manifests are capped the same way everywhere (`share info`).
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Peer addresses kept in an entry.
pub(crate) const MAX_PEERS: usize = 64;

/// The entry format; another version is reported and skipped.
const VERSION: u32 = 1;

/// A file's length and modification time (nanoseconds since the epoch), or `None` when it
/// does not exist.
pub(crate) type Stamp = Option<(u64, i128)>;

/// One torrent of a session, as written in `HEX.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub version: u32,
    pub mode: String,
    pub root: PathBuf,
    pub paths: Vec<PathBuf>,
    pub trackers: Vec<String>,
    /// Peers to dial when it starts again: those it was given, then those it was connected
    /// to when this was written (at most [`MAX_PEERS`]).
    #[serde(default)]
    pub peers: Vec<std::net::SocketAddr>,
    pub paused: bool,
    pub select: Option<Vec<bool>>,
    /// Where its resume records are (`Config::state_dir`: which files it created).
    pub records: Option<PathBuf>,
    /// The verified pieces, as the wire bitfield in hex.
    pub have: String,
    /// Each file's stamp, read after `have`.
    pub stamps: Vec<Stamp>,
    /// Written when no more writes could follow `have` (see the module doc): only then is
    /// an unchanged file's unrecorded piece known to be missing rather than unrecorded.
    #[serde(default)]
    pub clean: bool,
}

/// What an entry lets a torrent skip when it starts again.
#[derive(Debug, Clone)]
pub(crate) struct Resume {
    /// Recorded pieces whose files are all unchanged: trusted without hashing.
    pub trusted: Bitfield,
    /// Every file is unchanged and the entry is clean: no check at all.
    pub all_unchanged: bool,
}

pub(crate) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Seed => "seed",
        Mode::Fetch => "fetch",
        Mode::Chat => "chat",
    }
}

fn mode_of(name: &str) -> Option<Mode> {
    match name {
        "seed" => Some(Mode::Seed),
        "fetch" => Some(Mode::Fetch),
        "chat" => Some(Mode::Chat),
        _ => None,
    }
}

/// The stamp of `path` now (a link is not followed).
pub(crate) fn stamp(path: &Path) -> Stamp {
    let m = path.symlink_metadata().ok()?;
    let mtime = m.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos() as i128;
    Some((m.len(), mtime))
}

/// The directory of the torrents' files.
fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("torrents")
}

pub(crate) fn entry_path(state_dir: &Path, info_hash: InfoHash) -> PathBuf {
    dir(state_dir).join(format!("{}.json", info_hash.to_hex()))
}

fn manifest_path(state_dir: &Path, info_hash: InfoHash) -> PathBuf {
    dir(state_dir).join(format!("{}.torrent", info_hash.to_hex()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes `bytes` to `path` through a temporary file beside it, synced before the rename so
/// that after a power loss the file is the old one or the new one (resume records use it
/// too). The temporary file is removed if anything fails.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Reads at most [`MAX_FILE`] bytes of `path`; more is an error.
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!("larger than {MAX_FILE} bytes")));
    }
    Ok(data)
}

impl Entry {
    pub fn new(
        mode: Mode,
        root: &Path,
        paths: &[PathBuf],
        trackers: &[String],
        select: Option<Vec<bool>>,
        records: Option<PathBuf>,
    ) -> Self {
        Entry {
            version: VERSION,
            mode: mode_name(mode).into(),
            root: root.to_path_buf(),
            paths: paths.to_vec(),
            trackers: trackers.to_vec(),
            peers: Vec::new(),
            paused: false,
            select,
            records,
            have: String::new(),
            stamps: Vec::new(),
            clean: false,
        }
    }

    /// Takes over what `old` recorded of the pieces and files (while a check runs, that is
    /// still the best knowledge of what is on disk).
    pub fn carry_from(&mut self, old: &Entry) {
        self.have = old.have.clone();
        self.stamps = old.stamps.clone();
        self.clean = old.clean;
    }

    pub fn mode(&self) -> Option<Mode> {
        mode_of(&self.mode)
    }

    /// Adds peer addresses to dial on the next start, first come first kept.
    pub fn remember_peers(&mut self, addrs: impl IntoIterator<Item = std::net::SocketAddr>) {
        for a in addrs {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            if !self.peers.contains(&a) {
                self.peers.push(a);
            }
        }
    }

    /// Records `have`, then the files' stamps as they are now; `clean` when no write can
    /// follow (the module doc).
    pub fn record(&mut self, have: &Bitfield, paused: bool, clean: bool) {
        self.have = hex(have.as_bytes());
        self.paused = paused;
        self.stamps = self.paths.iter().map(|p| stamp(p)).collect();
        self.clean = clean;
    }

    /// The pieces recorded as verified, if the entry is for `meta`'s geometry.
    fn have(&self, meta: &Metainfo) -> Option<Bitfield> {
        let count = meta.geometry().piece_count();
        Bitfield::from_wire(&unhex(&self.have)?, count).ok()
    }

    /// What may be trusted when starting `meta` at `paths` with `select` again: nothing
    /// unless this entry is for those very files and that selection.
    pub fn resume(&self, meta: &Metainfo, paths: &[PathBuf], select: &Option<Vec<bool>>) -> Option<Resume> {
        if self.paths != paths || &self.select != select || self.stamps.len() != paths.len() {
            return None;
        }
        let have = self.have(meta)?;
        let unchanged: Vec<bool> = paths
            .iter()
            .zip(&self.stamps)
            .map(|(p, s)| s.is_some() && stamp(p) == *s)
            .collect();
        let layout = meta.layout();
        let files = layout.files();
        let g = meta.geometry();
        let mut trusted = Bitfield::new(g.piece_count());
        for i in have.ones() {
            let Some(piece) = g.piece(i) else { continue };
            let (start, len) = (g.piece_offset(piece), u64::from(g.len_of(piece)));
            let ok = files
                .iter()
                .enumerate()
                .filter(|(_, f)| f.len > 0 && f.offset < start + len && start < f.offset + f.len)
                .all(|(k, f)| f.pad || unchanged[k]);
            if ok {
                trusted.set(piece);
            }
        }
        let all_unchanged = files
            .iter()
            .zip(&unchanged)
            .all(|(f, u)| *u || f.pad || f.len == 0);
        let all_unchanged = all_unchanged && trusted.count() == have.count() && self.clean;
        Some(Resume {
            trusted,
            all_unchanged,
        })
    }
}

/// Loads the entry of `info_hash`, if there is one that can be read.
pub(crate) fn load(state_dir: &Path, info_hash: InfoHash) -> Result<Option<Entry>, TorrentError> {
    let path = entry_path(state_dir, info_hash);
    match read_capped(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bad(&path, e.to_string())),
        Ok(data) => parse(&path, &data).map(Some),
    }
}

fn parse(path: &Path, data: &[u8]) -> Result<Entry, TorrentError> {
    let entry: Entry = serde_json::from_slice(data).map_err(|e| bad(path, e.to_string()))?;
    if entry.version != VERSION {
        return Err(bad(path, format!("version {} is not {VERSION}", entry.version)));
    }
    if entry.mode().is_none() {
        return Err(bad(path, format!("unknown mode {:?}", entry.mode)));
    }
    Ok(entry)
}

fn bad(path: &Path, reason: String) -> TorrentError {
    TorrentError::BadState {
        path: path.to_path_buf(),
        reason,
    }
}

/// Writes the entry of `info_hash`.
pub(crate) fn save(state_dir: &Path, info_hash: InfoHash, entry: &Entry) -> Result<(), TorrentError> {
    let path = entry_path(state_dir, info_hash);
    let json = serde_json::to_vec_pretty(entry).map_err(|e| TorrentError::Internal(e.to_string()))?;
    write_atomically(&path, &json).map_err(|source| TorrentError::Storage {
        op: "write",
        path,
        source,
    })
}

/// Writes the manifest of `meta` (its info dictionary as it was, and its trackers) unless
/// it is there already.
pub(crate) fn save_manifest(
    state_dir: &Path,
    meta: &Metainfo,
    trackers: &[String],
) -> Result<(), TorrentError> {
    let path = manifest_path(state_dir, meta.info_hash);
    if path.exists() {
        return Ok(());
    }
    let bytes = share_proto::metainfo::manifest_bytes(&meta.info_bytes, trackers);
    write_atomically(&path, &bytes).map_err(|source| TorrentError::Storage {
        op: "write",
        path,
        source,
    })
}

/// Forgets `info_hash`: its entry and manifest.
pub(crate) fn delete(state_dir: &Path, info_hash: InfoHash) {
    let _ = std::fs::remove_file(entry_path(state_dir, info_hash));
    let _ = std::fs::remove_file(manifest_path(state_dir, info_hash));
}

/// Every torrent recorded in `state_dir`: its manifest and entry, or why it cannot be read
/// back (a corrupt or truncated file, a manifest whose info hash is not its name).
pub(crate) fn load_all(state_dir: &Path) -> Vec<Result<(std::sync::Arc<Metainfo>, Entry), TorrentError>> {
    let Ok(list) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = list
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            let data = read_capped(&path).map_err(|e| bad(&path, e.to_string()))?;
            let entry = parse(&path, &data)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let hash =
                InfoHash::from_hex(stem).ok_or_else(|| bad(&path, "its name is not an info hash".into()))?;
            let manifest = manifest_path(state_dir, hash);
            let bytes = read_capped(&manifest).map_err(|e| bad(&manifest, e.to_string()))?;
            let meta = Metainfo::from_bytes(&bytes).map_err(|e| bad(&manifest, e.to_string()))?;
            if meta.info_hash != hash {
                return Err(bad(
                    &manifest,
                    format!("its info hash is {}", meta.info_hash.to_hex()),
                ));
            }
            if entry.paths.len() != meta.layout().files().len() {
                return Err(bad(&path, "its paths do not match the manifest's files".into()));
            }
            Ok((std::sync::Arc::new(meta), entry))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_junk() {
        assert_eq!(unhex(&hex(&[0, 1, 0xab, 0xff])), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é1"), None);
    }

    #[test]
    fn a_corrupt_or_foreign_entry_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        for (data, says) in [
            (&b"{not json"[..], "key must be a string"),
            (br#"{"version": 9, "mode": "seed", "root": "/", "paths": [], "trackers": [], "paused": false, "select": null, "records": null, "have": "", "stamps": []}"#, "version 9"),
            (br#"{"version": 1, "mode": "juggle", "root": "/", "paths": [], "trackers": [], "paused": false, "select": null, "records": null, "have": "", "stamps": []}"#, "unknown mode"),
        ] {
            let e = parse(&path, data).unwrap_err().to_string();
            assert!(e.contains("x.json") && e.contains(says), "{e}");
        }
    }

    /// Only a clean entry of unchanged files means "nothing to check"; an unclean one
    /// (written while pieces could still arrive) trusts its pieces and has the rest hashed;
    /// a changed file trusts nothing of its pieces.
    #[test]
    fn only_a_clean_entry_of_unchanged_files_skips_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, vec![7u8; 5 * 16_384]).unwrap();
        let meta = crate::test_util::manifest_of(&src);
        let paths = vec![src.clone()];
        let mut have = Bitfield::new(5);
        have.set(meta.geometry().piece(1).unwrap());
        have.set(meta.geometry().piece(3).unwrap());
        let mut entry = Entry::new(Mode::Fetch, dir.path(), &paths, &[], None, None);

        entry.record(&have, false, false);
        let r = entry.resume(&meta, &paths, &None).unwrap();
        assert_eq!(r.trusted, have);
        assert!(!r.all_unchanged, "an unclean entry is checked");

        entry.record(&have, false, true);
        let r = entry.resume(&meta, &paths, &None).unwrap();
        assert_eq!(r.trusted, have);
        assert!(r.all_unchanged);

        // Another selection, or other paths: nothing carried over.
        assert!(entry.resume(&meta, &paths, &Some(vec![true])).is_none());
        assert!(entry.resume(&meta, &[dir.path().join("x")], &None).is_none());

        // A carried entry keeps what the old one knew.
        let mut carried = Entry::new(Mode::Fetch, dir.path(), &paths, &[], None, None);
        carried.carry_from(&entry);
        assert_eq!(carried.resume(&meta, &paths, &None).unwrap().trusted, have);

        // The file changes (its length here, so the test does not race the clock).
        std::fs::write(&src, vec![7u8; 5 * 16_384 + 1]).unwrap();
        let r = entry.resume(&meta, &paths, &None).unwrap();
        assert_eq!(r.trusted.count(), 0);
        assert!(!r.all_unchanged);
    }
}
