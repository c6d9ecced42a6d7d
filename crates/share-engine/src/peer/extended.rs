//! The BEP 10 side of a connection: our extension handshake (sent again after `/nick`, which
//! BEP 10 allows), theirs (the client name, their `share_chat` id, their nickname; a later
//! one updates the nickname), and the one `PeerUp` per connection, emitted once the client
//! name is known or clearly not coming.

use bytes::Bytes;
use share_proto::extension::{ExtendedHandshake, HANDSHAKE_ID};
use share_proto::wire::Message;

use super::Conn;
use crate::chat::CHAT_ID;
use crate::error::PeerError;
use crate::event::Event;

impl Conn {
    /// Our BEP 10 handshake, with our current nickname.
    pub(super) fn send_ext_handshake(&self) -> Result<(), PeerError> {
        let nick = self.shared.nick();
        let mut hs = ExtendedHandshake {
            v: Some(self.shared.config.client_name.clone().into_bytes().into()),
            reqq: Some(self.shared.config.reqq as i64),
            p: Some(i64::from(self.shared.listen_addr.port())),
            nick: Some(nick.into_bytes().into()),
            metadata_size: self.metadata_size(),
            ..Default::default()
        };
        hs.m.insert(share_proto::chat::EXTENSION.into(), i64::from(CHAT_ID));
        if self.pex_allowed() {
            hs.m.insert(share_proto::pex::EXTENSION.into(), i64::from(super::pex::PEX_ID));
        }
        if hs.metadata_size.is_some() {
            hs.m.insert(
                share_proto::metadata::EXTENSION.into(),
                i64::from(super::metadata::METADATA_ID),
            );
        }
        self.send(Message::Extended {
            id: HANDSHAKE_ID,
            payload: Bytes::from(hs.encode()),
        })
    }

    /// Emits this connection's one `PeerUp`.
    pub(super) fn announce(&mut self, client: Option<String>) {
        if !std::mem::replace(&mut self.announced, true) {
            self.shared.emit(Event::PeerUp {
                addr: self.addr,
                peer_id: self.peer_id,
                client,
                encryption: self.crypto,
            });
        }
    }

    pub(super) fn on_extended_handshake(&mut self, payload: &[u8]) -> Result<Option<String>, PeerError> {
        self.ext_seen = true;
        let Some(hs) = ExtendedHandshake::decode(payload) else {
            return Ok(None);
        };
        if std::mem::replace(&mut self.ext_valid, true) {
            // A later handshake (BEP 10 allows them) updates what it names: after `/nick`.
            self.shared.peer_renamed(self.key, hs.nick());
            return Ok(None);
        }
        if let Some(reqq) = hs.reqq.filter(|&q| q > 0) {
            self.pipeline = self.shared.config.pipeline.min(reqq as usize);
        }
        self.chat_id = hs.id_of(share_proto::chat::EXTENSION);
        self.metadata_id = hs.id_of(share_proto::metadata::EXTENSION);
        self.pex.id = hs.id_of(share_proto::pex::EXTENSION);
        let client = hs.client();
        let (both_complete, duplicate) =
            self.shared
                .peer_extended(self.key, self.chat_id.is_some(), hs.nick(), client.clone(), hs.p);
        self.announce(client);
        if let Some(reason) = duplicate {
            return Ok(Some(reason));
        }
        if both_complete && self.nothing_to_share() {
            return Ok(Some("both have everything".into()));
        }
        // Our first peer exchange: everyone we know of, at once.
        self.send_pex()?;
        if let Some(id) = self.chat_id {
            for payload in self.shared.chat_history() {
                self.send(Message::Extended { id, payload })?;
            }
        }
        Ok(None)
    }
}
