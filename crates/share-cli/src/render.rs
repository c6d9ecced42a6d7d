//! Turning engine events into what a person or a script sees: indicatif bars on a terminal,
//! plain lines otherwise, or newline-delimited JSON with `--json`.
//!
//! Names, paths, URLs and reasons in events come from strangers (manifests, trackers, peers).
//! Every line shown and the bar's name go through `share_proto::sanitize::sanitize` here, at
//! the one place text reaches the terminal; JSON keeps exact values with control and bidi
//! characters escaped ([`json_text`]).
//!
//! On a terminal the bars are, top to bottom: the resume check (finished and cleared when it
//! ends), the download or seeding bar (none for `share chat`), and the chat input line, which
//! stays last: bars added later go above it, and messages print above them all.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use share_engine::api::event_json;
use share_engine::{Event, Stats};
use share_proto::sanitize::{escape_for_json, sanitize, tracker_name};
use share_proto::PeerId;

use crate::line_edit::LineEditor;

/// What the input line starts with.
const PROMPT: &str = "> ";
/// Nicknames remembered to tell apart two authors with one nickname; past this the table
/// starts afresh (a stranger inventing nicknames cannot grow it).
const NICKS: usize = 1024;

/// How output is shown.
pub struct Render {
    json: bool,
    multi: MultiProgress,
    bar: Option<ProgressBar>,
    check: Option<ProgressBar>,
    label: String,
    terminal: bool,
    seeding: bool,
    /// `share chat`: nothing is downloaded, so no download bar.
    chat_only: bool,
    /// Whether the resume check has ended; later (out of order) counts are ignored.
    checked: bool,
    /// The chat input line, last under the bars, while keys are read from a terminal.
    input: Option<ProgressBar>,
    /// The authors seen under each nickname, to tag a nickname two authors share.
    authors: HashMap<String, Vec<PeerId>>,
    /// With several transfers in one process: the bar this one's bars go above (the total),
    /// the torrent's id in its JSON lines, and its name before its text lines.
    anchor: Option<ProgressBar>,
    tag: Option<u64>,
    prefix: String,
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
            chat_only: false,
            checked: false,
            input: None,
            authors: HashMap::new(),
            anchor: None,
            tag: None,
            prefix: String::new(),
        }
    }

    /// The view of one of several transfers, drawn with `main`'s bars above `anchor` (the
    /// total) and labelled `bar_label` there: its JSON lines carry `"torrent": id` and its
    /// text lines start with its name.
    pub fn transfer(
        main: &Render,
        name: &str,
        bar_label: &str,
        id: u64,
        anchor: Option<&ProgressBar>,
    ) -> Self {
        Self {
            json: main.json,
            multi: main.multi.clone(),
            bar: None,
            check: None,
            prefix: format!("{}: ", sanitize(name)),
            label: sanitize(bar_label),
            terminal: main.terminal,
            seeding: false,
            chat_only: false,
            checked: false,
            input: None,
            authors: HashMap::new(),
            anchor: anchor.cloned(),
            tag: Some(id),
        }
    }

    /// A bar of its own under the others (the total of several transfers), styled once it
    /// has joined them.
    pub fn add_total_bar(&self, total: u64, label: &str) -> ProgressBar {
        let bar = self.add_bar(ProgressBar::with_draw_target(
            Some(total),
            ProgressDrawTarget::hidden(),
        ));
        bar.set_style(
            ProgressStyle::with_template(&bytes_template(label))
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar
    }

    /// Puts this transfer's bar in its place among the others now, so that the bars keep
    /// the order of the command line whichever starts first.
    pub fn reserve_bar(&mut self) {
        if self.terminal && !self.json {
            self.download_bar(0).set_message("starting");
        }
    }

    /// For `share chat`: no download bar.
    pub fn chat_only(mut self) -> Self {
        self.chat_only = true;
        self
    }

    /// Whether bars are drawn (stdout and stderr are a terminal, no `--json`).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Shows the chat input line under the bars.
    pub fn start_input(&mut self) {
        let bar = self
            .multi
            .add(ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()));
        bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
        // Redraws are rate-limited; the tick draws the last key of a fast burst too.
        bar.enable_steady_tick(Duration::from_millis(100));
        self.input = Some(bar);
        self.show_input(&LineEditor::default());
    }

    /// Draws the line being typed, its cursor in reverse video.
    pub fn show_input(&self, editor: &LineEditor) {
        if let Some(bar) = &self.input {
            let width = crate::terminal::width().saturating_sub(PROMPT.len() + 1);
            let (before, at, after) = editor.view(width);
            bar.set_message(format!("{PROMPT}{before}\x1b[7m{at}\x1b[0m{after}"));
        }
    }

    /// Removes the input line.
    pub fn end_input(&mut self) {
        if let Some(bar) = self.input.take() {
            bar.finish_and_clear();
        }
    }

    /// Adds a bar above the input line.
    fn add_bar(&self, bar: ProgressBar) -> ProgressBar {
        match self.anchor.as_ref().or(self.input.as_ref()) {
            Some(above) => self.multi.insert_before(above, bar),
            None => self.multi.add(bar),
        }
    }

    /// How an author is shown: the nickname, or `nick#id` once two authors have used it.
    fn who(&mut self, nick: &str, from: PeerId) -> String {
        if self.authors.len() >= NICKS && !self.authors.contains_key(nick) {
            self.authors.clear();
        }
        let seen = self.authors.entry(nick.to_string()).or_default();
        if !seen.contains(&from) && seen.len() < 16 {
            seen.push(from);
        }
        if seen.len() > 1 {
            share_engine::tagged(nick, &from)
        } else {
            nick.to_string()
        }
    }

    /// Prints one JSON object on stdout (JSON mode) or a line above the bars.
    pub fn emit(&self, mut value: serde_json::Value, text: impl FnOnce() -> Option<String>) {
        if let (Some(id), Some(fields)) = (self.tag, value.as_object_mut()) {
            fields.insert("torrent".into(), id.into());
        }
        if self.json {
            // A reader that closed our stdout (`share fetch --json | head -1`) ends us quietly.
            crate::exit::print(&format!("{}\n", json_text(&value)));
        } else if let Some(line) = text() {
            self.println(&line);
        }
    }

    /// A line of text above the bars (or plainly on stderr without a terminal).
    pub fn println(&self, line: &str) {
        // Line by line, so that our own line breaks survive and nobody else's text does.
        let line = line.split('\n').map(sanitize).collect::<Vec<_>>().join("\n");
        let line = format!("{}{line}", self.prefix);
        let line = line.as_str();
        if self.terminal {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn download_bar(&mut self, total: u64) -> ProgressBar {
        if let Some(bar) = &self.bar {
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            return bar.clone();
        }
        let bar = self.add_bar(ProgressBar::with_draw_target(
            Some(total),
            ProgressDrawTarget::hidden(),
        ));
        bar.set_style(
            // The ETA is ours (`eta`), from this run's rate: indicatif's would count the bytes
            // a resume found on disk as if they had just arrived.
            ProgressStyle::with_template(&bytes_template(&self.label))
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(self.label.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar.clone());
        bar
    }

    /// The resume check's bar and its two JSON lines: `done == 0` as it starts and
    /// `done == total` as it ends, each once.
    fn checking(&mut self, done: u64, total: u64) {
        if self.checked {
            return;
        }
        let end = done >= total;
        if !self.json {
            if self.check.is_none() {
                let bar = self.add_bar(ProgressBar::with_draw_target(
                    Some(total),
                    ProgressDrawTarget::hidden(),
                ));
                crate::progress::label_bytes_bar(&bar, "checking");
                self.check = Some(bar);
            }
            if let Some(check) = &self.check {
                check.set_position(done);
                if end {
                    check.finish_and_clear();
                }
            }
        }
        self.checked = end;
        if end || done == 0 {
            self.emit(event_json(&Event::Checking { done, total }), || None);
        }
    }

    /// Renders one engine event.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Checking { done, total } => self.checking(*done, *total),
            Event::Progress(s) => {
                if self.json {
                    self.emit(share_engine::api::stats_json(s), || None);
                } else if !self.chat_only {
                    let complete = s.have_bytes == s.total_bytes;
                    let switch = complete && !self.seeding;
                    self.seeding |= complete;
                    let bar = self.download_bar(s.total_bytes);
                    if switch {
                        // Once everything is here a full bar says nothing: show what we give.
                        bar.set_style(ProgressStyle::with_template("{prefix:.bold} seeding: {wide_msg}").expect("static template"));
                    }
                    bar.set_position(s.have_bytes);
                    bar.set_message(if complete { seeding_status(s) } else { status(s) });
                }
            }
            Event::PeerUp { .. }
            | Event::PeerRefused { .. }
            | Event::PeerDown { .. }
            | Event::PieceVerified { .. }
            | Event::Complete
            | Event::TrackerOk { .. }
            | Event::Dht { .. }
            | Event::ChatDropped { .. }
            | Event::Fatal(_)
            // The bars and the other lines already say as much; scripts get every change.
            | Event::State(_) => self.emit(event_json(event), || None),
            Event::PieceFailed { piece, .. } => self.emit(event_json(event), || {
                Some(format!("piece {piece} failed its hash check; fetching it again"))
            }),
            Event::PeerBanned { addr, reason, .. } => self.emit(event_json(event), || {
                Some(format!("banned peer {addr}: {reason}"))
            }),
            Event::TrackerError { url, error } => self.emit(event_json(event), || {
                Some(format!(
                    "tracker {}: {error} (retrying; carrying on with known peers)",
                    tracker_name(url)
                ))
            }),
            Event::FileUnavailable { path, reason, pieces } => self.emit(event_json(event), || {
                Some(format!(
                    "share: no longer serving {}: {reason} ({pieces} piece{} withheld; the rest is still served; restart to re-check)",
                    path.display(),
                    if *pieces == 1 { "" } else { "s" }
                ))
            }),
            Event::Chat { from, nick, text, time_ms, direct, .. } => {
                let who = self.who(nick, *from);
                self.emit(event_json(event), || {
                    Some(format!(
                        "[{}] {who}{}: {text}",
                        clock(*time_ms),
                        if *direct { " (to you)" } else { "" }
                    ))
                })
            }
        }
    }

    /// Our own message, shown once as `[HH:MM] you: text` (not echoed in JSON mode).
    pub fn own_chat(&self, text: &str, to: Option<&str>) {
        if !self.json {
            let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
            let text = share_proto::chat::sanitize(text);
            let to = to.map(|t| format!(" (to {t})")).unwrap_or_default();
            self.println(&format!("[{}] you{to}: {}", clock(now), text.trim()));
        }
    }

    /// A problem with the user's input: a JSON event named `event`, or a line.
    pub fn problem(&self, event: &str, message: &str) {
        self.emit(json!({"event": event, "message": message}), || {
            Some(message.to_string())
        });
    }

    /// Clears the bars and the input line.
    pub fn finish(&mut self) {
        self.end_input();
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
    let eta = eta(s).map_or_else(|| "-".to_string(), duration);
    format!(
        "↓ {}/s ↑ {}/s, {} peer{} ({} seeding{queued}) ETA {eta}",
        HumanBytes(s.down_rate as u64),
        HumanBytes(s.up_rate as u64),
        s.peers,
        if s.peers == 1 { "" } else { "s" },
        s.seeders
    )
}

/// Time to completion at this run's download rate. `down_rate` counts only bytes received
/// since start, so what a resume found on disk shortens the remainder but never inflates the
/// rate; `None` while nothing arrives.
fn eta(s: &Stats) -> Option<Duration> {
    let left = s.total_bytes.saturating_sub(s.have_bytes);
    if left == 0 {
        return Some(Duration::ZERO);
    }
    (s.down_rate >= 1.0)
        .then(|| Duration::from_secs_f64(left as f64 / s.down_rate).min(Duration::from_secs(100 * 3600)))
}

/// `1h 02m`, `3m 05s`, `42s`.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

/// `HH:MM` in local time for unix milliseconds.
fn clock(ms: u64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms as i64) {
        chrono::LocalResult::Single(t) => t.format("%H:%M").to_string(),
        _ => "--:--".into(),
    }
}

