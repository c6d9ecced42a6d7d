//! One peer connection: the handshake, then a reader loop and a writer task.
//!
//! The reader loop `select!`s over decoded frames, commands from the rest of the torrent,
//! newly verified pieces (to send HAVE), finished disk reads and a one-second tick. It never
//! waits on the socket's write side: messages go to the writer task through a bounded
//! channel, and block data is read from disk only while the writer's backlog is small. So two
//! peers sending each other data cannot deadlock on full TCP buffers, and a peer that stops
//! reading fills its channel and is dropped instead of stalling us.
//!
//! The writer lives and dies with its connection: it is a tracked task whose handle the
//! connection holds, every write it makes has a deadline (`Config::write_timeout`), the
//! reader loop ends when the writer does (a peer that stops reading is dropped within that
//! deadline), and when the connection ends the writer gets a short grace to flush and is then
//! aborted, so no socket, task or queued block outlives the connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::encryption::PeerStream;
use bytes::BytesMut;
use futures_util::StreamExt;
use share_proto::bitfield::Bitfield;
use share_proto::extension::HANDSHAKE_ID;
use share_proto::geometry::Block;
use share_proto::wire::{self, BlockRequest, Handshake, Message};
use share_proto::PeerId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use crate::chat::CHAT_ID;
use crate::error::{PeerError, Refusal, TorrentError, Violation};
use crate::event::Event;
use crate::picker::PeerKey;
use crate::torrent::{PeerCmd, Shared};

mod download;
mod extended;
mod handshake;
mod haves;
mod metadata;
mod pex;
mod upload;
mod writer;

use handshake::handshake;
use upload::ReadBatch;
pub(crate) use upload::Withheld;
use writer::write_loop;

/// Messages queued for the writer before the peer counts as not reading.
const WRITE_QUEUE: usize = 1024;
/// Block bytes queued for the writer before we stop reading more from disk.
const WRITE_BACKLOG: usize = 1024 * 1024;
/// Blocks read from disk in one blocking call (contiguous ones with one system call).
const READ_BATCH: usize = 32;
/// Released requests remembered, so late data for them is not taken as unrequested.
const RELEASED_MEMORY: usize = 2048;
/// How long a closing connection's writer may flush what is queued (a last HAVE or chat
/// line) before it is aborted; its writes are under `write_timeout` besides.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The peer-wire decoder for tokio-util's framed reads (writes go through `write_loop`).
struct WireCodec(wire::Decoder);

impl tokio_util::codec::Decoder for WireCodec {
    type Item = Message;
    type Error = PeerError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, PeerError> {
        Ok(self.0.decode(src)?)
    }
}

/// How a connection opened.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Opening {
    /// We dialed it; `sent_ours` if our handshake went out already (as MSE's initial
    /// payload).
    Dialed { sent_ours: bool },
    /// It connected to us; the session read the start of its handshake (protocol, reserved
    /// bits, info hash) to find this torrent.
    Accepted([u8; crate::session::HEAD_LEN]),
}

/// Runs a connection to its end and cleans up after it.
pub(crate) async fn run(shared: Arc<Shared>, mut stream: PeerStream, addr: SocketAddr, opening: Opening) {
    let dialed = matches!(opening, Opening::Dialed { .. });
    let crypto = stream.crypto();
    let hs = tokio::select! {
        r = tokio::time::timeout(shared.config.handshake_timeout, handshake(&shared, &mut stream, opening)) => r,
        () = shared.cancel.cancelled() => return,
    };
    // Dialed or accepted, the connection counted as connecting until now.
    shared.handshake_over(addr);
    let theirs = match hs {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return shared.refused(addr, format!("handshake failed: {e}")),
        Err(_) => {
            let secs = shared.config.handshake_timeout.as_secs_f64();
            return shared.refused(addr, format!("handshake not completed within {secs} s"));
        }
    };
    // A connection permit of the session, held as long as the connection is registered.
    let Ok(_permit) = shared.session.connections.clone().try_acquire_owned() else {
        let max = shared.session.config.max_connections;
        return shared.refused(addr, Refusal::SessionFull(max).to_string());
    };
    let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let active = match shared.register(key, addr, dialed, &theirs, cmd_tx) {
        Ok(active) => active,
        Err(e) => {
            if matches!(e, PeerError::Refused(Refusal::Ourselves)) {
                shared.connected_to_self(addr);
            }
            return shared.refused(addr, e.to_string());
        }
    };
    let (rd, wr) = stream.into_split();
    let mut conn = Conn::new(shared.clone(), key, addr, theirs, cmd_rx, active);
    conn.crypto = crypto;
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
    // Every `PeerDown` follows exactly one `PeerUp`, even for a connection that ended before
    // its extension handshake.
    conn.announce(None);
    shared.unregister(key);
    shared.emit(Event::PeerDown {
        addr,
        peer_id: theirs.peer_id,
        reason,
    });
}

