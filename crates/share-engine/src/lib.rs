//! The tokio engine of `share`: one torrent's peers, piece picking, storage, tracker client
//! and events. Front-ends (the CLI, tests) start a [`Torrent`] and render its [`Event`]s.

pub mod config;
pub mod error;
pub mod event;
pub mod picker;
pub mod storage;

pub use config::Config;
pub use error::{PeerError, TorrentError};
pub use event::{Event, Stats};
