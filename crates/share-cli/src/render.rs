//! Turning engine events into what a person or a script sees: indicatif bars on a terminal,
//! plain lines otherwise, or newline-delimited JSON with `--json`.
//!
//! Names, paths, URLs and reasons in events come from strangers (manifests, trackers, peers).
//! Every line shown and the bar's name go through `share_proto::sanitize::sanitize` here, at
//! the one place text reaches the terminal; JSON keeps exact values with control and bidi
//! characters escaped ([`json_text`]).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use share_engine::{Event, Stats};
use share_proto::sanitize::{escape_for_json, sanitize, tracker_name};

/// How output is shown.
pub struct Render {
    json: bool,
    multi: MultiProgress,
    bar: Option<ProgressBar>,
    check: Option<ProgressBar>,
    label: String,
    terminal: bool,
    seeding: bool,
}

impl Render {
    /// `label` names the torrent on the bar.
    pub fn new(json: bool, label: &str) -> Self {
        // Bars only for a person watching: stdout and stderr both on a terminal.
        let terminal = !json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            json,
            multi: MultiProgress::with_draw_target(target),
            bar: None,
            check: None,
            label: sanitize(label),
            terminal,
            seeding: false,
        }
    }

    /// Prints one JSON object on stdout (JSON mode) or a line above the bars.
    pub fn emit(&self, value: serde_json::Value, text: impl FnOnce() -> Option<String>) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", json_text(&value));
            let _ = out.flush();
        } else if let Some(line) = text() {
            self.println(&line);
        }
    }

    /// A line of text above the bars (or plainly on stderr without a terminal).
    pub fn println(&self, line: &str) {
        // Line by line, so that our own line breaks survive and nobody else's text does.
        let line = line.split('\n').map(sanitize).collect::<Vec<_>>().join("\n");
        let line = line.as_str();
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn download_bar(&mut self, total: u64) -> &ProgressBar {
        self.bar.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30.cyan/blue}] {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(self.label.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        })
    }

    /// Renders one engine event.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Checking { done, total } => {
                if !self.json {
                    let check = self.check.get_or_insert_with(|| {
                        let b = self.multi.add(crate::progress::bytes_bar(*total, "checking"));
                        b.set_length(*total);
                        b
                    });
                    check.set_position(*done);
                    if done == total {
                        check.finish_and_clear();
                    }
                }
                if done == total || *done == 0 {
                    self.emit(json!({"event": "checking", "done": done, "total": total}), || None);
                }
            }
            Event::Progress(s) => {
                if self.json {
                    self.emit(progress_json(s), || None);
                } else {
                    let complete = s.have_bytes == s.total_bytes;
                    let switch = complete && !self.seeding;
                    self.seeding |= complete;
                    let bar = self.download_bar(s.total_bytes);
                    if switch {
                        // Once everything is here a full bar says nothing: show what we give.
                        bar.set_style(ProgressStyle::with_template("{prefix:.bold} seeding: {msg}").expect("static template"));
                    }
                    bar.set_position(s.have_bytes);
                    bar.set_message(if complete { seeding_status(s) } else { status(s) });
                }
            }
            Event::PeerUp { addr, peer_id, client } => self.emit(
                json!({"event": "peer_up", "addr": addr, "peer_id": peer_id.to_string(), "client": client}),
                || None,
            ),
            Event::PeerRefused { addr, reason } => self.emit(
                json!({"event": "peer_refused", "addr": addr, "reason": reason}),
                || None,
            ),
            Event::PeerDown { addr, peer_id, reason } => self.emit(
                json!({"event": "peer_down", "addr": addr, "peer_id": peer_id.to_string(), "reason": reason}),
                || None,
            ),
            Event::PieceVerified { piece, from } => self.emit(
                json!({"event": "piece_verified", "piece": piece, "from": from.iter().map(|p| p.to_string()).collect::<Vec<_>>()}),
                || None,
            ),
            Event::PieceFailed { piece, from } => self.emit(
                json!({"event": "piece_failed", "piece": piece, "from": from.iter().map(|p| p.to_string()).collect::<Vec<_>>()}),
                || Some(format!("piece {piece} failed its hash check; fetching it again")),
            ),
            Event::PeerBanned { addr, peer_id, reason } => self.emit(
                json!({"event": "peer_banned", "addr": addr, "peer_id": peer_id.to_string(), "reason": reason}),
                || Some(format!("banned peer {addr}: {reason}")),
            ),
            Event::Complete => self.emit(json!({"event": "complete"}), || None),
            Event::TrackerOk { url, peers } => {
                self.emit(json!({"event": "tracker_ok", "url": url, "peers": peers}), || None)
            }
            Event::TrackerError { url, error } => self.emit(
                json!({"event": "tracker_error", "url": url, "error": error}),
                || Some(format!("tracker {}: {error} (retrying; carrying on with known peers)", tracker_name(url))),
            ),
            Event::FileUnavailable { path, reason, pieces } => self.emit(
                json!({"event": "file_unavailable", "path": path, "reason": reason, "pieces": pieces}),
                || {
                    Some(format!(
                        "share: no longer serving {}: {reason} ({pieces} piece{} withheld; the rest is still served; restart to re-check)",
                        path.display(),
                        if *pieces == 1 { "" } else { "s" }
                    ))
                },
            ),
            Event::Fatal(message) => self.emit(json!({"event": "error", "message": message}), || None),
            Event::Chat { from, nick, text, time_ms, direct, via } => self.emit(
                json!({
                    "event": "chat", "from": from.to_string(), "nick": nick, "text": text,
                    "time_ms": time_ms, "direct": direct, "via": via,
                }),
                || Some(format!("[{}] {nick}{}: {text}", clock(*time_ms), if *direct { " (to you)" } else { "" })),
            ),
            Event::ChatDropped { addr, reason } => {
                self.emit(json!({"event": "chat_dropped", "addr": addr, "reason": reason}), || None)
            }
        }
    }

    /// Our own message, shown as others see it (not echoed in JSON mode).
    pub fn own_chat(&self, nick: &str, text: &str, to: Option<&str>) {
        if !self.json {
            let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
            let text = share_proto::chat::sanitize(text);
            let to = to.map(|t| format!(" (to {t})")).unwrap_or_default();
            self.println(&format!("[{}] {nick}{to}: {}", clock(now), text.trim()));
        }
    }

    /// A problem with the user's input: a JSON event named `event`, or a line.
    pub fn problem(&self, event: &str, message: &str) {
        self.emit(json!({"event": event, "message": message}), || {
            Some(message.to_string())
        });
    }

    /// Clears the bars.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if let Some(b) = self.check.take() {
            b.finish_and_clear();
        }
    }
}

