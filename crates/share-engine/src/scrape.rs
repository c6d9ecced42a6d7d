//! Scrapes: a swarm's seeders, leechers and completed downloads as its tracker counts them,
//! over HTTP (BEP 48: the announce URL's `announce` becomes `scrape`) or UDP (BEP 15, with
//! the same connect exchange and retries as its announces). `share info --scrape`.

use std::time::Duration;

use share_proto::announce::{scrape_query, scrape_url, ScrapeResponse, ScrapeStats};
use share_proto::InfoHash;

/// Largest scrape body read over HTTP (as for announces).
const MAX_BODY: usize = 1024 * 1024;

/// The counts of `info_hash` at the tracker `url`, within `timeout`; the error is a
/// sanitized sentence without the request URL.
pub async fn scrape(url: &str, info_hash: InfoHash, timeout: Duration) -> Result<ScrapeStats, String> {
    let stats = if url.starts_with("udp://") {
        crate::udp_tracker::scrape(url, info_hash, timeout).await
    } else if url.starts_with("http://") || url.starts_with("https://") {
        http(url, info_hash, timeout).await
    } else {
        Err("not an HTTP or UDP tracker".into())
    };
    stats.map_err(|e| share_proto::sanitize::sanitize(&e))
}

async fn http(url: &str, info_hash: InfoHash, timeout: Duration) -> Result<ScrapeStats, String> {
    let base = scrape_url(url).ok_or("its announce URL has no scrape form (BEP 48)")?;
    let sep = if base.contains('?') { '&' } else { '?' };
    let full = format!("{base}{sep}{}", scrape_query(&[info_hash]));
    let chain = |e: reqwest::Error| crate::error::chain(&e.without_url());
    let client = reqwest::Client::builder().build().map_err(chain)?;
    let mut resp = client.get(full).timeout(timeout).send().await.map_err(chain)?;
    if !resp.status().is_success() {
        return Err(format!("HTTP status {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(chain)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("response larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let r = ScrapeResponse::from_bencode(&body).map_err(|e| e.to_string())?;
    r.files
        .into_iter()
        .find(|(h, _)| *h == info_hash)
        .map(|(_, s)| s)
        .ok_or_else(|| "the tracker does not know this torrent".into())
}
