//! Nicknames of the peers we are connected to. Strangers choose them, so two peers can share
//! one: `/peers` then shows each as `nick#id` (the last bytes of its peer id, in hex), and
//! `/msg` takes a nickname alone only when it is unique, else `nick#id` or `nick@ADDR`. A
//! lookup that still matches several peers is refused with the names to pick from, never
//! sent to one of them at random.

use std::net::SocketAddr;

use share_proto::PeerId;

use crate::chat::SendError;

/// Bytes of the peer id shown after a shared nickname: the tail, since the head of a
/// BEP 20 id names the client and is the same for everyone running `share`.
const SHORT_ID_BYTES: usize = 3;

/// The short id that tells apart two peers with one nickname: `a1b2c3`.
pub fn short_id(id: &PeerId) -> String {
    hex(&id.0[id.0.len() - SHORT_ID_BYTES..])
}

/// A nickname with the short id of its peer: `bob#a1b2c3`.
pub fn tagged(nick: &str, id: &PeerId) -> String {
    format!("{nick}#{}", short_id(id))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One connected peer as the lookup sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named<'a> {
    pub nick: &'a str,
    pub peer_id: PeerId,
    pub addr: SocketAddr,
}

/// The index in `peers` of the one peer `target` names: its nickname when no other peer has
/// it, `nick#id` (the short id of `/peers`), or `nick@ADDR`.
pub(crate) fn resolve(peers: &[Named<'_>], target: &str) -> Result<usize, SendError> {
    let exact: Vec<usize> = (0..peers.len()).filter(|&i| peers[i].nick == target).collect();
    let found = match exact.as_slice() {
        [] => qualified(peers, target),
        _ => exact,
    };
    match found.as_slice() {
        [] => Err(SendError::NoSuchPeer(target.to_string())),
        [i] => Ok(*i),
        several => {
            let choices = several
                .iter()
                .map(|&i| format!("{} ({})", tagged(peers[i].nick, &peers[i].peer_id), peers[i].addr))
                .collect::<Vec<_>>()
                .join(", ");
            Err(SendError::Ambiguous {
                nick: target.to_string(),
                count: several.len(),
                choices,
            })
        }
    }
}

/// Peers named by `nick#id` or `nick@ADDR` (split at the last `#` or `@`, since a nickname
/// may hold either).
fn qualified(peers: &[Named<'_>], target: &str) -> Vec<usize> {
    if let Some((nick, id)) = target.rsplit_once('#') {
        let id = id.to_ascii_lowercase();
        let hits: Vec<usize> = (0..peers.len())
            .filter(|&i| peers[i].nick == nick && !id.is_empty() && short_id(&peers[i].peer_id) == id)
            .collect();
        if !hits.is_empty() {
            return hits;
        }
    }
    if let Some((nick, addr)) = target.rsplit_once('@') {
        if let Ok(addr) = addr.parse::<SocketAddr>() {
            return (0..peers.len())
                .filter(|&i| peers[i].nick == nick && peers[i].addr == addr)
                .collect();
        }
    }
    Vec::new()
}

/// How each of `nicks` is shown: alone when unique, tagged with its short id when several
/// connected peers share it.
pub(crate) fn handles(nicks: &[(Option<&str>, PeerId)]) -> Vec<Option<String>> {
    nicks
        .iter()
        .map(|(nick, id)| {
            nick.map(|n| {
                let shared = nicks.iter().filter(|(m, _)| *m == Some(n)).count() > 1;
                if shared {
                    tagged(n, id)
                } else {
                    n.to_string()
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(last: u8) -> PeerId {
        let mut b = *b"-SH0100-000000000000";
        b[19] = last;
        PeerId(b)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_unique_nick_resolves_and_a_shared_one_asks_which() {
        let peers = [
            Named {
                nick: "bob",
                peer_id: id(1),
                addr: addr(5001),
            },
            Named {
                nick: "bob",
                peer_id: id(2),
                addr: addr(5002),
            },
            Named {
                nick: "alice",
                peer_id: id(3),
                addr: addr(5003),
            },
        ];
        assert_eq!(resolve(&peers, "alice").unwrap(), 2);
        let err = resolve(&peers, "bob").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"bob\" is the nickname of 2 connected peers; name one: bob#303001 (127.0.0.1:5001), bob#303002 (127.0.0.1:5002)"
        );
        assert_eq!(resolve(&peers, "bob#303002").unwrap(), 1);
        assert_eq!(resolve(&peers, "bob@127.0.0.1:5001").unwrap(), 0);
        assert_eq!(
            resolve(&peers, "bob#ffffff").unwrap_err(),
            SendError::NoSuchPeer("bob#ffffff".into())
        );
        assert_eq!(
            resolve(&peers, "carol").unwrap_err(),
            SendError::NoSuchPeer("carol".into())
        );
    }

    #[test]
    fn nicks_holding_separators_still_resolve() {
        let peers = [
            Named {
                nick: "a#b",
                peer_id: id(1),
                addr: addr(1),
            },
            Named {
                nick: "x@y",
                peer_id: id(2),
                addr: addr(2),
            },
        ];
        assert_eq!(resolve(&peers, "a#b").unwrap(), 0);
        assert_eq!(resolve(&peers, "x@y").unwrap(), 1);
        assert_eq!(resolve(&peers, "x@y@127.0.0.1:2").unwrap(), 1);
    }

    #[test]
    fn only_shared_nicks_are_tagged() {
        let shown = handles(&[
            (Some("bob"), id(1)),
            (None, id(9)),
            (Some("bob"), id(2)),
            (Some("al"), id(3)),
        ]);
        assert_eq!(
            shown,
            [
                Some("bob#303001".into()),
                None,
                Some("bob#303002".into()),
                Some("al".into())
            ]
        );
    }
}
