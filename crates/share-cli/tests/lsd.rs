//! Local Service Discovery (BEP 14) between two hosts: `share seed` in one network
//! namespace and `share fetch` in another, joined by a veth pair, find each other by
//! multicast alone (no tracker, no DHT, no `--peer`). Needs root for the namespaces;
//! without it the test is skipped locally and fails under `CI=true`.

mod common;

use common::pattern;
use common::proc::Proc;
use share_tests::netns::require_pair;
use share_tests::tools::require;

#[test]
fn a_fetch_finds_its_seeder_by_local_service_discovery_alone() {
    let name = "a_fetch_finds_its_seeder_by_local_service_discovery_alone";
    if require("ip", "iproute2", name).is_none() {
        return;
    }
    let Some(pair) = require_pair("share-l", name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("holiday.bin");
    let data = pattern(3_000_000, 81);
    std::fs::write(&file, &data).unwrap();
    // A manifest that names no tracker.
    let bare = dir.path().join("holiday.torrent");
    let made = common::share(&["create", file.to_str().unwrap(), "-o", bare.to_str().unwrap()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let share = env!("CARGO_BIN_EXE_share");
    let mut cmd = pair.a.command(share);
    cmd.args([
        "seed",
        file.to_str().unwrap(),
        "-o",
        bare.to_str().unwrap(),
        "--port",
        "6881",
        "--tracker-port",
        "0",
        "--no-dht",
        "--json",
    ])
    .env("SHARE_NO_LSD", "0");
    let mut seeder = Proc::spawn(cmd);
    seeder.wait_event(60, "seeding");
    let out = dir.path().join("got.bin");
    let mut cmd = pair.b.command(share);
    cmd.args([
        "fetch",
        bare.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--port",
        "6881",
        "--no-dht",
        "--no-seed",
        "--json",
    ])
    .env("SHARE_NO_LSD", "0");
    let mut f = Proc::spawn(cmd);
    // Each hears the other's announce: whichever dials first, the peer is the seeder's host.
    let up = f.wait_event(60, "peer_up");
    let addr: std::net::SocketAddr = up["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(addr.ip(), pair.addr_a, "{up}");
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
    assert!(
        !f.seen.iter().any(|v| v["event"] == "tracker_ok"),
        "no tracker was involved"
    );
}
