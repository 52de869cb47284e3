//! Debian's kernel, fetched into a cache folder without installing it.
//!
//! `linux-image-amd64` is a meta package; `apt-cache depends` names the
//! versioned package it pulls in (`linux-image-6.1.0-56-amd64`), whose name
//! carries the kernel release (`6.1.0-56-amd64`). The package is fetched
//! with `apt-get download`, unpacked with `dpkg-deb -x` (never installed
//! into the host's `/boot`), and indexed with `depmod -b`, because the .deb
//! ships no `modules.dep` (Debian's postinst runs depmod).
//!
//! Cache layout, under `$BERTH_CACHE` (default `$XDG_CACHE_HOME/berth`,
//! then `$HOME/.cache/berth`):
//!
//! ```text
//! debs/PACKAGE_VERSION_amd64.deb
//! kernel/PACKAGE_VERSION/{boot,lib,usr}   the unpacked tree
//! kernel/PACKAGE_VERSION/.berth-kernel    written last: the tree is complete
//! ```
//!
//! Every step works in a folder private to this process and renames its
//! result into place, so a crash leaves no half-made result behind and two
//! builds running at once (parallel VM tests) cannot see each other's
//! partial work.
//!
//! `BERTH_KERNEL_DIR=DIR` uses an already-unpacked tree instead (offline).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::tool::{ToolError, APT_CACHE, APT_GET, DEPMOD, DPKG_DEB};

const META_PACKAGE: &str = "linux-image-amd64";
const PACKAGE_PREFIX: &str = "linux-image-";
const MARKER: &str = ".berth-kernel";
/// Stands in for the package version of a `BERTH_KERNEL_DIR` tree that
/// this module did not unpack.
pub const UNKNOWN: &str = "unknown";

/// An unpacked kernel package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The kernel release, `uname -r` in the guest (`6.1.0-56-amd64`).
    pub version: String,
    /// The Debian package (`linux-image-6.1.0-56-amd64`).
    pub package: String,
    /// The Debian package version (`6.1.192-2`), or [`UNKNOWN`].
    pub package_version: String,
    /// The unpacked tree.
    pub root: PathBuf,
    pub vmlinuz: PathBuf,
    /// `lib/modules/VERSION` inside the tree, with depmod's index files.
    pub modules_dir: PathBuf,
}

impl Kernel {
    /// The kernel's build configuration (`boot/config-VERSION`).
    pub fn config_path(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("config-{}", self.version))
    }
}

