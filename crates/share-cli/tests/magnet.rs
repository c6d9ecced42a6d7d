//! Magnet links (BEP 9): `share info` prints a manifest's link, `share fetch MAGNET` gets the
//! info dictionary from peers, checks it against the info hash, saves `NAME.torrent` beside
//! the data (never over someone else's file) and downloads; a peer serving another info
//! dictionary is passed over. With libtorrent 2.0, both ways.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::libtorrent::Libtorrent;
use common::proc::{seed, Proc};
use common::{pattern, share_json};
use serde_json::Value;

fn fetch_magnet(link: &str, dir: &std::path::Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "fetch",
        link,
        "-d",
        dir.to_str().unwrap(),
        "--port",
        "0",
        "--json",
        "--no-seed",
    ];
    args.extend_from_slice(extra);
    Proc::share(&args)
}

#[test]
fn a_magnet_link_from_share_info_fetches_the_metadata_then_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("talk.bin");
    let data = pattern(3_000_000, 41);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &[]);
    let info = share_json(&["info", "--json", &manifest]);
    let link = info["magnet"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!(
            "magnet:?xt=urn:btih:{}&dn=talk.bin&tr=http%3A%2F%2F",
            info["info_hash"].as_str().unwrap()
        )),
        "{link}"
    );
    let out = dir.path().join("downloads");
    let mut f = fetch_magnet(&link, &out, &[]);
    let got = f.wait_event(60, "metadata");
    let saved = out.join("talk.bin.torrent");
    assert_eq!(got["manifest"].as_str(), saved.to_str());
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(
        std::fs::read(out.join("talk.bin")).unwrap() == data,
        "byte-identical"
    );
    let again = share_json(&["info", "--json", saved.to_str().unwrap()]);
    assert_eq!(
        again["info_hash"], info["info_hash"],
        "the saved manifest is the torrent"
    );
    assert_eq!(again["trackers"], info["trackers"]);
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

/// Serves one connection as a liar: the handshake for `info_hash`, then zeros for every
/// metadata piece. Returns the pieces served.
fn lie(s: &mut std::net::TcpStream, info_hash: [u8; 20], size: usize) -> usize {
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut hs = [0u8; 68];
    if s.read_exact(&mut hs).is_err() {
        return 0;
    }
    let mut ours = hs;
    ours[20..28].copy_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0]);
    ours[28..48].copy_from_slice(&info_hash);
    ours[48..68].copy_from_slice(b"-XX0001-liarliarliar");
    let frame = |id: u8, ext: u8, payload: &[u8]| {
        let mut f = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
        f.extend([id, ext]);
        f.extend_from_slice(payload);
        f
    };
    let ext = format!("d1:md11:ut_metadatai3ee13:metadata_sizei{size}ee");
    if s.write_all(&ours)
        .and_then(|()| s.write_all(&frame(20, 0, ext.as_bytes())))
        .is_err()
    {
        return 0;
    }
    let mut served = 0;
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return served;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if s.read_exact(&mut body).is_err() {
            return served;
        }
        if body.len() < 2 || body[0] != 20 || body[1] != 3 {
            continue;
        }
        let text = String::from_utf8_lossy(&body[2..]).to_string();
        let piece: usize = text
            .split("5:piecei")
            .nth(1)
            .and_then(|t| t.split('e').next())
            .unwrap()
            .parse()
            .unwrap();
        let len = (size - piece * 16384).min(16384);
        let mut payload = format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{size}ee").into_bytes();
        payload.extend(vec![0u8; len]);
        if s.write_all(&frame(20, 2, &payload)).is_err() {
            return served;
        }
        served += 1;
    }
}

/// A peer that answers for the info hash but serves another info dictionary (the right
/// size, the wrong bytes).
fn lying_peer(info_hash: [u8; 20], size: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        // Two connections: the fetch that meets the liar alone, then the one that has both.
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else { break };
            served += lie(&mut s, info_hash, size);
        }
        served
    });
    (addr, handle)
}

