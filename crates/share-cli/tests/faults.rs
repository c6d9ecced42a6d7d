//! Faults around `share fetch` as a process: `kill -9` at random moments (mid-download and
//! mid-resume-check) several times, a disk that fills up, and an output that turns
//! read-only. Each rerun must end byte-identical, and a piece reported verified before a
//! fault must never be downloaded again.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::pattern;
use common::proc::{fetch, seed, Proc};

/// The pieces a run reported verified.
fn verified(p: &Proc) -> BTreeSet<u64> {
    p.seen
        .iter()
        .filter(|v| v["event"] == "piece_verified")
        .filter_map(|v| v["piece"].as_u64())
        .collect()
}

/// Asserts a run fetched none of `before` again; adds what it verified to `before`.
fn no_refetch(run: &Proc, before: &mut BTreeSet<u64>, what: &str) {
    let now = verified(run);
    let again: Vec<_> = now.intersection(before).collect();
    assert!(
        again.is_empty(),
        "{what}: pieces verified before were downloaded again: {again:?}"
    );
    before.extend(now);
}

/// A small xorshift generator; the seed is printed so a failure can be replayed with
/// `SHARE_FAULT_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("SHARE_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("SHARE_FAULT_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn kill_9_at_random_moments_then_rerun_is_identical_and_refetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data = pattern(24 * 1024 * 1024, 11);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "128K"]);
    let out = dir.path().join("out.bin");
    let mut rng = Rng::new();
    let mut done = BTreeSet::new();
    let mut killed = 0;
    for round in 0..5 {
        let mut f = fetch(&manifest, &out, &["--no-seed"]);
        match (round, rng.below(3)) {
            // Before any piece (just after it starts), or in the middle of the resume check.
            (0, _) | (_, 0) => {
                f.wait(60, "start", |v| {
                    v["event"] == "fetching" || v["event"] == "checking"
                });
            }
            // After a random number of verified pieces.
            _ => {
                for _ in 0..1 + rng.below(24) {
                    let v = f.wait(60, "a verified piece", |v| {
                        v["event"] == "piece_verified" || v["event"] == "complete"
                    });
                    if v["event"] == "complete" {
                        break;
                    }
                }
            }
        }
        f.signal("KILL");
        let code = f.exit_code(30);
        no_refetch(&f, &mut done, &format!("round {round}"));
        if code == Some(0) {
            // It finished before the signal landed: start again from a fresh output.
            break;
        }
        assert_eq!(code, None, "killed by the signal: {}", f.stderr());
        killed += 1;
        eprintln!("round {round}: killed with {} pieces verified so far", done.len());
    }
    assert!(killed >= 2, "several runs were killed mid-way ({killed})");
    let mut rerun = fetch(&manifest, &out, &["--no-seed"]);
    rerun.wait_event(120, "complete");
    assert_eq!(rerun.exit_code(30), Some(0), "{}", rerun.stderr());
    no_refetch(&rerun, &mut done, "the final rerun");
    assert_eq!(std::fs::read(&out).unwrap(), data, "byte-identical after kill -9");
}

/// The case the random test above hit once in a while: a run killed during its resume
/// check must not leave a record that says "these files hold nothing" (its check had not
/// said yet what they hold), or the next run trusts that and downloads everything again.
#[test]
fn kill_9_during_the_resume_check_then_rerun_refetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data = pattern(24 * 1024 * 1024, 12);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "128K"]);
    let out = dir.path().join("out.bin");
    let mut done = BTreeSet::new();

    let mut first = fetch(&manifest, &out, &["--no-seed"]);
    for _ in 0..12 {
        first.wait(60, "a verified piece", |v| v["event"] == "piece_verified");
    }
    first.signal("KILL");
    assert_eq!(first.exit_code(30), None, "killed: {}", first.stderr());
    no_refetch(&first, &mut done, "the first run");

    for round in 0..3 {
        let mut f = fetch(&manifest, &out, &["--no-seed"]);
        f.wait(60, "the check", |v| v["event"] == "checking");
        f.signal("KILL");
        assert_eq!(f.exit_code(30), None, "killed: {}", f.stderr());
        no_refetch(&f, &mut done, &format!("check {round}"));
    }

    let mut rerun = fetch(&manifest, &out, &["--no-seed"]);
    rerun.wait_event(120, "complete");
    assert_eq!(rerun.exit_code(30), Some(0), "{}", rerun.stderr());
    no_refetch(&rerun, &mut done, "the final rerun");
    assert_eq!(std::fs::read(&out).unwrap(), data, "byte-identical after kill -9");
}

