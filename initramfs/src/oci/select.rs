//! Choosing one image among those a store holds: by tag, then by
//! platform. Pure functions over parsed indexes and `manifest.json`
//! entries; the callers turn a [`Refusal`] into an [`OciError`] naming the
//! store.
//!
//! Rules (those of skopeo and containerd):
//! - With a tag, the candidates are the images carrying it (an OCI
//!   layout's `org.opencontainers.image.ref.name`; a docker archive's
//!   `RepoTags` entry, whole or after its last `:`).
//! - Without a tag, the store must hold one image; several descriptors
//!   that share one name (or none) are the platforms of one image.
//! - Several candidates left: the one for [`OS`]/[`ARCH`].

use oci_spec::image::Descriptor;

/// The platform berth runs: the QEMU guest is x86-64 Linux.
pub const OS: &str = "linux";
/// See [`OS`].
pub const ARCH: &str = "amd64";

/// The annotation that tags a manifest in an OCI layout's index.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Why no single image could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Empty,
    NoSuchTag { available: String },
    Ambiguous { count: usize, available: String },
    Platform { found: String },
}

impl Refusal {
    pub(crate) fn into_error(self, image: &str, tag: Option<&str>) -> super::OciError {
        use super::OciError;
        let image = image.to_owned();
        match self {
            Refusal::Empty => OciError::Format {
                image,
                why: "the store lists no image".into(),
            },
            Refusal::NoSuchTag { available } => OciError::NoSuchTag {
                image,
                tag: tag.unwrap_or_default().to_owned(),
                available,
            },
            Refusal::Ambiguous { count, available } => OciError::Ambiguous {
                image,
                count,
                available,
            },
            Refusal::Platform { found } => OciError::Platform {
                image,
                want: format!("{OS}/{ARCH}"),
                found,
            },
        }
    }
}

/// Sorted, deduplicated, comma-separated; `none` when empty.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

fn untagged_or(name: Option<&str>) -> &str {
    name.unwrap_or("(untagged)")
}

/// The descriptor of an OCI layout's `index.json` to follow.
pub(crate) fn choose_descriptor<'a>(
    manifests: &'a [Descriptor],
    tag: Option<&str>,
) -> Result<&'a Descriptor, Refusal> {
    let available = || list(manifests.iter().map(|d| untagged_or(ref_name(d))));
    let candidates: Vec<&Descriptor> = match tag {
        Some(t) => manifests
            .iter()
            .filter(|d| ref_name(d) == Some(t))
            .collect(),
        None => manifests.iter().collect(),
    };
    if manifests.is_empty() {
        return Err(Refusal::Empty);
    }
    if candidates.is_empty() {
        return Err(Refusal::NoSuchTag {
            available: available(),
        });
    }
    if tag.is_none() {
        let mut names: Vec<Option<&str>> = candidates.iter().map(|d| ref_name(d)).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() > 1 {
            return Err(Refusal::Ambiguous {
                count: names.len(),
                available: available(),
            });
        }
    }
    match candidates.as_slice() {
        [only] => Ok(only),
        many => pick_platform(many),
    }
}

/// The descriptor for [`OS`]/[`ARCH`] (the first one when several match,
/// as variants of amd64 are rare); a lone descriptor without a platform
/// is taken as is.
pub(crate) fn pick_platform<'a>(descriptors: &[&'a Descriptor]) -> Result<&'a Descriptor, Refusal> {
    let matching = descriptors.iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == OS && p.architecture().to_string() == ARCH)
    });
    if let Some(d) = matching {
        return Ok(d);
    }
    if let [only] = descriptors {
        if only.platform().is_none() {
            return Ok(only);
        }
    }
    let found: Vec<String> = descriptors
        .iter()
        .map(|d| match d.platform() {
            Some(p) => format!("{}/{}", p.os(), p.architecture()),
            None => "unknown".into(),
        })
        .collect();
    Err(Refusal::Platform {
        found: list(found.iter().map(String::as_str)),
    })
}

/// Whether a docker `RepoTags` entry carries `tag` (`repo:tag` whole, or
/// the part after the last `:` when that part has no `/`).
pub(crate) fn repo_tag_matches(repo_tag: &str, tag: &str) -> bool {
    repo_tag == tag
        || repo_tag
            .rsplit_once(':')
            .is_some_and(|(_, t)| t == tag && !t.contains('/'))
}

