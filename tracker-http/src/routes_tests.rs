//! The routes through `warp::test`, without sockets: parameters, failures, bodies.

use std::net::SocketAddr;

use share_proto::announce::{scrape_query, AnnounceResponse, Event, ScrapeResponse, ScrapeStats};
use share_proto::{InfoHash, PeerId};
use warp::http::StatusCode;

use super::*;
use crate::Config;

fn tracker() -> Arc<State> {
    Arc::new(State::new(Config::with_interval(60)))
}

async fn get(state: &Arc<State>, from: &str, path: &str) -> (StatusCode, Vec<u8>) {
    let addr: SocketAddr = from.parse().unwrap();
    let r = warp::test::request()
        .path(path)
        .remote_addr(addr)
        .reply(&routes(state.clone()))
        .await;
    (r.status(), r.body().to_vec())
}

fn announce_path(hash: InfoHash, peer: u8, port: u16, left: u64, extra: &str) -> String {
    let mut r = AnnounceRequest::new(hash, PeerId([peer; 20]), port, left);
    r.event = Event::None;
    format!("/announce?{}{extra}", r.to_query())
}

/// Every byte value appears in the info hash: the raw-bytes path is exercised.
fn binary_hash(seed: u8) -> InfoHash {
    InfoHash(std::array::from_fn(|i| {
        (i as u8).wrapping_mul(13).wrapping_add(seed)
    }))
}

