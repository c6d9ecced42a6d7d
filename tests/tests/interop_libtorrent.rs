//! libtorrent 2.0 (Debian's `python3-libtorrent`) fetching from our seeder while our tracker
//! lists it: one connection only, and the download completes byte-identical.
//!
//! libtorrent connects to us from an ephemeral port and uses a new random peer id on every
//! connection, so when our next announce lists it at its listen port, only the BEP 10 `p` it
//! sent tells us it is the peer already connected. Dialing it again made libtorrent drop the
//! older connection and the blocks in flight on it (and qBittorrent drop both).
//!
//! The order is made certain, not left to a race: libtorrent has no tracker and dials the
//! seeder itself; once its connection is up (with its extension handshake), the test announces
//! libtorrent's listen port to our tracker, and the seeder's next two announces (every 5 s
//! here) list it. libtorrent downloads slowly until then (a session download limit). Both
//! sides count the connections. A missing module skips the test locally, fails it under
//! `CI=true`.

mod swarm_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use share_engine::Event;
use share_proto::announce::AnnounceRequest;
use share_proto::create::{self, CreateOptions};
use share_proto::metainfo::Metainfo;
use share_proto::PeerId;
use share_tests::tools::require_python_module;
use swarm_support::*;

const SCRIPT: &str = r#"
import json, sys, threading, time
import libtorrent as lt

torrent, save, seeder_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ses = lt.session({
    'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
    'out_enc_policy': 2, 'in_enc_policy': 2,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
h = ses.add_torrent(atp)
h.replace_trackers([])
# Slow until the test says go: the download must outlast two of the seeder's announces. (A
# session-wide limit would not do: libtorrent exempts peers on the local network from it.)
h.set_download_limit(256 * 1024)
print(json.dumps({'listen_port': ses.listen_port()}), flush=True)
h.connect_peer(('127.0.0.1', seeder_port))
go = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), go.set()), daemon=True).start()
released, most = False, 0
deadline = time.time() + 120
while time.time() < deadline:
    s = h.status()
    most = max(most, s.num_peers)
    if go.is_set() and not released:
        h.set_download_limit(-1)
        released = True
    if s.is_seeding:
        print(json.dumps({'done': True, 'most_peers': most}), flush=True)
        sys.exit(0)
    time.sleep(0.05)
print(json.dumps({'done': False, 'most_peers': most, 'progress': s.progress}), flush=True)
sys.exit(1)
"#;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of `key` in a JSON line such as `{"listen_port": 123}` (numbers and booleans).
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_fetches_over_one_connection_though_our_tracker_lists_it() {
    let test = "interop_libtorrent::libtorrent_fetches_over_one_connection_though_our_tracker_lists_it";
    let Some(python) = require_python_module("libtorrent", "python3-libtorrent", test) else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = tracker_http::announce_url(listener.local_addr().unwrap());
    let tracker = tracker_http::Tracker::new(tracker_http::Config::with_interval(5));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = tracker
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });

    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("payload.bin");
    let data = pattern(16 * 1024 * 1024 + 321, 11);
    std::fs::write(&data_path, &data).unwrap();
    let opts = CreateOptions {
        trackers: vec![url.clone()],
        piece_len: Some(64 * 1024),
        ..Default::default()
    };
    let (bytes, _) = create::create(&data_path, &opts, 2, &|_| {}).unwrap();
    let torrent_path = dir.path().join("payload.torrent");
    std::fs::write(&torrent_path, &bytes).unwrap();
    let meta = Arc::new(Metainfo::from_bytes(&bytes).unwrap());
    let seeder = seed(&meta, &data_path, vec![url.clone()], vec![]).await;
    let mut events = seeder.events();
    wait_for(&mut events, 15, "the seeder's first announce", |e| {
        matches!(e, Event::TrackerOk { .. })
    })
    .await;

    let save = tempfile::tempdir().unwrap();
    let mut child = Child(
        Command::new(python)
            .args(["-c", SCRIPT])
            .arg(&torrent_path)
            .arg(save.path())
            .arg(seeder.listen_addr().port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let (line_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.recv())
        .await
        .expect("libtorrent starts within 30 s")
        .expect("libtorrent prints its listen port");
    let port: u16 = field(&first, "listen_port").unwrap().parse().unwrap();
    println!("libtorrent listens on 127.0.0.1:{port}");

    // libtorrent connects in; then, told of it by the test, two of our announces list it
    // at its listen port.
    let mut seen = wait_for(&mut events, 30, "libtorrent connecting", |e| {
        matches!(e, Event::PeerUp { client: Some(_), .. })
    })
    .await;
    let listed = AnnounceRequest::new(meta.info_hash, PeerId::ours([7; 12]), port, meta.total_len());
    let reply = http_get(&listed.url(&url)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    for n in 1..=2 {
        seen.extend(
            wait_for(
                &mut events,
                30,
                &format!("announce {n} listing libtorrent"),
                |e| matches!(e, Event::TrackerOk { peers: 1, .. }),
            )
            .await,
        );
    }
    let mut stdin = child.0.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    let last = tokio::time::timeout(std::time::Duration::from_secs(120), lines.recv())
        .await
        .expect("libtorrent finishes within 120 s")
        .expect("libtorrent reports its outcome");
    println!("libtorrent: {last}");
    assert_eq!(field(&last, "done").as_deref(), Some("true"), "{last}");
    let most: u32 = field(&last, "most_peers").unwrap().parse().unwrap();

    // Everything the seeder saw until now.
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    for e in seen.iter().filter(|e| !matches!(e, Event::Progress(_))) {
        println!("seeder event: {e:?}");
    }
    let connections: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::PeerUp { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect();
    let downs: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::PeerDown { addr, reason, .. } => Some(format!("{addr}: {reason}")),
            _ => None,
        })
        .collect();
    println!("seeder's connections: {connections:?}, closed: {downs:?}, libtorrent's most peers: {most}");
    assert_eq!(
        connections.len(),
        1,
        "one connection to libtorrent: {connections:?} {downs:?}"
    );
    assert_ne!(connections[0].port(), port, "it is the one libtorrent opened");
    assert_eq!(most, 1, "libtorrent saw one peer connection");
    let got = std::fs::read(save.path().join("payload.bin")).unwrap();
    assert!(got == data, "libtorrent's copy is byte-identical");

    drop(child);
    seeder.shutdown().await;
    let _ = stop.send(());
    let _ = server.await;
}

/// `GET url` (plain `http://HOST:PORT/...`) on a fresh connection: the whole response.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .expect("the tracker answers within 10 s")
        .unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}
