//! MSE/PE on the session's connections (the handshake itself is `share_proto::mse`).
//!
//! - Incoming: the session reads the first 20 bytes. `\x13BitTorrent protocol` is a plain
//!   handshake; anything else is taken for MSE and answered by [`respond`], which finds the
//!   torrent among all of the session's info hashes.
//! - Outgoing: [`dial`] connects, and unless encryption is off, runs [`initiate`] with our
//!   BitTorrent handshake as its initial payload. Under `prefer` a peer that will not
//!   speak MSE is dialed again in plaintext; under `require` it is given up.
//!
//! Either way the connection becomes a [`PeerStream`]: the socket, and the RC4 ciphers when
//! RC4 was selected. The peer code reads and writes it like a socket.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use share_proto::mse::{self, Cipher, Handshake, Method, MseError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Whether connections are encrypted (`--encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Accept plain and encrypted connections; dial with the MSE handshake (offering RC4
    /// or plaintext after it) and fall back to plain when the peer will not speak MSE. The
    /// data after the handshake is RC4 only when the other side requires it: both sides
    /// allowing plaintext choose it, as libtorrent does by default.
    #[default]
    Prefer,
    /// RC4 only, both ways: plain handshakes are refused, and peers that will not encrypt
    /// are not dialed again.
    Require,
    /// Plain only: encrypted handshakes are refused, and we dial in plaintext.
    Off,
}

impl Encryption {
    /// What an MSE handshake of ours offers or accepts.
    fn methods(self) -> u32 {
        match self {
            Self::Prefer => mse::RC4 | mse::PLAINTEXT,
            Self::Require => mse::RC4,
            Self::Off => 0,
        }
    }
}

impl std::str::FromStr for Encryption {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "off" => Ok(Self::Off),
            _ => Err(format!("encryption is prefer, require or off, not {s:?}")),
        }
    }
}

impl std::fmt::Display for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::Off => "off",
        })
    }
}

/// Why an encrypted handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailure {
    #[error("encrypted handshake: {0}")]
    Mse(#[from] MseError),
    #[error("encrypted handshake: {0}")]
    Io(#[from] io::Error),
    #[error("encrypted handshake: the peer closed the connection")]
    Closed,
}

impl HandshakeFailure {
    /// Whether the peer closed or reset the connection: what a client that will not speak
    /// MSE does with our first bytes.
    fn is_hang_up(&self) -> bool {
        use io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
        match self {
            Self::Closed => true,
            Self::Io(e) => matches!(e.kind(), ConnectionReset | BrokenPipe | UnexpectedEof),
            Self::Mse(_) => false,
        }
    }
}

/// Bytes read at a time during the handshake; what comes after it is kept for the stream.
const READ_CHUNK: usize = 1024;

/// Runs `hs` over `tcp` to its end.
async fn drive(tcp: &mut TcpStream, hs: &mut Handshake) -> Result<mse::Done, HandshakeFailure> {
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let out = hs.take_output();
        if !out.is_empty() {
            tcp.write_all(&out).await?;
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(HandshakeFailure::Closed);
        }
        if let Some(done) = hs.receive(&buf[..n])? {
            let out = hs.take_output();
            if !out.is_empty() {
                tcp.write_all(&out).await?;
            }
            return Ok(done);
        }
    }
}

