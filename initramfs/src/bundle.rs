//! OCI bundles in the root image: `BUNDLES/NAME/config.json` and
//! `BUNDLES/NAME/rootfs/`, one per manifest container, and beside them the
//! container's resolved plan (`BUNDLES/NAME/plan.json`, [`Plan`]), which
//! PID 1 runs it by.
//!
//! A `rootfs` folder is copied from the build host as is (symlinks stay
//! symlinks, permission bits are kept; the copy belongs to the builder,
//! root), once per build however many containers name it
//! ([`FolderStore`]), and linked into each of their rootfs folders. An `image` is unpacked layer by layer ([`crate::oci`]) with the
//! owners its layers name, its files hard-linked to one copy per layer, so
//! containers sharing layers store them once; its config supplies the
//! spec's defaults. Because the image is read-only, every
//! directory the runtime mounts onto must already exist in it; those are
//! created here, resolving symlinks inside the rootfs the way the runtime
//! will (an absolute link points into the container, never at the build
//! host).

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_config::image::ImageRef;
use berth_config::layout;
use berth_config::plan::{ImageFacts, Plan, ProcessUser};
use berth_config::{Container, Kind};
use berth_oci::spec::{
    build_spec_with_image, rootfs_file_mount_points, rootfs_mount_points, ImageConfig, SpecError,
};

use crate::folder_store::{FolderError, FolderReport, FolderStore};
use crate::nofollow;
use crate::oci::{self, ImageDefaults, LayerStore, OciError, Policy, Progress, UnpackReport};
use crate::progress::{self, Step};

