//! Unit tests of the pure swarm state: no server, no clock.

use super::*;
use std::collections::HashSet;
use std::sync::Arc;

const LIMITS: Limits = Limits {
    max_peers_per_swarm: 1000,
    default_numwant: 50,
    max_numwant: 200,
};

fn shard(seed: u64) -> Swarms {
    Swarms::new(LIMITS, Arc::new(Budget::new(10, 5000)), seed)
}

fn req(hash: u8, peer: u8, left: u64, event: Event) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(
        InfoHash([hash; 20]),
        PeerId([peer; 20]),
        6000 + u16::from(peer),
        left,
    );
    r.event = event;
    r
}

fn v4(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

#[test]
fn a_peer_never_gets_itself_back() {
    let mut s = shard(1);
    let first = s.announce(0, v4(1), &req(1, 1, 10, Event::Started)).unwrap();
    assert!(first.peers.is_empty());
    assert_eq!((first.complete, first.incomplete), (0, 1));
    let again = s.announce(5, v4(1), &req(1, 1, 10, Event::None)).unwrap();
    assert!(
        again.peers.is_empty(),
        "a re-announce must not return the peer itself"
    );
    let second = s.announce(6, v4(2), &req(1, 2, 0, Event::Started)).unwrap();
    assert_eq!(
        second.peers,
        vec![PeerOut {
            ip: "::ffff:10.0.0.1".parse().unwrap(),
            port: 6001,
            peer_id: PeerId([1; 20])
        }]
    );
    assert_eq!((second.complete, second.incomplete), (1, 1));
    let back = s.announce(7, v4(1), &req(1, 1, 10, Event::None)).unwrap();
    assert_eq!(back.peers.len(), 1);
    assert_eq!(back.peers[0].peer_id, PeerId([2; 20]));
}

#[test]
fn numwant_default_cap_and_distinct_window() {
    let mut s = shard(7);
    for p in 0..250u8 {
        s.announce(0, v4(p), &req(1, p, 1, Event::Started)).unwrap();
    }
    let asker = req(1, 0, 1, Event::None);
    assert_eq!(s.announce(1, v4(0), &asker).unwrap().peers.len(), 50);
    for (numwant, got) in [(0, 0), (10, 10), (200, 200), (1000, 200)] {
        let mut r = asker.clone();
        r.numwant = Some(numwant);
        let peers = s.announce(1, v4(0), &r).unwrap().peers;
        assert_eq!(peers.len(), got, "numwant={numwant}");
        let ids: HashSet<PeerId> = peers.iter().map(|p| p.peer_id).collect();
        assert_eq!(ids.len(), got, "peers are distinct");
        assert!(!ids.contains(&PeerId([0; 20])));
    }
}

#[test]
fn completed_counts_once_and_moves_leecher_to_seeder() {
    let mut s = shard(1);
    s.announce(0, v4(1), &req(1, 1, 100, Event::Started)).unwrap();
    let done = s.announce(1, v4(1), &req(1, 1, 0, Event::Completed)).unwrap();
    assert_eq!((done.complete, done.incomplete), (1, 0));
    s.announce(2, v4(1), &req(1, 1, 0, Event::Completed)).unwrap();
    // A seeder from the start does not count as a download.
    s.announce(2, v4(2), &req(1, 2, 0, Event::Started)).unwrap();
    assert_eq!(
        s.scrape(&InfoHash([1; 20])),
        ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 0
        }
    );
}

#[test]
fn stopped_removes_the_peer_and_empty_swarms() {
    let mut s = shard(1);
    s.announce(0, v4(1), &req(1, 1, 0, Event::Started)).unwrap();
    s.announce(0, v4(2), &req(1, 2, 5, Event::Started)).unwrap();
    let r = s.announce(1, v4(1), &req(1, 1, 0, Event::Stopped)).unwrap();
    assert_eq!((r.complete, r.incomplete, r.peers.len()), (0, 1, 0));
    s.announce(1, v4(2), &req(1, 2, 5, Event::Stopped)).unwrap();
    assert_eq!((s.swarm_count(), s.peer_counts()), (0, (0, 0)));
    // Stopping in an unknown swarm creates nothing.
    assert_eq!(
        s.announce(2, v4(3), &req(9, 3, 0, Event::Stopped)).unwrap(),
        Announced::default()
    );
    assert_eq!(s.swarm_count(), 0);
}

#[test]
fn peers_expire_after_the_timeout_in_one_sweep() {
    let mut s = shard(1);
    s.announce(0, v4(1), &req(1, 1, 0, Event::Started)).unwrap();
    s.announce(30, v4(2), &req(1, 2, 1, Event::Started)).unwrap();
    s.announce(30, v4(3), &req(2, 3, 1, Event::Started)).unwrap();
    assert_eq!(s.clean(59, 60), 0);
    assert_eq!(s.clean(60, 60), 1, "the peer last seen at 0 goes at 60");
    assert_eq!(
        s.scrape(&InfoHash([1; 20])),
        ScrapeStats {
            complete: 0,
            downloaded: 0,
            incomplete: 1
        }
    );
    assert_eq!(s.clean(90, 60), 2);
    assert_eq!((s.swarm_count(), s.peer_counts()), (0, (0, 0)));
}

