//! Finding the real BitTorrent clients the interop tests run.
//!
//! Locally a missing tool skips the test, and the skip is written to the file named by
//! `SHARE_SKIP_LOG` (which `scripts/test.sh` prints at the end). Under `CI=true` a missing tool
//! is a failure: CI installs them all (`scripts/install-test-deps.sh`).

use std::io::Write;
use std::path::PathBuf;

/// The path of `tool` on `PATH`, or `None` after recording why `test` is skipped.
/// Panics under `CI=true` when the tool is missing.
pub fn require(tool: &str, package: &str, test: &str) -> Option<PathBuf> {
    if let Some(path) = which(tool) {
        return Some(path);
    }
    let why = format!(
        "{test}: skipped, `{tool}` is not installed (apt-get install {package}, or run scripts/install-test-deps.sh)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true every interop tool must be present");
    }
    eprintln!("{why}");
    if let Some(log) = std::env::var_os("SHARE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{why}");
        }
    }
    None
}

/// Looks `tool` up on `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}
