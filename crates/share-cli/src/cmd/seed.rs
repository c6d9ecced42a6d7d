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
    /// The files or directories to share: several are seeded by one process on one port,
    /// with one embedded tracker, each with its own manifest.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Where to write the manifest [default: PATH.torrent]. One path only.
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
    #[command(flatten)]
    pub peer: crate::peer_args::PeerArgs,
}

/// Runs `share seed`.
pub fn run(args: Args) -> Outcome {
    crate::run::block_on(seed(args))
}

/// One path to seed: where its manifest goes and, when one there already describes the data,
/// that manifest (kept as it is).
struct Item {
    path: PathBuf,
    manifest: PathBuf,
    reused: Option<share_proto::metainfo::Metainfo>,
}

/// What a seeded path became.
struct Seeded {
    item: Item,
    made: Made,
    meta: std::sync::Arc<share_proto::metainfo::Metainfo>,
    trackers: Vec<String>,
}

async fn seed(args: Args) -> Outcome {
    if args.paths.len() > 1 && args.output.is_some() {
        return Err(Failure::input(anyhow!(
            "-o names the manifest of one path; with {} paths each gets PATH.torrent beside it",
            args.paths.len()
        )));
    }
    let options = args.manifest.options()?;
    let mut items = Vec::new();
    for path in &args.paths {
        let manifest = args.output.clone().unwrap_or_else(|| default_manifest_path(path));
        if items.iter().any(|i: &Item| i.manifest == manifest) {
            return Err(Failure::input(anyhow!(
                "{} is given twice; give each path once",
                path.display()
            )));
        }
        // An existing manifest there is kept when it describes this data (same info hash,
        // same trackers), and refused otherwise unless --force (`existing.rs`).
        let reused = if !args.force && manifest.symlink_metadata().is_ok() {
            let (path, out, margs) = (path.clone(), manifest.clone(), args.manifest.clone());
            let meta = tokio::task::spawn_blocking(move || crate::cmd::existing::check(&path, &out, &margs))
                .await
                .map_err(|e| Failure::runtime(anyhow!("checking {} failed: {e}", manifest.display())))??;
            Some(meta)
        } else {
            None
        };
        items.push(Item {
            path: path.clone(),
            manifest,
            reused,
        });
    }
    let (stop_trackers, stopped) = tokio::sync::watch::channel(false);
    let mut tracker = None;
    let mut tracker_note = " (embedded)".to_string();
    let mut embedded_url = None;
    let mut listeners = Vec::new();
    // The embedded tracker, when a new manifest needs one (no --tracker given).
    if options.trackers.is_empty() && items.iter().any(|i| i.reused.is_none()) {
        let preferred = SocketAddr::from(([0, 0, 0, 0], args.tracker_port.unwrap_or(DEFAULT_TRACKER_PORT)));
        let listener = match args.tracker_port {
            Some(_) => tokio::net::TcpListener::bind(preferred).await,
            None => bind_or_any(preferred).await,
        }
        .map_err(|e| Failure::runtime(anyhow!("cannot start the embedded tracker on {preferred}: {e}")))?;
        let port = listener.local_addr().map_err(Failure::runtime)?.port();
        if args.tracker_port.is_none() && port != preferred.port() {
            tracker_note = format!(
                " (embedded; port {} was taken, so it took {port})",
                preferred.port()
            );
        }
        embedded_url = Some(tracker_http::announce_url(SocketAddr::new(
            announce_host(args.announce_host),
            port,
        )));
        listeners.push(listener);
    }
    // A kept manifest whose tracker is an embedded one on this machine (an earlier `share
    // seed`): serve it again on its port, unless something already does.
    if args.manifest.trackers.is_empty() {
        let mut ports: Vec<u16> = items
            .iter()
            .filter_map(|i| i.reused.as_ref())
            .filter(|m| made_by_share(m))
            .filter_map(|m| local_tracker_port(&m.trackers()))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        for port in ports {
            let taken = listeners
                .iter()
                .any(|l| l.local_addr().is_ok_and(|a| a.port() == port));
            if !taken {
                if let Ok(l) = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await {
                    listeners.push(l);
                }
            }
        }
    }
    if !listeners.is_empty() {
        let t = tracker_http::Tracker::new(tracker_http::Config::default());
        for listener in listeners {
            let (serving, mut stopped) = (t.clone(), stopped.clone());
            tokio::spawn(async move {
                let _ = serving
                    .serve(listener, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
            });
        }
        tracker = Some(t);
    }
    let mut seeded = Vec::new();
    for item in items {
        let (made, trackers) = match &item.reused {
            Some(meta) => (
                Made {
                    info_hash: meta.info_hash,
                    name: meta.info.name.clone(),
                    total_len: meta.total_len(),
                    piece_len: meta.info.piece_length,
                    pieces: meta.info.pieces.len(),
                },
                meta.trackers(),
            ),
            None => {
                let (path, out) = (item.path.clone(), item.manifest.clone());
                let mut opts = options.clone();
                if let Some(url) = &embedded_url {
                    opts.trackers = vec![url.clone()];
                }
                let trackers = opts.trackers.clone();
                let made = tokio::task::spawn_blocking(move || make(&path, &out, &opts, None))
                    .await
                    .map_err(|e| Failure::runtime(anyhow!("hashing failed: {e}")))??;
                (made, trackers)
            }
        };
        if let Some(t) = &tracker {
            t.set_name(made.info_hash, &made.name);
        }
        let meta = std::sync::Arc::new(crate::manifest::load(&item.manifest)?);
        seeded.push(Seeded {
            item,
            made,
            meta,
            trackers,
        });
    }
    let listen = crate::run::peer_listen(args.port).await;
    let params = |s: &Seeded| Params {
        meta: s.meta.clone(),
        paths: output_paths(&s.meta, &s.item.path),
        root: s.item.path.clone(),
        mode: Mode::Seed,
        trackers: s.trackers.clone(),
        peers: vec![],
        config: Config {
            listen,
            nick: args.nick.clone().unwrap_or_else(crate::run::default_nick),
            limits: args.rate.limits(),
            pex: !args.peer.no_pex,
            encryption: args.peer.encryption,
            lsd: !args.peer.no_lsd,
            dht: args.peer.dht(crate::cmd::fetch::state_dir(None).as_deref()),
            ..Config::default()
        },
    };
    let embedded = tracker.is_some();
    let seeding_json = |s: &Seeded, t: &Torrent| {
        serde_json::json!({
            "event": "seeding",
            "name": s.made.name,
            "info_hash": s.made.info_hash.to_hex(),
            "manifest": s.item.manifest,
            "trackers": s.trackers,
            "embedded_tracker": embedded,
            "existing_manifest": s.item.reused.is_some(),
            "listen": t.listen_addr(),
            "dht": t.dht_addr(),
        })
    };
    let about = |s: &Seeded| {
        format!(
            "seeding {} ({}) from {}\n  manifest: {}{} (info hash {})",
            s.made.name,
            indicatif::HumanBytes(s.made.total_len),
            s.item.path.display(),
            s.item.manifest.display(),
            if s.item.reused.is_some() {
                ", the existing one"
            } else {
                ""
            },
            s.made.info_hash,
        )
    };
    let trackers_line = |trackers: &[String], port: u16| {
        format!(
            "  tracker:  {}{}\n  peers connect on port {port}; Ctrl-C to stop",
            trackers.join(", "),
            if embedded { tracker_note.as_str() } else { "" },
        )
    };
    let ended = if seeded.len() == 1 {
        let s = &seeded[0];
        let torrent = Torrent::start(params(s)).await.map_err(Failure::runtime)?;
        let mut render = Render::new(args.json, &s.made.name);
        render.emit(seeding_json(s, &torrent), || {
            Some(format!(
                "{}\n{}",
                about(s),
                trackers_line(&s.trackers, torrent.listen_addr().port())
            ))
        });
        let ended = drive(&torrent, &mut render, false, |_| {}).await;
        render.finish();
        torrent.shutdown().await;
        ended
    } else {
        let session = crate::run::session(listen, &args.rate, &args.peer, None).await?;
        let mut torrents = Vec::new();
        for s in &seeded {
            match session.add(params(s)).await {
                Ok(t) => torrents.push(t),
                Err(e) => {
                    session.shutdown().await;
                    let same = matches!(e, share_engine::TorrentError::AlreadyAdded(_));
                    let e = anyhow!("{}: {}", s.item.path.display(), e.chain());
                    return Err(if same {
                        Failure::input(e)
                    } else {
                        Failure::runtime(e)
                    });
                }
            }
        }
        let names: Vec<&str> = seeded.iter().map(|s| s.made.name.as_str()).collect();
        let main = Render::new(args.json, "");
        let (mut renders, total) = crate::run::transfer_renders(&main, &names, &torrents);
        for ((s, t), r) in seeded.iter().zip(&torrents).zip(&renders) {
            r.emit(seeding_json(s, t), || None);
        }
        let mut lines: Vec<String> = seeded.iter().map(about).collect();
        let mut all_trackers: Vec<String> = seeded.iter().flat_map(|s| s.trackers.clone()).collect();
        all_trackers.dedup();
        lines.push(trackers_line(&all_trackers, session.listen_addr().port()));
        if !args.json {
            main.println(&lines.join("\n"));
        }
        renders.push(main);
        let ended = crate::run::drive_all(&torrents, &mut renders, total.as_ref(), false, |_, _| {}).await;
        for r in &mut renders {
            r.finish();
        }
        if let Some(t) = &total {
            t.finish_and_clear();
        }
        session.shutdown().await;
        ended
    };
    let _ = stop_trackers.send(true);
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
