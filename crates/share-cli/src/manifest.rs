//! Reading a manifest named on the command line (with a hard cap on what is read, and errors
//! that name the file), and writing one without ever leaving half of it behind.

use std::io::Read;
use std::path::Path;

use anyhow::anyhow;
use share_proto::metainfo::{Metainfo, MAX_MANIFEST_LEN};

use crate::exit::Failure;

/// Reads and checks the manifest at `path`. Every failure is bad input (exit code 2).
///
/// At most [`MAX_MANIFEST_LEN`] + 1 bytes are ever read, whatever the path is (a regular
/// file, `/dev/zero`, a FIFO, `/dev/stdin`): the length a file claims is not trusted, since
/// devices and pipes claim none.
pub fn load(path: &Path) -> Result<Metainfo, Failure> {
    let shown = path.display();
    let cannot = |e: std::io::Error| Failure::input(anyhow!("cannot read manifest {shown}: {e}"));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.is_dir() {
        return Err(Failure::input(anyhow!(
            "cannot read manifest {shown}: it is a directory"
        )));
    }
    let too_big = || {
        Failure::input(anyhow!(
            "{shown} is not a manifest: it holds more than the {MAX_MANIFEST_LEN} bytes (64 MiB) a manifest may have"
        ))
    };
    if meta.is_file() && meta.len() > MAX_MANIFEST_LEN {
        return Err(too_big());
    }
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MANIFEST_LEN + 1).read_to_end(&mut data))
        .map_err(cannot)?;
    if data.len() as u64 > MAX_MANIFEST_LEN {
        return Err(too_big());
    }
    Metainfo::from_bytes(&data).map_err(|e| Failure::input(anyhow!("{shown} is not a valid manifest: {e}")))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written manifest behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
