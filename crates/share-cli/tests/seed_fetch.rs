//! `share seed` and `share fetch` as processes: the embedded tracker, several fetchers,
//! Ctrl-C and kill -9 in the middle of a download with a resume that re-downloads nothing
//! verified, `--peer` with the tracker down, and bad input.

mod common;

use common::proc::{fetch, listen_port, seed, Proc};
use common::{pattern, share};

#[test]
fn seed_with_embedded_tracker_serves_two_fetchers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("movie.bin");
    let data = pattern(5_000_000, 7);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &[]);
    assert_eq!(seeder.seen[0]["embedded_tracker"], true);
    let outs = [dir.path().join("one.bin"), dir.path().join("two.bin")];
    let mut fetchers: Vec<Proc> = outs.iter().map(|o| fetch(&manifest, o, &["--no-seed"])).collect();
    for (f, out) in fetchers.iter_mut().zip(&outs) {
        f.wait_event(60, "complete");
        assert_eq!(
            f.exit_code(30),
            Some(0),
            "--no-seed exits 0 once verified: {}",
            f.stderr()
        );
        assert_eq!(std::fs::read(out).unwrap(), data);
        assert!(
            f.seen.iter().any(|v| v["event"] == "tracker_ok"),
            "peers came from the embedded tracker"
        );
    }
    // Ctrl-C stops the seeder cleanly, even with its stdin still open and silent (as on a
    // terminal): the blocking stdin read must not hold up the exit.
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

/// Interrupts (SIGINT) and then kills (SIGKILL) a fetch in the middle, reruns it each time:
/// the result is identical and verified pieces are never downloaded again.
#[test]
fn interrupted_and_killed_fetches_resume_without_refetching() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data = pattern(64 * 1024 * 1024, 9);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "256K"]);
    let out = dir.path().join("out.bin");
    let total = data.len() as u64;

    let mut interrupted = 0;
    for (sig, code) in [("INT", Some(130)), ("KILL", None)] {
        let mut f = fetch(&manifest, &out, &["--no-seed"]);
        f.wait(60, "a verified piece", |v| v["event"] == "piece_verified");
        f.signal(sig);
        let got = f.exit_code(30);
        if got == Some(0) {
            // It finished before the signal landed; the resume below still must be right.
            continue;
        }
        assert_eq!(got, code, "exit after SIG{sig}: {}", f.stderr());
        interrupted += 1;
        if sig == "INT" {
            assert!(
                f.stderr().contains("run the same command again to resume"),
                "{}",
                f.stderr()
            );
        }
    }
    assert!(interrupted >= 1, "at least one run was stopped mid-download");
    let mut rerun = fetch(&manifest, &out, &["--no-seed"]);
    let checked = rerun.wait(60, "the resume check", |v| {
        v["event"] == "checking" && v["done"] == v["total"]
    });
    assert_eq!(checked["total"], total);
    rerun.wait_event(120, "complete");
    assert_eq!(rerun.exit_code(30), Some(0), "{}", rerun.stderr());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        data,
        "byte-identical after interruptions"
    );
    let first = rerun
        .seen
        .iter()
        .find(|v| v["event"] == "progress")
        .cloned()
        .unwrap_or_default();
    let last = rerun
        .seen
        .iter()
        .rev()
        .find(|v| v["event"] == "progress")
        .cloned()
        .unwrap_or_default();
    let had = first["have"].as_u64().unwrap_or(0);
    let downloaded = last["downloaded"].as_u64().unwrap_or(0);
    assert!(had > 0, "the rerun found verified pieces on disk: {first}");
    assert!(
        downloaded <= total - had + 2 * 256 * 1024,
        "verified pieces were not fetched again: had {had}, downloaded {downloaded} of {total}"
    );
}

#[test]
fn peer_flag_works_with_the_tracker_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let data = pattern(3_000_000, 3);
    std::fs::write(&file, &data).unwrap();
    // A tracker URL nobody listens on (port 1 on loopback refuses at once).
    let (mut seeder, manifest) = seed(&file, &["--tracker", "http://127.0.0.1:1/announce"]);
    assert_eq!(seeder.seen[0]["embedded_tracker"], false);
    let out = dir.path().join("out.bin");
    let peer = format!("127.0.0.1:{}", listen_port(&seeder.seen[0]));
    let mut f = fetch(&manifest, &out, &["--no-seed", "--peer", &peer]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(
        f.seen.iter().any(|v| v["event"] == "tracker_error"),
        "the dead tracker was reported, not fatal"
    );
    seeder.wait_event(10, "tracker_error");
}

