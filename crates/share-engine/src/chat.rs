//! The chat relay: room messages flooded over chat-capable connections with de-duplication
//! by (origin, sequence) and a hop limit, so they reach peers not connected to their author
//! exactly once; direct messages only over the direct connection; the last 20 room messages
//! sent to every peer after its extension handshake. How much of it reaches the screen is
//! bounded by `chat_limits.rs` (per connection, per author, and in total).
//!
//! Everything shown or emitted is sanitized first (`share_proto::chat::sanitize`), and so is
//! what we forward, so a hostile author's escape sequences stop at the first `share` peer.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use share_proto::chat::{sanitize, truncate, ChatMessage, MAX_HOPS, MAX_NICK, MAX_TEXT};
use share_proto::PeerId;

use crate::chat_limits::{Limits, Verdict};
use crate::error::Violation;
use crate::event::Event;
use crate::picker::PeerKey;
use crate::torrent::{PeerCmd, Shared, State};

/// The extended message id we ask peers to send `share_chat` under.
pub(crate) const CHAT_ID: u8 = 1;
/// Room messages kept for late joiners.
pub(crate) const HISTORY: usize = 20;
/// (origin, sequence) pairs remembered for de-duplication.
const SEEN: usize = 10_000;
/// Why a chat message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing left after removing control characters.
    #[error("the message is empty")]
    Empty,
    /// Over 1,024 bytes.
    #[error("the message is {0} bytes; the limit is {MAX_TEXT}")]
    TooLong(usize),
    /// No connected peer has that nickname.
    #[error("no connected peer is called {0:?} (see /peers)")]
    NoSuchPeer(String),
    /// Several do: `choices` names each as `nick#id (ADDR)`.
    #[error("{nick:?} is the nickname of {count} connected peers; name one: {choices}")]
    Ambiguous {
        /// The nickname asked for.
        nick: String,
        /// How many connected peers have it.
        count: usize,
        /// Each of them as `/msg` takes it, with its address.
        choices: String,
    },
}

/// A connected peer, for `/peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its address.
    pub addr: SocketAddr,
    /// Its id.
    pub peer_id: PeerId,
    /// Its nickname, if it chats.
    pub nick: Option<String>,
    /// The name `/msg` takes for it: the nickname, or `nick#id` when several connected peers
    /// share that nickname.
    pub handle: Option<String>,
    /// Its client name.
    pub client: Option<String>,
    /// Pieces it has.
    pub pieces: u32,
    /// Pieces in the torrent.
    pub total: u32,
    /// Whether it speaks `share_chat`.
    pub chat: bool,
}

/// The chat part of a torrent's state.
#[derive(Debug)]
pub(crate) struct ChatState {
    pub nick: String,
    next_seq: u64,
    seen: HashSet<(PeerId, u64)>,
    seen_order: VecDeque<(PeerId, u64)>,
    pub history: VecDeque<ChatMessage>,
    pub dropped: u64,
    pub limits: Limits,
}

