//! Scripted hostile peers against the engine, one fault each: the hostile connection is
//! closed with a reason naming the fault (banned where repeated), nothing panics, memory stays
//! bounded (a huge frame is refused on its 4-byte prefix, before any of it is buffered), and
//! the honest download running beside it completes byte-identical.
//!
//! The hostile peer is a plain tokio socket speaking the wire by hand through share-proto's
//! encoder, so it can send exactly the bytes an attacker would.

mod swarm_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use share_engine::{Config, Event, Torrent};
use share_proto::wire::{self, BlockRequest, Handshake, Message, HANDSHAKE_LEN};
use share_proto::{InfoHash, PeerId};
use swarm_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast;

/// 129 pieces of 32 KiB: the bitfield is 17 bytes with 7 spare bits.
const PIECE: u32 = 32 * 1024;
const LEN: usize = 128 * PIECE as usize + 1000;
const PIECES: u32 = 129;

fn hostile_id(n: u8) -> PeerId {
    let mut id = *b"-XX0001-hostile-peer";
    id[19] = n;
    PeerId(id)
}

/// One hostile connection.
struct Hostile {
    stream: TcpStream,
    buf: BytesMut,
    /// Bytes the engine sent us (handshake included).
    received: usize,
}

impl Hostile {
    /// Connects to `addr` and completes a handshake for `info_hash` as `peer_id`.
    async fn connect(addr: SocketAddr, info_hash: InfoHash, peer_id: PeerId) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::handshake(stream, info_hash, peer_id).await
    }

    /// Like `connect`, with a 4 KiB receive buffer: data we do not read backs up quickly.
    async fn connect_slow_reader(addr: SocketAddr, info_hash: InfoHash, peer_id: PeerId) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Self::handshake(stream, info_hash, peer_id).await
    }

    async fn handshake(stream: TcpStream, info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut h = Self::raw(stream);
        h.send_raw(&Handshake::ours(info_hash, peer_id).encode()).await;
        let mut theirs = [0u8; HANDSHAKE_LEN];
        h.stream.read_exact(&mut theirs).await.unwrap();
        h.received += HANDSHAKE_LEN;
        assert_eq!(Handshake::decode(&theirs).unwrap().info_hash, info_hash);
        h
    }

    /// Accepts one connection on `listener` (the engine dialing us) and answers its
    /// handshake as `peer_id`.
    async fn accept(listener: &TcpListener, peer_id: PeerId) -> Self {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("the engine dials the hostile peer")
            .unwrap();
        let mut h = Self::raw(stream);
        let mut theirs = [0u8; HANDSHAKE_LEN];
        h.stream.read_exact(&mut theirs).await.unwrap();
        h.received += HANDSHAKE_LEN;
        let theirs = Handshake::decode(&theirs).unwrap();
        h.send_raw(&Handshake::ours(theirs.info_hash, peer_id).encode())
            .await;
        h
    }

    fn raw(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            received: 0,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        // The engine may already have closed on an earlier fault; that is its right.
        let _ = self.stream.write_all(bytes).await;
    }

    async fn send(&mut self, msgs: &[Message]) {
        let mut out = BytesMut::new();
        for m in msgs {
            wire::encode(m, &mut out);
        }
        self.send_raw(&out).await;
    }

    /// The next message from the engine, or `None` once it closed.
    async fn recv(&mut self) -> Option<Message> {
        let decoder = wire::Decoder::default();
        loop {
            if let Some(m) = decoder
                .decode(&mut self.buf)
                .expect("the engine sends valid frames")
            {
                return Some(m);
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read_buf(&mut self.buf))
                .await
                .expect("the engine sends something within 10 s")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.received += n;
        }
    }

    /// Reads messages until one matches `pred`.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        loop {
            match self.recv().await {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!("the engine closed before sending {what}"),
            }
        }
    }

    /// Reads (and drops) whatever comes until the engine closes; panics after `secs`.
    async fn assert_closed(&mut self, secs: u64) {
        let mut sink = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => self.received += n,
                Err(_) => panic!("the engine kept the hostile connection open for {secs} s"),
            }
        }
    }
}