#[test]
fn fetch_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, b"some data").unwrap();
    let manifest = dir.path().join("f.torrent");
    assert!(
        share(&["create", file.to_str().unwrap(), "-o", manifest.to_str().unwrap()])
            .status
            .success()
    );
    let m = manifest.to_str().unwrap();
    let out = dir.path().join("o.bin");
    let o = out.to_str().unwrap();
    let r = share(&["fetch", m, "-o", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr)
        .contains("names no HTTP or UDP tracker, no --peer was given and the DHT and LSD are off"));
    let r = share(&[
        "fetch",
        m,
        "-o",
        dir.path().to_str().unwrap(),
        "--peer",
        "127.0.0.1:1",
        "--port",
        "0",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("is a directory"));
    let r = share(&["fetch", m, "-o", o, "--peer", "no-such-host.invalid:1"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot resolve peer"));
    let r = share(&[
        "fetch",
        dir.path().join("missing.torrent").to_str().unwrap(),
        "-o",
        o,
    ]);
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn directory_torrents_span_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    std::fs::create_dir_all(root.join("cd1")).unwrap();
    let files = [
        ("cd1/a.flac", pattern(700_001, 1)),
        ("cd1/b.flac", pattern(33, 2)),
        ("cover.jpg", pattern(1_234_567, 3)),
        ("empty", vec![]),
    ];
    for (p, d) in &files {
        std::fs::write(root.join(p), d).unwrap();
    }
    let (_seeder, manifest) = seed(&root, &["--piece-size", "64K"]);
    let out = dir.path().join("copy");
    let mut f = fetch(&manifest, &out, &["--no-seed"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    for (p, d) in &files {
        assert_eq!(&std::fs::read(out.join(p)).unwrap(), d, "{p}");
    }
}

/// Ctrl-C (or SIGTERM) sent the moment `share seed` says it is seeding ends it cleanly,
/// exit 0: the signals are taken before anything is printed, not when the event loop first
/// waits for them (once, 1 run in 8 was killed by the signal). Repeated, since it was a race.
#[test]
fn a_signal_sent_as_soon_as_the_seeding_line_appears_ends_the_seeder_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quick.bin");
    std::fs::write(&file, pattern(40_000, 3)).unwrap();
    for (round, sig) in ["INT", "TERM"].iter().cycle().take(24).enumerate() {
        let (seeder, _) = common::proc::seed(&file, &[]);
        seeder.signal(sig);
        let mut seeder = seeder;
        assert_eq!(
            seeder.exit_code(30),
            Some(0),
            "round {round}: SIG{sig} right after the seeding line; stderr: {}",
            seeder.stderr()
        );
    }
}

/// `share tracker` serves UDP (BEP 15) on its port number too: a seeder and a fetcher that
/// know the tracker only as `udp://` find each other through it.
#[test]
fn a_udp_tracker_alone_brings_seeder_and_fetcher_together() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.bin");
    let data = pattern(3_000_000, 23);
    std::fs::write(&file, &data).unwrap();
    let (mut tracker, _, url) = common::proc::tracker(&[]);
    let (mut seeder, manifest) = seed(&file, &["-t", &url]);
    assert_eq!(seeder.seen[0]["embedded_tracker"], false);
    seeder.wait(30, "the seeder's announce", |v| {
        v["event"] == "tracker_ok" && v["url"] == url.as_str()
    });
    let out = dir.path().join("got.bin");
    let mut f = fetch(&manifest, &out, &["--no-seed"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let ok = f
        .seen
        .iter()
        .find(|v| v["event"] == "tracker_ok")
        .expect("announced over UDP");
    assert_eq!(
        (ok["url"].as_str(), ok["peers"].as_u64()),
        (Some(url.as_str()), Some(1))
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
    tracker.signal("INT");
    assert_eq!(tracker.exit_code(30), Some(0), "{}", tracker.stderr());
}
