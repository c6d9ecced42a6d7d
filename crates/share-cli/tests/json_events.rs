//! `--json` sends each event once: a resumed fetch reports its check starting once and ending
//! once, and every peer connection one `peer_up`.

mod common;

use common::pattern;
use common::proc::{fetch, seed};

#[test]
fn a_resumed_fetch_reports_checking_and_each_peer_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    let data = pattern(3_000_000, 21);
    std::fs::write(&file, &data).unwrap();
    let (mut seeder, manifest) = seed(&file, &[]);
    // Half the file is already there (written by hand, so `--overwrite` lets share take it):
    // the fetch checks it, then fetches the rest.
    let out = dir.path().join("out.bin");
    std::fs::write(&out, &data[..data.len() / 2]).unwrap();
    let mut f = fetch(&manifest, &out, &["--no-seed", "--overwrite"]);
    assert_eq!(f.exit_code(60), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let checking: Vec<_> = f.seen.iter().filter(|v| v["event"] == "checking").collect();
    let starts = checking.iter().filter(|v| v["done"] == 0).count();
    let ends = checking.iter().filter(|v| v["done"] == v["total"]).count();
    assert_eq!((starts, ends, checking.len()), (1, 1, 2), "{checking:#?}");
    let ups: Vec<_> = f.seen.iter().filter(|v| v["event"] == "peer_up").collect();
    let peers: std::collections::HashSet<_> = ups.iter().map(|v| v["peer_id"].as_str().unwrap()).collect();
    assert_eq!(ups.len(), peers.len(), "one peer_up per peer: {ups:#?}");
    assert!(
        !ups.is_empty() && ups.iter().all(|v| !v["client"].is_null()),
        "{ups:#?}"
    );
    // The seeder saw the fetcher once too.
    seeder.signal("INT");
    seeder.exit_code(20);
    let ups = seeder.seen.iter().filter(|v| v["event"] == "peer_up").count();
    assert_eq!(ups, 1, "{:#?}", seeder.seen);
}
