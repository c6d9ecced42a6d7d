//! The hand-written responses against serde_bencode's encoding of the same values, byte for
//! byte, and read back by the client-side parser of share-proto.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use serde::Serialize;
use serde_bytes::ByteBuf;
use share_proto::announce::{AnnounceResponse, ScrapeResponse, ScrapeStats};
use share_proto::{InfoHash, PeerId};

use super::*;
use crate::swarm::{Announced, PeerOut};

#[derive(Serialize)]
struct DictPeer {
    ip: ByteBuf,
    #[serde(rename = "peer id", skip_serializing_if = "Option::is_none")]
    peer_id: Option<ByteBuf>,
    port: u16,
}

#[derive(Serialize)]
struct Reference<P: Serialize> {
    complete: u32,
    incomplete: u32,
    interval: u32,
    #[serde(rename = "min interval")]
    min_interval: u32,
    peers: P,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers6: Option<ByteBuf>,
    #[serde(rename = "warning message", skip_serializing_if = "Option::is_none")]
    warning: Option<ByteBuf>,
}

fn sample() -> Announced {
    let peer = |ip: &str, port, id: u8| PeerOut {
        ip: ip.parse().unwrap(),
        port,
        peer_id: PeerId([id; 20]),
    };
    Announced {
        complete: 3,
        incomplete: 1234567,
        peers: vec![
            peer("::ffff:127.0.0.1", 6881, b'a'),
            peer("2001:db8::1", 443, b'b'),
            peer("::ffff:10.1.2.3", 65535, b'c'),
        ],
        warning: None,
    }
}

const SHAPE: AnnounceShape = AnnounceShape {
    interval: 1800,
    min_interval: 900,
    compact: true,
    no_peer_id: false,
};

#[test]
fn compact_matches_serde_bencode() {
    let a = sample();
    let reference = Reference {
        complete: 3,
        incomplete: 1234567,
        interval: 1800,
        min_interval: 900,
        peers: ByteBuf::from([&[127, 0, 0, 1, 0x1a, 0xe1][..], &[10, 1, 2, 3, 0xff, 0xff]].concat()),
        peers6: Some(ByteBuf::from(
            [
                &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()[..],
                &[1, 0xbb],
            ]
            .concat(),
        )),
        warning: None,
    };
    let ours = announce(&a, SHAPE);
    assert_eq!(ours, serde_bencode::to_bytes(&reference).unwrap());
    let parsed = AnnounceResponse::from_bencode(&ours).unwrap();
    let addrs: Vec<String> = parsed.peers.iter().map(|p| p.addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.1:6881", "10.1.2.3:65535", "[2001:db8::1]:443"]);
    assert_eq!(
        (
            parsed.interval,
            parsed.min_interval,
            parsed.complete,
            parsed.incomplete
        ),
        (1800, Some(900), Some(3), Some(1234567))
    );
}

#[test]
fn dictionary_peers_match_serde_bencode_with_and_without_ids() {
    let a = sample();
    for no_peer_id in [false, true] {
        let dict = |ip: &str, port, id: u8| DictPeer {
            ip: ByteBuf::from(ip.as_bytes()),
            peer_id: (!no_peer_id).then(|| ByteBuf::from([id; 20])),
            port,
        };
        let reference = Reference {
            complete: 3,
            incomplete: 1234567,
            interval: 1800,
            min_interval: 900,
            peers: vec![
                dict("127.0.0.1", 6881, b'a'),
                dict("2001:db8::1", 443, b'b'),
                dict("10.1.2.3", 65535, b'c'),
            ],
            peers6: None,
            warning: None,
        };
        let ours = announce(
            &a,
            AnnounceShape {
                compact: false,
                no_peer_id,
                ..SHAPE
            },
        );
        assert_eq!(
            ours,
            serde_bencode::to_bytes(&reference).unwrap(),
            "no_peer_id={no_peer_id}"
        );
        let parsed = AnnounceResponse::from_bencode(&ours).unwrap();
        assert_eq!(parsed.peers.len(), 3);
        assert_eq!(
            parsed.peers[0].peer_id,
            (!no_peer_id).then_some(PeerId([b'a'; 20]))
        );
    }
}

#[test]
fn empty_and_warning_match_serde_bencode() {
    let a = Announced {
        warning: Some("the swarm is full"),
        ..Announced::default()
    };
    let reference = Reference {
        complete: 0,
        incomplete: 0,
        interval: 60,
        min_interval: 30,
        peers: ByteBuf::new(),
        peers6: None,
        warning: Some(ByteBuf::from(&b"the swarm is full"[..])),
    };
    let ours = announce(
        &a,
        AnnounceShape {
            interval: 60,
            min_interval: 30,
            ..SHAPE
        },
    );
    assert_eq!(ours, serde_bencode::to_bytes(&reference).unwrap());
    assert_eq!(
        AnnounceResponse::from_bencode(&ours).unwrap().warning.as_deref(),
        Some("the swarm is full")
    );
}

#[test]
fn failure_matches_serde_bencode() {
    let mut reference = BTreeMap::new();
    reference.insert("failure reason", "malformed info_hash");
    assert_eq!(
        failure("malformed info_hash"),
        serde_bencode::to_bytes(&reference).unwrap()
    );
}

#[test]
fn scrape_matches_serde_bencode() {
    #[derive(Serialize)]
    struct Stats {
        complete: u32,
        downloaded: u32,
        incomplete: u32,
    }
    #[derive(Serialize)]
    struct Files {
        files: BTreeMap<ByteBuf, Stats>,
    }
    let files = vec![
        (
            InfoHash([0; 20]),
            ScrapeStats {
                complete: 1,
                downloaded: 2,
                incomplete: 3,
            },
        ),
        (
            InfoHash([0xff; 20]),
            ScrapeStats {
                complete: 0,
                downloaded: u32::MAX,
                incomplete: 10,
            },
        ),
    ];
    let reference = Files {
        files: files
            .iter()
            .map(|(h, s)| {
                let stats = Stats {
                    complete: s.complete,
                    downloaded: s.downloaded,
                    incomplete: s.incomplete,
                };
                (ByteBuf::from(h.0), stats)
            })
            .collect(),
    };
    let ours = scrape(&files);
    assert_eq!(ours, serde_bencode::to_bytes(&reference).unwrap());
    assert_eq!(ScrapeResponse::from_bencode(&ours).unwrap().files, files);
    assert_eq!(scrape(&[]), b"d5:filesdee");
}

#[test]
fn integers_are_canonical() {
    for n in [0u64, 7, 10, 99, 100, u64::MAX] {
        let mut out = Vec::new();
        int(&mut out, n);
        assert_eq!(out, format!("i{n}e").into_bytes());
    }
}
