//! `--max-down` and `--max-up` as a user gives them: a 16 MiB transfer under a 4M limit is
//! measured from the first verified piece to the last and must run within 15% of the limit,
//! and a limit that is not a rate is refused before anything starts.

mod common;

use std::time::Instant;

use common::proc::{fetch, seed, Proc};
use common::{pattern, share};

const MIB: usize = 1024 * 1024;
const PIECE: usize = 256 * 1024;
const LEN: usize = 16 * MIB;
const LIMIT: f64 = 4.0 * MIB as f64;

/// Waits for the fetch's first verified piece and then its `complete`, and returns the rate
/// (bytes per second) of everything verified in between.
fn measured_rate(f: &mut Proc) -> f64 {
    f.wait_event(60, "piece_verified");
    let t0 = Instant::now();
    f.wait_event(60, "complete");
    let took = t0.elapsed().as_secs_f64();
    (LEN - PIECE) as f64 / took
}

fn assert_within_15_percent(rate: f64, what: &str) {
    let ratio = rate / LIMIT;
    eprintln!(
        "{what}: {:.2} MiB/s under a 4 MiB/s limit (ratio {ratio:.3})",
        rate / MIB as f64
    );
    assert!(
        (0.85..=1.15).contains(&ratio),
        "{what}: {:.2} MiB/s is not within 15% of the 4 MiB/s limit",
        rate / MIB as f64
    );
}

#[test]
fn max_down_4m_fetches_16_mib_at_4_mib_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limited.bin");
    let data = pattern(LEN, 41);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "256K"]);
    let out = dir.path().join("out.bin");
    let mut f = fetch(&manifest, &out, &["--no-seed", "--max-down", "4M"]);
    let rate = measured_rate(&mut f);
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_within_15_percent(rate, "download");
}

#[test]
fn max_up_4m_seeds_16_mib_at_4_mib_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limited.bin");
    let data = pattern(LEN, 43);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "256K", "--max-up", "4M"]);
    let out = dir.path().join("out.bin");
    let mut f = fetch(&manifest, &out, &["--no-seed"]);
    let rate = measured_rate(&mut f);
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert_within_15_percent(rate, "upload");
}

#[test]
fn a_rate_that_is_not_one_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, b"x").unwrap();
    for (flag, value, says) in [
        (
            "--max-down",
            "fast",
            "expected bytes per second such as 500K, 2M or 1G",
        ),
        ("--max-up", "0", "a rate must be at least 1 byte per second"),
        ("--max-down", "4X", "expected bytes per second"),
    ] {
        let r = share(&["seed", file.to_str().unwrap(), flag, value]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(
            !dir.path().join("f.bin.torrent").exists(),
            "nothing is written before the arguments are valid"
        );
    }
}
