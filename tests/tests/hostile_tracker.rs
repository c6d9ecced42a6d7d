//! A tracker the fetcher cannot trust: one that never answers, one that trickles, one that
//! sends a body of many megabytes, one that sends garbage, and one that hands out 100,000
//! peers nobody runs. Each is reported as a tracker error (the peer list is cut at
//! `MAX_RESPONSE_PEERS` and dialed within `max_peers`), and the download from the honest
//! seeder completes.

mod swarm_support;

use std::time::Duration;

use share_engine::{Config, Event};
use swarm_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const BOGUS_PEERS: u32 = 100_000;

/// Serves each request by the first segment of its path: `/hang`, `/trickle`, `/huge`,
/// `/garbage` or `/crowd`.
async fn hostile_tracker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    base
}

async fn serve(mut stream: TcpStream) {
    let Some(head) = read_http_head(&mut stream).await else {
        return;
    };
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/");
    let mode = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let reply = |body_len: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n")
    };
    match mode {
        "hang" => tokio::time::sleep(Duration::from_secs(60)).await,
        "trickle" => {
            let body = b"d8:intervali60e5:peers0:e";
            let _ = stream.write_all(reply(body.len()).as_bytes()).await;
            for b in body {
                if stream.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        "huge" => {
            let len = 16 * 1024 * 1024;
            let _ = stream.write_all(reply(len).as_bytes()).await;
            let _ = stream.write_all(b"d8:intervali60e5:peers").await;
            let chunk = vec![b'9'; 64 * 1024];
            for _ in 0..len / chunk.len() {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
        "garbage" => {
            let body = b"d8:intervali60e5:peers7:\xff\xff\xff\xff\xff\xff\xffi-0ee\x00";
            let _ = stream.write_all(reply(body.len()).as_bytes()).await;
            let _ = stream.write_all(body).await;
        }
        "crowd" => {
            let mut peers = Vec::with_capacity(BOGUS_PEERS as usize * 6);
            for n in 0..BOGUS_PEERS {
                // 127.1.x.y:9 on loopback: nobody listens, connects are refused at once.
                peers.extend_from_slice(&[127, 1, (n >> 8) as u8, n as u8, 0, 9]);
            }
            let mut body = format!("d8:intervali60e5:peers{}:", peers.len()).into_bytes();
            body.extend_from_slice(&peers);
            body.push(b'e');
            let _ = stream.write_all(reply(body.len()).as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_trackers_are_errors_and_the_download_completes() {
    let base = hostile_tracker().await;
    let trackers: Vec<String> = ["hang", "trickle", "huge", "garbage", "crowd"]
        .iter()
        .map(|m| format!("{base}/{m}/announce"))
        .collect();
    let shared = make_file(2 * 1024 * 1024, 32 * 1024, vec![]);
    let seeder = seed(&shared.meta, &shared.path, vec![], vec![]).await;
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("out.bin");
    let config = Config {
        announce_timeout: Duration::from_secs(1),
        max_peers: 20,
        ..config()
    };
    // The honest seeder joins only after the trackers had their say.
    let f = fetch_with(&shared.meta, &path, trackers.clone(), vec![], config).await;
    let mut events = f.events();
    let seen = wait_for(&mut events, 20, "an answer from the crowd tracker", |e| {
        matches!(e, Event::TrackerOk { .. })
    })
    .await;
    let errors: Vec<(String, String)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::TrackerError { url, error } => Some((url.clone(), error.clone())),
            _ => None,
        })
        .collect();
    for bad in &trackers[..4] {
        assert!(
            errors.iter().any(|(url, _)| url == bad),
            "{bad} reported as an error: {errors:#?}"
        );
    }
    let huge = errors.iter().find(|(u, _)| u == &trackers[2]).unwrap();
    assert!(huge.1.contains("larger than 1048576 bytes"), "{huge:?}");
    let Some(Event::TrackerOk { url, peers }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(url, &trackers[4]);
    assert_eq!(
        *peers,
        2000, // share-proto's MAX_RESPONSE_PEERS
        "a peer list is cut at the parser's cap"
    );

    // Whatever is still waiting from the crowd, a peer the user names is dialed first.
    assert!(f.stats().queued_peers <= 2000);
    f.add_peers([seeder.listen_addr()]);
    wait_for(&mut events, 30, "the download", is_complete).await;
    assert_eq!(std::fs::read(&path).unwrap(), shared.data);
    assert!(f.stats().peers <= 20);
    f.shutdown().await;
    seeder.shutdown().await;
}
