//! The share announce tracker: BEP 3 announces with BEP 23 compact and BEP 7 IPv6 peers,
//! BEP 48 scrape, an HTML page at `/` and JSON at `/stats`; and the UDP tracker protocol
//! (BEP 15, [`udp`]) over the same swarms.
//!
//! Layers, from the inside out:
//! - [`swarm`]: the swarm state as pure synchronous code (`announce(now, addr, request)` and
//!   `clean(now)`), tested without a server.
//! - [`state`]: that state sharded behind `std::sync::Mutex`es, and the clock.
//! - [`bencode`] and [`pages`]: the response bodies.
//! - [`routes`]: the warp routes; [`server`]: the accept loop, connection cap, sweep and
//!   graceful shutdown.
//!
//! Embedding: bind a listener, then `Tracker::new(config).serve(listener, shutdown)`; the
//! [`Tracker`] handle stays usable to read the swarms or name them. See docs/tracker.md.

pub mod bencode;
mod config;
pub mod pages;
pub mod routes;
pub mod server;
pub mod state;
pub mod swarm;
pub mod udp;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{Config, CLIENT_MAX_INTERVAL};
pub use server::ServeError;
pub use share_proto::announce::ScrapeStats;
pub use state::Totals;
pub use swarm::SwarmSummary;

use share_proto::InfoHash;
use tokio::net::TcpListener;

/// A tracker: its state, shared by the server and the program that embeds it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tracker {
    state: Arc<state::State>,
}

impl Tracker {
    /// A tracker with no swarms yet.
    pub fn new(config: Config) -> Self {
        Self {
            state: Arc::new(state::State::new(config)),
        }
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then closes every connection
    /// after its current request and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        server::serve(self.state.clone(), listener, shutdown).await
    }

    /// Serves the UDP tracker protocol (BEP 15) on `socket`, over the same swarms, until
    /// `shutdown` completes.
    pub async fn serve_udp(&self, socket: tokio::net::UdpSocket, shutdown: impl Future<Output = ()>) {
        udp::serve(self.state.clone(), socket, shutdown).await;
    }

    /// Totals over all swarms.
    pub fn totals(&self) -> Totals {
        self.state.totals()
    }

    /// Counts for one swarm (zeros when unknown).
    pub fn swarm(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.state
            .scrape(std::slice::from_ref(info_hash))
            .first()
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }

    /// The swarms, sorted by info hash, at most the configured listing cap.
    pub fn swarms(&self) -> Vec<SwarmSummary> {
        self.state.list(self.state.config().max_listed_swarms)
    }

    /// Names a swarm on the index page (`share seed` knows the names of what it seeds).
    pub fn set_name(&self, info_hash: InfoHash, name: &str) {
        self.state.set_name(info_hash, name);
    }

    /// The shared state, for tests and benchmarks that drive it directly.
    pub fn state(&self) -> &state::State {
        &self.state
    }
}

/// Serves a tracker with the default [`Config`] on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    Tracker::new(Config::default()).serve(listener, shutdown).await
}

/// The announce URL of a tracker listening on `addr` (`http://ADDR:PORT/announce`, IPv6 in
/// brackets).
pub fn announce_url(addr: SocketAddr) -> String {
    format!("http://{addr}/announce")
}

/// The UDP announce URL of a tracker on `addr` (`udp://ADDR:PORT/announce`).
pub fn udp_announce_url(addr: SocketAddr) -> String {
    format!("udp://{addr}/announce")
}
