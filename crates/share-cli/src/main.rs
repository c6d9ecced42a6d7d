//! The `share` command: parses arguments with clap and hands each subcommand to its module in
//! `cmd/`. Errors are printed once here, as one sentence with its causes (`{:#}`), and mapped to
//! the exit codes of the design: 0 done, 1 runtime failure, 2 bad usage or bad input.

mod chat_input;
mod cmd;
mod exit;
mod line_edit;
mod manifest;
mod progress;
mod render;
mod run;
mod terminal;

use clap::{Parser, Subcommand};

/// Share a file with one command, fetch it with another: a BitTorrent swarm with a chat room.
#[derive(Parser, Debug)]
#[command(name = "share", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a .torrent manifest for a file or a directory (like mktorrent).
    Create(cmd::create::Args),
    /// Show what a .torrent manifest holds.
    Info(cmd::info::Args),
    /// Write the manifest and seed it until Ctrl-C (with an embedded tracker if none is given).
    Seed(cmd::seed::Args),
    /// Download from the swarm, then keep seeding until Ctrl-C.
    Fetch(cmd::fetch::Args),
    /// Join a swarm only to chat with the people in it.
    Chat(cmd::chat::Args),
    /// Run the HTTP announce tracker on its own.
    Tracker(cmd::tracker::Args),
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Create(args) => cmd::create::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Seed(args) => cmd::seed::run(args),
        Command::Fetch(args) => cmd::fetch::run(args),
        Command::Chat(args) => cmd::chat::run(args),
        Command::Tracker(args) => cmd::tracker::run(args),
    };
    if let Err(err) = result {
        eprintln!("share: {err}");
        std::process::exit(err.code());
    }
}

/// Logs go to stderr, off unless `RUST_LOG` asks for them, so they never mix into `--json`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
