//! Hostile and unlucky connections that the per-fault scripts of `hostile_peer_*.rs` do not
//! cover: a seeder whose file changes under it (our own read failing is neither fatal nor
//! the requester's fault), and chat floods that rotate origins over many connections.

mod raw_peer;
mod swarm_support;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use raw_peer::{peer_id, RawPeer};
use share_engine::storage::output_paths;
use share_engine::{Config, Event, Mode, Params, Torrent};
use share_proto::bitfield::Bitfield;
use share_proto::create::{self, CreateOptions};
use share_proto::metainfo::Metainfo;
use share_proto::wire::{BlockRequest, Message};
use swarm_support::*;
use tokio::sync::broadcast;

const PIECE: u32 = 32 * 1024;
const BLOCK: u32 = 16 * 1024;

/// Drains what is already queued on `rx`.
fn drain(rx: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return out,
        }
    }
}

fn request(index: u32) -> Message {
    Message::Request(BlockRequest {
        index,
        begin: 0,
        length: BLOCK,
    })
}

/// Waits for the next `Piece` and returns its index and data.
async fn next_piece(peer: &mut RawPeer) -> (u32, Bytes) {
    match peer.wait("a block", |m| matches!(m, Message::Piece { .. })).await {
        Message::Piece {
            index,
            begin: 0,
            data,
        } => (index, data),
        m => panic!("{m:?}"),
    }
}

