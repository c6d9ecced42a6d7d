//! libtorrent 2.0 (Debian's `python3-libtorrent`) driven by a Python script, for interop
//! tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Python script driving libtorrent, its stdout read line by line; killed on drop.
pub struct Libtorrent {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Libtorrent {
    /// Runs `script` with `args` under /usr/bin/python3; `None` (the test skips) when
    /// libtorrent is missing, which fails under `CI=true`.
    pub fn start(script: &str, args: &[&str]) -> Option<Self> {
        let python = Path::new("/usr/bin/python3");
        let has = python.is_file()
            && Command::new(python)
                .args(["-c", "import libtorrent"])
                .output()
                .is_ok_and(|o| o.status.success());
        if !has {
            let why =
                "skipped: libtorrent for /usr/bin/python3 is missing (apt-get install python3-libtorrent)";
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
            eprintln!("{why}");
            return None;
        }
        let mut child = Command::new(python)
            .args(["-c", script])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Some(Self { child, lines })
    }

    /// Waits for the line `what` from the script.
    pub fn wait(&mut self, what: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == what => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "libtorrent never said {what:?} (exit: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }

    /// Waits for a line starting with `prefix`; returns the rest of it.
    pub fn wait_prefix(&mut self, prefix: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(_) => panic!(
                    "libtorrent never said {prefix:?}… (exit: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }
}
