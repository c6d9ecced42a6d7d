//! The tracker's announce and scrape handlers on raw query strings, against one tracker state
//! with small caps that lives across runs: parsing never panics, and however many swarms and
//! peers the inputs create, the totals stay within the configured caps.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use share_proto::announce::{parse_scrape_query, AnnounceRequest};
use tracker_http::state::State;
use tracker_http::{routes, Config};

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        State::new(Config {
            max_swarms: 50,
            max_peers: 200,
            max_peers_per_swarm: 20,
            ..Config::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else {
        return;
    };
    let _ = AnnounceRequest::parse_query(query);
    let _ = parse_scrape_query(query, 64);
    let text = String::from_utf8_lossy(query);
    let state = state();
    let from = SocketAddr::from(([10, 0, selector, 1], 6881));
    let response = if selector & 1 == 0 {
        routes::announce(state, Some(from), &text)
    } else {
        routes::scrape(state, &text)
    };
    assert!(response.status().as_u16() < 500);
    let totals = state.totals();
    assert!(totals.swarms <= 50 && totals.peers <= 200, "{totals:?}");
});
