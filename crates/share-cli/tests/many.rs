//! Several transfers in one process: `share seed A B DIR` seeds them all on one port with one
//! embedded tracker, and `share fetch A.torrent B.torrent DIR.torrent -d OUT` fetches them
//! all at once in one session; what only makes sense for one manifest is refused for several.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::proc::Proc;
use common::{fetch_refused, pattern, seed_args, share};
use serde_json::Value;

fn tree_equal(a: &Path, b: &Path) {
    for entry in std::fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let other = b.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            tree_equal(&entry.path(), &other);
        } else {
            assert!(
                std::fs::read(entry.path()).unwrap() == std::fs::read(&other).unwrap(),
                "{} is byte-identical",
                other.display()
            );
        }
    }
}

#[test]
fn one_seed_process_serves_three_paths_and_one_fetch_process_gets_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    let d = dir.path().join("album");
    std::fs::write(&a, pattern(3_000_000, 1)).unwrap();
    std::fs::write(&b, pattern(2_000_000, 2)).unwrap();
    std::fs::create_dir_all(d.join("disc 2")).unwrap();
    std::fs::write(d.join("one.flac"), pattern(700_000, 3)).unwrap();
    std::fs::write(d.join("disc 2/two.flac"), pattern(900_000, 4)).unwrap();
    let mut args = seed_args(&a, &["--json"]);
    args.insert(2, b.to_str().unwrap());
    args.insert(3, d.to_str().unwrap());
    let mut seeder = Proc::share(&args);
    let seeding: Vec<Value> = (0..3).map(|_| seeder.wait_event(60, "seeding")).collect();
    let ports: HashSet<_> = seeding.iter().map(|v| v["listen"].clone()).collect();
    assert_eq!(ports.len(), 1, "one port for every path: {seeding:?}");
    let trackers: HashSet<_> = seeding.iter().map(|v| v["trackers"].clone()).collect();
    assert_eq!(
        trackers.len(),
        1,
        "one embedded tracker in every manifest: {seeding:?}"
    );
    let ids: HashSet<_> = seeding.iter().map(|v| v["torrent"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 3, "each seeding line names its torrent: {seeding:?}");
    let manifests: Vec<String> = seeding
        .iter()
        .map(|v| v["manifest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        manifests,
        ["a.bin.torrent", "b.bin.torrent", "album.torrent"].map(|m| dir
            .path()
            .join(m)
            .to_str()
            .unwrap()
            .to_string())
    );

    let out = dir.path().join("got");
    let mut fetch_args: Vec<&str> = vec!["fetch"];
    fetch_args.extend(manifests.iter().map(String::as_str));
    fetch_args.extend(["-d", out.to_str().unwrap(), "--port", "0", "--json"]);
    let mut f = Proc::share_talking(&fetch_args);
    let fetching: Vec<Value> = (0..3).map(|_| f.wait_event(60, "fetching")).collect();
    let listen: HashSet<_> = fetching.iter().map(|v| v["listen"].clone()).collect();
    assert_eq!(listen.len(), 1, "one session, one port: {fetching:?}");
    let mut complete = HashSet::new();
    while complete.len() < 3 {
        let v = f.wait_event(60, "complete");
        complete.insert(v["torrent"].as_u64().expect("a transfer's event names it"));
    }
    // A line typed in the fetcher goes to all three swarms; the seeder, in all three too,
    // shows it once.
    f.say("hello from the fetcher");
    f.say("and a second line");
    let chat = |v: &Value, text: &str| v["event"] == "chat" && v["text"] == text;
    seeder.wait(30, "the second line", |v| chat(v, "and a second line"));
    let shown = seeder
        .seen
        .iter()
        .filter(|v| chat(v, "hello from the fetcher"))
        .count();
    assert_eq!(shown, 1, "one line, shown once: {:?}", seeder.seen);
    f.signal("INT");
    assert_eq!(
        f.exit_code(30),
        Some(0),
        "Ctrl-C after every transfer is complete: {}",
        f.stderr()
    );
    assert!(std::fs::read(out.join("a.bin")).unwrap() == std::fs::read(&a).unwrap());
    assert!(std::fs::read(out.join("b.bin")).unwrap() == std::fs::read(&b).unwrap());
    tree_equal(&d, &out.join("album"));
    let peer_ids: HashSet<_> = f
        .seen
        .iter()
        .filter(|v| v["event"] == "peer_up")
        .map(|v| (v["torrent"].clone(), v["peer_id"].clone()))
        .collect();
    let seeder_ids: HashSet<_> = peer_ids.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(peer_ids.len(), 3, "every torrent met the seeder: {peer_ids:?}");
    assert_eq!(
        seeder_ids.len(),
        1,
        "one peer id for the seeder's whole session: {peer_ids:?}"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn what_names_one_output_is_refused_for_several() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    std::fs::write(&a, pattern(40_000, 5)).unwrap();
    std::fs::write(&b, pattern(50_000, 6)).unwrap();
    for f in [&a, &b] {
        let m = format!("{}.torrent", f.display());
        let r = share(&[
            "create",
            f.to_str().unwrap(),
            "-t",
            "http://127.0.0.1:1/announce",
            "-o",
            &m,
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let (am, bm) = (dir.path().join("a.bin.torrent"), dir.path().join("b.bin.torrent"));
    let cases: [(&[&str], &str); 3] = [
        (
            &[bm.to_str().unwrap(), "-o", "x"],
            "-o names the output of one manifest; with 2 manifests use -d DIR",
        ),
        (
            &[bm.to_str().unwrap(), "--only", "*"],
            "--only selects files of one manifest",
        ),
        (&[am.to_str().unwrap()], "are the same torrent"),
    ];
    for (args, says) in cases {
        let (code, err) = fetch_refused(dir.path(), &am, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!dir.path().join("a.bin").with_file_name("x").exists());
    let r = share(&[
        "seed",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        "one.torrent",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("-o names the manifest of one path; with 2 paths each gets PATH.torrent"),
        "{err}"
    );
    assert!(!Path::new("one.torrent").exists());
}
