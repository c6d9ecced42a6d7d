//! Work spread over threads by index: each thread takes the next index from a shared counter,
//! so fast threads take more, and every thread keeps its own state (a buffer, open files).
//! Used to hash pieces when creating a manifest and when re-checking existing data.

use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `work(&mut state, i)` for every `i` in `0..count` on `threads` scoped threads, each
/// with a `state` made by `init`. Returns the first error; the other threads then stop taking
/// new indexes.
pub fn for_each_index<S, E: Send>(
    count: u32,
    threads: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, u32) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let next = AtomicU32::new(0);
    let worker = || -> Result<(), E> {
        let mut state = init();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return Ok(());
            }
            if let Err(e) = work(&mut state, i) {
                next.store(count, Ordering::Relaxed);
                return Err(e);
            }
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_index_once_and_errors_stop() {
        let sum = AtomicU64::new(0);
        for_each_index(
            1000,
            3,
            || (),
            |(), i| {
                sum.fetch_add(u64::from(i) + 1, Ordering::Relaxed);
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(sum.into_inner(), 1000 * 1001 / 2);
        let r = for_each_index(1000, 2, Vec::<u32>::new, |seen, i| {
            seen.push(i);
            if i == 10 {
                Err(i)
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(10));
    }
}
