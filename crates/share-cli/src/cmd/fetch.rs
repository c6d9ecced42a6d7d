//! `share fetch`: download a torrent from its swarm with progress bars, then keep seeding
//! until Ctrl-C (or exit at once with `--no-seed`). A partial output is re-checked and only
//! the rest is fetched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use share_engine::error::TorrentError;
use share_engine::storage::output_paths;
use share_engine::{Config, Mode, Params, Torrent};

use crate::exit::{Failure, Outcome};
use crate::render::Render;
use crate::run::{drive, Ended};

/// Exit code when Ctrl-C stops a download before it completes (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;

/// Arguments of `share fetch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .torrent manifests or magnet links ('magnet:?xt=urn:btih:...'): several are
    /// fetched at once by one process on one port.
    #[arg(required = true, value_name = "MANIFEST|MAGNET")]
    pub manifests: Vec<PathBuf>,
    /// Save as exactly this path: the file, or a directory torrent's own directory
    /// [default: ./NAME, the torrent's name in the current directory]. One manifest only.
    #[arg(short, long, value_name = "PATH", conflicts_with = "dir")]
    pub output: Option<PathBuf>,
    /// Save into this directory, as DIR/NAME (a link here is followed: it is your choice).
    #[arg(short, long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Use existing files even if share did not create them and their data differs: they
    /// are resized and overwritten (without it they are refused untouched).
    #[arg(long)]
    pub overwrite: bool,
    /// Where resume records are kept [default: $SHARE_STATE_DIR, else
    /// $XDG_DATA_HOME/share, else ~/.local/share/share].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A peer to connect to directly (HOST:PORT); repeat for several. Works with no tracker.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Port for peer connections [default: 6881, or any free port].
    #[arg(long)]
    pub port: Option<u16>,
    /// Fetch only the files of a directory torrent whose path matches GLOB (`docs/*.pdf`,
    /// `**/*.txt`, a plain path; `*` stays within a directory, `**` spans them); repeat for
    /// several. `share info` lists the paths.
    #[arg(long = "only", value_name = "GLOB")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub rate: crate::rate::RateArgs,
    /// Exit once the data is verified instead of seeding until Ctrl-C.
    #[arg(long)]
    pub no_seed: bool,
    #[command(flatten)]
    pub peer: crate::peer_args::PeerArgs,
    /// Chat nickname [default: your login name].
    #[arg(long)]
    pub nick: Option<String>,
    /// Newline-delimited JSON events on stdout instead of bars.
    #[arg(long)]
    pub json: bool,
}

/// Runs `share fetch`.
pub fn run(args: Args) -> Outcome {
    crate::run::block_on(fetch(args))
}

/// Resolves `HOST:PORT` arguments; a name that does not resolve is bad input.
pub async fn resolve_peers(args: &[String]) -> Result<Vec<SocketAddr>, Failure> {
    let mut peers = Vec::new();
    for p in args {
        let found: Vec<SocketAddr> = tokio::net::lookup_host(p.as_str())
            .await
            .map_err(|e| Failure::input(anyhow!("cannot resolve peer {p:?} (expected HOST:PORT): {e}")))?
            .collect();
        peers.extend(found.first().copied());
    }
    Ok(peers)
}

/// One fetch, ready to start.
struct Prepared {
    meta: std::sync::Arc<share_proto::metainfo::Metainfo>,
    out: PathBuf,
    only: Option<crate::only::Selection>,
    params: Params,
}

