//! Memory and speed of the swarm state alone: fills a tracker with 1,000,000 peers in 10,000
//! swarms (100 each, one in four seeding, IPv4, compact), then reports the resident set size
//! growth (VmRSS from /proc/self/status) per peer and the announces per second of the pure
//! state behind its locks, without HTTP.
//!
//! Run: `cargo run --release -p tracker-http --example memory [PEERS] [SWARMS]`

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use share_proto::announce::{AnnounceRequest, Event};
use share_proto::{InfoHash, PeerId};
use tracker_http::{Config, Tracker};

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            })
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u32>().expect("a number"));
    let peers = args.next().unwrap_or(1_000_000);
    let swarms = args.next().unwrap_or(10_000).max(1);
    let config = Config {
        max_peers: peers as usize + 1,
        max_swarms: swarms as usize + 1,
        ..Config::default()
    };
    let tracker = Tracker::new(config);
    let state = tracker.state();
    let before = vm_rss_kib();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut random = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Info hashes are SHA-1 digests, uniform over the shards.
    let hash = |i: u32| InfoHash(share_proto::hash::sha1(&i.to_le_bytes()));
    let started = Instant::now();
    for i in 0..peers {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-XX0001-");
        id[8..16].copy_from_slice(&random().to_le_bytes());
        id[16..].copy_from_slice(&i.to_le_bytes());
        let left = if i % 4 == 0 { 0 } else { 1 << 20 };
        let mut r = AnnounceRequest::new(hash(i % swarms), PeerId(id), 1024 + (i % 60000) as u16, left);
        r.event = Event::Started;
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff)));
        state.announce(ip, &r).expect("accepted");
    }
    let elapsed = started.elapsed();
    let after = vm_rss_kib();
    let totals = tracker.totals();
    assert_eq!((totals.peers, totals.swarms), (peers as usize, swarms as usize));
    let grown = after.saturating_sub(before);
    println!(
        "{} peers in {} swarms: RSS {} KiB -> {} KiB, +{:.1} MiB, {:.1} bytes per peer",
        totals.peers,
        totals.swarms,
        before,
        after,
        grown as f64 / 1024.0,
        grown as f64 * 1024.0 / f64::from(peers.max(1))
    );
    println!(
        "filling: {:.2} s, {:.0} announces/s (pure state, one thread, 50 peers returned each)",
        elapsed.as_secs_f64(),
        f64::from(peers) / elapsed.as_secs_f64()
    );
    let sweep = Instant::now();
    let expired = state.clean();
    println!(
        "one cleaning sweep over all of them: {:.1} ms ({expired} expired)",
        sweep.elapsed().as_secs_f64() * 1000.0
    );
}
