//! How much chat reaches the screen, whatever peers do. Origins are not authenticated (signed
//! authors come later), so a limit per author alone is dodged by inventing a new origin for
//! every message: ten connections did that and put 4,430 lines on screen in 10 s. Four
//! budgets, all token buckets, checked in this order:
//!
//! 1. **Raw payloads per connection** (burst 200, then 50/s): every `share_chat` payload,
//!    duplicates and malformed ones included, costs the link. Past it payloads are dropped;
//!    500 drops within 10 s disconnect it.
//! 2. **Per author** (burst 40, then 10/s): an author typing far faster than people do is
//!    throttled; if it keeps flooding over its own connection, that connection is cut.
//! 3. **New lines per connection** (burst 80, then a fair share of the screen): only
//!    messages that would be shown count (not duplicates, so a relay in a busy mesh is not
//!    charged for lines others brought first). The share is three quarters of the screen
//!    rate divided among the connections that brought a line in the last 10 s (at most
//!    10/s each), so an honest chatter below its share always passes and the shares leave
//!    the screen budget room to refill. Past it lines are dropped; 40 drops within 10 s
//!    disconnect the link: it keeps relaying over its budget.
//! 4. **The screen** (burst 60, then 20 lines/s across every connection): at most
//!    60 + 20·t lines in t seconds (260 in 10 s) are shown, whatever the number of
//!    connections and origins. Lines relayed by busy links (more than a line past their
//!    share lately) may only take the upper half of it; the lower half (30 lines) is kept
//!    for quiet links and for a peer's own lines over its own connection (those are bounded
//!    by the author budget, which a peer cannot dodge on its own link), so
//!    links spending their bursts together cannot crowd out a chatter who types at human
//!    speed. Each link's first two lines count as quiet, so about 15 links starting a flood
//!    at once can still empty the reserve until it refills (1.5 s).
//!
//! Bursts of 40 per author and 80 per link leave room for the 20-message history and for a
//! relay that just forwarded one author's whole burst; they cover the 20-message history each side sends after the extension
//! handshake. Everything here is pure: callers pass the time, tests simulate it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use share_proto::PeerId;

use crate::picker::PeerKey;

/// A token bucket's shape, and how many drops within [`WINDOW`] end a sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    pub burst: f64,
    pub per_second: f64,
    pub drops_to_cut: u32,
}

/// Every chat payload over one connection.
pub(crate) const RAW_PER_LINK: Rate = Rate {
    burst: 200.0,
    per_second: 50.0,
    drops_to_cut: 500,
};
/// Messages of one author.
pub(crate) const PER_AUTHOR: Rate = Rate {
    burst: 40.0,
    per_second: 10.0,
    drops_to_cut: 50,
};
/// New lines brought by one connection; `per_second` is the most its fair share can be.
pub(crate) const LINES_PER_LINK: Rate = Rate {
    burst: 80.0,
    per_second: 10.0,
    drops_to_cut: 40,
};
/// Lines shown, across every connection.
pub(crate) const SCREEN: Rate = Rate {
    burst: 60.0,
    per_second: 20.0,
    drops_to_cut: u32::MAX,
};
/// The part of the screen rate shared among connections; the rest lets it refill.
const SHARED_PART: f64 = 0.75;
/// Drops are counted over this window; a link is active if it brought a line within it.
const WINDOW: Duration = Duration::from_secs(10);
/// A link whose line budget is within this of full is quiet (it keeps to its share).
const QUIET_SLACK: f64 = 1.0;
/// Authors whose rate we track; past this the table starts afresh.
const AUTHORS: usize = 1024;

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within budget.
    Pass,
    /// Over budget: drop it.
    Drop,
    /// Over budget for long enough: disconnect the sender (why).
    Cut(&'static str),
}

/// A token bucket with a count of recent drops.
#[derive(Debug)]
pub(crate) struct Budget {
    tokens: f64,
    last: Instant,
    drops: u32,
    window: Instant,
}

