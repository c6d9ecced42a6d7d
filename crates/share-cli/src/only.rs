//! `share fetch --only GLOB`: which files of a torrent the globs select.
//!
//! A glob matches a file's path inside the torrent (`docs/a.pdf`), or that path as
//! `share info` lists it, under the torrent's name (`album/docs/a.pdf`). `*` and `?` stay
//! within one path component, `**` spans any number of them (zero included: `**/*.txt`
//! matches `a.txt`), `[...]` is a class. A glob that names a file exactly matches it even
//! when it holds `[` or `*`. Several globs select every file any of them matches; a glob
//! that matches no file is an error, so a typo never fetches less than was asked.

use anyhow::anyhow;
use glob::{MatchOptions, Pattern};
use share_proto::metainfo::Metainfo;

use crate::exit::Failure;

/// The files a fetch selected.
#[derive(Debug, PartialEq, Eq)]
pub struct Selection {
    /// One flag per file of the manifest's layout (pad files false).
    pub mask: Vec<bool>,
    /// The selected files' paths inside the torrent, in layout order, with their lengths.
    pub files: Vec<(String, u64)>,
}

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// The files of `meta` that `globs` match. `manifest` names the manifest in the error that
/// says how to list its files.
pub fn select(meta: &Metainfo, globs: &[String], manifest: &std::path::Path) -> Result<Selection, Failure> {
    let files = meta.layout().files();
    let paths: Vec<Option<String>> = files
        .iter()
        .map(|f| (!f.pad).then(|| f.path.to_string_lossy().into_owned()))
        .collect();
    let mut mask = vec![false; files.len()];
    for glob in globs {
        let pattern = Pattern::new(glob);
        let mut any = false;
        for (i, path) in paths.iter().enumerate() {
            let Some(path) = path else { continue };
            if matches(
                glob,
                pattern.as_ref().ok(),
                path,
                &meta.info.name,
                meta.info.multi_file,
            ) {
                mask[i] = true;
                any = true;
            }
        }
        if !any {
            let why = match &pattern {
                Err(e) => format!("is not a glob ({}) and names no file", e.msg),
                Ok(_) => "matches no file".to_string(),
            };
            return Err(Failure::input(anyhow!(
                "--only {glob:?} {why} of {}; `share info {}` lists its files",
                meta.info.name,
                manifest.display()
            )));
        }
    }
    let files = files
        .iter()
        .zip(&mask)
        .zip(paths)
        .filter(|((_, &m), _)| m)
        .filter_map(|((f, _), p)| Some((p?, f.len)))
        .collect();
    Ok(Selection { mask, files })
}

fn matches(glob: &str, pattern: Option<&Pattern>, path: &str, name: &str, multi_file: bool) -> bool {
    let listed = multi_file.then(|| format!("{name}/{path}"));
    let candidates = std::iter::once(path).chain(listed.as_deref());
    candidates
        .into_iter()
        .any(|p| p == glob || pattern.is_some_and(|pat| pat.matches_with(p, OPTIONS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(glob: &str, path: &str) -> bool {
        matches(glob, Pattern::new(glob).ok().as_ref(), path, "album", true)
    }

    #[test]
    fn globs_match_paths_inside_the_torrent() {
        assert!(m("docs/*.pdf", "docs/a.pdf"));
        assert!(!m("docs/*.pdf", "docs/sub/a.pdf"), "* does not cross /");
        assert!(!m("*.pdf", "docs/a.pdf"));
        assert!(m("**/*.txt", "a.txt"), "** spans zero components");
        assert!(m("**/*.txt", "x/y/z.txt"));
        assert!(m("docs/**", "docs/sub/a.pdf"));
        assert!(m("README*", "README.md"));
        assert!(!m("README*", "docs/README.md"));
        assert!(m("b.bin", "b.bin"), "a plain name is that file");
        assert!(!m("b.bin", "sub/b.bin"));
        assert!(
            m("Track [1].mp3", "Track [1].mp3"),
            "an exact name matches literally"
        );
        assert!(m("album/docs/*.pdf", "docs/a.pdf"), "as share info lists it");
        assert!(m("?.bin", "a.bin") && !m("?.bin", "ab.bin"));
    }
}
