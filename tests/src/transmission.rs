//! transmission-daemon (Debian's 3.00) inside a network namespace, driven by transmission-remote.
//!
//! Transmission 3.00 never dials a peer on 127.0.0.0/8 (its `isMartianAddr` check), so interop
//! tests run it in one namespace of a [`crate::netns::NetnsPair`] and the other client in the
//! other. What else it needs to download within seconds is in docs/INTEROP-NOTES.md; in short:
//! a fresh daemon per test (it keys peers by IP address only), peers that are already listening
//! when it first hears of them (a refused connection is retried after 15 minutes), and about
//! 10 to 12 s of patience (it sends `interested` only on its 10 s rechoke timer).
//!
//! ```no_run
//! # use share_tests::{netns::NetnsPair, transmission::{Options, Transmission}};
//! # use std::{path::Path, time::Duration};
//! let pair = NetnsPair::create("share-t").unwrap();
//! let work = Path::new("/tmp/work");
//! let tr = Transmission::start(&pair.b, work, &work.join("downloads"), Options::default()).unwrap();
//! let id = tr.add(&work.join("x.torrent")).unwrap();
//! tr.wait_complete(id, Duration::from_secs(40)).unwrap();
//! ```
//!
//! Everything is killed on drop; the borrow of the [`Netns`] makes sure that happens before the
//! namespace goes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Netns;

/// Transmission's `encryption` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// 0: prefer plaintext, accept encrypted.
    Tolerated = 0,
    /// 1: prefer encrypted, fall back to plaintext (Transmission's default).
    Preferred = 1,
    /// 2: encrypted (MSE) only.
    Required = 2,
}

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct Options {
    /// TCP port for peers (`peer-port`), on every address of the namespace.
    pub peer_port: u16,
    /// Port of the RPC server, bound to the namespace's own 127.0.0.1.
    pub rpc_port: u16,
    pub encryption: Encryption,
    /// Also write libtransmission's per-peer debug trace (handshakes, messages, reconnect
    /// intervals) to `transmission-deep.log` in the work directory (`TR_DEBUG_FD`). Large.
    pub deep_log: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            peer_port: 51413,
            rpc_port: 9091,
            encryption: Encryption::Preferred,
            deep_log: false,
        }
    }
}

/// A torrent's id in the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TorrentId(pub u32);

/// What `transmission-remote -t ID -i` says about a torrent.
#[derive(Debug, Clone)]
pub struct Status {
    /// `Idle`, `Downloading`, `Seeding`, `Verifying`, `Queued`, `Stopped`, ...
    pub state: String,
    /// 0.0 to 100.0.
    pub percent_done: f64,
    /// The `Peers:` line, e.g. `connected to 1, uploading to 0, downloading from 1`.
    pub peers: String,
    /// The `Error:` line, when there is one.
    pub error: Option<String>,
    /// The whole answer.
    pub raw: String,
}

impl Status {
    /// Every piece is here and checked.
    pub fn is_complete(&self) -> bool {
        self.percent_done >= 100.0 && !self.state.contains("Verif") && !self.state.contains("check")
    }

