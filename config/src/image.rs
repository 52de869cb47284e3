//! A container's `image`: where its filesystem and defaults come from when
//! it is not a plain folder (`rootfs`). Two forms, as skopeo names them:
//!
//! - `oci:PATH[:TAG]`: an OCI image layout (`skopeo copy … oci:DIR:TAG`,
//!   `umoci`); without a tag the layout must hold exactly one image;
//! - `docker-archive:PATH[:TAG]`: a `docker save` tarball; without a tag
//!   it must hold exactly one image.
//!
//! A relative PATH is relative to the manifest's folder.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::toml_walk::quote;

/// Which kind of image store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Oci,
    DockerArchive,
}

impl ImageFormat {
    pub fn prefix(self) -> &'static str {
        match self {
            ImageFormat::Oci => "oci",
            ImageFormat::DockerArchive => "docker-archive",
        }
    }
}

/// A parsed `image` value; serialised as written (`oci:PATH:TAG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub format: ImageFormat,
    pub path: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name` in a layout, the
    /// repository tag's part after `:` in a docker archive, or the whole
    /// `repo:tag`).
    pub tag: Option<String>,
}

crate::serde_text::as_text!(ImageRef);

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.format.prefix(), self.path.display())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}

/// A tag as OCI and Docker allow it: 1-128 of `[A-Za-z0-9_.-]`, not
/// starting with `.` or `-`.
fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl FromStr for ImageRef {
    type Err = String;
    fn from_str(s: &str) -> Result<ImageRef, String> {
        let expected = "expected \"oci:PATH[:TAG]\" or \"docker-archive:PATH[:TAG]\"";
        let (format, rest) = if let Some(rest) = s.strip_prefix("oci:") {
            (ImageFormat::Oci, rest)
        } else if let Some(rest) = s.strip_prefix("docker-archive:") {
            (ImageFormat::DockerArchive, rest)
        } else {
            return Err(format!("unknown image reference {} ({expected})", quote(s)));
        };
        // The tag is what follows the last ':' when it has no '/' (a path
        // component may contain ':' too; a tag never contains '/').
        let (path, tag) = match rest.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => {
                if !valid_tag(tag) {
                    return Err(format!(
                        "bad tag {} in {} (1-128 characters of A-Z, a-z, 0-9, '_', '.', '-', not starting with '.' or '-')",
                        quote(tag),
                        quote(s)
                    ));
                }
                (path, Some(tag.to_owned()))
            }
            _ => (rest, None),
        };
        if path.is_empty() || path.contains('\0') {
            return Err(format!("no path in {} ({expected})", quote(s)));
        }
        Ok(ImageRef {
            format,
            path: PathBuf::from(path),
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let ok = |format, path: &str, tag: Option<&str>| {
            Ok(ImageRef {
                format,
                path: path.into(),
                tag: tag.map(str::to_owned),
            })
        };
        let rows: &[(&str, Result<ImageRef, &str>)] = &[
            ("oci:images/web", ok(ImageFormat::Oci, "images/web", None)),
            (
                "oci:images/web:1.0",
                ok(ImageFormat::Oci, "images/web", Some("1.0")),
            ),
            (
                "oci:/abs/dir:latest",
                ok(ImageFormat::Oci, "/abs/dir", Some("latest")),
            ),
            ("oci:a:b/c", ok(ImageFormat::Oci, "a:b/c", None)),
            (
                "docker-archive:web.tar",
                ok(ImageFormat::DockerArchive, "web.tar", None),
            ),
            (
                "docker-archive:web.tar:v2",
                ok(ImageFormat::DockerArchive, "web.tar", Some("v2")),
            ),
            ("docker://nginx", Err("unknown image reference")),
            ("web", Err("unknown image reference")),
            ("oci:", Err("no path")),
            ("oci::tag", Err("no path")),
            ("oci:dir:", Err("bad tag \"\"")),
            ("oci:dir:-x", Err("bad tag \"-x\"")),
            ("oci:dir:a b", Err("bad tag \"a b\"")),
        ];
        for (text, want) in rows {
            let got = text.parse::<ImageRef>();
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{text}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{text}: {g}"),
                _ => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        let r: ImageRef = "oci:images/web:1.0".parse().expect("valid");
        assert_eq!(r.to_string(), "oci:images/web:1.0");
    }
}
