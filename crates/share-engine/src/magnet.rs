//! A magnet link's info dictionary, fetched from peers (BEP 9 over BEP 10) before the
//! torrent can start: its peers come from the link (`x.pe`, and those the caller adds) and
//! from its trackers (HTTP or UDP), and up to [`AT_ONCE`] are asked at a time.
//!
//! A peer is asked only after it announced `ut_metadata` and a size of at most
//! `MAX_METADATA` in its extension handshake; pieces are asked for in order, each checked
//! for its index and length. The whole is used only if its SHA-1 is the link's info hash
//! (and it parses as an info dictionary): a peer that sends anything else is not asked
//! again, and is reported as [`Found::bad`]. Every connection has a deadline; a peer whose
//! connection fails is asked again, up to [`TRIES`] times.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Encryption;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use share_proto::announce::{AnnounceRequest, Event as AnnounceEvent};
use share_proto::extension::{ExtendedHandshake, HANDSHAKE_ID};
use share_proto::metadata::{self, MetadataMsg, MAX_METADATA};
use share_proto::wire::{self, Handshake, Message, HANDSHAKE_LEN};
use share_proto::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::config::Config;

/// Peers asked at once.
pub const AT_ONCE: usize = 8;
/// One peer's time: connect, handshakes and every piece.
const PER_PEER: Duration = Duration::from_secs(30);
/// The id we ask peers to send `ut_metadata` under.
const OUR_ID: u8 = 2;
/// Requests kept in flight to one peer.
const PIPELINE: usize = 16;
/// Times a peer is asked when its connection fails (a client that has just started may
/// close connections for a moment), a second more apart each time.
const TRIES: u32 = 3;

/// The info dictionary, and what happened on the way.
#[derive(Debug, Clone)]
pub struct Found {
    /// The info dictionary's exact bytes (their SHA-1 is the info hash).
    pub info: Vec<u8>,
    /// The peer it came from.
    pub from: SocketAddr,
    /// Peers that sent metadata that was not the torrent's.
    pub bad: Vec<SocketAddr>,
}

/// Why no info dictionary was had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// No peer to ask, from the link or its trackers.
    #[error("no peer to ask for the torrent's metadata: the link names none, its trackers gave none and the DHT (if on) found none")]
    NoPeers,
    /// Every peer failed or the time ran out.
    #[error("none of {asked} peers sent the torrent's metadata within {secs} s (last: {last})")]
    NotFound {
        /// Peers asked.
        asked: usize,
        /// The time given.
        secs: u64,
        /// The last failure.
        last: String,
    },
}

/// What one peer gave.
enum Outcome {
    Info(Vec<u8>),
    Wrong,
    Failed(String),
}

async fn send<W: tokio::io::AsyncWrite + Unpin>(stream: &mut W, msg: Message) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    wire::encode(&msg, &mut buf);
    stream.write_all(&buf).await?;
    stream.flush().await
}

/// Reads the next message (keep-alives included) within the peer's time.
async fn next<R: tokio::io::AsyncRead + Unpin>(
    frames: &mut tokio_util::codec::FramedRead<R, Codec>,
) -> Result<Message, String> {
    match frames.next().await {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the peer closed the connection".into()),
    }
}

struct Codec(wire::Decoder);