/// Bundling a container failed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("container.{name}.rootfs: {} is not a folder", path.display())]
    MissingRootfs { name: String, path: PathBuf },
    #[error("build the runtime spec of container {name}")]
    Spec {
        name: String,
        #[source]
        source: SpecError,
    },
    #[error("write {path}")]
    WriteSpec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("copy {from} to {to}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container.{name}.rootfs: {}", path.display())]
    Folder {
        name: String,
        path: PathBuf,
        #[source]
        source: Box<FolderError>,
    },
    #[error("container.{name}.image: {reference}")]
    Image {
        name: String,
        reference: String,
        #[source]
        source: Box<OciError>,
    },
    #[error("container.{name}: no command (neither the manifest nor the image config names one)")]
    NoCommand { name: String },
    #[error("create mount point /{point} in container {name}")]
    MountPoint {
        name: String,
        point: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What bundling one container did, for the build report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundled {
    /// What linking the `rootfs` folder did, for a folder container. Its
    /// `left_out` (device nodes, fifos and sockets, which the runtime
    /// provides itself and a non-root build could not create anyway) is
    /// only filled for the first container that names the folder.
    pub folder: Option<FolderReport>,
    /// What unpacking the image did, for an `image` container.
    pub unpacked: Option<UnpackReport>,
    /// What resolving the plan had to say (an image's stop signal berth
    /// does not know).
    pub warnings: Vec<String>,
}

/// Where images' layers are unpacked, and rootfs folders copied, once
/// for all containers, and the timestamp image files get.
#[derive(Debug)]
pub struct Images {
    pub store: LayerStore,
    pub folders: FolderStore,
    pub epoch: u64,
}

/// Writes the bundle of `container` into `bundles/NAME`. A relative
/// `rootfs` or image path is taken relative to `manifest_dir`.
pub fn bundle(
    container: &Container,
    manifest_dir: &Path,
    bundles: &Path,
    images: &mut Images,
) -> Result<Bundled, BundleError> {
    let dir = bundles.join(&container.name);
    let rootfs = dir.join("rootfs");
    let mut bundled = Bundled::default();
    let image_config = match &container.image {
        Some(reference) => {
            let (config, report) =
                unpack_image(container, reference, manifest_dir, &rootfs, images)?;
            bundled.unpacked = Some(report);
            Some(config)
        }
        None => {
            let source = manifest_dir.join(&container.rootfs);
            if !source.is_dir() {
                return Err(BundleError::MissingRootfs {
                    name: container.name.clone(),
                    path: source,
                });
            }
            let report =
                images
                    .folders
                    .link(&source, &rootfs)
                    .map_err(|e| BundleError::Folder {
                        name: container.name.clone(),
                        path: source.clone(),
                        source: Box::new(e),
                    })?;
            bundled.folder = Some(report);
            None
        }
    };
    let spec = build_spec_with_image(container, image_config.as_ref()).map_err(|source| {
        BundleError::Spec {
            name: container.name.clone(),
            source,
        }
    })?;
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .is_none_or(|a| a.is_empty())
    {
        return Err(BundleError::NoCommand {
            name: container.name.clone(),
        });
    }
    for point in rootfs_mount_points(&spec) {
        ensure_dir_in_root(&rootfs, &point).map_err(|source| BundleError::MountPoint {
            name: container.name.clone(),
            point: point.clone(),
            source,
        })?;
    }
    for point in rootfs_file_mount_points(&spec) {
        ensure_file_in_root(&rootfs, &point).map_err(|source| BundleError::MountPoint {
            name: container.name.clone(),
            point: point.clone(),
            source,
        })?;
    }
    let config = dir.join("config.json");
    let json = serde_json::to_value(&spec)
        .map(canonical)
        .and_then(|v| serde_json::to_vec_pretty(&v))
        .map_err(|e| BundleError::WriteSpec {
            path: config.clone(),
            source: e.into(),
        })?;
    write(&config, &json)?;
    let facts = image_config.map(|i| ImageFacts {
        exposed_ports: i.exposed_ports,
        stop_signal: i.stop_signal,
    });
    let (plan, warnings) = Plan::resolve(container, facts, process_user(&spec));
    bundled.warnings = warnings;
    let path = dir.join(layout::PLAN_FILE);
    let json = plan.to_json().map_err(|e| BundleError::WriteSpec {
        path: path.clone(),
        source: e.into(),
    })?;
    write(&path, &json)?;
    Ok(bundled)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    std::fs::write(path, bytes).map_err(|source| BundleError::WriteSpec {
        path: path.to_owned(),
        source,
    })
}

/// Who the spec runs the process as: the plan's user is read from the
/// spec, so the two cannot disagree.
fn process_user(spec: &oci_spec::runtime::Spec) -> ProcessUser {
    let Some(process) = spec.process() else {
        return ProcessUser::default();
    };
    let user = process.user();
    ProcessUser {
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
    }
}

/// Unpacks `reference` into `rootfs` and turns its config into the spec's
/// defaults (the user resolved against the unpacked files).
fn unpack_image(
    container: &Container,
    reference: &ImageRef,
    manifest_dir: &Path,
    rootfs: &Path,
    images: &mut Images,
) -> Result<(ImageConfig, UnpackReport), BundleError> {
    let err = |source: OciError| BundleError::Image {
        name: container.name.clone(),
        reference: reference.to_string(),
        source: Box::new(source),
    };
    let resolved = ImageRef {
        path: manifest_dir.join(&reference.path),
        ..reference.clone()
    };
    let image = oci::open(&resolved).map_err(err)?;
    std::fs::create_dir_all(rootfs).map_err(|source| BundleError::Copy {
        from: resolved.path.clone(),
        to: rootfs.to_owned(),
        source,
    })?;
    let sizes: Vec<u64> = image.layers.iter().map(|l| l.size.unwrap_or(0)).collect();
    let total: u64 = sizes.iter().sum();
    let step = Step::start(
        format!(
            "container {}: unpacking {reference} ({} layer(s))",
            container.name,
            image.layers.len()
        ),
        (total > 0).then_some(total),
    );
    let policy = Policy {
        epoch: images.epoch,
        // Device nodes only where the manifest already trusts the image.
        allow_devices: container.kind == Kind::Host,
    };
    let mut on_progress = |p: Progress| {
        let before: u64 = sizes.iter().take(p.layer).sum();
        step.set_position(before + p.read);
    };
    let report =
        oci::unpack(&image, rootfs, &mut images.store, &policy, &mut on_progress).map_err(err)?;
    step.finish(&format!(
        "{} file(s), {} written, {} shared with other containers",
        report.files,
        progress::size(report.bytes_written),
        progress::size(report.bytes_linked)
    ));
    let d = ImageDefaults::from_config(&image.config);
    let user = match d.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => Some(oci::resolve_user(u, rootfs).map_err(err)?),
        None => None,
    };
    let config = ImageConfig {
        entrypoint: d.entrypoint,
        cmd: d.cmd,
        env: d.env,
        workdir: d.workdir,
        user,
        exposed_ports: d.exposed_ports,
        stop_signal: d.stop_signal,
    };
    Ok((config, report))
}

