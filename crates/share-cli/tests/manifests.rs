//! `share create` and `share info` against committed manifests from other tools and against
//! the real tools themselves (mktorrent, transmission-create, transmission-show, aria2c).

mod common;

use common::{fixtures, pattern, run_tool, share, share_json};
use share_tests::tools::require;

fn expected_hashes() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(fixtures().join("expected-hashes.txt")).unwrap();
    text.lines()
        .map(|l| {
            l.split_once(' ')
                .map(|(f, h)| (f.to_string(), h.to_string()))
                .unwrap()
        })
        .collect()
}

#[test]
fn info_shows_the_hash_other_tools_reported() {
    let cases = expected_hashes();
    assert_eq!(cases.len(), 5);
    for (file, hash) in cases {
        let path = fixtures().join(&file);
        let v = share_json(&["info", "--json", path.to_str().unwrap()]);
        assert_eq!(v["info_hash"], hash.as_str(), "{file}");
        let out = share(&["info", path.to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("info hash:  {hash}")),
            "{file}"
        );
    }
}

#[test]
fn info_lists_files_sizes_and_flags() {
    let v = share_json(&[
        "info",
        "--json",
        fixtures().join("mktorrent-dir.torrent").to_str().unwrap(),
    ]);
    assert_eq!(v["name"], "album");
    assert_eq!(v["multi_file"], true);
    assert_eq!(v["private"], true);
    assert_eq!(v["piece_length"], 32_768);
    assert_eq!(v["total_length"], 24 + 30_000 + 12_345);
    assert_eq!(v["piece_count"], 2);
    let files: Vec<(String, u64)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["length"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("cover.txt", 24),
        ("disc1/track1.bin", 30_000),
        ("disc1/track2.bin", 12_345),
        ("empty", 0),
    ];
    assert_eq!(files, want.map(|(p, l)| (p.to_string(), l)).to_vec());
    assert_eq!(
        v["trackers"],
        serde_json::json!(["http://127.0.0.1:6969/announce", "http://127.0.0.2:6969/announce"])
    );
    let single = share_json(&[
        "info",
        "--json",
        fixtures().join("mktorrent-single.torrent").to_str().unwrap(),
    ]);
    assert_eq!(single["comment"], "made by mktorrent");
    assert_eq!(single["created_by"], "mktorrent 1.1");
    assert!(single["creation_date"].as_i64().unwrap() > 1_700_000_000);
}

/// mktorrent writes the same `info` keys we do, so the same input and piece size must give
/// the same info hash: proof that our hashing, file order and encoding agree with it.
#[test]
fn create_reproduces_mktorrent_info_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let hashes: std::collections::HashMap<_, _> = expected_hashes().into_iter().collect();
    let out = dir.path().join("single.torrent");
    let single = fixtures().join("payload/single.bin");
    let v = share_json(&[
        "create",
        single.to_str().unwrap(),
        "--piece-size",
        "32K",
        "-t",
        "http://127.0.0.1:6969/announce",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["info_hash"], hashes["mktorrent-single.torrent"].as_str());
    let album = fixtures().join("payload/album");
    let out = dir.path().join("album.torrent");
    let v = share_json(&[
        "create",
        album.to_str().unwrap(),
        "--piece-size",
        "32K",
        "--private",
        "-t",
        "http://127.0.0.1:6969/announce",
        "-t",
        "http://127.0.0.2:6969/announce",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["info_hash"], hashes["mktorrent-dir.torrent"].as_str());
    let info = share_json(&["info", "--json", out.to_str().unwrap()]);
    assert_eq!(info["info_hash"], v["info_hash"]);
}

#[test]
fn create_is_deterministic_and_defaults_beside_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.iso");
    std::fs::write(&file, pattern(3_000_000, 1)).unwrap();
    let first = share_json(&["create", file.to_str().unwrap(), "--json"]);
    let manifest = dir.path().join("data.iso.torrent");
    let bytes = std::fs::read(&manifest).unwrap();
    let second = share_json(&["create", file.to_str().unwrap(), "--json"]);
    assert_eq!(std::fs::read(&manifest).unwrap(), bytes);
    assert_eq!(first["info_hash"], second["info_hash"]);
    assert_eq!(
        first["piece_length"], 16_384,
        "3 MB gets 16 KiB pieces (184 of them)"
    );
    assert_eq!(first["pieces"], 184);
    let text = share(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        dir.path().join("x.torrent").to_str().unwrap(),
    ]);
    let line = String::from_utf8_lossy(&text.stdout);
    assert!(
        line.starts_with("wrote ") && line.contains(first["info_hash"].as_str().unwrap()),
        "{line}"
    );
}

/// Manifests we make load in transmission-show and aria2c with our info hash, and theirs,
/// made now on fresh data, load in `share info` with theirs.
#[test]
fn real_tools_agree_on_fresh_manifests() {
    let name = "real_tools_agree_on_fresh_manifests";
    let (Some(tshow), Some(tcreate), Some(aria2c), Some(mktorrent)) = (
        require("transmission-show", "transmission-cli", name),
        require("transmission-create", "transmission-cli", name),
        require("aria2c", "aria2", name),
        require("mktorrent", "mktorrent", name),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.bin"), pattern(700_001, 2)).unwrap();
    std::fs::write(root.join("sub/b.bin"), pattern(300_000, 3)).unwrap();
    let file = dir.path().join("one.bin");
    std::fs::write(&file, pattern(2_500_000, 4)).unwrap();

    for input in [&file, &root] {
        let out = dir.path().join("ours.torrent");
        // `create` never replaces an existing manifest with another one.
        let _ = std::fs::remove_file(&out);
        let ours = share_json(&[
            "create",
            input.to_str().unwrap(),
            "-t",
            "http://127.0.0.1:1/announce",
            "-o",
            out.to_str().unwrap(),
            "--json",
        ]);
        let hash = ours["info_hash"].as_str().unwrap();
        let shown = run_tool(&tshow, &[out.to_str().unwrap()]);
        assert!(
            shown.contains(&format!("Hash: {hash}")),
            "transmission-show disagrees:\n{shown}"
        );
        let aria = run_tool(&aria2c, &["--show-files", out.to_str().unwrap()]);
        assert!(aria.contains(hash), "aria2c --show-files disagrees:\n{aria}");
        if input == &root {
            assert!(
                shown.contains("set/sub/b.bin") && aria.contains("set/sub/b.bin"),
                "{shown}\n{aria}"
            );
        }
    }

    for input in [&file, &root] {
        let t = dir.path().join("transmission.torrent");
        let m = dir.path().join("mktorrent.torrent");
        let _ = std::fs::remove_file(&t);
        let _ = std::fs::remove_file(&m);
        run_tool(
            &tcreate,
            &[
                "-t",
                "http://127.0.0.1:1/announce",
                "-o",
                t.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
        );
        run_tool(
            &mktorrent,
            &[
                "-l",
                "16",
                "-a",
                "http://127.0.0.1:1/announce",
                "-o",
                m.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
        );
        for manifest in [&t, &m] {
            let shown = run_tool(&tshow, &[manifest.to_str().unwrap()]);
            let theirs = shown
                .lines()
                .find_map(|l| l.trim().strip_prefix("Hash: "))
                .unwrap()
                .to_string();
            let v = share_json(&["info", "--json", manifest.to_str().unwrap()]);
            assert_eq!(v["info_hash"], theirs.as_str(), "{}", manifest.display());
        }
    }
}
