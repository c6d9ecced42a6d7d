//! A peer speaking the wire by hand (share-proto's encoder on a plain tokio socket), for
//! tests that need exactly the bytes a hostile or odd peer would send: requests it never
//! reads the answers to, chat under invented origins, frames of the wrong length, half a
//! handshake or none.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use share_proto::chat::ChatMessage;
use share_proto::extension::ExtendedHandshake;
use share_proto::wire::{self, Handshake, Message, HANDSHAKE_LEN};
use share_proto::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The extended id we ask the engine to send `share_chat` to us under.
pub const OUR_CHAT_ID: u8 = 5;
/// The extended id the engine takes `share_chat` under (its handshake says 1).
pub const ENGINE_CHAT_ID: u8 = 1;

/// A peer id `-XX0001-` plus `tag` and `n`.
pub fn peer_id(tag: u8, n: u32) -> PeerId {
    let mut id = *b"-XX0001-raw-peer-\0\0\0";
    id[16] = tag;
    id[17..20].copy_from_slice(&n.to_be_bytes()[1..]);
    PeerId(id)
}

/// The bytes of `msg` on the wire.
pub fn frame(msg: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    wire::encode(msg, &mut out);
    out.to_vec()
}

/// A frame with id `id` and `payload`, whatever its length should be.
pub fn raw_frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (1 + payload.len() as u32).to_be_bytes().to_vec();
    out.push(id);
    out.extend_from_slice(payload);
    out
}

/// One connection.
pub struct RawPeer {
    pub stream: TcpStream,
    buf: BytesMut,
    /// Bytes the engine sent us (its handshake included).
    pub received: usize,
}

impl RawPeer {
    /// Connects and completes a handshake for `info_hash` as `peer_id`.
    pub async fn connect(addr: SocketAddr, info_hash: InfoHash, peer_id: PeerId) -> Self {
        Self::handshake(TcpStream::connect(addr).await.unwrap(), info_hash, peer_id).await
    }

    /// Like `connect`, with a 4 KiB receive buffer: what we do not read backs up at once.
    pub async fn connect_small_window(addr: SocketAddr, info_hash: InfoHash, peer_id: PeerId) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        Self::handshake(socket.connect(addr).await.unwrap(), info_hash, peer_id).await
    }

    /// Connects and sends nothing yet, not even a handshake.
    pub async fn connect_silent(addr: SocketAddr) -> Self {
        Self::raw(TcpStream::connect(addr).await.unwrap())
    }

    /// Accepts the engine's plaintext connection on `listener` and answers its handshake as
    /// `peer_id`. The raw peer speaks no MSE: an encrypted first try (the engine's default,
    /// `--encryption prefer`) is hung up on, as a plaintext-only client does, and the engine
    /// dials again in plaintext.
    pub async fn accept(listener: &TcpListener, peer_id: PeerId) -> Self {
        loop {
            let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
                .await
                .expect("the engine dials the raw peer")
                .unwrap();
            let mut p = Self::raw(stream);
            let mut head = [0u8; 20];
            tokio::time::timeout(Duration::from_secs(10), p.stream.read_exact(&mut head))
                .await
                .expect("the engine opens the connection")
                .unwrap();
            if &head != share_proto::wire::PROTOCOL {
                continue;
            }
            let mut theirs = [0u8; HANDSHAKE_LEN];
            theirs[..20].copy_from_slice(&head);
            p.stream.read_exact(&mut theirs[20..]).await.unwrap();
            p.received += HANDSHAKE_LEN;
            let theirs = Handshake::decode(&theirs).unwrap();
            p.send_raw(&Handshake::ours(theirs.info_hash, peer_id).encode())
                .await;
            return p;
        }
    }

    async fn handshake(stream: TcpStream, info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut p = Self::raw(stream);
        p.send_raw(&Handshake::ours(info_hash, peer_id).encode()).await;
        assert_eq!(p.read_handshake().await.info_hash, info_hash);
        p
    }

    fn raw(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            received: 0,
        }
    }

    async fn read_handshake(&mut self) -> Handshake {
        let mut theirs = [0u8; HANDSHAKE_LEN];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut theirs))
            .await
            .expect("the engine answers the handshake")
            .unwrap();
        self.received += HANDSHAKE_LEN;
        Handshake::decode(&theirs).unwrap()
    }

    /// Sends `bytes` as they are; a connection the engine closed (on an earlier fault, its
    /// right) shows up in `recv` or `closed`.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends messages; a connection the engine closed shows up in `recv` or `closed`.
    pub async fn send(&mut self, msgs: &[Message]) {
        let mut out = BytesMut::new();
        for m in msgs {
            wire::encode(m, &mut out);
        }
        self.send_raw(&out).await;
    }

    /// Our extension handshake, offering `share_chat`.
    pub async fn offer_chat(&mut self) {
        let mut ext = ExtendedHandshake::default();
        ext.m
            .insert(share_proto::chat::EXTENSION.into(), i64::from(OUR_CHAT_ID));
        self.send(&[Message::Extended {
            id: 0,
            payload: Bytes::from(ext.encode()),
        }])
        .await;
    }

    /// A room message from `origin`.
    pub async fn chat(&mut self, origin: PeerId, seq: u64, text: &str) {
        let m = ChatMessage {
            origin,
            seq,
            time_ms: 1,
            nick: "raw".into(),
            text: text.into(),
            hops: 0,
            to: None,
        };
        self.send(&[Message::Extended {
            id: ENGINE_CHAT_ID,
            payload: Bytes::from(m.encode()),
        }])
        .await;
    }

    /// The next message, or `None` once the engine closed; panics after `secs` of silence.
    pub async fn recv(&mut self, secs: u64) -> Option<Message> {
        // The wire's own cap: no peer using share-proto's decoder would take a larger frame.
        let decoder = wire::Decoder::default();
        loop {
            if let Some(m) = decoder
                .decode(&mut self.buf)
                .expect("the engine sends valid frames")
            {
                return Some(m);
            }
            let n = tokio::time::timeout(Duration::from_secs(secs), self.stream.read_buf(&mut self.buf))
                .await
                .expect("the engine sends something in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.received += n;
        }
    }

    /// Reads messages until one matches `pred`.
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        loop {
            match self.recv(10).await {
                Some(m) if pred(&m) => return m,
                Some(_) => {}
                None => panic!("the engine closed before sending {what}"),
            }
        }
    }

    /// Reads (and drops) whatever comes until the engine closes; panics after `secs`.
    pub async fn closed(&mut self, secs: u64) {
        let mut sink = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut sink)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => self.received += n,
                Err(_) => panic!("the engine kept the connection open for {secs} s"),
            }
        }
    }
}
