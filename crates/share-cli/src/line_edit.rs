//! The line being typed under the bars. Bytes from a terminal in non-canonical mode (no echo,
//! no line buffering: see `terminal.rs`) are decoded into keys, and keys edit one line.
//! Pure code, so every key is unit-tested without a terminal.
//!
//! Decoding keeps no more than one partial UTF-8 character or escape sequence between reads,
//! and the line holds at most [`MAX_LINE`] characters, so a paste of any size stays bounded.
//! Escape sequences the editor does not use (Up, Down, function keys, mouse reports) are
//! consumed whole and ignored: they never reach the line as garbage.

/// Longest line kept, in characters: well above the 1,024 bytes a chat message may have,
/// so an over-long message is refused with its length rather than cut silently.
pub const MAX_LINE: usize = 4096;

/// Longest escape sequence kept while waiting for its end; longer ones are dropped.
const MAX_ESCAPE: usize = 32;

/// One key, as the editor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Return or Enter.
    Enter,
    /// Backspace: the character before the cursor.
    Backspace,
    /// Delete: the character under the cursor.
    Delete,
    /// Ctrl-U: everything before the cursor.
    KillToStart,
    /// Ctrl-W: the word before the cursor.
    KillWord,
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Home or Ctrl-A.
    Home,
    /// End or Ctrl-E.
    End,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D.
    EndOfInput,
}

/// Turns terminal bytes into keys, across reads.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    /// The keys in `bytes`, with whatever an earlier read left unfinished in front.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match step(&input[i..]) {
                Step::Key(key, used) => {
                    keys.extend(key);
                    i += used;
                }
                Step::Incomplete => {
                    if input.len() - i <= MAX_ESCAPE {
                        self.pending = input[i..].to_vec();
                    }
                    break;
                }
            }
        }
        keys
    }
}

enum Step {
    /// A key (or nothing, for an ignored byte or sequence) and the bytes it took.
    Key(Option<Key>, usize),
    /// The bytes end inside a character or sequence.
    Incomplete,
}

fn step(b: &[u8]) -> Step {
    let key = |k| Step::Key(Some(k), 1);
    match b[0] {
        b'\r' | b'\n' => key(Key::Enter),
        0x7f | 0x08 => key(Key::Backspace),
        0x01 => key(Key::Home),
        0x03 => key(Key::Interrupt),
        0x04 => key(Key::EndOfInput),
        0x05 => key(Key::End),
        0x15 => key(Key::KillToStart),
        0x17 => key(Key::KillWord),
        0x09 => key(Key::Char(' ')),
        0x1b => escape(b),
        c if c < 0x20 => Step::Key(None, 1),
        c if c < 0x80 => key(Key::Char(char::from(c))),
        _ => utf8(b),
    }
}

/// `ESC [ params intermediates final` (CSI) or `ESC O x` (SS3); anything else after ESC is
/// Alt plus a key, which the editor ignores.
fn escape(b: &[u8]) -> Step {
    match b.get(1) {
        None => Step::Incomplete,
        Some(b'[') => {
            for (n, &c) in b.iter().enumerate().skip(2) {
                if (0x40..=0x7e).contains(&c) {
                    let params = &b[2..n];
                    let key = match (c, params) {
                        (b'D', _) => Some(Key::Left),
                        (b'C', _) => Some(Key::Right),
                        (b'H', _) => Some(Key::Home),
                        (b'F', _) => Some(Key::End),
                        (b'~', b"1" | b"7") => Some(Key::Home),
                        (b'~', b"4" | b"8") => Some(Key::End),
                        (b'~', b"3") => Some(Key::Delete),
                        _ => None,
                    };
                    return Step::Key(key, n + 1);
                }
                if !(0x20..=0x3f).contains(&c) {
                    // Not a CSI after all: drop the introducer, keep the byte.
                    return Step::Key(None, n);
                }
            }
            Step::Incomplete
        }
        Some(b'O') => match b.get(2) {
            None => Step::Incomplete,
            Some(c) => Step::Key(
                match c {
                    b'D' => Some(Key::Left),
                    b'C' => Some(Key::Right),
                    b'H' => Some(Key::Home),
                    b'F' => Some(Key::End),
                    _ => None,
                },
                3,
            ),
        },
        // ESC before a UTF-8 character or another ESC: drop this one, keep what follows.
        Some(&c) if c >= 0x80 || c == 0x1b => Step::Key(None, 1),
        Some(_) => Step::Key(None, 2),
    }
}

fn utf8(b: &[u8]) -> Step {
    let n = b.len().min(4);
    match std::str::from_utf8(&b[..n]) {
        Ok(s) => first_char(s),
        Err(e) if e.valid_up_to() > 0 => first_char(std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or("")),
        Err(e) if e.error_len().is_none() => Step::Incomplete,
        // An invalid byte: dropped.
        Err(_) => Step::Key(None, 1),
    }
}

fn first_char(s: &str) -> Step {
    match s.chars().next() {
        Some(c) => Step::Key(Some(Key::Char(c)).filter(|_| !c.is_control()), c.len_utf8()),
        None => Step::Key(None, 1),
    }
}

/// What a key did to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The line changed (or the cursor moved): draw it again.
    Changed,
    /// Nothing to do.
    Unchanged,
    /// Enter: this line is done; the editor is empty again.
    Submit(String),
    /// Ctrl-C, or Ctrl-D on an empty line: leave.
    Quit,
}

/// One line being edited, with a cursor.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: Vec<char>,
    cursor: usize,
}

