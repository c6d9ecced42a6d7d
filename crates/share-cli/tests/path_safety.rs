//! A manifest cannot make `share fetch` write outside `OUT`: names with `..`, absolute names
//! and names with separators are refused as bad input before anything is created, and a
//! symbolic link already inside `OUT` (a directory, a file, or `OUT` itself, however the
//! path is spelt) is refused instead of written through (exit 2). The files the links point
//! at are never touched.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{fetch_refused, share};

/// A multi-file manifest whose one file has the raw path components `path`.
fn manifest_with_path(path: &[&str]) -> Vec<u8> {
    let mut list = String::new();
    for c in path {
        list.push_str(&format!("{}:{c}", c.len()));
    }
    format!(
        "d4:infod5:filesld6:lengthi5e4:pathl{list}eee4:name4:root12:piece lengthi16384e6:pieces20:{}ee",
        "a".repeat(20)
    )
    .into_bytes()
}

/// Every path below `dir`, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `share fetch MANIFEST -o OUT`, refused before any peer is contacted.
fn fetch(manifest: &Path, out: &Path) -> (Option<i32>, String) {
    fetch_refused(Path::new("."), manifest, &["-o", out.to_str().unwrap()])
}

#[test]
fn escaping_names_in_a_manifest_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for (name, path) in [
        ("dotdot", vec!["..", "..", "escaped"]),
        ("inner-dotdot", vec!["a", "..", "..", "escaped"]),
        ("absolute", vec!["/tmp/escaped"]),
        ("separator", vec!["a/../../escaped"]),
        ("backslash", vec!["..\\escaped"]),
        ("dot", vec![".", "escaped"]),
    ] {
        let m = dir.path().join(format!("{name}.torrent"));
        std::fs::write(&m, manifest_with_path(&path)).unwrap();
        let (code, err) = fetch(&m, &work.join("out"));
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(err.contains("unsafe file path"), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
    }
    assert!(tree(&work).is_empty(), "nothing was created: {:?}", tree(&work));
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn symlinks_inside_out_are_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    // A directory torrent: album/disc/track.bin and album/cover.txt.
    let src = dir.path().join("album");
    std::fs::create_dir_all(src.join("disc")).unwrap();
    std::fs::write(src.join("disc/track.bin"), vec![7u8; 40_000]).unwrap();
    std::fs::write(src.join("cover.txt"), b"cover").unwrap();
    let m = dir.path().join("album.torrent");
    let made = share(&[
        "create",
        src.to_str().unwrap(),
        "-o",
        m.to_str().unwrap(),
        "--tracker",
        "http://127.0.0.1:1/announce",
    ]);
    assert!(made.status.success());
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();

    // OUT/disc is a link to a directory outside OUT.
    let out = dir.path().join("out1");
    std::fs::create_dir(&out).unwrap();
    symlink(&outside, out.join("disc")).unwrap();
    let (code, err) = fetch(&m, &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "refusing to write through {}: it is a symbolic link",
            out.join("disc").display()
        )),
        "{err}"
    );

    // OUT/cover.txt is a link to a file outside OUT.
    let out = dir.path().join("out2");
    std::fs::create_dir(&out).unwrap();
    symlink(&victim, out.join("cover.txt")).unwrap();
    let (code, err) = fetch(&m, &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("it is a symbolic link"), "{err}");

    // A single-file torrent whose OUT is itself a link to a file elsewhere.
    let single = dir.path().join("one.bin");
    std::fs::write(&single, vec![1u8; 20_000]).unwrap();
    let sm = dir.path().join("one.torrent");
    let made = share(&[
        "create",
        single.to_str().unwrap(),
        "-o",
        sm.to_str().unwrap(),
        "--tracker",
        "http://127.0.0.1:1/announce",
    ]);
    assert!(made.status.success());
    let link = dir.path().join("out3.bin");
    symlink(&victim, &link).unwrap();
    let (code, err) = fetch(&sm, &link);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("it is a symbolic link"), "{err}");

    assert_eq!(tree(&outside), ["victim.txt"], "nothing new outside OUT");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "the target is untouched"
    );
}

/// Every spelling of a link as the output is refused with a sentence naming it as spelt,
/// and nothing is written through it: `lnk`, `./lnk`, `a/../lnk` (resolved by the kernel,
/// through a linked `a`, not lexically), and a link where the torrent's own directory goes
/// below a `-d` directory. A `-d` directory that is itself a link is the user's choice and
/// is followed (tested with a real download in `output_safety.rs`).
#[test]
fn a_link_as_the_output_is_refused_however_it_is_spelt() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("one.bin");
    std::fs::write(&single, vec![1u8; 20_000]).unwrap();
    let sm = dir.path().join("one.torrent");
    let tracker = ["--tracker", "http://127.0.0.1:1/announce"];
    let made = share(
        &[
            &["create", single.to_str().unwrap(), "-o", sm.to_str().unwrap()],
            &tracker[..],
        ]
        .concat(),
    );
    assert!(made.status.success());
    let work = dir.path().join("work");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(work.join("a")).unwrap();
    std::fs::create_dir_all(elsewhere.join("sub")).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    symlink(&victim, work.join("lnk")).unwrap();
    for spelt in ["lnk", "./lnk", "a/../lnk"] {
        let (code, err) = fetch_refused(&work, &sm, &["-o", spelt]);
        assert_eq!(code, Some(2), "{spelt}: {err}");
        assert_eq!(
            err.trim_end(),
            format!("share: refusing to write through {spelt}: it is a symbolic link"),
            "{spelt}"
        );
    }
    // `b` links to elsewhere/sub, so `b/../lnk` is elsewhere/lnk, whatever `./lnk` is.
    symlink(elsewhere.join("sub"), work.join("b")).unwrap();
    symlink(&victim, elsewhere.join("lnk")).unwrap();
    let (code, err) = fetch_refused(&work, &sm, &["-o", "b/../lnk"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("refusing to write through b/../lnk: it is a symbolic link"),
        "{err}"
    );

    // A directory torrent whose own directory below -d is a link to a directory elsewhere.
    let album = dir.path().join("album");
    std::fs::create_dir_all(album.join("disc")).unwrap();
    std::fs::write(album.join("disc/track.bin"), vec![7u8; 40_000]).unwrap();
    let am = dir.path().join("album.torrent");
    let made = share(
        &[
            &["create", album.to_str().unwrap(), "-o", am.to_str().unwrap()],
            &tracker[..],
        ]
        .concat(),
    );
    assert!(made.status.success());
    let downloads = work.join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    symlink(&elsewhere, downloads.join("album")).unwrap();
    let (code, err) = fetch_refused(&work, &am, &["-d", "downloads"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("refusing to write through downloads/album: it is a symbolic link"),
        "{err}"
    );

    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "the target is untouched"
    );
    assert_eq!(tree(&elsewhere), ["lnk", "sub"], "nothing written through a link");
}