impl Budget {
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            last: now,
            drops: 0,
            window: now,
        }
    }

    /// The tokens now, refilled at `per_second`.
    fn level(&mut self, now: Instant, rate: Rate, per_second: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(rate.burst);
        self.last = now;
        self.tokens
    }

    /// Takes a token refilled at `per_second`; `None` past `drops_to_cut` drops in a window.
    pub fn check(&mut self, now: Instant, rate: Rate, per_second: f64) -> Option<bool> {
        if self.level(now, rate, per_second) >= 1.0 {
            self.tokens -= 1.0;
            return Some(true);
        }
        if now.saturating_duration_since(self.window) >= WINDOW {
            self.window = now;
            self.drops = 0;
        }
        self.drops += 1;
        (self.drops <= rate.drops_to_cut).then_some(false)
    }

    /// [`Budget::check`] as a verdict: cut for `why` past `drops_to_cut` drops.
    fn verdict(&mut self, now: Instant, rate: Rate, per_second: f64, why: &'static str) -> Verdict {
        match self.check(now, rate, per_second) {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Drop,
            None => Verdict::Cut(why),
        }
    }
}

/// The budgets of one connection.
#[derive(Debug)]
struct Link {
    raw: Budget,
    lines: Budget,
    last_line: Option<Instant>,
}

/// Every chat budget of a torrent (in `ChatState`, under the torrent's lock).
#[derive(Debug)]
pub(crate) struct Limits {
    screen: Budget,
    links: HashMap<PeerKey, Link>,
    authors: HashMap<PeerId, Budget>,
}

impl Limits {
    pub fn new(now: Instant) -> Self {
        Self {
            screen: Budget::new(SCREEN, now),
            links: HashMap::new(),
            authors: HashMap::new(),
        }
    }

    fn link_mut(&mut self, link: PeerKey, now: Instant) -> &mut Link {
        self.links.entry(link).or_insert_with(|| Link {
            raw: Budget::new(RAW_PER_LINK, now),
            lines: Budget::new(LINES_PER_LINK, now),
            last_line: None,
        })
    }

    /// Budget 1: any chat payload arriving over `link`.
    pub fn payload(&mut self, now: Instant, link: PeerKey) -> Verdict {
        self.link_mut(link, now).raw.verdict(
            now,
            RAW_PER_LINK,
            RAW_PER_LINK.per_second,
            "far more chat payloads than people type",
        )
    }

    /// Budget 2: a decoded message by `origin`; only its own connection (`over_own_link`)
    /// is cut for it, a relay only loses its messages.
    pub fn author(&mut self, now: Instant, origin: PeerId, over_own_link: bool) -> Verdict {
        if self.authors.len() >= AUTHORS && !self.authors.contains_key(&origin) {
            self.authors.clear();
        }
        let budget = self
            .authors
            .entry(origin)
            .or_insert_with(|| Budget::new(PER_AUTHOR, now));
        let why = "one author far faster than people type";
        match budget.verdict(now, PER_AUTHOR, PER_AUTHOR.per_second, why) {
            Verdict::Cut(_) if !over_own_link => Verdict::Drop,
            v => v,
        }
    }

    /// Budgets 3 and 4: a new line that `link` brings, about to be shown; `own` when its
    /// author is the peer at the other end of `link`.
    pub fn line(&mut self, now: Instant, link: PeerKey, own: bool) -> Verdict {
        let active = self
            .links
            .iter()
            .filter(|(k, l)| {
                **k == link
                    || l.last_line
                        .is_some_and(|t| now.saturating_duration_since(t) < WINDOW)
            })
            .count()
            .max(1);
        let share = (SHARED_PART * SCREEN.per_second / active as f64).min(LINES_PER_LINK.per_second);
        let l = self.link_mut(link, now);
        l.last_line = Some(now);
        let quiet = l.lines.level(now, LINES_PER_LINK, share) >= LINES_PER_LINK.burst - QUIET_SLACK;
        let why = "keeps relaying new lines over its share of the screen";
        match l.lines.verdict(now, LINES_PER_LINK, share, why) {
            Verdict::Pass => {}
            v => return v,
        }
        let screen = self.screen.level(now, SCREEN, SCREEN.per_second);
        if !quiet && !own && screen < SCREEN.burst / 2.0 {
            return Verdict::Drop;
        }
        match self.screen.check(now, SCREEN, SCREEN.per_second) {
            Some(true) => Verdict::Pass,
            // Not the link's fault: it was within its share.
            _ => Verdict::Drop,
        }
    }

