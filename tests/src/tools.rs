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
    skip(&format!("`{tool}` is not installed"), package, test)
}

/// A Python 3 that can `import module` (Debian's `/usr/bin/python3` first: the module comes
/// from a Debian package), or `None` after recording why `test` is skipped. Panics under
/// `CI=true` when there is none.
pub fn require_python_module(module: &str, package: &str, test: &str) -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/python3");
    let candidates = [Some(debian), which("python3")];
    for python in candidates.into_iter().flatten() {
        let imports = std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if imports {
            return Some(python);
        }
    }
    skip(&format!("no python3 can `import {module}`"), package, test)
}

/// Records (or, under `CI=true`, panics with) why `test` cannot run.
fn skip(missing: &str, package: &str, test: &str) -> Option<PathBuf> {
    let why = format!(
        "{test}: skipped, {missing} (apt-get install {package}, or run scripts/install-test-deps.sh)"
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
