//! What the `hostile_peer_*` tests share: a torrent of 129 pieces, a seeder with an honest
//! fetcher downloading from it beside the hostile peer ([`Swarm`]), and the waits for the
//! hostile connection's end and its reason.

#![allow(dead_code)]

use share_engine::{Config, Event, Torrent};
use share_proto::{InfoHash, PeerId};
use tokio::sync::broadcast;

use crate::raw_peer::RawPeer;
use crate::swarm_support::*;

/// 129 pieces of 32 KiB: the bitfield is 17 bytes with 7 spare bits.
pub const PIECE: u32 = 32 * 1024;
/// The torrent's length: 128 whole pieces and a last one of 1000 bytes.
pub const LEN: usize = 128 * PIECE as usize + 1000;
/// The torrent's pieces.
pub const PIECES: u32 = 129;

/// A hostile peer's id, `-XX0001-hostile-peer` with its last byte `n`.
pub fn hostile_id(n: u8) -> PeerId {
    let mut id = *b"-XX0001-hostile-peer";
    id[19] = n;
    PeerId(id)
}

/// A seeder, and an honest fetcher downloading from it.
pub struct Swarm {
    pub shared: Shared,
    pub seeder: Torrent,
    pub seeder_events: broadcast::Receiver<Event>,
    pub fetcher: Torrent,
    pub fetcher_events: broadcast::Receiver<Event>,
    pub out: tempfile::TempDir,
}

impl Swarm {
    pub async fn start(seeder_config: Config) -> Self {
        let shared = make_file(LEN, PIECE, vec![]);
        let seeder = seed_with(&shared.meta, &shared.path, vec![], vec![], seeder_config).await;
        let seeder_events = seeder.events();
        let out = tempfile::tempdir().unwrap();
        let fetcher = fetch(
            &shared.meta,
            &out.path().join("out.bin"),
            vec![],
            vec![seeder.listen_addr()],
        )
        .await;
        let fetcher_events = fetcher.events();
        Self {
            shared,
            seeder,
            seeder_events,
            fetcher,
            fetcher_events,
            out,
        }
    }

    pub fn info_hash(&self) -> InfoHash {
        self.shared.meta.info_hash
    }

    /// The honest download completes, byte-identical; then everything stops.
    pub async fn finish(mut self) {
        if !self.fetcher.is_complete() {
            wait_for(&mut self.fetcher_events, 60, "the honest download", is_complete).await;
        }
        assert_eq!(
            std::fs::read(self.out.path().join("out.bin")).unwrap(),
            self.shared.data,
            "the honest download is byte-identical"
        );
        self.fetcher.shutdown().await;
        self.seeder.shutdown().await;
    }
}

/// Waits for the `PeerDown` of `peer_id` and returns its reason.
pub async fn down_reason(events: &mut broadcast::Receiver<Event>, peer_id: PeerId) -> String {
    let seen = wait_for(
        events,
        15,
        "the hostile peer's PeerDown",
        |e| matches!(e, Event::PeerDown { peer_id: p, .. } if *p == peer_id),
    )
    .await;
    match seen.last() {
        Some(Event::PeerDown { reason, .. }) => reason.clone(),
        _ => unreachable!(),
    }
}

/// Waits for a `PeerRefused` and returns its reason.
pub async fn refused_reason(events: &mut broadcast::Receiver<Event>) -> String {
    let seen = wait_for(events, 15, "a refused connection", |e| {
        matches!(e, Event::PeerRefused { .. })
    })
    .await;
    match seen.last() {
        Some(Event::PeerRefused { reason, .. }) => reason.clone(),
        _ => unreachable!(),
    }
}

/// Connects to the seeder as `peer_id`, sends `bytes`, and expects the connection closed
/// with a reason containing `want`.
pub async fn refused_on(swarm: &mut Swarm, peer_id: PeerId, bytes: &[u8], want: &str) {
    let mut h = RawPeer::connect(swarm.seeder.listen_addr(), swarm.info_hash(), peer_id).await;
    h.send_raw(bytes).await;
    h.closed(10).await;
    let reason = down_reason(&mut swarm.seeder_events, peer_id).await;
    assert!(reason.contains(want), "closed for {reason:?}, expected {want:?}");
}
