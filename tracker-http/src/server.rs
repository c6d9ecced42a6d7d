//! The accept loop: HTTP/1.1 connections served by hyper through the warp routes, a cap on
//! connections, the periodic cleaning sweep, and a graceful shutdown.
//!
//! The caller binds the listener (tests bind port 0). Each connection runs in its own task
//! holding one permit of a semaphore sized `max_connections`; the loop waits for a permit
//! before accepting, so excess clients wait in the kernel's backlog. On shutdown the loop stops
//! accepting, tells every connection to finish its current request and close, stops the sweep,
//! and returns once every connection task has given its permit back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::Http;
use hyper::service::service_fn;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument as _;

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
        .http1_header_read_timeout(config.header_timeout)
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
            config.max_connection_age,
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

/// One connection: requests until the client closes, the age limit, or shutdown.
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    http: Http,
    service: S,
    mut stop: watch::Receiver<bool>,
    max_age: Duration,
) where
    S: hyper::service::Service<
            warp::http::Request<warp::hyper::Body>,
            Response = warp::http::Response<warp::hyper::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let svc = service_fn(move |mut req: warp::http::Request<warp::hyper::Body>| {
        req.extensions_mut().insert(RemoteAddr(peer));
        service.clone().call(req)
    });
    let conn = http.serve_connection(stream, svc);
    tokio::pin!(conn);
    let outcome = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = tokio::time::sleep(max_age) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = outcome {
        tracing::trace!(%peer, error = %e, "connection ended with an error");
    }
}

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
