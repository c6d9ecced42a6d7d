//! Hostile peers asking the seeder for too much: blocks outside the torrent or the piece,
//! empty or over 128 KiB, and more outstanding requests than the `reqq` we advertise.
//!
//! The hostile peer is a raw peer (`raw_peer`) speaking the wire by hand through
//! share-proto's encoder, so it can send exactly the bytes an attacker would. In each test the
//! engine closes the hostile connection with a reason naming the fault, nothing panics, and
//! the honest download beside it completes byte-identical.

mod hostile_support;
mod raw_peer;
mod swarm_support;

use hostile_support::*;
use raw_peer::{frame, RawPeer};
use share_engine::Config;
use share_proto::wire::{BlockRequest, Message};
use swarm_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_out_of_range_close_the_connection() {
    let mut swarm = Swarm::start(config()).await;
    let last_len = (LEN % PIECE as usize) as u32;
    // Each reason says what is wrong with the block (a misaligned one is not "outside the torrent").
    let past = |end: u64, len: u32| format!("it ends at byte {end} of the piece, past its end at {len}");
    let cases = [
        (
            PIECES,
            0,
            16384,
            format!("there is no piece {PIECES} (the torrent has {PIECES} pieces)"),
        ),
        (0, PIECE, 16384, past(u64::from(PIECE) + 16384, PIECE)),
        (
            0,
            PIECE - 1000,
            16384,
            past(u64::from(PIECE) - 1000 + 16384, PIECE),
        ),
        (0, 0, 0, "it is empty".to_string()),
        (
            0,
            0,
            256 * 1024,
            "it is 262144 bytes long, over the 131072 a block may be".to_string(),
        ),
        (
            PIECES - 1,
            0,
            last_len + 1,
            past(u64::from(last_len) + 1, last_len),
        ),
        (
            u32::MAX,
            u32::MAX,
            u32::MAX,
            format!("there is no piece {} (the torrent has {PIECES} pieces)", u32::MAX),
        ),
    ];
    for (n, (index, begin, length, why)) in cases.into_iter().enumerate() {
        let req = frame(&Message::Request(BlockRequest { index, begin, length }));
        let want = format!("request for {length} bytes at {begin} of piece {index}: {why}");
        refused_on(&mut swarm, hostile_id(20 + n as u8), &req, &want).await;
    }
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_requests_than_our_reqq_close_the_connection() {
    let reqq = 250;
    let mut swarm = Swarm::start(Config { reqq, ..config() }).await;
    let id = hostile_id(1);
    let mut h = RawPeer::connect_small_window(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    h.send(&[Message::Interested]).await;
    h.wait("unchoke", |m| *m == Message::Unchoke).await;
    // Requests for valid blocks, far more than the advertised reqq, while we read nothing:
    // what the seeder answers backs up in a few socket buffers, and the rest stay queued.
    let req = Message::Request(BlockRequest {
        index: 0,
        begin: 0,
        length: 16384,
    });
    let burst = vec![req; 4000];
    h.send(&burst).await;
    let reason = down_reason(&mut swarm.seeder_events, id).await;
    assert!(
        reason.contains(&format!("more than {reqq} outstanding requests")),
        "{reason}"
    );
    h.closed(10).await;
    swarm.finish().await;
}

/// `ut_metadata` (BEP 9) from a stranger: each request gets its piece of the info
/// dictionary's exact bytes (a piece past the end a reject), and a flood of requests, or a
/// malformed one, closes the connection as a violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_requests_are_answered_and_a_flood_of_them_closes_the_connection() {
    use bytes::Bytes;
    use share_proto::extension::ExtendedHandshake;
    use share_proto::metadata::MetadataMsg;
    let mut swarm = Swarm::start(config()).await;
    let info = swarm.shared.meta.info_bytes.clone();
    let id = hostile_id(40);
    let mut h = RawPeer::connect(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    let mut ext = ExtendedHandshake::default();
    ext.m.insert("ut_metadata".into(), 9);
    h.send(&[Message::Extended {
        id: 0,
        payload: Bytes::from(ext.encode()),
    }])
    .await;
    // The seeder says where it takes `ut_metadata`, and the size.
    let theirs = h
        .wait("the seeder's extension handshake", |m| {
            matches!(m, Message::Extended { id: 0, .. })
        })
        .await;
    let Message::Extended { payload, .. } = theirs else {
        unreachable!()
    };
    let hs = ExtendedHandshake::decode(&payload).unwrap();
    assert_eq!(hs.metadata_size, Some(info.len() as i64));
    let their_id = hs.id_of("ut_metadata").expect("the seeder serves metadata");
    let ask = |piece: u32| Message::Extended {
        id: their_id,
        payload: Bytes::from(MetadataMsg::Request { piece }.encode()),
    };
    h.send(&[ask(0), ask(99)]).await;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let m = h
            .wait("a metadata answer", |m| {
                matches!(m, Message::Extended { id: 9, .. })
            })
            .await;
        let Message::Extended { payload, .. } = m else {
            unreachable!()
        };
        answers.push(MetadataMsg::decode(&payload).unwrap());
    }
    assert_eq!(
        answers,
        vec![
            MetadataMsg::Data {
                piece: 0,
                total_size: info.len() as u32,
                data: info[..info.len().min(16384)].to_vec()
            },
            MetadataMsg::Reject { piece: 99 },
        ]
    );
    // Asking again and again: every piece a few times is fine, a thousand times is not.
    h.send(&vec![ask(0); 1000]).await;
    let reason = down_reason(&mut swarm.seeder_events, id).await;
    assert!(
        reason.contains("ut_metadata requests on one connection"),
        "{reason}"
    );
    // A malformed one closes another connection.
    let junk = raw_peer::raw_frame(20, &[their_id, b'x', b'y']);
    refused_on(&mut swarm, hostile_id(41), &junk, "malformed ut_metadata message").await;
    swarm.finish().await;
}
