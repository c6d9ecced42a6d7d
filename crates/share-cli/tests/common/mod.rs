//! Running the `share` binary from tests.

#![allow(dead_code)]

pub mod libtorrent;
pub mod proc;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The committed fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The state directory every `share` run by the tests uses (resume records): cargo's
/// scratch directory for tests, never the real home. Records are keyed by the output's
/// canonical path, so tests in their own temporary directories never share one.
pub const STATE_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/share-state");

/// `share` as a command with the tests' state directory, and no DHT (tests never reach the
/// public one).
pub fn share_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_share"));
    cmd.env("SHARE_STATE_DIR", STATE_DIR)
        .env("SHARE_NO_DHT", "1")
        .env("SHARE_NO_LSD", "1");
    cmd
}

/// The arguments of `share seed FILE` on loopback, listening and serving its embedded tracker
/// on ports the system picks, plus `extra`.
pub fn seed_args<'a>(file: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "seed",
        file.to_str().unwrap(),
        "--announce-host",
        "127.0.0.1",
        "--port",
        "0",
        "--tracker-port",
        "0",
    ];
    args.extend_from_slice(extra);
    args
}

/// The arguments of `share fetch MANIFEST -o OUT --port 0` plus `extra`.
pub fn fetch_args<'a>(manifest: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["fetch", manifest, "-o", out.to_str().unwrap(), "--port", "0"];
    args.extend_from_slice(extra);
    args
}

/// `share fetch MANIFEST ARGS --peer 127.0.0.1:1 --no-seed` run from `cwd`, for a fetch that
/// must be refused before any peer is contacted (nobody listens at port 1): its exit code and
/// stderr.
pub fn fetch_refused(cwd: &Path, manifest: &Path, args: &[&str]) -> (Option<i32>, String) {
    let r = share_cmd()
        .current_dir(cwd)
        .arg("fetch")
        .arg(manifest)
        .args(args)
        .args(["--peer", "127.0.0.1:1", "--no-seed", "--port", "0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (r.status.code(), String::from_utf8_lossy(&r.stderr).into_owned())
}

/// Whether `prlimit` (util-linux) is installed, for the tests that limit the file size.
pub fn has_prlimit() -> bool {
    Command::new("prlimit").arg("--version").output().is_ok()
}

/// `share fetch MANIFEST -o OUT --port 0 --no-seed --json` plus `extra` under a file-size
/// limit of `limit` bytes (`prlimit --fsize`, as `ulimit -f` sets it), not started yet.
pub fn fetch_limited_cmd(manifest: &str, out: &Path, limit: u64, extra: &[&str]) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--fsize={limit}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_share"))
        .args(fetch_args(manifest, out, &["--no-seed", "--json"]))
        .args(extra)
        .env("SHARE_STATE_DIR", STATE_DIR);
    cmd
}

/// Runs `share` with `args` and no standard input.
pub fn share(args: &[&str]) -> Output {
    share_cmd()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the share binary runs")
}

/// Runs `share` and parses its stdout as one JSON object; panics with stderr on failure.
pub fn share_json(args: &[&str]) -> serde_json::Value {
    let out = share(args);
    assert!(
        out.status.success(),
        "share {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "share {args:?}: bad JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Deterministic bytes that do not repeat within a piece.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(747_796_405).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Runs a real tool and returns its stdout; panics with its stderr if it fails.
pub fn run_tool(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().expect("tool runs");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
