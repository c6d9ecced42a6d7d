//! One module per subcommand; each has an `Args` (clap) and a `run(Args) -> Outcome`.

pub mod create;
pub mod info;
pub mod tracker;
