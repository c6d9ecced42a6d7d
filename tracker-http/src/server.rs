//! The accept loop: HTTP/1.1 connections served by hyper through the warp routes, a cap on
//! connections, an idle timeout, the periodic cleaning sweep, and a graceful shutdown.
//!
//! The caller binds the listener (tests bind port 0). Each connection runs in its own task
//! holding one permit of a semaphore sized `max_connections`; the loop waits for a permit
//! before accepting, so excess clients wait in the kernel's backlog.
//!
//! A connection has one timer. When it fires and no request has started since the last time,
//! the connection is idle (or a client is sending its headers too slowly): it is asked to
//! close, and dropped if it has not within the grace period. hyper's own header-read timeout
//! is not used: it does not cover idle kept-alive connections, and its per-request timer
//! costs more than a counter.
//!
//! On shutdown the loop stops accepting, tells every connection to finish its current request
//! and close (dropping it after the grace period), stops the sweep, and returns once every
//! connection task has given its permit back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument as _;
use warp::hyper::server::conn::Http;
use warp::hyper::service::service_fn;

use crate::routes::{routes, RemoteAddr};
use crate::state::State;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener's own address could not be read.
    #[error("cannot read the listening address")]
    LocalAddr(#[source] std::io::Error),
}

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully.
pub async fn serve(
    state: Arc<State>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
    let config = state.config().clone();
    let max = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        .max_buf_size(16 * 1024);
    let service = warp::service(routes(state.clone()));

    let sweep =
        tokio::spawn(sweep(state.clone(), stop_rx.clone()).instrument(tracing::info_span!("tracker-sweep")));
    tracing::info!(%local, "tracker serving");
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = connection(
            stream,
            peer,
            http.clone(),
            service.clone(),
            stop_rx.clone(),
            config.idle_timeout,
        );
        tokio::spawn(async move {
            conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(%local, "tracker shutting down");
    let _ = stop_tx.send(true);
    // Every connection task holds a permit until it ends.
    let _ = slots.acquire_many(max as u32).await;
    let _ = sweep.await;
    Ok(())
}

/// One connection: requests until the client closes, it idles for `idle`, or shutdown.
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    http: Http,
    service: S,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
) where
    S: warp::hyper::service::Service<
            warp::http::Request<warp::hyper::Body>,
            Response = warp::http::Response<warp::hyper::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Requests started on this connection; the idle timer compares it between firings.
    let started = Arc::new(AtomicU32::new(0));
    let counter = started.clone();
    let svc = service_fn(move |mut req: warp::http::Request<warp::hyper::Body>| {
        counter.fetch_add(1, Ordering::Relaxed);
        req.extensions_mut().insert(RemoteAddr(peer));
        service.clone().call(req)
    });
    let conn = http.serve_connection(stream, svc);
    tokio::pin!(conn);
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    let mut seen = 0;
    let outcome = loop {
        tokio::select! {
            r = conn.as_mut() => break Some(r),
            _ = stop.changed() => break None,
            () = timer.as_mut() => {
                let now = started.load(Ordering::Relaxed);
                if now == seen {
                    break None;
                }
                seen = now;
                timer.as_mut().reset(tokio::time::Instant::now() + idle);
            }
        }
    };
    let outcome = match outcome {
        Some(r) => Some(r),
        None => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(GRACE.min(idle), conn).await.ok()
        }
    };
    if let Some(Err(e)) = outcome {
        tracing::trace!(%peer, error = %e, "connection ended with an error");
    }
}

/// How long a connection asked to close may take to finish its request before it is dropped
/// (or the idle timeout, if shorter).
const GRACE: Duration = Duration::from_secs(5);

/// The one periodic cleaning sweep: forgets expired peers every quarter of the peer timeout
/// (between 1 s and 5 min).
async fn sweep(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(u64::from(state.config().peer_timeout / 4).clamp(1, 300));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let expired = state.clean();
                if expired > 0 {
                    tracing::debug!(expired, "swept expired peers");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
