//! One peer connection: the handshake, then a reader loop and a writer task.
//!
//! The reader loop `select!`s over decoded frames, commands from the rest of the torrent,
//! newly verified pieces (to send HAVE), finished disk reads and a one-second tick. It never
//! waits on the socket's write side: messages go to the writer task through a bounded
//! channel, and block data is read from disk only while the writer's backlog is small. So two
//! peers sending each other data cannot deadlock on full TCP buffers, and a peer that stops
//! reading fills its channel and is dropped instead of stalling us.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use share_proto::bitfield::Bitfield;
use share_proto::extension::{ExtendedHandshake, HANDSHAKE_ID};
use share_proto::geometry::Block;
use share_proto::wire::{self, BlockRequest, Handshake, Message};
use share_proto::PeerId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use crate::chat::{Limiter, CHAT_ID, PER_LINK};
use crate::error::{PeerError, TorrentError};
use crate::event::Event;
use crate::picker::PeerKey;
use crate::torrent::{PeerCmd, Shared};

mod download;
mod handshake;
mod upload;
mod writer;

use handshake::{handshake, register};
use writer::write_loop;

/// Messages queued for the writer before the peer counts as not reading.
const WRITE_QUEUE: usize = 1024;
/// Block bytes queued for the writer before we stop reading more from disk.
const WRITE_BACKLOG: usize = 1024 * 1024;
/// Blocks read from disk in one blocking call (contiguous ones with one system call).
const READ_BATCH: usize = 32;
/// Released requests remembered, so late data for them is not taken as unrequested.
const RELEASED_MEMORY: usize = 2048;

/// The peer-wire decoder for tokio-util's framed reads (writes go through `write_loop`).
struct WireCodec(wire::Decoder);

impl tokio_util::codec::Decoder for WireCodec {
    type Item = Message;
    type Error = PeerError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, PeerError> {
        Ok(self.0.decode(src)?)
    }
}

/// Runs a connection to its end and cleans up after it.
pub(crate) async fn run(shared: Arc<Shared>, mut stream: TcpStream, addr: SocketAddr, dialed: bool) {
    let _ = stream.set_nodelay(true);
    let hs = tokio::select! {
        r = tokio::time::timeout(shared.config.handshake_timeout, handshake(&shared, &mut stream, dialed)) => r,
        () = shared.cancel.cancelled() => return,
    };
    // Dialed or accepted, the connection counted as connecting until now.
    shared.lock().connecting.remove(&addr);
    let theirs = match hs {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return shared.refused(addr, format!("handshake failed: {e}")),
        Err(_) => {
            let secs = shared.config.handshake_timeout.as_secs_f64();
            return shared.refused(addr, format!("handshake not completed within {secs} s"));
        }
    };
    let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    if let Err(e) = register(&shared, key, addr, dialed, &theirs, cmd_tx) {
        if matches!(&e, PeerError::Refused(m) if m == "connected to ourselves") {
            shared.lock().self_addrs.insert(addr);
        }
        return shared.refused(addr, e.to_string());
    }
    shared.emit(Event::PeerUp {
        addr,
        peer_id: theirs.peer_id,
        client: None,
    });
    let (rd, wr) = stream.into_split();
    let mut conn = Conn::new(shared.clone(), key, addr, theirs, cmd_rx);
    let reason = match conn.run(rd, wr).await {
        Ok(reason) => reason,
        Err(e) => {
            if crate::conduct::is_violation(&e) {
                shared.strike(theirs.peer_id, &e.to_string());
            }
            e.to_string()
        }
    };
    tracing::debug!(%addr, %reason, "peer closed");
    {
        let mut st = shared.lock();
        if let Some(entry) = st.peers.remove(&key) {
            st.picker.remove_peer(key, &entry.has);
        }
        if st.optimistic == Some(key) {
            st.optimistic = None;
        }
    }
    shared.emit(Event::PeerDown {
        addr,
        peer_id: theirs.peer_id,
        reason,
    });
}

type DiskRead = JoinHandle<Result<Vec<(Block, Bytes)>, TorrentError>>;

/// The reader side of one connection.
struct Conn {
    shared: Arc<Shared>,
    key: PeerKey,
    addr: SocketAddr,
    peer_id: PeerId,
    extended: bool,
    cmd_rx: mpsc::Receiver<PeerCmd>,
    out: Option<mpsc::Sender<Message>>,
    backlog: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    /// Our requests to them, oldest first.
    outstanding: VecDeque<Block>,
    released: VecDeque<(u32, u32)>,
    /// Their requests to us, not yet read from disk.
    queue: VecDeque<Block>,
    reading: Option<DiskRead>,
    peer_choking: bool,
    am_interested: bool,
    am_choking: bool,
    pipeline: usize,
    told: usize,
    last_recv: Instant,
    last_block: Instant,
    timeouts: u32,
    /// The id they want `share_chat` under, once their extension handshake says so.
    chat_id: Option<u8>,
    /// Whether their extension handshake arrived.
    ext_seen: bool,
    limiter: Limiter,
}

