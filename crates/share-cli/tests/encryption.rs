//! MSE/PE encryption (`--encryption prefer|require|off`) between `share` processes, and with
//! libtorrent 2.0 (Debian's `python3-libtorrent`) forcing encryption both ways (aria2c and
//! Transmission requiring it are in interop_clients.rs). A missing libtorrent skips its
//! tests locally and fails them under `CI=true`.

mod common;

use common::libtorrent::Libtorrent;
use common::pattern;
use common::proc::{fetch, listen_port, seed, Proc};

#[test]
fn share_requiring_encryption_fetches_from_share_requiring_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.bin");
    let data = pattern(3_000_000, 61);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &["--encryption", "require"]);
    let out = dir.path().join("got.bin");
    let mut f = fetch(&manifest, &out, &["--no-seed", "--encryption", "require"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
    let up = f
        .seen
        .iter()
        .find(|v| v["event"] == "peer_up")
        .expect("the seeder came up");
    assert_eq!(up["encryption"], "rc4", "{up}");
    let theirs = seeder.wait_event(30, "peer_up");
    assert_eq!(theirs["encryption"], "rc4", "{theirs}");
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn by_default_share_peers_hide_the_handshake_and_off_talks_plaintext_to_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("open.bin");
    let data = pattern(1_000_000, 62);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &[]);
    // prefer with prefer: the MSE handshake, then plaintext (neither side requires RC4);
    // require with prefer: RC4; off with prefer: plain.
    for (mode, encryption) in [("prefer", "handshake"), ("require", "rc4"), ("off", "plain")] {
        let out = dir.path().join(format!("got-{mode}.bin"));
        let mut f = fetch(&manifest, &out, &["--no-seed", "--encryption", mode]);
        f.wait_event(60, "complete");
        assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
        assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
        let up = f.seen.iter().find(|v| v["event"] == "peer_up").unwrap();
        assert_eq!(up["encryption"], encryption, "--encryption {mode}: {up}");
    }
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn a_seeder_requiring_encryption_refuses_a_plaintext_fetcher_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("closed.bin");
    std::fs::write(&file, pattern(100_000, 63)).unwrap();
    let (mut seeder, manifest) = seed(&file, &["--encryption", "require"]);
    let out = dir.path().join("got.bin");
    let _f = fetch(&manifest, &out, &["--no-seed", "--encryption", "off"]);
    let refused = seeder.wait_event(30, "peer_refused");
    assert_eq!(
        refused["reason"].as_str().unwrap(),
        "handshake failed: a plaintext handshake, and encryption is required (--encryption require)"
    );
    assert!(!out.exists() || std::fs::read(&out).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn a_fetcher_requiring_encryption_gives_up_on_a_plaintext_seeder_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.bin");
    std::fs::write(&file, pattern(100_000, 64)).unwrap();
    let (mut seeder, manifest) = seed(&file, &["--encryption", "off"]);
    let out = dir.path().join("got.bin");
    let mut f = fetch(&manifest, &out, &["--no-seed", "--encryption", "require"]);
    // The seeder sees an encrypted handshake it will not take...
    let refused = seeder.wait_event(30, "peer_refused");
    assert_eq!(
        refused["reason"].as_str().unwrap(),
        "handshake failed: protocol: the handshake is not BitTorrent's (nor one we would decrypt: --encryption is off)"
    );
    // ...and the fetcher says it gave up on that peer.
    let gave_up = f.wait_event(30, "peer_refused");
    assert!(
        gave_up["reason"]
            .as_str()
            .unwrap()
            .contains("--encryption require"),
        "{gave_up}"
    );
}

const LT: &str = r#"
import sys, time
import libtorrent as lt
mode, torrent, save = sys.argv[1], sys.argv[2], sys.argv[3]
# pe_forced (0) both ways, RC4 only (2): libtorrent refuses anything unencrypted.
ses = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                  'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
                  'out_enc_policy': 0, 'in_enc_policy': 0, 'allowed_enc_level': 2, 'prefer_rc4': True,
                  # MSE runs over TCP; libtorrent would try uTP first and wait for it to fail.
                  'enable_outgoing_utp': False, 'enable_incoming_utp': False})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = save
if mode == 'seed':
    p.flags |= lt.torrent_flags.seed_mode
h = ses.add_torrent(p)
deadline = time.time() + 90
while mode == 'seed' and h.status().state != lt.torrent_status.seeding and time.time() < deadline:
    time.sleep(0.05)
print('port %d' % ses.listen_port(), flush=True)
last = 0
while time.time() < deadline:
    if mode == 'leech':
        if h.status().is_seeding:
            print('done', flush=True)
            sys.exit(0)
        if time.time() - last > 2:
            h.connect_peer(('127.0.0.1', int(sys.argv[4])))
            last = time.time()
    time.sleep(0.05)
sys.exit('libtorrent timed out: %s' % h.status().state)
"#;

#[test]
fn libtorrent_forcing_encryption_fetches_from_share_requiring_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("album.bin");
    let data = pattern(4_000_000, 65);
    std::fs::write(&file, &data).unwrap();
    let mut seeder = Proc::share_talking(&common::seed_args(&file, &["--json", "--encryption", "require"]));
    let seeding = seeder.wait_event(60, "seeding");
    let manifest = seeding["manifest"].as_str().unwrap().to_string();
    let port = listen_port(&seeding).to_string();
    let save = dir.path().join("lt");
    std::fs::create_dir(&save).unwrap();
    let Some(mut lt) = Libtorrent::start(LT, &["leech", &manifest, save.to_str().unwrap(), &port]) else {
        return;
    };
    lt.wait("done", 90);
    assert!(
        std::fs::read(save.join("album.bin")).unwrap() == data,
        "byte-identical"
    );
    let up = seeder.wait(30, "libtorrent as a peer", |v| {
        v["event"] == "peer_up" && v["peer_id"].as_str().is_some_and(|p| p.starts_with("-LT"))
    });
    assert_eq!(up["encryption"], "rc4", "{up}");
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn share_fetches_from_a_libtorrent_seed_forcing_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    std::fs::create_dir(&seed_dir).unwrap();
    let data = pattern(4_000_000, 66);
    std::fs::write(seed_dir.join("video.bin"), &data).unwrap();
    let manifest = dir.path().join("video.torrent");
    let made = common::share(&[
        "create",
        seed_dir.join("video.bin").to_str().unwrap(),
        "-o",
        manifest.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let Some(mut lt) = Libtorrent::start(
        LT,
        &["seed", manifest.to_str().unwrap(), seed_dir.to_str().unwrap()],
    ) else {
        return;
    };
    let port = lt.wait_prefix("port ", 60);
    let out = dir.path().join("got.bin");
    let peer = format!("127.0.0.1:{port}");
    // The default (prefer) dials encrypted first.
    let mut f = fetch(manifest.to_str().unwrap(), &out, &["--no-seed", "--peer", &peer]);
    f.wait_event(90, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
    let up = f
        .seen
        .iter()
        .find(|v| v["event"] == "peer_up")
        .expect("libtorrent came up");
    assert_eq!(up["encryption"], "rc4", "{up}");
}
