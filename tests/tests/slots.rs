//! Connection slots against strangers and against a crowd: idle connections that fill every
//! slot are displaced by an honest newcomer, one address holds at most `max_peers_per_ip`,
//! complete peers make room for the ones that still need data (a seeder and 60 fetchers all
//! complete), and a peer that connected to us is not dialed again at the listen port it
//! gave in its BEP 10 handshake.

mod swarm_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use share_engine::{Config, Event, Torrent};
use share_proto::extension::{ExtendedHandshake, HANDSHAKE_ID};
use share_proto::wire::{self, Handshake, Message, HANDSHAKE_LEN};
use share_proto::{InfoHash, PeerId};
use swarm_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast;

fn stranger_id(n: u32) -> PeerId {
    let mut id = *b"-XX0001-idle-0000000";
    id[16..].copy_from_slice(&n.to_be_bytes());
    PeerId(id)
}

/// Connects from `from` (any port) to `to` and completes a handshake for `info_hash`; with
/// `listen_port`, sends a BEP 10 handshake carrying it as `p`. `None` if the engine closed
/// before answering.
async fn handshake(
    from: [u8; 4],
    to: SocketAddr,
    info_hash: InfoHash,
    peer_id: PeerId,
    listen_port: Option<u16>,
) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    stream
        .write_all(&Handshake::ours(info_hash, peer_id).encode())
        .await
        .ok()?;
    let mut theirs = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut theirs))
        .await
        .expect("the engine answers or closes within 10 s")
        .ok()?;
    if let Some(port) = listen_port {
        let hs = ExtendedHandshake {
            p: Some(i64::from(port)),
            v: Some(b"libtorrent-like/1.0".to_vec().into()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        wire::encode(
            &Message::Extended {
                id: HANDSHAKE_ID,
                payload: Bytes::from(hs.encode()),
            },
            &mut out,
        );
        stream.write_all(&out).await.ok()?;
    }
    Some(stream)
}

/// Holds a connection doing nothing but keep-alives, reading and dropping whatever comes,
/// until the engine closes it.
fn keep_idle(mut stream: TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sink = vec![0u8; 16 * 1024];
        let mut keepalive = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                r = stream.read(&mut sink) => if !matches!(r, Ok(n) if n > 0) { return },
                _ = keepalive.tick() => if stream.write_all(&[0, 0, 0, 0]).await.is_err() { return },
            }
        }
    })
}

/// Strangers `ids` connecting from `from` to `to`, each held idle (see [`keep_idle`]); the
/// ones the engine closed before answering the handshake are left out.
async fn idle_strangers(
    from: [u8; 4],
    to: SocketAddr,
    info_hash: InfoHash,
    ids: std::ops::Range<u32>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut idle = Vec::new();
    for n in ids {
        let conn = handshake(from, to, info_hash, stranger_id(n), None).await;
        idle.extend(conn.map(keep_idle));
    }
    idle
}

