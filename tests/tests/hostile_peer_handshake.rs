//! Hostile handshakes: one for another swarm (refused without revealing ours), one never
//! finished (timed out), something that is not BitTorrent at all, and a flood of connections
//! that never handshake (bounded by `max_peers`).
//!
//! The hostile peer is a raw peer (`raw_peer`) speaking the wire by hand through
//! share-proto's encoder, so it can send exactly the bytes an attacker would. In each test the
//! engine closes the hostile connection with a reason naming the fault, nothing panics, and
//! the honest download beside it completes byte-identical.

mod hostile_support;
mod raw_peer;
mod swarm_support;

use std::time::Duration;

use hostile_support::*;
use raw_peer::RawPeer;
use share_engine::{Config, Event};
use share_proto::wire::Handshake;
use share_proto::InfoHash;
use swarm_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_for_another_swarm_is_refused_without_revealing_ours() {
    let mut swarm = Swarm::start(config()).await;
    let mut stream = TcpStream::connect(swarm.seeder.listen_addr()).await.unwrap();
    let other = Handshake::ours(InfoHash([0x42; 20]), hostile_id(1)).encode();
    stream.write_all(&other).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the connection is closed");
    assert!(read.is_err() || got.is_empty(), "we sent nothing: {got:?}");
    let reason = refused_reason(&mut swarm.seeder_events).await;
    assert!(reason.contains("handshake for another swarm"), "{reason}");
    // Not BitTorrent at all. Anything but `\x13BitTorrent protocol` may be the start of an
    // encrypted handshake (MSE), so it is answered with a key (96 bytes and up to 512 of
    // padding) and refused once the bytes that must hold MSE's sync point hold none.
    let mut h = RawPeer::connect_silent(swarm.seeder.listen_addr()).await;
    let mut junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    junk.resize(96 + 512 + 20, b'x');
    h.send_raw(&junk).await;
    h.closed(10).await;
    assert!(
        h.received <= 96 + 512,
        "only a key and its padding: {}",
        h.received
    );
    let reason = refused_reason(&mut swarm.seeder_events).await;
    assert!(
        reason.contains("not BitTorrent's (nor an encrypted one)"),
        "{reason}"
    );
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_never_finished_times_out() {
    let mut swarm = Swarm::start(Config {
        handshake_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    let started = tokio::time::Instant::now();
    // Half a handshake, then nothing; and a connection that sends nothing at all.
    let mut half = RawPeer::connect_silent(swarm.seeder.listen_addr()).await;
    half.send_raw(&Handshake::ours(swarm.info_hash(), hostile_id(1)).encode()[..30])
        .await;
    let mut silent = RawPeer::connect_silent(swarm.seeder.listen_addr()).await;
    half.closed(10).await;
    silent.closed(10).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    for _ in 0..2 {
        let reason = refused_reason(&mut swarm.seeder_events).await;
        assert_eq!(reason, "handshake not completed within 0.5 s");
    }
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_handshake_are_bounded_by_max_peers() {
    let max_peers = 4;
    let mut swarm = Swarm::start(Config {
        max_peers,
        handshake_timeout: Duration::from_secs(3),
        ..config()
    })
    .await;
    wait_for(&mut swarm.seeder_events, 15, "the honest fetcher", |e| {
        matches!(e, Event::PeerUp { .. })
    })
    .await;
    // A flood of silent connections: at most `max_peers` of them wait for the handshake
    // timeout; the rest are closed at once.
    let started = tokio::time::Instant::now();
    let mut flood = Vec::new();
    for _ in 0..20 {
        flood.push(RawPeer::connect_silent(swarm.seeder.listen_addr()).await);
    }
    let closed_at = futures_join(flood.iter_mut().map(|h| async move {
        h.closed(10).await;
        started.elapsed()
    }))
    .await;
    let prompt = closed_at.iter().filter(|t| **t < Duration::from_secs(2)).count();
    assert!(
        prompt >= 20 - max_peers,
        "{prompt} of 20 closed at once: {closed_at:?}"
    );
    assert!(closed_at.iter().all(|t| *t < Duration::from_secs(8)));
    let seen = wait_for(
        &mut swarm.seeder_events,
        15,
        "the refusals",
        |e| matches!(e, Event::PeerRefused { reason, .. } if reason.starts_with("handshake not completed")),
    )
    .await;
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::PeerRefused { reason, .. } if reason == "too many peers")));
    swarm.finish().await;
}

/// Runs the futures concurrently on this task and returns their outputs in order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futs.map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future finished"))
        .collect()
}
