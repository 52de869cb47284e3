//! Image fixtures built in code: layer tars (with hand-made headers, so
//! that hostile paths can be written), OCI layouts and docker archives.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use tar::EntryType;

use crate::oci::digest;

/// A layer tar being built. Headers are written field by field, so paths
/// and link names go in verbatim (`tar::Builder` would refuse `..`).
pub struct TarLayer {
    builder: tar::Builder<Vec<u8>>,
}

/// How a layer blob is compressed in a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

impl Default for TarLayer {
    fn default() -> Self {
        TarLayer {
            builder: tar::Builder::new(Vec::new()),
        }
    }
}

impl TarLayer {
    pub fn new() -> TarLayer {
        TarLayer::default()
    }

    /// Appends an entry with every field given.
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        mut self,
        kind: EntryType,
        path: &str,
        link: Option<&str>,
        mode: u32,
        owner: (u64, u64),
        data: &[u8],
        device: (u32, u32),
    ) -> TarLayer {
        let mut h = tar::Header::new_gnu();
        let gnu = h.as_gnu_mut().expect("gnu header");
        assert!(path.len() < 100, "fixture paths are short");
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(1_234_567_890);
        h.set_size(data.len() as u64);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(device.0).expect("major");
            h.set_device_minor(device.1).expect("minor");
        }
        h.set_cksum();
        self.builder.append(&h, data).expect("append");
        self
    }

    pub fn file(self, path: &str, data: &[u8]) -> TarLayer {
        self.file_as(path, data, 0o644, (0, 0))
    }

    pub fn file_as(self, path: &str, data: &[u8], mode: u32, owner: (u64, u64)) -> TarLayer {
        self.raw(EntryType::Regular, path, None, mode, owner, data, (0, 0))
    }

    pub fn dir(self, path: &str) -> TarLayer {
        self.dir_as(path, 0o755, (0, 0))
    }

    pub fn dir_as(self, path: &str, mode: u32, owner: (u64, u64)) -> TarLayer {
        self.raw(EntryType::Directory, path, None, mode, owner, b"", (0, 0))
    }

    pub fn symlink(self, path: &str, target: &str) -> TarLayer {
        self.raw(
            EntryType::Symlink,
            path,
            Some(target),
            0o777,
            (0, 0),
            b"",
            (0, 0),
        )
    }

    pub fn hardlink(self, path: &str, target: &str) -> TarLayer {
        self.raw(
            EntryType::Link,
            path,
            Some(target),
            0o644,
            (0, 0),
            b"",
            (0, 0),
        )
    }

    pub fn fifo(self, path: &str) -> TarLayer {
        self.raw(EntryType::Fifo, path, None, 0o600, (0, 0), b"", (0, 0))
    }

    pub fn char_device(self, path: &str, major: u32, minor: u32) -> TarLayer {
        self.raw(
            EntryType::Char,
            path,
            None,
            0o666,
            (0, 0),
            b"",
            (major, minor),
        )
    }

    /// A file preceded by a pax header carrying extended attributes.
    pub fn file_with_xattrs(
        mut self,
        path: &str,
        data: &[u8],
        xattrs: &[(&str, &[u8])],
    ) -> TarLayer {
        let keys: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.builder
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .expect("pax");
        self.file(path, data)
    }

    /// The finished, uncompressed tar.
    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }
}

pub fn compress(tar: &[u8], comp: Comp) -> Vec<u8> {
    match comp {
        Comp::Plain => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).expect("gzip");
            e.finish().expect("gzip")
        }
        Comp::Zstd => {
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

fn media_type(comp: Comp) -> &'static str {
    match comp {
        Comp::Plain => "application/vnd.oci.image.layer.v1.tar",
        Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// An image config: `config` is its `config` object.
pub fn config_json(arch: &str, config: serde_json::Value, tars: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = tars.iter().map(|t| digest::of(t)).collect();
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .expect("config json")
}

/// One image of an OCI layout fixture.
pub struct OciImage<'a> {
    pub tag: Option<&'a str>,
    pub arch: &'a str,
    pub config: serde_json::Value,
    pub layers: Vec<(Vec<u8>, Comp)>,
}

impl<'a> OciImage<'a> {
    pub fn new(tag: Option<&'a str>, layers: Vec<(Vec<u8>, Comp)>) -> OciImage<'a> {
        OciImage {
            tag,
            arch: "amd64",
            config: json!({ "Cmd": ["/bin/sh"] }),
            layers,
        }
    }
}

/// A descriptor's JSON, and the blob written for it.
pub fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = digest::of(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&digest[7..]), bytes).expect("write blob");
    json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() })
}

