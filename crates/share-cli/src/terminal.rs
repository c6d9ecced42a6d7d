//! The terminal while a person types chat under the bars: echo and line buffering off, so
//! each key reaches `line_edit` at once and the line is drawn only by us, as the last line
//! under the bars (the terminal's own echo is what made a sent line show twice, and what the
//! bars' redraws erased while it was typed).
//!
//! Only the input side changes (no `ICANON`, `ECHO`, `ISIG`, `IEXTEN`, `IXON`, `ICRNL`): the
//! output side keeps `OPOST`, so the bars' and messages' newlines still return the carriage,
//! which a full raw mode (cfmakeraw, crossterm's `enable_raw_mode`) would break. With `ISIG`
//! off, Ctrl-C and Ctrl-Z arrive as keys: Ctrl-C quits cleanly and Ctrl-Z cannot stop us with
//! the terminal left silent. [`RawInput`] puts the saved settings back when dropped, on every
//! way out of the input loop (Enter on `/quit`, Ctrl-C, Ctrl-D, SIGTERM, a fatal error, a
//! panic unwinding).

use std::io::{IsTerminal, Write};

use rustix::termios::{self, InputModes, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

/// Whether keys can be read one by one: stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The terminal in key-by-key mode until dropped.
#[derive(Debug)]
pub struct RawInput {
    saved: Termios,
}

impl RawInput {
    /// Switches stdin to key-by-key input without echo and hides the cursor (the input line
    /// draws its own).
    pub fn enable() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut keys = saved.clone();
        keys.local_modes -= LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG | LocalModes::IEXTEN;
        keys.input_modes -= InputModes::IXON | InputModes::ICRNL;
        keys.special_codes[SpecialCodeIndex::VMIN] = 1;
        keys.special_codes[SpecialCodeIndex::VTIME] = 0;
        termios::tcsetattr(&stdin, OptionalActions::Now, &keys)?;
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\x1b[?25l");
        let _ = err.flush();
        Ok(Self { saved })
    }
}

impl Drop for RawInput {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\x1b[?25h");
        let _ = err.flush();
    }
}

/// Columns of the terminal on stderr (where the bars are), 80 when unknown.
pub fn width() -> usize {
    termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|&w| w > 0)
        .unwrap_or(80)
}
