//! BitTorrent protocol types for `share`, with no async runtime and no I/O beyond reading files
//! to hash them: bencode checks with byte offsets, metainfo parse and create (info hash over the
//! raw bytes of `info`), piece geometry behind validated newtypes, announce types shared by the
//! tracker and its clients, and the peer-wire codec with the BEP 10 handshake.

pub mod aligned;
pub mod announce;
pub mod bencode;
pub mod bitfield;
pub mod chat;
pub mod compact;
pub mod create;
pub mod extension;
pub mod geometry;
pub mod hash;
pub mod layout;
pub mod lsd;
pub mod magnet;
pub mod metadata;
pub mod metainfo;
pub mod mse;
pub mod parallel;
pub mod pex;
pub mod sanitize;
pub mod wire;

pub use hash::{InfoHash, PeerId};
