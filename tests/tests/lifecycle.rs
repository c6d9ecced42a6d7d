//! A torrent's life in a session: checking, downloading, seeding, paused, stopped.
//!
//! A fetch paused half-way closes its peers, is refused to newcomers, keeps the pieces it
//! verified, and completes byte-identical after resuming without fetching them again. A
//! torrent removed from a session is forgotten (its info hash may be added again); removed
//! with its data, its files and the directories that leaves empty go, and nothing else does.

mod swarm_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use share_engine::storage::output_paths;
use share_engine::{
    Config, Event, Limits, Mode, Params, Session, SessionConfig, Torrent, TorrentError, TorrentState,
};
use share_proto::metainfo::Metainfo;
use share_proto::wire::Handshake;
use share_proto::PeerId;
use swarm_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

fn session_config(limits: Limits) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        limits,
        ..SessionConfig::default()
    }
}

fn params(meta: &Arc<Metainfo>, path: &Path, mode: Mode, peers: Vec<std::net::SocketAddr>) -> Params {
    Params {
        meta: meta.clone(),
        paths: output_paths(meta, path),
        root: path.parent().unwrap().to_path_buf(),
        mode,
        trackers: vec![],
        peers,
        config: Config {
            state_dir: Some(path.parent().unwrap().join(".state")),
            ..config()
        },
    }
}

/// A fetch of `meta` into `path` in `session`, from the session `from`.
async fn fetch_from(session: &Session, meta: &Arc<Metainfo>, path: &Path, from: &Session) -> Torrent {
    session
        .add(params(meta, path, Mode::Fetch, vec![from.listen_addr()]))
        .await
        .unwrap()
}

