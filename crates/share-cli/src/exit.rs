//! The error type of the binary's edge: an `anyhow` chain plus the exit code it maps to.

use std::fmt;

/// Exit code for bad usage or bad input (a missing file, a corrupt manifest).
pub const BAD_INPUT: i32 = 2;
/// Exit code for a failure while running (a full disk, a tracker that cannot bind).
pub const RUNTIME: i32 = 1;

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
