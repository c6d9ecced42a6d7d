//! The warp routes: `GET /announce`, `GET /scrape`, `GET /` and `GET /stats`.
//!
//! Queries are taken raw (`warp::query::raw`) and parsed from their bytes by share-proto,
//! because info hashes and peer ids are percent-encoded binary. Every refusal is a bencoded
//! `failure reason` naming what is wrong, with status 200 as clients expect, except an oversize
//! query, which gets 414. The client's address comes from the connection: the server's accept
//! loop puts it in the request's extensions ([`RemoteAddr`]); `warp::addr::remote()` is the
//! fallback for `warp::test` and `warp::serve`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use share_proto::announce::{parse_scrape_query, AnnounceRequest};
use warp::http::{header, Response, StatusCode};
use warp::hyper::Body;
use warp::{Filter, Reply};

use crate::bencode::{self, AnnounceShape};
use crate::pages;
use crate::state::State;

/// The connection's peer address, set by the server on every request.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> warp::reply::Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

fn bencoded(body: Vec<u8>) -> warp::reply::Response {
    respond(StatusCode::OK, "text/plain", body)
}

fn failure(status: StatusCode, reason: &str) -> warp::reply::Response {
    respond(status, "text/plain", bencode::failure(reason))
}

/// `GET /announce?...`.
pub fn announce(state: &State, addr: Option<SocketAddr>, query: &str) -> warp::reply::Response {
    let config = state.config();
    if query.len() > config.max_query_len {
        return failure(StatusCode::URI_TOO_LONG, "query string too long");
    }
    let request = match AnnounceRequest::parse_query(query.as_bytes()) {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::OK, &e.to_string()),
    };
    let Some(addr) = addr else {
        return failure(StatusCode::OK, "the client's address is unknown");
    };
    match state.announce(addr.ip(), &request) {
        Ok(announced) => {
            tracing::trace!(info_hash = %request.info_hash, peer = %addr, peers = announced.peers.len(), "announce");
            let shape = AnnounceShape {
                interval: config.interval,
                min_interval: config.min_interval,
                compact: request.compact,
                no_peer_id: request.no_peer_id,
            };
            bencoded(bencode::announce(&announced, shape))
        }
        Err(refusal) => {
            tracing::debug!(info_hash = %request.info_hash, peer = %addr, %refusal, "announce refused");
            failure(StatusCode::OK, &refusal.to_string())
        }
    }
}

/// `GET /scrape?info_hash=...` (BEP 48); without `info_hash`, every swarm up to the listing cap.
pub fn scrape(state: &State, query: &str) -> warp::reply::Response {
    let config = state.config();
    if query.len() > config.max_query_len {
        return failure(StatusCode::URI_TOO_LONG, "query string too long");
    }
    let mut hashes = match parse_scrape_query(query.as_bytes(), config.max_scrape_hashes) {
        Ok(h) => h,
        Err(e) => return failure(StatusCode::OK, &e.to_string()),
    };
    let files = if hashes.is_empty() {
        state
            .list(config.max_listed_swarms)
            .into_iter()
            .map(|s| (s.info_hash, s.stats))
            .collect()
    } else {
        // Bencode wants the keys sorted and unique.
        hashes.sort_unstable();
        hashes.dedup();
        state.scrape(&hashes)
    };
    bencoded(bencode::scrape(&files))
}

fn with_state(state: Arc<State>) -> impl Filter<Extract = (Arc<State>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The raw query string, empty when the URL has none.
fn raw_query() -> impl Filter<Extract = (String,), Error = Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// The client's address: from the accept loop, else from warp's own server.
fn remote() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::get::<RemoteAddr>()
        .map(|r: RemoteAddr| Some(r.0))
        .or(warp::addr::remote())
        .unify()
}

/// All routes over `state`. Unknown paths get 404, other methods 405.
pub fn routes(
    state: Arc<State>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let announce = warp::path("announce")
        .and(warp::path::end())
        .and(with_state(state.clone()))
        .and(remote())
        .and(raw_query())
        .map(|state: Arc<State>, addr, query: String| announce(&state, addr, &query));
    let scrape = warp::path("scrape")
        .and(warp::path::end())
        .and(with_state(state.clone()))
        .and(raw_query())
        .map(|state: Arc<State>, query: String| scrape(&state, &query));
    let index = warp::path::end()
        .and(with_state(state.clone()))
        .map(|state: Arc<State>| {
            respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                pages::html(&state).into_bytes(),
            )
        });
    let stats = warp::path("stats")
        .and(warp::path::end())
        .and(with_state(state))
        .map(|state: Arc<State>| respond(StatusCode::OK, "application/json", pages::json(&state)));
    warp::get()
        .and(announce.or(scrape).unify().or(index).unify().or(stats).unify())
        .map(Reply::into_response)
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
