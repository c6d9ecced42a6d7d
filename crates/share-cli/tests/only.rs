//! `share fetch --only GLOB`: a directory torrent of six files of odd sizes in 16 KiB pieces,
//! so that pieces straddle file boundaries. Only the selected files are created, byte for
//! byte; pieces shared with skipped files are kept in the side file, served from there to
//! other peers, and reused by a later fetch of everything into the same place.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::proc::{fetch, seed, Proc};
use common::{pattern, share, STATE_DIR};

/// Stream offsets (16 KiB pieces p0..p7): a.txt 0.., docs/b.pdf 10001.., docs/c.pdf 33458..,
/// mid.bin 41235.. (pieces 2-4: piece 2 shares bytes with both PDFs, piece 4 with d.txt),
/// sub/deep/d.txt 81238.., z.dat 86793..116794.
const FILES: [(&str, usize); 6] = [
    ("a.txt", 10_001),
    ("docs/b.pdf", 23_457),
    ("docs/c.pdf", 7_777),
    ("mid.bin", 40_003),
    ("sub/deep/d.txt", 5_555),
    ("z.dat", 30_001),
];

/// Writes the torrent's files below `dir/src` (bytes differ per `seed`, so every test has
/// its own info hash); returns the root and the files' contents.
fn tree(dir: &Path, seed: u32) -> (std::path::PathBuf, Vec<(&'static str, Vec<u8>)>) {
    let root = dir.join("src");
    let files: Vec<_> = FILES
        .iter()
        .enumerate()
        .map(|(i, &(p, len))| (p, pattern(len, seed * 10 + i as u32)))
        .collect();
    for (p, data) in &files {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    (root, files)
}

/// Every file below `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.map(Result::unwrap) {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn same(out: &Path, files: &[(&str, Vec<u8>)], want: &[&str]) {
    assert_eq!(listing(out), want, "exactly the selected files exist");
    for (p, data) in files.iter().filter(|(p, _)| want.contains(p)) {
        assert!(
            std::fs::read(out.join(p)).unwrap() == *data,
            "{p} is byte-identical"
        );
    }
}

fn verified(p: &Proc) -> BTreeSet<u64> {
    p.seen
        .iter()
        .filter(|v| v["event"] == "piece_verified")
        .map(|v| v["piece"].as_u64().unwrap())
        .collect()
}

/// `127.0.0.1:PORT` of a process's `listen` address.
fn peer_of(v: &serde_json::Value) -> String {
    let port = v["listen"].as_str().unwrap().rsplit(':').next().unwrap();
    format!("127.0.0.1:{port}")
}

/// The side file of a fetch of `info_hash` (hex) saved as `out`: beside its resume record,
/// `STATE/resume/HASH-DIGEST.parts`, the digest naming the canonical output path.
fn side_file(out: &Path, info_hash: &str) -> std::path::PathBuf {
    let canonical = std::fs::canonicalize(out.parent().unwrap())
        .unwrap()
        .join(out.file_name().unwrap());
    let mut key = canonical.as_os_str().as_encoded_bytes().to_vec();
    key.push(0);
    key.extend(
        (0..40)
            .step_by(2)
            .map(|i| u8::from_str_radix(&info_hash[i..i + 2], 16).unwrap()),
    );
    let digest: String = share_proto::hash::sha1(&key)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Path::new(STATE_DIR)
        .join("resume")
        .join(format!("{info_hash}-{digest}.parts"))
}

#[test]
fn only_one_middle_file_is_created_and_it_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (root, files) = tree(dir.path(), 1);
    let (_seeder, manifest) = seed(&root, &["--piece-size", "16K"]);
    let out = dir.path().join("out");
    let mut f = fetch(&manifest, &out, &["--no-seed", "--only", "mid.bin"]);
    let fetching = f.wait_event(30, "fetching");
    assert_eq!(fetching["files"], serde_json::json!(["mid.bin"]));
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    same(&out, &files, &["mid.bin"]);
    assert_eq!(
        verified(&f),
        BTreeSet::from([2, 3, 4]),
        "the pieces holding mid.bin, and no other"
    );
    let side = std::fs::read(side_file(&out, fetching["info_hash"].as_str().unwrap())).unwrap();
    let (start, end) = (41_235, 81_238);
    assert!(
        side[32_768..start] == [&files[1].1[22_767..], &files[2].1[..]].concat()[..],
        "piece 2's PDF bytes are kept aside"
    );
    assert!(
        side[end..] == files[4].1[..81_920 - end],
        "and piece 4's d.txt bytes"
    );
}

