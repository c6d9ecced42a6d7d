//! `share chat`: join a swarm only to talk. Downloads nothing; lines typed are messages.

use std::path::PathBuf;

use anyhow::anyhow;
use share_engine::{Config, Mode, Params, Torrent};

use crate::exit::{Failure, Outcome};
use crate::render::Render;
use crate::run::{default_nick, drive, Ended};

/// Arguments of `share chat`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .torrent manifest of the swarm.
    pub manifest: PathBuf,
    /// A peer to connect to directly (HOST:PORT); repeat for several.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Chat nickname [default: your login name].
    #[arg(long)]
    pub nick: Option<String>,
    /// Port for peer connections [default: 6881, or any free port].
    #[arg(long)]
    pub port: Option<u16>,
    /// Chat as JSON events on stdout; each line on stdin is sent.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub peer: crate::peer_args::PeerArgs,
}

/// Runs `share chat`.
pub fn run(args: Args) -> Outcome {
    crate::run::block_on(chat(args))
}

async fn chat(args: Args) -> Outcome {
    let meta = std::sync::Arc::new(crate::manifest::load(&args.manifest)?);
    let peers = crate::cmd::fetch::resolve_peers(&args.peers).await?;
    let listen = crate::run::peer_listen(args.port).await;
    let params = Params {
        paths: Vec::new(),
        root: PathBuf::from("."),
        trackers: meta.trackers(),
        meta: meta.clone(),
        mode: Mode::Chat,
        peers,
        config: Config {
            listen,
            nick: args.nick.clone().unwrap_or_else(default_nick),
            pex: !args.peer.no_pex,
            encryption: args.peer.encryption,
            lsd: !args.peer.no_lsd,
            dht: args.peer.dht(crate::cmd::fetch::state_dir(None).as_deref()),
            ..Config::default()
        },
    };
    let torrent = Torrent::start(params).await.map_err(Failure::runtime)?;
    let mut render = Render::new(args.json, &meta.info.name).chat_only();
    render.emit(
        serde_json::json!({
            "event": "chatting",
            "name": meta.info.name,
            "info_hash": meta.info_hash.to_hex(),
            "nick": torrent.nick(),
            "listen": torrent.listen_addr(),
        }),
        || {
            Some(format!(
                "chatting in the swarm of {} as {}; type a line to send it, /peers, /msg NICK TEXT, /nick NAME, /quit",
                meta.info.name,
                torrent.nick()
            ))
        },
    );
    let ended = drive(&torrent, &mut render, false, |_| {}).await;
    render.finish();
    torrent.shutdown().await;
    match ended {
        Ended::Fatal(message) => Err(Failure::runtime(anyhow!(message))),
        Ended::Interrupted | Ended::Complete => Ok(()),
    }
}