/// The style of a byte-count bar labelled `label`: the bar is as wide as the terminal leaves
/// room for beside the counts and the status (at most 30 columns, at least 10), and the
/// status is cut at the edge rather than wrapped onto a line the next redraw leaves behind.
fn bytes_template(label: &str) -> String {
    const COUNTS: usize = 24; // "123.45 MiB/678.90 MiB " and the bar's brackets
    const STATUS: usize = 48; // "↓ 1.17 MiB/s ↑ 0 B/s, 1 peer (1 seeding) ETA 13s"
    let room = crate::terminal::width().saturating_sub(label.chars().count() + 2 + COUNTS + STATUS);
    let bar = room.clamp(10, 30);
    format!("{{prefix:.bold}} [{{bar:{bar}.cyan/blue}}] {{binary_bytes}}/{{binary_total_bytes}} {{wide_msg}}")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(have: u64, total: u64, downloaded: u64, down_rate: f64) -> Event {
        Event::Progress(Stats {
            have_bytes: have,
            total_bytes: total,
            downloaded,
            down_rate,
            ..Stats::default()
        })
    }

    #[test]
    fn share_chat_draws_no_download_bar() {
        let mut chat = Render::new(false, "room").chat_only();
        chat.event(&progress(0, 1 << 20, 0, 0.0));
        assert!(chat.bar.is_none());
        let mut fetch = Render::new(false, "file");
        fetch.event(&progress(0, 1 << 20, 0, 0.0));
        assert!(fetch.bar.is_some());
    }

    #[test]
    fn the_checking_bar_is_finished_when_checking_ends() {
        let mut r = Render::new(false, "file");
        let total = 10 << 20;
        r.event(&Event::Checking { done: 0, total });
        r.event(&Event::Checking { done: 4 << 20, total });
        assert!(!r.check.as_ref().unwrap().is_finished());
        r.event(&Event::Checking { done: total, total });
        assert!(r.check.as_ref().unwrap().is_finished());
        // A worker's count that arrives after the end does not bring the bar back.
        r.event(&Event::Checking { done: 6 << 20, total });
        let check = r.check.as_ref().unwrap();
        assert!(check.is_finished());
        assert_eq!(check.position(), total);
    }

    #[test]
    fn the_eta_uses_this_runs_rate_not_the_resumed_bytes() {
        // 900 MB were on disk; 10 MB arrived this run at 1 MB/s: 90 MB left is 90 s.
        let s = Stats {
            have_bytes: 910_000_000,
            total_bytes: 1_000_000_000,
            downloaded: 10_000_000,
            down_rate: 1_000_000.0,
            ..Stats::default()
        };
        assert_eq!(eta(&s), Some(Duration::from_secs(90)));
        assert!(status(&s).ends_with("ETA 1m 30s"), "{}", status(&s));
        assert_eq!(eta(&Stats { down_rate: 0.0, ..s }), None);
        assert_eq!(
            eta(&Stats {
                have_bytes: s.total_bytes,
                ..s
            }),
            Some(Duration::ZERO)
        );
        assert_eq!(duration(Duration::from_secs(3725)), "1h 02m");
        assert_eq!(duration(Duration::from_secs(42)), "42s");
    }

    #[test]
    fn two_authors_with_one_nickname_are_told_apart() {
        let mut r = Render::new(false, "room");
        let (a, b) = (PeerId([1; 20]), PeerId([2; 20]));
        assert_eq!(r.who("bob", a), "bob");
        assert_eq!(r.who("bob", a), "bob");
        assert_eq!(r.who("bob", b), "bob#020202");
        assert_eq!(r.who("bob", a), "bob#010101");
        assert_eq!(r.who("alice", b), "alice");
    }

    #[test]
    fn the_bars_name_is_sanitized() {
        let r = Render::new(true, "a\x1b[31mb\x1b]52;c;ZXZpbA==\x07\u{202e}c");
        assert_eq!(r.label, "abc");
    }
}
