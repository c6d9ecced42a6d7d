//! Helpers for the tracker's end-to-end tests: a tracker on a background runtime, a raw HTTP/1.1
//! client over std sockets, a hand-made single-file torrent, child processes killed on drop,
//! and polling with a deadline.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use share_proto::InfoHash;
use tracker_http::{Config, ServeError, Tracker};

/// A tracker served on a port of its own until dropped.
pub struct RunningTracker {
    pub tracker: Tracker,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<Result<(), ServeError>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RunningTracker {
    /// Binds `bind` (port 0) and serves a tracker with `config` on a two-thread runtime.
    pub fn start(bind: &str, config: Config) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(bind))?;
        let addr = listener.local_addr()?;
        let tracker = Tracker::new(config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let serving = tracker.clone();
        runtime.spawn(async move {
            let r = serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
            let _ = done_tx.send(r);
        });
        Ok(Self {
            tracker,
            addr,
            stop: Some(stop),
            done: Some(done),
            runtime: Some(runtime),
        })
    }

    pub fn announce_url(&self) -> String {
        tracker_http::announce_url(self.addr)
    }

    /// Asks for a graceful shutdown and waits until `serve` has returned, at most `limit`.
    pub fn shutdown(&mut self, limit: Duration) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.done.take() {
            Some(done) => match done.recv_timeout(limit) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("serve failed: {e:#}")),
                Err(_) => Err(format!("serve did not return within {limit:?}")),
            },
            None => Ok(()),
        }
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        let _ = self.shutdown(Duration::from_secs(5));
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// One HTTP response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Reads one response with a `Content-Length` body from a kept-alive connection.
pub fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in headers",
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Reply { status, body })
}

/// `GET path` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
    read_reply(&mut s)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; `what` explains a timeout.
pub fn wait_for(limit: Duration, what: impl Fn() -> String, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn bstr(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("{}:", b.len()).as_bytes());
    out.extend_from_slice(b);
}

/// Writes `data` as `dir/name` and a single-file torrent for it announcing to `announce`;
/// returns the torrent's path and info hash.
pub fn make_torrent(dir: &Path, name: &str, data: &[u8], announce: &str) -> (std::path::PathBuf, InfoHash) {
    const PIECE: usize = 16 * 1024;
    std::fs::write(dir.join(name), data).expect("write payload");
    let pieces: Vec<u8> = data.chunks(PIECE).flat_map(share_proto::hash::sha1).collect();
    let mut info = b"d6:lengthi".to_vec();
    info.extend_from_slice(format!("{}e4:name", data.len()).as_bytes());
    bstr(&mut info, name.as_bytes());
    info.extend_from_slice(format!("12:piece lengthi{PIECE}e6:pieces").as_bytes());
    bstr(&mut info, &pieces);
    info.push(b'e');
    let hash = InfoHash(share_proto::hash::sha1(&info));
    let mut torrent = b"d8:announce".to_vec();
    bstr(&mut torrent, announce.as_bytes());
    torrent.extend_from_slice(b"4:info");
    torrent.extend_from_slice(&info);
    torrent.push(b'e');
    let path = dir.join(format!("{name}.torrent"));
    std::fs::write(&path, torrent).expect("write torrent");
    (path, hash)
}

/// Deterministic pseudo-random bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