#[test]
fn limits_on_swarms_and_peers() {
    // Two shards share one budget of 2 swarms and 4 peers.
    let budget = Arc::new(Budget::new(2, 4));
    let limits = Limits {
        max_peers_per_swarm: 3,
        ..LIMITS
    };
    let mut s = Swarms::new(limits, budget.clone(), 1);
    let mut other = Swarms::new(limits, budget.clone(), 2);
    s.announce(0, v4(1), &req(1, 1, 1, Event::Started)).unwrap();
    other.announce(0, v4(2), &req(2, 2, 1, Event::Started)).unwrap();
    assert_eq!(
        s.announce(0, v4(3), &req(3, 3, 1, Event::Started)),
        Err(Refusal::TooManySwarms)
    );
    for p in 3..6 {
        s.announce(0, v4(p), &req(1, p, 1, Event::Started)).unwrap();
    }
    // Swarm 1 holds 3 (its cap); the fourth is answered, not stored.
    let full = s.announce(0, v4(9), &req(1, 9, 1, Event::Started)).unwrap();
    assert_eq!((full.peers.len(), full.incomplete), (3, 3));
    assert!(full.warning.is_some());
    // 4 peers in all now: the global cap refuses a new peer in swarm 2 too.
    assert!(other
        .announce(0, v4(8), &req(2, 8, 1, Event::Started))
        .unwrap()
        .warning
        .is_some());
    assert_eq!((s.peer_counts(), other.peer_counts()), ((3, 0), (1, 0)));
    // Stored peers still update.
    assert_eq!(
        s.announce(1, v4(1), &req(1, 1, 0, Event::Completed))
            .unwrap()
            .warning,
        None
    );
    // Leaving and expiring give the places back: a new swarm fits again.
    s.announce(2, v4(3), &req(1, 3, 1, Event::Stopped)).unwrap();
    other.clean(1000, 60);
    assert_eq!(other.swarm_count(), 0);
    s.announce(3, v4(3), &req(3, 3, 1, Event::Started)).unwrap();
    assert_eq!(s.swarm_count(), 2);
}

#[test]
fn a_peer_id_moves_address_only_with_its_key() {
    let mut s = shard(1);
    let mut r = req(1, 1, 1, Event::Started);
    r.key = Some(42);
    s.announce(0, v4(1), &r).unwrap();
    let mut thief = req(1, 1, 1, Event::Stopped);
    assert_eq!(s.announce(1, v4(66), &thief), Err(Refusal::PeerIdTaken));
    thief.event = Event::None;
    thief.key = Some(41);
    assert_eq!(s.announce(1, v4(66), &thief), Err(Refusal::PeerIdTaken));
    r.event = Event::None;
    s.announce(2, v4(7), &r).unwrap();
    let other = s.announce(3, v4(2), &req(1, 2, 1, Event::Started)).unwrap();
    assert_eq!(
        other.peers[0].v4(),
        Some([10, 0, 0, 7].into()),
        "the entry moved to the new address"
    );
}

#[test]
fn ip_parameter_and_v4_mapped_connections() {
    let mut s = shard(1);
    let mut r = req(1, 1, 1, Event::Started);
    r.ip = Some("2001:db8::5".parse().unwrap());
    s.announce(0, v4(1), &r).unwrap();
    s.announce(
        0,
        "::ffff:10.0.0.2".parse().unwrap(),
        &req(1, 2, 1, Event::Started),
    )
    .unwrap();
    let mut peers = s.announce(0, v4(3), &req(1, 3, 1, Event::Started)).unwrap().peers;
    peers.sort_by_key(|p| p.port);
    assert_eq!(peers[0].ip, "2001:db8::5".parse::<Ipv6Addr>().unwrap());
    assert_eq!(peers[0].v4(), None);
    assert_eq!(peers[1].v4(), Some([10, 0, 0, 2].into()));
}

#[test]
fn listing_is_bounded() {
    let mut s = shard(1);
    for h in 0..5 {
        s.announce(0, v4(1), &req(h, 1, 1, Event::Started)).unwrap();
    }
    let mut out = Vec::new();
    s.list(3, &mut out);
    assert_eq!(out.len(), 3);
    s.list(3, &mut out);
    assert_eq!(out.len(), 3);
}

#[test]
fn clients_that_announce_every_300_s_are_kept_whatever_the_interval() {
    use crate::config::{Config, CLIENT_MAX_INTERVAL};
    for interval in [1, 5, 30, 60, 149, 150, 299, 300, 600, 1800] {
        let c = Config::with_interval(interval);
        assert!(
            (1..=c.interval).contains(&c.min_interval),
            "min interval {} for interval {interval}",
            c.min_interval
        );
        assert!(
            c.peer_timeout >= 2 * interval.max(CLIENT_MAX_INTERVAL),
            "{interval}"
        );
        let mut s = shard(1);
        // libtorrent's schedule: announce, then again only after 300 s, whatever we said.
        let mut now = 0;
        for _ in 0..4 {
            s.announce(now, v4(1), &req(1, 1, 10, Event::None)).unwrap();
            for t in now..=now + CLIENT_MAX_INTERVAL {
                s.clean(t, c.peer_timeout);
                assert_eq!(s.peer_counts().0, 1, "interval {interval}: gone at {t} s");
            }
            now += CLIENT_MAX_INTERVAL;
        }
        // Gone once it stops announcing, within the timeout.
        let last = now - CLIENT_MAX_INTERVAL;
        assert_eq!(
            s.clean(last + c.peer_timeout, c.peer_timeout),
            1,
            "interval {interval}"
        );
        assert_eq!(s.swarm_count(), 0);
    }
}
