//! The writer side of a connection: queued messages leave with vectored writes, block data
//! straight from its `Bytes`, and a keep-alive goes out when nothing else has for a while.
//! Every write has a deadline: a peer that takes none of our bytes for `write_timeout` ends
//! the writer with an error, and with it the connection (`mod.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use share_proto::wire::{self, Message};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use crate::error::PeerError;

/// Writes queued messages with vectored writes, several frames per system call, and
/// keep-alives when idle. Block data goes from the disk read's `Bytes` to the socket without
/// being copied into a send buffer: only the 13-byte headers are encoded.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Message>,
    backlog: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    keepalive: std::time::Duration,
    write_timeout: std::time::Duration,
) -> Result<(), PeerError> {
    /// Frames gathered before writing.
    const BATCH: usize = 64;
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    let mut scratch = BytesMut::new();
    loop {
        let first = match tokio::time::timeout(keepalive, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(_) => Message::KeepAlive,
        };
        let mut data = queue_frame(first, &mut chunks, &mut scratch);
        for _ in 1..BATCH {
            match rx.try_recv() {
                Ok(m) => data += queue_frame(m, &mut chunks, &mut scratch),
                Err(_) => break,
            }
        }
        write_all_chunks(&mut wr, &mut chunks, write_timeout).await?;
        if data > 0 {
            backlog.fetch_sub(data, Ordering::Relaxed);
            drained.notify_one();
        }
    }
}

/// Queues the wire form of `msg`; returns its block bytes (for the backlog count).
fn queue_frame(msg: Message, chunks: &mut VecDeque<Bytes>, scratch: &mut BytesMut) -> usize {
    match msg {
        Message::Piece { index, begin, data } => {
            use bytes::BufMut;
            scratch.put_u32(9 + data.len() as u32);
            scratch.put_u8(7);
            scratch.put_u32(index);
            scratch.put_u32(begin);
            chunks.push_back(scratch.split().freeze());
            let n = data.len();
            chunks.push_back(data);
            n
        }
        other => {
            wire::encode(&other, scratch);
            chunks.push_back(scratch.split().freeze());
            0
        }
    }
}

/// Writes every queued chunk, as many per `writev` as the socket takes; each system call
/// must make progress within `deadline`.
async fn write_all_chunks<W: AsyncWrite + Unpin>(
    wr: &mut W,
    chunks: &mut VecDeque<Bytes>,
    deadline: std::time::Duration,
) -> Result<(), PeerError> {
    use bytes::Buf;
    let stalled = || {
        PeerError::Timeout(format!(
            "peer stopped reading: nothing of ours taken for {} s",
            deadline.as_secs_f64()
        ))
    };
    while !chunks.is_empty() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks
            .iter()
            .take(128)
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        let mut n = tokio::time::timeout(deadline, wr.write_vectored(&slices))
            .await
            .map_err(|_| stalled())??;
        if n == 0 {
            return Err(PeerError::Io(std::io::ErrorKind::WriteZero.into()));
        }
        while n > 0 {
            let front = chunks.front_mut().expect("bytes written come from queued chunks");
            if n >= front.len() {
                n -= front.len();
                chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
    tokio::time::timeout(deadline, wr.flush())
        .await
        .map_err(|_| stalled())??;
    Ok(())
}