impl LineEditor {
    /// Applies one key.
    pub fn apply(&mut self, key: Key) -> Edit {
        let before = (self.line.len(), self.cursor);
        match key {
            Key::Char(c) => {
                if self.line.len() < MAX_LINE {
                    self.line.insert(self.cursor, c);
                    self.cursor += 1;
                }
            }
            Key::Enter => {
                self.cursor = 0;
                return Edit::Submit(self.line.drain(..).collect());
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
            }
            Key::Delete if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::KillToStart => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::KillWord => {
                let mut start = self.cursor;
                while start > 0 && self.line[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.line[start - 1] != ' ' {
                    start -= 1;
                }
                self.line.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(self.line.len()),
            Key::Home => self.cursor = 0,
            Key::End => self.cursor = self.line.len(),
            Key::Interrupt => return Edit::Quit,
            Key::EndOfInput if self.line.is_empty() => return Edit::Quit,
            // Ctrl-D on a line deletes under the cursor, as in a shell.
            Key::EndOfInput => return self.apply(Key::Delete),
            Key::Backspace | Key::Delete => {}
        }
        if (self.line.len(), self.cursor) == before {
            Edit::Unchanged
        } else {
            Edit::Changed
        }
    }

    /// The line as typed so far.
    #[cfg(test)]
    pub fn text(&self) -> String {
        self.line.iter().collect()
    }

    /// The visible part of the line in `width` columns: `(before, at, after)` the cursor,
    /// scrolled so the cursor is always inside (one column per character).
    pub fn view(&self, width: usize) -> (String, String, String) {
        let width = width.max(2);
        let start = (self.cursor + 1).saturating_sub(width);
        let end = (start + width).min(self.line.len());
        let before = self.line[start..self.cursor].iter().collect();
        let at = self
            .line
            .get(self.cursor)
            .map_or(" ".to_string(), |c| c.to_string());
        let after = self
            .line
            .get(self.cursor + 1..end.max(self.cursor + 1))
            .map_or(String::new(), |s| s.iter().collect());
        (before, at, after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(bytes: &[u8]) -> (LineEditor, Vec<Edit>) {
        let mut d = Decoder::default();
        let mut e = LineEditor::default();
        let edits = d.feed(bytes).into_iter().map(|k| e.apply(k)).collect();
        (e, edits)
    }

    #[test]
    fn typing_backspace_and_enter() {
        let (e, edits) = typed(b"helo\x7flo there\r");
        assert_eq!(edits.last(), Some(&Edit::Submit("hello there".into())));
        assert_eq!(e.text(), "");
        let (e, _) = typed(b"abc\x7f\x7f\x7f\x7f");
        assert_eq!(e.text(), "");
    }

    #[test]
    fn ctrl_u_ctrl_w_and_ctrl_d() {
        assert_eq!(typed(b"one two\x15").0.text(), "");
        assert_eq!(typed(b"one two  \x17").0.text(), "one ");
        let (e, edits) = typed(b"ab\x01\x04");
        assert_eq!(e.text(), "b", "Ctrl-D on a line deletes under the cursor");
        assert_eq!(edits.last(), Some(&Edit::Changed));
        assert_eq!(typed(b"\x04").1, [Edit::Quit]);
        assert_eq!(typed(b"abc\x03").1.last(), Some(&Edit::Quit));
    }

    #[test]
    fn arrows_move_the_cursor_and_never_insert_garbage() {
        // Left, Left, insert, Home, insert, End, insert; Up, Down, F5, PgUp, SS3 arrows, Alt-x.
        let (e, _) = typed(b"ac\x1b[D\x1b[Db\x1b[HX\x1b[FY\x1b[A\x1b[B\x1b[15~\x1b[5~\x1bOD\x1bOCZ\x1bx");
        assert_eq!(e.text(), "XbacYZ");
        let (e, _) = typed(b"abc\x1b[D\x1b[D\x1b[3~");
        assert_eq!(e.text(), "ac", "Delete removes under the cursor");
        // A sequence with modifiers (Ctrl-Left) is consumed whole.
        assert_eq!(typed(b"a\x1b[1;5Db").0.text(), "ba");
    }

    #[test]
    fn sequences_and_characters_split_across_reads() {
        let mut d = Decoder::default();
        let mut e = LineEditor::default();
        let bytes = "é€x\x1b[D😀".as_bytes();
        for chunk in bytes.chunks(1) {
            for k in d.feed(chunk) {
                e.apply(k);
            }
        }
        assert_eq!(e.text(), "é€😀x");
        // Invalid UTF-8 and other control bytes are dropped.
        assert_eq!(typed(b"a\xff\xc3b\x00\x07c").0.text(), "abc");
    }

    #[test]
    fn the_line_and_pending_bytes_stay_bounded() {
        let (e, _) = typed(&vec![b'x'; MAX_LINE + 100]);
        assert_eq!(e.text().len(), MAX_LINE);
        let mut d = Decoder::default();
        d.feed(b"\x1b[");
        d.feed(&[b'1'; 100]);
        assert!(d.pending.len() <= MAX_ESCAPE);
    }

    #[test]
    fn the_view_keeps_the_cursor_visible() {
        let (e, _) = typed(b"hello");
        assert_eq!(e.view(20), ("hello".into(), " ".into(), String::new()));
        let (e, _) = typed(b"hello world\x01\x1b[C");
        assert_eq!(e.view(20), ("h".into(), "e".into(), "llo world".into()));
        let (e, _) = typed(b"0123456789");
        let (before, at, after) = e.view(4);
        assert_eq!((before.as_str(), at.as_str(), after.as_str()), ("789", " ", ""));
    }
}
