//! Bad input gets exit code 2 and one sentence naming the file and what is wrong.

mod common;

use std::path::Path;

use common::{fixtures, share};

/// Runs `share args`, expects exit code 2 and a one-line error; returns it.
fn fails_with_2(args: &[&str]) -> String {
    let out = share(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "share {args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("share: "), "{err}");
    err
}

fn info_of(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = fails_with_2(&["info", path.to_str().unwrap()]);
    assert!(err.contains(path.to_str().unwrap()), "names the file: {err}");
    err
}

#[test]
fn corrupt_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixtures().join("mktorrent-single.torrent")).unwrap();
    let e = info_of(dir.path(), "truncated.torrent", &good[..good.len() / 2]);
    assert!(e.contains("bencode error at byte"), "{e}");
    let e = info_of(dir.path(), "text.torrent", b"this is not bencode");
    assert!(e.contains("bencode error at byte 0"), "{e}");
    let e = info_of(dir.path(), "empty.torrent", b"");
    assert!(
        e.contains("bencode error at byte 0: unexpected end of data"),
        "{e}"
    );
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    let e = info_of(dir.path(), "trailing.torrent", &trailing);
    assert!(
        e.contains(&format!("bencode error at byte {}: trailing bytes", good.len())),
        "{e}"
    );
    let e = info_of(dir.path(), "noinfo.torrent", b"d8:announce3:urle");
    assert!(e.contains("no `info` dictionary"), "{e}");
    let e = info_of(
        dir.path(),
        "type.torrent",
        b"d4:infod6:lengthi1e4:name1:x12:piece length3:abc6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    );
    assert!(e.contains("field `info.piece length`"), "{e}");
    let e = info_of(
        dir.path(),
        "missing.torrent",
        b"d4:infod6:lengthi1e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    );
    assert!(e.contains("name"), "{e}");
    let e = info_of(
        dir.path(),
        "pieces21.torrent",
        b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces21:aaaaaaaaaaaaaaaaaaaaaee",
    );
    assert!(e.contains("not a multiple of 20"), "{e}");
    let e = info_of(
        dir.path(),
        "count.torrent",
        b"d4:infod6:lengthi99999e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    );
    assert!(
        e.contains("holds 1 hashes, but 99999 bytes in pieces of 16384 bytes need 7"),
        "{e}"
    );
    for (name, path) in [
        ("dotdot", "2:..6:passwd"),
        ("absolute", "11:/etc/passwd"),
        ("emptycomp", "0:1:x"),
    ] {
        let data = format!("d4:infod5:filesld6:lengthi1e4:pathl{path}eee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee");
        let e = info_of(dir.path(), &format!("{name}.torrent"), data.as_bytes());
        assert!(e.contains("unsafe file path"), "{name}: {e}");
    }
}

#[test]
fn missing_and_wrong_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.torrent");
    let e = fails_with_2(&["info", missing.to_str().unwrap()]);
    assert!(
        e.contains(&format!("cannot read manifest {}", missing.display())) && e.contains("No such file"),
        "{e}"
    );
    let e = fails_with_2(&["info", dir.path().to_str().unwrap()]);
    assert!(e.contains("is a directory"), "{e}");

    let e = fails_with_2(&["create", missing.to_str().unwrap()]);
    assert!(e.contains(&format!("cannot read {}", missing.display())), "{e}");
    let empty = dir.path().join("empty.iso");
    std::fs::write(&empty, b"").unwrap();
    let e = fails_with_2(&["create", empty.to_str().unwrap()]);
    assert!(e.contains(&format!("{} is empty", empty.display())), "{e}");
    let empty_dir = dir.path().join("nothing");
    std::fs::create_dir(&empty_dir).unwrap();
    let e = fails_with_2(&["create", empty_dir.to_str().unwrap()]);
    assert!(e.contains(&format!("{} is empty", empty_dir.display())), "{e}");
    assert!(
        !dir.path().join("nothing.torrent").exists(),
        "no manifest is left behind"
    );

    let file = dir.path().join("f");
    std::fs::write(&file, b"data").unwrap();
    let e = fails_with_2(&["create", file.to_str().unwrap(), "--piece-size", "100K"]);
    assert!(e.contains("piece size 102400 is not a power of two"), "{e}");
    let e = fails_with_2(&["create", file.to_str().unwrap(), "--tracker", "ftp://x"]);
    assert!(e.contains("tracker URL \"ftp://x\""), "{e}");
    // Usage errors (clap) also exit 2.
    assert_eq!(share(&["create"]).status.code(), Some(2));
    assert_eq!(share(&["frobnicate"]).status.code(), Some(2));
}