    fn parse(raw: &str) -> Option<Self> {
        let field = |name: &str| {
            raw.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let percent_done = field("Percent Done:")?.trim_end_matches('%').parse().ok()?;
        Some(Self {
            state: field("State:")?,
            percent_done,
            peers: field("Peers:").unwrap_or_default(),
            error: field("Error:"),
            raw: raw.to_string(),
        })
    }
}

/// A running transmission-daemon, killed on drop.
#[derive(Debug)]
pub struct Transmission<'ns> {
    ns: &'ns Netns,
    child: Option<Child>,
    rpc_port: u16,
    log: PathBuf,
    deep_log: Option<PathBuf>,
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `settings.json` the daemon is started with: no DHT, LPD, PEX, uTP or port mapping
/// (peers come from the tracker only, over TCP), no limits, RPC open on the namespace's
/// loopback only.
pub fn settings_json(download_dir: &Path, opts: &Options) -> String {
    let dir = json_str(&download_dir.to_string_lossy());
    format!(
        r#"{{
    "dht-enabled": false,
    "lpd-enabled": false,
    "pex-enabled": false,
    "utp-enabled": false,
    "port-forwarding-enabled": false,
    "blocklist-enabled": false,
    "encryption": {encryption},
    "peer-port": {peer_port},
    "peer-port-random-on-start": false,
    "bind-address-ipv4": "0.0.0.0",
    "rpc-enabled": true,
    "rpc-bind-address": "127.0.0.1",
    "rpc-port": {rpc_port},
    "rpc-authentication-required": false,
    "rpc-whitelist-enabled": false,
    "rpc-host-whitelist-enabled": false,
    "download-dir": {dir},
    "incomplete-dir-enabled": false,
    "watch-dir-enabled": false,
    "start-added-torrents": true,
    "trash-original-torrent-files": false,
    "rename-partial-files": false,
    "speed-limit-down-enabled": false,
    "speed-limit-up-enabled": false,
    "alt-speed-enabled": false,
    "ratio-limit-enabled": false,
    "idle-seeding-limit-enabled": false,
    "download-queue-enabled": false,
    "seed-queue-enabled": false,
    "queue-stalled-enabled": false,
    "message-level": 2
}}
"#,
        encryption = opts.encryption as u8,
        peer_port = opts.peer_port,
        rpc_port = opts.rpc_port,
    )
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl<'ns> Transmission<'ns> {
    /// Writes `WORK/transmission-config/settings.json`, starts transmission-daemon in `ns`
    /// (log in `WORK/transmission.log`) and waits, at most 10 s, until its RPC answers.
    /// `download_dir` is where torrents are downloaded, or where a seeder's data already is.
    pub fn start(ns: &'ns Netns, work: &Path, download_dir: &Path, opts: Options) -> Result<Self, String> {
        let conf = work.join("transmission-config");
        std::fs::create_dir_all(&conf).map_err(|e| format!("create {}: {e}", conf.display()))?;
        std::fs::create_dir_all(download_dir)
            .map_err(|e| format!("create {}: {e}", download_dir.display()))?;
        std::fs::write(conf.join("settings.json"), settings_json(download_dir, &opts))
            .map_err(|e| format!("write settings.json: {e}"))?;
        let log = work.join("transmission.log");
        let stderr_path = work.join(if opts.deep_log {
            "transmission-deep.log"
        } else {
            "transmission.stderr"
        });
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("create {}: {e}", stderr_path.display()))?;
        let mut cmd = ns.command("transmission-daemon");
        cmd.arg("--foreground")
            .arg("--config-dir")
            .arg(&conf)
            .args(["--port", &opts.rpc_port.to_string()])
            .args(["--peerport", &opts.peer_port.to_string()])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        if opts.deep_log {
            cmd.env("TR_DEBUG_FD", "2");
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("start transmission-daemon: {e}"))?;
        let mut me = Self {
            ns,
            child: Some(child),
            rpc_port: opts.rpc_port,
            log,
            deep_log: opts.deep_log.then_some(stderr_path),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if me.remote(&["-l"]).is_ok() {
                return Ok(me);
            }
            if let Some(Ok(Some(status))) = me.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "transmission-daemon exited with {status}:\n{}",
                    me.log_tail(30)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "transmission-daemon's RPC did not answer within 10 s:\n{}",
                    me.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `transmission-remote RPC_PORT args...` in the namespace; its stdout, or an error
    /// with both outputs.
    pub fn remote(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .ns
            .command("transmission-remote")
            .arg(self.rpc_port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run transmission-remote: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "transmission-remote {} failed ({}): {stdout}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn ids(&self) -> Result<Vec<u32>, String> {
        let list = self.remote(&["-l"])?;
        Ok(list
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|id| id.trim_end_matches('*').parse().ok())
            .collect())
    }

    /// Adds `torrent` (a .torrent file path) and returns its id. With the data already in the
    /// download directory the daemon verifies it and seeds; otherwise it downloads.
    pub fn add(&self, torrent: &Path) -> Result<TorrentId, String> {
        let before = self.ids()?;
        let path = torrent.to_string_lossy();
        let out = self.remote(&["-a", &path])?;
        if !out.contains("success") {
            return Err(format!("adding {path}: {out}"));
        }
        self.ids()?
            .into_iter()
            .filter(|id| !before.contains(id))
            .max()
            .map(TorrentId)
            .ok_or_else(|| format!("added {path} but no new torrent is listed"))
    }

    /// The torrent's status now.
    pub fn status(&self, id: TorrentId) -> Result<Status, String> {
        let raw = self.remote(&["-t", &id.0.to_string(), "-i"])?;
        Status::parse(&raw).ok_or_else(|| format!("unexpected transmission-remote -i output:\n{raw}"))
    }

    /// Polls the torrent's status every 200 ms until `cond` holds, at most `limit`; the error
    /// explains what was awaited and what the daemon said last, with its peers and log.
    pub fn wait_for(
        &self,
        id: TorrentId,
        limit: Duration,
        what: &str,
        mut cond: impl FnMut(&Status) -> bool,
    ) -> Result<Status, String> {
        let deadline = Instant::now() + limit;
        loop {
            let last = match self.status(id) {
                Ok(s) if cond(&s) => return Ok(s),
                Ok(s) => s.raw,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {limit:?} waiting for Transmission: {what}\nlast status:\n{last}\n{}",
                    self.diagnostics(id)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the torrent is complete (downloaded, or verified when seeding).
    pub fn wait_complete(&self, id: TorrentId, limit: Duration) -> Result<Status, String> {
        self.wait_for(id, limit, "torrent complete", Status::is_complete)
    }

    /// `transmission-remote -t ID -ip`: the connected peers.
    pub fn peers(&self, id: TorrentId) -> String {
        self.remote(&["-t", &id.0.to_string(), "-ip"])
            .unwrap_or_else(|e| e)
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Peers, trackers and the end of the log (and of the debug trace, when enabled), for
    /// failure messages.
    pub fn diagnostics(&self, id: TorrentId) -> String {
        let trackers = self
            .remote(&["-t", &id.0.to_string(), "-it"])
            .unwrap_or_else(|e| e);
        let mut out = format!(
            "peers:\n{}\ntrackers:\n{trackers}\nlog ({}):\n{}",
            self.peers(id),
            self.log.display(),
            self.log_tail(30)
        );
        if let Some(deep) = &self.deep_log {
            let _ = write!(out, "\ndebug trace ({}):\n{}", deep.display(), tail(deep, 60));
        }
        out
    }

    /// Kills the daemon now (SIGKILL: no "stopped" announce) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Transmission<'_> {
    fn drop(&mut self) {
        self.kill();
    }
}
