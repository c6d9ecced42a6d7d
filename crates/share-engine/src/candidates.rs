//! Addresses waiting for a free connection slot.
//!
//! A tracker can hand out up to `MAX_RESPONSE_PEERS` addresses while only `max_peers`
//! connections may be open or opening; the rest wait here and are dialed as slots free up,
//! instead of being dropped. Peers named by the user go to the front: they are the ones
//! most likely to be alive. The queue is bounded; when it is full, tracker addresses are
//! dropped and the oldest queued address gives way to a user's.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;

/// Queued addresses, deduplicated, at most `cap` of them.
#[derive(Debug)]
pub(crate) struct Candidates {
    queue: VecDeque<SocketAddr>,
    queued: HashSet<SocketAddr>,
    cap: usize,
}

impl Candidates {
    pub fn new(cap: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            queued: HashSet::new(),
            cap,
        }
    }

    /// Queues `addr` behind the others; false if it was queued already or the queue is full.
    pub fn push_back(&mut self, addr: SocketAddr) -> bool {
        if self.queue.len() >= self.cap || !self.queued.insert(addr) {
            return false;
        }
        self.queue.push_back(addr);
        true
    }

    /// Queues `addr` ahead of the others (moving it there if it was queued), making room by
    /// dropping the last one if the queue is full.
    pub fn push_front(&mut self, addr: SocketAddr) {
        if self.cap == 0 {
            return;
        }
        if !self.queued.insert(addr) {
            self.queue.retain(|a| *a != addr);
        } else if self.queue.len() >= self.cap {
            if let Some(last) = self.queue.pop_back() {
                self.queued.remove(&last);
            }
        }
        self.queue.push_front(addr);
    }

    pub fn pop(&mut self) -> Option<SocketAddr> {
        let addr = self.queue.pop_front()?;
        self.queued.remove(&addr);
        Some(addr)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn drain(c: &mut Candidates) -> Vec<u16> {
        std::iter::from_fn(|| c.pop()).map(|s| s.port()).collect()
    }

    #[test]
    fn tracker_addresses_queue_in_order_without_duplicates_up_to_the_cap() {
        let mut c = Candidates::new(3);
        assert!(c.push_back(a(1)));
        assert!(c.push_back(a(2)));
        assert!(!c.push_back(a(1)), "already queued");
        assert!(c.push_back(a(3)));
        assert!(!c.push_back(a(4)), "full");
        assert_eq!(c.len(), 3);
        assert_eq!(drain(&mut c), [1, 2, 3]);
        assert!(c.push_back(a(1)), "popped addresses can be queued again");
    }

    #[test]
    fn user_addresses_jump_the_queue_and_evict_the_last() {
        let mut c = Candidates::new(3);
        for p in 1..=3 {
            c.push_back(a(p));
        }
        c.push_front(a(9));
        assert_eq!(c.len(), 3);
        c.push_front(a(2));
        assert_eq!(drain(&mut c), [2, 9, 1]);
    }

    #[test]
    fn a_zero_cap_queues_nothing() {
        let mut c = Candidates::new(0);
        assert!(!c.push_back(a(1)));
        c.push_front(a(1));
        assert_eq!(c.pop(), None);
    }
}
