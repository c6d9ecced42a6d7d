//! Metainfo (`.torrent` manifests, BEP 3 with BEP 12 `announce-list`, BEP 27 `private` and
//! the v1 half of BEP 52 hybrid torrents with their BEP 47 pad files): parsing with checks that
//! name what is wrong, and encoding for `share create`.
//!
//! Parsing goes in two passes: the strict scanner in [`crate::bencode`] validates the syntax
//! (reporting byte offsets) and finds the exact bytes of `info`, whose SHA-1 is the info hash;
//! then serde_bencode fills typed structs, with serde_path_to_error naming the field whose
//! type is wrong. Unknown keys anywhere are ignored and, inside `info`, still hashed.
//!
//! The shape we read is wider than the one we write: names and paths are read as bytes (a
//! non-UTF-8 `path` is fine when `path.utf-8` gives the name to use), `pieces` may be missing
//! (a v2-only torrent, refused with a clear sentence), and a file may carry BEP 47 `attr`.
//! A pad file (`attr` containing `p`) is part of the piece stream (its bytes are zeros in every
//! piece hash) but is never a file on disk: it is marked [`FileEntry::pad`] and in the layout,
//! and is exempt from the duplicate-path check (libtorrent names every pad `.pad/SIZE`).

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::bencode::{self, SyntaxError};
use crate::geometry::{Geometry, GeometryError};
use crate::hash::{sha1, InfoHash, HASH_LEN};
use crate::layout::FileLayout;

/// The largest manifest we read: 64 MiB holds the hashes of a 50 TiB torrent in 16 MiB pieces,
/// and bounds what a hostile file can make us allocate.
pub const MAX_MANIFEST_LEN: u64 = 64 * 1024 * 1024;

/// The largest piece we accept in someone else's manifest. A piece is verified as a whole, so
/// this bounds the memory one piece can take.
pub const MAX_PIECE_LEN: u32 = 64 * 1024 * 1024;

/// What is wrong with a manifest. Each message names the field or byte at fault.
#[derive(Debug, thiserror::Error)]
pub enum MetainfoError {
    /// Not valid bencode.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// Valid bencode, but not a dictionary with an `info` dictionary in it.
    #[error("no `info` dictionary at the top level")]
    MissingInfo,
    /// A field is missing or has the wrong type.
    #[error("field `{path}`: {message}")]
    Field {
        /// Dotted path of the field, e.g. `info.piece length`.
        path: String,
        /// What serde_bencode said of it.
        message: String,
    },
    /// `pieces` is not a whole number of SHA-1 hashes.
    #[error("`info.pieces` is {0} bytes long, not a multiple of 20")]
    PiecesNotMultipleOf20(usize),
    /// The number of hashes does not fit the total length.
    #[error(
        "`info.pieces` holds {got} hashes, but {total} bytes in pieces of {piece_len} bytes need {want}"
    )]
    PieceCount {
        /// Hashes present.
        got: usize,
        /// Hashes needed.
        want: u32,
        /// Total bytes.
        total: u64,
        /// Piece length.
        piece_len: u32,
    },
    /// The piece length is out of range.
    #[error("`info.piece length` is {0}, outside 1 to {MAX_PIECE_LEN} bytes")]
    PieceLength(u64),
    /// Neither or both of `length` and `files`.
    #[error("`info` must have exactly one of `length` (one file) and `files` (a directory)")]
    LengthOrFiles,
    /// A multi-file manifest with an empty `files` list.
    #[error("`info.files` is empty")]
    NoFiles,
    /// A file path that could escape the download directory or is otherwise unusable.
    #[error("unsafe file path {path:?} in the manifest: {why}")]
    UnsafePath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two files with the same path, or a file that is also a directory of another.
    #[error("file path {0:?} appears twice in the manifest (or as both a file and a directory)")]
    DuplicatePath(String),
    /// Piece geometry that cannot be (no data, too many pieces).
    #[error(transparent)]
    Geometry(#[from] GeometryError),
    /// Lengths that add past 2^64.
    #[error("the file lengths add up to more than 2^64 bytes")]
    TotalOverflow,
    /// A BEP 52 torrent with no v1 part (`meta version` 2 and no `pieces`).
    #[error(
        "v2-only torrents are not supported yet (this manifest has `meta version` 2 and no v1 `pieces`)"
    )]
    V2Only,
    /// A name or path component that is not UTF-8 and has no `.utf-8` alternative.
    #[error("`{0}` is not valid UTF-8 (and there is no `{0}.utf-8` to use instead)")]
    NotUtf8(String),
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's root directory; checked safe.
    pub path: Vec<String>,
    /// Length in bytes.
    pub length: u64,
    /// A BEP 47 pad file: zeros in the piece stream, never created, listed or counted.
    pub pad: bool,
}