impl Conn {
    fn new(
        shared: Arc<Shared>,
        key: PeerKey,
        addr: SocketAddr,
        theirs: Handshake,
        cmd_rx: mpsc::Receiver<PeerCmd>,
    ) -> Self {
        let pipeline = shared.config.pipeline;
        Self {
            shared,
            key,
            addr,
            peer_id: theirs.peer_id,
            extended: theirs.supports_extended(),
            cmd_rx,
            out: None,
            backlog: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            outstanding: VecDeque::new(),
            released: VecDeque::new(),
            queue: VecDeque::new(),
            reading: None,
            peer_choking: true,
            am_interested: false,
            am_choking: true,
            pipeline,
            told: 0,
            last_recv: Instant::now(),
            last_block: Instant::now(),
            timeouts: 0,
            chat_id: None,
            ext_seen: false,
            limiter: Limiter::new(PER_LINK),
        }
    }

    async fn run<R, W>(&mut self, rd: R, wr: W) -> Result<String, PeerError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let max_frame = wire::DEFAULT_MAX_FRAME.max(self.shared.geometry.piece_count() as usize / 8 + 16);
        let mut frames = FramedRead::with_capacity(rd, WireCodec(wire::Decoder::new(max_frame)), 64 * 1024);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        self.out = Some(tx);
        let writer = tokio::spawn(write_loop(
            wr,
            rx,
            self.backlog.clone(),
            self.drained.clone(),
            self.shared.config.keepalive_interval,
        ));
        let result = self.read_loop(&mut frames).await;
        // Dropping the sender lets the writer flush what is queued and end.
        self.out = None;
        if let Some(r) = self.reading.take() {
            r.abort();
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
        result
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        frames: &mut FramedRead<R, WireCodec>,
    ) -> Result<String, PeerError> {
        self.greet()?;
        let mut have_rx = self.shared.have_changed.subscribe();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                () = self.shared.cancel.cancelled() => return Ok("torrent stopped".into()),
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(PeerCmd::Close(reason)) => return Ok(reason),
                    Some(cmd) => self.on_cmd(cmd)?,
                    None => return Ok("torrent stopped".into()),
                },
                changed = have_rx.changed() => {
                    if changed.is_err() {
                        return Ok("torrent stopped".into());
                    }
                    if let Some(reason) = self.send_haves()? {
                        return Ok(reason);
                    }
                }
                frame = frames.next() => match frame {
                    None => return Ok("peer closed the connection".into()),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(msg)) => {
                        self.last_recv = Instant::now();
                        if let Some(reason) = self.on_message(msg)? {
                            return Ok(reason);
                        }
                    }
                },
                read = wait_read(&mut self.reading) => {
                    self.reading = None;
                    match read {
                        Ok(Ok(blocks)) => self.send_blocks(blocks)?,
                        Ok(Err(e)) => {
                            self.shared.fatal(&e);
                            return Ok("torrent stopped".into());
                        }
                        Err(e) => return Err(PeerError::Protocol(format!("disk read task failed: {e}"))),
                    }
                }
                () = self.drained.notified(), if !self.queue.is_empty() && self.reading.is_none() => {}
                _ = tick.tick() => self.on_tick()?,
            }
            self.refill()?;
            self.start_read();
        }
    }

    fn send(&self, msg: Message) -> Result<(), PeerError> {
        let out = self
            .out
            .as_ref()
            .ok_or_else(|| PeerError::Protocol("writer gone".into()))?;
        out.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                PeerError::Timeout("peer is not reading what we send".into())
            }
            mpsc::error::TrySendError::Closed(_) => PeerError::Io(std::io::ErrorKind::BrokenPipe.into()),
        })
    }

    /// Our bitfield, then the extension handshake: the bitfield must be the first message
    /// (BEP 3); clients put the extension handshake right after it.
    fn greet(&mut self) -> Result<(), PeerError> {
        let (bitfield, told) = {
            let st = self.shared.lock();
            let have = st.picker.have();
            (
                (have.count() > 0).then(|| Bytes::copy_from_slice(have.as_bytes())),
                st.have_log.len(),
            )
        };
        self.told = told;
        if let Some(b) = bitfield {
            self.send(Message::Bitfield(b))?;
        }
        if self.extended {
            let nick = self.shared.lock().chat.nick.clone();
            let mut hs = ExtendedHandshake {
                v: Some(self.shared.config.client_name.clone().into_bytes().into()),
                reqq: Some(self.shared.config.reqq as i64),
                p: Some(i64::from(self.shared.listen_addr.port())),
                nick: Some(nick.into_bytes().into()),
                ..Default::default()
            };
            hs.m.insert(share_proto::chat::EXTENSION.into(), i64::from(CHAT_ID));
            self.send(Message::Extended {
                id: HANDSHAKE_ID,
                payload: Bytes::from(hs.encode()),
            })?;
        }
        Ok(())
    }

    fn on_cmd(&mut self, cmd: PeerCmd) -> Result<(), PeerError> {
        match cmd {
            PeerCmd::Choke if !self.am_choking => {
                self.am_choking = true;
                self.queue.clear();
                self.send(Message::Choke)
            }
            PeerCmd::Unchoke if self.am_choking => {
                self.am_choking = false;
                self.send(Message::Unchoke)
            }
            PeerCmd::Chat(payload) => match self.chat_id {
                Some(id) => self.send(Message::Extended { id, payload }),
                None => Ok(()),
            },
            PeerCmd::Cancel(block) => {
                if let Some(pos) = self.outstanding.iter().position(|b| *b == block) {
                    self.outstanding.remove(pos);
                    self.remember_released(&block);
                    self.send(Message::Cancel(request_of(&block)))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// HAVE for every piece verified since we last told this peer; closes when both sides
    /// are complete.
    fn send_haves(&mut self) -> Result<Option<String>, PeerError> {
        let (new, wanted, complete, peer_full): (Vec<u32>, bool, bool, bool) = {
            let st = self.shared.lock();
            let new = st.have_log[self.told.min(st.have_log.len())..].to_vec();
            self.told = st.have_log.len();
            let entry = &st.peers[&self.key];
            (
                new,
                st.picker.wants_from(&entry.has),
                st.picker.is_complete(),
                entry.has.is_full(),
            )
        };
        for piece in new {
            self.send(Message::Have(piece))?;
        }
        if complete && peer_full && self.nothing_to_share() {
            return Ok(Some("both have everything".into()));
        }
        self.set_interest(wanted)?;
        Ok(None)
    }

    fn set_interest(&mut self, wanted: bool) -> Result<(), PeerError> {
        let wanted = wanted && self.shared.download;
        if wanted != self.am_interested {
            self.am_interested = wanted;
            self.send(if wanted {
                Message::Interested
            } else {
                Message::NotInterested
            })?;
        }
        Ok(())
    }

    fn on_message(&mut self, msg: Message) -> Result<Option<String>, PeerError> {
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::Unknown(_) => {}
            Message::Choke => {
                self.peer_choking = true;
                let mut st = self.shared.lock();
                st.picker.release_all(self.key);
                drop(st);
                while let Some(b) = self.outstanding.pop_front() {
                    self.remember_released(&b);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.last_block = Instant::now();
            }
            Message::Interested => {
                let unchoke = {
                    let mut st = self.shared.lock();
                    let unchoked = st.peers.values().filter(|p| !p.am_choking).count();
                    let entry = st.peers.get_mut(&self.key).expect("registered");
                    entry.interested = true;
                    let free = entry.am_choking && unchoked < self.shared.config.upload_slots;
                    if free {
                        entry.am_choking = false;
                    }
                    free
                };
                if unchoke {
                    self.on_cmd(PeerCmd::Unchoke)?;
                }
            }
            Message::NotInterested => {
                if let Some(e) = self.shared.lock().peers.get_mut(&self.key) {
                    e.interested = false;
                }
            }
            Message::Have(i) => {
                let Some(piece) = self.shared.geometry.piece(i) else {
                    return Err(PeerError::Protocol(format!(
                        "HAVE for piece {i}, past the last piece"
                    )));
                };
                let (wanted, done) = {
                    let mut st = self.shared.lock();
                    let st = &mut *st;
                    let entry = st.peers.get_mut(&self.key).expect("registered");
                    let new = entry.has.set(piece);
                    if new {
                        st.picker.peer_has(piece);
                    }
                    (
                        self.am_interested || st.picker.needs(i),
                        st.picker.is_complete() && entry.has.is_full(),
                    )
                };
                if done && self.nothing_to_share() {
                    return Ok(Some("both have everything".into()));
                }
                self.set_interest(wanted)?;
            }
            Message::Bitfield(bytes) => {
                // BEP 3 puts the bitfield first, but aria2c sends it later, once it has
                // pieces: a later one replaces what we knew. A malformed one still closes.
                let has = Bitfield::from_wire(&bytes, self.shared.geometry.piece_count())?;
                let (wanted, done) = {
                    let mut st = self.shared.lock();
                    let st = &mut *st;
                    let entry = st.peers.get_mut(&self.key).expect("registered");
                    st.picker.replace_peer(&entry.has, &has);
                    let wanted = st.picker.wants_from(&has);
                    let done = st.picker.is_complete() && has.is_full();
                    entry.has = has;
                    (wanted, done)
                };
                if done && self.nothing_to_share() {
                    return Ok(Some("both have everything".into()));
                }
                self.set_interest(wanted)?;
            }
            Message::Request(r) => self.on_request(r)?,
            Message::Cancel(r) => {
                self.queue.retain(|b| request_of(b) != r);
            }
            Message::Piece { index, begin, data } => self.on_piece(index, begin, data)?,
            Message::Extended {
                id: HANDSHAKE_ID,
                payload,
            } => return self.on_extended_handshake(&payload),
            Message::Extended { id: CHAT_ID, payload } => {
                let flood = || PeerError::Protocol("chat flood: far more messages than people type".into());
                match self.limiter.check() {
                    Some(true) => {
                        if !self
                            .shared
                            .chat_received(self.key, self.peer_id, self.addr, &payload)
                        {
                            return Err(flood());
                        }
                    }
                    Some(false) => self.shared.lock().chat.dropped += 1,
                    None => return Err(flood()),
                }
            }
            Message::Extended { .. } => {}
        }
        Ok(None)
    }

    fn on_extended_handshake(&mut self, payload: &[u8]) -> Result<Option<String>, PeerError> {
        self.ext_seen = true;
        let Some(hs) = ExtendedHandshake::decode(payload) else {
            return Ok(None);
        };
        if let Some(reqq) = hs.reqq.filter(|&q| q > 0) {
            self.pipeline = self.shared.config.pipeline.min(reqq as usize);
        }
        self.chat_id = hs.id_of(share_proto::chat::EXTENSION);
        let client = hs.client();
        let (both_complete, duplicate) = {
            let mut st = self.shared.lock();
            let complete = st.picker.is_complete();
            let entry = st.peers.get_mut(&self.key).expect("registered");
            entry.chat = self.chat_id.is_some();
            entry.nick = hs.nick();
            entry.client = client.clone();
            let full = entry.has.is_full();
            (
                complete && full,
                handshake::note_listen_port(&mut st, self.key, hs.p),
            )
        };
        if let Some(reason) = duplicate {
            return Ok(Some(reason));
        }
        self.shared.emit(Event::PeerUp {
            addr: self.addr,
            peer_id: self.peer_id,
            client,
        });
        if both_complete && self.nothing_to_share() {
            return Ok(Some("both have everything".into()));
        }
        if let Some(id) = self.chat_id {
            for payload in self.shared.chat_history() {
                self.send(Message::Extended { id, payload })?;
            }
        }
        Ok(None)
    }

    /// Whether a link between two complete peers has no more use: it carries no chat (known
    /// once their extension handshake is in, or never coming).
    fn nothing_to_share(&self) -> bool {
        !self.extended || (self.ext_seen && self.chat_id.is_none())
    }

    fn on_tick(&mut self) -> Result<(), PeerError> {
        let cfg = &self.shared.config;
        if self.last_recv.elapsed() > cfg.idle_timeout {
            return Err(PeerError::Timeout(format!(
                "nothing received for {} s",
                cfg.idle_timeout.as_secs()
            )));
        }
        if !self.outstanding.is_empty() && self.last_block.elapsed() > cfg.request_timeout {
            self.timeouts += 1;
            if self.timeouts >= 2 {
                return Err(PeerError::Timeout("requests unanswered twice in a row".into()));
            }
            self.shared.lock().picker.release_all(self.key);
            while let Some(b) = self.outstanding.pop_front() {
                self.remember_released(&b);
            }
            self.last_block = Instant::now();
        }
        Ok(())
    }
}

/// The running disk read, or never.
async fn wait_read(
    reading: &mut Option<DiskRead>,
) -> Result<Result<Vec<(Block, Bytes)>, TorrentError>, tokio::task::JoinError> {
    match reading.as_mut() {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

fn request_of(b: &Block) -> BlockRequest {
    BlockRequest {
        index: b.piece.get(),
        begin: b.begin,
        length: b.len,
    }
}
