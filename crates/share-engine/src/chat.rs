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
use crate::torrent::{PeerCmd, Shared};

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

impl Shared {
    /// A chat payload arrived from peer `key`. An error when that connection is flooding
    /// and must be cut off.
    pub(crate) fn chat_received(
        &self,
        key: PeerKey,
        from: PeerId,
        addr: SocketAddr,
        payload: &[u8],
    ) -> Result<(), Violation> {
        let now = Instant::now();
        {
            let mut st = self.lock();
            match st.chat.limits.payload(now, key) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    st.chat.dropped += 1;
                    return Ok(());
                }
                Verdict::Cut(why) => return Err(Violation::ChatFlood(why)),
            }
        }
        let m = match ChatMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.lock().chat.dropped += 1;
                tracing::debug!(%addr, error = %e, "chat message dropped");
                self.emit(Event::ChatDropped {
                    addr,
                    reason: e.to_string(),
                });
                return Ok(());
            }
        };
        {
            let mut st = self.lock();
            // A flooding author is cut off if it is the sender; a relay only loses them.
            match st.chat.limits.author(now, m.origin, m.origin == from) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    st.chat.dropped += 1;
                    return Ok(());
                }
                Verdict::Cut(why) => return Err(Violation::ChatFlood(why)),
            }
        }
        let text = sanitize(&m.text);
        let nick = clean_nick(&m.nick);
        if text.trim().is_empty() {
            self.lock().chat.dropped += 1;
            self.emit(Event::ChatDropped {
                addr,
                reason: "chat text is empty once cleaned".into(),
            });
            return Ok(());
        }
        let mut st = self.lock();
        let mut onward = None;
        if let Some(to) = m.to {
            // Direct messages travel only over the connection from their author to their target.
            let misdirected = to != self.peer_id || m.origin != from;
            if misdirected || st.chat.seen.contains(&(m.origin, m.seq)) {
                st.chat.dropped += u64::from(misdirected);
                return Ok(());
            }
            if !st.chat.admit(now, key, true)? {
                return Ok(());
            }
            st.chat.remember(&m);
        } else {
            if m.origin == self.peer_id || st.chat.seen.contains(&(m.origin, m.seq)) {
                return Ok(());
            }
            // Only a line about to be shown counts against the link's share and the screen.
            if !st.chat.admit(now, key, m.origin == from)? {
                return Ok(());
            }
            st.chat.remember(&m);
            let clean = ChatMessage {
                nick: nick.clone(),
                text: text.clone(),
                ..m.clone()
            };
            st.chat.keep(clean.clone());
            if m.hops > 0 {
                let targets: Vec<_> = st
                    .peers
                    .iter()
                    .filter(|(k, p)| **k != key && p.chat && p.peer_id != m.origin)
                    .map(|(_, p)| p.cmd.clone())
                    .collect();
                onward = Some((
                    targets,
                    ChatMessage {
                        hops: m.hops - 1,
                        ..clean
                    },
                ));
            }
        }
        drop(st);
        let direct = m.to.is_some();
        self.emit(Event::Chat {
            from: m.origin,
            nick,
            text,
            time_ms: m.time_ms,
            direct,
            via: addr,
        });
        if let Some((targets, message)) = onward.filter(|(t, _)| !t.is_empty()) {
            let payload = Bytes::from(message.encode());
            for cmd in targets {
                let _ = cmd.try_send(PeerCmd::Chat(payload.clone()));
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
    pub(crate) fn chat_send(self: &Arc<Self>, to: Option<&str>, text: &str) -> Result<(), SendError> {
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
        let seq = st.chat.next_seq;
        st.chat.next_seq += 1;
        let m = ChatMessage {
            origin: self.peer_id,
            seq,
            time_ms: now_ms(),
            nick: st.chat.nick.clone(),
            text,
            hops: MAX_HOPS,
            to: target.as_ref().map(|(id, _)| *id),
        };
        st.chat.remember(&m);
        let payload = Bytes::from(m.encode());
        let cmds: Vec<_> = match target {
            Some((_, cmd)) => vec![cmd],
            None => {
                st.chat.keep(m);
                st.peers
                    .values()
                    .filter(|p| p.chat)
                    .map(|p| p.cmd.clone())
                    .collect()
            }
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
}