/// The `info` dictionary: what the info hash covers.
#[derive(Debug, Clone)]
pub struct Info {
    /// Suggested name: the file name, or the directory name of a multi-file torrent.
    pub name: String,
    /// Nominal piece length.
    pub piece_length: u32,
    /// SHA-1 of each piece.
    pub pieces: Vec<[u8; HASH_LEN]>,
    /// The files, in stream order. A single-file torrent has one, whose path is `[name]`.
    pub files: Vec<FileEntry>,
    /// Whether this is a directory (`files`) torrent.
    pub multi_file: bool,
    /// BEP 27 private flag.
    pub private: bool,
}

/// A parsed and checked manifest.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// The `announce` URL.
    pub announce: Option<String>,
    /// BEP 12 tiers of tracker URLs.
    pub announce_list: Vec<Vec<String>>,
    /// Free text.
    pub comment: Option<String>,
    /// The program that made it.
    pub created_by: Option<String>,
    /// Unix time of creation.
    pub creation_date: Option<i64>,
    /// The `info` dictionary.
    pub info: Info,
    /// SHA-1 of the exact bytes of `info` in the file.
    pub info_hash: InfoHash,
    /// The exact bytes of `info` (served to peers by BEP 9 later).
    pub info_bytes: Vec<u8>,
    geometry: Geometry,
    layout: FileLayout,
}

// The serde shapes of a manifest, shared by parsing and `share create`.
// serde_bencode writes struct fields as a dictionary with sorted keys.
#[derive(Serialize, Deserialize)]
pub(crate) struct RawTorrent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<String>,
    #[serde(rename = "announce-list", default, skip_serializing_if = "Option::is_none")]
    pub announce_list: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<ByteBuf>,
    #[serde(rename = "created by", default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<ByteBuf>,
    #[serde(rename = "creation date", default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<i64>,
    pub info: RawInfo,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct RawInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<RawFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    pub name: String,
    #[serde(rename = "piece length")]
    pub piece_length: u64,
    pub pieces: ByteBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<i64>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct RawFile {
    pub length: u64,
    pub path: Vec<String>,
}

// What parsing reads: wider than what `create` writes (see the module documentation).
#[derive(Deserialize)]
struct ReadTorrent {
    #[serde(default)]
    announce: Option<String>,
    #[serde(rename = "announce-list", default)]
    announce_list: Option<Vec<Vec<String>>>,
    #[serde(default)]
    comment: Option<ByteBuf>,
    #[serde(rename = "created by", default)]
    created_by: Option<ByteBuf>,
    #[serde(rename = "creation date", default)]
    creation_date: Option<i64>,
    info: ReadInfo,
}

#[derive(Deserialize)]
struct ReadInfo {
    #[serde(default)]
    files: Option<Vec<ReadFile>>,
    #[serde(default)]
    length: Option<u64>,
    name: ByteBuf,
    #[serde(rename = "name.utf-8", default)]
    name_utf8: Option<String>,
    #[serde(rename = "piece length")]
    piece_length: u64,
    #[serde(default)]
    pieces: Option<ByteBuf>,
    #[serde(default)]
    private: Option<i64>,
    #[serde(rename = "meta version", default)]
    meta_version: Option<i64>,
}

#[derive(Deserialize)]
struct ReadFile {
    length: u64,
    path: Vec<ByteBuf>,
    #[serde(rename = "path.utf-8", default)]
    path_utf8: Option<Vec<String>>,
    #[serde(default)]
    attr: Option<ByteBuf>,
}

