//! Helpers for the engine's unit tests.

use std::path::Path;

use share_proto::create::{self, CreateOptions};
use share_proto::metainfo::Metainfo;

/// The manifest of `src` (a file or a directory already written), 16 KiB pieces.
pub(crate) fn manifest_of(src: &Path) -> Metainfo {
    let source = create::scan(src).unwrap();
    let pieces = create::hash_pieces(&source, 16_384, 1, &|_| {}).unwrap();
    let options = CreateOptions {
        trackers: vec![],
        piece_len: Some(16_384),
        private: false,
        comment: None,
        created_by: None,
        creation_date: None,
    };
    Metainfo::from_bytes(&create::encode(&source, 16_384, &pieces, &options).0).unwrap()
}