/// The manifest descriptor (not yet in an index) of `image`.
pub fn put_image(layout: &Path, image: &OciImage<'_>) -> serde_json::Value {
    let tars: Vec<&[u8]> = image.layers.iter().map(|(t, _)| t.as_slice()).collect();
    let config = put_blob(
        layout,
        "application/vnd.oci.image.config.v1+json",
        &config_json(image.arch, image.config.clone(), &tars),
    );
    let layers: Vec<serde_json::Value> = image
        .layers
        .iter()
        .map(|(tar, comp)| put_blob(layout, media_type(*comp), &compress(tar, *comp)))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    });
    let mut desc = put_blob(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).expect("manifest json"),
    );
    if let Some(tag) = image.tag {
        desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    }
    desc
}

/// Writes `oci-layout` and an `index.json` listing `manifests`.
pub fn put_index(layout: &Path, manifests: Vec<serde_json::Value>) {
    std::fs::create_dir_all(layout).expect("layout dir");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let index = json!({ "schemaVersion": 2, "manifests": manifests });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index.json");
}

/// An OCI layout at `layout` holding `images`.
pub fn oci_layout(layout: &Path, images: &[OciImage<'_>]) {
    let manifests = images.iter().map(|i| put_image(layout, i)).collect();
    put_index(layout, manifests);
}

/// The path of the blob named by a descriptor's JSON.
pub fn blob_path(layout: &Path, desc: &serde_json::Value) -> PathBuf {
    let digest = desc["digest"].as_str().expect("digest");
    layout.join("blobs/sha256").join(&digest[7..])
}

/// One image of a docker archive fixture.
pub struct DockerImage<'a> {
    pub repo_tags: &'a [&'a str],
    pub layers: Vec<(Vec<u8>, Comp)>,
}

/// Writes a legacy `docker save` archive (`<id>/layer.tar`, `<hex>.json`,
/// `manifest.json`); a layer listed twice is stored once, the second
/// `layer.tar` being a symlink to the first, as docker does.
pub fn docker_archive(path: &Path, images: &[DockerImage<'_>]) {
    let mut outer = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut stored: Vec<String> = Vec::new();
    for image in images {
        let tars: Vec<&[u8]> = image.layers.iter().map(|(t, _)| t.as_slice()).collect();
        let config = config_json("amd64", json!({ "Cmd": ["/bin/sh"] }), &tars);
        let config_name = format!("{}.json", &digest::of(&config)[7..]);
        append(&mut outer, &config_name, &config);
        let mut layer_names = Vec::new();
        for (tar, comp) in &image.layers {
            let id = &digest::of(tar)[7..];
            let name = format!("{id}{}/layer.tar", stored.len());
            let first = stored.iter().find(|s| s.starts_with(id)).cloned();
            match first {
                Some(first) => {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(EntryType::Symlink);
                    h.set_size(0);
                    h.set_mode(0o777);
                    outer
                        .append_link(&mut h, &name, format!("../{first}"))
                        .expect("symlink member");
                }
                None => append(&mut outer, &name, &compress(tar, *comp)),
            }
            stored.push(name.clone());
            layer_names.push(name);
        }
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": image.repo_tags,
            "Layers": layer_names,
        }));
    }
    append(
        &mut outer,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest"),
    );
    std::fs::write(path, outer.into_inner().expect("outer tar")).expect("write archive");
}

/// Appends a regular member.
pub fn append(outer: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    outer
        .append_data(&mut h, name, data)
        .expect("append member");
}

/// Tars up a folder (an OCI layout) as `oci-archive` does.
pub fn tar_folder(folder: &Path, path: &Path) {
    let mut outer = tar::Builder::new(Vec::new());
    outer.append_dir_all(".", folder).expect("tar folder");
    std::fs::write(path, outer.into_inner().expect("tar")).expect("write tar");
}
