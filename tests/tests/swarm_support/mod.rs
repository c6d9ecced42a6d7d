//! Running whole swarms in one process: a tracker on port 0, seeders and fetchers of the
//! engine, and waiting for their events with deadlines (never sleeps).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use share_engine::storage::output_paths;
use share_engine::{Config, Event, Mode, Params, Torrent};
use share_proto::create::{self, CreateOptions};
use share_proto::metainfo::Metainfo;
use tokio::sync::broadcast;

/// Deterministic bytes that differ in every piece.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tracker on 127.0.0.1, port 0, stopped on drop.
pub struct TestTracker {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestTracker {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = tracker_http::announce_url(listener.local_addr().unwrap());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tracker_http::serve(listener, async {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            url,
            stop: Some(stop),
        }
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A file shared in tests: its bytes on disk and its manifest.
pub struct Shared {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub meta: Arc<Metainfo>,
}

/// Writes `len` pattern bytes and makes a manifest with `piece_len` and `trackers`.
pub fn make_file(len: usize, piece_len: u32, trackers: Vec<String>) -> Shared {
    make_file_with(len, piece_len, trackers, false)
}

/// [`make_file`], BEP 27 private when `private`.
pub fn make_file_with(len: usize, piece_len: u32, trackers: Vec<String>, private: bool) -> Shared {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.bin");
    let data = pattern(len, len as u64);
    std::fs::write(&path, &data).unwrap();
    let opts = CreateOptions {
        trackers,
        piece_len: Some(piece_len),
        private,
        ..Default::default()
    };
    let (bytes, _) = create::create(&path, &opts, 2, &|_| {}).unwrap();
    let meta = Arc::new(Metainfo::from_bytes(&bytes).unwrap());
    Shared {
        dir,
        path,
        data,
        meta,
    }
}

/// Loopback listening and test-friendly timeouts.
pub fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

pub async fn seed(
    meta: &Arc<Metainfo>,
    path: &Path,
    trackers: Vec<String>,
    peers: Vec<SocketAddr>,
) -> Torrent {
    seed_with(meta, path, trackers, peers, config()).await
}

pub async fn seed_with(
    meta: &Arc<Metainfo>,
    path: &Path,
    trackers: Vec<String>,
    peers: Vec<SocketAddr>,
    config: Config,
) -> Torrent {
    start(Mode::Seed, meta, path, trackers, peers, config).await
}

pub async fn fetch(
    meta: &Arc<Metainfo>,
    out: &Path,
    trackers: Vec<String>,
    peers: Vec<SocketAddr>,
) -> Torrent {
    fetch_with(meta, out, trackers, peers, config()).await
}

pub async fn fetch_with(
    meta: &Arc<Metainfo>,
    out: &Path,
    trackers: Vec<String>,
    peers: Vec<SocketAddr>,
    config: Config,
) -> Torrent {
    start(Mode::Fetch, meta, out, trackers, peers, config).await
}

/// A torrent of `meta` (one file) at `path`, seeding it or fetching into it.
async fn start(
    mode: Mode,
    meta: &Arc<Metainfo>,
    path: &Path,
    trackers: Vec<String>,
    peers: Vec<SocketAddr>,
    config: Config,
) -> Torrent {
    Torrent::start(Params {
        meta: meta.clone(),
        paths: output_paths(meta, path),
        root: path.parent().unwrap().to_path_buf(),
        mode,
        trackers,
        peers,
        config,
    })
    .await
    .unwrap()
}

/// Waits until `pred` matches an event, with a deadline; returns the events seen up to it.
pub async fn wait_for(
    rx: &mut broadcast::Receiver<Event>,
    secs: u64,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) => {
                let hit = pred(&e);
                seen.push(e);
                if hit {
                    return seen;
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("events closed while waiting for {what}"),
            Err(_) => {
                let tail: Vec<_> = seen
                    .iter()
                    .rev()
                    .filter(|e| !matches!(e, Event::Progress(_)))
                    .take(15)
                    .collect();
                panic!("no {what} within {secs} s; last events: {tail:#?}")
            }
        }
    }
}

pub fn is_complete(e: &Event) -> bool {
    matches!(e, Event::Complete)
}

/// Reads an HTTP request's head, through its blank line, a byte at a time (for scripted
/// trackers); `None` if the connection ends first.
pub async fn read_http_head(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}
