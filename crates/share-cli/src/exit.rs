//! The error type of the binary's edge: an `anyhow` chain plus the exit code it maps to.

use std::fmt;

/// Exit code for bad usage or bad input (a missing file, a corrupt manifest).
pub const BAD_INPUT: i32 = 2;
/// Exit code for a failure while running (a full disk, a tracker that cannot bind).
pub const RUNTIME: i32 = 1;

/// Exit code when stdout is closed under us (`share info M | head -1`): 128 + SIGPIPE, what
/// a shell reports for any Unix tool killed by a closed pipe. Nothing is printed.
pub const BROKEN_PIPE: i32 = 141;

/// Writes `text` to stdout. A closed stdout ends the program quietly with [`BROKEN_PIPE`]
/// (Rust ignores SIGPIPE, so a closed pipe is an error here rather than a signal, and
/// `println!` would panic on it); other write errors are ignored like `print!` would not.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE);
        }
    }
}

/// A command's failure: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl Failure {
    /// Bad input or usage: exit code 2.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: BAD_INPUT,
            error: error.into(),
        }
    }

    /// A runtime failure: exit code 1.
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: RUNTIME,
            error: error.into(),
        }
    }

    /// Any other exit code.
    pub fn with_code(code: i32, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }

    /// The process exit code.
    pub fn code(&self) -> i32 {
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

/// What every command returns.
pub type Outcome = Result<(), Failure>;