/// The index of the `manifest.json` entry to use, given each entry's
/// `RepoTags`.
pub(crate) fn choose_entry(repo_tags: &[Vec<String>], tag: Option<&str>) -> Result<usize, Refusal> {
    let available = || {
        list(repo_tags.iter().flat_map(|tags| {
            let untagged = tags.is_empty().then_some("(untagged)");
            tags.iter().map(String::as_str).chain(untagged)
        }))
    };
    let candidates: Vec<usize> = match tag {
        Some(t) => (0..repo_tags.len())
            .filter(|&i| repo_tags[i].iter().any(|rt| repo_tag_matches(rt, t)))
            .collect(),
        None => (0..repo_tags.len()).collect(),
    };
    match candidates.as_slice() {
        _ if repo_tags.is_empty() => Err(Refusal::Empty),
        [only] => Ok(*only),
        [] => Err(Refusal::NoSuchTag {
            available: available(),
        }),
        many => Err(Refusal::Ambiguous {
            count: many.len(),
            available: available(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor with an optional tag and `os/arch` platform.
    fn desc(n: u8, tag: Option<&str>, platform: Option<&str>) -> Descriptor {
        let mut json = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", format!("{n:02x}").repeat(32)),
            "size": 1,
        });
        if let Some(t) = tag {
            json["annotations"] = serde_json::json!({ REF_NAME: t });
        }
        if let Some((os, arch)) = platform.and_then(|p| p.split_once('/')) {
            json["platform"] = serde_json::json!({ "os": os, "architecture": arch });
        }
        serde_json::from_value(json).expect("descriptor")
    }

    fn index_of(manifests: &[Descriptor], chosen: &Descriptor) -> usize {
        manifests
            .iter()
            .position(|d| std::ptr::eq(d, chosen))
            .expect("chosen from the list")
    }

    #[test]
    fn descriptors_by_tag_and_platform() {
        let two_tags = [desc(1, Some("1.0"), None), desc(2, Some("latest"), None)];
        let platforms = [
            desc(1, Some("latest"), Some("linux/arm64")),
            desc(2, Some("latest"), Some("linux/amd64")),
        ];
        let untagged_platforms = [
            desc(1, None, Some("linux/amd64")),
            desc(2, None, Some("linux/s390x")),
        ];
        let arm_only = [
            desc(1, None, Some("linux/arm64")),
            desc(2, None, Some("linux/arm")),
        ];
        let ambiguous = |available: &str| Refusal::Ambiguous {
            count: 2,
            available: available.into(),
        };
        type Row<'a> = (&'a [Descriptor], Option<&'a str>, Result<usize, Refusal>);
        let rows: &[Row] = &[
            (&two_tags, Some("latest"), Ok(1)),
            (&two_tags, Some("1.0"), Ok(0)),
            (
                &two_tags,
                Some("2.0"),
                Err(Refusal::NoSuchTag {
                    available: "1.0, latest".into(),
                }),
            ),
            (&two_tags, None, Err(ambiguous("1.0, latest"))),
            (&two_tags[..1], None, Ok(0)),
            (&platforms, Some("latest"), Ok(1)),
            (&platforms, None, Ok(1)),
            (&untagged_platforms, None, Ok(0)),
            (
                &arm_only,
                None,
                Err(Refusal::Platform {
                    found: "linux/arm, linux/arm64".into(),
                }),
            ),
            (&[], None, Err(Refusal::Empty)),
        ];
        for (i, (manifests, tag, want)) in rows.iter().enumerate() {
            let got = choose_descriptor(manifests, *tag).map(|d| index_of(manifests, d));
            assert_eq!(&got, want, "row {i}");
        }
    }

    #[test]
    fn lone_descriptor_without_platform_is_taken() {
        let lone = desc(1, None, None);
        assert!(pick_platform(&[&lone]).is_ok());
        let other = desc(2, None, None);
        assert_eq!(
            pick_platform(&[&lone, &other]),
            Err(Refusal::Platform {
                found: "unknown".into()
            })
        );
    }

    #[test]
    fn docker_entries_by_tag() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let web = [
            tags(&["web:1.0", "registry:5000/web:latest"]),
            tags(&["db:latest"]),
        ];
        let one = [tags(&[])];
        type Row<'a> = (&'a [Vec<String>], Option<&'a str>, Result<usize, Refusal>);
        let rows: &[Row] = &[
            (&web, Some("1.0"), Ok(0)),
            (&web, Some("web:1.0"), Ok(0)),
            (&web, Some("registry:5000/web:latest"), Ok(0)),
            (
                &web,
                Some("latest"),
                Err(Refusal::Ambiguous {
                    count: 2,
                    available: "db:latest, registry:5000/web:latest, web:1.0".into(),
                }),
            ),
            (
                &web,
                Some("2.0"),
                Err(Refusal::NoSuchTag {
                    available: "db:latest, registry:5000/web:latest, web:1.0".into(),
                }),
            ),
            (
                &web,
                None,
                Err(Refusal::Ambiguous {
                    count: 2,
                    available: "db:latest, registry:5000/web:latest, web:1.0".into(),
                }),
            ),
            (&one, None, Ok(0)),
            (
                &one,
                Some("x"),
                Err(Refusal::NoSuchTag {
                    available: "(untagged)".into(),
                }),
            ),
            (&[], None, Err(Refusal::Empty)),
        ];
        for (i, (entries, tag, want)) in rows.iter().enumerate() {
            assert_eq!(&choose_entry(entries, *tag), want, "row {i}");
        }
        assert!(!repo_tag_matches("web:1.0", "web"));
        assert!(!repo_tag_matches("localhost:5000/web", "5000/web"));
    }
}