type DiskRead = JoinHandle<Result<ReadBatch, TorrentError>>;

/// A task that ends when its holder does: aborted on drop.
struct TaskGuard<T>(Option<JoinHandle<T>>);

impl<T> Drop for TaskGuard<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// The reader side of one connection.
struct Conn {
    shared: Arc<Shared>,
    /// Cancelled when the torrent pauses or stops.
    active: tokio_util::sync::CancellationToken,
    key: PeerKey,
    addr: SocketAddr,
    peer_id: PeerId,
    extended: bool,
    /// Whether their handshake advertises a DHT node (BEP 5).
    their_dht: bool,
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
    /// The id the peer wants `ut_metadata` under, and how many pieces it asked of us.
    metadata_id: Option<u8>,
    metadata_requests: u32,
    /// Peer exchange on this connection (`pex.rs`).
    pex: pex::PexState,
    /// Whether their extension handshake arrived.
    ext_seen: bool,
    /// Whether one of theirs could be read; later ones only update their nickname.
    ext_valid: bool,
    /// Whether `PeerUp` was emitted: once per connection, with the client name when their
    /// extension handshake brings it in time.
    announced: bool,
    started: Instant,
    /// Whether MSE and RC4 run on this connection (`encryption.rs`).
    crypto: crate::encryption::Crypto,
    /// While our download limit is in debt: when to look at it again. The socket is not
    /// read meanwhile, so TCP's window slows the sender (`limits.rs`).
    down_until: Option<tokio::time::Instant>,
    /// When the current download pause began.
    paused_at: Option<Instant>,
    /// While our upload limit is in debt: when the next disk read of queued blocks may start.
    up_until: Option<tokio::time::Instant>,
}

