//! The `share` command: parses arguments with clap and hands each subcommand to its module in
//! `cmd/`. Errors are printed once here, as one sentence with its causes (`{:#}`), and mapped to
//! the exit codes of the design: 0 done, 1 runtime failure, 2 bad usage or bad input.

mod chat_input;
mod cmd;
mod exit;
mod line_edit;
mod manifest;
mod only;
mod peer_args;
mod progress;
mod rate;
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
    quiet_on_broken_pipe();
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
        // An error can quote a manifest's names or a tracker's words: shown sanitized.
        eprintln!("share: {}", share_proto::sanitize::sanitize(&err.to_string()));
        std::process::exit(err.code());
    }
}

/// `println!` panics when stdout is a closed pipe (Rust ignores SIGPIPE, which must stay
/// ignored: a peer closing its socket would otherwise kill us). Output goes through
/// `exit::print`, which ends quietly; this hook makes any other print that meets a closed
/// stdout, in any command or task, end the same way instead of with a panic and exit 101.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let epipe = format!("(os error {EPIPE})");
        if message.starts_with("failed printing to stdout") && message.contains(&epipe) {
            std::process::exit(exit::BROKEN_PIPE);
        }
        default(info);
    }));
}

/// EPIPE on Linux.
const EPIPE: i32 = 32;

/// Logs go to stderr only when `RUST_LOG` asks for them: what a user sees otherwise is the
/// one sentence of an error, not the engine's log of it (a full disk once printed 178 `ERROR`
/// lines first). Colour only when stderr is a terminal, so logs piped to a file stay text.
fn init_tracing() {
    use std::io::IsTerminal;
    if std::env::var_os("RUST_LOG").is_none() {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
