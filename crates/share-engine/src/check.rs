//! The resume check: which pieces of existing output files already match their hashes.
//! Runs on blocking threads (one per hash worker), reporting `Checking` events as it goes:
//! one with `done == 0` first, counts below `total` while hashing, and exactly one with
//! `done == total` when every piece has been hashed. A partial fetch checks only the pieces
//! it wants (`total` counts their bytes). A piece that fails is tried once more from the
//! side file an earlier partial fetch of this output may have left (`selection.rs`); if it
//! verifies there it is written where this fetch keeps it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use share_proto::bitfield::Bitfield;

use crate::error::TorrentError;
use crate::event::Event;
use crate::torrent::Shared;
use share_proto::aligned::aligned_vec;

/// Hashes every piece already on disk but those in `trusted` (verified before, in files
/// unchanged since: `persist.rs`); returns the pieces that match, with the trusted ones.
pub(crate) async fn run(shared: &Arc<Shared>, trusted: Option<Bitfield>) -> Result<Bitfield, TorrentError> {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || check(&s, trusted.as_ref()))
        .await
        .map_err(|e| TorrentError::Internal(e.to_string()))?
}

fn check(shared: &Shared, trusted: Option<&Bitfield>) -> Result<Bitfield, TorrentError> {
    let g = shared.geometry;
    let (wanted, total) = {
        let st = shared.lock();
        (st.picker.wanted().clone(), st.picker.progress().total_bytes)
    };
    let done = AtomicU64::new(0);
    let have = Mutex::new(Bitfield::new(g.piece_count()));
    shared.emit(Event::Checking { done: 0, total });
    let init = || aligned_vec(g.piece_len() as usize);
    share_proto::parallel::for_each_index(
        g.piece_count(),
        shared.config.hash_workers,
        init,
        |(buf, off), i| {
            let Some(piece) = g
                .piece(i)
                .filter(|_| wanted.has_raw(i) && !shared.cancel.is_cancelled())
            else {
                return Ok::<_, TorrentError>(());
            };
            let len = g.len_of(piece) as usize;
            if trusted.is_some_and(|t| t.has(piece)) {
                have.lock().unwrap_or_else(|p| p.into_inner()).set(piece);
                done.fetch_add(len as u64, Ordering::Relaxed);
                return Ok(());
            }
            let data = &mut buf[*off..*off + len];
            let (offset, expected) = (g.piece_offset(piece), shared.meta.info.pieces[piece.as_usize()]);
            let storage = &shared.storage;
            // Unreadable (short file, I/O error) means not there yet, never fatal here.
            let mut ok = storage.read_at(offset, data).is_ok() && share_proto::hash::sha1(data) == expected;
            if !ok && storage.read_aside(offset, data) && share_proto::hash::sha1(data) == expected {
                storage.write_at(offset, data)?;
                ok = true;
            }
            if ok {
                have.lock().unwrap_or_else(|p| p.into_inner()).set(piece);
            }
            let d = done.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
            // `done == total` is left to the one event after every worker has finished, so
            // it comes once and last (workers may emit their counts out of order).
            if i % 16 == 0 && d < total {
                shared.emit(Event::Checking { done: d, total });
            }
            Ok(())
        },
    )?;
    if !shared.cancel.is_cancelled() {
        shared.storage.check_done()?;
    }
    shared.emit(Event::Checking { done: total, total });
    Ok(have.into_inner().unwrap_or_else(|p| p.into_inner()))
}
