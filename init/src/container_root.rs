//! A container's `/` for one run: its read-only image from the root image
//! as the lower layer of an overlay whose upper layer is a fresh tmpfs of
//! bounded size, so programs that write to `/` work, writes never reach
//! the image, cannot outgrow the bound, and vanish when the run ends (as
//! DESIGN.md and Docker's writable layer have it). `readonly = true` skips
//! the overlay: the spec then points at the image itself.
//!
//! Mounted by PID 1 before libcontainer builds the container (the spec's
//! `root.path` is [`layout::container_root`]) and detached after the run:
//! libcontainer pivots into it, so PID 1's own view only holds the mount
//! until the container's mount namespace is gone.

use std::path::{Path, PathBuf};

use berth_config::layout;
use nix::mount::MsFlags;

use crate::os::Os;

/// Preparing a container's `/` failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerRootError {
    #[error("create {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("give {} to uid {owner}", path.display())]
    Chown {
        path: PathBuf,
        owner: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("mount the writable layer of {name} on {layer}")]
    MountLayer {
        name: String,
        layer: String,
        #[source]
        source: nix::Error,
    },
    #[error("mount the overlay root of {name} on {root}")]
    MountOverlay {
        name: String,
        root: String,
        #[source]
        source: nix::Error,
    },
}

/// Mounts the writable layer and the overlay for container `name` whose
/// image is `lower`; undoes what it did if a step fails. `owner`: the host
/// uid (= gid) that container root maps to in a user namespace, which must
/// own the layer to write to it.
pub fn prepare(
    os: &dyn Os,
    name: &str,
    lower: &Path,
    size: usize,
    owner: Option<u32>,
) -> Result<(), ContainerRootError> {
    release(os, name);
    let root = layout::container_root(name);
    let layer = format!("{root}.layer");
    for dir in [&root, &layer] {
        os.create_dir_all(Path::new(dir))
            .map_err(|source| ContainerRootError::CreateDir {
                path: dir.into(),
                source,
            })?;
    }
    let mut size_opt = format!("size={size},mode=0755");
    if let Some(id) = owner {
        size_opt.push_str(&format!(",uid={id},gid={id}"));
    }
    os.mount(
        "tmpfs",
        &layer,
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&size_opt),
    )
    .map_err(|source| ContainerRootError::MountLayer {
        name: name.to_owned(),
        layer: layer.clone(),
        source,
    })?;
    let (upper, work) = (format!("{layer}/upper"), format!("{layer}/work"));
    for dir in [&upper, &work] {
        if let Err(e) = make_layer_dir(os, Path::new(dir), owner) {
            release(os, name);
            return Err(e);
        }
    }
    let data = format!(
        "lowerdir={},upperdir={upper},workdir={work}",
        lower.display()
    );
    if let Err(source) = os.mount("overlay", &root, "overlay", MsFlags::empty(), Some(&data)) {
        release(os, name);
        return Err(ContainerRootError::MountOverlay {
            name: name.to_owned(),
            root,
            source,
        });
    }
    Ok(())
}

/// One folder of the writable layer, owned by `owner` if given.
fn make_layer_dir(os: &dyn Os, dir: &Path, owner: Option<u32>) -> Result<(), ContainerRootError> {
    os.mkdir(dir, 0o755)
        .map_err(|source| ContainerRootError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    match owner {
        Some(owner) => os
            .chown(dir, owner)
            .map_err(|source| ContainerRootError::Chown {
                path: dir.to_owned(),
                owner,
                source,
            }),
        None => Ok(()),
    }
}

/// Detaches the overlay and the layer of `name` (nothing mounted is fine).
pub fn release(os: &dyn Os, name: &str) {
    let root = layout::container_root(name);
    let _ = os.umount_detach(&root);
    let _ = os.umount_detach(&format!("{root}.layer"));
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;
    use crate::os::RecordingOs;

    #[test]
    fn overlay_over_the_image_with_a_bounded_tmpfs() {
        let os = RecordingOs::new();
        prepare(
            &os,
            "web",
            Path::new("/usr/lib/berth/containers/web/rootfs"),
            1 << 20,
            None,
        )
        .expect("prepare");
        let effects = os.effects();
        let mounts: Vec<&String> = effects.iter().filter(|c| c.starts_with("mount ")).collect();
        assert_eq!(
            mounts,
            [
                "mount tmpfs on /run/berth-roots/web.layer (tmpfs) [nosuid,nodev] size=1048576,mode=0755",
                "mount overlay on /run/berth-roots/web (overlay) lowerdir=/usr/lib/berth/containers/web/rootfs,upperdir=/run/berth-roots/web.layer/upper,workdir=/run/berth-roots/web.layer/work",
            ]
        );
        // Leftovers of a previous run are detached first.
        assert!(effects[0].starts_with("umount /run/berth-roots/web"));
    }

    #[test]
    fn a_failed_overlay_releases_the_layer() {
        let os = RecordingOs::new().fail("mount overlay", Errno::EINVAL);
        let err =
            prepare(&os, "web", Path::new("/lower"), 1 << 20, Some(165536)).expect_err("fails");
        assert!(os
            .effects()
            .iter()
            .any(|c| c == "chown /run/berth-roots/web.layer/upper 165536"));
        assert_eq!(
            crate::fatal::chain(&err),
            "mount the overlay root of web on /run/berth-roots/web: EINVAL: Invalid argument"
        );
        let effects = os.effects();
        let last: Vec<&String> = effects.iter().rev().take(2).collect();
        assert!(
            last.iter()
                .any(|c| c.as_str() == "umount /run/berth-roots/web.layer"),
            "{effects:?}"
        );
    }
}
