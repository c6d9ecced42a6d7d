//! The writer side of a connection: queued messages leave with vectored writes, block data
//! straight from its `Bytes`, and a keep-alive goes out when nothing else has for a while.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use share_proto::wire::{self, Message};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// Writes queued messages with vectored writes, several frames per system call, and
/// keep-alives when idle. Block data goes from the disk read's `Bytes` to the socket without
/// being copied into a send buffer: only the 13-byte headers are encoded.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Message>,
    backlog: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    keepalive: std::time::Duration,
) {
    /// Frames gathered before writing.
    const BATCH: usize = 64;
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    let mut scratch = BytesMut::new();
    loop {
        let first = match tokio::time::timeout(keepalive, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(_) => Message::KeepAlive,
        };
        let mut data = queue_frame(first, &mut chunks, &mut scratch);
        for _ in 1..BATCH {
            match rx.try_recv() {
                Ok(m) => data += queue_frame(m, &mut chunks, &mut scratch),
                Err(_) => break,
            }
        }
        if write_all_chunks(&mut wr, &mut chunks).await.is_err() {
            return;
        }
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

/// Writes every queued chunk, as many per `writev` as the socket takes.
async fn write_all_chunks<W: AsyncWrite + Unpin>(
    wr: &mut W,
    chunks: &mut VecDeque<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    while !chunks.is_empty() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks
            .iter()
            .take(128)
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
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
    wr.flush().await
}
