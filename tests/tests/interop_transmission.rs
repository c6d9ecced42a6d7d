//! Transmission 3.00 (Debian's transmission-daemon) downloads from and seeds to aria2c, each in
//! its own network namespace of a veth pair (Transmission never dials loopback peers), through
//! our tracker served in-process on a socket bound inside namespace A.
//!
//! Needs root for the namespaces; without it, or without a client, the test is skipped locally
//! and fails under `CI=true`. Why each step is there: docs/INTEROP-NOTES.md.

mod tracker_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use share_tests::netns::{require_pair, Netns, NetnsPair};
use share_tests::ns_tracker::NsTracker;
use share_tests::tools::require;
use share_tests::transmission::{Options, Transmission};
use tracker_support::{make_torrent, payload, ChildGuard};

const TRACKER_PORT: u16 = 6969;
const ARIA2_PORT: u16 = 6881;
const SIZE: usize = 4 << 20;

/// The clients both tests need, or `None` when one is missing (recorded as a skip).
fn clients(test: &str) -> Option<()> {
    require("aria2c", "aria2", test)?;
    require("transmission-daemon", "transmission-daemon", test)?;
    require("transmission-remote", "transmission-cli", test)?;
    require("ip", "iproute2", test)?;
    Some(())
}

/// aria2c in `ns`: a seeder of the data in `dir` (checked first), or a leecher that exits when
/// done. No DHT, LPD or PEX: peers come from the tracker only.
fn aria2c(ns: &Netns, dir: &Path, torrent: &Path, seed: bool, log: &Path) -> ChildGuard {
    let mut cmd = ns.command("aria2c");
    cmd.args([
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--file-allocation=none",
        "--log-level=info",
    ])
    .arg(format!("--listen-port={ARIA2_PORT}"))
    .arg(format!("--log={}", log.display()));
    if seed {
        cmd.args(["--seed-ratio=0.0", "--check-integrity=true"]);
    } else {
        cmd.arg("--seed-time=0");
    }
    cmd.arg("-d")
        .arg(dir)
        .arg(torrent)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ChildGuard(cmd.spawn().expect("start aria2c"))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

struct Setup {
    // Dropped in this order: the tracker, then the namespaces, then the files.
    tracker: NsTracker,
    pair: NetnsPair,
    work: tempfile::TempDir,
}

fn setup(test: &str) -> Option<Setup> {
    clients(test)?;
    let pair = require_pair("share-t", test)?;
    let work = tempfile::tempdir().expect("temp dir");
    let tracker = NsTracker::start(&pair.a, SocketAddr::new(pair.addr_a.into(), TRACKER_PORT));
    Some(Setup { tracker, pair, work })
}

#[test]
fn transmission_leeches_from_aria2c() {
    let Some(s) = setup("transmission_leeches_from_aria2c") else {
        return;
    };
    let started = Instant::now();
    let seed_dir = s.work.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data = payload(SIZE, 11);
    let (torrent, hash) = make_torrent(&seed_dir, "payload.bin", &data, &s.tracker.announce_url());

    // The seeder must be listening before Transmission hears of it: Transmission 3.00 retries
    // a refused peer only after 15 minutes.
    let aria_log = s.work.path().join("aria2c-seed.log");
    let _seeder = aria2c(&s.pair.a, &seed_dir, &torrent, true, &aria_log);
    s.tracker.wait_for_seeder(hash, Duration::from_secs(20), || {
        format!("aria2c's log:\n{}", tail(&aria_log))
    });

    let downloads = s.work.path().join("downloads");
    let tr = Transmission::start(
        &s.pair.b,
        &s.work.path().join("tr"),
        &downloads,
        Options::default(),
    )
    .expect("start transmission-daemon");
    let id = tr.add(&torrent).expect("add the torrent to Transmission");
    // Transmission sends `interested` on its 10 s rechoke timer: about 12 s, then the transfer.
    if let Err(e) = tr.wait_complete(id, Duration::from_secs(45)) {
        panic!("{e}\naria2c's log:\n{}", tail(&aria_log));
    }
    let got = std::fs::read(downloads.join("payload.bin")).expect("read Transmission's download");
    assert!(got == data, "Transmission's copy differs from the seeded data");
    eprintln!(
        "Transmission downloaded {SIZE} bytes from aria2c in {:?}",
        started.elapsed()
    );
}

#[test]
fn aria2c_leeches_from_transmission() {
    let Some(s) = setup("aria2c_leeches_from_transmission") else {
        return;
    };
    let started = Instant::now();
    let data_dir = s.work.path().join("transmission-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let data = payload(SIZE, 12);
    let (torrent, hash) = make_torrent(&data_dir, "payload.bin", &data, &s.tracker.announce_url());

    let tr = Transmission::start(
        &s.pair.b,
        &s.work.path().join("tr"),
        &data_dir,
        Options::default(),
    )
    .expect("start transmission-daemon");
    let id = tr.add(&torrent).expect("add the torrent to Transmission");
    tr.wait_complete(id, Duration::from_secs(20))
        .expect("Transmission verifies the data it seeds");
    s.tracker
        .wait_for_seeder(hash, Duration::from_secs(20), || tr.diagnostics(id));

    let leech_dir = s.work.path().join("leech");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let aria_log = s.work.path().join("aria2c-leech.log");
    let mut leecher = aria2c(&s.pair.a, &leech_dir, &torrent, false, &aria_log);
    // Transmission unchokes on its 10 s rechoke timer too.
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(status) = leecher.0.try_wait().expect("poll aria2c") {
            break status;
        }
        if Instant::now() >= deadline {
            panic!(
                "aria2c did not finish within 45 s\naria2c's log:\n{}\nTransmission:\n{}",
                tail(&aria_log),
                tr.diagnostics(id)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "aria2c failed ({status})\n{}\nTransmission:\n{}",
        tail(&aria_log),
        tr.diagnostics(id)
    );
    let got = std::fs::read(leech_dir.join("payload.bin")).expect("read aria2c's download");
    assert!(got == data, "aria2c's copy differs from Transmission's data");
    eprintln!(
        "aria2c downloaded {SIZE} bytes from Transmission in {:?}",
        started.elapsed()
    );
}

/// The helper's own contract: B reaches a socket bound inside A over the link, and both
/// namespaces are gone (with what ran inside) once dropped.
#[test]
fn netns_pair_links_and_cleans_up() {
    let test = "netns_pair_links_and_cleans_up";
    if require("ip", "iproute2", test).is_none() {
        return;
    }
    let Some(pair) = require_pair("share-t", test) else {
        return;
    };
    let names = [pair.a.name().to_string(), pair.b.name().to_string()];
    let listener = pair
        .a
        .listen_tcp(SocketAddr::new(pair.addr_a.into(), 7000))
        .expect("listen inside A");
    // B reaches A's socket over the veth link (bash's /dev/tcp: no extra tool needed).
    let reached = pair
        .b
        .command("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/{}/7000", pair.addr_a)])
        .status()
        .expect("run bash in B");
    assert!(reached.success(), "B could not connect to A's listener");
    drop(listener);
    // Something left running inside is killed with the namespace.
    let _sleeper = ChildGuard(pair.b.command("sleep").arg("60").spawn().expect("sleep in B"));
    drop(pair);
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    for name in names {
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "{name} is still there"
        );
    }
}
