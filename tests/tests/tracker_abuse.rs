//! Abuse of the tracker over real sockets, beyond what `tracker_http.rs` covers: a flood of
//! distinct swarms and peers stays within the configured caps and is answered with bencoded
//! refusals, huge and odd `numwant` values are capped, malformed queries get failures on a
//! kept-alive connection without ending it, and idle clients holding every connection slot
//! time out so a real client is served.

mod tracker_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use share_proto::announce::{AnnounceRequest, AnnounceResponse, Event};
use share_proto::{InfoHash, PeerId};
use tracker_http::Config;
use tracker_support::{get, read_reply, RunningTracker};

fn hash(n: u32) -> InfoHash {
    let mut h = [0x5a; 20];
    h[..4].copy_from_slice(&n.to_be_bytes());
    InfoHash(h)
}

fn peer(n: u32) -> PeerId {
    let mut p = *b"-XX0001-000000000000";
    p[16..].copy_from_slice(&n.to_be_bytes());
    PeerId(p)
}

fn announce(h: InfoHash, p: PeerId, port: u16) -> String {
    let mut r = AnnounceRequest::new(h, p, port, 1);
    r.event = Event::Started;
    format!("/announce?{}", r.to_query())
}

/// Sends every path on one kept-alive connection; returns the bodies.
fn pipeline(addr: std::net::SocketAddr, paths: impl IntoIterator<Item = String>) -> Vec<Vec<u8>> {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    paths
        .into_iter()
        .map(|p| {
            conn.write_all(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .unwrap();
            let reply = read_reply(&mut conn).unwrap();
            assert_eq!(reply.status, 200, "{p}");
            reply.body
        })
        .collect()
}

#[test]
fn a_flood_of_swarms_and_peers_stays_within_the_caps() {
    let config = Config {
        max_swarms: 20,
        max_peers: 100,
        max_peers_per_swarm: 10,
        ..Config::default()
    };
    let t = RunningTracker::start("127.0.0.1:0", config).unwrap();
    // 1,000 swarms of one peer each, then 1,000 peers in one swarm, from two connections.
    let swarms = (0..1000).map(|n| announce(hash(n), peer(n), 7000));
    let peers = (0..1000).map(|n| announce(hash(0), peer(10_000 + n), 8000));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| pipeline(t.addr, swarms));
        let b = s.spawn(|| pipeline(t.addr, peers));
        (a.join().unwrap(), b.join().unwrap())
    });
    let totals = t.tracker.totals();
    assert!(totals.swarms <= 20, "{totals:?}");
    assert!(totals.peers <= 100, "{totals:?}");
    assert!(t.tracker.swarm(&hash(0)).incomplete <= 10);
    let refused = a
        .iter()
        .filter(|body| body.starts_with(b"d14:failure reason"))
        .count();
    assert!(
        refused >= 980 - 10,
        "new swarms past the cap are refused ({refused})"
    );
    let warned = b
        .iter()
        .filter(|body| AnnounceResponse::from_bencode(body).is_ok_and(|r| r.warning.is_some()))
        .count();
    assert!(
        warned >= 990 - 10,
        "peers past the cap are answered, not stored ({warned})"
    );
    // Every answer parses, and the server still serves the swarms it keeps.
    for body in a.iter().chain(&b) {
        let parsed = AnnounceResponse::from_bencode(body);
        assert!(
            parsed.is_ok() || body.starts_with(b"d14:failure reason"),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let again = get(t.addr, &announce(hash(0), peer(1), 7001)).unwrap();
    let again = AnnounceResponse::from_bencode(&again.body).unwrap();
    assert!(!again.peers.is_empty() && again.peers.len() <= 50);
    let stats = get(t.addr, "/stats").unwrap();
    assert_eq!(stats.status, 200);
}

#[test]
fn huge_and_odd_numwant_values_are_capped() {
    let config = Config {
        max_numwant: 5,
        ..Config::default()
    };
    let t = RunningTracker::start("127.0.0.1:0", config).unwrap();
    let h = hash(1);
    pipeline(t.addr, (0..20).map(|n| announce(h, peer(n), 7000 + n as u16)));
    let asker = announce(h, peer(999), 9000);
    for numwant in [
        "4294967295",
        "4294967296",
        "99999999999999999999999999",
        "-1",
        "-5",
        "0",
        "1e9",
        "%39%39%39",
        "",
    ] {
        let reply = get(t.addr, &format!("{asker}&numwant={numwant}")).unwrap();
        assert_eq!(reply.status, 200, "numwant={numwant}");
        let body = String::from_utf8_lossy(&reply.body).into_owned();
        match AnnounceResponse::from_bencode(&reply.body) {
            Ok(r) => assert!(r.peers.len() <= 5, "numwant={numwant}: {} peers", r.peers.len()),
            Err(_) => assert!(
                body.contains("failure reason") && body.contains("numwant"),
                "numwant={numwant}: {body}"
            ),
        }
    }
}

#[test]
fn malformed_queries_get_failures_and_the_connection_keeps_serving() {
    let t = RunningTracker::start("127.0.0.1:0", Config::default()).unwrap();
    let good = announce(hash(2), peer(1), 7000);
    let bad = [
        "/announce?info_hash=%".to_string(),
        "/announce?info_hash=%4".to_string(),
        "/announce?info_hash=%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%".to_string(),
        format!("/announce?info_hash={}", "%00".repeat(21)),
        format!("/announce?info_hash={}", "%00".repeat(19)),
        "/announce?&&&&&&&=&=&==&".to_string(),
        format!("{good}&port=0"),
        format!("{good}&port=65536"),
        format!("{good}&left=-1"),
        format!("{good}&left=184467440737095516160"),
        format!("{good}&ip=%FF%FE"),
        format!("{good}&key=%00%01"),
        format!("{good}&compact=%00"),
        format!("{good}&event=%00"),
        format!("/scrape?info_hash={}", "%00".repeat(20) + "&info_hash=short"),
        "/scrape?info_hash".to_string(),
        format!("/announce?{}", "x=1&".repeat(1000)),
    ];
    let bodies = pipeline(t.addr, bad.iter().cloned().chain([good.clone()]));
    for (path, body) in bad.iter().zip(&bodies) {
        let text = String::from_utf8_lossy(body);
        let parsed = AnnounceResponse::from_bencode(body);
        assert!(
            text.starts_with("d14:failure reason") || parsed.is_ok(),
            "{path}: {text}"
        );
    }
    assert!(
        AnnounceResponse::from_bencode(bodies.last().unwrap()).is_ok(),
        "the same connection still serves a good announce"
    );
}

#[test]
fn idle_clients_holding_every_slot_time_out_and_a_real_client_is_served() {
    let config = Config {
        max_connections: 4,
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let t = RunningTracker::start("127.0.0.1:0", config).unwrap();
    // Twice as many silent connections as there are slots, and one that trickles headers.
    let mut idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(t.addr).unwrap()).collect();
    idle[0].write_all(b"GET /stats HTTP/1.1\r\nHo").unwrap();
    let started = Instant::now();
    let reply = get(t.addr, &announce(hash(3), peer(1), 7000)).unwrap();
    assert!(AnnounceResponse::from_bencode(&reply.body).is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "served after {:?}",
        started.elapsed()
    );
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(s, &mut rest);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "every idle client was cut off"
    );
}
