//! indicatif bars for the commands. Bars draw on stderr and only when it is a terminal
//! (indicatif hides them otherwise), so pipes and `--json` output stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar of its own on stderr: `label [bar] done/total rate ETA`.
pub fn bytes_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    label_bytes_bar(&bar, label);
    bar
}

/// Gives `bar` the byte-count style and its label. A bar meant for a `MultiProgress` gets
/// this only once it has joined it: a bar of its own draws on the terminal as soon as its
/// message is set, and that copy stays behind when the `MultiProgress` draws it again.
pub fn label_bytes_bar(bar: &ProgressBar, label: &str) {
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40.cyan/blue}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("static template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
}
