//! Loads kernel modules from `/lib/modules/$(uname -r)` in dependency order
//! (our own `modules.dep`/`modules.softdep` reading in `berth-config`, then
//! `finit_module(2)`; no kmod).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use berth_config::modules::{ModuleFiles, ModuleIndex};
use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

/// Loading modules failed.
#[derive(Debug, thiserror::Error)]
pub enum ModLoadError {
    #[error("read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("kernel release")]
    Uname(#[source] nix::Error),
    #[error("module index of {0}")]
    Index(PathBuf, #[source] berth_config::modules::ModuleError),
    #[error("load module {name} ({path})")]
    Load {
        name: String,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// The module folder of the running kernel.
pub fn modules_dir() -> Result<PathBuf, ModLoadError> {
    let uts = nix::sys::utsname::uname().map_err(ModLoadError::Uname)?;
    Ok(Path::new("/lib/modules").join(uts.release()))
}

/// Whether the module folder `dir` lists `name` in its `modules.dep`
/// (the initramfs carries a subset).
pub fn carries(dir: &Path, name: &str) -> bool {
    let Ok(dep) = std::fs::read_to_string(dir.join("modules.dep")) else {
        return false;
    };
    let want = ModuleIndex::normalize(name);
    dep.lines()
        .filter_map(|l| l.split(':').next())
        .filter_map(|path| Path::new(path).file_name()?.to_str())
        .any(|file| ModuleIndex::normalize(file.split(".ko").next().unwrap_or(file)) == want)
}

/// Loads `names` and everything they need. Returns how many modules the
/// kernel took, or the first failure after trying every name (each failure
/// is logged). A module already loaded counts as done; an optional
/// (softdep) module that fails is logged at debug level only, since an
/// alias can name alternatives of which one is enough (crc32c_intel needs
/// SSE4.2, crc32c_generic always works).
pub fn load(dir: &Path, names: &[&str]) -> Result<usize, ModLoadError> {
    if names.is_empty() {
        return Ok(0);
    }
    let start = Instant::now();
    let read = |f: &str| -> Result<String, ModLoadError> {
        let p = dir.join(f);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(s),
            // An image without softdeps or builtins may omit the file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && f != "modules.dep" => {
                Ok(String::new())
            }
            Err(e) => Err(ModLoadError::Read(p, e)),
        }
    };
    let (dep, softdep, alias, builtin) = (
        read("modules.dep")?,
        read("modules.softdep")?,
        read("modules.alias")?,
        read("modules.builtin")?,
    );
    let index = ModuleIndex::parse(&ModuleFiles {
        dep: &dep,
        softdep: &softdep,
        alias: &alias,
        builtin: &builtin,
    })
    .map_err(|e| ModLoadError::Index(dir.to_owned(), e))?;
    let mut loaded = 0;
    let mut failures = Vec::new();
    // Each requested module on its own, so one that fails (or that the
    // image lacks) does not keep the others out.
    for name in names {
        match load_with_deps(dir, &index, name) {
            Ok(n) => loaded += n,
            Err(e) => failures.push(e),
        }
    }
    log::info!(
        "loaded {loaded} kernel module(s) for {} in {} ms",
        names.join(", "),
        start.elapsed().as_millis()
    );
    match failures.into_iter().next() {
        None => Ok(loaded),
        Some(first) => Err(first),
    }
}

/// Optional modules the kernel refused this boot for good (crc32c_intel
/// on a CPU without SSE4.2): not tried again by every later load that
/// names them.
static REFUSED_OPTIONAL: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Whether a module's load failed for a reason that holds all boot: no
/// such device or CPU feature, no such file, not a module for this
/// kernel. A shortage (memory, descriptors) or an interruption may pass.
fn refused_for_good(e: Errno) -> bool {
    matches!(e, Errno::ENODEV | Errno::ENOENT | Errno::ENOEXEC)
}

/// The optional modules refused for good so far, for the next stage.
pub fn refused_modules() -> Vec<String> {
    REFUSED_OPTIONAL
        .lock()
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

/// Remembers modules an earlier stage found refused for good.
pub fn remember_refused<'a>(names: impl IntoIterator<Item = &'a str>) {
    if let Ok(mut set) = REFUSED_OPTIONAL.lock() {
        set.extend(names.into_iter().map(str::to_owned));
    }
}

/// Whether the kernel already has module `name` (loaded by an earlier
/// stage or request): asking again would cost a whole load (the file
/// read and its signature checked) only to hear EEXIST.
fn in_kernel(name: &str) -> bool {
    Path::new("/sys/module")
        .join(name)
        .join("initstate")
        .exists()
}

fn refused(name: &str) -> bool {
    REFUSED_OPTIONAL
        .lock()
        .map(|set| set.contains(name))
        .unwrap_or(false)
}

fn load_with_deps(dir: &Path, index: &ModuleIndex, name: &str) -> Result<usize, ModLoadError> {
    let steps = index
        .load_order(&[name])
        .map_err(|e| ModLoadError::Index(dir.to_owned(), e))?;
    let mut loaded = 0;
    for step in &steps {
        if step.optional && refused(&step.name) {
            log::debug!("optional module {} skipped: refused earlier", step.name);
            continue;
        }
        if in_kernel(&step.name) {
            continue;
        }
        let path = dir.join(&step.path);
        match load_one(&path) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(e) if step.optional => {
                log::debug!("optional module {} not loaded: {e}", step.name);
                if refused_for_good(e) {
                    if let Ok(mut set) = REFUSED_OPTIONAL.lock() {
                        set.insert(step.name.clone());
                    }
                }
            }
            Err(source) => {
                log::error!("load module {} ({}): {source}", step.name, path.display());
                return Err(ModLoadError::Load {
                    name: step.name.clone(),
                    path,
                    source,
                });
            }
        }
    }
    Ok(loaded)
}

/// `Ok(true)` when loaded now, `Ok(false)` when it already was.
fn load_one(path: &Path) -> Result<bool, nix::Error> {
    let file =
        File::open(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let params = CString::default();
    match finit_module(&file, &params, ModuleInitFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lasting_refusals_are_remembered() {
        for e in [Errno::ENODEV, Errno::ENOENT, Errno::ENOEXEC] {
            assert!(refused_for_good(e), "{e}");
        }
        for e in [
            Errno::ENOMEM,
            Errno::EINTR,
            Errno::EAGAIN,
            Errno::EBUSY,
            Errno::EMFILE,
        ] {
            assert!(!refused_for_good(e), "{e}");
        }
    }

    #[test]
    fn refusals_handed_over_by_stage_0_are_remembered() {
        remember_refused(["berth_test_refused_a", "berth_test_refused_b"]);
        assert!(refused("berth_test_refused_a"));
        assert!(refused_modules().contains(&"berth_test_refused_b".to_owned()));
        assert!(!refused("berth_test_never_named"));
    }

    #[test]
    fn a_module_the_kernel_lacks_is_not_in_the_kernel() {
        assert!(!in_kernel("berth_no_such_module"));
    }

    #[test]
    fn carries_finds_a_module_by_its_normalized_name_in_modules_dep() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("modules.dep"),
            "kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko\nkernel/drivers/md/dm-mod.ko.xz:\nkernel/fs/jbd2/jbd2.ko:\n",
        )
        .expect("write");
        assert!(carries(dir.path(), "ext4"));
        assert!(carries(dir.path(), "jbd2"));
        assert!(carries(dir.path(), "dm_mod"));
        assert!(!carries(dir.path(), "ext"));
        assert!(!carries(dir.path(), "overlay"));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(!carries(empty.path(), "ext4"));
    }
}
