use super::*;
use crate::metainfo::Metainfo;
use std::sync::atomic::Ordering;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

#[test]
fn auto_piece_len_targets_1000_to_2000_pieces() {
    assert_eq!(auto_piece_len(1), MIN_PIECE_LEN);
    assert_eq!(auto_piece_len(1 << 30), 1 << 20);
    assert_eq!(auto_piece_len(u64::MAX / 2), MAX_CREATE_PIECE_LEN);
    for total in [40_000_000u64, 700_000_000, 4_700_000_000, 1 << 34] {
        let n = total.div_ceil(u64::from(auto_piece_len(total)));
        assert!((1000..=2000).contains(&n), "{total}: {n} pieces");
    }
    assert!(check_piece_len(262_144).is_ok());
    assert!(check_piece_len(100_000).is_err());
    assert!(check_piece_len(8192).is_err());
    assert!(check_piece_len(1 << 25).is_err());
}

#[test]
fn single_file_round_trip_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data = pattern(1_000_000, 1);
    std::fs::write(&path, &data).unwrap();
    let opts = CreateOptions {
        trackers: vec!["http://127.0.0.1:6969/announce".into()],
        piece_len: Some(32_768),
        ..Default::default()
    };
    let (bytes, hash) = create(&path, &opts, 3, &|_| {}).unwrap();
    let (again, hash_again) = create(&path, &opts, 1, &|_| {}).unwrap();
    assert_eq!(
        bytes, again,
        "same input and options, same bytes, whatever the thread count"
    );
    assert_eq!(hash, hash_again);
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.info_hash, hash);
    assert_eq!(m.info.name, "data.bin");
    assert_eq!(m.total_len(), 1_000_000);
    for (i, chunk) in data.chunks(32_768).enumerate() {
        assert_eq!(m.info.pieces[i], sha1(chunk), "piece {i}");
    }
    assert_eq!(m.trackers(), opts.trackers);
    assert!(m.announce_list.is_empty());
}

#[test]
fn directory_pieces_span_sorted_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    std::fs::create_dir_all(root.join("b/deep")).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    let files: [(&str, Vec<u8>); 4] = [
        ("a.txt", pattern(5_000, 2)),
        ("b/deep/c.bin", pattern(40_000, 3)),
        ("b/empty", vec![]),
        ("z", pattern(17_000, 4)),
    ];
    for (p, d) in &files {
        std::fs::write(root.join(p), d).unwrap();
    }
    let opts = CreateOptions {
        trackers: vec!["http://one/".into(), "http://two/".into()],
        private: true,
        comment: Some("c".into()),
        created_by: Some("share test".into()),
        creation_date: Some(5),
        ..Default::default()
    };
    let mut done = std::sync::atomic::AtomicU64::new(0);
    let (bytes, hash) = create(&root, &opts, 2, &|n| {
        done.fetch_add(n, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(*done.get_mut(), 62_000);
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.info_hash, hash);
    assert!(m.info.multi_file && m.info.private);
    assert_eq!(m.info.name, "album");
    let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(paths, ["a.txt", "b/deep/c.bin", "b/empty", "z"]);
    let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(m.info.piece_length, MIN_PIECE_LEN);
    for (i, chunk) in stream.chunks(MIN_PIECE_LEN as usize).enumerate() {
        assert_eq!(m.info.pieces[i], sha1(chunk), "piece {i}");
    }
    assert_eq!(
        m.announce_list,
        vec![vec!["http://one/".to_string()], vec!["http://two/".to_string()]]
    );
    assert_eq!(
        (m.comment.as_deref(), m.created_by.as_deref(), m.creation_date),
        (Some("c"), Some("share test"), Some(5))
    );
}

#[test]
fn keys_are_written_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    std::fs::write(&path, b"hello").unwrap();
    let opts = CreateOptions {
        trackers: vec!["http://t/".into()],
        private: true,
        ..Default::default()
    };
    let (bytes, _) = create(&path, &opts, 1, &|_| {}).unwrap();
    let mut want =
        b"d8:announce9:http://t/4:infod6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:".to_vec();
    want.extend_from_slice(&sha1(b"hello"));
    want.extend_from_slice(b"7:privatei1eee");
    assert_eq!(bytes, want);
}

#[test]
fn empty_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        scan(&empty).unwrap_err().to_string(),
        format!("{} is empty: there is nothing to share", empty.display())
    );
    let empty_dir = dir.path().join("d");
    std::fs::create_dir_all(empty_dir.join("sub")).unwrap();
    std::fs::write(empty_dir.join("sub/zero"), b"").unwrap();
    assert!(matches!(scan(&empty_dir), Err(CreateError::Empty(_))));
    let missing = dir.path().join("nope");
    assert_eq!(
        scan(&missing).unwrap_err().to_string(),
        format!("cannot read {}", missing.display())
    );
}
