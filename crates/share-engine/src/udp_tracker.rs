//! The UDP tracker client (BEP 15): a connect exchange for a connection id, then the
//! announce, each request sent again when no answer comes (after 2 s, then doubling) until
//! the announce's time (`Config::announce_timeout`) is spent. BEP 15's 15 s first wait is
//! meant for the internet at large; the overall deadline is what keeps a dead tracker from
//! holding a torrent up.
//!
//! The socket is `connect`ed to the tracker, so datagrams from anyone else are never read;
//! an answer whose transaction id or action is not the one awaited is ignored. At most
//! `MAX_RESPONSE_PEERS` peers are read from an answer.

use std::net::SocketAddr;
use std::time::Duration;

use share_proto::announce::udp::{Request, Response};
use share_proto::announce::{AnnounceRequest, AnnounceResponse, ScrapeStats};
use share_proto::InfoHash;
use tokio::net::UdpSocket;

/// The first wait for an answer; each retry doubles it.
const FIRST_WAIT: Duration = Duration::from_secs(2);

/// `host:port` of a `udp://host:port/...` URL.
fn host_port(url: &str) -> Result<&str, String> {
    let rest = url.strip_prefix("udp://").ok_or("not a udp:// URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || !authority.contains(':') {
        return Err("the URL names no host and port".into());
    }
    Ok(authority)
}

/// Sends `request` and waits for its answer, sending it again after each wait, until
/// `deadline`.
async fn exchange(
    socket: &UdpSocket,
    request: &Request,
    v6: bool,
    deadline: tokio::time::Instant,
) -> Result<Response, String> {
    let bytes = request.encode();
    let mut buf = vec![0u8; 64 * 1024];
    let mut wait = FIRST_WAIT;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err("no answer from the UDP tracker".into());
        }
        socket.send(&bytes).await.map_err(|e| e.to_string())?;
        let until = (now + wait).min(deadline);
        loop {
            let n = match tokio::time::timeout_at(until, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(n)) => n,
                // An ICMP port unreachable: nothing listens there (yet); wait and retry.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(until).await;
                    break;
                }
            };
            let Some(data) = buf.get(..n) else { continue };
            match Response::parse(data, v6) {
                Ok(r) if r.transaction() == request.transaction() => return Ok(r),
                _ => continue,
            }
        }
        wait = wait.saturating_mul(2);
    }
}

/// A socket connected to the UDP tracker at `url`, and the connection id it gave us.
async fn connect(url: &str, deadline: tokio::time::Instant) -> Result<(UdpSocket, u64, bool), String> {
    let target = host_port(url)?;
    let addr: SocketAddr = tokio::time::timeout_at(deadline, tokio::net::lookup_host(target))
        .await
        .map_err(|_| "the tracker's name did not resolve in time".to_string())?
        .map_err(|e| format!("cannot resolve the tracker: {e}"))?
        .next()
        .ok_or("the tracker's name has no address")?;
    let local: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().expect("an address")
    } else {
        "0.0.0.0:0".parse().expect("an address")
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket.connect(addr).await.map_err(|e| e.to_string())?;
    let v6 = addr.is_ipv6();
    let connect = Request::Connect {
        transaction: rand::random(),
    };
    match exchange(&socket, &connect, v6, deadline).await? {
        Response::Connect { connection, .. } => Ok((socket, connection, v6)),
        Response::Error { message, .. } => Err(format!("tracker refused: {message}")),
        _ => Err("the tracker answered the connect request with something else".into()),
    }
}

/// One announce to the UDP tracker at `url`, within `timeout`.
pub(crate) async fn announce(
    url: &str,
    request: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let (socket, connection, v6) = connect(url, deadline).await?;
    let announce = Request::Announce {
        connection,
        transaction: rand::random(),
        request: request.clone(),
    };
    match exchange(&socket, &announce, v6, deadline).await? {
        Response::Error { message, .. } => Err(format!("tracker refused: {message}")),
        other => other
            .into_announce()
            .ok_or_else(|| "the tracker answered the announce with something else".into()),
    }
}

/// One scrape of `info_hash` at the UDP tracker `url`, within `timeout`.
pub(crate) async fn scrape(url: &str, info_hash: InfoHash, timeout: Duration) -> Result<ScrapeStats, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let (socket, connection, v6) = connect(url, deadline).await?;
    let scrape = Request::Scrape {
        connection,
        transaction: rand::random(),
        hashes: vec![info_hash],
    };
    match exchange(&socket, &scrape, v6, deadline).await? {
        Response::Scrape { stats, .. } => stats
            .first()
            .copied()
            .ok_or_else(|| "the tracker's scrape answer is empty".into()),
        Response::Error { message, .. } => Err(format!("tracker refused: {message}")),
        _ => Err("the tracker answered the scrape with something else".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_host_and_port() {
        assert_eq!(
            host_port("udp://tracker.example:6969/announce"),
            Ok("tracker.example:6969")
        );
        assert_eq!(host_port("udp://[::1]:80"), Ok("[::1]:80"));
        assert!(host_port("udp://nohost/announce").is_err());
        assert!(host_port("http://x:1/announce").is_err());
    }

    /// A tracker that drops the first datagrams and answers with a wrong transaction id
    /// first still gets the announce through, by retries; a silent one is an error in time.
    #[tokio::test(start_paused = true)]
    async fn lost_and_stray_answers_are_retried_and_silence_times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", server.local_addr().unwrap());
        let serve = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut seen = 0;
            loop {
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                seen += 1;
                if seen == 1 {
                    continue; // lost
                }
                let req = Request::parse(&buf[..n]).unwrap();
                let stray = Response::Connect {
                    transaction: req.transaction() ^ 1,
                    connection: 1,
                };
                server.send_to(&stray.encode(), from).await.unwrap();
                let answer = match req {
                    Request::Connect { transaction } => Response::Connect {
                        transaction,
                        connection: 42,
                    },
                    Request::Announce {
                        connection: 42,
                        transaction,
                        ..
                    } => Response::Announce {
                        transaction,
                        interval: 60,
                        leechers: 1,
                        seeders: 2,
                        peers: vec!["10.1.1.1:6881".parse().unwrap()],
                    },
                    other => panic!("{other:?}"),
                };
                server.send_to(&answer.encode(), from).await.unwrap();
            }
        });
        let req = AnnounceRequest::new(
            share_proto::InfoHash([3; 20]),
            share_proto::PeerId([4; 20]),
            6881,
            10,
        );
        let got = announce(&url, &req, Duration::from_secs(30)).await.unwrap();
        assert_eq!((got.interval, got.complete, got.peers.len()), (60, Some(2), 1));
        serve.abort();

        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", silent.local_addr().unwrap());
        let err = announce(&url, &req, Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(err, "no answer from the UDP tracker");
    }
}
