//! One module per subcommand; each has an `Args` (clap) and a `run(Args) -> Outcome`.

pub mod chat;
pub mod create;
pub mod existing;
pub mod fetch;
pub mod info;
pub mod magnet;
pub mod seed;
pub mod tracker;
