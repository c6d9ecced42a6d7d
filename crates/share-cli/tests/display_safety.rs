//! Nothing raw reaches a terminal or a log: a manifest's name, paths, comment and tracker URL
//! and a tracker's `failure reason` full of escape sequences (CSI, OSC 8 links, OSC 52
//! clipboard writes) and bidi overrides are shown sanitized by `info` and `fetch`, and kept
//! exact (escaped) in JSON; a fatal error is one sentence with no log lines; the embedded
//! tracker says which port it took when 6969 is busy.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proc::{seed, Proc};
use common::{pattern, share};
use share_proto::sanitize::is_bidi_control;

const NAME: &str = "evil\x1b[31mred\x1b]52;c;ZXZpbA==\x07\u{202e}gpj.exe";
const PATH: &str = "a\x1b[2J\u{2066}b\u{9b}31m.bin";
const COMMENT: &str =
    "see \x1b]8;;http://evil.example/\x1b\\here\x1b]8;;\x1b\\ \u{202e}txet \x1b[31mred\x1b]0;title\x07";
const REASON: &str =
    "go away\x1b[31m red\x1b]52;c;ZXZpbA==\x07 \u{202e}txet \x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\";

/// Bencode for the test's manifests, written by hand (independent of our encoder).
enum B {
    I(i64),
    S(Vec<u8>),
    L(Vec<B>),
    D(Vec<(&'static str, B)>),
}

impl B {
    fn s(s: &str) -> Self {
        B::S(s.as_bytes().to_vec())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            B::I(i) => out.extend(format!("i{i}e").bytes()),
            B::S(s) => {
                out.extend(format!("{}:", s.len()).bytes());
                out.extend_from_slice(s);
            }
            B::L(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            B::D(d) => {
                out.push(b'd');
                for (k, v) in d {
                    B::s(k).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// A one-file directory torrent whose every text is hostile, announcing to `announce`.
fn hostile_manifest(dir: &Path, announce: &str) -> String {
    let info = B::D(vec![
        (
            "files",
            B::L(vec![B::D(vec![
                ("length", B::I(10)),
                ("path", B::L(vec![B::s(PATH)])),
            ])]),
        ),
        ("name", B::s(NAME)),
        ("piece length", B::I(16384)),
        ("pieces", B::S(vec![0; 20])),
    ]);
    let torrent = B::D(vec![
        ("announce", B::s(announce)),
        ("comment", B::s(COMMENT)),
        ("info", info),
    ]);
    let mut bytes = Vec::new();
    torrent.encode(&mut bytes);
    let path = dir.join("hostile.torrent");
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// Panics if `bytes` hold an escape, a control character other than a line break, or a bidi
/// control.
fn assert_clean(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n') || is_bidi_control(c);
        assert!(!bad, "{what}: {c:?} at byte {i} of {text:?}");
    }
}

#[test]
fn info_shows_hostile_manifest_text_sanitized_and_json_keeps_it_exact() {
    let dir = tempfile::tempdir().unwrap();
    let announce = "http://t\x1b[31m.example:6969/ann\u{202e}ounce";
    let manifest = hostile_manifest(dir.path(), announce);

    let out = share(&["info", &manifest]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_clean(&out.stdout, "info's stdout");
    assert_clean(&out.stderr, "info's stderr");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("name:       evilredgpj.exe\n"), "{text}");
    assert!(
        text.contains("trackers:   http://t.example:6969/announce\n"),
        "{text}"
    );
    assert!(text.contains("comment:    see here txet red\n"), "{text}");
    assert!(text.contains("  evilredgpj.exe/ab.bin\n"), "{text}");

    let out = share(&["info", "--json", &manifest]);
    assert!(out.status.success());
    assert_clean(&out.stdout, "info --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], NAME, "JSON keeps the exact value");
    assert_eq!(v["comment"], COMMENT);
    assert_eq!(v["files"][0]["path"], PATH);
    assert_eq!(v["trackers"][0], announce);
}

/// A tracker on port 0 that answers every announce with `REASON` as its failure reason.
fn refusing_tracker() -> (u16, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            *count.lock().unwrap() += 1;
            let body = format!("d14:failure reason{}:{REASON}e", REASON.len());
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body.as_bytes());
        }
    });
    (port, asked)
}

/// A child whose stdout and stderr are kept as raw bytes.
struct Captured {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Captured {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let keep = |mut r: Box<dyn Read + Send>| {
            let sink = Arc::new(Mutex::new(Vec::new()));
            let into = sink.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            sink
        };
        let stdout = keep(Box::new(child.stdout.take().unwrap()));
        let stderr = keep(Box::new(child.stderr.take().unwrap()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Polls until `stream` contains `needle`, with a deadline.
    fn wait_for(&self, stream: &Arc<Mutex<Vec<u8>>>, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !String::from_utf8_lossy(&stream.lock().unwrap()).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {secs} s; stdout: {:?}; stderr: {:?}",
                String::from_utf8_lossy(&self.stdout.lock().unwrap()),
                String::from_utf8_lossy(&self.stderr.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C, then the exit code and everything it wrote.
    fn interrupt(mut self) -> (Option<i32>, Vec<u8>, Vec<u8>) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let code = self.child.wait().unwrap().code();
        // The reader threads end at the pipes' end of file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1 {
            assert!(Instant::now() < deadline, "output readers did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
        let take = |s: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *s.lock().unwrap());
        (code, take(&self.stdout), take(&self.stderr))
    }
}

fn fetch_cmd(manifest: &str, out: &Path, json: bool) -> Command {
    let mut cmd = common::share_cmd();
    cmd.args(common::fetch_args(
        manifest,
        out,
        if json { &["--json"] } else { &[] },
    ));
    cmd.env_remove("RUST_LOG");
    cmd
}

#[test]
fn fetch_shows_hostile_names_and_a_tracker_failure_reason_sanitized() {
    let dir = tempfile::tempdir().unwrap();
    let (port, asked) = refusing_tracker();
    let announce = format!("http://127.0.0.1:{port}/ann\x1b[31mounce\u{202e}");
    let manifest = hostile_manifest(dir.path(), &announce);

    // Text: every line is on stderr (no terminal), sanitized, the tracker named by host and path.
    let run = Captured::start(fetch_cmd(&manifest, &dir.path().join("out"), false));
    let name = format!("tracker 127.0.0.1:{port}/announce: tracker refused: go away red txet link");
    run.wait_for(&run.stderr.clone(), &name, 30);
    let (code, stdout, stderr) = run.interrupt();
    assert_eq!(code, Some(130), "{}", String::from_utf8_lossy(&stderr));
    assert_clean(&stdout, "fetch's stdout");
    assert_clean(&stderr, "fetch's stderr");
    let text = String::from_utf8(stderr).unwrap();
    assert!(text.contains("fetching evilredgpj.exe (10 B) into "), "{text}");
    assert!(
        !text.contains("info_hash") && !text.contains('%'),
        "no query quoted: {text}"
    );
    assert!(*asked.lock().unwrap() >= 1);

    // JSON: the failure reason is a sanitized message, the URL the manifest's exact one.
    let run = Captured::start(fetch_cmd(&manifest, &dir.path().join("out2"), true));
    run.wait_for(&run.stdout.clone(), "\"tracker_error\"", 30);
    let (_, stdout, stderr) = run.interrupt();
    assert_clean(&stdout, "fetch --json");
    assert_clean(&stderr, "fetch --json's stderr");
    let events: Vec<serde_json::Value> = stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let fetching = events.iter().find(|e| e["event"] == "fetching").unwrap();
    assert_eq!(fetching["name"], NAME);
    let error = events.iter().find(|e| e["event"] == "tracker_error").unwrap();
    assert_eq!(error["error"], "tracker refused: go away red txet link");
    assert_eq!(error["url"], announce.as_str());
}

#[test]
fn fetch_only_lists_the_files_it_selected_sanitized_and_json_keeps_them_exact() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = hostile_manifest(dir.path(), "http://127.0.0.1:1/announce");
    let mut cmd = fetch_cmd(&manifest, &dir.path().join("out"), false);
    cmd.args(["--only", "a*"]);
    let run = Captured::start(cmd);
    run.wait_for(&run.stderr.clone(), "ab.bin", 30);
    let (code, stdout, stderr) = run.interrupt();
    assert_eq!(code, Some(130), "{}", String::from_utf8_lossy(&stderr));
    assert_clean(&stdout, "fetch --only's stdout");
    assert_clean(&stderr, "fetch --only's stderr");
    let text = String::from_utf8(stderr).unwrap();
    assert!(
        text.contains("fetching 1 of 1 files of evilredgpj.exe (10 B) into "),
        "{text}"
    );
    assert!(text.contains(":\n         10 B  ab.bin\n"), "{text}");

    let mut cmd = fetch_cmd(&manifest, &dir.path().join("out2"), true);
    cmd.args(["--only", "a*"]);
    let run = Captured::start(cmd);
    run.wait_for(&run.stdout.clone(), "\"fetching\"", 30);
    let (_, stdout, _) = run.interrupt();
    assert_clean(&stdout, "fetch --only --json");
    let line = stdout.split(|b| *b == b'\n').next().unwrap();
    let fetching: serde_json::Value = serde_json::from_slice(line).unwrap();
    assert_eq!(fetching["files"], serde_json::json!([PATH]), "the exact path");
}

#[test]
fn an_unreachable_tracker_is_named_by_host_and_path_without_the_query() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manifest = hostile_manifest(dir.path(), &format!("http://127.0.0.1:{port}/announce"));
    let run = Captured::start(fetch_cmd(&manifest, &dir.path().join("out"), false));
    run.wait_for(
        &run.stderr.clone(),
        &format!("tracker 127.0.0.1:{port}/announce: "),
        30,
    );
    let (_, _, stderr) = run.interrupt();
    let text = String::from_utf8(stderr).unwrap();
    let line = text.lines().find(|l| l.starts_with("tracker ")).unwrap();
    assert!(line.contains("Connection refused"), "{line}");
    assert!(
        !line.contains("info_hash") && !line.contains("peer_id") && !line.contains('%'),
        "{line}"
    );
}

/// `share fetch --json` under a file-size limit, so that writes fail mid-download.
fn fetch_limited(manifest: &str, out: &Path, limit: u64, rust_log: Option<&str>) -> Proc {
    let mut cmd = common::fetch_limited_cmd(manifest, out, limit, &["--overwrite"]);
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    Proc::spawn(cmd)
}

#[test]
fn a_fatal_error_is_one_sentence_with_no_log_lines_unless_rust_log_asks() {
    if !common::has_prlimit() {
        eprintln!("skipped: `prlimit` is not installed (apt-get install util-linux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data = pattern(6 * 1024 * 1024, 16);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "64K"]);
    let out = dir.path().join("out.bin");
    // Sized in advance, so the writes past the limit fail one piece after another.
    let presize = || {
        std::fs::File::create(&out)
            .unwrap()
            .set_len(data.len() as u64)
            .unwrap()
    };
    presize();
    let mut f = fetch_limited(&manifest, &out, 2 * 1024 * 1024, None);
    assert_eq!(f.exit_code(60), Some(1), "{}", f.stderr());
    assert_eq!(
        f.stderr(),
        format!(
            "share: cannot write {}: File too large (os error 27)\n",
            out.display()
        ),
        "exactly the one sentence"
    );

    // Asked for, logs appear, and without colour when stderr is not a terminal.
    std::fs::remove_file(&out).unwrap();
    presize();
    let mut f = fetch_limited(&manifest, &out, 2 * 1024 * 1024, Some("share_engine=error"));
    assert_eq!(f.exit_code(60), Some(1), "{}", f.stderr());
    let err = f.stderr();
    assert!(err.contains("ERROR"), "RUST_LOG turns logs on: {err}");
    assert!(!err.contains('\x1b'), "no colour into a pipe: {err:?}");
}

#[test]
fn when_port_6969_is_taken_the_seed_line_names_the_port_it_took() {
    // Hold 6969 for the test if it is free; if it is not, someone else holds it: busy either way.
    let _held = TcpListener::bind("0.0.0.0:6969").ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, pattern(40_000, 3)).unwrap();
    let mut cmd = common::share_cmd();
    cmd.arg("seed")
        .arg(&file)
        .args(["--announce-host", "127.0.0.1", "--port", "0"]);
    let run = Captured::start(cmd);
    run.wait_for(&run.stderr.clone(), "Ctrl-C to stop", 60);
    let (_, _, stderr) = run.interrupt();
    let text = String::from_utf8(stderr).unwrap();
    let line = text.lines().find(|l| l.contains("tracker:")).unwrap();
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a URL with a port: {line}"));
    assert_ne!(port, 6969);
    assert!(
        line.ends_with(&format!("(embedded; port 6969 was taken, so it took {port})")),
        "{line}"
    );
}