/// Polls `cond` every 10 ms until it holds, with a deadline.
async fn until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn states(events: &[Event]) -> Vec<TorrentState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::State(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_fetch_closes_its_peers_keeps_its_pieces_and_resumes_to_a_byte_identical_file() {
    let file = make_file(8 * MIB, 256 * 1024, vec![]);
    let seeders = Session::start(session_config(Limits::default())).await.unwrap();
    let seed = seeders
        .add(params(&file.meta, &file.path, Mode::Seed, vec![]))
        .await
        .unwrap();
    // 2 MiB/s: the pause comes while most of the file is still to fetch.
    let fetchers = Session::start(session_config(Limits::new(None, Some(2 * MIB as u64))))
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("got.bin");
    let t = fetch_from(&fetchers, &file.meta, &path, &seeders).await;
    let mut rx = t.events();
    let mut seen = wait_for(&mut rx, 30, "a quarter of the pieces", |_| {
        t.stats().pieces_have >= 8
    })
    .await;

    assert!(t.pause(), "the first pause pauses");
    assert!(!t.pause(), "a second pause changes nothing");
    assert_eq!(t.state(), TorrentState::Paused);
    assert_eq!(fetchers.state(t.id()).unwrap(), TorrentState::Paused);
    seen.extend(
        wait_for(
            &mut rx,
            10,
            "the seeder closed as paused",
            |e| matches!(e, Event::PeerDown { reason, .. } if reason == "paused"),
        )
        .await,
    );
    until(10, "the seeder sees no peer", || seed.peers().is_empty()).await;
    let before = t.stats();
    assert!(
        before.pieces_have < before.pieces_total,
        "paused before the end: {before:?}"
    );

    // A newcomer is refused before a byte of ours is sent.
    let mut stream = TcpStream::connect(fetchers.listen_addr()).await.unwrap();
    let hello = Handshake::ours(file.meta.info_hash, PeerId::ours([9; 12])).encode();
    stream.write_all(&hello).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the connection is closed");
    assert!(
        read.is_err() || got.is_empty(),
        "we sent nothing while paused: {got:?}"
    );
    seen.extend(
        wait_for(
            &mut rx,
            10,
            "the newcomer refused as paused",
            |e| matches!(e, Event::PeerRefused { reason, .. } if reason.contains("the torrent is paused")),
        )
        .await,
    );
    assert_eq!(
        t.stats().pieces_have,
        before.pieces_have,
        "nothing arrives while paused"
    );

    assert!(t.resume());
    assert!(!t.resume(), "a second resume changes nothing");
    seen.extend(wait_for(&mut rx, 60, "completion after resuming", is_complete).await);
    seen.extend(
        wait_for(&mut rx, 10, "seeding", |e| {
            matches!(e, Event::State(TorrentState::Seeding))
        })
        .await,
    );
    assert!(std::fs::read(&path).unwrap() == file.data, "byte-identical");
    let after = t.stats();
    eprintln!(
        "paused at {} of {} pieces; payload received in all {} bytes for {} bytes of data",
        before.pieces_have,
        before.pieces_total,
        after.downloaded,
        file.data.len()
    );
    assert!(
        after.downloaded < file.data.len() as u64 + file.data.len() as u64 / 10,
        "the pieces verified before the pause were not fetched again: {} bytes received for {}",
        after.downloaded,
        file.data.len()
    );
    assert_eq!(
        states(&seen),
        [
            TorrentState::Downloading,
            TorrentState::Paused,
            TorrentState::Downloading,
            TorrentState::Seeding
        ]
    );
    fetchers.shutdown().await;
    seeders.shutdown().await;
}

/// A directory torrent `album/{one.bin, disc 2/two.bin}` made in `src`.
fn album(src: &Path) -> Arc<Metainfo> {
    let root = src.join("album");
    std::fs::create_dir_all(root.join("disc 2")).unwrap();
    std::fs::write(root.join("one.bin"), pattern(300_000, 1)).unwrap();
    std::fs::write(root.join("disc 2/two.bin"), pattern(500_000, 2)).unwrap();
    let opts = share_proto::create::CreateOptions {
        piece_len: Some(64 * 1024),
        ..Default::default()
    };
    let (bytes, _) = share_proto::create::create(&root, &opts, 2, &|_| {}).unwrap();
    Arc::new(Metainfo::from_bytes(&bytes).unwrap())
}

async fn complete(t: &Torrent) {
    let mut rx = t.events();
    if !t.is_complete() {
        wait_for(&mut rx, 30, "completion", is_complete).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_torrent_is_forgotten_and_with_its_data_only_its_files_go() {
    let src = tempfile::tempdir().unwrap();
    let meta = album(src.path());
    let seeders = Session::start(session_config(Limits::default())).await.unwrap();
    let _seed = seeders
        .add(params(&meta, &src.path().join("album"), Mode::Seed, vec![]))
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let album_out = out.path().join("album");
    let session = Session::start(session_config(Limits::default())).await.unwrap();
    let t = fetch_from(&session, &meta, &album_out, &seeders).await;
    complete(&t).await;
    let id = t.id();
    assert_eq!(session.state(id).unwrap(), TorrentState::Seeding);

    // Removed without its data: forgotten, files kept.
    assert_eq!(session.remove(id, false).await.unwrap(), 0);
    assert!(session.torrents().is_empty());
    assert!(matches!(session.state(id), Err(TorrentError::NoSuchTorrent(n)) if n == id.0));
    assert!(matches!(session.pause(id), Err(TorrentError::NoSuchTorrent(_))));
    assert_eq!(t.state(), TorrentState::Stopped);
    assert!(album_out.join("one.bin").exists() && album_out.join("disc 2/two.bin").exists());

    // Added again, it checks what it wrote; paused during that check it waits, and resumed
    // it ends seeding without a byte fetched.
    let again = session
        .add(params(
            &meta,
            &album_out,
            Mode::Fetch,
            vec![seeders.listen_addr()],
        ))
        .await
        .expect("the info hash is free again");
    let mut rx = again.events();
    again.pause();
    assert_eq!(again.state(), TorrentState::Paused);
    assert!(again.resume());
    let seen = wait_for(&mut rx, 30, "seeding again", |e| {
        matches!(e, Event::State(TorrentState::Seeding))
    })
    .await;
    let s = states(&seen);
    assert_eq!(s.first(), Some(&TorrentState::Checking), "{s:?}");
    assert!(s.contains(&TorrentState::Paused), "{s:?}");
    assert!(
        !s.contains(&TorrentState::Downloading),
        "nothing was missing: {s:?}"
    );
    assert_eq!(
        again.stats().downloaded,
        0,
        "nothing fetched: the check found it all"
    );

    // Removed with its data: its files and the directory they leave empty go; a file of the
    // user's in the album, and so the album, stay.
    std::fs::write(album_out.join("mine.txt"), b"my notes").unwrap();
    assert_eq!(session.remove(again.id(), true).await.unwrap(), 2);
    assert!(!album_out.join("one.bin").exists());
    assert!(!album_out.join("disc 2").exists(), "emptied, so removed");
    assert_eq!(std::fs::read(album_out.join("mine.txt")).unwrap(), b"my notes");
    assert!(session.torrents().is_empty());
    session.shutdown().await;
    seeders.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_session_resumes_its_torrents_and_skips_a_corrupt_record() {
    let done_file = make_file(2 * MIB, 64 * 1024, vec![]);
    let slow_file = make_file(6 * MIB, 256 * 1024, vec![]);
    let seeders = Session::start(session_config(Limits::default())).await.unwrap();
    for f in [&done_file, &slow_file] {
        seeders
            .add(params(&f.meta, &f.path, Mode::Seed, vec![]))
            .await
            .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join("session-state");
    let with_state = |limits| SessionConfig {
        state_dir: Some(state.clone()),
        ..session_config(limits)
    };
    let (done_path, slow_path) = (out.path().join("done.bin"), out.path().join("slow.bin"));

    // First run: one torrent completes; the other is paused part-way.
    let first = Session::start(with_state(Limits::new(None, Some(4 * MIB as u64))))
        .await
        .unwrap();
    let done = fetch_from(&first, &done_file.meta, &done_path, &seeders).await;
    let slow = fetch_from(&first, &slow_file.meta, &slow_path, &seeders).await;
    complete(&done).await;
    let mut rx = slow.events();
    wait_for(&mut rx, 30, "some of the slow file", |_| {
        slow.stats().pieces_have >= 4
    })
    .await;
    slow.pause();
    let paused_at = slow.stats().pieces_have;
    first.shutdown().await;

    // A record that is not JSON, beside the two good ones.
    let junk = state.join("torrents").join(format!("{}.json", "ab".repeat(20)));
    std::fs::write(&junk, b"{ this is not a record").unwrap();

    let second = Session::start(with_state(Limits::default())).await.unwrap();
    let restored = second.restore(&config()).await;
    assert_eq!(restored.len(), 3, "two torrents and the junk");
    let mut torrents = Vec::new();
    for r in restored {
        match r {
            Ok(t) => torrents.push(t),
            Err(e) => assert!(
                matches!(e, TorrentError::BadState { ref path, .. } if *path == junk),
                "the junk is reported by name: {e}"
            ),
        }
    }
    assert_eq!(torrents.len(), 2, "the good records start despite the junk");
    let by_hash = |h| torrents.iter().find(|t| t.info_hash() == h).unwrap();
    let (done, slow) = (
        by_hash(done_file.meta.info_hash),
        by_hash(slow_file.meta.info_hash),
    );

    // The complete file is trusted: seeding at once, not one byte hashed.
    let mut rx = done.events();
    let seen = wait_for(&mut rx, 10, "seeding", |e| {
        matches!(e, Event::State(TorrentState::Seeding))
    })
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Checking { .. })),
        "an unchanged complete file is not checked again: {seen:?}"
    );
    assert_eq!(done.stats().downloaded, 0);

    // The paused one comes back paused, with its pieces, and completes once resumed.
    assert_eq!(slow.state(), TorrentState::Paused);
    let mut rx = slow.events();
    assert!(slow.resume());
    let seen = wait_for(&mut rx, 60, "the slow file complete", is_complete).await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Checking { .. })),
        "unchanged since it was paused and recorded: its pieces are trusted, not hashed"
    );
    assert!(
        std::fs::read(&slow_path).unwrap() == slow_file.data,
        "byte-identical"
    );
    let received = slow.stats().downloaded;
    let left = slow_file.data.len() as u64 - u64::from(paused_at) * 256 * 1024;
    assert!(
        received <= left,
        "only what was missing at the pause is fetched: {received} bytes, {left} were missing"
    );

    // Removed, a torrent is not restored again.
    second.remove(done.id(), false).await.unwrap();
    second.shutdown().await;
    let third = Session::start(with_state(Limits::default())).await.unwrap();
    let again: Vec<_> = third
        .restore(&config())
        .await
        .into_iter()
        .filter_map(Result::ok)
        .map(|t| t.info_hash())
        .collect();
    assert_eq!(again, [slow_file.meta.info_hash]);
    third.shutdown().await;
    seeders.shutdown().await;
}
