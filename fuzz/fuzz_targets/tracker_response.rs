//! What the engine's tracker client parses from a tracker it does not trust: announce and
//! scrape responses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use share_proto::announce::{AnnounceResponse, ScrapeResponse};

fuzz_target!(|data: &[u8]| {
    let _ = AnnounceResponse::from_bencode(data);
    let _ = ScrapeResponse::from_bencode(data);
});
