//! Whole swarms in one process: a tracker, seeders and fetchers of the engine, real TCP on
//! loopback. Bytes must come out identical; re-seeding, failover and bans are proven by the
//! engine's events.

mod swarm_support;

use share_engine::Event;
use swarm_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_seeders_two_fetchers_and_fetchers_reseed() {
    let tracker = TestTracker::start().await;
    let shared = make_file(6 * 1024 * 1024 + 1234, 32 * 1024, vec![tracker.url.clone()]);
    let t = vec![tracker.url.clone()];
    let mut seeders = Vec::new();
    for _ in 0..3 {
        seeders.push(seed(&shared.meta, &shared.path, t.clone(), vec![]).await);
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
