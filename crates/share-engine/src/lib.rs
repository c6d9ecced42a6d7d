//! The tokio engine of `share`: a [`Session`] of torrents on one port, each torrent's peers,
//! piece picking, storage, tracker client and events. Front-ends (the CLI, tests) start a
//! session (or a [`Torrent`] in a session of its own) and render its [`Event`]s.

pub mod api;
mod candidates;
mod chat;
mod chat_limits;
mod check;
mod choker;
mod claim;
mod conduct;
pub mod config;
pub mod dht;
pub mod encryption;
pub mod error;
pub mod event;
mod have_log;
pub mod limits;
mod link;
mod lsd;
pub mod magnet;
mod nick;
mod peer;
mod peers;
mod persist;
pub mod picker;
mod progress;
mod record;
pub mod scrape;
mod selection;
pub mod session;
mod slots;
pub mod storage;
#[cfg(test)]
mod test_util;
pub mod torrent;
mod tracker;
mod udp_tracker;

pub use chat::{PeerInfo, SendError};
pub use config::Config;
pub use dht::DhtConfig;
pub use encryption::Encryption;
pub use error::{PeerError, TorrentError};
pub use event::{Event, Stats, TorrentState};
pub use limits::{Limits, RateLimit};
pub use nick::{short_id, tagged};
pub use session::{Session, SessionConfig, SessionEvent, SessionStats, TorrentId};
pub use torrent::{Mode, Params, Torrent};
pub use tracker::announces_to;