/// A seeder, and an honest fetcher downloading from it.
struct Swarm {
    shared: Shared,
    seeder: Torrent,
    seeder_events: broadcast::Receiver<Event>,
    fetcher: Torrent,
    fetcher_events: broadcast::Receiver<Event>,
    out: tempfile::TempDir,
}

impl Swarm {
    async fn start(seeder_config: Config) -> Self {
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

    fn info_hash(&self) -> InfoHash {
        self.shared.meta.info_hash
    }

    /// The honest download completes, byte-identical; then everything stops.
    async fn finish(mut self) {
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
async fn down_reason(events: &mut broadcast::Receiver<Event>, peer_id: PeerId) -> String {
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
async fn refused_reason(events: &mut broadcast::Receiver<Event>) -> String {
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
async fn refused_on(swarm: &mut Swarm, peer_id: PeerId, bytes: &[u8], want: &str) {
    let mut h = Hostile::connect(swarm.seeder.listen_addr(), swarm.info_hash(), peer_id).await;
    h.send_raw(bytes).await;
    h.assert_closed(10).await;
    let reason = down_reason(&mut swarm.seeder_events, peer_id).await;
    assert!(reason.contains(want), "closed for {reason:?}, expected {want:?}");
}

fn frame(msg: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    wire::encode(msg, &mut out);
    out.to_vec()
}

/// A frame with id `id` and `payload`, whatever its length should be.
fn raw_frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (1 + payload.len() as u32).to_be_bytes().to_vec();
    out.push(id);
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_length_prefix_closes_before_anything_is_buffered() {
    let mut swarm = Swarm::start(config()).await;
    let id = hostile_id(1);
    let mut h = Hostile::connect(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    // Only the 4-byte prefix of a 4 GiB frame: the engine must not wait for the body.
    h.send_raw(&0xffff_fff0u32.to_be_bytes()).await;
    h.assert_closed(10).await;
    let reason = down_reason(&mut swarm.seeder_events, id).await;
    assert!(
        reason.contains("frame of 4294967280 bytes is longer than the"),
        "{reason}"
    );
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
    let mut h = Hostile::connect_slow_reader(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
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
    h.assert_closed(10).await;
    swarm.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piece_data_never_requested_closes_the_connection() {
    let mut swarm = Swarm::start(config()).await;
    let id = hostile_id(1);
    let mut h = Hostile::connect(swarm.fetcher.listen_addr(), swarm.info_hash(), id).await;
    h.send(&[
        Message::Unchoke,
        Message::Piece {
            index: 3,
            begin: 0,
            data: Bytes::from(vec![0xab; 16384]),
        },
    ])
    .await;
    h.assert_closed(10).await;
    let reason = down_reason(&mut swarm.fetcher_events, id).await;
    assert!(
        reason.contains("piece data at 0 of piece 3 that we never requested"),
        "{reason}"
    );
    swarm.finish().await;
}

/// Plays a seeder that has everything and answers each request by `answer`.
async fn fake_seeder(mut h: Hostile, answer: fn(BlockRequest) -> Option<Message>) -> Hostile {
    h.send(&[
        Message::Bitfield(Bytes::from(
            share_proto::bitfield::Bitfield::full(PIECES).as_bytes().to_vec(),
        )),
        Message::Unchoke,
    ])
    .await;
    while let Some(m) = h.recv().await {
        if let Message::Request(r) = m {
            if let Some(reply) = answer(r) {
                h.send(&[reply]).await;
            }
        }
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_fails_the_hash_gets_the_sender_banned() {
    let shared = make_file(LEN, PIECE, vec![]);
    let honest = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hostile_addr = listener.local_addr().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    // Only the liar at first, so the failing pieces are certainly its alone.
    let f = fetch(&shared.meta, &path, vec![], vec![hostile_addr]).await;
    let mut events = f.events();
    let id = hostile_id(1);
    let h = Hostile::accept(&listener, id).await;
    let liar = tokio::spawn(fake_seeder(h, |r| {
        Some(Message::Piece {
            index: r.index,
            begin: r.begin,
            data: Bytes::from(vec![0x5a; r.length as usize]),
        })
    }));
    let seen = wait_for(
        &mut events,
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
    let reason = down_reason(&mut events, id).await;
    assert!(reason.starts_with("banned: "), "{reason}");
    tokio::time::timeout(Duration::from_secs(10), liar)
        .await
        .expect("the liar's connection is closed")
        .unwrap();
    f.add_peers([honest.listen_addr(), hostile_addr]);
    wait_for(&mut events, 60, "the honest download", is_complete).await;
    assert_eq!(std::fs::read(&path).unwrap(), shared.data);
    f.shutdown().await;
    honest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_requests_is_dropped() {
    let shared = make_file(LEN, PIECE, vec![]);
    let honest = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hostile_addr = listener.local_addr().unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    let config = Config {
        request_timeout: Duration::from_millis(500),
        ..config()
    };
    let f = fetch_with(&shared.meta, &path, vec![], vec![hostile_addr], config).await;
    let mut events = f.events();
    let id = hostile_id(1);
    let h = Hostile::accept(&listener, id).await;
    let mute = tokio::spawn(fake_seeder(h, |_| None));
    let reason = down_reason(&mut events, id).await;
    assert!(reason.contains("requests unanswered twice in a row"), "{reason}");
    let mute = tokio::time::timeout(Duration::from_secs(10), mute)
        .await
        .expect("the mute peer's connection is closed")
        .unwrap();
    assert!(mute.received > HANDSHAKE_LEN, "it was sent requests");
    f.add_peers([honest.listen_addr()]);
    let seen = wait_for(&mut events, 60, "the honest download", is_complete).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::PeerBanned { peer_id, .. } if *peer_id == id)),
        "slow is not hostile: no ban"
    );
    assert_eq!(std::fs::read(&path).unwrap(), shared.data);
    f.shutdown().await;
    honest.shutdown().await;
}

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
    // Not BitTorrent at all.
    let mut h = Hostile::raw(TcpStream::connect(swarm.seeder.listen_addr()).await.unwrap());
    h.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
        .await;
    h.assert_closed(10).await;
    assert_eq!(h.received, 0);
    let reason = refused_reason(&mut swarm.seeder_events).await;
    assert!(reason.contains("not BitTorrent"), "{reason}");
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
    let mut half = Hostile::raw(TcpStream::connect(swarm.seeder.listen_addr()).await.unwrap());
    half.send_raw(&Handshake::ours(swarm.info_hash(), hostile_id(1)).encode()[..30])
        .await;
    let mut silent = Hostile::raw(TcpStream::connect(swarm.seeder.listen_addr()).await.unwrap());
    half.assert_closed(10).await;
    silent.assert_closed(10).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    for _ in 0..2 {
        let reason = refused_reason(&mut swarm.seeder_events).await;
        assert_eq!(reason, "handshake not completed within 0.5 s");
    }
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
    let mut h = Hostile::connect(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    h.send(&[Message::Have(PIECES + 5)]).await;
    h.assert_closed(10).await;
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
    let mut again = Hostile::connect(swarm.seeder.listen_addr(), swarm.info_hash(), id).await;
    again.assert_closed(10).await;
    let reason = refused_reason(&mut swarm.seeder_events).await;
    assert_eq!(reason, "banned");
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
        flood.push(Hostile::raw(
            TcpStream::connect(swarm.seeder.listen_addr()).await.unwrap(),
        ));
    }
    let closed_at = futures_join(flood.iter_mut().map(|h| async move {
        h.assert_closed(10).await;
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
