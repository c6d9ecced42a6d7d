//! The Mainline DHT (BEP 5) on loopback only: a small DHT of our own (`mainline`'s
//! `Testnet`, three nodes on 127.0.0.1) stands in for the public one, which no test reaches
//! (the test helpers set `SHARE_NO_DHT` unless a test names its bootstrap nodes).

mod common;

use common::libtorrent::Libtorrent;
use common::pattern;
use common::proc::{fetch, listen_port, seed, Proc};
use serde_json::Value;

/// Three DHT nodes on loopback; their `HOST:PORT`s.
fn testnet() -> (mainline::Testnet, Vec<String>) {
    let net = mainline::Testnet::builder(3)
        .bind_address(std::net::Ipv4Addr::LOCALHOST)
        .build()
        .expect("a loopback DHT starts");
    let nodes = net.bootstrap.clone();
    (net, nodes)
}

fn bootstrap_args(nodes: &[String]) -> Vec<&str> {
    nodes
        .iter()
        .flat_map(|n| ["--dht-bootstrap", n.as_str()])
        .collect()
}

#[test]
fn a_fetch_finds_its_seeder_through_the_dht_alone() {
    let (_net, nodes) = testnet();
    let dht = bootstrap_args(&nodes);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("talk.bin");
    let data = pattern(2_000_000, 71);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &dht);
    let round = seeder.wait_event(60, "dht");
    assert_eq!(round["announced"], true, "{round}");
    // No tracker, no --peer: a manifest without announce URLs.
    let bare = dir.path().join("bare.torrent");
    let made = common::share(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        bare.to_str().unwrap(),
        "--json",
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = dir.path().join("got.bin");
    let state = dir.path().join("state");
    let mut args = vec!["--no-seed", "--state-dir", state.to_str().unwrap()];
    args.extend(&dht);
    let mut f = fetch(bare.to_str().unwrap(), &out, &args);
    let found = f.wait_event(60, "dht");
    assert!(found["peers"].as_u64().unwrap() >= 1, "{found}");
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
    assert!(
        !f.seen.iter().any(|v| v["event"] == "tracker_ok"),
        "no tracker was involved"
    );
    // The routing table is kept for the next start, and names the loopback DHT's nodes.
    let saved = std::fs::read_to_string(state.join("dht-nodes")).expect("the routing table is saved");
    assert!(
        nodes.iter().any(|n| saved.lines().any(|l| l == n)),
        "saved {saved:?}, nodes {nodes:?}"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
    drop(manifest);
}

/// The port a seeder listens on, from its `seeding` event.
fn port_of(p: &Proc) -> u16 {
    listen_port(p.seen.iter().find(|v| v["event"] == "seeding").expect("seeding"))
}

#[test]
fn a_private_torrent_never_touches_the_dht_and_no_dht_turns_it_off() {
    let (net, nodes) = testnet();
    let dht = bootstrap_args(&nodes);
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public.bin");
    let private = dir.path().join("private.bin");
    std::fs::write(&public, pattern(100_000, 72)).unwrap();
    std::fs::write(&private, pattern(100_000, 73)).unwrap();
    let closed_manifest = dir.path().join("private.torrent");
    let made = common::share(&[
        "create",
        private.to_str().unwrap(),
        "--private",
        "-o",
        closed_manifest.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let closed_manifest = closed_manifest.to_str().unwrap();
    let mut args = vec!["-o", closed_manifest];
    args.extend(&dht);
    let (mut closed, _) = seed(&private, &args);
    let mut args = vec!["--no-dht"];
    args.extend(&dht);
    let (mut off, off_manifest) = seed(&public, &args);
    // A public seeder of the same file, DHT on, shows how long a round takes.
    let (mut open, _) = seed(
        &public,
        &[
            &["-o", dir.path().join("open.torrent").to_str().unwrap()],
            &dht[..],
        ]
        .concat(),
    );
    open.wait_event(60, "dht");
    let info = |m: &str| -> String {
        common::share_json(&["info", "--json", m])["info_hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The DHT itself has no peer for the private torrent, nor for the --no-dht seeder
    // (whose port would be the only one there under that hash besides the open seeder).
    let asked = net.nodes[0].clone().as_async();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let peers_of = |hash: &str| -> Vec<std::net::SocketAddrV4> {
        rt.block_on(async {
            use futures_util::StreamExt;
            let id = mainline::Id::from_bytes(hex::decode(hash).unwrap()).unwrap();
            asked.get_peers(id).collect::<Vec<_>>().await.concat()
        })
    };
    assert!(
        peers_of(&info(closed_manifest)).is_empty(),
        "the private torrent is not in the DHT"
    );
    let open_port = port_of(&open);
    let off_port = port_of(&off);
    let listed: Vec<u16> = peers_of(&info(&off_manifest)).iter().map(|a| a.port()).collect();
    assert!(
        listed.contains(&open_port),
        "the open seeder is listed: {listed:?}"
    );
    assert!(
        !listed.contains(&off_port),
        "the --no-dht seeder is not: {listed:?}"
    );
    for p in [&mut closed, &mut off] {
        assert!(
            !p.seen.iter().any(|v: &Value| v["event"] == "dht"),
            "{:?}",
            p.seen
        );
    }
    for p in [&mut closed, &mut off, &mut open] {
        p.signal("INT");
        assert_eq!(p.exit_code(30), Some(0), "{}", p.stderr());
    }
}

#[test]
fn a_magnet_link_with_no_tracker_and_no_peer_is_fetched_through_the_dht() {
    let (_net, nodes) = testnet();
    let dht = bootstrap_args(&nodes);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lecture.bin");
    let data = pattern(1_500_000, 74);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &dht);
    seeder.wait_event(60, "dht");
    let hash = common::share_json(&["info", "--json", &manifest])["info_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let link = format!("magnet:?xt=urn:btih:{hash}&dn=lecture.bin");
    let out = dir.path().join("downloads");
    std::fs::create_dir(&out).unwrap();
    let mut args = vec![
        "fetch",
        link.as_str(),
        "-d",
        out.to_str().unwrap(),
        "--port",
        "0",
        "--json",
        "--no-seed",
    ];
    args.extend(&dht);
    let mut f = Proc::share(&args);
    let got = f.wait_event(60, "metadata");
    assert_eq!(got["name"], "lecture.bin");
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(
        std::fs::read(out.join("lecture.bin")).unwrap() == data,
        "byte-identical"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

/// libtorrent 2.0's DHT node alone (no torrent, no bootstrap), loopback allowed; prints its
/// port (the DHT's UDP port is the listen port's number).
const LT_NODE: &str = r#"
import sys, time
import libtorrent as lt
ses = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                  'enable_upnp': False, 'enable_natpmp': False, 'dht_bootstrap_nodes': ''})
# Loopback is the only network here: libtorrent's DHT must not set it aside.
for k, v in [('dht_restrict_routing_ips', False), ('dht_restrict_search_ips', False),
             ('dht_ignore_dark_internet', False), ('dht_enforce_node_id', False),
             ('dht_prefer_verified_node_ids', False), ('enable_dht', True)]:
    try:
        ses.apply_settings({k: v})
    except Exception as e:
        print('setting %s: %s' % (k, e), file=sys.stderr, flush=True)
print('port %d' % ses.listen_port(), flush=True)
time.sleep(120)
"#;

/// Our DHT client against libtorrent's DHT server: a seeder and a fetcher that know only a
/// libtorrent node find each other through it (our announce is stored there, our lookup
/// finds it). The other way, libtorrent querying our node, does not work yet: `mainline`
/// drops queries whose transaction id is not 4 bytes, and libtorrent's are 2 (SECURITY.md,
/// "Limits").
#[test]
fn share_peers_find_each_other_through_a_libtorrent_dht_node() {
    let Some(mut lt) = Libtorrent::start(LT_NODE, &[]) else {
        return;
    };
    let node = format!("127.0.0.1:{}", lt.wait_prefix("port ", 60));
    let dht = ["--dht-bootstrap", node.as_str()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.bin");
    let data = pattern(1_000_000, 77);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, _) = seed(&file, &dht);
    let round = seeder.wait_event(60, "dht");
    assert_eq!(
        round["announced"], true,
        "libtorrent's node took our announce: {round}"
    );
    let bare = dir.path().join("bare.torrent");
    let made = common::share(&["create", file.to_str().unwrap(), "-o", bare.to_str().unwrap()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = dir.path().join("got.bin");
    let mut args = vec!["--no-seed"];
    args.extend(dht);
    let mut f = fetch(bare.to_str().unwrap(), &out, &args);
    let found = f.wait_event(60, "dht");
    assert!(found["peers"].as_u64().unwrap() >= 1, "{found}");
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}
