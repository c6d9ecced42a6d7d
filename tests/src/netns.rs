//! Two network namespaces joined by a veth pair, for interop tests with clients that refuse
//! loopback peers (Transmission 3.00 drops every 127.0.0.0/8 address it learns from a tracker:
//! see docs/INTEROP-NOTES.md).
//!
//! [`NetnsPair::create`] makes namespaces `A` and `B` with `10.77.0.1/24` on A's end of the link
//! and `10.77.0.2/24` on B's, loopback up in both, and nothing else: no routes leave the link,
//! so processes inside can reach each other and their own loopback only. Every pair has its
//! own namespaces, so parallel tests can all use the same addresses and ports.
//!
//! - [`Netns::command`] runs any program inside a namespace (`ip netns exec NAME ...`).
//! - [`Netns::listen_tcp`] binds a listening socket *inside* a namespace from this process (the
//!   socket stays there), so an in-process server such as our tracker serves the namespaces.
//! - Dropping a [`Netns`] kills what still runs inside it and deletes it (which also removes
//!   the veth link).
//!
//! Namespaces need root (`CAP_SYS_ADMIN`). [`require_pair`] turns "not permitted" or a missing
//! `ip` into a recorded skip locally and a failure under `CI=true`, like
//! [`crate::tools::require`].

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The address of namespace A on the link.
pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The address of namespace B on the link.
pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Why namespaces could not be made.
#[derive(Debug)]
pub enum NetnsError {
    /// `ip` is not installed.
    NoIpTool,
    /// The kernel refused (not root, or inside a container without `CAP_SYS_ADMIN`).
    NotPermitted(String),
    /// Anything else; the message names the failing command and its output.
    Failed(String),
}

impl NetnsError {
    /// Whether a test should be skipped (locally) rather than failed.
    pub fn is_skip(&self) -> bool {
        matches!(self, Self::NoIpTool | Self::NotPermitted(_))
    }
}

impl fmt::Display for NetnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIpTool => write!(f, "`ip` is not installed (apt-get install iproute2)"),
            Self::NotPermitted(why) => {
                write!(f, "network namespaces are not permitted here (needs root): {why}")
            }
            Self::Failed(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for NetnsError {}

/// One network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

/// Two namespaces joined by a veth pair: `a` has [`ADDR_A`], `b` has [`ADDR_B`].
#[derive(Debug)]
pub struct NetnsPair {
    pub a: Netns,
    pub b: Netns,
    pub addr_a: Ipv4Addr,
    pub addr_b: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<Output, NetnsError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NetnsError::NoIpTool,
            _ => NetnsError::Failed(format!("ip {}: {e}", args.join(" "))),
        })?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let why = format!("ip {}: {}", args.join(" "), stderr);
    if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        Err(NetnsError::NotPermitted(why))
    } else {
        Err(NetnsError::Failed(why))
    }
}

impl Netns {
    /// Creates an empty namespace named `name` with its loopback up.
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        ip(&["netns", "add", name])?;
        let ns = Self {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns list` shows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME args...`.
    fn ip(&self, args: &[&str]) -> Result<Output, NetnsError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`).
    /// Add arguments, environment and stdio as usual; the child's pid is `program`'s own, since
    /// `ip netns exec` execs it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Binds a TCP listener on `addr` inside this namespace, from this process: a short-lived
    /// thread enters the namespace (`setns`), binds, and ends; the socket stays in the
    /// namespace and can be served by any runtime here (`tokio::net::TcpListener::from_std`
    /// after `set_nonblocking(true)`).
    pub fn listen_tcp(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let fd = std::fs::File::open(&path)?;
                rustix::thread::move_into_link_name_space(
                    fd.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                TcpListener::bind(addr)
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
        })
    }

    /// Pids of the processes running inside this namespace.
    pub fn pids(&self) -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in here was started by the test that made the namespace.
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

impl NetnsPair {
    /// Creates namespaces `PREFIX-PID-N-a` and `-b` joined by a veth pair, addresses on the
    /// link only. Names are unique per process and call, so tests can run in parallel.
    pub fn create(prefix: &str) -> Result<Self, NetnsError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let base = format!("{prefix}-{pid}-{n}");
        let a = Netns::create(&format!("{base}-a"))?;
        let b = Netns::create(&format!("{base}-b"))?;
        // Interface names are at most 15 bytes and live in the root namespace until moved.
        let (va, vb) = (format!("sv{pid}x{n}a"), format!("sv{pid}x{n}b"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        let moved = ip(&["link", "set", &va, "netns", a.name()])
            .and_then(|_| ip(&["link", "set", &vb, "netns", b.name()]));
        if let Err(e) = moved {
            let _ = ip(&["link", "del", &va]);
            return Err(e);
        }
        a.ip(&["addr", "add", &format!("{ADDR_A}/24"), "dev", &va])?;
        b.ip(&["addr", "add", &format!("{ADDR_B}/24"), "dev", &vb])?;
        a.ip(&["link", "set", &va, "up"])?;
        b.ip(&["link", "set", &vb, "up"])?;
        // Multicast (LSD's BEP 14 group) goes over the link.
        a.ip(&["route", "add", "224.0.0.0/4", "dev", &va])?;
        b.ip(&["route", "add", "224.0.0.0/4", "dev", &vb])?;
        Ok(Self {
            a,
            b,
            addr_a: ADDR_A,
            addr_b: ADDR_B,
        })
    }
}

/// [`NetnsPair::create`], or `None` after recording why `test` is skipped (no `ip`, or not
/// permitted). Panics under `CI=true` when it is skipped, and on any other failure.
pub fn require_pair(prefix: &str, test: &str) -> Option<NetnsPair> {
    match NetnsPair::create(prefix) {
        Ok(pair) => Some(pair),
        Err(e) if e.is_skip() => {
            skip(test, &e.to_string());
            None
        }
        Err(e) => panic!("{test}: could not set up network namespaces: {e}"),
    }
}

/// Records that `test` is skipped because of `why`: printed, appended to `SHARE_SKIP_LOG`, and
/// a panic under `CI=true`, where every interop prerequisite must be present.
pub fn skip(test: &str, why: &str) {
    let why = format!("{test}: skipped, {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true every interop prerequisite must be present");
    }
    eprintln!("{why}");
    if let Some(log) = std::env::var_os("SHARE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{why}");
        }
    }
}
