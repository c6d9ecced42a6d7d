//! `share tracker`'s UDP side (BEP 15) with a real client: libtorrent 2.0 (Debian's
//! `python3-libtorrent`) and `share` find each other through `udp://` on `share tracker`
//! only, both ways, and the downloads are byte-identical. A missing module skips the tests
//! locally and fails them under `CI=true`.

mod common;

use common::libtorrent::Libtorrent;
use common::proc::{fetch, seed, tracker};
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

#[test]
fn libtorrent_fetches_from_share_through_share_trackers_udp_side() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("song.bin");
    let data = pattern(4_000_000, 31);
    std::fs::write(&file, &data).unwrap();
    let (_tracker, _, url) = tracker(&["--interval", "5"]);
    let (mut seeder, manifest) = seed(&file, &["-t", &url]);
    seeder.wait(30, "the seeder's UDP announce", |v| v["event"] == "tracker_ok");
    let save = dir.path().join("lt");
    std::fs::create_dir(&save).unwrap();
    let Some(mut lt) = Libtorrent::start(SCRIPT, &["leech", &manifest, save.to_str().unwrap()]) else {
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
    let (_tracker, _, url) = tracker(&["--interval", "5"]);
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
    let Some(mut lt) = Libtorrent::start(
        SCRIPT,
        &["seed", manifest.to_str().unwrap(), seed_dir.to_str().unwrap()],
    ) else {
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

#[test]
fn info_scrape_asks_http_and_udp_trackers_for_the_swarms_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counted.bin");
    std::fs::write(&file, pattern(300_000, 33)).unwrap();
    let (_tracker, http, udp) = tracker(&["--interval", "5"]);
    // A tracker that is down: nothing listens on that port.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/announce", l.local_addr().unwrap())
    };
    let (mut seeder, manifest) = seed(&file, &["-t", &http, "-t", &udp, "-t", &dead]);
    seeder.wait(30, "the seeder's announce", |v| v["event"] == "tracker_ok");
    let out = common::share_json(&["info", "--json", "--scrape", &manifest]);
    let scrapes = out["scrape"].as_array().expect("a scrape list");
    let of = |url: &str| {
        scrapes
            .iter()
            .find(|s| s["url"] == url)
            .unwrap_or_else(|| panic!("{url} in {scrapes:?}"))
    };
    for url in [&http, &udp] {
        let s = of(url);
        assert_eq!(
            (s["complete"].as_u64(), s["incomplete"].as_u64()),
            (Some(1), Some(0)),
            "{s}"
        );
    }
    assert!(
        of(&dead)["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{scrapes:?}"
    );
    // As text, one line per tracker, named by host and path.
    let text = common::share(&["info", "--scrape", &manifest]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .filter(|l| l.starts_with("scrape:") && l.contains("1 seeders, 0 leechers"))
            .count()
            == 2,
        "{text}"
    );
    seeder.signal("INT");
    assert_eq!(seeder.exit_code(30), Some(0), "{}", seeder.stderr());
}