/// Dials `addr` and opens the connection as `encryption` says; `ours` is our BitTorrent
/// handshake. Returns the stream and whether `ours` was sent already (as MSE's initial
/// payload). Under `prefer`, a peer that fails the encrypted handshake is dialed again in
/// plaintext.
pub(crate) async fn dial(
    addr: SocketAddr,
    info_hash: [u8; 20],
    ours: &[u8],
    encryption: Encryption,
    connect_timeout: Duration,
    handshake_timeout: Duration,
) -> Result<(PeerStream, bool), DialError> {
    let connect = || async {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
            Ok(Err(e)) => Err(DialError::Connect(e.to_string())),
            Err(_) => Err(DialError::Connect(format!(
                "not connected within {} s",
                connect_timeout.as_secs_f64()
            ))),
        }
    };
    let tcp = connect().await?;
    if encryption == Encryption::Off {
        return Ok((PeerStream::plain(tcp), false));
    }
    match tokio::time::timeout(
        handshake_timeout,
        initiate(tcp, info_hash, encryption.methods(), ours.to_vec()),
    )
    .await
    {
        Ok(Ok(stream)) => Ok((stream, true)),
        // It answered and refused what we require, or hung up on our first bytes: it will
        // not encrypt. A timeout or a broken connection may pass: dialed again later.
        Ok(Err(HandshakeFailure::Mse(e))) if encryption == Encryption::Require => Err(DialError::Refused(
            format!("{} (--encryption require)", HandshakeFailure::Mse(e)),
        )),
        Ok(Err(e)) if encryption == Encryption::Require && e.is_hang_up() => Err(DialError::Refused(
            "the peer hung up on an encrypted handshake (--encryption require)".into(),
        )),
        Ok(Err(e)) if encryption == Encryption::Require => Err(DialError::Connect(e.to_string())),
        Err(_) if encryption == Encryption::Require => Err(DialError::Connect(format!(
            "encrypted handshake not completed within {} s",
            handshake_timeout.as_secs_f64()
        ))),
        // Not MSE, or not with us: plaintext, as a fresh connection.
        _ => Ok((PeerStream::plain(connect().await?), false)),
    }
}

/// Why a dial made no connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    /// The TCP connect failed.
    #[error("connect: {0}")]
    Connect(String),
    /// The peer would not do the encryption we require.
    #[error("{0}")]
    Refused(String),
}

/// The initiating side of MSE on a connected socket.
pub(crate) async fn initiate(
    mut tcp: TcpStream,
    info_hash: [u8; 20],
    methods: u32,
    initial_payload: Vec<u8>,
) -> Result<PeerStream, HandshakeFailure> {
    let mut hs = Handshake::initiator(info_hash, methods, initial_payload);
    let done = drive(&mut tcp, &mut hs).await?;
    Ok(PeerStream::from_handshake(tcp, done, Vec::new()))
}

/// The responding side of MSE: `first` are the bytes the session read to tell MSE from a
/// plain handshake; `lookup` finds a torrent by HASH('req2', info hash). Returns the
/// stream (the initiator's initial payload first in it) and the torrent's info hash.
pub(crate) async fn respond(
    mut tcp: TcpStream,
    first: &[u8],
    encryption: Encryption,
    lookup: mse::Lookup,
) -> Result<(PeerStream, [u8; 20]), HandshakeFailure> {
    let mut hs = Handshake::responder(encryption.methods(), lookup);
    if let Some(done) = hs.receive(first)? {
        // Not possible with 20 bytes, but harmless.
        let ih = done.info_hash;
        return Ok((PeerStream::from_handshake(tcp, done, Vec::new()), ih));
    }
    let mut done = drive(&mut tcp, &mut hs).await?;
    let ih = done.info_hash;
    let ia = std::mem::take(&mut done.initial_payload);
    Ok((PeerStream::from_handshake(tcp, done, ia), ih))
}

/// How a connection's bytes look on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Crypto {
    /// A plain BitTorrent handshake and stream.
    #[default]
    Plain,
    /// The MSE handshake (nothing recognisable), then a plaintext stream.
    Handshake,
    /// The MSE handshake, then an RC4 stream.
    Rc4,
}

impl Crypto {
    /// Its name in events: `plain`, `handshake` or `rc4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Handshake => "handshake",
            Self::Rc4 => "rc4",
        }
    }
}

/// A peer connection: the socket, encrypted or not.
#[derive(Debug)]
pub struct PeerStream {
    rd: Decrypting<OwnedReadHalf>,
    wr: Encrypting<OwnedWriteHalf>,
    crypto: Crypto,
}

impl PeerStream {
    /// A plaintext connection.
    pub fn plain(tcp: TcpStream) -> Self {
        let (rd, wr) = tcp.into_split();
        Self {
            rd: Decrypting::new(rd, None, Vec::new()),
            wr: Encrypting::new(wr, None),
            crypto: Crypto::Plain,
        }
    }

