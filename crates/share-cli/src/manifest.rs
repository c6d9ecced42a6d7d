//! Reading a manifest named on the command line, with errors that name the file.

use std::path::Path;

use anyhow::anyhow;
use share_proto::metainfo::{Metainfo, MAX_MANIFEST_LEN};

use crate::exit::Failure;

/// Reads and checks the manifest at `path`. Every failure is bad input (exit code 2).
pub fn load(path: &Path) -> Result<Metainfo, Failure> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| Failure::input(anyhow!("cannot read manifest {shown}: {e}")))?;
    if meta.is_dir() {
        return Err(Failure::input(anyhow!(
            "cannot read manifest {shown}: it is a directory"
        )));
    }
    if meta.len() > MAX_MANIFEST_LEN {
        return Err(Failure::input(anyhow!(
            "{shown} is not a manifest: it is {} bytes, more than the {MAX_MANIFEST_LEN} a manifest may have",
            meta.len()
        )));
    }
    let data =
        std::fs::read(path).map_err(|e| Failure::input(anyhow!("cannot read manifest {shown}: {e}")))?;
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
