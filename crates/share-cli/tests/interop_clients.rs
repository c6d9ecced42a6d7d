//! Real BitTorrent clients in our swarms: aria2c downloads from `share seed` and seeds to
//! `share fetch` on loopback, through our trackers; Transmission does both in network
//! namespaces (it never dials loopback peers; see docs/INTEROP-NOTES.md).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proc::Proc;
use common::{pattern, share_json};
use share_tests::netns::require_pair;
use share_tests::ns_tracker::NsTracker;
use share_tests::tools::require;
use share_tests::transmission::{Options, Transmission};

/// A child process killed on drop.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aria2c on loopback; with `crypto`, it requires RC4 encryption (MSE) of every connection.
fn aria2c(aria: &Path, dir: &Path, torrent: &Path, port: u16, seed: bool, crypto: bool) -> Command {
    let mut cmd = Command::new(aria);
    if crypto {
        cmd.args(["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]);
    }
    cmd.args([
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--file-allocation=none",
        "--console-log-level=warn",
        "--summary-interval=0",
    ])
    .arg(format!("--listen-port={port}"))
    .args(if seed {
        ["--seed-ratio=0.0", "--check-integrity=true"]
    } else {
        ["--seed-time=0", "--bt-stop-timeout=60"]
    })
    .arg("-d")
    .arg(dir)
    .arg(torrent)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// Asks a loopback tracker's scrape for one count of a swarm (`complete`, `incomplete` or
/// `downloaded`).
fn scrape(announce: &str, info_hash: &str, key: &str) -> u32 {
    let rest = announce.trim_start_matches("http://");
    let (host, _) = rest.split_once('/').unwrap();
    let hash: String = hex::decode(info_hash)
        .unwrap()
        .iter()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let Ok(mut s) = TcpStream::connect(host) else {
        return 0;
    };
    let _ = write!(s, "GET /scrape?info_hash={hash} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    let mut body = Vec::new();
    let _ = s.read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body);
    text.split(&format!("{}:{key}i", key.len()))
        .nth(1)
        .and_then(|t| t.split('e').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn aria2c_downloads_from_share_seed() {
    aria2c_downloads_from_share("aria2c_downloads_from_share_seed", false);
}

#[test]
fn aria2c_requiring_encryption_downloads_from_share_seed_requiring_it() {
    aria2c_downloads_from_share(
        "aria2c_requiring_encryption_downloads_from_share_seed_requiring_it",
        true,
    );
}

/// aria2c downloads from `share seed` while the seeder chats; with `crypto` both sides
/// require encryption.
fn aria2c_downloads_from_share(name: &str, crypto: bool) {
    let Some(aria) = require("aria2c", "aria2", name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.bin");
    let data = pattern(6_000_000, 21);
    std::fs::write(&file, &data).unwrap();
    // Without `crypto`, plaintext only: aria2c takes MSE when offered, and plaintext
    // interop is what this run checks.
    let encryption = if crypto { "require" } else { "off" };
    let (mut seeder, manifest) = common::proc::seed(&file, &["--nick", "seeder", "--encryption", encryption]);
    seeder.wait_event(30, "tracker_ok");
    // The seeder chats with a `share chat` peer while aria2c downloads.
    let mut listener = Proc::share(&[
        "chat",
        &manifest,
        "--nick",
        "listener",
        "--port",
        "0",
        "--json",
        "--encryption",
        encryption,
    ]);
    listener.wait(30, "the seeder as a chat peer", |v| {
        v["event"] == "peer_up" && !v["client"].is_null()
    });
    seeder.wait(30, "the listener", |v| {
        v["event"] == "peer_up" && !v["client"].is_null()
    });
    seeder.say("aria2c is welcome here");
    let down = dir.path().join("aria2c");
    std::fs::create_dir(&down).unwrap();
    let child = aria2c(&aria, &down, Path::new(&manifest), free_port(), false, crypto)
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "aria2c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(down.join("shared.bin")).unwrap(), data);
    let up = seeder.wait(30, "aria2c as a peer", |v| {
        v["event"] == "peer_up"
            && v["client"]
                .as_str()
                .is_some_and(|c| c.to_lowercase().contains("aria2"))
    });
    assert!(up["peer_id"].as_str().unwrap().starts_with("A2-"), "{up}");
    assert_eq!(up["encryption"], if crypto { "rc4" } else { "plain" }, "{up}");
    let said = listener.wait(30, "the seeder's message", |v| v["event"] == "chat");
    assert_eq!(
        (said["nick"].as_str(), said["text"].as_str()),
        (Some("seeder"), Some("aria2c is welcome here"))
    );
}

#[test]
fn share_fetch_downloads_from_an_aria2c_seeder() {
    share_fetch_from_aria2c("share_fetch_downloads_from_an_aria2c_seeder", false);
}

#[test]
fn share_fetch_requiring_encryption_downloads_from_an_aria2c_seeder_requiring_it() {
    share_fetch_from_aria2c(
        "share_fetch_requiring_encryption_downloads_from_an_aria2c_seeder_requiring_it",
        true,
    );
}

/// `share fetch` downloads from an aria2c seeder; with `crypto` both sides require
/// encryption.
fn share_fetch_from_aria2c(name: &str, crypto: bool) {
    let Some(aria) = require("aria2c", "aria2", name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir(&seed_dir).unwrap();
    let data = pattern(5_000_000, 22);
    std::fs::write(seed_dir.join("data.bin"), &data).unwrap();
    let (_tracker, url, _) = common::proc::tracker(&[]);
    let manifest = dir.path().join("data.torrent");
    let made = share_json(&[
        "create",
        seed_dir.join("data.bin").to_str().unwrap(),
        "-t",
        &url,
        "-o",
        manifest.to_str().unwrap(),
        "--json",
    ]);
    let hash = made["info_hash"].as_str().unwrap();
    let _aria = Kill(
        aria2c(&aria, &seed_dir, &manifest, free_port(), true, crypto)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while scrape(&url, hash, "complete") == 0 {
        assert!(Instant::now() < deadline, "aria2c never announced as a seeder");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = dir.path().join("got.bin");
    let encryption = if crypto { "require" } else { "off" };
    let mut f = common::proc::fetch(
        manifest.to_str().unwrap(),
        &out,
        &["--no-seed", "--encryption", encryption],
    );
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let verified: Vec<_> = f.seen.iter().filter(|v| v["event"] == "piece_verified").collect();
    assert!(
        !verified.is_empty()
            && verified
                .iter()
                .all(|v| v["from"][0].as_str().unwrap().starts_with("A2-")),
        "all from aria2c"
    );
    let up = f
        .seen
        .iter()
        .find(|v| v["event"] == "peer_up")
        .expect("aria2c came up");
    assert_eq!(up["encryption"], if crypto { "rc4" } else { "plain" }, "{up}");
    // Our fetch told the tracker it completed, then that it stopped.
    assert_eq!(scrape(&url, hash, "downloaded"), 1, "`completed` was announced");
    assert_eq!(
        scrape(&url, hash, "incomplete"),
        0,
        "`stopped` removed the fetcher"
    );
    assert_eq!(scrape(&url, hash, "complete"), 1, "only aria2c is left");
}

/// `share` in namespace A, Transmission in namespace B.
#[test]
fn transmission_downloads_from_share_seed() {
    transmission_downloads_from_share("transmission_downloads_from_share_seed", "share-c", false);
}

#[test]
fn transmission_requiring_encryption_downloads_from_share_seed_requiring_it() {
    transmission_downloads_from_share(
        "transmission_requiring_encryption_downloads_from_share_seed_requiring_it",
        "share-e",
        true,
    );
}

fn transmission_options(crypto: bool) -> Options {
    Options {
        encryption: if crypto {
            share_tests::transmission::Encryption::Required
        } else {
            share_tests::transmission::Encryption::Preferred
        },
        ..Options::default()
    }
}

/// Transmission downloads from `share seed`; with `crypto` both require encryption.
fn transmission_downloads_from_share(name: &str, ns: &str, crypto: bool) {
    let (Some(_), Some(_)) = (
        require("transmission-daemon", "transmission-daemon", name),
        require("ip", "iproute2", name),
    ) else {
        return;
    };
    let Some(pair) = require_pair(ns, name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("film.bin");
    let data = pattern(4 << 20, 23);
    std::fs::write(&file, &data).unwrap();
    let mut cmd = pair.a.command(env!("CARGO_BIN_EXE_share"));
    cmd.args([
        "seed",
        file.to_str().unwrap(),
        "--announce-host",
        &pair.addr_a.to_string(),
        "--port",
        "6881",
        "--tracker-port",
        "6969",
        "--json",
        "--encryption",
        if crypto { "require" } else { "prefer" },
    ]);
    let mut seeder = Proc::spawn_talking(cmd);
    let manifest = seeder.wait_event(60, "seeding")["manifest"]
        .as_str()
        .unwrap()
        .to_string();
    seeder.wait_event(30, "tracker_ok");
    seeder.say("the seeder chats while Transmission downloads");
    let downloads = dir.path().join("tr-down");
    let tr = Transmission::start(
        &pair.b,
        &dir.path().join("tr"),
        &downloads,
        transmission_options(crypto),
    )
    .expect("transmission-daemon starts");
    let id = tr
        .add(Path::new(&manifest))
        .expect("Transmission takes our manifest");
    if let Err(e) = tr.wait_complete(id, Duration::from_secs(60)) {
        panic!("{e}\nour seeder's stderr: {}", seeder.stderr());
    }
    assert_eq!(std::fs::read(downloads.join("film.bin")).unwrap(), data);
    let up = seeder.wait(10, "Transmission as a peer", |v| {
        v["event"] == "peer_up" && v["peer_id"].as_str().is_some_and(|p| p.starts_with("-TR"))
    });
    if crypto {
        assert_eq!(up["encryption"], "rc4", "{up}");
    }
    drop(tr);
}

#[test]
fn share_fetch_downloads_from_a_transmission_seeder() {
    share_fetch_from_transmission(
        "share_fetch_downloads_from_a_transmission_seeder",
        "share-d",
        false,
    );
}

#[test]
fn share_fetch_requiring_encryption_downloads_from_a_transmission_seeder_requiring_it() {
    share_fetch_from_transmission(
        "share_fetch_requiring_encryption_downloads_from_a_transmission_seeder_requiring_it",
        "share-f",
        true,
    );
}

/// `share fetch` downloads from a Transmission seeder; with `crypto` both require
/// encryption.
fn share_fetch_from_transmission(name: &str, ns: &str, crypto: bool) {
    let (Some(_), Some(_)) = (
        require("transmission-daemon", "transmission-daemon", name),
        require("ip", "iproute2", name),
    ) else {
        return;
    };
    let Some(pair) = require_pair(ns, name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tracker = NsTracker::start(&pair.a, SocketAddr::new(pair.addr_a.into(), 6969));
    let seed_dir = dir.path().join("tr-seed");
    std::fs::create_dir(&seed_dir).unwrap();
    let data = pattern(4 << 20, 24);
    std::fs::write(seed_dir.join("song.bin"), &data).unwrap();
    let manifest = dir.path().join("song.torrent");
    let made = share_json(&[
        "create",
        seed_dir.join("song.bin").to_str().unwrap(),
        "-t",
        &tracker.announce_url(),
        "-o",
        manifest.to_str().unwrap(),
        "--json",
    ]);
    let hash = share_proto::InfoHash::from_hex(made["info_hash"].as_str().unwrap()).unwrap();
    let tr = Transmission::start(
        &pair.b,
        &dir.path().join("tr"),
        &seed_dir,
        transmission_options(crypto),
    )
    .expect("transmission-daemon starts");
    let id = tr.add(&manifest).expect("Transmission takes our manifest");
    tracker.wait_for_seeder(hash, Duration::from_secs(30), || tr.diagnostics(id));
    let out = dir.path().join("got.bin");
    let mut cmd = pair.a.command(env!("CARGO_BIN_EXE_share"));
    cmd.args([
        "fetch",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--port",
        "6881",
        "--no-seed",
        "--json",
        "--encryption",
        if crypto { "require" } else { "off" },
    ]);
    let mut f = Proc::spawn(cmd);
    f.wait_event(90, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let verified: Vec<_> = f.seen.iter().filter(|v| v["event"] == "piece_verified").collect();
    assert!(
        verified
            .iter()
            .all(|v| v["from"][0].as_str().unwrap().starts_with("-TR")),
        "all from Transmission"
    );
    if crypto {
        let up = f
            .seen
            .iter()
            .find(|v| v["event"] == "peer_up")
            .expect("Transmission came up");
        assert_eq!(up["encryption"], "rc4", "{up}");
    }
    drop(tr);
}