/// Reads `manifest` and works out where it saves and what it fetches; every refusal that
/// needs no disk write or peer happens here.
fn prepare(
    args: &Args,
    manifest: &Path,
    peers: &[SocketAddr],
    listen: SocketAddr,
) -> Result<Prepared, Failure> {
    let meta = std::sync::Arc::new(crate::manifest::load(manifest)?);
    let trackers = meta.trackers();
    // The DHT and LSD find the peers of a public torrent without a tracker.
    let found = !meta.info.private && (!args.peer.no_dht || !args.peer.no_lsd);
    if peers.is_empty() && !found && !trackers.iter().any(|t| share_engine::announces_to(t)) {
        return Err(Failure::input(anyhow!(
            "{} names no HTTP or UDP tracker, no --peer was given and the DHT and LSD are off: there is nobody to fetch from",
            manifest.display()
        )));
    }
    let name = &meta.info.name;
    let out = match (&args.output, &args.dir) {
        (Some(o), _) => o.clone(),
        (None, Some(d)) => d.join(name),
        (None, None) => PathBuf::from(name),
    };
    if out.file_name().is_none() {
        return Err(Failure::input(anyhow!(
            "-o {} does not end in a name to save {name} as; give one, or use -d DIR to save it as DIR/{name}",
            out.display()
        )));
    }
    if !meta.info.multi_file && out.is_dir() {
        return Err(Failure::input(anyhow!(
            "{} is a directory; give the file to save {name} as (e.g. {}), or use -d {} to save it inside",
            out.display(),
            out.join(name).display(),
            out.display()
        )));
    }
    // The directory that receives the output: links in it (and above) are the user's; the
    // engine refuses any link from the output's own name down.
    let root = out.parent().map(Path::to_path_buf).unwrap_or_default();
    let only = if args.only.is_empty() {
        None
    } else {
        Some(crate::only::select(&meta, &args.only, manifest)?)
    };
    let params = Params {
        paths: output_paths(&meta, &out),
        meta: meta.clone(),
        root,
        mode: Mode::Fetch,
        trackers,
        peers: peers.to_vec(),
        config: Config {
            listen,
            nick: args.nick.clone().unwrap_or_else(crate::run::default_nick),
            limits: args.rate.limits(),
            state_dir: state_dir(args.state_dir.clone()),
            overwrite: args.overwrite,
            select: only.as_ref().map(|o| o.mask.clone()),
            pex: !args.peer.no_pex,
            encryption: args.peer.encryption,
            lsd: !args.peer.no_lsd,
            dht: args.peer.dht(state_dir(args.state_dir.clone()).as_deref()),
            ..Config::default()
        },
    };
    Ok(Prepared {
        meta,
        out,
        only,
        params,
    })
}

/// The `fetching` event of one fetch.
fn fetching_json(p: &Prepared, torrent: &Torrent) -> serde_json::Value {
    let meta = &p.meta;
    let mut fetching = serde_json::json!({
        "event": "fetching",
        "name": meta.info.name,
        "info_hash": meta.info_hash.to_hex(),
        "total_length": meta.total_len(),
        "output": p.out,
        "listen": torrent.listen_addr(),
        "dht": torrent.dht_addr(),
    });
    if let Some(only) = &p.only {
        fetching["files"] = only.files.iter().map(|(path, _)| path.as_str()).collect();
    }
    fetching
}

async fn fetch(args: Args) -> Outcome {
    let args = if args.manifests.iter().any(|m| super::magnet::is_magnet(m)) {
        super::magnet::resolve(args).await?
    } else {
        args
    };
    if args.manifests.len() > 1 {
        return fetch_many(args).await;
    }
    let peers = resolve_peers(&args.peers).await?;
    let listen = crate::run::peer_listen(args.port).await;
    let p = prepare(&args, &args.manifests[0], &peers, listen)?;
    let torrent = Torrent::start(p.params.clone()).await.map_err(start_failure)?;
    let (meta, out) = (&p.meta, &p.out);
    let mut render = Render::new(args.json, &meta.info.name);
    render.emit(fetching_json(&p, &torrent), || {
        Some(fetching_line(meta, out, p.only.as_ref()))
    });
    let no_seed = args.no_seed;
    let shown = out.display().to_string();
    let ended = drive(&torrent, &mut render, no_seed, |r| {
        let then = if no_seed { "" } else { "; seeding until Ctrl-C" };
        r.println(&format!("complete: {shown} verified{then}"));
    })
    .await;
    render.finish();
    let stats = torrent.stats();
    let complete = torrent.is_complete();
    torrent.shutdown().await;
    match ended {
        Ended::Fatal(message) => Err(Failure::runtime(anyhow!(message))),
        Ended::Complete => Ok(()),
        Ended::Interrupted if complete => Ok(()),
        Ended::Interrupted => Err(Failure::with_code(
            INTERRUPTED,
            anyhow!(
                "interrupted with {} of {} pieces verified; run the same command again to resume",
                stats.pieces_have,
                stats.pieces_total
            ),
        )),
    }
}

