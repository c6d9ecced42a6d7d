//! `share tracker`'s UDP side (BEP 15) with a real client: libtorrent 2.0 (Debian's
//! `python3-libtorrent`) and `share` find each other through `udp://` on `share tracker`
//! only, both ways, and the downloads are byte-identical. A missing module skips the tests
//! locally and fails them under `CI=true`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::proc::{fetch, seed, Proc};
use common::{pattern, share};

const SCRIPT: &str = r#"
import sys, time
import libtorrent as lt
mode, torrent, save = sys.argv[1], sys.argv[2], sys.argv[3]
ses = lt.session({
    'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
    'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
    'alert_mask': lt.alert.category_t.tracker_notification | lt.alert.category_t.error_notification,
})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = save
if mode == 'seed':
    p.flags |= lt.torrent_flags.seed_mode
h = ses.add_torrent(p)
announced = False
deadline = time.time() + 90
while time.time() < deadline:
    for a in ses.pop_alerts():
        if isinstance(a, lt.tracker_reply_alert) and not announced:
            announced = True
            print('announced', flush=True)
        elif isinstance(a, lt.tracker_error_alert):
            print('tracker error: %s' % a.message(), file=sys.stderr, flush=True)
    if mode == 'leech' and h.status().is_seeding:
        print('done', flush=True)
        sys.exit(0)
    time.sleep(0.05)
sys.exit('libtorrent timed out: %s, announced: %s' % (h.status().state, announced))
"#;

/// A libtorrent session running `SCRIPT`; killed on drop.
struct Libtorrent {
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
    fn start(mode: &str, manifest: &str, save: &Path) -> Option<Self> {
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
            .args(["-c", SCRIPT, mode, manifest])
            .arg(save)
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
    fn wait(&mut self, what: &str, secs: u64) {
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
}

/// `share tracker` on port 0: the process and its `udp://` announce URL.
fn udp_tracker() -> (Proc, String) {
    let mut tracker = Proc::share(&["tracker", "--bind", "127.0.0.1:0", "--interval", "5"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(u) = tracker.stderr().lines().find_map(|l| {
            l.strip_prefix("tracker listening on udp://")
                .map(|u| format!("udp://{u}"))
        }) {
            return (tracker, u);
        }
        assert!(
            Instant::now() < deadline,
            "tracker did not start: {}",
            tracker.stderr()
        );
        assert!(
            tracker.child.try_wait().unwrap().is_none(),
            "{}",
            tracker.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn libtorrent_fetches_from_share_through_share_trackers_udp_side() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("song.bin");
    let data = pattern(4_000_000, 31);
    std::fs::write(&file, &data).unwrap();
    let (_tracker, url) = udp_tracker();
    let (mut seeder, manifest) = seed(&file, &["-t", &url]);
    seeder.wait(30, "the seeder's UDP announce", |v| v["event"] == "tracker_ok");
    let save = dir.path().join("lt");
    std::fs::create_dir(&save).unwrap();
    let Some(mut lt) = Libtorrent::start("leech", &manifest, &save) else {
        return;
    };
    lt.wait("announced", 60);
    lt.wait("done", 90);
    assert!(
        std::fs::read(save.join("song.bin")).unwrap() == data,
        "byte-identical"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}

#[test]
fn share_fetches_from_libtorrent_through_share_trackers_udp_side() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("lt");
    std::fs::create_dir(&seed_dir).unwrap();
    let data = pattern(4_000_000, 32);
    std::fs::write(seed_dir.join("film.bin"), &data).unwrap();
    let (_tracker, url) = udp_tracker();
    let manifest = dir.path().join("film.torrent");
    let made = share(&[
        "create",
        seed_dir.join("film.bin").to_str().unwrap(),
        "-t",
        &url,
        "-o",
        manifest.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let Some(mut lt) = Libtorrent::start("seed", manifest.to_str().unwrap(), &seed_dir) else {
        return;
    };
    lt.wait("announced", 60);
    let out = dir.path().join("got.bin");
    let mut f = fetch(manifest.to_str().unwrap(), &out, &["--no-seed"]);
    f.wait_event(90, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(std::fs::read(&out).unwrap() == data, "byte-identical");
    let ok = f
        .seen
        .iter()
        .find(|v| v["event"] == "tracker_ok")
        .expect("announced over UDP");
    assert_eq!(ok["url"].as_str(), Some(url.as_str()));
}