impl tokio_util::codec::Decoder for Codec {
    type Item = Message;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, std::io::Error> {
        self.0
            .decode(src)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// Asks `addr` for the info dictionary of `info_hash`.
async fn ask(
    addr: SocketAddr,
    info_hash: InfoHash,
    peer_id: PeerId,
    listen_port: u16,
    encryption: Encryption,
) -> Outcome {
    match tokio::time::timeout(
        PER_PEER,
        ask_inner(addr, info_hash, peer_id, listen_port, encryption),
    )
    .await
    {
        Ok(Ok(info)) if share_proto::hash::sha1(&info) == info_hash.0 => Outcome::Info(info),
        Ok(Ok(_)) => Outcome::Wrong,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(_) => Outcome::Failed(format!("no metadata within {} s", PER_PEER.as_secs())),
    }
}

async fn ask_inner(
    addr: SocketAddr,
    info_hash: InfoHash,
    peer_id: PeerId,
    listen_port: u16,
    encryption: Encryption,
) -> Result<Vec<u8>, String> {
    let ours = Handshake::ours(info_hash, peer_id).encode();
    let (mut stream, sent_ours) =
        crate::encryption::dial(addr, info_hash.0, &ours, encryption, PER_PEER / 3, PER_PEER / 3)
            .await
            .map_err(|e| e.to_string())?;
    if !sent_ours {
        stream.write_all(&ours).await.map_err(|e| e.to_string())?;
    }
    let mut theirs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut theirs).await.map_err(|e| e.to_string())?;
    let theirs = Handshake::decode(&theirs).map_err(|e| e.to_string())?;
    if theirs.info_hash != info_hash {
        return Err("the peer answered for another torrent".into());
    }
    if !theirs.supports_extended() {
        return Err("the peer does not speak the extension protocol".into());
    }
    let mut hs = ExtendedHandshake {
        p: Some(i64::from(listen_port)),
        ..Default::default()
    };
    hs.m.insert(metadata::EXTENSION.into(), i64::from(OUR_ID));
    send(
        &mut stream,
        Message::Extended {
            id: HANDSHAKE_ID,
            payload: Bytes::from(hs.encode()),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let (rd, mut wr) = stream.into_split();
    let mut frames = tokio_util::codec::FramedRead::new(rd, Codec(wire::Decoder::default()));
    // Their extension handshake: where they want `ut_metadata`, and the size.
    let (their_id, size) = loop {
        if let Message::Extended {
            id: HANDSHAKE_ID,
            payload,
        } = next(&mut frames).await?
        {
            let hs = ExtendedHandshake::decode(&payload).ok_or("a malformed extension handshake")?;
            let id = hs
                .id_of(metadata::EXTENSION)
                .ok_or("the peer does not serve metadata")?;
            let size = hs
                .metadata_size
                .and_then(|s| usize::try_from(s).ok())
                .filter(|s| (1..=MAX_METADATA).contains(s))
                .ok_or("the peer announced no usable metadata size")?;
            break (id, size);
        }
    };
    let pieces = metadata::piece_count(size);
    let mut info = vec![0u8; size];
    let mut got = vec![false; pieces];
    let (mut asked, mut left) = (0usize, pieces);
    let mut out = BytesMut::new();
    while left > 0 {
        while asked < pieces && asked < pieces - left + PIPELINE {
            let payload = Bytes::from(MetadataMsg::Request { piece: asked as u32 }.encode());
            wire::encode(
                &Message::Extended {
                    id: their_id,
                    payload,
                },
                &mut out,
            );
            asked += 1;
        }
        if !out.is_empty() {
            wr.write_all(&out).await.map_err(|e| e.to_string())?;
            out.clear();
        }
        let Message::Extended { id: OUR_ID, payload } = next(&mut frames).await? else {
            continue;
        };
        match MetadataMsg::decode(&payload).map_err(|e| e.to_string())? {
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => {
                let i = piece as usize;
                if total_size as usize != size || i >= pieces || got[i] {
                    return Err("the peer sent a metadata piece that does not fit".into());
                }
                let start = i * metadata::PIECE;
                info[start..start + data.len()].copy_from_slice(&data);
                got[i] = true;
                left -= 1;
            }
            MetadataMsg::Reject { piece } => return Err(format!("the peer rejected metadata piece {piece}")),
            MetadataMsg::Request { .. } => {}
        }
    }
    Ok(info)
}

/// Peers from the trackers of a magnet link (an announce each, as a peer that has nothing).
async fn tracker_peers(
    trackers: &[String],
    info_hash: InfoHash,
    peer_id: PeerId,
    listen_port: u16,
    config: &Config,
) -> Vec<SocketAddr> {
    let client = reqwest::Client::new();
    let req = AnnounceRequest {
        event: AnnounceEvent::None,
        numwant: Some(config.numwant),
        ..AnnounceRequest::new(info_hash, peer_id, listen_port, 1)
    };
    let mut found = Vec::new();
    for url in trackers.iter().filter(|u| crate::tracker::announces_to(u)) {
        match crate::tracker::announce(&client, config, url, &req).await {
            Ok(resp) => found.extend(resp.peers.iter().map(|p| p.addr)),
            Err(error) => tracing::debug!(%url, %error, "magnet: announce failed"),
        }
    }
    found
}

/// Gets the info dictionary of `info_hash` from `peers` (asked in order, [`AT_ONCE`] at a
/// time) within `within`.
pub async fn fetch_info(
    info_hash: InfoHash,
    peers: Vec<SocketAddr>,
    peer_id: PeerId,
    listen_port: u16,
    within: Duration,
    encryption: Encryption,
) -> Result<Found, MagnetError> {
    let mut peers: Vec<SocketAddr> = {
        let mut seen = std::collections::HashSet::new();
        peers.into_iter().filter(|p| seen.insert(*p)).collect()
    };
    if peers.is_empty() {
        return Err(MagnetError::NoPeers);
    }
    let asked = peers.len();
    peers.reverse();
    let deadline = tokio::time::Instant::now() + within;
    let mut tasks = JoinSet::new();
    let mut bad = Vec::new();
    let mut last = String::from("no answer");
    // Failed connections so far, per peer: the next try waits that many seconds.
    let mut failures: std::collections::HashMap<SocketAddr, u32> = std::collections::HashMap::new();
    let launch = |tasks: &mut JoinSet<(SocketAddr, Outcome)>,
                  peers: &mut Vec<SocketAddr>,
                  failures: &std::collections::HashMap<SocketAddr, u32>| {
        while tasks.len() < AT_ONCE {
            let Some(addr) = peers.pop() else { break };
            let wait = Duration::from_secs(u64::from(failures.get(&addr).copied().unwrap_or(0)));
            tasks.spawn(async move {
                tokio::time::sleep(wait).await;
                (addr, ask(addr, info_hash, peer_id, listen_port, encryption).await)
            });
        }
    };
    launch(&mut tasks, &mut peers, &failures);
    let not_found = |last: String| MagnetError::NotFound {
        asked,
        secs: within.as_secs(),
        last,
    };
    loop {
        let joined = match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Err(_) => return Err(not_found(last)),
            Ok(None) => return Err(not_found(last)),
            Ok(Some(j)) => j,
        };
        let Ok((addr, outcome)) = joined else { continue };
        match outcome {
            Outcome::Info(info) => {
                tasks.abort_all();
                return Ok(Found {
                    info,
                    from: addr,
                    bad,
                });
            }
            Outcome::Wrong => {
                tracing::warn!(%addr, "a peer sent metadata that is not the torrent's");
                last = format!("{addr} sent metadata that is not the torrent's");
                bad.push(addr);
            }
            Outcome::Failed(why) => {
                last = format!("{addr}: {why}");
                let n = failures.entry(addr).or_insert(0);
                *n += 1;
                if *n < TRIES {
                    peers.insert(0, addr);
                }
            }
        }
        launch(&mut tasks, &mut peers, &failures);
    }
}

/// The peers to ask for a magnet link's metadata: `peers` (the link's and the user's),
/// then those its trackers give.
pub async fn peers_for(
    trackers: &[String],
    peers: &[SocketAddr],
    info_hash: InfoHash,
    peer_id: PeerId,
    listen_port: u16,
    config: &Config,
) -> Vec<SocketAddr> {
    let mut all = peers.to_vec();
    all.extend(tracker_peers(trackers, info_hash, peer_id, listen_port, config).await);
    all
}