    /// The connection after a finished MSE handshake; `plain_prefix` (already decrypted)
    /// is read before the socket's bytes.
    fn from_handshake(tcp: TcpStream, done: mse::Done, plain_prefix: Vec<u8>) -> Self {
        let (rd, wr) = tcp.into_split();
        let (tx, mut rx) = match done.ciphers {
            Some((tx, rx)) if done.method == Method::Rc4 => (Some(tx), Some(rx)),
            _ => (None, None),
        };
        let mut rest = done.rest;
        if let Some(rx) = &mut rx {
            mse::apply(rx, &mut rest);
        }
        let mut prefix = plain_prefix;
        prefix.extend_from_slice(&rest);
        Self {
            crypto: if tx.is_some() {
                Crypto::Rc4
            } else {
                Crypto::Handshake
            },
            rd: Decrypting::new(rd, rx, prefix),
            wr: Encrypting::new(wr, tx),
        }
    }

    /// How this connection's bytes look on the wire.
    pub fn crypto(&self) -> Crypto {
        self.crypto
    }

    /// The reading and writing halves, for the connection's reader and writer tasks.
    pub fn into_split(self) -> (Decrypting<OwnedReadHalf>, Encrypting<OwnedWriteHalf>) {
        (self.rd, self.wr)
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.rd).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.wr).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.wr).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.wr).poll_shutdown(cx)
    }
}

/// The reading half: bytes left from the handshake first, then the socket's, decrypted
/// when a cipher is set.
pub struct Decrypting<R> {
    inner: R,
    cipher: Option<Cipher>,
    prefix: Vec<u8>,
    pos: usize,
}

impl<R: std::fmt::Debug> std::fmt::Debug for Decrypting<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypting")
            .field("inner", &self.inner)
            .field("rc4", &self.cipher.is_some())
            .finish_non_exhaustive()
    }
}

impl<R> Decrypting<R> {
    fn new(inner: R, cipher: Option<Cipher>, prefix: Vec<u8>) -> Self {
        Self {
            inner,
            cipher,
            prefix,
            pos: 0,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Decrypting<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(c) = &mut this.cipher {
            mse::apply(c, &mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

/// Most bytes one write encrypts into its buffer (kept per RC4 connection; each call to the
/// socket still needs only to make progress).
const MAX_PENDING: usize = 64 * 1024;

/// The writing half: with a cipher, what is written is encrypted into a buffer (the
/// keystream cannot be rewound, so encrypted bytes must all go out) and sent from there.
pub struct Encrypting<W> {
    inner: W,
    cipher: Option<Cipher>,
    pending: Vec<u8>,
    sent: usize,
}

impl<W: std::fmt::Debug> std::fmt::Debug for Encrypting<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encrypting")
            .field("inner", &self.inner)
            .field("rc4", &self.cipher.is_some())
            .finish_non_exhaustive()
    }
}

impl<W> Encrypting<W> {
    fn new(inner: W, cipher: Option<Cipher>) -> Self {
        Self {
            inner,
            cipher,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

impl<W: AsyncWrite + Unpin> Encrypting<W> {
    /// Writes out the encrypted buffer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Encrypts `bufs` (up to `MAX_PENDING` bytes) into the emptied buffer and starts
    /// sending it; the bytes count as written.
    fn poll_encrypted(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut taken = 0;
        for b in bufs {
            let room = MAX_PENDING.saturating_sub(taken);
            if room == 0 {
                break;
            }
            let part = &b[..b.len().min(room)];
            self.pending.extend_from_slice(part);
            taken += part.len();
        }
        if let Some(c) = &mut self.cipher {
            mse::apply(c, &mut self.pending);
        }
        // Start sending; what the socket does not take now goes with the next call.
        if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Encrypting<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cipher.is_none() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.poll_encrypted(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cipher.is_none() {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        this.poll_encrypted(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.cipher.is_some() || self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
