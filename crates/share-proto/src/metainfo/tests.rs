use super::*;

/// A tiny bencode writer, independent of serde_bencode, for building test manifests.
pub(crate) enum B<'a> {
    I(i64),
    S(&'a [u8]),
    L(Vec<B<'a>>),
    D(Vec<(&'a str, B<'a>)>),
}

impl B<'_> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            B::I(i) => out.extend(format!("i{i}e").bytes()),
            B::S(s) => {
                out.extend(format!("{}:", s.len()).bytes());
                out.extend_from_slice(s);
            }
            B::L(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.write(out));
                out.push(b'e');
            }
            B::D(d) => {
                out.push(b'd');
                for (k, v) in d {
                    B::S(k.as_bytes()).write(out);
                    v.write(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn single(extra_info: Vec<(&'static str, B<'static>)>, pieces: &'static [u8], length: i64) -> Vec<u8> {
    let mut info = vec![
        ("length", B::I(length)),
        ("name", B::S(b"a.bin")),
        ("piece length", B::I(16384)),
        ("pieces", B::S(pieces)),
    ];
    info.extend(extra_info);
    info.sort_by_key(|(k, _)| *k);
    B::D(vec![
        ("announce", B::S(b"http://127.0.0.1:1/announce")),
        ("info", B::D(info)),
    ])
    .encode()
}

const TWO_HASHES: &[u8] = &[7u8; 40];

#[test]
fn parses_and_hashes_the_raw_info_bytes() {
    let data = single(
        vec![("x-unknown", B::L(vec![B::I(1), B::S(b"kept")]))],
        TWO_HASHES,
        20_000,
    );
    let m = Metainfo::from_bytes(&data).unwrap();
    assert_eq!(m.info.name, "a.bin");
    assert_eq!(m.total_len(), 20_000);
    assert_eq!(m.geometry().piece_count(), 2);
    assert_eq!(m.info.pieces, vec![[7u8; 20]; 2]);
    assert!(!m.info.multi_file && !m.info.private);
    // The hash covers the unknown key: it is the SHA-1 of the raw span, not of a re-encoding.
    let start = data.windows(6).position(|w| w == b"4:info").unwrap() + 6;
    let raw = &data[start..data.len() - 1];
    assert_eq!(m.info_bytes, raw);
    assert_eq!(m.info_hash, InfoHash(sha1(raw)));
    let without = Metainfo::from_bytes(&single(vec![], TWO_HASHES, 20_000)).unwrap();
    assert_ne!(without.info_hash, m.info_hash);
    assert_eq!(m.trackers(), vec!["http://127.0.0.1:1/announce".to_string()]);
}

#[test]
fn multi_file_and_announce_list() {
    let files = B::L(vec![
        B::D(vec![
            ("length", B::I(10)),
            ("path", B::L(vec![B::S(b"dir"), B::S(b"one")])),
        ]),
        B::D(vec![("length", B::I(0)), ("path", B::L(vec![B::S(b"empty")]))]),
        B::D(vec![("length", B::I(20_000)), ("path", B::L(vec![B::S(b"two")]))]),
    ]);
    let info = B::D(vec![
        ("files", files),
        ("name", B::S(b"root")),
        ("piece length", B::I(16384)),
        ("pieces", B::S(TWO_HASHES)),
        ("private", B::I(1)),
    ]);
    let tiers = B::L(vec![
        B::L(vec![B::S(b"http://a/"), B::S(b"http://b/")]),
        B::L(vec![B::S(b"http://a/")]),
    ]);
    let data = B::D(vec![
        ("announce", B::S(b"http://ignored/")),
        ("announce-list", tiers),
        ("comment", B::S(b"hi \xff")),
        ("created by", B::S(b"hand")),
        ("creation date", B::I(1_700_000_000)),
        ("info", info),
    ])
    .encode();
    let m = Metainfo::from_bytes(&data).unwrap();
    assert!(m.info.multi_file && m.info.private);
    assert_eq!(m.info.files.len(), 3);
    assert_eq!(m.layout().files()[2].offset, 10);
    assert_eq!(m.layout().files()[0].path, PathBuf::from("dir/one"));
    assert_eq!(
        m.trackers(),
        vec!["http://a/".to_string(), "http://b/".to_string()]
    );
    assert_eq!(m.comment.as_deref(), Some("hi \u{fffd}"));
    assert_eq!(m.creation_date, Some(1_700_000_000));
}

fn err_of(data: &[u8]) -> String {
    Metainfo::from_bytes(data).unwrap_err().to_string()
}

#[test]
fn errors_name_what_is_wrong() {
    assert_eq!(
        err_of(b"d8:announce"),
        "bencode error at byte 11: unexpected end of data"
    );
    assert_eq!(
        err_of(b"hello"),
        "bencode error at byte 0: not the start of a bencode value"
    );
    assert_eq!(err_of(b"de"), "no `info` dictionary at the top level");
    assert_eq!(err_of(b"d4:infoi1ee"), "field `info`: is not a dictionary");
    assert_eq!(
        err_of(&single(vec![], &[1u8; 41], 20_000)),
        "`info.pieces` is 41 bytes long, not a multiple of 20"
    );
    assert_eq!(
        err_of(&single(vec![], TWO_HASHES, 40_000)),
        "`info.pieces` holds 2 hashes, but 40000 bytes in pieces of 16384 bytes need 3"
    );
    let no_len = B::D(vec![(
        "info",
        B::D(vec![
            ("name", B::S(b"x")),
            ("piece length", B::I(16384)),
            ("pieces", B::S(TWO_HASHES)),
        ]),
    )])
    .encode();
    assert_eq!(
        err_of(&no_len),
        "`info` must have exactly one of `length` (one file) and `files` (a directory)"
    );
    let bad_type = B::D(vec![(
        "info",
        B::D(vec![
            ("length", B::I(1)),
            ("name", B::S(b"x")),
            ("piece length", B::S(b"big")),
            ("pieces", B::S(&[0; 20])),
        ]),
    )])
    .encode();
    let e = err_of(&bad_type);
    assert!(e.starts_with("field `info.piece length`: "), "{e}");
    let missing = B::D(vec![(
        "info",
        B::D(vec![
            ("length", B::I(1)),
            ("piece length", B::I(16384)),
            ("pieces", B::S(&[0; 20])),
        ]),
    )])
    .encode();
    let e = err_of(&missing);
    assert!(e.contains("name"), "{e}");
    let zero = B::D(vec![(
        "info",
        B::D(vec![
            ("length", B::I(1)),
            ("name", B::S(b"x")),
            ("piece length", B::I(0)),
            ("pieces", B::S(&[0; 20])),
        ]),
    )])
    .encode();
    assert_eq!(
        err_of(&zero),
        "`info.piece length` is 0, outside 1 to 67108864 bytes"
    );
    assert_eq!(
        err_of(&single(vec![], b"", 0)),
        "the torrent holds no data (total length is 0)"
    );
}

fn with_paths(paths: Vec<Vec<&'static [u8]>>) -> Vec<u8> {
    let files = B::L(
        paths
            .into_iter()
            .map(|p| {
                B::D(vec![
                    ("length", B::I(10)),
                    ("path", B::L(p.into_iter().map(B::S).collect())),
                ])
            })
            .collect(),
    );
    let n = TWO_HASHES.len() / 20;
    let _ = n;
    B::D(vec![(
        "info",
        B::D(vec![
            ("files", files),
            ("name", B::S(b"root")),
            ("piece length", B::I(16384)),
            ("pieces", B::S(&[0; 20])),
        ]),
    )])
    .encode()
}

#[test]
fn unsafe_and_clashing_paths_are_rejected() {
    let cases: Vec<(Vec<&'static [u8]>, &str)> = vec![
        (vec![b"..", b"etc"], "`.` or `..`"),
        (vec![b"a", b".."], "`.` or `..`"),
        (vec![b"/etc/passwd"], "path separator"),
        (vec![b"a\\..\\b"], "path separator"),
        (vec![b""], "empty component"),
        (vec![b"a", b""], "empty component"),
        (vec![], "no components"),
        (vec![b"nul\0"], "NUL"),
    ];
    for (path, want) in cases {
        let e = err_of(&with_paths(vec![path.clone()]));
        assert!(
            e.contains(want) && e.starts_with("unsafe file path"),
            "{path:?}: {e}"
        );
    }
    assert!(err_of(&with_paths(vec![vec![b"a"], vec![b"a"]])).contains("appears twice"));
    assert!(err_of(&with_paths(vec![vec![b"a"], vec![b"a", b"b"]])).contains("appears twice"));
    let bad_name = B::D(vec![(
        "info",
        B::D(vec![
            ("length", B::I(1)),
            ("name", B::S(b"..")),
            ("piece length", B::I(16384)),
            ("pieces", B::S(&[0; 20])),
        ]),
    )])
    .encode();
    assert!(err_of(&bad_name).starts_with("unsafe file path \"..\""));
    with_paths(vec![vec![b"a", b"b"], vec![b"a", b"c"]]);
    Metainfo::from_bytes(&with_paths(vec![vec![b"a", b"b"], vec![b"a", b"c"]])).unwrap();
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_a_manifest() {
    let data = single(vec![("x", B::I(5))], TWO_HASHES, 20_000);
    for cut in 0..data.len() {
        assert!(Metainfo::from_bytes(&data[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..data.len() {
        for b in [0u8, b'e', b'9', b'd', 0xff] {
            let mut d = data.clone();
            d[i] = b;
            let _ = Metainfo::from_bytes(&d);
        }
    }
}

/// The committed fixture made by libtorrent 2.0.8 (see fixtures/README.md).
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_hybrid_torrent_has_its_pad_files_marked_and_laid_out() {
    let m = Metainfo::from_bytes(&fixture("libtorrent-hybrid.torrent")).unwrap();
    assert_eq!(m.info_hash.to_hex(), "ccbc41cb508535a1c5e20a50b888a78dbcf92725");
    let pads: Vec<(String, u64)> = m
        .info
        .files
        .iter()
        .filter(|f| f.pad)
        .map(|f| (f.path.join("/"), f.length))
        .collect();
    assert_eq!(
        pads,
        vec![
            (".pad/16360".to_string(), 16360),
            (".pad/2768".to_string(), 2768),
            (".pad/4039".to_string(), 4039)
        ]
    );
    let shown: Vec<String> = m.content_files().map(|f| f.path.join("/")).collect();
    assert_eq!(
        shown,
        ["cover.txt", "disc1/track1.bin", "disc1/track2.bin", "empty"]
    );
    assert_eq!(m.content_len(), 24 + 30_000 + 12_345);
    // The stream (and so the pieces) still holds the pads: four whole pieces of 16 KiB.
    assert_eq!(m.total_len(), 4 * 16384);
    assert_eq!(m.geometry().piece_count(), 4);
    let in_layout: Vec<bool> = m.layout().files().iter().map(|f| f.pad).collect();
    assert_eq!(in_layout, [false, true, false, true, false, true, false]);
}

#[test]
fn a_v2_only_torrent_is_refused_with_a_clear_sentence() {
    assert_eq!(
        err_of(&fixture("libtorrent-v2only.torrent")),
        "v2-only torrents are not supported yet (this manifest has `meta version` 2 and no v1 `pieces`)"
    );
    // Without `meta version` 2, a missing `pieces` is just a missing field.
    let no_pieces = B::D(vec![(
        "info",
        B::D(vec![
            ("length", B::I(1)),
            ("name", B::S(b"x")),
            ("piece length", B::I(16384)),
        ]),
    )])
    .encode();
    assert_eq!(err_of(&no_pieces), "field `info`: missing field `pieces`");
}

fn with_raw_files(files: Vec<B<'static>>, name: Vec<(&'static str, B<'static>)>) -> Vec<u8> {
    let mut info = vec![
        ("files", B::L(files)),
        ("piece length", B::I(16384)),
        ("pieces", B::S(&[0; 20])),
    ];
    info.extend(name);
    info.sort_by_key(|(k, _)| *k);
    B::D(vec![("info", B::D(info))]).encode()
}

#[test]
fn a_non_utf8_path_is_read_through_its_utf8_alternative() {
    let file = |with_utf8: bool| {
        let mut d = vec![
            ("length", B::I(10)),
            ("path", B::L(vec![B::S(b"dir"), B::S(b"caf\xe9.txt")])),
        ];
        if with_utf8 {
            d.push((
                "path.utf-8",
                B::L(vec![B::S(b"dir"), B::S("café.txt".as_bytes())]),
            ));
        }
        B::D(d)
    };
    let name = || vec![("name", B::S(b"root"))];
    let m = Metainfo::from_bytes(&with_raw_files(vec![file(true)], name())).unwrap();
    assert_eq!(m.info.files[0].path, ["dir", "café.txt"]);
    assert_eq!(
        err_of(&with_raw_files(vec![file(false)], name())),
        "`info.files[0].path` is not valid UTF-8 (and there is no `info.files[0].path.utf-8` to use instead)"
    );
    // The same for the torrent's name.
    let latin1 = || vec![("name", B::S(b"r\xe9sum\xe9"))];
    assert_eq!(
        err_of(&with_raw_files(vec![file(true)], latin1())),
        "`info.name` is not valid UTF-8 (and there is no `info.name.utf-8` to use instead)"
    );
    let mut both = latin1();
    both.push(("name.utf-8", B::S("résumé".as_bytes())));
    assert_eq!(
        Metainfo::from_bytes(&with_raw_files(vec![file(true)], both))
            .unwrap()
            .info
            .name,
        "résumé"
    );
    // Pad files are exempt from the duplicate check, and still checked for safety.
    let pad = |path: &'static [u8]| {
        B::D(vec![
            ("attr", B::S(b"p")),
            ("length", B::I(6)),
            ("path", B::L(vec![B::S(b".pad"), B::S(path)])),
        ])
    };
    let m = Metainfo::from_bytes(&with_raw_files(vec![file(true), pad(b"6"), pad(b"6")], name())).unwrap();
    assert_eq!(m.content_files().count(), 1);
    assert!(err_of(&with_raw_files(vec![file(true), pad(b"..")], name())).contains("`.` or `..`"));
}
