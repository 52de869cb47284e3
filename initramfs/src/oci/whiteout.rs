//! Whiteouts and opaque folders, applied the way containerd's applier
//! does.
//!
//! A whiteout hides what *lower* layers put at a path; entries of the same
//! layer are never hidden by it (image-spec `layer.md`). Since the marker
//! may come before or after its siblings in the tar, the layer's own
//! entries are tracked in [`Written`]: pruning removes every path that
//! the current layer did not write and that holds nothing it wrote, and
//! descends into folders that do. `.wh.NAME` prunes NAME; `.wh..wh..opq`
//! prunes each child of its folder. Symlinks are removed, never followed
//! (`remove_dir_all` does not follow them either).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::nofollow;

/// The paths the current layer has written, and their ancestors.
#[derive(Debug, Default)]
pub(crate) struct Written {
    paths: HashSet<PathBuf>,
    ancestors: HashSet<PathBuf>,
}

impl Written {
    pub(crate) fn insert(&mut self, path: &Path) {
        for a in path.ancestors().skip(1) {
            if !self.ancestors.insert(a.to_owned()) {
                break;
            }
        }
        self.paths.insert(path.to_owned());
    }

    /// Whether `path` is, or holds, something the current layer wrote.
    pub(crate) fn keeps(&self, path: &Path) -> bool {
        self.paths.contains(path) || self.ancestors.contains(path)
    }
}

/// Removes `root/rel` as lower layers left it, keeping what `written`
/// keeps; returns the paths removed.
pub(crate) fn prune(root: &Path, rel: &Path, written: &Written) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    prune_into(root, rel, written, &mut removed)?;
    Ok(removed)
}

/// Prunes every child of the folder `root/rel` (an opaque marker).
pub(crate) fn prune_children(
    root: &Path,
    rel: &Path,
    written: &Written,
) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for child in std::fs::read_dir(root.join(rel))? {
        prune_into(root, &rel.join(child?.file_name()), written, &mut removed)?;
    }
    Ok(removed)
}

fn prune_into(
    root: &Path,
    rel: &Path,
    written: &Written,
    removed: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let host = root.join(rel);
    let Some(meta) = nofollow::lstat(&host)? else {
        return Ok(());
    };
    if !written.keeps(rel) {
        nofollow::remove(&host)?;
        removed.push(rel.to_owned());
        return Ok(());
    }
    if meta.is_dir() {
        for child in std::fs::read_dir(&host)? {
            prune_into(root, &rel.join(child?.file_name()), written, removed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keeps_paths_and_ancestors() {
        let mut w = Written::default();
        w.insert(Path::new("a/b/c"));
        w.insert(Path::new("a/d"));
        let rows = [
            ("a/b/c", true),
            ("a/b", true),
            ("a", true),
            ("", true),
            ("a/d", true),
            ("a/b/c/e", false),
            ("a/x", false),
            ("b", false),
        ];
        for (path, want) in rows {
            assert_eq!(w.keeps(Path::new(path)), want, "{path}");
        }
    }
}
