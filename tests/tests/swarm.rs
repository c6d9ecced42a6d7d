//! Whole swarms in one process: a tracker, seeders and fetchers of the engine, real TCP on
//! loopback. Bytes must come out identical; re-seeding, failover and bans are proven by the
//! engine's events.

mod swarm_support;

use share_engine::{Config, Event};
use swarm_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_seeders_two_fetchers_and_fetchers_reseed() {
    let tracker = TestTracker::start().await;
    let shared = make_file(6 * 1024 * 1024 + 1234, 32 * 1024, vec![tracker.url.clone()]);
    let t = vec![tracker.url.clone()];
    let mut seeders = Vec::new();
    // Seeders that upload at 1 MiB/s each: a fetcher that completed (unlimited) is the
    // fastest source for the next one, so its re-seeding shows however busy the machine
    // is (on a loaded machine B once finished from three unlimited seeders before A's
    // connection carried a piece).
    let slow = Config {
        limits: share_engine::Limits::new(Some(1024 * 1024), None),
        ..config()
    };
    for _ in 0..3 {
        seeders.push(seed_with(&shared.meta, &shared.path, t.clone(), vec![], slow.clone()).await);
    }
    let out = tempfile::tempdir().unwrap();
    let a_path = out.path().join("a.bin");
    let b_path = out.path().join("b.bin");

    // Fetcher A downloads from the three seeders.
    let a = fetch(&shared.meta, &a_path, t.clone(), vec![]).await;
    let mut a_events = a.events();
    let seen = wait_for(&mut a_events, 60, "fetcher A complete", is_complete).await;
    let senders: std::collections::HashSet<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::PieceVerified { from, .. } => Some(from.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let seeder_ids: Vec<_> = seeders.iter().map(|s| s.peer_id()).collect();
    assert!(
        senders.len() >= 2,
        "pieces came from several seeders in parallel: {senders:?}"
    );
    assert!(senders.iter().all(|s| seeder_ids.contains(s)));
    assert_eq!(
        std::fs::read(&a_path).unwrap(),
        shared.data,
        "A's bytes are identical"
    );

    // Fetcher B joins later: A, now complete and still running, serves it too.
    let b = fetch(&shared.meta, &b_path, t.clone(), vec![]).await;
    let mut b_events = b.events();
    let seen = wait_for(&mut b_events, 60, "fetcher B complete", is_complete).await;
    let from_a = seen
        .iter()
        .filter(|e| matches!(e, Event::PieceVerified { from, .. } if from.contains(&a.peer_id())))
        .count();
    assert!(from_a > 0, "B received pieces from fetcher A (A re-seeds)");
    assert_eq!(
        std::fs::read(&b_path).unwrap(),
        shared.data,
        "B's bytes are identical"
    );
    assert!(a.stats().uploaded > 0, "A counted its upload");

    for t in seeders.into_iter().chain([a, b]) {
        t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_stopped_mid_transfer_does_not_stop_the_download() {
    let shared = make_file(24 * 1024 * 1024, 64 * 1024, vec![]);
    let first = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let second = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let first_id = first.peer_id();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    // A small pipeline keeps the transfer going long enough to stop a seeder in the middle.
    let config = share_engine::Config {
        pipeline: 4,
        ..config()
    };
    let f = fetch_with(
        &shared.meta,
        &path,
        vec![],
        vec![first.listen_addr(), second.listen_addr()],
        config,
    )
    .await;
    let mut events = f.events();
    wait_for(
        &mut events,
        30,
        "a piece from the first seeder",
        |e| matches!(e, Event::PieceVerified { from, .. } if from.contains(&first_id)),
    )
    .await;
    assert!(!f.is_complete(), "the seeder is stopped mid-transfer");
    first.shutdown().await;
    let seen = wait_for(&mut events, 60, "complete after losing a seeder", is_complete).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::PeerDown { peer_id, .. } if *peer_id == first_id)),
        "the fetcher saw the first seeder go"
    );
    assert_eq!(std::fs::read(&path).unwrap(), shared.data);
    f.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_corrupt_data_is_banned_and_the_result_is_right() {
    let shared = make_file(4 * 1024 * 1024, 32 * 1024, vec![]);
    // The same manifest over a copy with a byte flipped in every piece.
    let bad_path = shared.dir.path().join("corrupt.bin");
    let mut bad = shared.data.clone();
    for i in (100..bad.len()).step_by(32 * 1024) {
        bad[i] ^= 0xff;
    }
    std::fs::write(&bad_path, &bad).unwrap();
    let liar = seed(&shared.meta, &bad_path, vec![], vec![]).await;
    let honest = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    // Only the liar at first, so it certainly sends bad pieces; the honest seeder joins after.
    let f = fetch(&shared.meta, &path, vec![], vec![liar.listen_addr()]).await;
    let mut events = f.events();
    let seen = wait_for(&mut events, 30, "the corrupt peer banned", |e| {
        matches!(e, Event::PeerBanned { .. })
    })
    .await;
    let failed: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, Event::PieceFailed { .. }))
        .collect();
    assert!(!failed.is_empty(), "hash failures were seen before the ban");
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::PeerBanned { peer_id, .. } if *peer_id == liar.peer_id())));
    f.add_peers([honest.listen_addr(), liar.listen_addr()]);
    let after = wait_for(&mut events, 60, "complete from the honest seeder", is_complete).await;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        shared.data,
        "no corrupt byte on disk"
    );
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::PeerUp { peer_id, .. } if *peer_id == liar.peer_id())),
        "the banned peer is not let back in"
    );
    assert!(after
        .iter()
        .any(|e| matches!(e, Event::PeerUp { peer_id, .. } if *peer_id == honest.peer_id())));
    for t in [f, liar, honest] {
        t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_beyond_max_peers_wait_for_a_slot_instead_of_being_dropped() {
    let shared = make_file(1024 * 1024, 32 * 1024, vec![]);
    let seeder = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    // Accepts connections and never says a word: it holds the only slot until the
    // handshake times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((stream, _)) = silent.accept().await {
            let _ = held_tx.send(stream).await;
        }
    });
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    let config = share_engine::Config {
        max_peers: 1,
        handshake_timeout: std::time::Duration::from_secs(2),
        ..config()
    };
    let f = fetch_with(
        &shared.meta,
        &path,
        vec![],
        vec![silent_addr, seeder.listen_addr()],
        config,
    )
    .await;
    let mut events = f.events();
    let _held = held_rx.recv().await.expect("the silent peer was dialed first");
    assert_eq!(f.stats().queued_peers, 1, "the seeder waits for the slot");
    let seen = wait_for(&mut events, 30, "the download", is_complete).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::PeerRefused { addr, reason } if *addr == silent_addr && reason.contains("handshake"))),
        "the silent peer timed out: {seen:#?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), shared.data);
    assert_eq!(f.stats().queued_peers, 0);
    f.shutdown().await;
    seeder.shutdown().await;
}