impl Metainfo {
    /// Parses and checks a manifest.
    pub fn from_bytes(data: &[u8]) -> Result<Self, MetainfoError> {
        let span = bencode::dict_value_span(data, b"info")?.ok_or(MetainfoError::MissingInfo)?;
        if data.get(span.start) != Some(&b'd') {
            return Err(MetainfoError::Field {
                path: "info".into(),
                message: "is not a dictionary".into(),
            });
        }
        let info_bytes = data[span].to_vec();
        let de = &mut serde_bencode::Deserializer::new(data);
        let raw: ReadTorrent = serde_path_to_error::deserialize(de).map_err(|e| MetainfoError::Field {
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
        let info = check_info(raw.info)?;
        let layout = FileLayout::with_pads(
            info.files
                .iter()
                .map(|f| (f.path.iter().collect::<PathBuf>(), f.length, f.pad)),
        )
        .ok_or(MetainfoError::TotalOverflow)?;
        let geometry = Geometry::new(layout.total_len(), info.piece_length)?;
        if info.pieces.len() != geometry.piece_count() as usize {
            return Err(MetainfoError::PieceCount {
                got: info.pieces.len(),
                want: geometry.piece_count(),
                total: layout.total_len(),
                piece_len: info.piece_length,
            });
        }
        let text = |b: Option<ByteBuf>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Self {
            announce: raw.announce,
            announce_list: raw.announce_list.unwrap_or_default(),
            comment: text(raw.comment),
            created_by: text(raw.created_by),
            creation_date: raw.creation_date,
            info_hash: InfoHash(sha1(&info_bytes)),
            info_bytes,
            info,
            geometry,
            layout,
        })
    }

    /// Tracker URLs in the order to try them: the `announce-list` tiers when present (BEP 12
    /// says they replace `announce`), else `announce`; without repeats.
    pub fn trackers(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let tiers = self.announce_list.iter().flatten();
        let all: Vec<&String> = if self.announce_list.iter().any(|t| !t.is_empty()) {
            tiers.collect()
        } else {
            self.announce.iter().collect()
        };
        all.into_iter()
            .filter(|u| seen.insert(u.as_str()))
            .cloned()
            .collect()
    }

    /// Piece geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Files laid end to end; paths are relative to the download root (for a multi-file
    /// torrent they do not include the torrent's name).
    pub fn layout(&self) -> &FileLayout {
        &self.layout
    }

    /// Total bytes of the piece stream, pad files included.
    pub fn total_len(&self) -> u64 {
        self.layout.total_len()
    }

    /// The files a person sees: every file but the BEP 47 pad files.
    pub fn content_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.info.files.iter().filter(|f| !f.pad)
    }

    /// Bytes of the files a person sees (pad files not counted).
    pub fn content_len(&self) -> u64 {
        self.content_files().map(|f| f.length).sum()
    }
}

fn check_info(raw: ReadInfo) -> Result<Info, MetainfoError> {
    let Some(raw_pieces) = raw.pieces else {
        return Err(if raw.meta_version == Some(2) {
            MetainfoError::V2Only
        } else {
            MetainfoError::Field {
                path: "info".into(),
                message: "missing field `pieces`".into(),
            }
        });
    };
    let piece_length = match u32::try_from(raw.piece_length) {
        Ok(l) if l > 0 && l <= MAX_PIECE_LEN => l,
        _ => return Err(MetainfoError::PieceLength(raw.piece_length)),
    };
    if raw_pieces.len() % HASH_LEN != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20(raw_pieces.len()));
    }
    let pieces = raw_pieces
        .chunks_exact(HASH_LEN)
        .map(|c| c.try_into().expect("chunks of 20"))
        .collect();
    let name = text_field(raw.name, raw.name_utf8, "info.name")?;
    check_component(&name, &name)?;
    let (files, multi_file) = match (raw.length, raw.files) {
        (Some(length), None) => (
            vec![FileEntry {
                path: vec![name.clone()],
                length,
                pad: false,
            }],
            false,
        ),
        (None, Some(files)) => {
            if files.is_empty() {
                return Err(MetainfoError::NoFiles);
            }
            let files = files
                .into_iter()
                .enumerate()
                .map(|(i, f)| {
                    let field = format!("info.files[{i}].path");
                    let path = match f.path_utf8 {
                        Some(p) => p,
                        None => f
                            .path
                            .into_iter()
                            .map(|c| text_field(c, None, &field))
                            .collect::<Result<_, _>>()?,
                    };
                    Ok(FileEntry {
                        path,
                        length: f.length,
                        pad: f.attr.is_some_and(|a| a.contains(&b'p')),
                    })
                })
                .collect::<Result<Vec<_>, MetainfoError>>()?;
            check_paths(&files)?;
            (files, true)
        }
        _ => return Err(MetainfoError::LengthOrFiles),
    };
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        private: raw.private == Some(1),
    })
}

