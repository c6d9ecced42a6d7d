//! Local Service Discovery (BEP 14): the `BT-SEARCH` message peers multicast on their LAN
//! to say which torrents they serve on which port. No I/O here.
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: 0123456789abcdef0123456789abcdef01234567\r\n
//! cookie: 5f1c0a\r\n
//! \r\n
//! \r\n
//! ```
//!
//! A message may carry several `Infohash` lines (libtorrent sends one, others batch). The
//! cookie lets a sender recognise its own messages, which multicast loops back to it.

use std::net::Ipv4Addr;

/// The IPv4 multicast group and port of BEP 14.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 192, 152, 143);
pub const PORT: u16 = 6771;
/// Longest message read (one Ethernet frame's payload) and most info hashes taken from one.
pub const MAX_MESSAGE: usize = 1400;
pub const MAX_HASHES: usize = 20;

/// One announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The peer port of the sender (its address is the packet's source).
    pub port: u16,
    /// The torrents it serves.
    pub info_hashes: Vec<[u8; 20]>,
    /// Its cookie, if it sent one.
    pub cookie: Option<String>,
}

impl Announce {
    /// The message, at most [`MAX_HASHES`] info hashes of it (the caller sends the rest in
    /// further messages).
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: {GROUP_V4}:{PORT}\r\nPort: {}\r\n",
            self.port
        );
        for h in self.info_hashes.iter().take(MAX_HASHES) {
            s.push_str("Infohash: ");
            s.push_str(&hex::encode(h));
            s.push_str("\r\n");
        }
        if let Some(c) = &self.cookie {
            s.push_str("cookie: ");
            s.push_str(c);
            s.push_str("\r\n");
        }
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }

    /// Reads a message; `None` for anything that is not a well-formed `BT-SEARCH` with a
    /// port and at least one info hash. Header names are case-insensitive; unknown headers
    /// are skipped; info hashes past [`MAX_HASHES`] are ignored.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_MESSAGE {
            return None;
        }
        let text = std::str::from_utf8(bytes).ok()?;
        // CRLF as BEP 14 writes it; a bare LF from a lenient sender reads the same.
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        if lines.next()? != "BT-SEARCH * HTTP/1.1" {
            return None;
        }
        let mut port = None;
        let mut info_hashes = Vec::new();
        let mut cookie = None;
        for line in lines {
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "port" => port = Some(value.parse::<u16>().ok().filter(|&p| p != 0)?),
                "infohash" => {
                    let mut h = [0u8; 20];
                    if value.len() != 40 || hex::decode_to_slice(value, &mut h).is_err() {
                        return None;
                    }
                    if info_hashes.len() < MAX_HASHES && !info_hashes.contains(&h) {
                        info_hashes.push(h);
                    }
                }
                "cookie" if value.len() <= 64 => cookie = Some(value.to_string()),
                _ => {}
            }
        }
        if info_hashes.is_empty() {
            return None;
        }
        Some(Self {
            port: port?,
            info_hashes,
            cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_read_libtorrents_form() {
        let a = Announce {
            port: 6881,
            info_hashes: vec![[0xab; 20], [0x01; 20]],
            cookie: Some("c00k1e".into()),
        };
        assert_eq!(Announce::parse(&a.encode()), Some(a));
        // libtorrent 2.0: one hash, lower-case "cookie", an empty line and a blank one.
        let lt = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\nInfohash: 0123456789ABCDEF0123456789abcdef01234567\r\ncookie: 1a2b\r\n\r\n\r\n";
        let got = Announce::parse(lt).unwrap();
        assert_eq!(got.port, 51413);
        assert_eq!(
            hex::encode(got.info_hashes[0]),
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(got.cookie.as_deref(), Some("1a2b"));
        // Bare line feeds read the same.
        let lf = b"BT-SEARCH * HTTP/1.1\nPort: 7\nInfohash: 0123456789abcdef0123456789abcdef01234567\n\n";
        assert_eq!(Announce::parse(lf).unwrap().port, 7);
    }

    #[test]
    fn bad_messages_are_none_and_lists_are_capped() {
        let ok =
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n";
        assert!(Announce::parse(ok.as_bytes()).is_some());
        for bad in [
            "M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
            "BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
            "BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
            "BT-SEARCH * HTTP/1.1\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n",
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0123\r\n\r\n",
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nno colon here\r\n\r\n",
        ] {
            assert_eq!(Announce::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(Announce::parse(&[0xff; 40]), None);
        assert_eq!(Announce::parse(&vec![b'a'; MAX_MESSAGE + 1]), None);
        let many: String = (0..50u8)
            .map(|i| format!("Infohash: {}\r\n", hex::encode([i; 20])))
            .collect();
        let msg = format!("BT-SEARCH * HTTP/1.1\r\nPort: 9\r\n{many}\r\n");
        // 50 lines of 52 bytes do not fit a message: refused whole.
        assert_eq!(Announce::parse(msg.as_bytes()), None);
        let some: String = (0..25u8)
            .map(|i| format!("infohash: {}\r\n", hex::encode([i; 20])))
            .collect();
        let msg = format!("BT-SEARCH * HTTP/1.1\r\nport: 9\r\n{some}\r\n");
        assert_eq!(
            Announce::parse(msg.as_bytes()).unwrap().info_hashes.len(),
            MAX_HASHES
        );
    }
}