#[test]
fn two_globs_select_every_file_either_matches_and_the_fetch_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let (root, files) = tree(dir.path(), 2);
    let (_seeder, manifest) = seed(&root, &["--piece-size", "16K"]);
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let run = share(&[
        "fetch",
        &manifest,
        "-o",
        o,
        "--port",
        "0",
        "--no-seed",
        "--only",
        "docs/*.pdf",
        "--only",
        "**/*.txt",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let want = ["a.txt", "docs/b.pdf", "docs/c.pdf", "sub/deep/d.txt"];
    same(&out, &files, &want);
    assert!(stderr.contains("fetching 4 of 6 files of src ("), "{stderr}");
    for p in want {
        assert!(
            stderr.lines().any(|l| l.ends_with(&format!("  {p}"))),
            "{p} listed: {stderr}"
        );
    }
    assert!(
        !stderr.contains("mid.bin") && !stderr.contains("z.dat"),
        "{stderr}"
    );
}

#[test]
fn a_glob_that_matches_nothing_is_bad_input_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = tree(dir.path(), 3);
    let made = share(&["create", root.to_str().unwrap(), "--piece-size", "16K"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let manifest = dir.path().join("src.torrent");
    let out = dir.path().join("out");
    let run = share(&[
        "fetch",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--peer",
        "127.0.0.1:1",
        "--port",
        "0",
        "--only",
        "mid.bin",
        "--only",
        "docs/*.txt",
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!(
            "share: --only \"docs/*.txt\" matches no file of src; `share info {}` lists its files\n",
            manifest.display()
        )
    );
    assert!(!out.exists(), "nothing was created");

    // Pieces shared with skipped files need the state directory: without one, nothing starts.
    let run = common::share_cmd()
        .args(["fetch", manifest.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--peer", "127.0.0.1:1", "--port", "0", "--only", "mid.bin"])
        .env_remove("SHARE_STATE_DIR")
        .env_remove("XDG_DATA_HOME")
        .env_remove("HOME")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "share: fetching only some files needs a state directory (for the pieces they share with the files skipped), and there is none: pass --state-dir DIR\n"
    );
    assert!(!out.exists(), "nothing was created");
}

/// A peer that fetched only mid.bin serves what it has, straddling pieces included (read
/// back from its side file). A fetch of the PDFs and mid.bin from it alone gets those pieces
/// and no more; interrupted, then rerun against the full seeder, it resumes without
/// fetching a verified piece again. A fetch of everything into the same place then
/// completes every file, reusing what the side file held, and removes the side file.
#[test]
fn an_interrupted_only_fetch_resumes_and_a_full_fetch_completes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (root, files) = tree(dir.path(), 4);
    // Nobody listens at the tracker, and nobody exchanges peers: who talks to whom is set
    // with --peer alone.
    let (seeder, manifest) = seed(
        &root,
        &[
            "--piece-size",
            "16K",
            "--tracker",
            "http://127.0.0.1:1/announce",
            "--no-pex",
        ],
    );
    let seeder_addr = peer_of(&seeder.seen[0]);
    let hash = seeder.seen[0]["info_hash"].as_str().unwrap().to_string();

    let mid = dir.path().join("mid-only");
    let mut partial_peer = fetch(
        &manifest,
        &mid,
        &["--peer", &seeder_addr, "--only", "mid.bin", "--no-pex"],
    );
    let partial_addr = peer_of(&partial_peer.wait_event(30, "fetching"));
    partial_peer.wait_event(60, "complete");
    same(&mid, &files, &["mid.bin"]);

    let out = dir.path().join("out");
    let only = ["--only", "docs/*.pdf", "--only", "mid.bin"];
    let mut first = fetch(
        &manifest,
        &out,
        &[&["--no-seed", "--no-pex", "--peer", &partial_addr][..], &only].concat(),
    );
    for _ in 0..3 {
        first.wait(60, "a piece verified", |v| v["event"] == "piece_verified");
    }
    assert_eq!(
        verified(&first),
        BTreeSet::from([2, 3, 4]),
        "what the partial peer has, straddling pieces 2 and 4 included"
    );
    first.signal("INT");
    assert_eq!(first.exit_code(30), Some(130), "{}", first.stderr());
    assert!(
        first
            .stderr()
            .contains("of 5 pieces verified; run the same command again"),
        "{}",
        first.stderr()
    );
    assert_eq!(listing(&out), ["docs/b.pdf", "docs/c.pdf", "mid.bin"]);

    let mut again = fetch(
        &manifest,
        &out,
        &[&["--no-seed", "--no-pex", "--peer", &seeder_addr][..], &only].concat(),
    );
    let checked = again.wait(60, "the resume check", |v| {
        v["event"] == "checking" && v["done"] == v["total"]
    });
    assert_eq!(checked["total"], 5 * 16_384, "only the wanted pieces are checked");
    again.wait_event(60, "complete");
    assert_eq!(again.exit_code(30), Some(0), "{}", again.stderr());
    assert_eq!(
        verified(&again),
        BTreeSet::from([0, 1]),
        "nothing verified before is fetched again"
    );
    same(&out, &files, &["docs/b.pdf", "docs/c.pdf", "mid.bin"]);
    assert!(
        side_file(&mid, &hash).exists() && side_file(&out, &hash).exists(),
        "one per output"
    );

    let mut full = fetch(
        &manifest,
        &out,
        &["--no-seed", "--no-pex", "--peer", &seeder_addr],
    );
    full.wait_event(60, "complete");
    assert_eq!(full.exit_code(30), Some(0), "{}", full.stderr());
    let all: Vec<&str> = FILES.iter().map(|(p, _)| *p).collect();
    same(&out, &files, &all);
    assert_eq!(
        verified(&full),
        BTreeSet::from([5, 6, 7]),
        "pieces 0 and 4 came from the side file: their a.txt and d.txt bytes were nowhere else"
    );
    assert!(
        !side_file(&out, &hash).exists(),
        "the full fetch removed its side file"
    );
    assert!(side_file(&mid, &hash).exists(), "mid-only keeps its own");
    drop(partial_peer);
}
