//! Hostile peers breaking the wire format: a huge length prefix (refused on its 4 bytes,
//! before any of it is buffered), fixed-size messages of the wrong length, bitfields of the
//! wrong size or with spare bits set, a HAVE past the last piece, and a peer that does it
//! again and again until it is banned.
//!
//! The hostile peer is a raw peer (`raw_peer`) speaking the wire by hand through
//! share-proto's encoder, so it can send exactly the bytes an attacker would. In each test the
//! engine closes the hostile connection with a reason naming the fault, nothing panics, and
//! the honest download beside it completes byte-identical.

mod hostile_support;
mod raw_peer;
mod swarm_support;

use bytes::Bytes;
use hostile_support::*;
use raw_peer::{frame, raw_frame, RawPeer};
use share_engine::Event;
use share_proto::wire::Message;
use swarm_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_length_prefix_closes_before_anything_is_buffered() {
    let mut swarm = Swarm::start(config()).await;
    // Only the 4-byte prefix of a 4 GiB frame: the engine must not wait for the body.
    let prefix = 0xffff_fff0u32.to_be_bytes();
    let want = "frame of 4294967280 bytes is longer than the";
    refused_on(&mut swarm, hostile_id(1), &prefix, want).await;
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_lengths_for_fixed_size_messages_close_the_connection() {
    let mut swarm = Swarm::start(config()).await;
    let cases: [(Vec<u8>, &str); 6] = [
        (raw_frame(0, &[0]), "message id 0 with 1 bytes of payload"),
        (raw_frame(2, &[1, 2]), "message id 2 with 2 bytes of payload"),
        (raw_frame(4, &[0, 0, 1]), "message id 4 with 3 bytes of payload"),
        (raw_frame(6, &[0; 11]), "message id 6 with 11 bytes of payload"),
        (raw_frame(9, &[0; 3]), "message id 9 with 3 bytes of payload"),
        (raw_frame(7, &[0; 8]), "message id 7 with 8 bytes of payload"),
    ];
    for (n, (bytes, want)) in cases.iter().enumerate() {
        refused_on(&mut swarm, hostile_id(10 + n as u8), bytes, want).await;
    }
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bitfields_close_the_connection() {
    let mut swarm = Swarm::start(config()).await;
    let spare = frame(&Message::Bitfield(Bytes::from(vec![0xff; 17])));
    refused_on(
        &mut swarm,
        hostile_id(1),
        &spare,
        "bitfield has spare bits set past piece 128",
    )
    .await;
    for (n, len) in [16usize, 18, 4096].into_iter().enumerate() {
        let wrong = frame(&Message::Bitfield(Bytes::from(vec![0; len])));
        let want = format!("bitfield is {len} bytes, but {PIECES} pieces need 17");
        refused_on(&mut swarm, hostile_id(2 + n as u8), &wrong, &want).await;
    }
    let have = frame(&Message::Have(PIECES));
    refused_on(
        &mut swarm,
        hostile_id(9),
        &have,
        "HAVE for piece 129, past the last piece",
    )
    .await;
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_breaking_the_protocol_again_and_again_is_banned() {
    let mut swarm = Swarm::start(config()).await;
    let id = hostile_id(7);
    let strikes = config().ban_strikes;
    for _ in 1..strikes {
        refused_on(
            &mut swarm,
            id,
            &frame(&Message::Have(PIECES + 5)),
            "past the last piece",
        )
        .await;
    }
    // The last strike: the ban comes with the connection's end.
    let mut h = RawPeer::connect(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    h.send(&[Message::Have(PIECES + 5)]).await;
    h.closed(10).await;
    let seen = wait_for(
        &mut swarm.seeder_events,
        15,
        "the ban",
        |e| matches!(e, Event::PeerDown { peer_id, .. } if *peer_id == id),
    )
    .await;
    let bans: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::PeerBanned { peer_id, reason, .. } => Some((*peer_id, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(bans.len(), 1, "{seen:#?}");
    assert_eq!(bans[0].0, id);
    assert!(
        bans[0].1.contains(&format!("broke the protocol {strikes} times")),
        "{}",
        bans[0].1
    );
    // It comes back: refused right after the handshake.
    let mut again = RawPeer::connect(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    again.closed(10).await;
    let reason = refused_reason(&mut swarm.seeder_events).await;
    assert_eq!(reason, "banned");
    swarm.finish().await;
}
