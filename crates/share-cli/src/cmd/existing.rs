//! An existing manifest where `share seed` would write one: seeded as it is when it
//! describes the data, so the info hash (and with it the swarm) and the trackers stay the
//! user's, whichever tool made it (mktorrent, another client, an earlier `share seed`).
//!
//! "Describes the data" means: the same name, the same kind (file or directory), the same
//! files with the same lengths in the same order, every piece hash matching the data on disk,
//! and no manifest option given on the command line that says otherwise (`--piece-size`,
//! `--private`, `--tracker`, `--comment`, `--date`). Anything else is refused, naming the
//! manifest and `--force`, so an existing manifest is never silently replaced.

use std::path::Path;

use anyhow::anyhow;
use share_proto::create;
use share_proto::metainfo::Metainfo;

use crate::cmd::create::ManifestArgs;
use crate::exit::Failure;
use crate::{manifest, progress};

/// The manifest at `output` if it describes `path` and agrees with `args`; otherwise the
/// refusal (exit 2) naming it and `--force`.
pub fn check(path: &Path, output: &Path, args: &ManifestArgs) -> Result<Metainfo, Failure> {
    let refuse = |why: String| {
        Failure::input(anyhow!(
            "{} already exists and {why}; pass --force to replace it with a new manifest",
            output.display()
        ))
    };
    let meta = manifest::load(output).map_err(|f| refuse(format!("cannot be reused ({f})")))?;
    let source = create::scan(path).map_err(Failure::input)?;
    let theirs: Vec<_> = meta.layout().files().iter().map(|f| (&f.path, f.len)).collect();
    let ours: Vec<_> = source.layout.files().iter().map(|f| (&f.path, f.len)).collect();
    if meta.info.name != source.name || meta.info.multi_file != source.multi_file || theirs != ours {
        return Err(refuse(format!(
            "describes other files than {} (its name is {:?}, with {} file{})",
            path.display(),
            meta.info.name,
            theirs.len(),
            if theirs.len() == 1 { "" } else { "s" }
        )));
    }
    if let Some(why) = disagreement(&meta, args) {
        return Err(refuse(why));
    }
    let bar = progress::bytes_bar(source.layout.total_len(), "checking");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hashes = create::hash_pieces(&source, meta.info.piece_length, threads, &|n| bar.inc(n))
        .map_err(|e| Failure::runtime(anyhow!(e)))?;
    bar.finish_and_clear();
    if let Some(i) = hashes.iter().zip(&meta.info.pieces).position(|(a, b)| a != b) {
        return Err(refuse(format!(
            "does not match the data in {} (piece {i} fails its hash check)",
            path.display()
        )));
    }
    Ok(meta)
}

/// A manifest option given on the command line that the existing manifest does not have.
fn disagreement(meta: &Metainfo, args: &ManifestArgs) -> Option<String> {
    if let Some(size) = args.piece_size {
        if size != u64::from(meta.info.piece_length) {
            return Some(format!(
                "has pieces of {} bytes where --piece-size asks for {size}",
                meta.info.piece_length
            ));
        }
    }
    if args.private && !meta.info.private {
        return Some("is not private where --private asks for it".into());
    }
    if !args.trackers.is_empty() && args.trackers != meta.trackers() {
        return Some(format!("names other trackers ({})", meta.trackers().join(", ")));
    }
    if args.comment.is_some() && args.comment != meta.comment {
        return Some("has another comment than --comment".into());
    }
    if args.date {
        return Some("would need a new creation date for --date".into());
    }
    None
}