/// The reasons of the refusals among `seen`.
fn refusals(seen: &[Event]) -> Vec<String> {
    seen.iter()
        .filter_map(|e| match e {
            Event::PeerRefused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Counts events until `n` match `pred` (deadline `secs`); returns everything seen.
async fn wait_count(
    rx: &mut broadcast::Receiver<Event>,
    secs: u64,
    n: usize,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let mut hits = 0;
    while hits < n {
        let more = wait_for(rx, secs, what, &pred).await;
        hits += 1;
        seen.extend(more);
    }
    seen
}

fn is_registration(e: &Event) -> bool {
    matches!(e, Event::PeerUp { client: None, .. }) || matches!(e, Event::PeerRefused { .. })
}

/// An honest fetch of `shared` from `seeder` alone, waited for until it completes
/// byte-identical; returned with its output directory, still running.
async fn honest_fetch(
    shared: &Shared,
    seeder: &Torrent,
    secs: u64,
    what: &str,
) -> (Torrent, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    let f = fetch(&shared.meta, &path, vec![], vec![seeder.listen_addr()]).await;
    complete_identical(&f, &path, &shared.data, secs, what).await;
    (f, out)
}

/// Starts fetchers `ids` of `shared` (outputs `f{i}.bin` in `out`) with `trackers` and `cfg`.
async fn start_fetchers(
    ids: std::ops::Range<usize>,
    shared: &Shared,
    trackers: &[String],
    cfg: &Config,
    out: &std::path::Path,
) -> Vec<(Torrent, std::path::PathBuf)> {
    let mut started = Vec::new();
    for i in ids {
        let path = out.join(format!("f{i}.bin"));
        let f = fetch_with(&shared.meta, &path, trackers.to_vec(), vec![], cfg.clone()).await;
        started.push((f, path));
    }
    started
}

/// Waits for `f` to complete and checks its bytes.
async fn complete_identical(f: &Torrent, out: &std::path::Path, data: &[u8], secs: u64, what: &str) {
    if !f.is_complete() {
        wait_for(&mut f.events(), secs, what, is_complete).await;
    }
    assert_eq!(std::fs::read(out).unwrap(), data, "{what}: bytes identical");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_idle_connections_do_not_lock_an_honest_fetch_out() {
    let shared = make_file(2 * 1024 * 1024 + 77, 32 * 1024, vec![]);
    // Every stranger is on 127.0.0.1 here, so the per-address cap is out of the way; the
    // slots alone must hold.
    let cfg = Config {
        max_peers_per_ip: 1000,
        ..config()
    };
    let max_peers = cfg.max_peers;
    let seeder = seed_with(&shared.meta, &shared.path, vec![], vec![], cfg).await;
    let mut events = seeder.events();
    let idle = idle_strangers([127, 0, 0, 1], seeder.listen_addr(), shared.meta.info_hash, 0..60).await;
    let seen = wait_count(
        &mut events,
        30,
        60,
        "the 60 strangers' registrations",
        is_registration,
    )
    .await;
    let displaced = |seen: &[Event]| {
        seen.iter()
            .filter(|e| matches!(e, Event::PeerDown { reason, .. } if reason.starts_with("displaced by")))
            .count()
    };
    let refused = refusals(&seen);
    println!(
        "60 idle strangers: {} registered, {} refused {refused:?}",
        60 - refused.len(),
        refused.len()
    );

    // The honest fetch: every slot is held by an idle stranger.
    let started = tokio::time::Instant::now();
    let (f, _out) = honest_fetch(&shared, &seeder, 40, "the honest fetch").await;
    println!("honest fetch complete in {:?}", started.elapsed());
    // Each newcomer beyond the slots, the honest fetcher included, displaced an idle stranger.
    let mut total_displaced = displaced(&seen);
    while total_displaced < 60 + 1 - max_peers {
        let more = wait_for(
            &mut events,
            10,
            "a stranger displaced",
            |e| matches!(e, Event::PeerDown { reason, .. } if reason.starts_with("displaced by")),
        )
        .await;
        total_displaced += displaced(&more);
    }
    println!("strangers displaced: {total_displaced}");
    assert!(
        total_displaced >= 60 + 1 - max_peers,
        "each newcomer beyond {max_peers} displaced an idle stranger: {total_displaced}"
    );
    f.shutdown().await;
    seeder.shutdown().await;
    for h in idle {
        h.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_max_peers_per_ip_connections() {
    let shared = make_file(1024 * 1024, 32 * 1024, vec![]);
    let cap = config().max_peers_per_ip;
    let seeder = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let mut events = seeder.events();
    // A host at 127.0.0.2 opens far more connections than the cap.
    let idle = idle_strangers(
        [127, 0, 0, 2],
        seeder.listen_addr(),
        shared.meta.info_hash,
        0..cap as u32 + 6,
    )
    .await;
    let seen = wait_count(&mut events, 30, cap + 6, "the registrations", is_registration).await;
    let up = seen
        .iter()
        .filter(|e| matches!(e, Event::PeerUp { client: None, .. }))
        .count();
    let refused = refusals(&seen);
    assert_eq!(up, cap, "{refused:?}");
    assert_eq!(refused.len(), 6);
    let want = format!("too many connections from 127.0.0.2: {cap} already, max_peers_per_ip is {cap}");
    assert!(refused.iter().all(|r| *r == want), "{refused:?}");
    // Another address is still served.
    let (f, _out) = honest_fetch(&shared, &seeder, 30, "the fetch from 127.0.0.1").await;
    f.shutdown().await;
    seeder.shutdown().await;
    for h in idle {
        h.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_and_sixty_fetchers_all_complete() {
    let tracker = TestTracker::start().await;
    let t = vec![tracker.url.clone()];
    let shared = make_file(256 * 1024 + 5, 16 * 1024, t.clone());
    // One process, one address: the per-address cap would be the limit instead of the slots.
    let cfg = Config {
        max_peers_per_ip: 10_000,
        ..config()
    };
    let max_peers = cfg.max_peers;
    let seeder = seed_with(&shared.meta, &shared.path, t.clone(), vec![], cfg.clone()).await;
    let out = tempfile::tempdir().unwrap();
    let started = tokio::time::Instant::now();
    // As many as the slots hold first; every one completes and stays (complete peers keep
    // chat links open).
    let mut fetchers = start_fetchers(0..max_peers, &shared, &t, &cfg, out.path()).await;
    for (i, (f, path)) in fetchers.iter().enumerate() {
        complete_identical(f, path, &shared.data, 120, &format!("fetcher {i}")).await;
    }
    println!("first {max_peers} fetchers complete in {:?}", started.elapsed());
    // Then ten more, into a swarm whose slots are all held by complete peers.
    let later = tokio::time::Instant::now();
    fetchers.extend(start_fetchers(max_peers..max_peers + 10, &shared, &t, &cfg, out.path()).await);
    for (i, (f, path)) in fetchers.iter().enumerate().skip(max_peers) {
        complete_identical(f, path, &shared.data, 120, &format!("late fetcher {i}")).await;
    }
    println!("10 late fetchers complete in {:?}", later.elapsed());
    for (f, _) in fetchers {
        f.shutdown().await;
    }
    seeder.shutdown().await;
}

/// A tracker that answers every announce with `peers`, once `go` fires.
async fn scripted_tracker(peers: Vec<SocketAddr>, go: tokio::sync::watch::Receiver<bool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let mut body = b"d8:intervali1800e5:peers".to_vec();
    body.extend_from_slice(format!("{}:", peers.len() * 6).as_bytes());
    for p in &peers {
        let SocketAddr::V4(v4) = p else { unreachable!() };
        body.extend_from_slice(&v4.ip().octets());
        body.extend_from_slice(&v4.port().to_be_bytes());
    }
    body.push(b'e');
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            let mut go = go.clone();
            tokio::spawn(async move {
                if read_http_head(&mut stream).await.is_none() {
                    return;
                }
                if go.wait_for(|g| *g).await.is_err() {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_connected_in_is_not_dialed_again_at_its_listen_port() {
    let shared = make_file(1024 * 1024, 32 * 1024, vec![]);
    // The peer listens here and connects to the seeder from an ephemeral port, with a new
    // peer id (libtorrent makes one per connection), so the peer id cannot match it.
    let its_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let its_listen = its_listener.local_addr().unwrap();
    // A second address in the tracker's answer, proving the answer was acted on.
    let witness = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let url = scripted_tracker(vec![its_listen, witness.local_addr().unwrap()], go).await;
    let seeder = seed(&shared.meta, &shared.path, vec![url.clone()], vec![]).await;
    let mut events = seeder.events();
    let stream = handshake(
        [127, 0, 0, 1],
        seeder.listen_addr(),
        shared.meta.info_hash,
        stranger_id(1),
        Some(its_listen.port()),
    )
    .await
    .expect("the seeder accepts the peer");
    let inbound = stream.local_addr().unwrap();
    assert_ne!(inbound.port(), its_listen.port());
    let conn = keep_idle(stream);
    wait_for(
        &mut events,
        15,
        "the peer's extension handshake",
        |e| matches!(e, Event::PeerUp { addr, client: Some(_), .. } if *addr == inbound),
    )
    .await;
    // Now the tracker answers, listing the peer at its listen port.
    go_tx.send_replace(true);
    wait_for(&mut events, 15, "the tracker's answer", |e| {
        matches!(e, Event::TrackerOk { peers: 2, .. })
    })
    .await;
    let (_witnessed, _) = tokio::time::timeout(Duration::from_secs(10), witness.accept())
        .await
        .expect("the seeder dials the other address of the answer")
        .unwrap();
    // Both addresses were dialed in the same pass, if at all: a dial to the listener would be
    // here by now; give it a generous second more.
    let redial = tokio::time::timeout(Duration::from_secs(2), its_listener.accept()).await;
    assert!(
        redial.is_err(),
        "the seeder dialed {its_listen}, where the peer connected from {inbound} listens"
    );
    assert_eq!(seeder.stats().queued_peers, 0, "nor does it wait in the queue");
    assert!(!conn.is_finished(), "the peer's one connection is still open");
    conn.abort();
    seeder.shutdown().await;
}
