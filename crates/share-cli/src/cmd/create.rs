//! `share create`: write a manifest for a file or directory, with a hashing progress bar.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use share_proto::create::{self, CreateError, CreateOptions};
use share_proto::metainfo::MAX_MANIFEST_LEN;
use share_proto::InfoHash;

use crate::exit::{Failure, Outcome};
use crate::{manifest, progress};

/// Arguments of `share create`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file or directory to share.
    pub path: PathBuf,
    /// Where to write the manifest [default: PATH.torrent].
    #[arg(short, long, value_name = "MANIFEST")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Replace MANIFEST if it exists (without it, an existing file is left untouched: kept
    /// when it already holds exactly these bytes, refused otherwise).
    #[arg(long)]
    pub force: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Manifest options shared by `create` and `seed`.
#[derive(clap::Args, Debug, Clone)]
pub struct ManifestArgs {
    /// Tracker announce URL; repeat for several (each becomes its own tier).
    #[arg(short, long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Piece size: a power of two from 16K to 16M, e.g. 256K, 1M or 262144 [default: about
    /// 1,000 to 2,000 pieces].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub piece_size: Option<u64>,
    /// Mark the torrent private (BEP 27): peers come only from its trackers.
    #[arg(long)]
    pub private: bool,
    /// A comment stored in the manifest.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Store the current time as the creation date (off by default, so the same input and
    /// options always give the same bytes).
    #[arg(long)]
    pub date: bool,
}

impl ManifestArgs {
    /// The options for `share_proto::create`, after checking the tracker URLs.
    pub fn options(&self) -> Result<CreateOptions, Failure> {
        for url in &self.trackers {
            let ok = ["http://", "https://", "udp://"]
                .iter()
                .any(|s| url.starts_with(s) && url.len() > s.len());
            if !ok {
                return Err(Failure::input(anyhow!(
                    "tracker URL {url:?} is not an http://, https:// or udp:// URL"
                )));
            }
        }
        let piece_len = match self.piece_size {
            Some(size) => Some(create::check_piece_len(size).map_err(Failure::input)?),
            None => None,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(CreateOptions {
            trackers: self.trackers.clone(),
            piece_len,
            private: self.private,
            comment: self.comment.clone(),
            created_by: Some(format!("share {}", env!("CARGO_PKG_VERSION"))),
            creation_date: self.date.then_some(now as i64),
        })
    }
}

/// Parses `262144`, `256K`, `256KiB`, `1M`, `1MiB` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 256K or 1M"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("{s:?} has an unknown unit (use K or M)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

/// Runs `share create`.
pub fn run(args: Args) -> Outcome {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_manifest_path(&args.path));
    let options = args.manifest.options()?;
    // An existing output is replaced only with --force; without it, it may stay only if it
    // already holds exactly the bytes we would write (the same input and options).
    let existing = match (args.force, output.symlink_metadata()) {
        (false, Ok(m)) if m.is_file() && m.len() <= MAX_MANIFEST_LEN => {
            let bytes = std::fs::read(&output).map_err(|_| already_exists(&output))?;
            Some(bytes)
        }
        (false, Ok(_)) => return Err(already_exists(&output)),
        _ => None,
    };
    let made = make(&args.path, &output, &options, existing.as_deref())?;
    if args.json {
        let event = serde_json::json!({
            "event": "created",
            "manifest": output,
            "info_hash": made.info_hash.to_hex(),
            "name": made.name,
            "total_length": made.total_len,
            "piece_length": made.piece_len,
            "pieces": made.pieces,
        });
        crate::exit::print(&format!("{event}\n"));
    } else {
        crate::exit::print(&format!(
            "wrote {}: info hash {}, {} in {} pieces of {}\n",
            output.display(),
            made.info_hash,
            indicatif::HumanBytes(made.total_len),
            made.pieces,
            indicatif::HumanBytes(u64::from(made.piece_len))
        ));
    }
    Ok(())
}

/// `PATH.torrent` beside the shared file or directory.
pub fn default_manifest_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    // A trailing slash would give `dir/.torrent`.
    while s.len() > 1 && s.to_string_lossy().ends_with('/') {
        s = PathBuf::from(&s)
            .components()
            .as_path()
            .as_os_str()
            .to_os_string();
    }
    s.push(".torrent");
    PathBuf::from(s)
}

/// What `make` wrote.
pub struct Made {
    /// The swarm's id.
    pub info_hash: InfoHash,
    /// The torrent's name.
    pub name: String,
    /// Total bytes.
    pub total_len: u64,
    /// Piece length.
    pub piece_len: u32,
    /// Piece count.
    pub pieces: usize,
}

fn already_exists(output: &Path) -> Failure {
    Failure::input(anyhow!(
        "{} already exists; pass --force to replace it",
        output.display()
    ))
}

/// Scans and hashes `path` with a progress bar and writes the manifest to `output`. With
/// `existing` (the bytes already at `output`), nothing is written: they must be the
/// manifest's bytes, or this is the refusal naming `--force`.
pub fn make(
    path: &Path,
    output: &Path,
    options: &CreateOptions,
    existing: Option<&[u8]>,
) -> Result<Made, Failure> {
    let source = create::scan(path).map_err(input_or_runtime)?;
    let piece_len = options
        .piece_len
        .unwrap_or_else(|| create::auto_piece_len(source.layout.total_len()));
    let bar = progress::bytes_bar(source.layout.total_len(), "hashing");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces =
        create::hash_pieces(&source, piece_len, threads, &|n| bar.inc(n)).map_err(input_or_runtime)?;
    bar.finish_and_clear();
    let (bytes, info_hash) = create::encode(&source, piece_len, &pieces, options);
    match existing {
        Some(old) if old == bytes.as_slice() => {}
        Some(_) => return Err(already_exists(output)),
        None => write(output, &bytes)?,
    }
    Ok(Made {
        info_hash,
        name: source.name,
        total_len: source.layout.total_len(),
        piece_len,
        pieces: pieces.len(),
    })
}

fn write(output: &Path, bytes: &[u8]) -> Result<(), Failure> {
    manifest::write_atomically(output, bytes).map_err(|e| {
        // A directory that is missing or is a file, or a manifest path that is a directory,
        // is the user's input at fault; a full or read-only disk is not.
        let failure = match e.kind() {
            ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory => Failure::input,
            _ => Failure::runtime,
        };
        failure(anyhow!("cannot write manifest {}: {e}", output.display()))
    })
}

/// A file that cannot be read or is empty is bad input; one that changes underfoot is not.
fn input_or_runtime(e: CreateError) -> Failure {
    match e {
        CreateError::Changed(_) => Failure::runtime(e),
        _ => Failure::input(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("256K"), Ok(262_144));
        assert_eq!(parse_size("256kib"), Ok(262_144));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("1G").is_err());
        assert!(parse_size("big").is_err());
        assert!(parse_size("99999999999999999999M").is_err());
    }

    #[test]
    fn default_manifest_sits_beside_the_input() {
        assert_eq!(
            default_manifest_path(Path::new("a/file.iso")),
            PathBuf::from("a/file.iso.torrent")
        );
        assert_eq!(
            default_manifest_path(Path::new("dir/")),
            PathBuf::from("dir.torrent")
        );
    }
}
