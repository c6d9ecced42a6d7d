use super::*;

const B: u32 = BLOCK_LEN;

fn geometry(pieces: u32, blocks_per_piece: u32) -> Geometry {
    Geometry::new(
        u64::from(pieces) * u64::from(blocks_per_piece * B),
        blocks_per_piece * B,
    )
    .unwrap()
}

fn id(k: u8) -> PeerId {
    PeerId([k; 20])
}

fn bf(len: u32, ones: &[u32]) -> Bitfield {
    let g = Geometry::new(u64::from(len) * u64::from(B), B).unwrap();
    let mut b = Bitfield::new(len);
    for &i in ones {
        b.set(g.piece(i).unwrap());
    }
    b
}

fn data(block: &Block) -> Vec<u8> {
    vec![(block.piece.get() as u8).wrapping_add((block.begin / B) as u8); block.len as usize]
}

/// Delivers `blocks` from `peer`; returns the pieces they completed.
fn deliver(p: &mut Picker, peer: PeerKey, blocks: &[Block]) -> Vec<Assembled> {
    blocks
        .iter()
        .filter_map(|b| match p.received(peer, id(peer as u8), b, &data(b)) {
            Received::Complete(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn rarest_first_then_partial_first() {
    let g = geometry(4, 2);
    let mut p = Picker::new(g, Bitfield::new(4), u64::MAX);
    let all = Bitfield::full(4);
    p.add_peer(&all);
    p.add_peer(&all);
    p.add_peer(&bf(4, &[0, 1, 3]));
    // Piece 2 is the rarest (2 peers have it, 3 have the rest).
    let first = p.pick(1, &all, 1);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].piece.get(), 2);
    // Another peer first gets the open block of the partial piece 2.
    let second = p.pick(2, &all, 1);
    assert_eq!((second[0].piece.get(), second[0].begin), (2, B));
}

#[test]
fn blocks_assemble_into_a_verified_piece() {
    let g = Geometry::new(3 * u64::from(B) + 100, 2 * B).unwrap();
    let mut p = Picker::new(g, Bitfield::new(2), u64::MAX);
    let all = Bitfield::full(2);
    p.add_peer(&all);
    let blocks = p.pick(1, &all, 10);
    assert_eq!(blocks.len(), 4, "two pieces of two blocks, the last one short");
    assert_eq!(
        blocks.iter().map(|b| u64::from(b.len)).sum::<u64>(),
        g.total_len()
    );
    assert_eq!(
        p.pick(2, &all, 10).len(),
        4,
        "endgame: the same blocks are asked of a second peer"
    );
    let mut done = Vec::new();
    for b in &blocks {
        if let Received::Complete(a) = p.received(1, id(1), b, &data(b)) {
            done.push(a);
        }
    }
    assert_eq!(done.len(), 2);
    for a in &done {
        let want: Vec<u8> = g.blocks(a.piece).flat_map(|b| data(&b)).collect();
        assert_eq!(a.bytes(), &want[..]);
        assert_eq!(
            a.bytes().as_ptr() as usize % 4096,
            0,
            "page aligned for the write"
        );
        assert_eq!(a.contributors, vec![(1, id(1))]);
    }
    assert!(!p.verified(done[0].piece, true));
    assert!(p.verified(done[1].piece, true));
    assert!(p.is_complete());
    assert_eq!(p.buffered(), 0);
}

#[test]
fn endgame_duplicates_and_cancels() {
    let g = geometry(1, 2);
    let mut p = Picker::new(g, Bitfield::new(1), u64::MAX);
    let all = Bitfield::full(1);
    let a = p.pick(1, &all, 10);
    assert_eq!(a.len(), 2);
    // Nothing missing, nothing open: peer 2 duplicates peer 1's requests.
    let b = p.pick(2, &all, 10);
    assert_eq!(b, a);
    assert_eq!(p.pick(3, &all, 10), vec![], "at most two holders per block");
    match p.received(2, id(2), &b[0], &data(&b[0])) {
        Received::StoredCancel(other) => assert_eq!(other, 1),
        r => panic!("{r:?}"),
    }
    assert!(matches!(
        p.received(1, id(1), &a[0], &data(&a[0])),
        Received::NotNeeded
    ));
    assert!(matches!(
        p.received(1, id(1), &a[1], &data(&a[1])),
        Received::Complete(_)
    ));
}

#[test]
fn releases_reopen_blocks() {
    let g = geometry(2, 2);
    let mut p = Picker::new(g, Bitfield::new(2), u64::MAX);
    let all = Bitfield::full(2);
    p.add_peer(&all);
    let a = p.pick(1, &all, 4);
    assert_eq!(a.len(), 4);
    p.release_all(1);
    let b = p.pick(2, &all, 4);
    assert_eq!(b.len(), 4, "all reopened for another peer");
    p.release(2, &b[0]);
    assert_eq!(p.pick(3, &all, 4), vec![b[0]]);
    p.remove_peer(3, &all);
    assert_eq!(p.pick(1, &all, 4), vec![b[0]]);
}

#[test]
fn failed_piece_goes_to_one_peer_only() {
    let g = geometry(1, 2);
    let mut p = Picker::new(g, Bitfield::new(1), u64::MAX);
    let all = Bitfield::full(1);
    let blocks = p.pick(1, &all, 2);
    let a = deliver(&mut p, 1, &blocks).pop().unwrap();
    assert!(!p.verified(a.piece, false));
    assert!(!p.is_complete());
    let first = p.pick(2, &all, 1);
    assert_eq!(first.len(), 1);
    assert_eq!(p.pick(3, &all, 5), vec![], "the retry belongs to peer 2 alone");
    assert_eq!(p.pick(2, &all, 5).len(), 1);
}

#[test]
fn a_retry_whose_peer_leaves_goes_whole_to_the_next_peer() {
    let g = geometry(1, 2);
    let mut p = Picker::new(g, Bitfield::new(1), u64::MAX);
    let all = Bitfield::full(1);
    let blocks = p.pick(1, &all, 2);
    let a = deliver(&mut p, 1, &blocks).pop().unwrap();
    assert!(!p.verified(a.piece, false));
    // Peer 2 takes the retry, sends half of it and leaves (banned, say).
    let retry = p.pick(2, &all, 2);
    assert!(matches!(
        p.received(2, id(2), &retry[0], &data(&retry[0])),
        Received::Stored
    ));
    p.remove_peer(2, &all);
    assert_eq!(p.pick(3, &all, 5).len(), 2, "the whole piece is open to peer 3");
    assert_eq!(p.pick(4, &all, 5), vec![], "and it owns the retry alone");
    let assembled = deliver(&mut p, 3, &retry).pop();
    assert_eq!(
        assembled.expect("complete from peer 3").contributors,
        vec![(3, id(3))]
    );
}

#[test]
fn buffered_bytes_are_bounded() {
    let g = geometry(10, 4);
    let piece = u64::from(4 * B);
    let mut p = Picker::new(g, Bitfield::new(10), 3 * piece);
    let all = Bitfield::full(10);
    let blocks = p.pick(1, &all, 100);
    assert_eq!(blocks.len(), 12, "three pieces fit the budget");
    assert_eq!(p.buffered(), 3 * piece);
    // One more piece never starts past the budget, however many peers ask.
    assert_eq!(p.pick(2, &all, 100), vec![]);
    // A wrong-sized or misaligned block is not stored.
    let b = blocks[0];
    assert!(matches!(
        p.received(1, id(1), &Block { len: 10, ..b }, &[0; 10]),
        Received::NotNeeded
    ));
}

#[test]
fn random_swarm_always_completes() {
    // Peers with random subsets, random choking and departures: every piece ends verified
    // exactly once and the buffer budget is never exceeded.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..20 {
        let g = Geometry::new(37 * u64::from(B) + 5, 3 * B).unwrap();
        let n = g.piece_count();
        let budget = 4 * u64::from(3 * B);
        let mut p = Picker::new(g, Bitfield::new(n), budget);
        let peers: Vec<Bitfield> = (0..4)
            .map(|k| {
                if k == 0 {
                    return Bitfield::full(n);
                }
                let ones: Vec<u32> = (0..n).filter(|_| rnd(2) == 0).collect();
                bf(n, &ones)
            })
            .collect();
        for b in &peers {
            p.add_peer(b);
        }
        let mut inflight: Vec<(u64, Block)> = Vec::new();
        let mut verified = vec![0u32; n as usize];
        let mut steps = 0;
        while !p.is_complete() {
            steps += 1;
            assert!(steps < 100_000, "round {round} stuck");
            let k = rnd(4);
            match rnd(10) {
                0 => {
                    p.release_all(k);
                    inflight.retain(|(who, _)| *who != k);
                }
                1..=4 => inflight.extend(
                    p.pick(k, &peers[k as usize], 1 + rnd(8) as usize)
                        .into_iter()
                        .map(|b| (k, b)),
                ),
                _ if !inflight.is_empty() => {
                    let (who, b) = inflight.swap_remove(rnd(inflight.len() as u64) as usize);
                    if let Received::Complete(a) = p.received(who, id(who as u8), &b, &data(&b)) {
                        // Buffers are reused: the piece must hold exactly its own blocks.
                        let want: Vec<u8> = g.blocks(a.piece).flat_map(|b| data(&b)).collect();
                        assert_eq!(a.bytes(), &want[..], "round {round}: piece {}", a.piece);
                        let ok = rnd(5) != 0;
                        let piece = a.piece;
                        p.recycle(a.data);
                        p.verified(piece, ok);
                        if ok {
                            verified[piece.as_usize()] += 1;
                        }
                    }
                }
                _ => {}
            }
            assert!(p.buffered() <= budget.max(u64::from(3 * B)));
        }
        assert!(verified.iter().all(|&v| v == 1), "round {round}: {verified:?}");
    }
}

#[test]
fn a_partial_fetch_picks_only_wanted_pieces_and_completes_on_them() {
    let g = geometry(6, 2);
    // Piece 4 was had already (a resume check found it); 1, 2 and 4 are wanted.
    let mut p = Picker::new(g, bf(6, &[4]), u64::MAX).with_wanted(bf(6, &[1, 2, 4]));
    let all = Bitfield::full(6);
    p.add_peer(&all);
    assert!(!p.is_complete());
    assert!(p.needs(1) && p.needs(2));
    assert!(
        !p.needs(0) && !p.needs(3) && !p.needs(4) && !p.needs(5),
        "skipped or had"
    );
    assert!(!p.wants_from(&bf(6, &[0, 3, 4, 5])), "nothing wanted there");
    assert!(p.wants_from(&bf(6, &[0, 2])));
    let progress = p.progress();
    assert_eq!(
        (progress.pieces_have, progress.pieces_total),
        (1, 3),
        "counted over wanted pieces"
    );
    assert_eq!(progress.total_bytes, 3 * u64::from(2 * B));
    let blocks = p.pick(1, &all, 100);
    let mut picked: Vec<u32> = blocks.iter().map(|b| b.piece.get()).collect();
    picked.dedup();
    picked.sort_unstable();
    assert_eq!(picked, [1, 2], "only wanted pieces, never a skipped one");
    assert!(
        p.pick(2, &all, 100)
            .iter()
            .all(|b| [1, 2].contains(&b.piece.get())),
        "endgame stays within the wanted set"
    );
    let done = deliver(&mut p, 1, &blocks);
    assert_eq!(done.len(), 2);
    assert!(!p.verified(done[0].piece, true));
    assert!(
        p.verified(done[1].piece, true),
        "the last wanted piece completes the fetch"
    );
    assert!(p.is_complete() && !p.have().is_full());
    assert!(p.pick(1, &all, 100).is_empty());
    assert_eq!(p.progress().have_bytes, p.progress().total_bytes);
    assert_eq!(
        p.have_bytes(),
        3 * u64::from(2 * B),
        "every verified piece, for the tracker"
    );
}

#[test]
fn wanted_bytes_count_the_short_last_piece() {
    let g = Geometry::new(3 * u64::from(B) + 100, B).unwrap();
    let p = Picker::new(g, Bitfield::new(4), u64::MAX).with_wanted(bf(4, &[0, 3]));
    assert_eq!(p.progress().total_bytes, u64::from(B) + 100);
    let none = Picker::new(g, Bitfield::new(4), u64::MAX).with_wanted(Bitfield::new(4));
    assert!(none.is_complete(), "nothing wanted: complete at once");
    let all = Picker::new(g, Bitfield::full(4), u64::MAX);
    assert_eq!(all.progress().have_bytes, 3 * u64::from(B) + 100);
    assert_eq!(all.have_bytes(), 3 * u64::from(B) + 100);
}

#[test]
fn torrents_of_one_session_share_its_memory_budget_and_none_starves() {
    let g = geometry(8, 1);
    let piece = u64::from(B);
    let budget = MemoryBudget::new(3 * piece);
    let all = Bitfield::full(8);
    let mut a = Picker::new(g, Bitfield::new(8), u64::MAX).with_budget(budget.clone());
    let mut b = Picker::new(g, Bitfield::new(8), u64::MAX).with_budget(budget.clone());
    a.add_peer(&all);
    b.add_peer(&all);
    // A takes the whole session budget.
    let got_a = a.pick(1, &all, 10);
    assert_eq!(got_a.len(), 3);
    assert_eq!(budget.used(), 3 * piece);
    // B has nothing in progress: it may start one piece anyway, but no second.
    assert_eq!(b.pick(1, &all, 10).len(), 1);
    assert_eq!(budget.used(), 4 * piece);
    // A piece of A verified gives its bytes back; a dropped picker gives back the rest.
    let done = deliver(&mut a, 1, &got_a[..1]);
    assert_eq!(done.len(), 1);
    a.verified(done[0].piece, true);
    assert_eq!(budget.used(), 3 * piece);
    assert!(b.pick(1, &all, 10).is_empty(), "still full");
    drop(a);
    assert_eq!(budget.used(), piece);
    assert_eq!(b.pick(1, &all, 10).len(), 2);
    assert_eq!(budget.used(), 3 * piece);
}