/// The UTF-8 text of a name: its `.utf-8` alternative when there is one, else the bytes
/// themselves, which must then be UTF-8.
fn text_field(bytes: ByteBuf, utf8: Option<String>, field: &str) -> Result<String, MetainfoError> {
    match utf8 {
        Some(s) => Ok(s),
        None => String::from_utf8(bytes.into_vec()).map_err(|_| MetainfoError::NotUtf8(field.to_string())),
    }
}

/// Every path safe, and no path used twice or as both a file and a directory. Pad files are
/// never created, so only their components are checked (libtorrent names several alike).
fn check_paths(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut file_paths = HashSet::new();
    let mut dir_paths = HashSet::new();
    for f in files {
        let shown = f.path.join("/");
        if f.path.is_empty() {
            return Err(MetainfoError::UnsafePath {
                path: shown,
                why: "it has no components",
            });
        }
        for c in &f.path {
            check_component(c, &shown)?;
        }
        if f.pad {
            continue;
        }
        for depth in 1..f.path.len() {
            dir_paths.insert(f.path[..depth].to_vec());
        }
        if !file_paths.insert(f.path.clone()) {
            return Err(MetainfoError::DuplicatePath(shown));
        }
    }
    if let Some(clash) = file_paths.intersection(&dir_paths).next() {
        return Err(MetainfoError::DuplicatePath(clash.join("/")));
    }
    Ok(())
}

/// One path component must name a single entry inside its directory.
fn check_component(c: &str, shown: &str) -> Result<(), MetainfoError> {
    let why = if c.is_empty() {
        "it has an empty component"
    } else if c == "." || c == ".." {
        "it has a `.` or `..` component"
    } else if c.contains('/') || c.contains('\\') {
        "a component contains a path separator (an absolute or nested name)"
    } else if c.contains('\0') {
        "it contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(MetainfoError::UnsafePath {
        path: shown.to_string(),
        why,
    })
}

/// A manifest around an info dictionary's exact bytes (so its info hash is theirs) and
/// `trackers`: the first as `announce`, all of them, one tier each, in `announce-list`.
pub fn manifest_bytes(info: &[u8], trackers: &[String]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(info.len() + 64);
    bytes.push(b'd');
    if let Some(first) = trackers.first() {
        bytes.extend_from_slice(format!("8:announce{}:{first}", first.len()).as_bytes());
    }
    if trackers.len() > 1 {
        bytes.extend_from_slice(b"13:announce-listl");
        for t in trackers {
            bytes.extend_from_slice(format!("l{}:{t}e", t.len()).as_bytes());
        }
        bytes.push(b'e');
    }
    bytes.extend_from_slice(b"4:info");
    bytes.extend_from_slice(info);
    bytes.push(b'e');
    bytes
}

/// The magnet link of `meta` (its name and trackers).
pub fn magnet_link(meta: &Metainfo) -> String {
    crate::magnet::Magnet {
        info_hash: meta.info_hash,
        name: Some(meta.info.name.clone()),
        trackers: meta.trackers(),
        peers: Vec::new(),
    }
    .to_link()
}

#[cfg(test)]
mod tests;
