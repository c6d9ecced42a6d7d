//! The tracker over real sockets on loopback: announces and scrapes through the whole HTTP
//! stack, keep-alive, IPv6, hostile requests, and a graceful shutdown with clients connected.

mod tracker_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use share_proto::announce::{scrape_query, AnnounceRequest, AnnounceResponse, Event, ScrapeResponse};
use share_proto::{InfoHash, PeerId};
use tracker_http::Config;
use tracker_support::{get, read_reply, RunningTracker};

fn request(hash: InfoHash, peer: u8, port: u16, left: u64) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(hash, PeerId([peer; 20]), port, left);
    r.event = Event::Started;
    r
}

fn path(r: &AnnounceRequest) -> String {
    format!("/announce?{}", r.to_query())
}

#[test]
fn announce_scrape_and_stats_over_a_socket() {
    let t = RunningTracker::start("127.0.0.1:0", Config::with_interval(60)).unwrap();
    let hash = InfoHash(*b"\x00\xff%&?#= +/\x01\x02\x03abcdefg");
    let first = get(t.addr, &path(&request(hash, 1, 7001, 0))).unwrap();
    assert_eq!(first.status, 200);
    let first = AnnounceResponse::from_bencode(&first.body).unwrap();
    assert!(first.peers.is_empty());
    assert_eq!((first.interval, first.min_interval), (60, Some(30)));
    let second = get(t.addr, &path(&request(hash, 2, 7002, 100))).unwrap();
    let second = AnnounceResponse::from_bencode(&second.body).unwrap();
    assert_eq!(second.peers.len(), 1);
    assert_eq!(second.peers[0].addr, "127.0.0.1:7001".parse().unwrap());
    assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));

    let scrape = get(t.addr, &format!("/scrape?{}", scrape_query(&[hash]))).unwrap();
    let files = ScrapeResponse::from_bencode(&scrape.body).unwrap().files;
    assert_eq!(
        (files[0].0, files[0].1.complete, files[0].1.incomplete),
        (hash, 1, 1)
    );

    let stats = String::from_utf8(get(t.addr, "/stats").unwrap().body).unwrap();
    assert!(stats.contains(&hash.to_hex()), "{stats}");
    assert_eq!(t.tracker.totals().peers, 2);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let t = RunningTracker::start("127.0.0.1:0", Config::default()).unwrap();
    let mut conn = TcpStream::connect(t.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for peer in 0..100u8 {
        let p = path(&request(InfoHash([7; 20]), peer, 6000 + u16::from(peer), 1));
        // One write per request: several small ones would meet Nagle and delayed ACKs.
        conn.write_all(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let reply = read_reply(&mut conn).unwrap();
        let parsed = AnnounceResponse::from_bencode(&reply.body).unwrap();
        assert_eq!(parsed.peers.len(), usize::from(peer).min(50));
    }
    assert_eq!(t.tracker.swarm(&InfoHash([7; 20])).incomplete, 100);
}

#[test]
fn ipv6_peers_are_returned_in_peers6() {
    let Ok(t) = RunningTracker::start("[::1]:0", Config::default()) else {
        eprintln!("ipv6_peers_are_returned_in_peers6: skipped, cannot bind [::1]");
        return;
    };
    let hash = InfoHash([6; 20]);
    get(t.addr, &path(&request(hash, 1, 7001, 0))).unwrap();
    let mut v4 = request(hash, 2, 7002, 0);
    v4.ip = Some("127.0.0.9".parse().unwrap());
    get(t.addr, &path(&v4)).unwrap();
    let reply = get(t.addr, &path(&request(hash, 3, 7003, 5))).unwrap();
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(body.contains("6:peers618:"), "{body}");
    let mut addrs: Vec<String> = AnnounceResponse::from_bencode(&reply.body)
        .unwrap()
        .peers
        .iter()
        .map(|p| p.addr.to_string())
        .collect();
    addrs.sort();
    assert_eq!(addrs, ["127.0.0.9:7002", "[::1]:7001"]);
}

#[test]
fn hostile_requests_get_answers_and_the_server_keeps_serving() {
    let t = RunningTracker::start("127.0.0.1:0", Config::default()).unwrap();
    let oversize = format!("/announce?{}", "a".repeat(20_000));
    match get(t.addr, &oversize) {
        Ok(reply) => assert!(matches!(reply.status, 414 | 431 | 400), "status {}", reply.status),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    let long = get(t.addr, &format!("/announce?{}", "a".repeat(5000))).unwrap();
    assert_eq!(long.status, 414);
    for junk in [
        &b"\x00\xff\xfe garbage\r\n\r\n"[..],
        b"GET /announce?info_hash=%ZZ HTTP/1.1\r\n\r\n",
        b"GET",
    ] {
        let mut s = TcpStream::connect(t.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(junk).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut sink);
    }
    let bad = get(t.addr, "/announce?info_hash=%00&peer_id=x").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bad.body),
        "d14:failure reason19:malformed info_hashe"
    );
    let ok = get(t.addr, &path(&request(InfoHash([1; 20]), 1, 7001, 0))).unwrap();
    assert!(AnnounceResponse::from_bencode(&ok.body).is_ok());
}

#[test]
fn shutdown_closes_idle_kept_alive_connections_and_returns() {
    let mut t = RunningTracker::start("127.0.0.1:0", Config::default()).unwrap();
    let mut idle = TcpStream::connect(t.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(idle, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut idle).unwrap().status, 200);
    let started = Instant::now();
    t.shutdown(Duration::from_secs(10)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    assert_eq!(
        std::io::Read::read_to_end(&mut idle, &mut rest).unwrap(),
        0,
        "the server closed the connection"
    );
    assert!(TcpStream::connect(t.addr).is_err(), "the listener is closed");
}

#[test]
fn idle_and_slow_connections_are_closed_after_the_idle_timeout() {
    let config = Config {
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let t = RunningTracker::start("127.0.0.1:0", config).unwrap();
    let mut idle = TcpStream::connect(t.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    idle.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_reply(&mut idle).unwrap().status, 200);
    let started = Instant::now();
    let mut rest = Vec::new();
    assert_eq!(std::io::Read::read_to_end(&mut idle, &mut rest).unwrap(), 0);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    // A slow client that never finishes its headers is cut off the same way.
    let mut slow = TcpStream::connect(t.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"GET /stats HTTP/1.1\r\nHost:").unwrap();
    let _ = std::io::Read::read_to_end(&mut slow, &mut rest);
    assert!(started.elapsed() < Duration::from_secs(5));
}
