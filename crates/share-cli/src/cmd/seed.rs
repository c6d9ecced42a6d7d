//! `share seed`: write the manifest and seed until Ctrl-C, with a tracker embedded in the
//! same process when none is given.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::anyhow;
use share_engine::storage::output_paths;
use share_engine::{Config, Mode, Params, Torrent};

use crate::cmd::create::{default_manifest_path, make, Made, ManifestArgs};
use crate::exit::{Failure, Outcome};
use crate::render::Render;
use crate::run::{announce_host, bind_or_any, drive, Ended};

/// Default port of the embedded tracker (any free one if taken).
pub const DEFAULT_TRACKER_PORT: u16 = 6969;

/// Arguments of `share seed`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file or directory to share.
    pub path: PathBuf,
    /// Where to write the manifest [default: PATH.torrent].
    #[arg(short, long, value_name = "MANIFEST")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Port for peer connections [default: 6881, or any free port].
    #[arg(long)]
    pub port: Option<u16>,
    /// Port of the embedded tracker (when no --tracker is given) [default: 6969, or any free port].
    #[arg(long)]
    pub tracker_port: Option<u16>,
    /// Address written into the embedded tracker's URL, when the detected one is wrong.
    #[arg(long, value_name = "IP")]
    pub announce_host: Option<IpAddr>,
    #[command(flatten)]
    pub rate: crate::rate::RateArgs,
    /// Chat nickname [default: your login name].
    #[arg(long)]
    pub nick: Option<String>,
    /// Replace an existing manifest at MANIFEST even if it describes other data (without
    /// it, one that describes this data is seeded as it is, and any other is refused).
    #[arg(long)]
    pub force: bool,
    /// Newline-delimited JSON events on stdout instead of bars.
    #[arg(long)]
    pub json: bool,
}

/// Runs `share seed`.
pub fn run(args: Args) -> Outcome {
    crate::run::block_on(seed(args))
}