#[tokio::test]
async fn announce_returns_other_peers_compact_and_v6() {
    let state = tracker();
    let hash = binary_hash(250);
    let (status, body) = get(&state, "127.0.0.1:1000", &announce_path(hash, 1, 6881, 0, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        b"d8:completei1e10:incompletei0e8:intervali60e12:min intervali30e5:peers0:e"
    );
    get(&state, "[::1]:1000", &announce_path(hash, 2, 6882, 5, "")).await;
    let (_, body) = get(
        &state,
        "127.0.0.2:1000",
        &announce_path(hash, 3, 6883, 5, "&numwant=10"),
    )
    .await;
    let mut want = b"d8:completei1e10:incompletei2e8:intervali60e12:min intervali30e5:peers6:".to_vec();
    want.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
    want.extend_from_slice(b"6:peers618:");
    want.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    want.extend_from_slice(&[0x1a, 0xe2, b'e']);
    assert_eq!(body, want);
}

#[tokio::test]
async fn dictionary_peers_and_no_peer_id() {
    let state = tracker();
    let hash = binary_hash(1);
    get(&state, "10.0.0.1:1", &announce_path(hash, b'a', 7000, 0, "")).await;
    let dict = announce_path(hash, b'b', 7001, 1, "").replace("compact=1", "compact=0");
    let (_, body) = get(&state, "10.0.0.2:1", &dict).await;
    let r = AnnounceResponse::from_bencode(&body).unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(r.peers[0].addr, "10.0.0.1:7000".parse().unwrap());
    assert_eq!(r.peers[0].peer_id, Some(PeerId([b'a'; 20])));
    let (_, body) = get(&state, "10.0.0.2:1", &format!("{dict}&no_peer_id=1")).await;
    assert!(
        body.ends_with(b"5:peersld2:ip8:10.0.0.14:porti7000eeee"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn the_ip_parameter_overrides_the_connection_address() {
    let state = tracker();
    let hash = binary_hash(2);
    get(
        &state,
        "127.0.0.1:1",
        &announce_path(hash, 1, 7000, 0, "&ip=192.0.2.7"),
    )
    .await;
    let (_, body) = get(&state, "127.0.0.1:1", &announce_path(hash, 2, 7001, 1, "")).await;
    let r = AnnounceResponse::from_bencode(&body).unwrap();
    assert_eq!(r.peers[0].addr, "192.0.2.7:7000".parse().unwrap());
}

#[tokio::test]
async fn stopped_and_completed_through_http() {
    let state = tracker();
    let hash = binary_hash(3);
    get(
        &state,
        "127.0.0.1:1",
        &announce_path(hash, 1, 7000, 10, "&event=started"),
    )
    .await;
    get(
        &state,
        "127.0.0.1:1",
        &announce_path(hash, 1, 7000, 0, "&event=completed"),
    )
    .await;
    get(
        &state,
        "127.0.0.2:1",
        &announce_path(hash, 2, 7000, 10, "&event=started"),
    )
    .await;
    assert_eq!(
        state.scrape(&[hash])[0].1,
        ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 1
        }
    );
    get(
        &state,
        "127.0.0.2:1",
        &announce_path(hash, 2, 7000, 10, "&event=stopped"),
    )
    .await;
    assert_eq!(
        state.scrape(&[hash])[0].1,
        ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 0
        }
    );
}

#[tokio::test]
async fn failures_name_the_parameter() {
    let state = tracker();
    let ok = announce_path(binary_hash(4), 1, 7000, 0, "");
    let cases = [
        ("/announce", "missing info_hash"),
        ("/announce?info_hash=abc", "malformed info_hash"),
        (&*ok.replace("port=7000", "port=x"), "malformed port"),
        (&*ok.replace("&port=7000", ""), "missing port"),
        (&*ok.replace("&left=0", ""), "missing left"),
        (&*format!("{ok}&event=bogus"), "malformed event"),
        ("/scrape?info_hash=%GG", "malformed info_hash"),
    ];
    for (path, reason) in cases {
        let (status, body) = get(&state, "127.0.0.1:1", path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, crate::bencode::failure(reason), "{path}");
    }
    assert_eq!(state.totals().swarms, 0);
}

#[tokio::test]
async fn oversize_queries_are_refused() {
    let state = tracker();
    let long = format!(
        "{}&pad={}",
        announce_path(binary_hash(5), 1, 7000, 0, ""),
        "x".repeat(5000)
    );
    let (status, body) = get(&state, "127.0.0.1:1", &long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert_eq!(body, crate::bencode::failure("query string too long"));
    let many = vec![InfoHash([1; 20]); 65];
    let (_, body) = get(
        &state,
        "127.0.0.1:1",
        &format!("/scrape?{}", scrape_query(&many[..40])),
    )
    .await;
    assert!(ScrapeResponse::from_bencode(&body).is_ok());
    let (status, _) = get(&state, "127.0.0.1:1", &format!("/scrape?{}", scrape_query(&many))).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    // Unreserved bytes encode short: 65 hashes fit in the length but exceed the count.
    let plain = vec![InfoHash([b'a'; 20]); 65];
    let (status, body) = get(
        &state,
        "127.0.0.1:1",
        &format!("/scrape?{}", scrape_query(&plain)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        crate::bencode::failure("too many info_hash values (at most 64)")
    );
}

#[tokio::test]
async fn scrape_one_several_and_all() {
    let state = tracker();
    let (a, b) = (binary_hash(6), binary_hash(7));
    get(&state, "127.0.0.1:1", &announce_path(a, 1, 7000, 0, "")).await;
    get(&state, "127.0.0.1:1", &announce_path(b, 1, 7000, 9, "")).await;
    get(&state, "127.0.0.2:1", &announce_path(b, 2, 7000, 9, "")).await;
    let unknown = InfoHash([0; 20]);
    let (_, body) = get(
        &state,
        "127.0.0.1:1",
        &format!("/scrape?{}", scrape_query(&[b, unknown, a, b])),
    )
    .await;
    let files = ScrapeResponse::from_bencode(&body).unwrap().files;
    let mut want = vec![
        (
            a,
            ScrapeStats {
                complete: 1,
                downloaded: 0,
                incomplete: 0,
            },
        ),
        (
            b,
            ScrapeStats {
                complete: 0,
                downloaded: 0,
                incomplete: 2,
            },
        ),
        (unknown, ScrapeStats::default()),
    ];
    want.sort_by_key(|(h, _)| *h);
    assert_eq!(files, want);
    let (_, all) = get(&state, "127.0.0.1:1", "/scrape").await;
    assert_eq!(ScrapeResponse::from_bencode(&all).unwrap().files.len(), 2);
}

#[tokio::test]
async fn pages_and_unknown_paths() {
    let state = tracker();
    let hash = binary_hash(8);
    get(&state, "127.0.0.1:1", &announce_path(hash, 1, 7000, 0, "")).await;
    let (status, html) = get(&state, "127.0.0.1:1", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(html).unwrap().contains(&hash.to_hex()));
    let (status, json) = get(&state, "127.0.0.1:1", "/stats").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!((v["swarms"].as_u64(), v["peers"].as_u64()), (Some(1), Some(1)));
    assert_eq!(v["torrents"][0]["info_hash"], hash.to_hex());
    let (status, _) = get(&state, "127.0.0.1:1", "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
