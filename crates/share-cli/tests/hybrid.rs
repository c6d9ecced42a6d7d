//! Hybrid (v1+v2) torrents made by libtorrent: their BEP 47 pad files are neither listed,
//! counted nor written, a fetch from a libtorrent seeder is byte-identical, and a v2-only
//! torrent is refused with a sentence that says so.

mod common;

use std::path::{Path, PathBuf};

use common::libtorrent::Libtorrent;
use common::proc::fetch;
use common::{fixtures, share, share_json};

const HYBRID: &str = "libtorrent-hybrid.torrent";
/// libtorrent's `info_hashes().v1` for the fixture (fixtures/README.md).
const HYBRID_V1_HASH: &str = "ccbc41cb508535a1c5e20a50b888a78dbcf92725";

fn fixture(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_string()
}

#[test]
fn info_lists_and_counts_no_pad_files() {
    let out = share(&["info", &fixture(HYBRID)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(".pad"), "{text}");
    assert!(text.contains(&format!("info hash:  {HYBRID_V1_HASH}")), "{text}");
    assert!(text.contains("(42369 bytes) in 4 files"), "{text}");
    assert!(text.contains("pieces:     4 of 16.00 KiB"), "{text}");

    let v = share_json(&["info", "--json", &fixture(HYBRID)]);
    assert_eq!(v["info_hash"], HYBRID_V1_HASH);
    assert_eq!(v["total_length"], 24 + 30_000 + 12_345);
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["cover.txt", "disc1/track1.bin", "disc1/track2.bin", "empty"]
    );
}

#[test]
fn a_v2_only_torrent_is_refused_as_not_supported_yet() {
    let path = fixture("libtorrent-v2only.torrent");
    let out = share(&["info", &path]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("v2-only torrents are not supported yet") && !err.contains("Missing Field"),
        "{err}"
    );
}

/// libtorrent seeding the fixture's payload on loopback: prints its port once it seeds,
/// then seeds until it is killed.
const SEEDER: &str = r#"
import sys, time
import libtorrent as lt
ses = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                  'enable_upnp': False, 'enable_natpmp': False,
                  'allow_multiple_connections_per_ip': True})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(sys.argv[1])
p.save_path = sys.argv[2]
h = ses.add_torrent(p)
deadline = time.time() + 60
while not h.status().is_seeding:
    if time.time() > deadline:
        sys.exit('libtorrent did not start seeding: %s' % h.status().state)
    time.sleep(0.05)
print('port %d' % ses.listen_port(), flush=True)
while True:
    time.sleep(1)
"#;

fn libtorrent_seeder(manifest: &str, save_path: &Path) -> Option<(Libtorrent, u16)> {
    let mut lt = Libtorrent::start(SEEDER, &[manifest, save_path.to_str().unwrap()])?;
    let port = lt.wait_prefix("port ", 60);
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("no port from libtorrent: {port:?}"));
    Some((lt, port))
}

/// Every path below `root`, relative, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_hybrid_torrent_from_libtorrent_fetches_byte_identical_without_pad_files() {
    let dir = tempfile::tempdir().unwrap();
    // libtorrent seeds a copy: the committed payload stays untouched.
    let payload = dir.path().join("seed");
    let album = payload.join("album");
    std::fs::create_dir_all(album.join("disc1")).unwrap();
    let source = fixtures().join("payload/album");
    for f in ["cover.txt", "disc1/track1.bin", "disc1/track2.bin", "empty"] {
        std::fs::copy(source.join(f), album.join(f)).unwrap();
    }
    let manifest = fixture(HYBRID);
    let Some((_seeder, port)) = libtorrent_seeder(&manifest, &payload) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = format!("127.0.0.1:{port}");
    let mut f = fetch(&manifest, &out, &["--peer", &peer, "--no-seed"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    for name in ["cover.txt", "disc1/track1.bin", "disc1/track2.bin", "empty"] {
        assert!(
            std::fs::read(out.join(name)).unwrap() == std::fs::read(source.join(name)).unwrap(),
            "{name} is byte-identical"
        );
    }
    let want: Vec<PathBuf> = [
        "cover.txt",
        "disc1",
        "disc1/track1.bin",
        "disc1/track2.bin",
        "empty",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(tree(&out), want, "no pad file or `.pad` directory on disk");
}
