//! The progress ticker: every `progress_interval` it computes the torrent's counters and
//! smoothed rates and publishes them as `Event::Progress` when they changed. A torrent with
//! no peer and nothing moving sleeps until something happens (`Shared::wake_progress`: a
//! peer registers, addresses are queued, its state changes), so a session seeding a
//! thousand idle torrents costs no CPU for their tickers.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::event::{Event, Stats};
use crate::torrent::Shared;

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.progress_interval);
    let (mut last_down, mut last_up, mut last_at) = (0u64, 0u64, Instant::now());
    let (mut down_rate, mut up_rate) = (0f64, 0f64);
    let mut shown: Option<Stats> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.cancel.cancelled() => return,
        }
        let down = shared.downloaded.load(Ordering::Relaxed);
        let up = shared.uploaded.load(Ordering::Relaxed);
        let secs = last_at.elapsed().as_secs_f64().max(1e-3);
        // Exponential smoothing over about two seconds.
        let alpha = (secs / 2.0).min(1.0);
        down_rate += alpha * ((down - last_down) as f64 / secs - down_rate);
        up_rate += alpha * ((up - last_up) as f64 / secs - up_rate);
        // The smoothing never reaches zero by itself: below a byte a second it is zero.
        for rate in [&mut down_rate, &mut up_rate] {
            if *rate < 1.0 {
                *rate = 0.0;
            }
        }
        (last_down, last_up, last_at) = (down, up, Instant::now());
        let stats = {
            let mut st = shared.lock();
            // The activity sample the choice of a slot to displace relies on (`slots.rs`).
            let now = Instant::now();
            for p in st.peers.values_mut() {
                p.note_activity(now);
            }
            // A partial fetch counts the pieces it wants (all of them without a selection).
            let progress = st.picker.progress();
            let seeders = st.peers.seeders();
            st.stats = Stats {
                have_bytes: progress.have_bytes,
                total_bytes: progress.total_bytes,
                pieces_have: progress.pieces_have,
                pieces_total: progress.pieces_total,
                peers: crate::slots::live_peers(&st),
                seeders,
                queued_peers: st.candidates.len(),
                downloaded: down,
                uploaded: up,
                down_rate,
                up_rate,
            };
            st.stats
        };
        if shown == Some(stats) {
            if stats.peers == 0 && down_rate == 0.0 && up_rate == 0.0 {
                // Nothing can move until a peer comes: sleep until something happens.
                tokio::select! {
                    () = shared.progress_wake.notified() => {}
                    () = shared.cancel.cancelled() => return,
                }
                tick.reset();
                last_at = Instant::now();
            }
            continue;
        }
        shown = Some(stats);
        shared.emit(Event::Progress(stats));
    }
}
