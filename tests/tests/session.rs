//! Sessions: many torrents in one process on one port.
//!
//! One seeding session serves 50 torrents from one listener; another session fetches all 50
//! at once. Every handshake arrives at the same port, so each download being byte-identical
//! shows the listener routed it to the right torrent; a handshake for an info hash the
//! session does not have is refused without a byte of ours and counted.

mod swarm_support;

use std::collections::HashSet;
use std::time::Duration;

use share_engine::storage::output_paths;
use share_engine::{Config, Event, Mode, Params, Session, SessionConfig, SessionEvent};
use share_proto::wire::Handshake;
use share_proto::{InfoHash, PeerId};
use swarm_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

const TORRENTS: usize = 50;

fn session_config() -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SessionConfig::default()
    }
}

fn torrent_config() -> Config {
    Config {
        // One host runs the whole test: every connection comes from 127.0.0.1.
        max_peers_per_ip: 64,
        ..config()
    }
}

/// Seeding `f` where it is.
fn seed_params(f: &Shared) -> Params {
    Params {
        meta: f.meta.clone(),
        paths: output_paths(&f.meta, &f.path),
        root: f.dir.path().to_path_buf(),
        mode: Mode::Seed,
        trackers: vec![],
        peers: vec![],
        config: torrent_config(),
    }
}

/// Fetching `f` into `path` (in `root`) from `peer`.
fn fetch_params(
    f: &Shared,
    path: &std::path::Path,
    root: &std::path::Path,
    peer: std::net::SocketAddr,
) -> Params {
    Params {
        meta: f.meta.clone(),
        paths: output_paths(&f.meta, path),
        root: root.to_path_buf(),
        mode: Mode::Fetch,
        trackers: vec![],
        peers: vec![peer],
        config: torrent_config(),
    }
}

/// Adds a fetch of each of `files` to `fetcher`, into `out/PREFIX-N.bin`, from `peer`.
async fn fetch_all(
    fetcher: &Session,
    files: &[Shared],
    out: &std::path::Path,
    prefix: &str,
    peer: std::net::SocketAddr,
) -> Vec<(share_engine::Torrent, std::path::PathBuf)> {
    let mut fetches = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let path = out.join(format!("{prefix}-{i}.bin"));
        let t = fetcher.add(fetch_params(f, &path, out, peer)).await.unwrap();
        fetches.push((t, path));
    }
    fetches
}