/// How long `PeerUp` waits for the extension handshake (and its client name) of a peer that
/// advertised one; clients send it right after the handshake, and a peer that never does is
/// still a peer.
const CLIENT_NAME_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl Conn {
    fn new(
        shared: Arc<Shared>,
        key: PeerKey,
        addr: SocketAddr,
        theirs: Handshake,
        cmd_rx: mpsc::Receiver<PeerCmd>,
        active: tokio_util::sync::CancellationToken,
    ) -> Self {
        let pipeline = shared.config.pipeline;
        Self {
            shared,
            active,
            key,
            addr,
            peer_id: theirs.peer_id,
            extended: theirs.supports_extended(),
            their_dht: theirs.supports_dht(),
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
            metadata_id: None,
            metadata_requests: 0,
            pex: pex::PexState::default(),
            ext_seen: false,
            ext_valid: false,
            announced: false,
            started: Instant::now(),
            crypto: crate::encryption::Crypto::Plain,
            down_until: None,
            paused_at: None,
            up_until: None,
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
        let cfg = &self.shared.config;
        // Inside the connection's span (current here): `peer{addr}:task{writer}`.
        let writer_span = tracing::info_span!("task", task = "peer writer");
        let handle = self.shared.tasks.spawn(tracing::Instrument::instrument(
            write_loop(
                wr,
                rx,
                self.backlog.clone(),
                self.drained.clone(),
                cfg.keepalive_interval,
                cfg.write_timeout,
            ),
            writer_span,
        ));
        let mut writer = TaskGuard(Some(handle));
        let running = writer.0.as_mut().expect("just spawned");
        let (result, writer_done) = tokio::select! {
            r = self.read_loop(&mut frames) => (r, false),
            // The writer ends first only when the socket failed or stopped taking our bytes.
            w = running => (Err(match w {
                Ok(Err(e)) => e,
                Ok(Ok(())) => PeerError::Local("the writer ended early".into()),
                Err(e) => PeerError::Local(format!("the writer task failed: {e}")),
            }), true),
        };
        if writer_done {
            writer.0 = None;
        }
        // Dropping the sender lets the writer flush what is queued and end; past the grace it
        // is aborted (with the guard), which closes our half of the socket.
        self.out = None;
        if let Some(r) = self.reading.take() {
            r.abort();
        }
        if let Some(mut h) = writer.0.take() {
            if tokio::time::timeout(CLOSE_GRACE, &mut h).await.is_err() {
                h.abort();
                let _ = h.await;
            }
        }
        result
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        frames: &mut FramedRead<R, WireCodec>,
    ) -> Result<String, PeerError> {
        let mut have_rx = self.greet()?;
        if !self.extended {
            self.announce(None);
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                () = self.active.cancelled() => return Ok(match self.shared.cancel.is_cancelled() {
                    true => "torrent stopped".into(),
                    false => "paused".into(),
                }),
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
                () = wait_until(self.down_until) => self.down_resume(),
                () = wait_until(self.up_until) => {
                    self.up_until = None;
                    self.start_read();
                }
                frame = frames.next(), if self.down_until.is_none() => match frame {
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
                        Ok(Ok(batch)) => self.read_done(batch)?,
                        Ok(Err(e)) => {
                            self.shared.fatal(&e);
                            return Ok("torrent stopped".into());
                        }
                        // Our failure, not the peer's: the connection ends without a strike.
                        Err(e) => return Err(PeerError::Local(format!("disk read task failed: {e}"))),
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
            .ok_or_else(|| PeerError::Local("writer gone".into()))?;
        out.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                PeerError::Timeout("peer is not reading what we send".into())
            }
            mpsc::error::TrySendError::Closed(_) => PeerError::Io(std::io::ErrorKind::BrokenPipe.into()),
        })
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
            PeerCmd::Greet if self.extended => self.send_ext_handshake(),
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

    fn on_message(&mut self, msg: Message) -> Result<Option<String>, PeerError> {
        match msg {
            // PORT (BEP 5) names the peer's DHT node; `mainline` has no call to add a node
            // by address, so ours learns nodes through its own lookups.
            Message::KeepAlive | Message::Port(_) | Message::Unknown(_) => {}
            Message::Choke => {
                self.peer_choking = true;
                self.shared.release_all(self.key);
                while let Some(b) = self.outstanding.pop_front() {
                    self.remember_released(&b);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.last_block = Instant::now();
            }
            Message::Interested => {
                if self.shared.peer_interested(self.key) {
                    self.on_cmd(PeerCmd::Unchoke)?;
                }
            }
            Message::NotInterested => {
                self.shared.peer_not_interested(self.key);
            }
            Message::Have(i) => {
                let Some(piece) = self.shared.geometry.piece(i) else {
                    return Err(Violation::HaveOutOfRange(i).into());
                };
                let interest = self.shared.peer_has(self.key, piece, self.am_interested);
                return self.on_interest(interest);
            }
            Message::Bitfield(bytes) => {
                // BEP 3 puts the bitfield first, but aria2c sends it later, once it has
                // pieces: a later one replaces what we knew. A malformed one still closes.
                let has = Bitfield::from_wire(&bytes, self.shared.geometry.piece_count())?;
                let interest = self.shared.peer_bitfield(self.key, has);
                return self.on_interest(interest);
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
                self.shared
                    .chat_received(self.key, self.peer_id, self.addr, &payload)?;
            }
            Message::Extended {
                id: metadata::METADATA_ID,
                payload,
            } => self.on_metadata(&payload)?,
            Message::Extended {
                id: pex::PEX_ID,
                payload,
            } => self.on_pex(&payload),
            Message::Extended { .. } => {}
        }
        Ok(None)
    }

    /// Whether a link between two complete peers has no more use: it carries no chat (known
    /// once their extension handshake is in, or never coming).
    fn nothing_to_share(&self) -> bool {
        !self.extended || (self.ext_seen && self.chat_id.is_none())
    }

    fn on_tick(&mut self) -> Result<(), PeerError> {
        if !self.announced && self.started.elapsed() >= CLIENT_NAME_WAIT {
            self.announce(None);
        }
        self.pex_tick()?;
        if self.down_until.is_some() {
            // We are not reading: silence now is ours, not the peer's (`down_resume`).
            return Ok(());
        }
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
            self.shared.release_all(self.key);
            while let Some(b) = self.outstanding.pop_front() {
                self.remember_released(&b);
            }
            self.last_block = Instant::now();
        }
        Ok(())
    }
}

/// Completes at `until`, or never when it is `None`.
async fn wait_until(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The running disk read, or never.
async fn wait_read(
    reading: &mut Option<DiskRead>,
) -> Result<Result<ReadBatch, TorrentError>, tokio::task::JoinError> {
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
