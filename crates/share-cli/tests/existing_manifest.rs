//! An existing manifest is never silently replaced: `share seed FILE` seeds an existing
//! `FILE.torrent` that describes the data as it is (mktorrent's info hash and trackers, or
//! an earlier `share seed`'s, embedded tracker included), refuses one that does not without
//! `--force`, and `share create` refuses to replace its output without `--force`.

mod common;

use std::path::Path;

use common::proc::{fetch, listen_port, seed, Proc};
use common::{pattern, run_tool, seed_args, share};

/// The info hash `transmission-show` reads from a manifest, when it is installed.
fn transmission_hash(manifest: &Path) -> Option<String> {
    let tool = share_tests::tools::require("transmission-show", "transmission-cli", "existing_manifest")?;
    let out = run_tool(&tool, &[manifest.to_str().unwrap()]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Hash: ").map(str::to_string))
        .map(|h| h.trim().to_lowercase())
}

#[test]
fn seed_keeps_an_existing_mktorrent_manifest_of_the_same_data() {
    let Some(mktorrent) = share_tests::tools::require(
        "mktorrent",
        "mktorrent",
        "seed_keeps_an_existing_mktorrent_manifest_of_the_same_data",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("song.bin");
    let data = pattern(1_300_000, 61);
    std::fs::write(&file, &data).unwrap();
    let manifest = dir.path().join("song.bin.torrent");
    // 32 KiB pieces, which share would not pick for this size: a different info hash if
    // share re-made it.
    run_tool(
        &mktorrent,
        &[
            "-l",
            "15",
            "-a",
            "http://127.0.0.1:1/announce",
            "-o",
            manifest.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    let before = std::fs::read(&manifest).unwrap();
    let theirs = share(&["info", manifest.to_str().unwrap(), "--json"]);
    let theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
    let hash = theirs["info_hash"].as_str().unwrap().to_string();
    if let Some(t) = transmission_hash(&manifest) {
        assert_eq!(t, hash, "transmission-show agrees on mktorrent's info hash");
    }

    let (mut seeder, shown) = seed(&file, &[]);
    let seeding = &seeder.seen[0];
    assert_eq!(shown, manifest.to_str().unwrap());
    assert_eq!(seeding["info_hash"], hash.as_str(), "seeds mktorrent's info hash");
    assert_eq!(seeding["existing_manifest"], true);
    assert_eq!(
        seeding["trackers"],
        serde_json::json!(["http://127.0.0.1:1/announce"])
    );
    assert_eq!(seeding["embedded_tracker"], false);
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        before,
        "the manifest is unchanged"
    );
    // A fetcher with mktorrent's manifest gets the data from this seeder.
    let port = listen_port(seeding);
    let out = dir.path().join("got.bin");
    let mut f = fetch(
        manifest.to_str().unwrap(),
        &out,
        &["--no-seed", "--peer", &format!("127.0.0.1:{port}")],
    );
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0));

    // The data changes: the manifest no longer describes it, and is kept untouched.
    let mut changed = data.clone();
    changed[700_000] ^= 1;
    std::fs::write(&file, &changed).unwrap();
    let r = share(&seed_args(&file, &[]));
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "share: {} already exists and does not match the data in {} (piece 21 fails its hash check); pass --force to replace it with a new manifest",
            manifest.display(),
            file.display()
        )
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    // Options that would make another manifest are refused too.
    std::fs::write(&file, &data).unwrap();
    let r = share(&seed_args(&file, &["--piece-size", "64K"]));
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr)
        .contains("has pieces of 32768 bytes where --piece-size asks for 65536"));

    // --force makes share's own manifest, with its own info hash.
    let (_forced, _) = seed(&file, &["--force"]);
    assert_ne!(_forced.seen[0]["info_hash"], hash.as_str());
    assert_eq!(_forced.seen[0]["existing_manifest"], false);
    assert_ne!(std::fs::read(&manifest).unwrap(), before);
}

#[test]
fn a_second_share_seed_reuses_its_manifest_and_its_embedded_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let data = pattern(900_000, 62);
    std::fs::write(&file, &data).unwrap();
    let (mut first, manifest) = seed(&file, &[]);
    let hash = first.seen[0]["info_hash"].clone();
    let trackers = first.seen[0]["trackers"].clone();
    first.signal("INT");
    assert_eq!(first.exit_code(30), Some(0));
    let bytes = std::fs::read(&manifest).unwrap();

    let (_again, _) = seed(&file, &[]);
    let seeding = &_again.seen[0];
    assert_eq!(seeding["info_hash"], hash);
    assert_eq!(seeding["trackers"], trackers);
    assert_eq!(seeding["existing_manifest"], true);
    assert_eq!(
        seeding["embedded_tracker"], true,
        "the manifest's tracker is served again"
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), bytes);
    // A fetcher finds the seeder through that tracker alone.
    let out = dir.path().join("out.bin");
    let mut f = fetch(&manifest, &out, &["--no-seed"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(f.seen.iter().any(|v| v["event"] == "tracker_ok"));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn create_refuses_to_replace_an_existing_manifest_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, pattern(100_000, 63)).unwrap();
    let out = dir.path().join("f.torrent");
    std::fs::write(&out, b"someone's manifest").unwrap();
    let args = ["create", file.to_str().unwrap(), "-o", out.to_str().unwrap()];
    let r = share(&args);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&r.stderr).trim_end(),
        format!(
            "share: {} already exists; pass --force to replace it",
            out.display()
        )
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"someone's manifest");
    let r = share(&[&args[..], &["--force"]].concat());
    assert!(r.status.success());
    assert_ne!(std::fs::read(&out).unwrap(), b"someone's manifest");

    // `share seed` with something that is not a manifest where its manifest goes.
    let manifest = dir.path().join("f.bin.torrent");
    std::fs::write(&manifest, b"notes, not a manifest").unwrap();
    let mut p = Proc::share(&seed_args(&file, &["--json"]));
    assert_eq!(p.exit_code(30), Some(2));
    assert!(
        p.stderr().contains("already exists and cannot be reused"),
        "{}",
        p.stderr()
    );
    assert!(p.stderr().contains("--force"));
    assert_eq!(std::fs::read(&manifest).unwrap(), b"notes, not a manifest");
}