/// `share fetch A B C`: every manifest in one session (one port, one peer id, the rate
/// limits shared), a bar each and a total.
async fn fetch_many(args: Args) -> Outcome {
    if args.output.is_some() {
        return Err(Failure::input(anyhow!(
            "-o names the output of one manifest; with {} manifests use -d DIR (each saves as DIR/NAME)",
            args.manifests.len()
        )));
    }
    if !args.only.is_empty() {
        return Err(Failure::input(anyhow!(
            "--only selects files of one manifest; give it one manifest at a time"
        )));
    }
    let peers = resolve_peers(&args.peers).await?;
    let listen = crate::run::peer_listen(args.port).await;
    let mut prepared = Vec::new();
    for manifest in &args.manifests {
        let p = prepare(&args, manifest, &peers, listen)?;
        if let Some(same) = prepared
            .iter()
            .find(|q: &&Prepared| q.meta.info_hash == p.meta.info_hash)
        {
            return Err(Failure::input(anyhow!(
                "{} and an earlier manifest are the same torrent ({}, info hash {}); give it once",
                manifest.display(),
                same.meta.info.name,
                p.meta.info_hash
            )));
        }
        prepared.push(p);
    }
    let session =
        crate::run::session(listen, &args.rate, &args.peer, state_dir(args.state_dir.clone())).await?;
    let mut torrents = Vec::new();
    for p in &prepared {
        match session.add(p.params.clone()).await {
            Ok(t) => torrents.push(t),
            Err(e) => {
                session.shutdown().await;
                return Err(start_failure(e));
            }
        }
    }
    let names: Vec<&str> = prepared.iter().map(|p| p.meta.info.name.as_str()).collect();
    let main = Render::new(args.json, "");
    let (mut renders, total) = crate::run::transfer_renders(&main, &names, &torrents);
    for ((p, t), r) in prepared.iter().zip(&torrents).zip(&renders) {
        // The line names the torrent itself: shown without the transfer's prefix.
        r.emit(fetching_json(p, t), || None);
        if !args.json {
            main.println(&fetching_line(&p.meta, &p.out, None));
        }
    }
    let no_seed = args.no_seed;
    let shown: Vec<String> = prepared.iter().map(|p| p.out.display().to_string()).collect();
    renders.push(main);
    let ended = crate::run::drive_all(&torrents, &mut renders, total.as_ref(), no_seed, |r, i| {
        let then = if no_seed { "" } else { "; seeding until Ctrl-C" };
        r.println(&format!("complete: {} verified{then}", shown[i]));
    })
    .await;
    for r in &mut renders {
        r.finish();
    }
    if let Some(t) = &total {
        t.finish_and_clear();
    }
    let left: Vec<_> = torrents
        .iter()
        .filter(|t| !t.is_complete())
        .map(Torrent::stats)
        .collect();
    session.shutdown().await;
    match ended {
        Ended::Fatal(message) => Err(Failure::runtime(anyhow!(message))),
        Ended::Complete => Ok(()),
        Ended::Interrupted if left.is_empty() => Ok(()),
        Ended::Interrupted => Err(Failure::with_code(
            INTERRUPTED,
            anyhow!(
                "interrupted with {} of {} transfers incomplete ({} of {} pieces verified in those); run the same command again to resume",
                left.len(),
                torrents.len(),
                left.iter().map(|s| s.pieces_have).sum::<u32>(),
                left.iter().map(|s| s.pieces_total).sum::<u32>(),
            ),
        )),
    }
}

/// What a fetch says it is doing; with `--only`, which files (each a line, sanitized: the
/// names are the manifest's).
fn fetching_line(
    meta: &share_proto::metainfo::Metainfo,
    out: &Path,
    only: Option<&crate::only::Selection>,
) -> String {
    use share_proto::sanitize::sanitize;
    let Some(only) = only else {
        let size = indicatif::HumanBytes(meta.content_len());
        return format!("fetching {} ({size}) into {}", meta.info.name, out.display());
    };
    let name = sanitize(&meta.info.name);
    let size = indicatif::HumanBytes(only.files.iter().map(|(_, len)| len).sum());
    let of = meta.content_files().count();
    let mut line = format!(
        "fetching {} of {of} files of {name} ({size}) into {}:",
        only.files.len(),
        out.display()
    );
    for (path, len) in &only.files {
        let len = indicatif::HumanBytes(*len).to_string();
        line.push_str(&format!("\n  {len:>11}  {}", sanitize(path)));
    }
    line
}

/// The state directory: `--state-dir`, else `$SHARE_STATE_DIR`, else the platform data
/// directory (`$XDG_DATA_HOME/share` or `~/.local/share/share`). `None` only when there is
/// no home either; then no record is kept and only verifying files are reused.
pub fn state_dir(flag: Option<PathBuf>) -> Option<PathBuf> {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    flag.or_else(|| env("SHARE_STATE_DIR"))
        .or_else(|| {
            env("XDG_DATA_HOME")
                .filter(|p| p.is_absolute())
                .map(|p| p.join("share"))
        })
        .or_else(|| env("HOME").map(|h| h.join(".local/share/share")))
}

/// A torrent that cannot start: an output that must not or cannot be used is bad input
/// (exit 2), with what to do about it; anything else is a runtime failure.
fn start_failure(e: TorrentError) -> Failure {
    match e {
        TorrentError::NotOurs { .. } => Failure::input(anyhow!(
            "{}; move it away, save elsewhere with -o or -d, or pass --overwrite to let share overwrite it",
            e.chain()
        )),
        e if e.is_bad_input() => Failure::input(anyhow!(e.chain())),
        e => Failure::runtime(e),
    }
}
