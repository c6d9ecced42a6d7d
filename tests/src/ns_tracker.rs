//! Our tracker served from a socket inside a network namespace, on a runtime of its own, so
//! clients in the namespaces (Transmission, aria2c, `share`) can announce to it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use share_proto::InfoHash;
use tracker_http::{Config, Tracker};

use crate::netns::Netns;

/// Our tracker, served on a runtime of its own from a socket inside a namespace.
pub struct NsTracker {
    tracker: Tracker,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl NsTracker {
    /// Binds `addr` inside `ns` and serves a tracker with a 3 s interval on it.
    pub fn start(ns: &Netns, addr: SocketAddr) -> Self {
        let listener = ns
            .listen_tcp(addr)
            .expect("bind the tracker inside the namespace");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(listener).expect("register the listener")
        };
        // Short intervals: clients hear of each other within seconds whatever the start order.
        let tracker = Tracker::new(Config::with_interval(3));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tracker.clone();
        runtime.spawn(async move {
            let _ = serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            tracker,
            addr,
            stop: Some(stop),
            runtime: Some(runtime),
        }
    }

    /// `http://ADDR/announce`.
    pub fn announce_url(&self) -> String {
        tracker_http::announce_url(self.addr)
    }

    /// Waits until the tracker counts at least one seeder in `hash`'s swarm.
    /// Waits until the tracker counts at least one seeder in the swarm of `hash`.
    pub fn wait_for_seeder(&self, hash: InfoHash, limit: Duration, who: impl Fn() -> String) {
        let deadline = Instant::now() + limit;
        while self.tracker.swarm(&hash).complete == 0 {
            assert!(
                Instant::now() < deadline,
                "no seeder announced within {limit:?}; {}",
                who()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NsTracker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
