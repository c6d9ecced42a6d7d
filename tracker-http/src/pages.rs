//! The human page at `/` and its JSON twin at `/stats`: totals, then one line per swarm
//! (name where known, info hash, seeders, leechers, completed), at most
//! `max_listed_swarms` lines, sorted by info hash. Names are HTML-escaped.

use serde::Serialize;

use crate::state::{State, Totals};

/// One swarm in `/stats`.
#[derive(Debug, Serialize)]
pub struct SwarmLine {
    /// Hex info hash.
    pub info_hash: String,
    /// Display name, when the embedding program set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seeders.
    pub seeders: u32,
    /// Leechers.
    pub leechers: u32,
    /// Completed downloads counted.
    pub completed: u32,
}

/// The whole of `/stats`.
#[derive(Debug, Serialize)]
pub struct StatsPage {
    /// Totals over all swarms.
    #[serde(flatten)]
    pub totals: Totals,
    /// Leechers in all swarms.
    pub leechers: usize,
    /// Listed swarms (at most the listing cap).
    pub torrents: Vec<SwarmLine>,
}

/// The statistics as a value.
pub fn stats(state: &State) -> StatsPage {
    let totals = state.totals();
    let torrents = state
        .list(state.config().max_listed_swarms)
        .into_iter()
        .map(|s| SwarmLine {
            info_hash: s.info_hash.to_hex(),
            name: state.name(&s.info_hash),
            seeders: s.stats.complete,
            leechers: s.stats.incomplete,
            completed: s.stats.downloaded,
        })
        .collect();
    StatsPage {
        totals,
        leechers: totals.peers - totals.seeders,
        torrents,
    }
}

/// `/stats` as JSON bytes.
pub fn json(state: &State) -> Vec<u8> {
    // Serialising plain structs of strings and integers cannot fail.
    serde_json::to_vec(&stats(state)).unwrap_or_default()
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// `/` as an HTML page.
pub fn html(state: &State) -> String {
    use std::fmt::Write as _;
    let page = stats(state);
    let mut out = String::with_capacity(1024 + page.torrents.len() * 160);
    out.push_str(concat!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>share tracker</title>\n",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{padding:.2em .8em;border-bottom:1px solid #ccc;text-align:right}",
        "td.h,th.h{text-align:left;font-family:monospace}</style></head><body>\n<h1>share tracker</h1>\n"
    ));
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "<p>{} swarms, {} peers ({} seeders, {} leechers).</p>",
        page.totals.swarms, page.totals.peers, page.totals.seeders, page.leechers
    );
    out.push_str("<table>\n<tr><th class=\"h\">name</th><th class=\"h\">info hash</th><th>seeders</th><th>leechers</th><th>completed</th></tr>\n");
    for t in &page.torrents {
        out.push_str("<tr><td class=\"h\">");
        escape(t.name.as_deref().unwrap_or(""), &mut out);
        let _ = writeln!(
            out,
            "</td><td class=\"h\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.info_hash, t.seeders, t.leechers, t.completed
        );
    }
    out.push_str("</table>\n");
    if page.torrents.len() < page.totals.swarms {
        let _ = writeln!(
            out,
            "<p>Only the first {} swarms are listed.</p>",
            page.torrents.len()
        );
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use share_proto::announce::AnnounceRequest;
    use share_proto::{InfoHash, PeerId};

    #[test]
    fn escapes_names_and_lists_swarms() {
        let state = State::new(crate::Config::default());
        let hash = InfoHash([0xab; 20]);
        state
            .announce(
                [127, 0, 0, 1].into(),
                &AnnounceRequest::new(hash, PeerId([1; 20]), 1, 0),
            )
            .unwrap();
        state.set_name(hash, "<script>alert('x')</script>");
        let page = html(&state);
        assert!(page.contains(&hash.to_hex()));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
        let v: serde_json::Value = serde_json::from_slice(&json(&state)).unwrap();
        assert_eq!(v["swarms"], 1);
        assert_eq!(v["torrents"][0]["seeders"], 1);
        assert_eq!(v["torrents"][0]["name"], "<script>alert('x')</script>");
    }
}
