//! The tokio engine of `share`: one torrent's peers, piece picking, storage, tracker client
//! and events. Front-ends (the CLI, tests) start a [`Torrent`] and render its [`Event`]s.

mod candidates;
mod chat;
mod chat_limits;
mod check;
mod choker;
mod claim;
mod conduct;
pub mod config;
pub mod error;
pub mod event;
mod nick;
mod peer;
pub mod picker;
mod progress;
mod record;
mod selection;
mod slots;
pub mod storage;
pub mod torrent;
mod tracker;

pub use chat::{PeerInfo, SendError};
pub use config::Config;
pub use error::{PeerError, TorrentError};
pub use event::{Event, Stats};
pub use nick::{short_id, tagged};
pub use torrent::{Mode, Params, Torrent};