async fn seed(args: Args) -> Outcome {
    let mut options = args.manifest.options()?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_manifest_path(&args.path));
    // An existing manifest there is kept when it describes this data (same info hash, same
    // trackers), and refused otherwise unless --force (`existing.rs`).
    let reused = if !args.force && output.symlink_metadata().is_ok() {
        let (path, out, margs) = (args.path.clone(), output.clone(), args.manifest.clone());
        let meta = tokio::task::spawn_blocking(move || crate::cmd::existing::check(&path, &out, &margs))
            .await
            .map_err(|e| Failure::runtime(anyhow!("checking {} failed: {e}", output.display())))??;
        options.trackers = meta.trackers();
        Some(meta)
    } else {
        None
    };
    let (stop_tracker, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut tracker = None;
    let mut tracker_note = " (embedded)".to_string();
    let listener = match (&reused, options.trackers.is_empty()) {
        (None, true) => {
            let preferred =
                SocketAddr::from(([0, 0, 0, 0], args.tracker_port.unwrap_or(DEFAULT_TRACKER_PORT)));
            let listener = match args.tracker_port {
                Some(_) => tokio::net::TcpListener::bind(preferred).await,
                None => bind_or_any(preferred).await,
            }
            .map_err(|e| {
                Failure::runtime(anyhow!("cannot start the embedded tracker on {preferred}: {e}"))
            })?;
            let port = listener.local_addr().map_err(Failure::runtime)?.port();
            if args.tracker_port.is_none() && port != preferred.port() {
                tracker_note = format!(
                    " (embedded; port {} was taken, so it took {port})",
                    preferred.port()
                );
            }
            let url = tracker_http::announce_url(SocketAddr::new(announce_host(args.announce_host), port));
            options.trackers = vec![url];
            Some(listener)
        }
        // A kept manifest whose tracker is an embedded one on this machine (an earlier
        // `share seed`): serve it again on its port, unless something already does.
        (Some(meta), false) if args.manifest.trackers.is_empty() && made_by_share(meta) => {
            match local_tracker_port(&options.trackers) {
                Some(port) => tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
                    .await
                    .ok(),
                None => None,
            }
        }
        _ => None,
    };
    if let Some(listener) = listener {
        let t = tracker_http::Tracker::new(tracker_http::Config::default());
        let serving = t.clone();
        tokio::spawn(async move {
            let _ = serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        tracker = Some(t);
    }
    let kept = reused.is_some();
    let made = match reused {
        Some(meta) => Made {
            info_hash: meta.info_hash,
            name: meta.info.name.clone(),
            total_len: meta.total_len(),
            piece_len: meta.info.piece_length,
            pieces: meta.info.pieces.len(),
        },
        None => {
            let (path, out) = (args.path.clone(), output.clone());
            let opts = options.clone();
            tokio::task::spawn_blocking(move || make(&path, &out, &opts, None))
                .await
                .map_err(|e| Failure::runtime(anyhow!("hashing failed: {e}")))??
        }
    };
    if let Some(t) = &tracker {
        t.set_name(made.info_hash, &made.name);
    }
    let meta = std::sync::Arc::new(crate::manifest::load(&output)?);
    let root = args.path.clone();
    let paths = output_paths(&meta, &root);
    let listen = crate::run::peer_listen(args.port).await;
    let params = Params {
        meta,
        paths,
        root,
        mode: Mode::Seed,
        trackers: options.trackers.clone(),
        peers: vec![],
        config: Config {
            listen,
            nick: args.nick.clone().unwrap_or_else(crate::run::default_nick),
            limits: args.rate.limits(),
            ..Config::default()
        },
    };
    let torrent = Torrent::start(params).await.map_err(Failure::runtime)?;
    let mut render = Render::new(args.json, &made.name);
    render.emit(
        serde_json::json!({
            "event": "seeding",
            "name": made.name,
            "info_hash": made.info_hash.to_hex(),
            "manifest": output,
            "trackers": options.trackers,
            "embedded_tracker": tracker.is_some(),
            "existing_manifest": kept,
            "listen": torrent.listen_addr(),
        }),
        || {
            Some(format!(
                "seeding {} ({}) from {}\n  manifest: {}{} (info hash {})\n  tracker:  {}{}\n  peers connect on port {}; Ctrl-C to stop",
                made.name,
                indicatif::HumanBytes(made.total_len),
                args.path.display(),
                output.display(),
                if kept { ", the existing one" } else { "" },
                made.info_hash,
                options.trackers.join(", "),
                if tracker.is_some() { tracker_note.as_str() } else { "" },
                torrent.listen_addr().port()
            ))
        },
    );
    let ended = drive(&torrent, &mut render, false, |_| {}).await;
    render.finish();
    torrent.shutdown().await;
    let _ = stop_tracker.send(());
    match ended {
        Ended::Fatal(message) => Err(Failure::runtime(anyhow!(message))),
        Ended::Interrupted | Ended::Complete => Ok(()),
    }
}

/// Whether `share` wrote this manifest (then its tracker may be one we embedded).
fn made_by_share(meta: &share_proto::metainfo::Metainfo) -> bool {
    meta.created_by
        .as_deref()
        .is_some_and(|c| c.starts_with("share "))
}

/// The port of the first tracker URL that points at this machine (`http://IP:PORT/...` with
/// a loopback, unspecified or local interface address), as an earlier `share seed` writes.
fn local_tracker_port(urls: &[String]) -> Option<u16> {
    let local: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|a| a.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    urls.iter().find_map(|url| {
        let rest = url.strip_prefix("http://")?;
        let authority = rest.split('/').next()?;
        let addr: SocketAddr = authority.parse().ok()?;
        let ip = addr.ip();
        (ip.is_loopback() || ip.is_unspecified() || local.contains(&ip)).then_some(addr.port())
    })
}
