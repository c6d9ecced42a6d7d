//! `share info`: what a manifest holds, as text or as one JSON object.
//!
//! Everything in a manifest is its author's text. The text output passes each value through
//! the one sanitizer (`share_proto::sanitize`), so no escape sequence, control or bidi
//! character reaches the terminal; the JSON output keeps the exact values, with those
//! characters written as `\uXXXX` escapes. BEP 47 pad files are neither listed nor counted.

use std::path::PathBuf;

use indicatif::HumanBytes;
use share_proto::metainfo::Metainfo;
use share_proto::sanitize::sanitize;

use crate::exit::Outcome;
use crate::manifest;

/// Arguments of `share info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .torrent manifest.
    pub manifest: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also ask each HTTP and UDP tracker how many seeders, leechers and completed
    /// downloads it counts for the torrent (a scrape).
    #[arg(long)]
    pub scrape: bool,
}

/// Time for one tracker's scrape answer.
const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs `share info`.
pub fn run(args: Args) -> Outcome {
    let m = manifest::load(&args.manifest)?;
    let scrapes = if args.scrape { scrape_all(&m)? } else { Vec::new() };
    if args.json {
        let mut v = to_json(&m);
        if args.scrape {
            v["scrape"] = scrapes
                .iter()
                .map(|(url, r)| match r {
                    Ok(s) => serde_json::json!({"url": url, "complete": s.complete, "incomplete": s.incomplete, "downloaded": s.downloaded}),
                    Err(e) => serde_json::json!({"url": url, "error": e}),
                })
                .collect();
        }
        crate::exit::print(&format!(
            "{}
",
            crate::render::json_text(&v)
        ));
    } else {
        let mut text = to_text(&m);
        for (url, r) in &scrapes {
            let said = match r {
                Ok(s) => format!(
                    "{} seeders, {} leechers, {} downloads",
                    s.complete, s.incomplete, s.downloaded
                ),
                Err(e) => format!("no answer: {}", sanitize(e)),
            };
            text.push_str(&format!(
                "scrape:     {}: {said}\n",
                share_proto::sanitize::tracker_name(url)
            ));
        }
        crate::exit::print(&text);
    }
    Ok(())
}

/// Every HTTP and UDP tracker of `m`, scraped at once.
#[allow(clippy::type_complexity)]
fn scrape_all(
    m: &Metainfo,
) -> Result<Vec<(String, Result<share_proto::announce::ScrapeStats, String>)>, crate::exit::Failure> {
    let urls: Vec<String> = m
        .trackers()
        .into_iter()
        .filter(|t| share_engine::announces_to(t))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::exit::Failure::runtime(anyhow::anyhow!("cannot start: {e}")))?;
    let hash = m.info_hash;
    Ok(rt.block_on(async {
        let asks = urls.into_iter().map(|url| async move {
            let r = share_engine::scrape::scrape(&url, hash, SCRAPE_TIMEOUT).await;
            (url, r)
        });
        futures_util::future::join_all(asks).await
    }))
}

fn to_json(m: &Metainfo) -> serde_json::Value {
    let g = m.geometry();
    let files: Vec<_> = m
        .content_files()
        .map(|f| serde_json::json!({ "path": f.path.join("/"), "length": f.length }))
        .collect();
    serde_json::json!({
        "name": m.info.name,
        "info_hash": m.info_hash.to_hex(),
        "total_length": m.content_len(),
        "piece_length": g.piece_len(),
        "piece_count": g.piece_count(),
        "multi_file": m.info.multi_file,
        "files": files,
        "private": m.info.private,
        "trackers": m.trackers(),
        "magnet": share_proto::metainfo::magnet_link(m),
        "comment": m.comment,
        "created_by": m.created_by,
        "creation_date": m.creation_date,
    })
}

fn to_text(m: &Metainfo) -> String {
    use std::fmt::Write;
    let g = m.geometry();
    let mut out = String::new();
    let count = m.content_files().count();
    let total = m.content_len();
    let _ = writeln!(out, "name:       {}", sanitize(&m.info.name));
    let _ = writeln!(out, "info hash:  {}", m.info_hash);
    let _ = writeln!(
        out,
        "size:       {} ({} bytes) in {count} file{}",
        HumanBytes(total),
        total,
        if count == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "pieces:     {} of {}",
        g.piece_count(),
        HumanBytes(u64::from(g.piece_len()))
    );
    let _ = writeln!(out, "private:    {}", if m.info.private { "yes" } else { "no" });
    // Percent-encoded throughout: nothing in it can reach the terminal raw.
    let _ = writeln!(out, "magnet:     {}", share_proto::metainfo::magnet_link(m));
    let trackers = m.trackers();
    if trackers.is_empty() {
        let _ = writeln!(out, "trackers:   none (peers must be given with --peer)");
    }
    for (i, t) in trackers.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}{}",
            if i == 0 { "trackers:   " } else { "            " },
            sanitize(t)
        );
    }
    if let Some(c) = &m.comment {
        let _ = writeln!(out, "comment:    {}", sanitize(c));
    }
    if let Some(c) = &m.created_by {
        let _ = writeln!(out, "created by: {}", sanitize(c));
    }
    if let Some(d) = m.creation_date {
        let _ = writeln!(out, "created on: {} (unix {d})", utc_date(d));
    }
    let _ = writeln!(out, "files:");
    for f in m.content_files() {
        let path = if m.info.multi_file {
            format!("{}/{}", m.info.name, f.path.join("/"))
        } else {
            f.path.join("/")
        };
        let _ = writeln!(
            out,
            "  {:>11}  {}",
            HumanBytes(f.length).to_string(),
            sanitize(&path)
        );
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS UTC` for unix seconds (civil-from-days, proleptic Gregorian).
fn utc_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(-1), "1969-12-31 23:59:59 UTC");
    }
}