/// Peer exchange (BEP 11): a fetcher given only a second fetcher's address learns the
/// seeder's from it and dials it; in a private torrent (BEP 27) it does not, and gets
/// everything from the second fetcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_learns_the_seeder_by_peer_exchange_unless_the_torrent_is_private() {
    for private in [false, true] {
        let shared = make_file_with(2 * 1024 * 1024, 16 * 1024, vec![], private);
        let seeder = seed(&shared.meta, &shared.path, vec![], vec![]).await;
        let a = seeder.listen_addr();
        let out = tempfile::tempdir().unwrap();
        let b_cfg = Config {
            // B fetches slowly, so that it is still connected to both when C arrives.
            limits: share_engine::Limits::new(None, Some(1024 * 1024)),
            ..config()
        };
        let b = fetch_with(&shared.meta, &out.path().join("b.bin"), vec![], vec![a], b_cfg).await;
        let mut b_events = b.events();
        wait_for(&mut b_events, 30, "B meets the seeder", |e| {
            matches!(e, Event::PeerUp { .. })
        })
        .await;
        let c = fetch(
            &shared.meta,
            &out.path().join("c.bin"),
            vec![],
            vec![b.listen_addr()],
        )
        .await;
        let mut c_events = c.events();
        let seen = wait_for(&mut c_events, 60, "C complete", is_complete).await;
        let met: Vec<_> = seen
            .iter()
            .filter_map(|e| match e {
                Event::PeerUp { addr, .. } => Some(*addr),
                _ => None,
            })
            .collect();
        if private {
            assert!(!met.contains(&a), "a private torrent exchanges no peers: {met:?}");
        } else {
            assert!(
                met.contains(&a),
                "C dialed the seeder it learnt of from B: {met:?}"
            );
        }
        assert!(std::fs::read(out.path().join("c.bin")).unwrap() == shared.data);
        for t in [c, b, seeder] {
            t.shutdown().await;
        }
    }
}