/// The spec as canonical JSON: oci-spec keeps capability sets (and maps
/// such as annotations) in hash collections, whose order changes from one
/// process to the next; sorting them makes the same manifest give the same
/// image, byte for byte.
fn canonical(mut v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    /// `is_capabilities`: `v` is `process.capabilities`, whose arrays are
    /// sets; every other array (args, env, mounts) keeps its order.
    fn walk(v: &mut Value, is_capabilities: bool) {
        match v {
            Value::Object(map) => {
                map.sort_keys();
                for (key, child) in map.iter_mut() {
                    if let (true, Value::Array(set)) = (is_capabilities, &mut *child) {
                        set.sort_by_key(|item| item.to_string());
                    }
                    walk(child, key == "capabilities");
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| walk(item, false)),
            _ => {}
        }
    }
    walk(&mut v, false);
    v
}

/// Creates the directory `rel` inside `root`, following symlinks as if
/// `root` were `/`: an absolute target restarts at `root`, `..` stops at
/// it. Like `mkdir -p` inside a chroot ([`nofollow::create_dir_in_root`]).
pub fn ensure_dir_in_root(root: &Path, rel: &Path) -> std::io::Result<()> {
    nofollow::create_dir_in_root(root, rel).map(drop)
}

/// Makes `rel` inside `root` a regular file a file can be bind-mounted
/// over: an existing regular file is kept, a symlink (images often point
/// `/etc/resolv.conf` elsewhere) is replaced by an empty file, since the
/// mount hides it anyway; a missing one is created empty, its folder too.
/// The folder is resolved inside `root` and the file itself is never
/// followed: a rootfs whose `/etc` points at the build host's (`etc ->
/// ../../..`) gets the file inside it, where the runtime will look.
pub fn ensure_file_in_root(root: &Path, rel: &Path) -> std::io::Result<()> {
    let Some(name) = rel.file_name() else {
        return Err(std::io::Error::other(format!(
            "/{} is not a file name",
            rel.display()
        )));
    };
    let dir = match rel.parent() {
        Some(parent) => nofollow::create_dir_in_root(root, parent)?,
        None => root.to_owned(),
    };
    let host = dir.join(name);
    match nofollow::lstat(&host)? {
        Some(m) if m.is_file() => return Ok(()),
        Some(m) if m.file_type().is_symlink() => std::fs::remove_file(&host)?,
        Some(_) => {
            return Err(std::io::Error::other(format!(
                "/{} exists and is not a file",
                rel.display()
            )))
        }
        None => {}
    }
    // O_CREAT|O_EXCL: fails rather than follow a symlink put there since.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&host)?;
    set_mode(&host, 0o644)
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
}

#[cfg(test)]
mod escape_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use berth_config::RestartPolicy;
    use std::os::unix::fs::symlink;

    /// A fresh layer and folder store under `dir`.
    fn images(dir: &Path) -> Images {
        let store_dir = tempfile::tempdir_in(dir).expect("store dir").keep();
        Images {
            store: LayerStore::new(store_dir.join("layers")).expect("layer store"),
            folders: FolderStore::new(store_dir.join("folders")).expect("folder store"),
            epoch: 0,
        }
    }

    fn container(name: &str, rootfs: &str) -> Container {
        Container {
            command: vec!["/bin/sh".into()],
            workdir: "/srv/app".into(),
            restart: RestartPolicy::Never,
            ..Container::new(name, rootfs)
        }
    }

    #[test]
    fn copies_rootfs_and_writes_spec() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("manifests/rootfs");
        std::fs::create_dir_all(src.join("bin")).expect("mkdir");
        std::fs::write(src.join("bin/tool"), b"#!").expect("write");
        set_mode(&src.join("bin/tool"), 0o750).expect("chmod");
        symlink("tool", src.join("bin/alias")).expect("symlink");
        // /dev/shm -> /run/shm: the runtime's /dev mount point resolves
        // inside the rootfs, so its target must too.
        symlink("/run", src.join("var")).expect("symlink");
        std::fs::create_dir(src.join("ro")).expect("mkdir");
        set_mode(&src.join("ro"), 0o555).expect("chmod");
        // A resolv.conf symlink (as in many images) becomes a file mount
        // point; /etc/hosts does not exist and is created.
        std::fs::create_dir(src.join("etc")).expect("mkdir");
        symlink("../run/resolv.conf", src.join("etc/resolv.conf")).expect("symlink");

        let bundles = tmp.path().join("bundles");
        let out = bundle(
            &container("app", "rootfs"),
            &tmp.path().join("manifests"),
            &bundles,
            &mut images(tmp.path()),
        )
        .expect("bundle");
        assert_eq!(
            out.folder.expect("a folder").left_out,
            Vec::<PathBuf>::new()
        );
        let rootfs = bundles.join("app/rootfs");
        assert_eq!(std::fs::read(rootfs.join("bin/tool")).expect("read"), b"#!");
        let mode = std::fs::metadata(rootfs.join("bin/tool"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/alias")).expect("link"),
            Path::new("tool")
        );
        assert_eq!(
            std::fs::read_link(rootfs.join("var")).expect("link"),
            Path::new("/run")
        );
        let ro = std::fs::metadata(rootfs.join("ro"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(ro & 0o7777, 0o555);
        for point in ["proc", "sys", "dev", "tmp", "srv/app"] {
            assert!(rootfs.join(point).is_dir(), "mount point {point}");
        }
        for point in ["etc/hosts", "etc/resolv.conf"] {
            let m = std::fs::symlink_metadata(rootfs.join(point)).expect("file mount point");
            assert!(m.is_file() && m.len() == 0, "file mount point {point}");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundles.join("app/config.json")).expect("read"))
                .expect("json");
        assert_eq!(json["process"]["args"][0], "/bin/sh");
        assert_eq!(json["process"]["cwd"], "/srv/app");
        let plan = Plan::from_file("app", &bundles.join("app/plan.json")).expect("plan");
        assert_eq!(plan.container, container("app", "rootfs"));
        assert_eq!((plan.user, plan.image), (ProcessUser::default(), None));
        // Let the tempdir cleanup remove the read-only folder.
        set_mode(&rootfs.join("ro"), 0o755).expect("chmod");
        set_mode(&src.join("ro"), 0o755).expect("chmod");
    }

    #[test]
    fn a_folder_named_by_many_containers_is_stored_once() {
        use std::collections::HashSet;
        use std::os::unix::fs::MetadataExt;
        const CONTAINERS: usize = 200;
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("rootfs");
        std::fs::create_dir_all(src.join("bin")).expect("mkdir");
        std::fs::write(src.join("bin/busybox"), vec![7u8; 100_000]).expect("write");
        std::fs::write(src.join("bin/tool"), b"#!").expect("write");
        symlink("busybox", src.join("bin/sh")).expect("symlink");
        let source_bytes = 100_002u64;

        let bundles = tmp.path().join("bundles");
        let mut images = images(tmp.path());
        for i in 0..CONTAINERS {
            bundle(
                &container(&format!("app{i}"), "rootfs"),
                tmp.path(),
                &bundles,
                &mut images,
            )
            .expect("bundle");
        }
        // Every non-folder entry of every rootfs, by inode: mkfs.erofs
        // stores one copy per inode.
        let mut inodes = HashSet::new();
        let mut bytes = 0u64;
        let mut entries = 0usize;
        for i in 0..CONTAINERS {
            let rootfs = bundles.join(format!("app{i}/rootfs"));
            for rel in ["bin/busybox", "bin/tool", "bin/sh"] {
                let m = std::fs::symlink_metadata(rootfs.join(rel)).expect("entry");
                entries += 1;
                if inodes.insert(m.ino()) && m.is_file() {
                    bytes += m.len();
                }
            }
        }
        assert_eq!(entries, 3 * CONTAINERS);
        assert_eq!(
            inodes.len(),
            3,
            "one inode per file and symlink of the folder"
        );
        assert_eq!(bytes, source_bytes, "the folder's bytes stored once");
    }

    #[test]
    fn canonical_json_sorts_sets_and_keys_only() {
        let v = serde_json::json!({
            "process": {
                "args": ["b", "a"],
                "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "ambient": []},
            },
            "annotations": {"z": "1", "a": "2"},
        });
        let text = serde_json::to_string(&canonical(v)).expect("json");
        assert_eq!(
            text,
            r#"{"annotations":{"a":"2","z":"1"},"process":{"args":["b","a"],"capabilities":{"ambient":[],"bounding":["CAP_CHOWN","CAP_KILL"]}}}"#
        );
    }

    #[test]
    fn spec_bytes_are_reproducible() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("rootfs")).expect("mkdir");
        let c = container("app", "rootfs");
        // Each spec gets hash sets with fresh random keys.
        let texts: Vec<(Vec<u8>, Vec<u8>)> = (0..4)
            .map(|i| {
                let bundles = tmp.path().join(format!("b{i}"));
                bundle(&c, tmp.path(), &bundles, &mut images(tmp.path())).expect("bundle");
                let read = |f: &str| std::fs::read(bundles.join("app").join(f)).expect("read");
                (read("config.json"), read("plan.json"))
            })
            .collect();
        assert!(texts.windows(2).all(|w| w[0] == w[1]));
    }

    /// An image's StopSignal, User and ExposedPorts end up in the plan;
    /// the manifest's `stop-signal` wins over the image's.
    #[test]
    fn plan_resolves_the_image_config() {
        use crate::oci::tests::fixture::{oci_layout, Comp, OciImage};
        let tmp = tempfile::tempdir().expect("tempdir");
        let layer = crate::oci::tests::fixture::TarLayer::new()
            .file("bin/sh", b"#!")
            .file(
                "etc/passwd",
                b"root:x:0:0::/root:/bin/sh\nweb:x:101:102::/:/bin/sh\n",
            )
            .tar();
        let mut image = OciImage::new(Some("1"), vec![(layer, Comp::Plain)]);
        image.config = serde_json::json!({
            "Cmd": ["/bin/sh"],
            "StopSignal": "SIGQUIT",
            "User": "web",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        });
        oci_layout(&tmp.path().join("img"), &[image]);
        let from_image = |stop_signal: i32| Container {
            image: Some("oci:img:1".parse().expect("ref")),
            stop_signal,
            ..Container::new("web", "")
        };
        for (manifest, want) in [(15, 3), (2, 2)] {
            let bundles = tmp.path().join(format!("b{manifest}"));
            let c = from_image(manifest);
            bundle(&c, tmp.path(), &bundles, &mut images(tmp.path())).expect("bundle");
            let plan = Plan::from_file("web", &bundles.join("web/plan.json")).expect("plan");
            assert_eq!(plan.container.stop_signal, want);
            assert_eq!(
                plan.user,
                ProcessUser {
                    uid: 101,
                    gid: 102,
                    additional_gids: Vec::new()
                }
            );
            let facts = plan.image.expect("image facts");
            assert_eq!(facts.exposed_ports, ["53/udp", "8080/tcp"]);
            assert_eq!(facts.stop_signal.as_deref(), Some("SIGQUIT"));
        }
    }

    #[test]
    fn missing_rootfs_names_the_key() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = bundle(
            &container("web", "nope"),
            tmp.path(),
            &tmp.path().join("b"),
            &mut images(tmp.path()),
        )
        .expect_err("missing");
        let msg = err.to_string();
        assert!(msg.starts_with("container.web.rootfs: "), "{msg}");
        assert!(
            msg.contains(&tmp.path().join("nope").display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn mount_points_resolve_symlinks_inside_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("real")).expect("mkdir");
        symlink("/real", root.join("abs")).expect("symlink");
        symlink("../../real", root.join("rel")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");
        std::fs::write(root.join("file"), b"").expect("write");

        ensure_dir_in_root(&root, Path::new("abs/a/b")).expect("abs");
        assert!(root.join("real/a/b").is_dir());
        ensure_dir_in_root(&root, Path::new("rel/c")).expect("rel");
        assert!(root.join("real/c").is_dir());
        ensure_dir_in_root(&root, Path::new("../../escape")).expect("dotdot");
        assert!(root.join("escape").is_dir());
        assert!(!tmp.path().join("escape").exists());
        assert!(ensure_dir_in_root(&root, Path::new("loop/x")).is_err());
        assert!(ensure_dir_in_root(&root, Path::new("file/x")).is_err());
    }
}
