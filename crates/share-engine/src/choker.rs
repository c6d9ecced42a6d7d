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
        let seen: Vec<Seen> = st
            .peers
            .iter()
            .map(|(k, p)| Seen {
                key: *k,
                interested: p.interested,
                rate: if seeding {
                    p.up - p.up_at_rechoke
                } else {
                    p.down - p.down_at_rechoke
                },
                choking: p.am_choking,
            })
            .collect();
        let pick = rand::random::<u32>() as usize;
        let plan = plan(&seen, slots, st.optimistic, rotate_optimistic, pick);
        st.optimistic = plan.optimistic;
        for p in st.peers.values_mut() {
            p.up_at_rechoke = p.up;
            p.down_at_rechoke = p.down;
        }
        for (keys, unchoke) in [(&plan.unchoke, true), (&plan.choke, false)] {
            for k in keys {
                if let Some(p) = st.peers.get_mut(k) {
                    p.am_choking = !unchoke;
                    cmds.push((
                        p.cmd.clone(),
                        if unchoke { PeerCmd::Unchoke } else { PeerCmd::Choke },
                    ));
                }
            }
        }
    }
    for (cmd, c) in cmds {
        let _ = cmd.try_send(c);
    }
}

/// A connected peer as one rechoke round sees it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    key: PeerKey,
    interested: bool,
    /// Bytes it gave us (or, once we seed, took) since the last round.
    rate: u64,
    /// We are choking it now.
    choking: bool,
}

/// What a round changes: whom to unchoke and whom to choke (only peers whose state
/// changes), and the optimistic peer from now on.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    unchoke: Vec<PeerKey>,
    choke: Vec<PeerKey>,
    optimistic: Option<PeerKey>,
}

/// One rechoke round over `peers` ([`choose`] among the interested), as changes.
fn plan(peers: &[Seen], slots: usize, optimistic: Option<PeerKey>, rotate: bool, pick: usize) -> Plan {
    let candidates: Vec<Candidate> = peers
        .iter()
        .filter(|p| p.interested)
        .map(|p| Candidate {
            key: p.key,
            rate: p.rate,
        })
        .collect();
    let (chosen, optimistic) = choose(&candidates, slots, optimistic, rotate, pick);
    let mut plan = Plan {
        unchoke: Vec::new(),
        choke: Vec::new(),
        optimistic,
    };
    for p in peers {
        match (chosen.contains(&p.key), p.choking) {
            (true, true) => plan.unchoke.push(p.key),
            (false, false) => plan.choke.push(p.key),
            _ => {}
        }
    }
    plan.unchoke.sort_unstable();
    plan.choke.sort_unstable();
    plan
}

/// An interested peer and what it moved since the last round (bytes).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key: PeerKey,
    rate: u64,
}

/// The peers to unchoke: the `slots - 1` best by rate, plus an optimistic one among the rest
/// (kept from the last round unless `rotate`; otherwise the `pick`th of the rest). Returns the
/// set and the optimistic peer.
fn choose(
    candidates: &[Candidate],
    slots: usize,
    optimistic: Option<PeerKey>,
    rotate: bool,
    pick: usize,
) -> (Vec<PeerKey>, Option<PeerKey>) {
    let mut ranked = candidates.to_vec();
    ranked.sort_by(|a, b| b.rate.cmp(&a.rate).then(a.key.cmp(&b.key)));
    let best = slots.saturating_sub(1);
    let mut unchoke: Vec<PeerKey> = ranked.iter().take(best).map(|c| c.key).collect();
    let rest: Vec<PeerKey> = ranked.iter().skip(best).map(|c| c.key).collect();
    let kept = optimistic.filter(|k| !rotate && rest.contains(k));
    // Rotating moves on to someone else when there is anyone else.
    let others: Vec<PeerKey> = rest.iter().copied().filter(|k| Some(*k) != optimistic).collect();
    let pool = if others.is_empty() { &rest } else { &others };
    let optimistic = kept.or_else(|| (!pool.is_empty()).then(|| pool[pick % pool.len()]));
    unchoke.extend(optimistic);
    (unchoke, optimistic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: PeerKey, rate: u64) -> Candidate {
        Candidate { key, rate }
    }

    #[test]
    fn best_rates_plus_one_optimistic() {
        let peers = [c(1, 10), c(2, 500), c(3, 0), c(4, 300), c(5, 20)];
        let (set, opt) = choose(&peers, 3, None, true, 0);
        assert_eq!(&set[..2], &[2, 4], "the two best by rate");
        assert_eq!(opt, Some(5), "optimistic: the first of the rest by the pick");
        assert_eq!(set.len(), 3);
        // Kept between rotations while it is still among the rest.
        let (set, opt) = choose(&peers, 3, Some(3), false, 1);
        assert_eq!((set, opt), (vec![2, 4, 3], Some(3)));
        // Moves on to another peer when it is time, whatever the pick.
        for pick in 0..10 {
            let (_, opt) = choose(&peers, 3, Some(3), true, pick);
            assert!(matches!(opt, Some(5) | Some(1)), "{opt:?}");
        }
    }

    #[test]
    fn everyone_fits_when_few() {
        let (mut set, _) = choose(&[c(7, 0), c(8, 0)], 8, None, true, 0);
        set.sort_unstable();
        assert_eq!(set, vec![7, 8]);
        assert_eq!(choose(&[], 8, Some(3), false, 0), (vec![], None));
    }

    fn seen(key: PeerKey, interested: bool, rate: u64, choking: bool) -> Seen {
        Seen {
            key,
            interested,
            rate,
            choking,
        }
    }

    #[test]
    fn a_round_changes_only_what_must_change() {
        // 1 and 2 are unchoked now; 2 lost interest, 3 gives the most, 4 gives nothing.
        let peers = [
            seen(1, true, 100, false),
            seen(2, false, 900, false),
            seen(3, true, 500, true),
            seen(4, true, 0, true),
        ];
        // Two slots: the best (3) and an optimistic one among the rest (1 or 4).
        let p = plan(&peers, 2, Some(1), false, 0);
        assert_eq!(
            p,
            Plan {
                unchoke: vec![3],
                choke: vec![2],
                optimistic: Some(1)
            }
        );
        // Rotating the optimistic unchoke moves it from 1 to 4.
        let p = plan(&peers, 2, Some(1), true, 0);
        assert_eq!(
            p,
            Plan {
                unchoke: vec![3, 4],
                choke: vec![1, 2],
                optimistic: Some(4)
            }
        );
    }

    #[test]
    fn nobody_interested_chokes_everyone_unchoked() {
        let peers = [seen(1, false, 5, false), seen(2, false, 0, true)];
        let p = plan(&peers, 4, Some(1), false, 0);
        assert_eq!(
            p,
            Plan {
                unchoke: vec![],
                choke: vec![1],
                optimistic: None
            }
        );
    }
}
