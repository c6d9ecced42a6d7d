//! Peers that ask for a lot and never read (issue 10, item 9): each requests 2,000 blocks,
//! reads nothing and keeps its socket open, 30 times over with a new peer id each time. The
//! seeder must close each one within `write_timeout` and keep nothing of it: this process's
//! open file descriptors and resident memory go back to where they were.
//!
//! Alone in its test binary on purpose: RSS is per process, and other tests running beside
//! it in the same process would move it.

mod raw_peer;
mod swarm_support;

use std::time::Duration;

use raw_peer::{peer_id, RawPeer};
use share_engine::{Config, Event};
use share_proto::wire::{BlockRequest, Message};
use swarm_support::*;

const PIECE: u32 = 256 * 1024;
const BLOCK: u32 = 16 * 1024;
/// 2,000 distinct blocks.
const LEN: usize = 2000 * BLOCK as usize;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Connects as `n`, asks for every block, and stops reading.
async fn stall(seeder: std::net::SocketAddr, info_hash: share_proto::InfoHash, n: u32) -> RawPeer {
    let mut p = RawPeer::connect_small_window(seeder, info_hash, peer_id(b's', n)).await;
    p.send(&[Message::Interested]).await;
    p.wait("unchoke", |m| *m == Message::Unchoke).await;
    let requests: Vec<Message> = (0..2000u32)
        .map(|b| {
            Message::Request(BlockRequest {
                index: b * BLOCK / PIECE,
                begin: b * BLOCK % PIECE,
                length: BLOCK,
            })
        })
        .collect();
    p.send(&requests).await;
    p
}

/// Waits for `n`'s connection to be closed for not reading.
async fn closed_for_not_reading(events: &mut tokio::sync::broadcast::Receiver<Event>, n: u32) {
    let id = peer_id(b's', n);
    let seen = wait_for(
        events,
        10,
        "the stalled reader dropped",
        |e| matches!(e, Event::PeerDown { peer_id, .. } if *peer_id == id),
    )
    .await;
    let Some(Event::PeerDown { reason, .. }) = seen.last() else {
        unreachable!()
    };
    assert!(reason.contains("peer stopped reading"), "{reason}");
    assert!(
        !seen.iter().any(|e| matches!(e, Event::PeerBanned { .. })),
        "slow is not hostile: no ban"
    );
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `secs`.
async fn eventually(secs: u64, what: impl Fn() -> String, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{}", what());
        tick.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_peers_that_never_read_leave_no_socket_task_or_memory_behind() {
    let shared = make_file(LEN, PIECE, vec![]);
    let config = Config {
        write_timeout: Duration::from_millis(500),
        ..config()
    };
    let seeder = seed_with(&shared.meta, &shared.path, vec![], vec![], config).await;
    let mut events = seeder.events();
    let (addr, hash) = (seeder.listen_addr(), shared.meta.info_hash);

    // One round first, so the blocking pool and the allocator are in their working state.
    let warm = stall(addr, hash, 0).await;
    closed_for_not_reading(&mut events, 0).await;
    drop(warm);
    let fds = open_fds();
    eventually(
        10,
        || format!("{} fds after the warm-up, first {fds}", open_fds()),
        || open_fds() <= fds,
    )
    .await;
    let (fds, rss) = (open_fds(), status_kib("VmRSS"));

    let mut stalled = Vec::new();
    for n in 1..=30 {
        stalled.push(stall(addr, hash, n).await);
        closed_for_not_reading(&mut events, n).await;
    }
    let peak = status_kib("VmHWM");
    // Our 30 client sockets are still open, unread: only they may remain.
    let ours = stalled.len();
    eventually(
        10,
        || format!("{} fds open, {fds} at the start plus our {ours}", open_fds()),
        || open_fds() <= fds + ours,
    )
    .await;
    // The allocator may keep a little of what was freed; one stalled connection held about
    // 1.5 MiB (the 1 MiB write backlog and a 512 KiB read batch), so a leak of 30 is 45 MiB.
    let tolerance = 8 * 1024;
    eventually(
        10,
        || format!("RSS {} KiB, {rss} KiB at the start", status_kib("VmRSS")),
        || status_kib("VmRSS") <= rss + tolerance,
    )
    .await;
    println!(
        "fds {fds} -> {} (with our {ours} sockets open), RSS {rss} KiB -> {} KiB (peak {peak} KiB)",
        open_fds(),
        status_kib("VmRSS")
    );
    drop(stalled);
    eventually(
        10,
        || format!("{} fds, {fds} at the start", open_fds()),
        || open_fds() <= fds,
    )
    .await;

    // And the seeder still serves an honest fetcher.
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    let fetcher = fetch(&shared.meta, &path, vec![], vec![addr]).await;
    let mut fe = fetcher.events();
    if !fetcher.is_complete() {
        wait_for(&mut fe, 60, "the honest download", is_complete).await;
    }
    assert!(std::fs::read(&path).unwrap() == shared.data, "byte-identical");
    fetcher.shutdown().await;
    seeder.shutdown().await;
}
