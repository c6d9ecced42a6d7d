//! `share tracker`: the standalone announce tracker, HTTP and (BEP 15) UDP on the same port
//! number over the same swarms, served until Ctrl-C (or SIGTERM), then shut down
//! gracefully: in-flight requests finish, and the command exits 0.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use tracker_http::{Config, Tracker};

use crate::exit::{Failure, Outcome};

/// Arguments of `share tracker`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:6969", value_name = "ADDR:PORT")]
    pub bind: SocketAddr,
    /// Seconds between a client's announces; peers are forgotten after twice this, or after
    /// 600 s if that is later (libtorrent and qBittorrent announce at most every 300 s).
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub interval: u32,
    /// Most swarms tracked at once.
    #[arg(long, value_name = "N")]
    pub max_swarms: Option<usize>,
    /// Most peers stored per swarm.
    #[arg(long, value_name = "N")]
    pub max_peers_per_swarm: Option<usize>,
    /// Most peers stored in all swarms (about 80 bytes each).
    #[arg(long, value_name = "N")]
    pub max_peers: Option<usize>,
    /// Worker threads serving requests (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl Args {
    fn config(&self) -> Result<Config, Failure> {
        if self.interval == 0 {
            return Err(Failure::input(anyhow::anyhow!(
                "--interval must be at least 1 second"
            )));
        }
        let mut config = Config::with_interval(self.interval);
        let positive = |v: Option<usize>, flag: &str, default: usize| match v {
            Some(0) => Err(Failure::input(anyhow::anyhow!("{flag} must be at least 1"))),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        config.max_swarms = positive(self.max_swarms, "--max-swarms", config.max_swarms)?;
        config.max_peers_per_swarm = positive(
            self.max_peers_per_swarm,
            "--max-peers-per-swarm",
            config.max_peers_per_swarm,
        )?;
        config.max_peers = positive(self.max_peers, "--max-peers", config.max_peers)?;
        Ok(config)
    }
}

/// Runs the tracker until Ctrl-C.
pub fn run(args: Args) -> Outcome {
    run_until(args, crate::run::interrupt)
}

/// Runs the tracker until the future `shutdown` makes completes; prints the announce URL
/// once listening. `shutdown` is called inside the runtime before anything is printed, so a
/// signal sent as soon as the line appears is already ours.
fn run_until<F>(args: Args, shutdown: impl FnOnce() -> F) -> Outcome
where
    F: Future<Output = ()> + Send + 'static,
{
    let config = args.config()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(usize::from(n));
    }
    let runtime = runtime
        .enable_all()
        .thread_name("share-tracker")
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::runtime)?;
    runtime.block_on(async {
        let shutdown = shutdown();
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}; is another program using that port?",
                    args.bind
                )
            })
            .map_err(Failure::runtime)?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")
            .map_err(Failure::runtime)?;
        // UDP on the same address and port number; HTTP alone if that UDP port is taken.
        let udp = tokio::net::UdpSocket::bind(local).await;
        eprintln!("tracker listening on {}", tracker_http::announce_url(local));
        let tracker = Tracker::new(config);
        let (stop_udp, mut udp_stopped) = tokio::sync::watch::channel(false);
        match udp {
            Ok(socket) => {
                eprintln!("tracker listening on {}", tracker_http::udp_announce_url(local));
                let t = tracker.clone();
                tokio::spawn(async move {
                    t.serve_udp(socket, async move {
                        let _ = udp_stopped.changed().await;
                    })
                    .await;
                });
            }
            Err(e) => eprintln!("share: cannot serve UDP on {local} ({e}): HTTP only"),
        }
        // Serve from a worker thread, not from `block_on`'s thread: connections spawned by the
        // accept loop then start on the worker that accepted them instead of waking another.
        let serving = tokio::spawn(async move {
            let served = tracker.serve(listener, shutdown).await;
            let _ = stop_udp.send(true);
            served
        });
        serving
            .await
            .context("the tracker task failed")
            .map_err(Failure::runtime)?
            .context("the tracker stopped")
            .map_err(Failure::runtime)?;
        eprintln!("tracker stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(interval: u32) -> Args {
        Args {
            bind: "127.0.0.1:0".parse().unwrap(),
            interval,
            max_swarms: None,
            max_peers_per_swarm: Some(7),
            max_peers: None,
            threads: Some(1),
        }
    }

    #[test]
    fn flags_become_the_config() {
        let c = args(60).config().unwrap();
        assert_eq!(
            (c.interval, c.min_interval, c.peer_timeout, c.max_peers_per_swarm),
            (60, 30, 600, 7)
        );
        assert_eq!(args(0).config().unwrap_err().code(), crate::exit::BAD_INPUT);
    }

    #[test]
    fn serves_then_stops_cleanly_when_told() {
        assert!(run_until(args(60), || async {}).is_ok());
    }
}