/// Getting the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("find a cache folder: set BERTH_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("resolve the package behind {META_PACKAGE} (run `apt-get update` first)")]
    Resolve(#[source] ToolError),
    #[error("apt-cache knows no package behind {META_PACKAGE}: run `apt-get update`")]
    NotFound,
    #[error("apt-cache shows no version of {package}: run `apt-get update`")]
    NoVersion { package: String },
    #[error("download {package} {version}")]
    Download {
        package: String,
        version: String,
        #[source]
        source: ToolError,
    },
    #[error("apt-get download of {package} left no .deb in {dir}")]
    NoDeb { package: String, dir: PathBuf },
    #[error("unpack {deb}")]
    Unpack {
        deb: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("index the modules of {dir} with depmod")]
    Depmod {
        dir: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("{dir} holds no kernel: expected boot/vmlinuz-VERSION and lib/modules/VERSION")]
    NotAKernelTree { dir: PathBuf },
    #[error("{dir} holds several kernels ({versions}); keep one")]
    SeveralKernels { dir: PathBuf, versions: String },
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KernelError {
    let path = path.to_owned();
    move |source| KernelError::Io { step, path, source }
}

/// The kernel to build with: `BERTH_KERNEL_DIR` if set, else the current
/// `linux-image-amd64` from the cache, fetching it first if needed.
pub fn kernel() -> Result<Kernel, KernelError> {
    if let Some(dir) = std::env::var_os("BERTH_KERNEL_DIR") {
        return from_tree(Path::new(&dir));
    }
    let cache = cache_dir(
        std::env::var_os("BERTH_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
    .ok_or(KernelError::NoCacheDir)?;
    fetch(&cache)
}

/// `$BERTH_CACHE`, else `$XDG_CACHE_HOME/berth`, else `$HOME/.cache/berth`.
/// Empty and relative values are ignored, as the XDG spec asks.
pub fn cache_dir(
    berth_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let usable = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    usable(berth_cache)
        .or_else(|| usable(xdg_cache_home).map(|p| p.join("berth")))
        .or_else(|| usable(home).map(|p| p.join(".cache").join("berth")))
}

/// The current kernel package in `cache`, downloaded and unpacked unless
/// an earlier run already did.
pub fn fetch(cache: &Path) -> Result<Kernel, KernelError> {
    let package = resolve_package()?;
    let version = package_version(&package)?;
    let tree = cache
        .join("kernel")
        .join(format!("{package}_{}", file_safe(&version)));
    if tree.join(MARKER).is_file() {
        eprintln!(
            "berth-image: kernel {package} {version} (cached in {})",
            tree.display()
        );
        return from_tree(&tree);
    }
    let deb = download(cache, &package, &version)?;
    unpack(&deb, &tree, &package, &version)?;
    from_tree(&tree)
}

fn resolve_package() -> Result<String, KernelError> {
    let out = APT_CACHE
        .output(APT_CACHE.command().args(["depends", META_PACKAGE]))
        .map_err(|e| match e {
            // apt-cache exits 100 when it knows no such package.
            ToolError::Failed { .. } => KernelError::NotFound,
            other => KernelError::Resolve(other),
        })?;
    parse_depends(&out).ok_or(KernelError::NotFound)
}

/// The versioned kernel package in `apt-cache depends linux-image-amd64`
/// output (`  Depends: linux-image-6.1.0-56-amd64`).
pub fn parse_depends(out: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|p| p.trim().trim_start_matches('<').trim_end_matches('>'))
        .find(|p| p.starts_with(PACKAGE_PREFIX) && release_of(p).is_some())
        .map(str::to_owned)
}

/// The kernel release a versioned package name carries.
pub fn release_of(package: &str) -> Option<&str> {
    package
        .strip_prefix(PACKAGE_PREFIX)
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

fn package_version(package: &str) -> Result<String, KernelError> {
    let out = APT_CACHE
        .output(
            APT_CACHE
                .command()
                .args(["show", "--no-all-versions", package]),
        )
        .map_err(|_| KernelError::NoVersion {
            package: package.to_owned(),
        })?;
    parse_version(&out).ok_or_else(|| KernelError::NoVersion {
        package: package.to_owned(),
    })
}

/// The `Version:` field of `apt-cache show` output.
pub fn parse_version(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A Debian version as apt writes it in file names (the epoch colon
/// becomes `%3a`).
fn file_safe(version: &str) -> String {
    version.replace(':', "%3a")
}

fn download(cache: &Path, package: &str, version: &str) -> Result<PathBuf, KernelError> {
    let debs = cache.join("debs");
    let prefix = format!("{package}_{}_", file_safe(version));
    if let Some(deb) = find_deb(&debs, &prefix)? {
        return Ok(deb);
    }
    let work = debs.join(private_name("download"));
    std::fs::create_dir_all(&work).map_err(io_err("create", &work))?;
    eprintln!(
        "berth-image: downloading {package} {version} into {}",
        debs.display()
    );
    // As root, apt warns that the download runs unsandboxed because the
    // `_apt` user cannot write here; that is harmless.
    APT_GET
        .status(
            APT_GET
                .command()
                .arg("download")
                .arg(format!("{package}={version}"))
                .current_dir(&work),
        )
        .map_err(|source| KernelError::Download {
            package: package.to_owned(),
            version: version.to_owned(),
            source,
        })?;
    let fetched = find_deb(&work, &prefix)?.ok_or_else(|| KernelError::NoDeb {
        package: package.to_owned(),
        dir: work.clone(),
    })?;
    let name = fetched.file_name().map(PathBuf::from).unwrap_or_default();
    let deb = debs.join(name);
    std::fs::rename(&fetched, &deb).map_err(io_err("move the downloaded package to", &deb))?;
    remove_if_exists(&work)?;
    Ok(deb)
}

/// A work folder name no other build uses at the same time: other
/// processes differ in pid, threads of this one in the counter.
fn private_name(step: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        ".{step}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn find_deb(dir: &Path, prefix: &str) -> Result<Option<PathBuf>, KernelError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".deb") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

fn unpack(deb: &Path, tree: &Path, package: &str, version: &str) -> Result<(), KernelError> {
    let parent = tree.parent().unwrap_or(Path::new("."));
    let work = parent.join(private_name("unpack"));
    std::fs::create_dir_all(&work).map_err(io_err("create", &work))?;
    eprintln!("berth-image: unpacking {}", deb.display());
    DPKG_DEB
        .output(DPKG_DEB.command().arg("-x").arg(deb).arg(&work))
        .map_err(|source| KernelError::Unpack {
            deb: deb.to_owned(),
            source,
        })?;
    let release = match release_of(package) {
        Some(r) => r.to_owned(),
        None => single_release(&work)?,
    };
    depmod(&work, &release)?;
    let marker = format!("package={package}\npackage-version={version}\nversion={release}\n");
    std::fs::write(work.join(MARKER), marker).map_err(io_err("write", &work.join(MARKER)))?;
    // Only complete trees are renamed into place, so one without a marker
    // was not made by this code and is replaced; one with a marker was
    // finished by a concurrent build meanwhile, and is used.
    if tree.exists() && !tree.join(MARKER).is_file() {
        remove_if_exists(tree)?;
    }
    if let Err(e) = std::fs::rename(&work, tree) {
        if tree.join(MARKER).is_file() {
            return remove_if_exists(&work);
        }
        return Err(io_err("move the unpacked kernel to", tree)(e));
    }
    Ok(())
}

fn depmod(root: &Path, release: &str) -> Result<(), KernelError> {
    DEPMOD
        .output(DEPMOD.command().arg("-b").arg(root).arg(release))
        .map(|_| ())
        .map_err(|source| KernelError::Depmod {
            dir: root.to_owned(),
            source,
        })
}

/// A kernel from an unpacked tree: this cache's or `BERTH_KERNEL_DIR`'s.
/// A tree without `modules.dep` gets one from depmod.
pub fn from_tree(dir: &Path) -> Result<Kernel, KernelError> {
    let marker = std::fs::read_to_string(dir.join(MARKER)).unwrap_or_default();
    let field = |key: &str| {
        marker
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let version = match field("version") {
        Some(v) => v,
        None => single_release(dir)?,
    };
    let modules_dir = dir.join("lib/modules").join(&version);
    let vmlinuz = dir.join("boot").join(format!("vmlinuz-{version}"));
    if !modules_dir.is_dir() || !vmlinuz.is_file() {
        return Err(KernelError::NotAKernelTree {
            dir: dir.to_owned(),
        });
    }
    if !modules_dir.join("modules.dep").is_file() {
        depmod(dir, &version)?;
    }
    Ok(Kernel {
        package: field("package").unwrap_or_else(|| format!("{PACKAGE_PREFIX}{version}")),
        package_version: field("package-version").unwrap_or_else(|| UNKNOWN.to_owned()),
        version,
        root: dir.to_owned(),
        vmlinuz,
        modules_dir,
    })
}

/// The one release under `DIR/lib/modules`.
fn single_release(dir: &Path) -> Result<String, KernelError> {
    let modules = dir.join("lib/modules");
    let mut releases: Vec<String> = match std::fs::read_dir(&modules) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    releases.sort();
    match releases.len() {
        0 => Err(KernelError::NotAKernelTree {
            dir: dir.to_owned(),
        }),
        1 => Ok(releases.remove(0)),
        _ => Err(KernelError::SeveralKernels {
            dir: dir.to_owned(),
            versions: releases.join(", "),
        }),
    }
}

fn remove_if_exists(path: &Path) -> Result<(), KernelError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_line() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            parse_depends(out).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        // Virtual packages are shown in angle brackets; other dependencies
        // are skipped.
        let out =
            "linux-image-amd64\n  Depends: <linux-base>\n  Depends: <linux-image-6.12.9-amd64>\n";
        assert_eq!(
            parse_depends(out).as_deref(),
            Some("linux-image-6.12.9-amd64")
        );
        assert_eq!(parse_depends(""), None);
        assert_eq!(
            parse_depends("x\n  Depends: linux-image-amd64-signed-template\n"),
            None
        );
    }

    #[test]
    fn version_field() {
        let out = "Package: linux-image-6.1.0-56-amd64\nVersion: 6.1.192-2\nSection: kernel\n";
        assert_eq!(parse_version(out).as_deref(), Some("6.1.192-2"));
        assert_eq!(parse_version("Package: x\n"), None);
        assert_eq!(file_safe("1:2.3-4"), "1%3a2.3-4");
    }

    #[test]
    fn cache_dir_precedence() {
        // (BERTH_CACHE, XDG_CACHE_HOME, HOME) -> cache folder
        let table = [
            (["/c", "/x", "/h"], Some("/c")),
            (["", "/x", "/h"], Some("/x/berth")),
            (["", "", "/h"], Some("/h/.cache/berth")),
            (["rel", "rel", "/h"], Some("/h/.cache/berth")),
            (["", "", ""], None),
        ];
        for (vars, want) in table {
            let [berth, xdg, home] =
                vars.map(|v| Some(OsString::from(v)).filter(|v| !v.is_empty()));
            assert_eq!(
                cache_dir(berth, xdg, home),
                want.map(PathBuf::from),
                "{vars:?}"
            );
        }
        assert_eq!(
            cache_dir(Some("".into()), Some("".into()), Some("/h".into())),
            Some("/h/.cache/berth".into())
        );
    }

    #[test]
    fn tree_without_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        assert!(matches!(
            from_tree(root),
            Err(KernelError::NotAKernelTree { .. })
        ));
        std::fs::create_dir_all(root.join("lib/modules/6.1.0-9-amd64")).expect("mkdir");
        std::fs::create_dir_all(root.join("boot")).expect("mkdir");
        std::fs::write(root.join("boot/vmlinuz-6.1.0-9-amd64"), b"").expect("write");
        std::fs::write(root.join("lib/modules/6.1.0-9-amd64/modules.dep"), b"").expect("write");
        let k = from_tree(root).expect("kernel");
        assert_eq!(k.version, "6.1.0-9-amd64");
        assert_eq!(k.package, "linux-image-6.1.0-9-amd64");
        assert_eq!(k.package_version, UNKNOWN);
        assert_eq!(k.config_path(), root.join("boot/config-6.1.0-9-amd64"));
        std::fs::create_dir_all(root.join("lib/modules/6.1.0-10-amd64")).expect("mkdir");
        assert!(matches!(
            from_tree(root),
            Err(KernelError::SeveralKernels { .. })
        ));
    }
}
