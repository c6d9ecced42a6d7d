//! The tracker client: `started`, then an announce every `interval`, `completed` when the
//! download finishes, `stopped` on the way out. A tracker that is down or refuses us is
//! retried with exponential back-off while the torrent carries on with the peers it knows.
//! Tiers (BEP 12) are tried in order until one answers. `http://`, `https://` and (BEP 15,
//! `udp_tracker.rs`) `udp://` trackers are announced to; others are ignored.
//!
//! Error texts are for people: they never quote the request URL (its query is the
//! percent-encoded binary info hash and peer id; `Event::TrackerError` carries the manifest's
//! URL, which front-ends show as host and path), and whatever the tracker wrote (a `failure
//! reason`) is sanitized before it leaves this module.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use share_proto::announce::{AnnounceRequest, AnnounceResponse, Event as AnnounceEvent};
use share_proto::sanitize::sanitize;

use crate::event::Event;
use crate::torrent::Shared;

/// The largest announce response we read: 2,000 peers take 12 KiB compact; 1 MiB is ample.
const MAX_RESPONSE: usize = 1024 * 1024;

/// Announces until `active` is cancelled (the torrent pauses or stops), then says `stopped`.
pub(crate) async fn run(shared: Arc<Shared>, urls: Vec<String>, active: tokio_util::sync::CancellationToken) {
    let urls: Vec<String> = urls.into_iter().filter(|u| announces_to(u)).collect();
    if urls.is_empty() {
        return;
    }
    // One HTTP client for the whole session: its TLS roots are built once, not once per
    // torrent (`Core::http`).
    let client = match shared.session.http() {
        Ok(c) => c,
        Err(error) => {
            return shared.emit(Event::TrackerError {
                url: urls[0].clone(),
                error,
            })
        }
    };
    let key: u32 = rand::random();
    let mut event = AnnounceEvent::Started;
    let mut backoff = shared.config.announce_backoff_min;
    let mut completed_sent = shared.lock().picker.is_complete();
    loop {
        let wait = match announce_any(&shared, &client, &urls, event, key).await {
            Some(resp) => {
                if event == AnnounceEvent::Completed {
                    completed_sent = true;
                }
                event = AnnounceEvent::None;
                backoff = shared.config.announce_backoff_min;
                next_announce(&resp)
            }
            None => {
                let wait = backoff;
                backoff = (backoff * 2).min(shared.config.announce_backoff_max);
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.completed.notified(), if !completed_sent => {
                if event != AnnounceEvent::Started {
                    event = AnnounceEvent::Completed;
                }
            }
            () = active.cancelled() => break,
        }
    }
    // Leaving: tell the tracker, briefly; it will expire us anyway.
    let stop = announce_any(&shared, &client, &urls[..1], AnnounceEvent::Stopped, key);
    let _ = tokio::time::timeout(Duration::from_secs(3), stop).await;
}

/// Whether the tracker client announces to `url`: an `http://`, `https://` or `udp://` one.
pub fn announces_to(url: &str) -> bool {
    ["http://", "https://", "udp://"]
        .iter()
        .any(|s| url.starts_with(s))
}

/// When to announce next: the tracker's `interval`, at least its `min interval`, and always
/// within 5 s ..= 1 h whatever a hostile tracker says (a `min interval` over an hour once made
/// `clamp` panic).
fn next_announce(resp: &AnnounceResponse) -> Duration {
    const FLOOR: u32 = 5;
    const CEILING: u32 = 3600;
    let floor = resp.min_interval.unwrap_or(0).clamp(FLOOR, CEILING);
    Duration::from_secs(u64::from(resp.interval.clamp(floor, CEILING)))
}

async fn announce_any(
    shared: &Arc<Shared>,
    client: &reqwest::Client,
    urls: &[String],
    event: AnnounceEvent,
    key: u32,
) -> Option<AnnounceResponse> {
    // What we lack of the whole torrent: a partial fetch that has what it wants is still
    // no seed.
    let left = {
        let st = shared.lock();
        match shared.geometry.total_len().saturating_sub(st.picker.have_bytes()) {
            _ if st.picker.have().is_full() => 0,
            left => left.max(1),
        }
    };
    let req = AnnounceRequest {
        uploaded: shared.uploaded.load(Ordering::Relaxed),
        downloaded: shared.downloaded.load(Ordering::Relaxed),
        event,
        numwant: Some(if event == AnnounceEvent::Stopped {
            0
        } else {
            shared.config.numwant
        }),
        key: Some(key),
        ..AnnounceRequest::new(shared.info_hash, shared.peer_id, shared.listen_addr.port(), left)
    };
    for url in urls {
        match announce(client, &shared.config, url, &req).await {
            Ok(resp) => {
                tracing::debug!(%url, peers = resp.peers.len(), "announced");
                shared.emit(Event::TrackerOk {
                    url: url.clone(),
                    peers: resp.peers.len(),
                });
                if event != AnnounceEvent::Stopped {
                    shared.add_peers(resp.peers.iter().map(|p| p.addr));
                }
                return Some(resp);
            }
            Err(error) => {
                tracing::debug!(%url, %error, "announce failed");
                shared.emit(Event::TrackerError {
                    url: url.clone(),
                    error,
                });
            }
        }
    }
    None
}

/// One announce; the error is a sanitized sentence without the request URL.
pub(crate) async fn announce(
    client: &reqwest::Client,
    config: &crate::config::Config,
    url: &str,
    req: &AnnounceRequest,
) -> Result<AnnounceResponse, String> {
    let answer = if url.starts_with("udp://") {
        crate::udp_tracker::announce(url, req, config.announce_timeout).await
    } else {
        announce_raw(client, config, url, req).await
    };
    answer.map_err(|e| sanitize(&e))
}

async fn announce_raw(
    client: &reqwest::Client,
    config: &crate::config::Config,
    url: &str,
    req: &AnnounceRequest,
) -> Result<AnnounceResponse, String> {
    // reqwest's errors begin "error sending request for url (<the whole query>)".
    let http = |e: reqwest::Error| crate::error::chain(&e.without_url());
    let mut resp = client
        .get(req.url(url))
        // From connecting to the last byte of the body, as the client's own timeout was.
        .timeout(config.announce_timeout)
        .header(reqwest::header::USER_AGENT, config.client_name.as_str())
        .send()
        .await
        .map_err(http)?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    AnnounceResponse::from_bencode(&body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_announce_stays_within_bounds_whatever_the_tracker_says() {
        let resp = |body: &[u8]| AnnounceResponse::from_bencode(body).unwrap();
        let secs = |body: &[u8]| next_announce(&resp(body)).as_secs();
        assert_eq!(secs(b"d8:intervali1800e5:peers0:e"), 1800);
        assert_eq!(secs(b"d8:intervali0e5:peers0:e"), 5);
        assert_eq!(secs(b"d8:intervali99999999e5:peers0:e"), 3600);
        assert_eq!(secs(b"d8:intervali60e12:min intervali120e5:peers0:e"), 120);
        // A `min interval` over the ceiling used to panic in `clamp`.
        assert_eq!(secs(b"d8:intervali60e12:min intervali4000e5:peers0:e"), 3600);
        assert_eq!(
            secs(b"d8:intervali60e12:min intervali4294967295e5:peers0:e"),
            3600
        );
    }
}
