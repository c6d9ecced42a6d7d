//! `share seed` in a real pseudo-terminal (tmux): a chat line typed slowly while the bars
//! redraw is visible before Enter, reaches the other side after it, is shown once on the
//! sender's screen, and Ctrl-C leaves with the terminal's echo and line mode restored.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::pattern;
use common::proc::Proc;
use share_tests::tools::require;

/// A tmux server of its own (its socket named after this process), killed on drop.
struct Tmux {
    tmux: std::path::PathBuf,
    socket: String,
}

impl Tmux {
    fn new(tmux: std::path::PathBuf, command: &str) -> Self {
        // One server per test: tests of this file run at once in one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("share-test-{}-{n}", std::process::id());
        let t = Self { tmux, socket };
        t.run(&["new-session", "-d", "-x", "120", "-y", "30", command]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.tmux)
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after `secs`.
    fn wait(&self, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {secs} s; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new(&self.tmux)
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn a_line_typed_under_the_bars_is_visible_sent_and_shown_once() {
    let test = "terminal::a_line_typed_under_the_bars_is_visible_sent_and_shown_once";
    let Some(tmux) = require("tmux", "tmux", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typed.bin");
    std::fs::write(&file, pattern(2_000_000, 9)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let share = env!("CARGO_BIN_EXE_share");
    // After share exits, the shell reports its exit code and the terminal's modes.
    let command = format!(
        "{share} seed {} --port {port} --tracker-port 0 --announce-host 127.0.0.1 --nick sam; \
         echo EXIT=$?; echo STTY=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '); \
         sleep 600",
        file.display()
    );
    let t = Tmux::new(tmux, &command);
    t.wait(60, "seeding", |s| {
        s.contains("Ctrl-C to stop") && s.contains("seeding:")
    });
    let manifest = format!("{}.torrent", file.display());
    let peer = format!("127.0.0.1:{port}");
    let mut reader = Proc::share_talking(&[
        "chat", &manifest, "--peer", &peer, "--port", "0", "--nick", "reader", "--json",
    ]);
    reader.wait(30, "the seeder's extension handshake", |v| {
        v["event"] == "peer_up" && !v["client"].is_null()
    });
    let text = "hello from the terminal";
    // Typed a key at a time, as a person does, across several redraws of the bars (200 ms).
    for c in text.chars() {
        t.run(&["send-keys", "-t", "0", "-l", &c.to_string()]);
        std::thread::sleep(Duration::from_millis(40));
    }
    let screen = t.wait(10, "the typed line", |s| {
        s.lines().any(|l| l.trim_end() == format!("> {text}"))
    });
    assert!(screen.contains("seeding:"), "the bars are still there:\n{screen}");
    t.run(&["send-keys", "-t", "0", "Enter"]);
    let got = reader.wait(30, "the message", |v| v["event"] == "chat" && v["text"] == text);
    assert_eq!(got["nick"], "sam");
    let screen = t.wait(10, "the sent line", |s| s.contains(&format!("you: {text}")));
    let shown = screen.lines().filter(|l| l.contains(text)).count();
    assert_eq!(shown, 1, "the sent line is shown exactly once:\n{screen}");
    assert!(
        screen.lines().any(|l| l.trim_end() == ">"),
        "the input line is empty again:\n{screen}"
    );
    // Garbage keys insert nothing; Ctrl-C quits and gives the terminal back as it was.
    t.run(&["send-keys", "-t", "0", "Up", "Down", "F5", "Left"]);
    t.run(&["send-keys", "-t", "0", "-l", "x"]);
    t.wait(10, "x typed", |s| s.lines().any(|l| l.trim_end() == "> x"));
    t.run(&["send-keys", "-t", "0", "C-c"]);
    let screen = t.wait(20, "share to exit", |s| s.contains("STTY="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains("STTY=icanon echo"),
        "line mode and echo restored:\n{screen}"
    );
}

/// A fetch that resumes a half-written file shows its resume check, then the download, then
/// its end: the `checking` bar and the input line are cleared when they end, and no copy of
/// them drawn outside the bars (before they joined them) is left on the screen.
#[test]
fn a_resumed_fetch_on_a_terminal_leaves_no_bar_or_input_line_behind() {
    let test = "terminal::a_resumed_fetch_on_a_terminal_leaves_no_bar_or_input_line_behind";
    let Some(tmux) = require("tmux", "tmux", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resumed.bin");
    let data = pattern(24_000_000, 4);
    std::fs::write(&file, &data).unwrap();
    let (_seeder, manifest) = common::proc::seed(&file, &[]);
    // Half of the file, as an earlier run of another tool might have left it.
    let out = dir.path().join("copy.bin");
    std::fs::write(&out, &data[..data.len() / 2]).unwrap();
    let share = env!("CARGO_BIN_EXE_share");
    let command = format!(
        "SHARE_STATE_DIR={state} {share} fetch {manifest} -o {out} --overwrite --port 0 --no-seed; \
         echo EXIT=$?; sleep 600",
        state = common::STATE_DIR,
        out = out.display(),
    );
    let t = Tmux::new(tmux, &command);
    let screen = t.wait(60, "the fetch to end", |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(std::fs::read(&out).unwrap(), data, "the copy is byte-identical");
    assert!(
        !screen.contains("checking"),
        "no checking bar is left on the screen:\n{screen}"
    );
    assert!(
        !screen.lines().any(|l| l.trim_end() == ">"),
        "no input line is left on the screen:\n{screen}"
    );
}
