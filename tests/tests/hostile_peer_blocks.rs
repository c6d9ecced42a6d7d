//! Hostile peers sending the fetcher blocks: data it never requested, data that fails the
//! piece hash (the sender is banned), and no answers at all (dropped, not banned).
//!
//! The hostile peer is a raw peer (`raw_peer`) speaking the wire by hand through
//! share-proto's encoder, so it can send exactly the bytes an attacker would. In each test the
//! engine closes the hostile connection with a reason naming the fault, nothing panics, and
//! the honest download beside it completes byte-identical.

mod hostile_support;
mod raw_peer;
mod swarm_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hostile_support::*;
use raw_peer::RawPeer;
use share_engine::{Config, Event, Torrent};
use share_proto::wire::{BlockRequest, Message, HANDSHAKE_LEN};
use share_proto::PeerId;
use swarm_support::*;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piece_data_never_requested_closes_the_connection() {
    let mut swarm = Swarm::start(config()).await;
    let id = hostile_id(1);
    let mut h = RawPeer::connect(swarm.fetcher.listen_addr(), swarm.info_hash(), id).await;
    h.send(&[
        Message::Unchoke,
        Message::Piece {
            index: 3,
            begin: 0,
            data: Bytes::from(vec![0xab; 16384]),
        },
    ])
    .await;
    h.closed(10).await;
    let reason = down_reason(&mut swarm.fetcher_events, id).await;
    assert!(
        reason.contains("piece data at 0 of piece 3 that we never requested"),
        "{reason}"
    );
    swarm.finish().await;
}

/// Plays a seeder that has everything and answers each request by `answer`.
async fn fake_seeder(mut h: RawPeer, answer: fn(BlockRequest) -> Option<Message>) -> RawPeer {
    h.send(&[
        Message::Bitfield(Bytes::from(
            share_proto::bitfield::Bitfield::full(PIECES).as_bytes().to_vec(),
        )),
        Message::Unchoke,
    ])
    .await;
    while let Some(m) = h.recv(10).await {
        if let Message::Request(r) = m {
            if let Some(reply) = answer(r) {
                h.send(&[reply]).await;
            }
        }
    }
    h
}

/// A fetch lured to a fake seeder (the hostile peer, the only peer it knows at first), and
/// the honest seeder it is told of later.
struct Lured {
    shared: Shared,
    honest: Torrent,
    hostile_addr: SocketAddr,
    fetch: Torrent,
    events: broadcast::Receiver<Event>,
    out: tempfile::TempDir,
}

impl Lured {
    /// Starts the fetch with `config`; the hostile peer, as `id`, answers its dial and then
    /// each request by `answer` (see [`fake_seeder`]) until the fetch closes.
    async fn start(
        config: Config,
        id: PeerId,
        answer: fn(BlockRequest) -> Option<Message>,
    ) -> (Self, tokio::task::JoinHandle<RawPeer>) {
        let shared = make_file(LEN, PIECE, vec![]);
        let honest = seed(&shared.meta, &shared.path, vec![], vec![]).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hostile_addr = listener.local_addr().unwrap();
        let out = tempfile::tempdir().unwrap();
        let fetch = fetch_with(
            &shared.meta,
            &out.path().join("out.bin"),
            vec![],
            vec![hostile_addr],
            config,
        )
        .await;
        let events = fetch.events();
        let h = RawPeer::accept(&listener, id).await;
        let hostile = tokio::spawn(fake_seeder(h, answer));
        let lured = Self {
            shared,
            honest,
            hostile_addr,
            fetch,
            events,
            out,
        };
        (lured, hostile)
    }

    /// Tells the fetch of `peers`; its download completes byte-identical, then everything
    /// stops. Returns the events seen until it completed.
    async fn finish(mut self, peers: &[SocketAddr]) -> Vec<Event> {
        self.fetch.add_peers(peers.iter().copied());
        let seen = wait_for(&mut self.events, 60, "the honest download", is_complete).await;
        assert_eq!(
            std::fs::read(self.out.path().join("out.bin")).unwrap(),
            self.shared.data
        );
        self.fetch.shutdown().await;
        self.honest.shutdown().await;
        seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_fails_the_hash_gets_the_sender_banned() {
    let id = hostile_id(1);
    // Only the liar at first, so the failing pieces are certainly its alone.
    let (mut lured, liar) = Lured::start(config(), id, |r| {
        Some(Message::Piece {
            index: r.index,
            begin: r.begin,
            data: Bytes::from(vec![0x5a; r.length as usize]),
        })
    })
    .await;
    let seen = wait_for(
        &mut lured.events,
        15,
        "the liar banned",
        |e| matches!(e, Event::PeerBanned { peer_id, .. } if *peer_id == id),
    )
    .await;
    assert!(seen
        .iter()
        .any(|e| matches!(e, Event::PieceFailed { from, .. } if from == &vec![id])));
    let Some(Event::PeerBanned { reason, .. }) = seen.last() else {
        unreachable!()
    };
    assert!(reason.contains("failed its hash check"), "{reason}");
    let reason = down_reason(&mut lured.events, id).await;
    assert!(reason.starts_with("banned: "), "{reason}");
    tokio::time::timeout(Duration::from_secs(10), liar)
        .await
        .expect("the liar's connection is closed")
        .unwrap();
    let peers = [lured.honest.listen_addr(), lured.hostile_addr];
    lured.finish(&peers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_requests_is_dropped() {
    let config = Config {
        request_timeout: Duration::from_millis(500),
        ..config()
    };
    let id = hostile_id(1);
    let (mut lured, mute) = Lured::start(config, id, |_| None).await;
    let reason = down_reason(&mut lured.events, id).await;
    assert!(reason.contains("requests unanswered twice in a row"), "{reason}");
    let mute = tokio::time::timeout(Duration::from_secs(10), mute)
        .await
        .expect("the mute peer's connection is closed")
        .unwrap();
    assert!(mute.received > HANDSHAKE_LEN, "it was sent requests");
    let peers = [lured.honest.listen_addr()];
    let seen = lured.finish(&peers).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::PeerBanned { peer_id, .. } if *peer_id == id)),
        "slow is not hostile: no ban"
    );
}