/// A JSON value as one line of text, with control and bidi characters escaped (so the exact
/// value reaches a script and nothing reaches the terminal).
pub fn json_text(value: &serde_json::Value) -> String {
    escape_for_json(&value.to_string()).into_owned()
}

fn status(s: &Stats) -> String {
    let queued = match s.queued_peers {
        0 => String::new(),
        n => format!(", {n} more known"),
    };
    format!(
        "↓ {}/s ↑ {}/s, {} peer{} ({} seeding{queued})",
        HumanBytes(s.down_rate as u64),
        HumanBytes(s.up_rate as u64),
        s.peers,
        if s.peers == 1 { "" } else { "s" },
        s.seeders
    )
}

/// `HH:MM` in local time for unix milliseconds.
fn clock(ms: u64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms as i64) {
        chrono::LocalResult::Single(t) => t.format("%H:%M").to_string(),
        _ => "--:--".into(),
    }
}

fn seeding_status(s: &Stats) -> String {
    format!(
        "↑ {}/s, uploaded {}, {} peer{}",
        HumanBytes(s.up_rate as u64),
        HumanBytes(s.uploaded),
        s.peers,
        if s.peers == 1 { "" } else { "s" }
    )
}

fn progress_json(s: &Stats) -> serde_json::Value {
    json!({
        "event": "progress",
        "have": s.have_bytes,
        "total": s.total_bytes,
        "pieces_have": s.pieces_have,
        "pieces_total": s.pieces_total,
        "peers": s.peers,
        "seeders": s.seeders,
        "queued_peers": s.queued_peers,
        "downloaded": s.downloaded,
        "uploaded": s.uploaded,
        "down_rate": s.down_rate.round(),
        "up_rate": s.up_rate.round(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bars_name_is_sanitized() {
        let r = Render::new(true, "a\x1b[31mb\x1b]52;c;ZXZpbA==\x07\u{202e}c");
        assert_eq!(r.label, "abc");
    }
}