/// Records a skipped test (locally) or fails it (under `CI=true`), like
/// `share_tests::tools::require`.
fn skip(test: &str, why: &str) {
    let why = format!("{test}: skipped, {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true this test must run");
    }
    eprintln!("{why}");
    if let Some(log) = std::env::var_os("SHARE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{why}");
        }
    }
}

/// A tmpfs mounted for one test, unmounted on drop (even when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Self(at.to_path_buf()))
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The one line `share` printed on stderr.
fn error_line(p: &Proc) -> String {
    let err = p.stderr();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("share: ")).collect();
    assert_eq!(lines.len(), 1, "one error sentence: {err}");
    lines[0].to_string()
}

#[test]
fn a_full_disk_and_a_read_only_output_fail_clearly_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data = pattern(6 * 1024 * 1024, 5);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "64K"]);
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "2m") {
        Ok(m) => m,
        Err(why) => {
            return skip(
                "a_full_disk_and_a_read_only_output_fail_clearly_and_lose_nothing",
                &format!("cannot mount a tmpfs here ({why})"),
            )
        }
    };
    let out = disk.0.join("out.bin");
    let shown = out.display().to_string();

    // The 2 MiB disk fills up a third of the way in.
    let mut full = fetch(&manifest, &out, &["--no-seed"]);
    assert_eq!(full.exit_code(60), Some(1), "{}", full.stderr());
    let line = error_line(&full);
    assert_eq!(
        line,
        format!("share: cannot write {shown}: No space left on device (os error 28)")
    );
    let mut done = BTreeSet::new();
    no_refetch(&full, &mut done, "the full disk");
    assert!(!done.is_empty(), "pieces were verified before the disk filled");

    // Read-only now: refused at once, and the partial file is left as it was.
    let before = std::fs::read(&out).unwrap();
    disk.remount("ro");
    let mut ro = fetch(&manifest, &out, &["--no-seed"]);
    assert_eq!(ro.exit_code(60), Some(1), "{}", ro.stderr());
    let line = error_line(&ro);
    assert!(
        line.starts_with(&format!("share: cannot create {shown}: Read-only file system")),
        "{line}"
    );
    assert!(std::fs::read(&out).unwrap() == before, "nothing changed");

    // Room again: the rerun keeps every verified piece and fetches only the rest.
    disk.remount("rw,size=16m");
    let mut rerun = fetch(&manifest, &out, &["--no-seed"]);
    rerun.wait_event(60, "complete");
    assert_eq!(rerun.exit_code(30), Some(0), "{}", rerun.stderr());
    no_refetch(&rerun, &mut done, "the rerun with room");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

/// `share fetch` under a file-size limit (`prlimit --fsize`), as `ulimit -f` sets it.
fn fetch_limited(manifest: &str, out: &Path, limit: u64) -> Proc {
    Proc::spawn(common::fetch_limited_cmd(manifest, out, limit, &[]))
}

#[test]
fn a_file_size_limit_is_a_clear_error_not_a_signal() {
    if !common::has_prlimit() {
        return skip(
            "a_file_size_limit_is_a_clear_error_not_a_signal",
            "`prlimit` is not installed (apt-get install util-linux)",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    let data = pattern(6 * 1024 * 1024, 6);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &["--piece-size", "64K"]);
    let out = dir.path().join("out.bin");
    let shown = out.display().to_string();
    let limit = 2 * 1024 * 1024;

    // The output cannot even be sized: SIGXFSZ is ignored, so this is an error, not a death.
    let mut f = fetch_limited(&manifest, &out, limit);
    assert_eq!(f.exit_code(60), Some(1), "{}", f.stderr());
    assert_eq!(
        error_line(&f),
        format!("share: cannot size {shown}: File too large (os error 27)")
    );

    // Sized by an earlier run: the writes past the limit fail mid-download.
    std::fs::File::create(&out)
        .unwrap()
        .set_len(data.len() as u64)
        .unwrap();
    let mut f = fetch_limited(&manifest, &out, limit);
    assert_eq!(f.exit_code(60), Some(1), "{}", f.stderr());
    assert_eq!(
        error_line(&f),
        format!("share: cannot write {shown}: File too large (os error 27)")
    );
    let mut done = BTreeSet::new();
    no_refetch(&f, &mut done, "under the limit");

    // Without the limit the rerun keeps what was verified and completes.
    let mut rerun = fetch(&manifest, &out, &["--no-seed"]);
    rerun.wait_event(60, "complete");
    assert_eq!(rerun.exit_code(30), Some(0), "{}", rerun.stderr());
    no_refetch(&rerun, &mut done, "the rerun without a limit");
    assert_eq!(std::fs::read(&out).unwrap(), data);
}