impl ChatState {
    pub fn new(nick: &str) -> Self {
        Self {
            nick: clean_nick(nick),
            // Start from the clock so a restarted peer's new messages are not taken as repeats.
            next_seq: now_ms(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            history: VecDeque::new(),
            dropped: 0,
            limits: Limits::new(Instant::now()),
        }
    }

    /// Records (origin, seq); false if it was seen before.
    fn remember(&mut self, m: &ChatMessage) -> bool {
        let key = (m.origin, m.seq);
        if !self.seen.insert(key) {
            return false;
        }
        self.seen_order.push_back(key);
        if self.seen_order.len() > SEEN {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// Whether a new line from `link` may be shown (budgets 3 and 4 of `chat_limits.rs`).
    fn admit(&mut self, now: Instant, link: PeerKey, own: bool) -> Result<bool, Violation> {
        match self.limits.line(now, link, own) {
            Verdict::Pass => Ok(true),
            Verdict::Drop => {
                self.dropped += 1;
                Ok(false)
            }
            Verdict::Cut(why) => Err(Violation::ChatFlood(why)),
        }
    }

    fn keep(&mut self, m: ChatMessage) {
        self.history.push_back(m);
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }
}

/// A nickname cut to 32 bytes of printable text (`anon` if nothing is left).
pub(crate) fn clean_nick(nick: &str) -> String {
    let n = truncate(sanitize(nick).trim(), MAX_NICK).to_string();
    if n.is_empty() {
        "anon".into()
    } else {
        n
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The connection a chat payload came over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub key: PeerKey,
    pub peer_id: PeerId,
    pub addr: SocketAddr,
}

/// What to do with a chat payload that arrived ([`ChatState::receive`]).
#[derive(Debug, Clone)]
pub(crate) enum Received {
    /// Nothing: a repeat, our own line coming back, or over a budget (counted).
    Ignored,
    /// Dropped and reported as `Event::ChatDropped` with this reason.
    Dropped(String),
    /// Shown as `line` (an `Event::Chat`), and sent on as `payload` to each of `forward`.
    Shown {
        line: Event,
        forward: Vec<PeerKey>,
        payload: Option<Bytes>,
    },
}

impl ChatState {
    /// A chat payload arrived over `link`; `links` are the chat-capable connections (key
    /// and peer id) it may be forwarded to. Decides, with no I/O: shown once, forwarded
    /// with one hop less while hops are left to every other link but its author's, or
    /// dropped. An error when that connection is flooding and must be cut off.
    pub fn receive(
        &mut self,
        now: Instant,
        us: PeerId,
        link: &Link,
        payload: &[u8],
        links: impl Iterator<Item = (PeerKey, PeerId)>,
    ) -> Result<Received, Violation> {
        match self.limits.payload(now, link.key) {
            Verdict::Pass => {}
            Verdict::Drop => return Ok(self.ignore(1)),
            Verdict::Cut(why) => return Err(Violation::ChatFlood(why)),
        }
        let m = match ChatMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.dropped += 1;
                return Ok(Received::Dropped(e.to_string()));
            }
        };
        // A flooding author is cut off if it is the sender; a relay only loses them.
        match self.limits.author(now, m.origin, m.origin == link.peer_id) {
            Verdict::Pass => {}
            Verdict::Drop => return Ok(self.ignore(1)),
            Verdict::Cut(why) => return Err(Violation::ChatFlood(why)),
        }
        let text = sanitize(&m.text);
        let nick = clean_nick(&m.nick);
        if text.trim().is_empty() {
            self.dropped += 1;
            return Ok(Received::Dropped("chat text is empty once cleaned".into()));
        }
        let seen = self.seen.contains(&(m.origin, m.seq));
        let mut forward = Vec::new();
        let mut payload = None;
        if let Some(to) = m.to {
            // Direct messages travel only over the connection from their author to their
            // target.
            let misdirected = to != us || m.origin != link.peer_id;
            if misdirected {
                return Ok(self.ignore(1));
            }
            if seen || !self.admit(now, link.key, true)? {
                return Ok(Received::Ignored);
            }
            self.remember(&m);
        } else {
            if m.origin == us || seen {
                return Ok(Received::Ignored);
            }
            // Only a line about to be shown counts against the link's share and the screen.
            if !self.admit(now, link.key, m.origin == link.peer_id)? {
                return Ok(Received::Ignored);
            }
            self.remember(&m);
            let clean = ChatMessage {
                nick: nick.clone(),
                text: text.clone(),
                ..m.clone()
            };
            self.keep(clean.clone());
            if m.hops > 0 {
                forward = links
                    .filter(|(k, id)| *k != link.key && *id != m.origin)
                    .map(|(k, _)| k)
                    .collect();
                if !forward.is_empty() {
                    let onward = ChatMessage {
                        hops: m.hops - 1,
                        ..clean
                    };
                    payload = Some(Bytes::from(onward.encode()));
                }
            }
        }
        Ok(Received::Shown {
            line: Event::Chat {
                from: m.origin,
                nick,
                text,
                time_ms: m.time_ms,
                direct: m.to.is_some(),
                via: link.addr,
            },
            forward,
            payload,
        })
    }

    fn ignore(&mut self, dropped: u64) -> Received {
        self.dropped += dropped;
        Received::Ignored
    }

    /// A line of ours (cleaned and checked by the caller) to the room, or to `to` alone,
    /// written at `time_ms`: the message, remembered (and kept for late joiners when it goes
    /// to the room).
    pub fn compose(&mut self, us: PeerId, to: Option<PeerId>, text: String, time_ms: u64) -> ChatMessage {
        let seq = self.next_seq;
        self.next_seq += 1;
        let m = ChatMessage {
            origin: us,
            seq,
            time_ms,
            nick: self.nick.clone(),
            text,
            hops: MAX_HOPS,
            to,
        };
        self.remember(&m);
        if to.is_none() {
            self.keep(m.clone());
        }
        m
    }
}

impl Shared {
    /// A chat payload arrived from peer `key`: decided by [`ChatState::receive`] under the
    /// lock, then shown and forwarded. An error when that connection is flooding and must
    /// be cut off.
    pub(crate) fn chat_received(
        &self,
        key: PeerKey,
        from: PeerId,
        addr: SocketAddr,
        payload: &[u8],
    ) -> Result<(), Violation> {
        let link = Link {
            key,
            peer_id: from,
            addr,
        };
        let (received, cmds) = {
            let mut st = self.lock();
            let State { chat, peers, .. } = &mut *st;
            let received = chat.receive(Instant::now(), self.peer_id, &link, payload, peers.chat_links())?;
            let cmds = match &received {
                Received::Shown { forward, .. } => peers.cmds_of(forward),
                _ => Vec::new(),
            };
            (received, cmds)
        };
        match received {
            Received::Ignored => {}
            Received::Dropped(reason) => {
                tracing::debug!(%addr, %reason, "chat message dropped");
                self.emit(Event::ChatDropped { addr, reason });
            }
            Received::Shown { line, payload, .. } => {
                self.emit(line);
                if let Some(payload) = payload {
                    for cmd in cmds {
                        let _ = cmd.try_send(PeerCmd::Chat(payload.clone()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The room history, encoded, for a peer that just finished its extension handshake.
    pub(crate) fn chat_history(&self) -> Vec<Bytes> {
        self.lock()
            .chat
            .history
            .iter()
            .map(|m| Bytes::from(m.encode()))
            .collect()
    }

    /// Sends a message to the room, or to the one peer called `to`.
    /// `time_ms`: when it was written (unix ms; `None`: now). A line sent to several swarms
    /// carries one time, so a peer in several of them shows it once.
    pub(crate) fn chat_send(
        self: &Arc<Self>,
        to: Option<&str>,
        text: &str,
        time_ms: Option<u64>,
    ) -> Result<(), SendError> {
        let text = sanitize(text).trim().to_string();
        if text.is_empty() {
            return Err(SendError::Empty);
        }
        if text.len() > MAX_TEXT {
            return Err(SendError::TooLong(text.len()));
        }
        let mut st = self.lock();
        let target = match to {
            None => None,
            Some(name) => {
                let (named, cmds): (Vec<_>, Vec<_>) = st
                    .peers
                    .values()
                    .filter(|p| p.chat)
                    .filter_map(|p| {
                        let nick = p.nick.as_deref()?;
                        Some((
                            crate::nick::Named {
                                nick,
                                peer_id: p.peer_id,
                                addr: p.addr,
                            },
                            &p.cmd,
                        ))
                    })
                    .unzip();
                let i = crate::nick::resolve(&named, name)?;
                Some((named[i].peer_id, cmds[i].clone()))
            }
        };
        let m = st.chat.compose(
            self.peer_id,
            target.as_ref().map(|(id, _)| *id),
            text,
            time_ms.unwrap_or_else(now_ms),
        );
        let payload = Bytes::from(m.encode());
        let cmds: Vec<_> = match target {
            Some((_, cmd)) => vec![cmd],
            None => st.peers.cmds(true),
        };
        drop(st);
        for cmd in cmds {
            let _ = cmd.try_send(PeerCmd::Chat(payload.clone()));
        }
        Ok(())
    }

    /// The connected peers, for `/peers`.
    pub(crate) fn peer_list(&self) -> Vec<PeerInfo> {
        let st = self.lock();
        let peers: Vec<_> = st.peers.values().collect();
        let nicks: Vec<_> = peers.iter().map(|p| (p.nick.as_deref(), p.peer_id)).collect();
        let handles = crate::nick::handles(&nicks);
        let mut v: Vec<PeerInfo> = peers
            .iter()
            .zip(handles)
            .map(|(p, handle)| PeerInfo {
                addr: p.addr,
                peer_id: p.peer_id,
                nick: p.nick.clone(),
                handle,
                client: p.client.clone(),
                pieces: p.has.count(),
                total: self.geometry.piece_count(),
                chat: p.chat,
            })
            .collect();
        v.sort_by_key(|p| p.addr);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_and_history() {
        let mut c = ChatState::new("me");
        let m = |seq| ChatMessage {
            origin: PeerId([9; 20]),
            seq,
            time_ms: 0,
            nick: "x".into(),
            text: "t".into(),
            hops: 6,
            to: None,
        };
        assert!(c.remember(&m(1)));
        assert!(!c.remember(&m(1)));
        for i in 0..30 {
            c.keep(m(i));
        }
        assert_eq!(c.history.len(), HISTORY);
        assert_eq!(c.history.front().unwrap().seq, 10);
        assert_eq!(clean_nick("\x1b[31m  "), "anon");
        assert_eq!(clean_nick(&"é".repeat(40)).len(), 32);
    }

    const US: PeerId = PeerId([1; 20]);

    fn link(n: u8) -> Link {
        Link {
            key: u64::from(n),
            peer_id: PeerId([n; 20]),
            addr: SocketAddr::from(([10, 0, 0, n], 6881)),
        }
    }

    fn msg(origin: u8, seq: u64, hops: u8, to: Option<PeerId>) -> Vec<u8> {
        ChatMessage {
            origin: PeerId([origin; 20]),
            seq,
            time_ms: 5,
            nick: "n".into(),
            text: format!("line {seq}"),
            hops,
            to,
        }
        .encode()
    }

    /// Chat-capable links 2, 3 and 4.
    fn links() -> impl Iterator<Item = (PeerKey, PeerId)> {
        [2u8, 3, 4].into_iter().map(|n| (link(n).key, link(n).peer_id))
    }

    fn shown(r: Received) -> (String, bool, Vec<PeerKey>, Option<ChatMessage>) {
        match r {
            Received::Shown {
                line: Event::Chat { text, direct, .. },
                forward,
                payload,
            } => (
                text,
                direct,
                forward,
                payload.map(|p| ChatMessage::decode(&p).unwrap()),
            ),
            other => panic!("not shown: {other:?}"),
        }
    }

    #[test]
    fn a_room_line_is_shown_once_and_forwarded_with_one_hop_less_to_the_others() {
        let mut c = ChatState::new("me");
        let now = Instant::now();
        // Written by 9 (not connected to us), relayed by 2.
        let (text, direct, forward, onward) = shown(
            c.receive(now, US, &link(2), &msg(9, 1, 6, None), links())
                .unwrap(),
        );
        assert_eq!((text.as_str(), direct), ("line 1", false));
        assert_eq!(
            forward,
            vec![link(3).key, link(4).key],
            "not back to the link it came over"
        );
        let onward = onward.unwrap();
        assert_eq!((onward.hops, onward.origin, onward.seq), (5, PeerId([9; 20]), 1));
        // The same (origin, seq) again, over another link: not shown, not forwarded.
        let again = c
            .receive(now, US, &link(3), &msg(9, 1, 5, None), links())
            .unwrap();
        assert!(matches!(again, Received::Ignored), "{again:?}");
        assert_eq!(c.history.len(), 1);
    }

    #[test]
    fn no_hops_left_is_shown_but_not_forwarded_and_never_to_its_author() {
        let mut c = ChatState::new("me");
        let now = Instant::now();
        let (_, _, forward, onward) = shown(
            c.receive(now, US, &link(2), &msg(9, 1, 0, None), links())
                .unwrap(),
        );
        assert!(forward.is_empty() && onward.is_none());
        // Written by 3, relayed by 2: 3 does not get its own line back.
        let (_, _, forward, _) = shown(
            c.receive(now, US, &link(2), &msg(3, 1, 6, None), links())
                .unwrap(),
        );
        assert_eq!(forward, vec![link(4).key]);
        // Our own line coming back is not shown.
        let own = c
            .receive(now, US, &link(2), &msg(1, 7, 6, None), links())
            .unwrap();
        assert!(matches!(own, Received::Ignored));
    }

    #[test]
    fn direct_messages_come_only_from_their_author_to_us_and_go_nowhere_else() {
        let mut c = ChatState::new("me");
        let now = Instant::now();
        let (text, direct, forward, onward) = shown(
            c.receive(now, US, &link(2), &msg(2, 1, 6, Some(US)), links())
                .unwrap(),
        );
        assert_eq!((text.as_str(), direct), ("line 1", true));
        assert!(forward.is_empty() && onward.is_none());
        assert!(c.history.is_empty(), "direct lines are not history");
        // Relayed by someone else (a forged author), or meant for another peer: dropped.
        for (via, origin, to) in [(3, 2, US), (2, 2, PeerId([7; 20]))] {
            let r = c
                .receive(now, US, &link(via), &msg(origin, 2, 6, Some(to)), links())
                .unwrap();
            assert!(matches!(r, Received::Ignored), "{r:?}");
        }
        assert_eq!(c.dropped, 2);
    }

    #[test]
    fn junk_and_empty_lines_are_dropped_with_a_reason() {
        let mut c = ChatState::new("me");
        let now = Instant::now();
        let r = c.receive(now, US, &link(2), b"not bencode", links()).unwrap();
        assert!(
            matches!(&r, Received::Dropped(why) if why.contains("malformed")),
            "{r:?}"
        );
        let blank = ChatMessage {
            text: "\x1b[2J \u{202e}".into(),
            ..ChatMessage::decode(&msg(9, 1, 6, None)).unwrap()
        };
        let r = c.receive(now, US, &link(2), &blank.encode(), links()).unwrap();
        assert!(
            matches!(&r, Received::Dropped(why) if why.contains("empty")),
            "{r:?}"
        );
        assert_eq!(c.dropped, 2);
    }

    #[test]
    fn composed_lines_are_remembered_so_their_echo_is_ignored() {
        let mut c = ChatState::new("me");
        let m = c.compose(US, None, "hi".into(), 1);
        assert_eq!((m.hops, m.origin, c.history.len()), (MAX_HOPS, US, 1));
        let d = c.compose(US, Some(PeerId([2; 20])), "psst".into(), 2);
        assert_eq!((d.seq, c.history.len()), (m.seq + 1, 1));
        let echo = c
            .receive(Instant::now(), US, &link(2), &m.encode(), links())
            .unwrap();
        assert!(matches!(echo, Received::Ignored));
    }
}