    /// The connection ended.
    pub fn forget_link(&mut self, link: PeerKey) {
        self.links.remove(&link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(n: u64) -> PeerId {
        let mut id = [7u8; 20];
        id[..8].copy_from_slice(&n.to_be_bytes());
        PeerId(id)
    }

    /// Offers every message through all four budgets as `chat_received` does.
    fn offer(l: &mut Limits, now: Instant, link: PeerKey, origin: PeerId, own: bool) -> Verdict {
        for v in [l.payload(now, link), l.author(now, origin, own)] {
            if v != Verdict::Pass {
                return v;
            }
        }
        l.line(now, link, own)
    }

    #[test]
    fn a_budget_throttles_then_cuts_off() {
        let t0 = Instant::now();
        let mut b = Budget::new(PER_AUTHOR, t0);
        let burst = PER_AUTHOR.burst as usize;
        let accepted = (0..burst)
            .filter(|_| b.check(t0, PER_AUTHOR, 10.0) == Some(true))
            .count();
        assert_eq!(accepted, burst, "a burst of history passes");
        let throttled = (0..)
            .take_while(|_| b.check(t0, PER_AUTHOR, 10.0) == Some(false))
            .count();
        assert_eq!(
            throttled, PER_AUTHOR.drops_to_cut as usize,
            "then throttled, then cut"
        );
        assert_eq!(
            b.check(t0 + Duration::from_millis(100), PER_AUTHOR, 10.0),
            Some(true)
        );
    }

    /// Issue 13's attack: ten links inventing an origin per message, as fast as they can,
    /// beside one honest chatter. Each flooder is cut, the screen bound holds, and every
    /// honest line is shown.
    #[test]
    fn rotating_origins_over_ten_links_stay_under_the_screen_bound() {
        let t0 = Instant::now();
        let mut l = Limits::new(t0);
        let honest = 100;
        let mut shown = 0;
        let mut cut = [false; 10];
        let mut honest_shown = 0;
        let mut next_origin = 0;
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            for (link, cut) in cut.iter_mut().enumerate() {
                if *cut {
                    continue;
                }
                // Ten messages per link per millisecond.
                for _ in 0..10 {
                    next_origin += 1;
                    match offer(&mut l, now, link as PeerKey, author(next_origin), false) {
                        Verdict::Pass => shown += 1,
                        Verdict::Drop => {}
                        Verdict::Cut(_) => {
                            *cut = true;
                            l.forget_link(link as PeerKey);
                            break;
                        }
                    }
                }
            }
            if ms % 500 == 250 {
                let v = offer(&mut l, now, honest, author(0), true);
                assert_eq!(v, Verdict::Pass, "the honest line at {ms} ms");
                honest_shown += 1;
            }
        }
        assert!(cut.iter().all(|c| *c), "every flooder is cut: {cut:?}");
        assert_eq!(honest_shown, 20);
        let bound = SCREEN.burst + SCREEN.per_second * 10.0;
        assert!(
            f64::from(shown + honest_shown) <= bound,
            "{shown} flood lines shown"
        );
    }

    /// A patient attacker spreads itself over twenty links, each offering two lines a
    /// second: over its fair share, so soon busy and held to the upper half of the screen
    /// budget, and too few drops to be cut. The screen bound holds, the links get a part of
    /// what they offer, and the honest chatter's lines (one every 2 s) are all shown.
    #[test]
    fn many_patient_links_share_the_screen_and_the_honest_chatter_gets_through() {
        let t0 = Instant::now();
        let mut l = Limits::new(t0);
        let (honest, links, secs) = (100, 20u64, 60);
        let (mut shown, mut honest_dropped, mut next_origin) = (0u32, 0, 0);
        for ms in (0..secs * 1000).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            for link in 0..links {
                if (ms / 10 + link * 2) % 50 == 0 {
                    next_origin += 1;
                    match offer(&mut l, now, link, author(next_origin), false) {
                        Verdict::Pass => shown += 1,
                        Verdict::Drop => {}
                        Verdict::Cut(why) => panic!("link {link} cut at {ms} ms: {why}"),
                    }
                }
            }
            if ms % 2000 == 0 && offer(&mut l, now, honest, author(0), true) != Verdict::Pass {
                honest_dropped += 1;
            }
        }
        let bound = SCREEN.burst + SCREEN.per_second * secs as f64;
        assert!(f64::from(shown) <= bound, "{shown} lines in {secs} s");
        let offered = 2 * links as u32 * secs as u32;
        assert!(
            shown < offered * 3 / 4,
            "the links were held to their shares: {shown} of {offered}"
        );
        assert_eq!(honest_dropped, 0, "the honest chatter's lines are all shown");
    }
}