/// Waits until `pred` holds for a session event, with a deadline.
async fn wait_session(
    rx: &mut broadcast::Receiver<SessionEvent>,
    secs: u64,
    what: &str,
    mut pred: impl FnMut(&SessionEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("events closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {secs} s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_torrents_on_one_port_are_fetched_by_one_session() {
    let files: Vec<_> = (0..TORRENTS)
        .map(|i| make_file(40_000 + i * 1_000, 16 * 1024, vec![]))
        .collect();
    let seeder = Session::start(session_config()).await.unwrap();
    let mut seeds = Vec::new();
    for f in &files {
        let t = seeder.add(seed_params(f)).await.unwrap();
        assert_eq!(
            t.listen_addr(),
            seeder.listen_addr(),
            "one port for every torrent"
        );
        assert_eq!(t.peer_id(), seeder.peer_id(), "one peer id per session");
        seeds.push(t);
    }
    let ids: HashSet<_> = seeds.iter().map(|t| t.id()).collect();
    assert_eq!(ids.len(), TORRENTS);
    assert_eq!(seeder.torrents().len(), TORRENTS);

    // The same torrent twice in one session is refused.
    let again = seeder.add(seed_params(&files[0])).await.unwrap_err();
    assert_eq!(
        again.to_string(),
        format!("this session already has the torrent {}", files[0].meta.info_hash)
    );

    let out = tempfile::tempdir().unwrap();
    let fetcher = Session::start(session_config()).await.unwrap();
    let mut events = fetcher.subscribe();
    let mut fetches = fetch_all(&fetcher, &files, out.path(), "out", seeder.listen_addr()).await;
    let fetch_ids: HashSet<_> = fetches.iter().map(|(t, _)| t.id()).collect();
    let mut complete = HashSet::new();
    wait_session(&mut events, 60, "every download's Complete", |e| {
        if matches!(e.event, Event::Complete) {
            let id = e.torrent.expect("a torrent's event carries its id");
            assert!(fetch_ids.contains(&id), "{id} is one of ours");
            complete.insert(id);
        }
        complete.len() == TORRENTS
    })
    .await;
    for (i, (t, path)) in fetches.iter().enumerate() {
        assert!(t.is_complete());
        assert!(
            std::fs::read(path).unwrap() == files[i].data,
            "torrent {i} is byte-identical"
        );
    }
    assert_eq!(
        seeder.stats().routed as usize,
        TORRENTS,
        "one connection per torrent"
    );

    // A handshake for an info hash the seeding session does not have.
    let mut stream = TcpStream::connect(seeder.listen_addr()).await.unwrap();
    let other = Handshake::ours(InfoHash([0x42; 20]), PeerId::ours([7; 12])).encode();
    stream.write_all(&other).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the connection is closed");
    assert!(read.is_err() || got.is_empty(), "we sent nothing: {got:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seeder.stats().unknown_refused == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the refusal is counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seeder.stats().unknown_refused, 1);

    // A torrent removed from the session is unknown to its listener from then on.
    let (first, _) = fetches.remove(0);
    first.shutdown().await;
    assert_eq!(fetcher.torrents().len(), TORRENTS - 1);

    fetcher.shutdown().await;
    seeder.shutdown().await;
}

/// A seeding session that refuses most of a burst of newcomers (two handshakes at a time
/// from one address) does not strand them: each fetch dials the peer it was given again,
/// after a jittered back-off, until it gets in. Before, a refused fetch waited forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_peer_that_refuses_a_burst_is_dialed_again_until_every_fetch_completes() {
    const N: usize = 20;
    let files: Vec<_> = (0..N)
        .map(|i| make_file(30_000 + i * 1_000, 16 * 1024, vec![]))
        .collect();
    let seeder = Session::start(SessionConfig {
        max_pending_per_ip: 2,
        ..session_config()
    })
    .await
    .unwrap();
    for f in &files {
        seeder.add(seed_params(f)).await.unwrap();
    }
    // Two connections that never handshake hold both of this address's places: a third is
    // closed at once, and so is every fetch's first dial.
    let mut holders = Vec::new();
    for _ in 0..2 {
        holders.push(TcpStream::connect(seeder.listen_addr()).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = TcpStream::connect(seeder.listen_addr()).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_millis(500), probe.read(&mut byte)).await;
        if matches!(closed, Ok(Ok(0)) | Ok(Err(_))) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the holders take both places"
        );
    }
    let out = tempfile::tempdir().unwrap();
    let fetcher = Session::start(session_config()).await.unwrap();
    let mut events = fetcher.subscribe();
    let fetches = fetch_all(&fetcher, &files, out.path(), "out", seeder.listen_addr()).await;
    let mut refused = HashSet::new();
    wait_session(&mut events, 30, "every fetch refused once", |e| {
        if matches!(e.event, Event::PeerRefused { .. }) {
            refused.insert(e.torrent);
        }
        refused.len() == N
    })
    .await;
    drop(holders);
    let mut complete = HashSet::new();
    wait_session(&mut events, 60, "every download's Complete", |e| {
        if matches!(e.event, Event::Complete) {
            complete.insert(e.torrent);
        }
        complete.len() == N
    })
    .await;
    for (i, (_, path)) in fetches.iter().enumerate() {
        assert!(
            std::fs::read(path).unwrap() == files[i].data,
            "torrent {i} is byte-identical"
        );
    }
    fetcher.shutdown().await;
    seeder.shutdown().await;
}

/// Two torrents fetched by one session with a 4 MiB/s download limit share it: 16 MiB in all
/// arrive at 4 MiB/s (within 15%), not 4 MiB/s each, and both make progress all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_torrents_in_one_session_share_its_download_limit() {
    const MIB: usize = 1024 * 1024;
    const LIMIT: u64 = 4 * MIB as u64;
    // Different lengths, so different data and info hashes.
    let files: Vec<_> = (0..2)
        .map(|i| make_file(8 * MIB + i * 4096, 256 * 1024, vec![]))
        .collect();
    let total: usize = files.iter().map(|f| f.data.len()).sum();
    let seeder = Session::start(session_config()).await.unwrap();
    let mut seeds = Vec::new();
    for f in &files {
        seeds.push(seeder.add(seed_params(f)).await.unwrap());
    }
    let out = tempfile::tempdir().unwrap();
    let fetcher = Session::start(SessionConfig {
        limits: share_engine::Limits::new(None, Some(LIMIT)),
        ..session_config()
    })
    .await
    .unwrap();
    let mut events = fetcher.subscribe();
    let start = std::time::Instant::now();
    let fetches = fetch_all(&fetcher, &files, out.path(), "limited", seeder.listen_addr()).await;
    // When the first of the two completes, the other must be well under way: the limit is
    // shared between them, not spent on one then the other.
    let mut done = Vec::new();
    wait_session(&mut events, 60, "both downloads' Complete", |e| {
        if matches!(e.event, Event::Complete) {
            done.push((e.torrent.unwrap(), start.elapsed()));
            if done.len() == 1 {
                let other = fetches.iter().find(|(t, _)| t.id() != done[0].0).unwrap();
                let s = other.0.stats();
                assert!(
                    s.have_bytes * 2 > s.total_bytes,
                    "the other torrent had {} of {} bytes when the first completed",
                    s.have_bytes,
                    s.total_bytes
                );
            }
        }
        done.len() == 2
    })
    .await;
    let took = done[1].1.as_secs_f64();
    let rate = total as f64 / took;
    let ratio = rate / LIMIT as f64;
    eprintln!(
        "two torrents, one 4 MiB/s limit: 16 MiB in {took:.2} s, {:.2} MiB/s (ratio {ratio:.3})",
        rate / MIB as f64
    );
    assert!(
        (0.85..=1.15).contains(&ratio),
        "16 MiB in {took:.2} s is {:.2} MiB/s, not within 15% of the shared 4 MiB/s",
        rate / MIB as f64
    );
    for (i, (t, path)) in fetches.iter().enumerate() {
        assert!(t.is_complete());
        assert!(
            std::fs::read(path).unwrap() == files[i].data,
            "torrent {i} is byte-identical"
        );
    }
    fetcher.shutdown().await;
    seeder.shutdown().await;
}
