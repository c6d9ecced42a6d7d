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

/// The pieces each torrent (by name) verified in a run.
fn verified_by_name(run: &Proc, names: &std::collections::HashMap<u64, String>) -> HashSet<(String, u64)> {
    run.seen
        .iter()
        .filter(|v| v["event"] == "piece_verified")
        .map(|v| {
            (
                names[&v["torrent"].as_u64().unwrap()].clone(),
                v["piece"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Torrent id to name, from a run's `fetching` lines.
fn names_of(run: &mut Proc, n: usize) -> std::collections::HashMap<u64, String> {
    (0..n)
        .map(|_| {
            let v = run.wait_event(60, "fetching");
            (
                v["torrent"].as_u64().unwrap(),
                v["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_session_killed_with_three_transfers_under_way_resumes_them_all_and_rehashes_no_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.bin");
    let b = dir.path().join("b.bin");
    let c = dir.path().join("c.bin");
    std::fs::write(&small, pattern(256 * 1024, 7)).unwrap();
    std::fs::write(&b, pattern(8 * 1024 * 1024, 8)).unwrap();
    std::fs::write(&c, pattern(8 * 1024 * 1024, 9)).unwrap();
    let mut args = seed_args(&small, &["--json", "--piece-size", "64K"]);
    args.insert(2, b.to_str().unwrap());
    args.insert(3, c.to_str().unwrap());
    let mut seeder = Proc::share(&args);
    let manifests: Vec<String> = (0..3)
        .map(|_| {
            seeder.wait_event(60, "seeding")["manifest"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let out = dir.path().join("got");
    let state = dir.path().join("state");
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = vec!["fetch"];
        a.extend(manifests.iter().map(String::as_str));
        a.extend(["-d", out.to_str().unwrap(), "--port", "0", "--json", "--no-seed"]);
        a.extend(["--state-dir", state.to_str().unwrap()]);
        a.extend(extra);
        Proc::share(&a)
    };

    // Slowed to 2 MiB/s: the small file completes at once, the two others are under way
    // when the session is killed.
    let mut first = run(&["--max-down", "2M"]);
    let names = names_of(&mut first, 3);
    let id = |name: &str| *names.iter().find(|(_, n)| n.as_str() == name).unwrap().0;
    first.wait(60, "the small file complete", |v| {
        v["event"] == "complete" && v["torrent"] == id("small.bin")
    });
    let pieces_of = |p: &Proc, t: u64| {
        p.seen
            .iter()
            .filter(|v| v["event"] == "piece_verified" && v["torrent"] == t)
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pieces_of(&first, id("b.bin")) < 8 || pieces_of(&first, id("c.bin")) < 8 {
        assert!(
            std::time::Instant::now() < deadline,
            "b and c under way: {:?}",
            first.seen
        );
        first.wait(60, "a verified piece", |v| v["event"] == "piece_verified");
    }
    first.signal("KILL");
    assert_eq!(first.exit_code(30), None, "killed: {}", first.stderr());
    let before = verified_by_name(&first, &names);
    for name in ["b.bin", "c.bin"] {
        let n = before.iter().filter(|(t, _)| t == name).count();
        assert!(
            (8..128).contains(&n),
            "{name} half-done when killed: {n} of 128 pieces"
        );
    }

    let mut again = run(&[]);
    let names = names_of(&mut again, 3);
    let mut complete = HashSet::new();
    while complete.len() < 3 {
        let v = again.wait_event(120, "complete");
        complete.insert(v["torrent"].as_u64().unwrap());
    }
    assert_eq!(again.exit_code(30), Some(0), "{}", again.stderr());
    let now = verified_by_name(&again, &names);
    let refetched: Vec<_> = now.intersection(&before).collect();
    assert!(
        refetched.is_empty(),
        "pieces verified before the kill fetched again: {refetched:?}"
    );
    let id = |name: &str| *names.iter().find(|(_, n)| n.as_str() == name).unwrap().0;
    let checked: HashSet<u64> = again
        .seen
        .iter()
        .filter(|v| v["event"] == "checking")
        .map(|v| v["torrent"].as_u64().unwrap())
        .collect();
    assert!(
        !checked.contains(&id("small.bin")),
        "the complete file was hashed again: {checked:?}"
    );
    assert!(
        checked.contains(&id("b.bin")) && checked.contains(&id("c.bin")),
        "the half-done files, written after their last record, were checked: {checked:?}"
    );
    assert!(
        !now.iter().any(|(t, _)| t == "small.bin"),
        "nothing of the complete file fetched"
    );
    for (got, want) in [("small.bin", &small), ("b.bin", &b), ("c.bin", &c)] {
        assert!(
            std::fs::read(out.join(got)).unwrap() == std::fs::read(want).unwrap(),
            "{got} is byte-identical"
        );
    }
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}
