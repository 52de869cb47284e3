//! Where the files of an image store live: in a folder (an OCI layout) or
//! as members of a tar archive (`docker save`, an OCI layout tarred up).
//!
//! A tar archive is indexed once, with seeks over member data: each
//! regular member's name maps to its data's offset and size, so a blob is
//! later read with a seek and a bounded read, never extracted. Member
//! symlinks and hard links (legacy `docker save` points duplicate
//! `layer.tar` files at the first copy) are followed inside the archive's
//! own namespace, lexically; nothing here touches the host filesystem
//! beyond the archive file itself.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::compression::{detect, Compression};
use super::OciError;

/// How many links [`TarIndex::lookup`] follows before giving up.
const MAX_LINKS: usize = 16;

/// One file of an image store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A file of a layout folder.
    File(PathBuf),
    /// A member of a tar archive: its data is `size` bytes at `offset`.
    Member {
        archive: PathBuf,
        name: String,
        offset: u64,
        size: u64,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Member { archive, name, .. } => write!(f, "{}:{name}", archive.display()),
        }
    }
}

impl Location {
    /// Opens the file for reading from its start.
    pub(crate) fn open(&self) -> Result<Box<dyn Read>, OciError> {
        let io = |source| OciError::Io {
            step: "open",
            what: self.to_string(),
            source,
        };
        match self {
            Location::File(path) => Ok(Box::new(File::open(path).map_err(io)?)),
            Location::Member {
                archive,
                offset,
                size,
                ..
            } => {
                let mut f = File::open(archive).map_err(io)?;
                f.seek(SeekFrom::Start(*offset)).map_err(io)?;
                Ok(Box::new(f.take(*size)))
            }
        }
    }

    /// The size when it is known without asking the filesystem.
    pub(crate) fn known_size(&self) -> Option<u64> {
        match self {
            Location::File(_) => None,
            Location::Member { size, .. } => Some(*size),
        }
    }
}

/// An image store's files.
#[derive(Debug)]
pub(crate) enum Source {
    Dir(PathBuf),
    Tar(TarIndex),
}

impl Source {
    /// The file named `name` (a relative, `/`-separated path), if present.
    pub(crate) fn locate(&self, name: &str) -> Option<Location> {
        match self {
            Source::Dir(dir) => {
                let path = dir.join(name);
                path.exists().then_some(Location::File(path))
            }
            Source::Tar(index) => index.lookup(name),
        }
    }
}

/// The members of a tar archive, by normalised name.
#[derive(Debug)]
pub(crate) struct TarIndex {
    archive: PathBuf,
    /// Regular members: data offset and size.
    files: HashMap<String, (u64, u64)>,
    /// Symlink and hard link members: the normalised name they point to.
    links: HashMap<String, String>,
}

impl TarIndex {
    /// Reads the member headers of an uncompressed tar archive.
    pub(crate) fn read(archive: &Path) -> Result<TarIndex, OciError> {
        let io = |step| {
            move |source| OciError::Io {
                step,
                what: archive.display().to_string(),
                source,
            }
        };
        let mut file = File::open(archive).map_err(io("open"))?;
        let mut magic = Vec::new();
        (&mut file)
            .take(4)
            .read_to_end(&mut magic)
            .map_err(io("read"))?;
        if detect(&magic) != Compression::None {
            return Err(OciError::Format {
                image: archive.display().to_string(),
                why: "the archive is compressed; decompress it first (gunzip, zstd -d)".into(),
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(io("read"))?;
        let mut tar = tar::Archive::new(file);
        let mut index = TarIndex {
            archive: archive.to_owned(),
            files: HashMap::new(),
            links: HashMap::new(),
        };
        for entry in tar.entries_with_seek().map_err(io("read"))? {
            let entry = entry.map_err(io("read"))?;
            let Some(name) = normalise(&String::from_utf8_lossy(&entry.path_bytes()), "") else {
                continue;
            };
            let kind = entry.header().entry_type();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            match (kind, link) {
                (tar::EntryType::Regular | tar::EntryType::Continuous, _) => {
                    index.links.remove(&name);
                    index
                        .files
                        .insert(name, (entry.raw_file_position(), entry.size()));
                }
                (tar::EntryType::Symlink, Some(target)) => {
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    if let Some(to) = normalise(&target, dir) {
                        index.files.remove(&name);
                        index.links.insert(name, to);
                    }
                }
                (tar::EntryType::Link, Some(target)) => {
                    if let Some(to) = normalise(&target, "") {
                        index.files.remove(&name);
                        index.links.insert(name, to);
                    }
                }
                _ => {}
            }
        }
        Ok(index)
    }

    /// The regular member `name` resolves to, following member links.
    pub(crate) fn lookup(&self, name: &str) -> Option<Location> {
        let mut name = normalise(name, "")?;
        for _ in 0..MAX_LINKS {
            if let Some(&(offset, size)) = self.files.get(&name) {
                return Some(Location::Member {
                    archive: self.archive.clone(),
                    name,
                    offset,
                    size,
                });
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }
}

/// `name` resolved against the folder `base` inside an archive: `.` and
/// empty components dropped, `..` applied, a leading `/` meaning the
/// archive's top. `None` when it climbs above the top or names the top.
pub(crate) fn normalise(name: &str, base: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let start = if name.starts_with('/') { "" } else { base };
    for part in start.split('/').chain(name.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        let rows: &[(&str, &str, Option<&str>)] = &[
            ("manifest.json", "", Some("manifest.json")),
            ("./manifest.json", "", Some("manifest.json")),
            ("a//b/./c", "", Some("a/b/c")),
            ("../abc/layer.tar", "def", Some("abc/layer.tar")),
            ("/abc/layer.tar", "def", Some("abc/layer.tar")),
            ("../../x", "def", None),
            ("..", "", None),
            ("./", "", None),
        ];
        for (name, base, want) in rows {
            assert_eq!(normalise(name, base).as_deref(), *want, "{name} in {base}");
        }
    }
}
