//! Manifest parsing (what `share info` and `share fetch` read from a stranger's file), then
//! everything the engine derives from an accepted manifest: geometry, blocks, file segments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use share_proto::metainfo::Metainfo;

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = Metainfo::from_bytes(data) else {
        return;
    };
    let g = meta.geometry();
    assert_eq!(g.total_len(), meta.total_len());
    assert_eq!(meta.info.pieces.len(), g.piece_count() as usize);
    for f in meta.layout().files() {
        assert!(f.path.is_relative(), "accepted an absolute path: {:?}", f.path);
        for c in f.path.components() {
            assert!(
                matches!(c, std::path::Component::Normal(_)),
                "accepted an unsafe path: {:?}",
                f.path
            );
        }
    }
    // The last piece and its blocks map onto the files without panicking.
    if let Some(last) = g.piece(g.piece_count().saturating_sub(1)) {
        for b in g.blocks(last).take(64) {
            let seg_len: u64 = meta
                .layout()
                .segments(g.block_offset(&b), u64::from(b.len))
                .map(|s| s.len)
                .sum();
            assert_eq!(seg_len, u64::from(b.len));
        }
    }
    let _ = meta.trackers();
});
