//! `share tracker`: the standalone HTTP announce tracker.

use crate::exit::Outcome;

/// Arguments of `share tracker`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the tracker until Ctrl-C.
pub fn run(_args: Args) -> Outcome {
    Err(crate::exit::Failure::runtime(anyhow::anyhow!("the tracker is not built yet")))
}
