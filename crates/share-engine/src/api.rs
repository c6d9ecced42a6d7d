//! The engine's events as JSON, one form for every front-end: the CLI's `--json` lines and,
//! later, the daemon's page and API print exactly these objects.
//!
//! Every object has an `"event"` naming it; a session's events add `"torrent": ID`. Peer
//! ids are their printable form (`PeerId`'s `Display`), addresses `"IP:PORT"`, rates whole
//! bytes per second. Text that came off the network (reasons, nicknames, chat) is already
//! sanitized by the engine; a front-end writing to a terminal still escapes what a terminal
//! would act on.

use serde_json::{json, Value};

use crate::event::{Event, Stats, TorrentState};
use crate::session::SessionEvent;

/// One event as a JSON object.
pub fn event_json(event: &Event) -> Value {
    let ids = |from: &[share_proto::PeerId]| from.iter().map(ToString::to_string).collect::<Vec<_>>();
    match event {
        Event::Checking { done, total } => json!({"event": "checking", "done": done, "total": total}),
        Event::Progress(s) => stats_json(s),
        Event::PeerUp {
            addr,
            peer_id,
            client,
            encryption,
        } => {
            json!({"event": "peer_up", "addr": addr, "peer_id": peer_id.to_string(), "client": client, "encryption": encryption.as_str()})
        }
        Event::Dht { announced, peers } => json!({"event": "dht", "announced": announced, "peers": peers}),
        Event::PeerRefused { addr, reason } => {
            json!({"event": "peer_refused", "addr": addr, "reason": reason})
        }
        Event::PeerDown {
            addr,
            peer_id,
            reason,
        } => {
            json!({"event": "peer_down", "addr": addr, "peer_id": peer_id.to_string(), "reason": reason})
        }
        Event::PieceVerified { piece, from } => {
            json!({"event": "piece_verified", "piece": piece, "from": ids(from)})
        }
        Event::PieceFailed { piece, from } => {
            json!({"event": "piece_failed", "piece": piece, "from": ids(from)})
        }
        Event::PeerBanned {
            addr,
            peer_id,
            reason,
        } => {
            json!({"event": "peer_banned", "addr": addr, "peer_id": peer_id.to_string(), "reason": reason})
        }
        Event::Complete => json!({"event": "complete"}),
        Event::TrackerOk { url, peers } => json!({"event": "tracker_ok", "url": url, "peers": peers}),
        Event::TrackerError { url, error } => json!({"event": "tracker_error", "url": url, "error": error}),
        Event::Chat {
            from,
            nick,
            text,
            time_ms,
            direct,
            via,
        } => json!({
            "event": "chat", "from": from.to_string(), "nick": nick, "text": text,
            "time_ms": time_ms, "direct": direct, "via": via,
        }),
        Event::ChatDropped { addr, reason } => {
            json!({"event": "chat_dropped", "addr": addr, "reason": reason})
        }
        Event::FileUnavailable { path, reason, pieces } => {
            json!({"event": "file_unavailable", "path": path, "reason": reason, "pieces": pieces})
        }
        Event::State(state) => state_json(state),
        Event::Fatal(message) => json!({"event": "error", "message": message}),
    }
}

/// A session's event: the torrent's event with `"torrent": ID` (none for what happened
/// before a connection named its torrent).
pub fn session_event_json(e: &SessionEvent) -> Value {
    let mut value = event_json(&e.event);
    if let (Some(id), Some(fields)) = (e.torrent, value.as_object_mut()) {
        fields.insert("torrent".into(), id.0.into());
    }
    value
}

/// A torrent's counters, as the `progress` event.
pub fn stats_json(s: &Stats) -> Value {
    json!({
        "event": "progress",
        "have": s.have_bytes,
        "total": s.total_bytes,
        "pieces_have": s.pieces_have,
        "pieces_total": s.pieces_total,
        "peers": s.peers,
        "seeders": s.seeders,
        "queued_peers": s.queued_peers,
        "downloaded": s.downloaded,
        "uploaded": s.uploaded,
        "down_rate": s.down_rate.round(),
        "up_rate": s.up_rate.round(),
    })
}

/// A change of state: `{"event": "state", "state": "paused"}`, with the `reason` of an error.
pub fn state_json(state: &TorrentState) -> Value {
    let mut value = json!({"event": "state", "state": state.name()});
    if let TorrentState::Error(reason) = state {
        value["reason"] = reason.as_str().into();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::TorrentId;

    #[test]
    fn every_event_names_itself_and_a_session_event_its_torrent() {
        let addr: std::net::SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let peer_id = share_proto::PeerId::ours([1; 12]);
        let events = [
            (Event::Checking { done: 1, total: 2 }, "checking"),
            (Event::Progress(Stats::default()), "progress"),
            (
                Event::PeerUp {
                    addr,
                    peer_id,
                    client: None,
                    encryption: crate::encryption::Crypto::Rc4,
                },
                "peer_up",
            ),
            (
                Event::PeerRefused {
                    addr,
                    reason: "r".into(),
                },
                "peer_refused",
            ),
            (
                Event::PeerDown {
                    addr,
                    peer_id,
                    reason: "r".into(),
                },
                "peer_down",
            ),
            (
                Event::PieceVerified {
                    piece: 3,
                    from: vec![peer_id],
                },
                "piece_verified",
            ),
            (
                Event::PieceFailed {
                    piece: 3,
                    from: vec![],
                },
                "piece_failed",
            ),
            (
                Event::PeerBanned {
                    addr,
                    peer_id,
                    reason: "r".into(),
                },
                "peer_banned",
            ),
            (Event::Complete, "complete"),
            (
                Event::Dht {
                    announced: true,
                    peers: 3,
                },
                "dht",
            ),
            (
                Event::TrackerOk {
                    url: "u".into(),
                    peers: 2,
                },
                "tracker_ok",
            ),
            (
                Event::TrackerError {
                    url: "u".into(),
                    error: "e".into(),
                },
                "tracker_error",
            ),
            (
                Event::Chat {
                    from: peer_id,
                    nick: "n".into(),
                    text: "t".into(),
                    time_ms: 5,
                    direct: false,
                    via: addr,
                },
                "chat",
            ),
            (
                Event::ChatDropped {
                    addr,
                    reason: "r".into(),
                },
                "chat_dropped",
            ),
            (
                Event::FileUnavailable {
                    path: "/x".into(),
                    reason: "r".into(),
                    pieces: 1,
                },
                "file_unavailable",
            ),
            (Event::State(TorrentState::Paused), "state"),
            (Event::Fatal("disk full".into()), "error"),
        ];
        for (event, name) in events {
            let v = event_json(&event);
            assert_eq!(v["event"], name, "{v}");
            let tagged = session_event_json(&SessionEvent {
                torrent: Some(TorrentId(7)),
                event,
            });
            assert_eq!(tagged["torrent"], 7, "{tagged}");
        }
        let v = event_json(&Event::PieceVerified {
            piece: 3,
            from: vec![peer_id],
        });
        assert_eq!(v["from"][0], peer_id.to_string());
        assert_eq!(v["piece"], 3);
        let v = state_json(&TorrentState::Error("disk full".into()));
        assert_eq!(
            (v["state"].as_str(), v["reason"].as_str()),
            (Some("error"), Some("disk full"))
        );
        let untagged = session_event_json(&SessionEvent {
            torrent: None,
            event: Event::Complete,
        });
        assert!(untagged.get("torrent").is_none());
    }
}