/// A directory torrent of `a.bin` (4 pieces and 1,000 bytes) and `b.bin` (4 pieces):
/// pieces 0-4 hold bytes of `a.bin` (4 straddles both), pieces 5-8 only of `b.bin`.
fn two_files(dir: &Path) -> (Arc<Metainfo>, Vec<u8>) {
    let a = pattern(4 * PIECE as usize + 1000, 1);
    let b = pattern(4 * PIECE as usize, 2);
    std::fs::write(dir.join("a.bin"), &a).unwrap();
    std::fs::write(dir.join("b.bin"), &b).unwrap();
    let opts = CreateOptions {
        piece_len: Some(PIECE),
        ..Default::default()
    };
    let (bytes, _) = create::create(dir, &opts, 2, &|_| {}).unwrap();
    (Arc::new(Metainfo::from_bytes(&bytes).unwrap()), [a, b].concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_whose_file_shrinks_keeps_serving_the_rest_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, data) = two_files(dir.path());
    let block = |piece: u32| &data[(piece * PIECE) as usize..(piece * PIECE + BLOCK) as usize];
    // One strike bans: a read failure held against the requester would show at once.
    let config = Config {
        ban_strikes: 1,
        ..config()
    };
    let seeder = Torrent::start(Params {
        meta: meta.clone(),
        paths: output_paths(&meta, dir.path()),
        root: dir.path().to_path_buf(),
        mode: Mode::Seed,
        trackers: vec![],
        peers: vec![],
        config,
    })
    .await
    .unwrap();
    let mut events = seeder.events();
    let id = peer_id(b'f', 1);
    let mut peer = RawPeer::connect(seeder.listen_addr(), meta.info_hash, id).await;
    peer.send(&[Message::Interested]).await;
    peer.wait("unchoke", |m| *m == Message::Unchoke).await;
    // Part of each file first.
    peer.send(&[request(0), request(5)]).await;
    for want in [0, 5] {
        let (index, got) = next_piece(&mut peer).await;
        assert_eq!((index, &got[..]), (want, block(want)));
    }

    let a = dir.path().join("a.bin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&a)
        .unwrap()
        .set_len(1000)
        .unwrap();
    // A block of a.bin past its new end, then one of b.bin: only b's comes back.
    peer.send(&[request(2), request(6)]).await;
    let (index, got) = next_piece(&mut peer).await;
    assert_eq!((index, &got[..]), (6, block(6)), "b.bin is still served");
    let seen = wait_for(&mut events, 10, "the changed file named", |e| {
        matches!(e, Event::FileUnavailable { .. })
    })
    .await;
    let Some(Event::FileUnavailable { path, reason, pieces }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(path, &a);
    let want = format!("it is now 1000 bytes, the manifest says {}", 4 * PIECE + 1000);
    assert_eq!(reason, &want);
    assert_eq!(*pieces, 5, "pieces 0-4 touch a.bin");

    // More of a.bin (withheld, never read again) and of b.bin, over the same connection.
    peer.send(&[request(3), request(1), request(7), request(4)]).await;
    let (index, got) = next_piece(&mut peer).await;
    assert_eq!((index, &got[..]), (7, block(7)));
    // A newcomer is told only what is still served.
    let mut late = RawPeer::connect(seeder.listen_addr(), meta.info_hash, peer_id(b'f', 2)).await;
    let Message::Bitfield(bits) = late
        .wait("a bitfield", |m| matches!(m, Message::Bitfield(_)))
        .await
    else {
        unreachable!()
    };
    let bits = Bitfield::from_wire(&bits, meta.geometry().piece_count()).unwrap();
    assert_eq!(bits.ones().collect::<Vec<_>>(), [5, 6, 7, 8]);

    assert!(!seeder.stopped().is_cancelled(), "the seeder keeps running");
    let later = drain(&mut events);
    let all: Vec<&Event> = seen.iter().chain(&later).collect();
    assert_eq!(
        all.iter()
            .filter(|e| matches!(e, Event::FileUnavailable { .. }))
            .count(),
        1,
        "the file is named once"
    );
    assert!(
        !all.iter().any(|e| matches!(
            e,
            Event::PeerBanned { .. } | Event::PeerDown { .. } | Event::Fatal(_)
        )),
        "our read failure is not the requester's fault: {all:#?}"
    );
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_origins_over_ten_connections_cannot_flood_the_screen() {
    let shared = make_file(4 * PIECE as usize, PIECE, vec![]);
    // Ten strangers, all on 127.0.0.1: the per-address cap would refuse most of them before
    // a line was sent; the chat budgets alone must hold here.
    let cfg = Config {
        max_peers_per_ip: 1000,
        ..config()
    };
    let target = seed_with(&shared.meta, &shared.path, vec![], vec![], cfg).await;
    let mut events = target.events();
    let out = tempfile::tempdir().unwrap();
    let honest = fetch(
        &shared.meta,
        &out.path().join("out.bin"),
        vec![],
        vec![target.listen_addr()],
    )
    .await;
    wait_for(&mut events, 15, "the honest chatter", |e| {
        matches!(e, Event::PeerUp { client: Some(_), .. })
    })
    .await;

    let mut flooders = Vec::new();
    for n in 0..10 {
        let mut p = RawPeer::connect(target.listen_addr(), shared.meta.info_hash, peer_id(b'c', n)).await;
        p.offer_chat().await;
        flooders.push(p);
    }
    let started = tokio::time::Instant::now();
    // Every message under an origin never seen before, 300 per connection, in three rounds.
    // The honest chatter says a line in the middle of the flood, and one once the flooders
    // are gone; each arrives. (Lines typed within milliseconds of each other would not all
    // pass: past its first line or two a link only gets the busy half of the screen budget,
    // which the flood holds down, `chat_limits.rs`.)
    let mut origin = 0u32;
    let mut seen = Vec::new();
    let is_cut = |e: &Event| matches!(e, Event::PeerDown { reason, .. } if reason.contains("chat flood"));
    for round in 0..3 {
        for p in &mut flooders {
            for _ in 0..100 {
                origin += 1;
                p.chat(peer_id(b'o', origin), 1, &format!("flood {origin}")).await;
            }
        }
        if round == 0 {
            honest.say("honest 0").unwrap();
            seen.extend(
                wait_for(
                    &mut events,
                    15,
                    "honest 0",
                    |e| matches!(e, Event::Chat { text, .. } if text == "honest 0"),
                )
                .await,
            );
        }
    }
    for p in &mut flooders {
        p.closed(15).await;
    }
    let mut cut = seen.iter().filter(|e| is_cut(e)).count();
    if cut < 10 {
        seen.extend(
            wait_for(&mut events, 15, "every flooder disconnected", |e| {
                cut += usize::from(is_cut(e));
                cut == 10
            })
            .await,
        );
    }
    for n in 1..2 {
        let text = format!("honest {n}");
        honest.say(&text).unwrap();
        seen.extend(
            wait_for(
                &mut events,
                15,
                &text,
                |e| matches!(e, Event::Chat { text: t, .. } if *t == text),
            )
            .await,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    seen.extend(drain(&mut events));
    let shown = seen.iter().filter(|e| matches!(e, Event::Chat { .. })).count();
    let bound = 60.0 + 20.0 * elapsed;
    println!(
        "{shown} chat lines shown in {elapsed:.2} s (bound {bound:.0}) from 3,000 sent over 10 connections"
    );
    assert!((shown as f64) <= bound, "{shown} lines shown in {elapsed:.2} s");
    assert_eq!(
        seen.iter().filter(|e| is_cut(e)).count(),
        10,
        "every flooding connection is disconnected"
    );
    honest.shutdown().await;
    target.shutdown().await;
}
