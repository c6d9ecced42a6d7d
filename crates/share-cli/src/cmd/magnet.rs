//! `share fetch MAGNET`: the link's info dictionary is fetched from peers first (the link's
//! `x.pe`, `--peer`, and its trackers), checked against its info hash, and saved as
//! `NAME.torrent` beside where the data goes; the fetch then goes on from that manifest as
//! from any other, with the link's peers added.
//!
//! The manifest never replaces a file: if `NAME.torrent` exists with other bytes, it is saved
//! as `NAME.HASH.torrent`; if that exists too with other bytes, the fetch stops and says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use share_proto::magnet::Magnet;
use share_proto::metainfo::{manifest_bytes, Metainfo};

use super::fetch::{resolve_peers, Args};
use crate::exit::Failure;
use crate::render::Render;

/// How long the metadata may take.
const WITHIN: Duration = Duration::from_secs(120);

/// Whether a source is a magnet link rather than a manifest's path.
pub fn is_magnet(source: &Path) -> bool {
    source
        .to_str()
        .and_then(|s| s.get(..7))
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
}

/// Where the manifest of a magnet goes: the folder that receives the data.
fn folder(args: &Args) -> PathBuf {
    match (&args.dir, &args.output) {
        (Some(d), _) => d.clone(),
        (None, Some(o)) => o
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        (None, None) => PathBuf::from("."),
    }
}

/// Saves `bytes` as `NAME.torrent` in `folder`, or `NAME.HASH.torrent` if the first is
/// someone else's file; never replaces other bytes.
fn save(folder: &Path, meta: &Metainfo, bytes: &[u8]) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(folder)
        .map_err(|e| Failure::runtime(anyhow!("cannot create {}: {e}", folder.display())))?;
    let name = &meta.info.name;
    for candidate in [
        format!("{name}.torrent"),
        format!("{name}.{}.torrent", meta.info_hash.to_hex()),
    ] {
        let path = folder.join(candidate);
        match std::fs::read(&path) {
            Ok(existing) if existing == bytes => return Ok(path),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::manifest::write_atomically(&path, bytes)
                    .map_err(|e| Failure::runtime(anyhow!("cannot write {}: {e}", path.display())))?;
                return Ok(path);
            }
            Err(e) => return Err(Failure::runtime(anyhow!("cannot read {}: {e}", path.display()))),
        }
    }
    Err(Failure::input(anyhow!(
        "{name}.torrent and {name}.{}.torrent in {} hold other data; move one away to fetch this magnet link",
        meta.info_hash.to_hex(),
        folder.display()
    )))
}

/// Turns every magnet link among `args.manifests` into a saved manifest, and adds the
/// links' peers to `args.peers`. The peer port is settled here (a free one for `--port 0`):
/// the trackers asked for peers are told it, and the fetch then listens on it.
pub async fn resolve(mut args: Args) -> Result<Args, Failure> {
    // `--port 0` (or a taken 6881) means any free port: one is picked now, from the
    // system's ephemeral range, never the default port another process may be about to take.
    let listen = crate::run::peer_listen(args.port).await;
    let listen = match listen.port() {
        0 => tokio::net::TcpListener::bind(listen)
            .await
            .and_then(|l| l.local_addr())
            .map_err(|e| Failure::runtime(anyhow!("cannot find a free port for peer connections: {e}")))?,
        _ => listen,
    };
    args.port = Some(listen.port());
    let user_peers = resolve_peers(&args.peers).await?;
    let mut extra_peers = Vec::new();
    for i in 0..args.manifests.len() {
        if !is_magnet(&args.manifests[i]) {
            continue;
        }
        let link = args.manifests[i].to_string_lossy().into_owned();
        let magnet = Magnet::parse(&link).map_err(|e| Failure::input(anyhow!("{e}")))?;
        let link_peers = resolve_peers(&magnet.peers).await?;
        extra_peers.extend(magnet.peers.iter().cloned());
        let peer_id = share_proto::PeerId::ours(rand::random());
        let config = share_engine::Config::default();
        let mut peers = link_peers;
        peers.extend(&user_peers);
        let mut peers = share_engine::magnet::peers_for(
            &magnet.trackers,
            &peers,
            magnet.info_hash,
            peer_id,
            listen.port(),
            &config,
        )
        .await;
        if let Some(dht) = args
            .peer
            .dht(super::fetch::state_dir(args.state_dir.clone()).as_deref())
        {
            match share_engine::dht::lookup(&dht, listen, magnet.info_hash.0).await {
                Ok(found) => peers.extend(
                    found
                        .into_iter()
                        .filter(|p| !peers.contains(p))
                        .collect::<Vec<_>>(),
                ),
                Err(e) => tracing::warn!(error = %e, "no DHT lookup: its node did not start"),
            }
        }
        let render = Render::new(args.json, "");
        let shown = share_proto::sanitize::sanitize(magnet.name.as_deref().unwrap_or("the torrent"));
        render.emit(
            serde_json::json!({"event": "fetching_metadata", "info_hash": magnet.info_hash.to_hex(), "name": magnet.name, "peers": peers.len()}),
            || Some(format!("fetching the metadata of {shown} from {} peers", peers.len())),
        );
        let found = share_engine::magnet::fetch_info(
            magnet.info_hash,
            peers,
            peer_id,
            listen.port(),
            WITHIN,
            args.peer.encryption,
        )
        .await
        .map_err(|e| Failure::runtime(anyhow!("{e}")))?;
        let bytes = manifest_bytes(&found.info, &magnet.trackers);
        let meta = Metainfo::from_bytes(&bytes).map_err(|e| {
            Failure::runtime(anyhow!(
                "the metadata from {} is not a usable torrent: {e}",
                found.from
            ))
        })?;
        let path = save(&folder(&args), &meta, &bytes)?;
        render.emit(
            serde_json::json!({"event": "metadata", "info_hash": meta.info_hash.to_hex(), "name": meta.info.name,
                "from": found.from, "manifest": path, "bad_peers": found.bad}),
            || Some(format!("metadata of {} from {}, saved as {}", share_proto::sanitize::sanitize(&meta.info.name), found.from, path.display())),
        );
        args.manifests[i] = path;
    }
    args.peers.extend(extra_peers);
    Ok(args)
}
