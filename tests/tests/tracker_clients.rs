//! Real BitTorrent clients from Debian's packages announce to our tracker unchanged:
//! aria2c seeds and leeches a file through it, and transmission-cli joins its swarm.
//! A missing client skips the test locally and fails it under `CI=true`.

mod tracker_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use share_proto::announce::{AnnounceRequest, AnnounceResponse};
use share_proto::{InfoHash, PeerId};
use share_tests::tools::require;
use tracker_http::Config;
use tracker_support::{free_port, get, make_torrent, payload, wait_for, ChildGuard, RunningTracker};

/// Peer ids in `hash`'s swarm, as our tracker hands them out in dictionary form.
fn peer_ids(t: &RunningTracker, hash: InfoHash) -> Vec<Vec<u8>> {
    let mut me = AnnounceRequest::new(hash, PeerId(*b"-SHTEST-observer0001"), 1, 1);
    me.compact = false;
    me.numwant = Some(200);
    me.event = share_proto::announce::Event::Stopped;
    // A stopped announce is answered without peers; announce, read, then leave.
    let mut join = me.clone();
    join.event = share_proto::announce::Event::None;
    let body = get(t.addr, &format!("/announce?{}", join.to_query()))
        .map(|r| r.body)
        .unwrap_or_default();
    let _ = get(t.addr, &format!("/announce?{}", me.to_query()));
    AnnounceResponse::from_bencode(&body)
        .map(|r| {
            r.peers
                .iter()
                .filter_map(|p| p.peer_id)
                .map(|id| id.0.to_vec())
                .collect()
        })
        .unwrap_or_default()
}

fn has_client(t: &RunningTracker, hash: InfoHash, prefix: &[u8]) -> bool {
    peer_ids(t, hash).iter().any(|id| id.starts_with(prefix))
}

fn aria2c(aria2: &Path, dir: &Path, torrent: &Path, port: u16, seed: bool, log: &Path) -> ChildGuard {
    let mut cmd = Command::new(aria2);
    cmd.args([
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
    ])
    .args([
        "--console-log-level=warn",
        "--summary-interval=0",
        "--file-allocation=none",
    ])
    .arg(format!("--listen-port={port}"))
    .arg(format!("--log={}", log.display()))
    .arg("--log-level=info");
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
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn aria2c_seeds_and_leeches_through_our_tracker() {
    let Some(aria2) = require("aria2c", "aria2", "aria2c_seeds_and_leeches_through_our_tracker") else {
        return;
    };
    let t = RunningTracker::start("127.0.0.1:0", Config::with_interval(60)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (seed_dir, leech_dir) = (work.path().join("seed"), work.path().join("leech"));
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::create_dir_all(&leech_dir).unwrap();
    let data = payload(300 * 1024 + 17, 3);
    let (torrent, hash) = make_torrent(&seed_dir, "payload.bin", &data, &t.announce_url());

    let seed_log = work.path().join("seed.log");
    let _seeder = aria2c(&aria2, &seed_dir, &torrent, free_port(), true, &seed_log);
    wait_for(
        Duration::from_secs(30),
        || format!("the aria2c seeder; its log:\n{}", tail(&seed_log)),
        || t.tracker.swarm(&hash).complete == 1,
    );
    assert!(has_client(&t, hash, b"A2-"), "aria2c's peer id is in the swarm");

    let leech_log = work.path().join("leech.log");
    let mut leecher = aria2c(&aria2, &leech_dir, &torrent, free_port(), false, &leech_log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = leecher.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the aria2c leecher did not finish; its log:\n{}",
            tail(&leech_log)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "aria2c leecher failed: {status}; its log:\n{}",
        tail(&leech_log)
    );
    assert_eq!(std::fs::read(leech_dir.join("payload.bin")).unwrap(), data);
    // The leecher announced `completed`, then `stopped` on exit; the seeder stays.
    wait_for(
        Duration::from_secs(10),
        || {
            format!(
                "the counts, now {:?}; leecher log:\n{}",
                t.tracker.swarm(&hash),
                tail(&leech_log)
            )
        },
        || {
            let s = t.tracker.swarm(&hash);
            s.downloaded == 1 && s.complete == 1 && s.incomplete == 0
        },
    );
}

#[test]
fn transmission_cli_joins_our_tracker_swarm() {
    let Some(transmission) = require(
        "transmission-cli",
        "transmission-cli",
        "transmission_cli_joins_our_tracker_swarm",
    ) else {
        return;
    };
    let t = RunningTracker::start("127.0.0.1:0", Config::with_interval(60)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (src, conf, dest) = (
        work.path().join("src"),
        work.path().join("conf"),
        work.path().join("dest"),
    );
    for d in [&src, &conf, &dest] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (torrent, hash) = make_torrent(&src, "payload.bin", &payload(64 * 1024, 9), &t.announce_url());
    let port = free_port();
    // transmission-cli reads settings.json from its config directory: no DHT, LPD, PEX or uTP,
    // so the tracker is its only source of peers.
    std::fs::write(
        conf.join("settings.json"),
        format!(
            r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
                "port-forwarding-enabled": false, "peer-port": {port}, "download-dir": "{}"}}"#,
            dest.display()
        ),
    )
    .unwrap();
    let log = work.path().join("transmission.log");
    let out = std::fs::File::create(&log).unwrap();
    let _client = ChildGuard(
        Command::new(transmission)
            .arg("-g")
            .arg(&conf)
            .arg("-w")
            .arg(&dest)
            .arg("-p")
            .arg(port.to_string())
            .arg(&torrent)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start transmission-cli"),
    );
    wait_for(
        Duration::from_secs(30),
        || format!("transmission-cli; its output:\n{}", tail(&log)),
        || t.tracker.swarm(&hash).incomplete == 1,
    );
    assert!(
        has_client(&t, hash, b"-TR"),
        "Transmission's peer id is in the swarm"
    );
}
