//! `share` as a child process: JSON events read from its stdout on a thread, waited for with
//! deadlines, and the child killed when the handle drops.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `share` (or other JSON-speaking) process.
pub struct Proc {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    events: mpsc::Receiver<Value>,
    pub seen: Vec<Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// Disconnects once the stderr reader has read to the end of the pipe.
    stderr_done: mpsc::Receiver<()>,
}

impl Proc {
    /// Starts `share args` with `--json` expected among `args`.
    pub fn share(args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_share"));
        cmd.args(args);
        Self::spawn(cmd)
    }

    /// Starts `share args` with stdin open for [`Proc::say`].
    pub fn share_talking(args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_share"));
        cmd.args(args);
        Self::start(cmd, Stdio::piped())
    }

    /// Writes one line to the child's stdin.
    pub fn say(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("started with share_talking");
        writeln!(stdin, "{line}").expect("child reads stdin");
        stdin.flush().unwrap();
    }

    /// Starts `cmd` with stdin open for [`Proc::say`].
    pub fn spawn_talking(cmd: Command) -> Self {
        Self::start(cmd, Stdio::piped())
    }

    /// Starts `cmd` with no standard input.
    pub fn spawn(cmd: Command) -> Self {
        Self::start(cmd, Stdio::null())
    }

    fn start(mut cmd: Command, stdin: Stdio) -> Self {
        // No test reaches the public DHT: only those naming their own bootstrap nodes run one.
        if !cmd.get_args().any(|a| a == "--dht-bootstrap") {
            cmd.env("SHARE_NO_DHT", "1");
        }
        // Nor multicasts on the host's LAN: an LSD test turns it on with SHARE_NO_LSD=0.
        if !cmd.get_envs().any(|(k, _)| k == "SHARE_NO_LSD") {
            cmd.env("SHARE_NO_LSD", "1");
        }
        let mut child = cmd
            .env("SHARE_STATE_DIR", super::STATE_DIR)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("process starts");
        let stdin = child.stdin.take();
        let (tx, events) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let (done, stderr_done) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _done = done;
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            stdin,
            events,
            seen: Vec::new(),
            stderr,
            stderr_done,
        }
    }

    /// Waits for an event matching `pred`; panics after `secs` with what was seen.
    pub fn wait(&mut self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => {
                    let tail: Vec<_> = self
                        .seen
                        .iter()
                        .rev()
                        .filter(|v| v["event"] != "progress")
                        .take(10)
                        .collect();
                    panic!(
                        "no {what} within {secs} s; stderr: {}; last events: {tail:#?}",
                        self.stderr()
                    );
                }
            }
        }
    }

    /// Waits for an event named `name`.
    pub fn wait_event(&mut self, secs: u64, name: &str) -> Value {
        self.wait(secs, name, |v| v["event"] == name)
    }

    /// Sends a signal (by number) to the child.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the child to exit, with a deadline; returns its exit code.
    pub fn exit_code(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Read both pipes to their end (the readers hang up there), so the caller sees
                // every event and all of stderr.
                let until = Instant::now() + Duration::from_secs(10);
                while let Ok(v) = self
                    .events
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                {
                    self.seen.push(v);
                }
                let _ = self
                    .stderr_done
                    .recv_timeout(until.saturating_duration_since(Instant::now()));
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {secs} s; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the child's stderr so far satisfies `pred`; panics after `secs` with it.
    pub fn wait_stderr(&self, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let err = self.stderr();
            if pred(&err) {
                return err;
            }
            assert!(Instant::now() < deadline, "{err}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `share seed FILE` on loopback with the embedded tracker (plus `extra` arguments),
/// with stdin open for [`Proc::say`]; returns it and its manifest path once it is seeding.
pub fn seed(file: &std::path::Path, extra: &[&str]) -> (Proc, String) {
    let mut p = Proc::share_talking(&super::seed_args(file, &[&["--json"], extra].concat()));
    let v = p.wait_event(60, "seeding");
    (p, v["manifest"].as_str().unwrap().to_string())
}

/// Starts `share fetch MANIFEST -o OUT --port 0 --json` plus `extra` arguments.
pub fn fetch(manifest: &str, out: &std::path::Path, extra: &[&str]) -> Proc {
    Proc::share(&super::fetch_args(manifest, out, &[&["--json"], extra].concat()))
}

/// The port of the `listen` address an event names (`seeding`, `chatting`).
pub fn listen_port(event: &Value) -> u16 {
    let listen = event["listen"]
        .as_str()
        .expect("the event names its listen address");
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

/// `share tracker --bind 127.0.0.1:0` plus `extra`, once it listens: the process and its
/// announce URLs, HTTP and UDP (polled from its stderr, with a deadline).
pub fn tracker(extra: &[&str]) -> (Proc, String, String) {
    let mut args = vec!["tracker", "--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut t = Proc::share(&args);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let err = t.stderr();
        let url = |scheme: &str| {
            err.lines()
                .filter_map(|l| l.strip_prefix("tracker listening on "))
                .find(|u| u.starts_with(scheme))
                .map(str::to_string)
        };
        if let (Some(http), Some(udp)) = (url("http://"), url("udp://")) {
            return (t, http, udp);
        }
        assert!(Instant::now() < deadline, "tracker did not start: {err}");
        assert!(t.child.try_wait().unwrap().is_none(), "tracker exited: {err}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
