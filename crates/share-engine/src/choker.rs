//! Choking: which peers we upload to. Every `rechoke_interval` the interested peers are
//! ranked by what they gave us since the last round (or, once we seed, by what they took),
//! the best `upload_slots - 1` are unchoked, plus one optimistic unchoke that moves on every
//! `optimistic_interval` so newcomers get a chance to prove themselves. Between rounds a
//! newly interested peer is unchoked at once while a slot is free (in `peer.rs`).

use std::sync::Arc;
use std::time::Instant;

use crate::picker::PeerKey;
use crate::torrent::{PeerCmd, Shared};

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.rechoke_interval);
    let mut last_optimistic = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.cancel.cancelled() => return,
        }
        let rotate = last_optimistic.elapsed() >= shared.config.optimistic_interval;
        if rotate {
            last_optimistic = Instant::now();
        }
        rechoke(&shared, rotate);
    }
}

fn rechoke(shared: &Shared, rotate_optimistic: bool) {
    let slots = shared.config.upload_slots.max(1);
    let mut cmds = Vec::new();
    {
        let mut st = shared.lock();
        let seeding = st.picker.is_complete();
        let mut ranked: Vec<(PeerKey, u64)> = st
            .peers
            .iter()
            .filter(|(_, p)| p.interested)
            .map(|(k, p)| {
                (
                    *k,
                    if seeding {
                        p.up - p.up_at_rechoke
                    } else {
                        p.down - p.down_at_rechoke
                    },
                )
            })
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut unchoke: Vec<PeerKey> = ranked.iter().take(slots - 1).map(|(k, _)| *k).collect();
        let rest: Vec<PeerKey> = ranked.iter().skip(slots - 1).map(|(k, _)| *k).collect();
        let keep = st.optimistic.filter(|k| rest.contains(k) && !rotate_optimistic);
        let optimistic = keep.or_else(|| {
            if rest.is_empty() {
                None
            } else {
                Some(rest[rand::random::<u32>() as usize % rest.len()])
            }
        });
        unchoke.extend(optimistic);
        st.optimistic = optimistic;
        for (k, p) in st.peers.iter_mut() {
            p.up_at_rechoke = p.up;
            p.down_at_rechoke = p.down;
            let want = unchoke.contains(k);
            if want == p.am_choking {
                p.am_choking = !want;
                cmds.push((
                    p.cmd.clone(),
                    if want { PeerCmd::Unchoke } else { PeerCmd::Choke },
                ));
            }
        }
    }
    for (cmd, c) in cmds {
        let _ = cmd.try_send(c);
    }
}
