//! indicatif bars for the commands. Bars draw on stderr and only when it is a terminal
//! (indicatif hides them otherwise), so pipes and `--json` output stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar: `label [bar] done/total rate ETA`.
pub fn bytes_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40.cyan/blue}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("static template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