#[test]
fn a_peer_serving_another_info_dictionary_is_passed_over_and_no_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.bin");
    let data = pattern(2_000_000, 42);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &[]);
    let info = share_json(&["info", "--json", &manifest]);
    let hash: Vec<u8> = (0..20)
        .map(|i| u8::from_str_radix(&info["info_hash"].as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let size = std::fs::read(&manifest).unwrap().len() - 60; // near the info dictionary's size
    let (liar, served) = lying_peer(hash.try_into().unwrap(), size);
    let honest = format!("127.0.0.1:{}", common::proc::listen_port(&seeder.seen[0]));
    let hex = info["info_hash"].as_str().unwrap();
    let out = dir.path().join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    // Someone's own notes.bin.torrent is there already: it stays as it is.
    std::fs::write(out.join("notes.bin.torrent"), b"my own file").unwrap();
    // The liar alone: nothing is saved, and the error says why.
    let alone = format!("magnet:?xt=urn:btih:{hex}&dn=notes.bin&x.pe={liar}");
    // The liar speaks plaintext only, and takes one connection per fetch.
    let mut f = fetch_magnet(&alone, &out, &["--encryption", "off"]);
    assert_eq!(f.exit_code(60), Some(1), "{}", f.stderr());
    assert!(
        f.stderr()
            .contains(&format!("{liar} sent metadata that is not the torrent's")),
        "{}",
        f.stderr()
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "nothing written");
    // The liar and the seeder (no tracker): the torrent comes from the seeder.
    let link = format!("magnet:?xt=urn:btih:{hex}&dn=notes.bin&x.pe={liar}&x.pe={honest}");
    let mut f = fetch_magnet(&link, &out, &["--encryption", "off"]);
    let got: Value = f.wait_event(60, "metadata");
    assert_eq!(got["from"].as_str(), Some(honest.as_str()));
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(served.join().unwrap() > 0, "the liar was asked");
    assert_eq!(
        std::fs::read(out.join("notes.bin.torrent")).unwrap(),
        b"my own file"
    );
    let saved = out.join(format!("notes.bin.{hex}.torrent"));
    assert_eq!(got["manifest"].as_str(), saved.to_str());
    assert!(
        std::fs::read(out.join("notes.bin")).unwrap() == data,
        "byte-identical"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn bad_magnet_links_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (link, says) in [
        ("magnet:?dn=x", "names no BitTorrent info hash"),
        ("magnet:?xt=urn:btih:1234", "neither 40 hex digits nor 32 base32"),
        ("magnet:?xt=urn:btmh:1220aa", "v2-only magnet links"),
    ] {
        let mut f = fetch_magnet(link, dir.path(), &[]);
        assert_eq!(f.exit_code(30), Some(2), "{link}");
        assert!(f.stderr().contains(says), "{link}: {}", f.stderr());
    }
}

const LT: &str = r#"
import sys, time
import libtorrent as lt
mode, arg, save = sys.argv[1], sys.argv[2], sys.argv[3]
ses = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                  'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True})
if mode == 'magnet':
    p = lt.parse_magnet_uri(arg)
else:
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(arg)
    p.flags |= lt.torrent_flags.seed_mode
p.save_path = save
h = ses.add_torrent(p)
deadline = time.time() + 90
# `is_seeding` holds from the start in seed mode; connections are taken once it really seeds.
while mode == 'seed' and h.status().state != lt.torrent_status.seeding and time.time() < deadline:
    time.sleep(0.05)
print('port %d' % ses.listen_port(), flush=True)
while time.time() < deadline:
    if mode == 'magnet' and h.status().is_seeding:
        print('done', flush=True)
        sys.exit(0)
    time.sleep(0.05)
sys.exit('libtorrent timed out: %s' % h.status().state)
"#;

#[test]
fn libtorrent_fetches_a_magnet_link_of_a_share_seed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("album.bin");
    let data = pattern(2_500_000, 43);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &[]);
    let info = share_json(&["info", "--json", &manifest]);
    let port = common::proc::listen_port(&seeder.seen[0]);
    let link = format!("{}&x.pe=127.0.0.1:{port}", info["magnet"].as_str().unwrap());
    let save = dir.path().join("lt");
    std::fs::create_dir(&save).unwrap();
    let Some(mut lt) = Libtorrent::start(LT, &["magnet", &link, save.to_str().unwrap()]) else {
        return;
    };
    lt.wait("done", 90);
    assert!(
        std::fs::read(save.join("album.bin")).unwrap() == data,
        "byte-identical"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn share_fetches_a_magnet_link_from_a_libtorrent_seed() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    std::fs::create_dir(&seed_dir).unwrap();
    let data = pattern(2_500_000, 44);
    std::fs::write(seed_dir.join("film.bin"), &data).unwrap();
    let manifest = dir.path().join("film.torrent");
    let made = common::share(&[
        "create",
        seed_dir.join("film.bin").to_str().unwrap(),
        "-o",
        manifest.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let info = share_json(&["info", "--json", manifest.to_str().unwrap()]);
    let Some(mut lt) = Libtorrent::start(
        LT,
        &["seed", manifest.to_str().unwrap(), seed_dir.to_str().unwrap()],
    ) else {
        return;
    };
    let port = lt.wait_prefix("port ", 60);
    let link = format!("{}&x.pe=127.0.0.1:{port}", info["magnet"].as_str().unwrap());
    let out = dir.path().join("got");
    let mut f = fetch_magnet(&link, &out, &[]);
    f.wait_event(60, "metadata");
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(
        std::fs::read(out.join("film.bin")).unwrap() == data,
        "byte-identical"
    );
}
