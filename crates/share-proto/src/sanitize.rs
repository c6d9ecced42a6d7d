//! Text that came from outside (a manifest's name, paths, comment and tracker URLs, a
//! tracker's `failure reason`, a peer's chat message or client name) made safe to show on a
//! terminal. This is the one sanitizer: every front-end line built from strangers' text goes
//! through [`sanitize`], so a stranger can neither drive the terminal (colours, cursor moves,
//! window titles, OSC 8 links, OSC 52 clipboard writes) nor reorder what the user reads with
//! bidirectional overrides.
//!
//! JSON output keeps the exact value instead (a script may need the real file name), and
//! [`escape_for_json`] makes that safe too: every control and bidi character there is written
//! as a `\uXXXX` escape, so printing the JSON on a terminal is harmless as well.

use std::borrow::Cow;

/// Text safe to print on a terminal: terminal escape sequences (CSI, OSC, DCS and the rest of
/// ECMA-48's ESC forms) are removed whole, every other control character (C0, DEL, C1) and
/// every bidirectional control ([`is_bidi_control`]) is dropped. Line breaks and tabs become
/// spaces, so one value stays on one line.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte.
                Some('[') => {
                    for d in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&d) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \ or the C1 ST).
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // nF sequences (ESC, intermediates, final), e.g. ESC ( B.
                Some('\x20'..='\x2f') => {
                    for d in chars.by_ref() {
                        if !('\x20'..='\x2f').contains(&d) {
                            break;
                        }
                    }
                }
                // Fe, Fp, Fs: ESC and one byte.
                _ => {}
            },
            // The C1 forms of CSI and of the string introducers are as dangerous as ESC [ and
            // ESC ] on terminals that honour 8-bit controls.
            '\u{9b}' => {
                for d in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&d) {
                        break;
                    }
                }
            }
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips the body of an OSC/DCS/SOS/PM/APC string up to its terminator (BEL, ESC \ or ST).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(d) = chars.next() {
        if d == '\x07' || d == '\u{9c}' {
            break;
        }
        if d == '\x1b' {
            chars.next_if_eq(&'\\');
            break;
        }
    }
}

/// Unicode's bidirectional controls: embeddings and overrides (U+202A..U+202E), isolates
/// (U+2066..U+2069) and the marks (U+200E, U+200F, U+061C). They change the order in which
/// the rest of a line is displayed ("Trojan Source"), so none reaches the terminal.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// A serialized JSON text with every control and bidi character written as a `\uXXXX` escape.
/// serde_json already escapes C0 controls; it leaves DEL, C1 and bidi characters raw, which a
/// parser does not mind and a person reading the terminal does. JSON's structural characters
/// are all ASCII, so these characters can only be inside strings, where the escape means the
/// same character: the value a script parses is unchanged.
pub fn escape_for_json(json: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || is_bidi_control(c);
    if !json.chars().any(unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            // Every such character is in the Basic Multilingual Plane: one escape each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A tracker named for a person: `host[:port]/path` of its URL, without the scheme, any
/// `user:password@`, the query and the fragment, sanitized. Announce URLs carry the
/// percent-encoded binary info hash and peer id in their query, which say nothing to a reader.
pub fn tracker_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    sanitize(&format!("{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string with every kind of hostile sequence the sanitizer must remove.
    const HOSTILE: &str = "a\x1b[31mred\x1b[0m\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\\
        \x1b]52;c;aGVsbG8=\x07\u{202e}txet\u{2066}iso\u{2069}\u{200f}b";

    #[test]
    fn sanitize_strips_escapes_and_controls() {
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "red");
        assert_eq!(sanitize("a\x1b]0;evil title\x07b"), "ab");
        assert_eq!(sanitize("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b"), "alinkb");
        // OSC 52 writes the clipboard.
        assert_eq!(sanitize("a\x1b]52;c;cm0gLXJmIH4=\x07b"), "ab");
        assert_eq!(sanitize("a\x1b]52;c;cm0gLXJmIH4=\x1b\\b"), "ab");
        assert_eq!(
            sanitize("bell\x07 nul\0 del\x7f c1\u{9b}31mX"),
            "bell nul del c1X"
        );
        assert_eq!(sanitize("a\u{9d}0;title\u{9c}b"), "ab");
        assert_eq!(sanitize("two\nlines\r"), "two lines ");
        assert_eq!(sanitize("\x1b[2J\x1b[H\x1b(B\x1bcok"), "ok");
        assert_eq!(sanitize("plain ünïcödé ✓ 日本"), "plain ünïcödé ✓ 日本");
        for s in ["\x1b", "\x1b[", "\x1b]", "\x1b]\x1b", "\u{9b}", "\u{9d}"] {
            assert_eq!(sanitize(s), "", "{s:?}");
        }
    }

    #[test]
    fn bidi_controls_are_dropped() {
        assert_eq!(sanitize("rtl\u{202e}txet"), "rtltxet");
        for c in ['\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}'] {
            assert_eq!(sanitize(&format!("x{c}y")), "xy", "{c:?}");
        }
        for c in [
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}',
        ] {
            assert_eq!(sanitize(&format!("x{c}y")), "xy", "{c:?}");
        }
        assert_eq!(sanitize(HOSTILE), "aredlinktxetisob");
    }

    #[test]
    fn json_keeps_the_value_with_hostile_characters_escaped() {
        let raw = format!("{{\"name\":\"x{}\\u001b[31m\u{202e}\u{85}y\"}}", '\u{7f}');
        let escaped = escape_for_json(&raw);
        assert_eq!(escaped, "{\"name\":\"x\\u007f\\u001b[31m\\u202e\\u0085y\"}");
        assert!(!escaped.chars().any(|c| c.is_control() || is_bidi_control(c)));
        assert!(matches!(escape_for_json("{\"a\":\"ü\"}"), Cow::Borrowed(_)));
    }

    #[test]
    fn trackers_are_named_by_host_and_path() {
        assert_eq!(
            tracker_name("http://tracker.example:6969/announce?info_hash=%12%34&peer_id=-SH0100-%ff"),
            "tracker.example:6969/announce"
        );
        assert_eq!(
            tracker_name("https://user:secret@t.example/a#frag"),
            "t.example/a"
        );
        assert_eq!(tracker_name("http://t.example"), "t.example");
        assert_eq!(tracker_name("http://t\x1b[31m.example/\u{202e}x"), "t.example/x");
        assert_eq!(tracker_name("not a url"), "not a url");
    }
}
