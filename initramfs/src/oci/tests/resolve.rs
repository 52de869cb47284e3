//! Resolving images: OCI layouts (tags, nested indexes, platforms,
//! verification) and docker archives.

use serde_json::json;

use super::fixture::*;
use super::*;
use crate::oci::{ImageDefaults, OciError};

fn two_layers() -> Vec<(Vec<u8>, Comp)> {
    vec![
        (
            TarLayer::new()
                .dir("etc")
                .file("etc/os-release", b"ID=test\n")
                .tar(),
            Comp::Gzip,
        ),
        (TarLayer::new().file("hello", b"hi\n").tar(), Comp::Plain),
    ]
}

#[test]
fn oci_layout_with_two_layers_and_a_tag() {
    let s = Scene::new();
    let layout = s.path("layout");
    let mut image = OciImage::new(Some("1.0"), two_layers());
    image.config = json!({ "Entrypoint": ["/hello"], "Env": ["A=1"], "User": "nobody" });
    oci_layout(&layout, &[image]);

    let image = open(&oci_ref(&layout, Some("1.0"))).expect("open");
    assert_eq!(image.reference, format!("oci:{}:1.0", layout.display()));
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        image.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        image.layers[1].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    for layer in &image.layers {
        assert!(layer.digest.starts_with("sha256:") && layer.digest.len() == 71);
        let blob = layout.join("blobs/sha256").join(&layer.digest[7..]);
        assert_eq!(layer.size, Some(lmeta(&blob).len()));
    }
    let defaults = ImageDefaults::from_config(&image.config);
    assert_eq!(defaults.entrypoint, ["/hello"]);
    assert_eq!(defaults.env, [("A".to_owned(), "1".to_owned())]);
    assert_eq!(defaults.user.as_deref(), Some("nobody"));

    let dest = s.dest("rootfs");
    let report = s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(read(&dest.join("etc/os-release")), "ID=test\n");
    assert_eq!(read(&dest.join("hello")), "hi\n");
    assert_eq!(report.layers, 2);
    assert_eq!(report.files, 2);
}

#[test]
fn zstd_layers_and_oci_archives() {
    let s = Scene::new();
    let layout = s.path("layout");
    let layers = vec![(TarLayer::new().file("z", b"zstd!").tar(), Comp::Zstd)];
    oci_layout(&layout, &[OciImage::new(Some("z"), layers)]);
    let archive = s.path("image.tar");
    tar_folder(&layout, &archive);

    let refs = [
        oci_ref(&layout, Some("z")),
        oci_ref(&archive, Some("z")),
        docker_ref(&archive, None),
    ];
    for (i, r) in refs.iter().enumerate() {
        let image = open(r).unwrap_or_else(|e| panic!("open {r}: {e}"));
        let dest = s.dest(&format!("rootfs{i}"));
        s.unpack(&image, &dest, &Policy::default()).expect("unpack");
        assert_eq!(read(&dest.join("z")), "zstd!", "{r}");
    }
}

#[test]
fn tags_select_and_errors_list_them() {
    let s = Scene::new();
    let layout = s.path("layout");
    let layer = || vec![(TarLayer::new().file("f", b"").tar(), Comp::Plain)];
    oci_layout(
        &layout,
        &[
            OciImage::new(Some("1.0"), layer()),
            OciImage::new(Some("latest"), layer()),
        ],
    );
    assert!(open(&oci_ref(&layout, Some("latest"))).is_ok());
    let err = open(&oci_ref(&layout, Some("2.0"))).expect_err("no such tag");
    assert!(
        matches!(&err, OciError::NoSuchTag { tag, available, .. } if tag == "2.0" && available == "1.0, latest"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "oci:{}:2.0: no image tagged \"2.0\" (available: 1.0, latest)",
            layout.display()
        )
    );
    let err = open(&oci_ref(&layout, None)).expect_err("ambiguous");
    assert!(
        matches!(&err, OciError::Ambiguous { count: 2, available, .. } if available == "1.0, latest"),
        "{err}"
    );
}

#[test]
fn untagged_single_image_needs_no_tag() {
    let s = Scene::new();
    let layout = s.path("layout");
    oci_layout(
        &layout,
        &[OciImage::new(
            None,
            vec![(TarLayer::new().tar(), Comp::Plain)],
        )],
    );
    assert!(open(&oci_ref(&layout, None)).is_ok());
    assert!(matches!(
        open(&oci_ref(&layout, Some("x"))),
        Err(OciError::NoSuchTag { .. })
    ));
}

#[test]
fn nested_index_picks_linux_amd64() {
    let s = Scene::new();
    let layout = s.path("layout");
    let mut arm = OciImage::new(
        None,
        vec![(TarLayer::new().file("arch", b"arm64").tar(), Comp::Gzip)],
    );
    arm.arch = "arm64";
    let amd = OciImage::new(
        None,
        vec![(TarLayer::new().file("arch", b"amd64").tar(), Comp::Gzip)],
    );
    let mut arm_desc = put_image(&layout, &arm);
    arm_desc["platform"] = json!({ "os": "linux", "architecture": "arm64" });
    let mut amd_desc = put_image(&layout, &amd);
    amd_desc["platform"] = json!({ "os": "linux", "architecture": "amd64" });
    let nested = json!({ "schemaVersion": 2, "manifests": [arm_desc.clone(), amd_desc] });
    let mut index_desc = put_blob(
        &layout,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&nested).expect("json"),
    );
    index_desc["annotations"] = json!({ "org.opencontainers.image.ref.name": "multi" });
    // An arm64-only image next to it.
    let arm_only = json!({ "schemaVersion": 2, "manifests": [arm_desc] });
    let mut arm_only_desc = put_blob(
        &layout,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&arm_only).expect("json"),
    );
    arm_only_desc["annotations"] = json!({ "org.opencontainers.image.ref.name": "arm" });
    put_index(&layout, vec![index_desc, arm_only_desc]);

    let image = open(&oci_ref(&layout, Some("multi"))).expect("open");
    assert_eq!(image.config.architecture().to_string(), "amd64");
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(read(&dest.join("arch")), "amd64");

    let err = open(&oci_ref(&layout, Some("arm"))).expect_err("no amd64");
    assert!(
        matches!(&err, OciError::Platform { found, .. } if found == "linux/arm64"),
        "{err}"
    );
}

#[test]
fn single_image_for_another_platform_is_refused() {
    let s = Scene::new();
    let layout = s.path("layout");
    let mut image = OciImage::new(None, vec![]);
    image.arch = "arm64";
    oci_layout(&layout, &[image]);
    let err = open(&oci_ref(&layout, None)).expect_err("arm64");
    assert!(
        matches!(&err, OciError::Platform { found, .. } if found == "linux/arm64"),
        "{err}"
    );
}

#[test]
fn not_a_layout() {
    let s = Scene::new();
    let layout = s.path("layout");
    oci_layout(&layout, &[OciImage::new(None, vec![])]);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .expect("write");
    let err = open(&oci_ref(&layout, None)).expect_err("version");
    assert!(
        err.to_string()
            .contains("imageLayoutVersion Some(\"2.0.0\")"),
        "{err}"
    );
    std::fs::remove_file(layout.join("oci-layout")).expect("rm");
    let err = open(&oci_ref(&layout, None)).expect_err("no oci-layout");
    assert!(
        err.to_string()
            .contains("not an OCI image layout (no oci-layout)"),
        "{err}"
    );
    let err = open(&oci_ref(&s.path("missing"), None)).expect_err("missing");
    assert!(matches!(err, OciError::Io { step: "open", .. }), "{err}");
}

#[test]
fn corrupt_layer_fails_naming_blob_and_both_digests() {
    let s = Scene::new();
    let layout = s.path("layout");
    oci_layout(&layout, &[OciImage::new(None, two_layers())]);
    let image = open(&oci_ref(&layout, None)).expect("open");
    // Same size, one byte changed in the plain layer's content.
    let layer = &image.layers[1];
    let blob = layout.join("blobs/sha256").join(&layer.digest[7..]);
    let mut bytes = std::fs::read(&blob).expect("read");
    let at = bytes
        .windows(3)
        .position(|w| w == b"hi\n")
        .expect("content");
    bytes[at] = b'H';
    std::fs::write(&blob, &bytes).expect("write");

    let dest = s.dest("rootfs");
    let err = s
        .unpack(&image, &dest, &Policy::default())
        .expect_err("mismatch");
    match &err {
        OciError::DigestMismatch {
            blob: b,
            expected,
            actual,
        } => {
            assert_eq!(b, &blob.display().to_string());
            assert_eq!(expected, &layer.digest);
            assert_eq!(actual, &crate::oci::digest::of(&bytes));
        }
        other => panic!("want a digest mismatch, got {other}"),
    }
    assert!(err.to_string().contains(&layer.digest), "{err}");
    // The unverified layer did not become a store folder.
    assert!(!exists(&s.path("store").join(&layer.digest[7..])));

    // A blob with extra bytes fails on size.
    bytes[at] = b'h';
    bytes.extend([0; 512]);
    std::fs::write(&blob, &bytes).expect("write");
    let err = s
        .unpack(&image, &s.dest("rootfs2"), &Policy::default())
        .expect_err("size");
    assert!(
        matches!(&err, OciError::SizeMismatch { expected, .. } if Some(*expected) == layer.size),
        "{err}"
    );
}

#[test]
fn corrupt_config_or_manifest_fails_to_open() {
    let s = Scene::new();
    let layout = s.path("layout");
    let desc = put_image(&layout, &OciImage::new(None, two_layers()));
    put_index(&layout, vec![desc.clone()]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(&layout, &desc)).expect("read"))
            .expect("json");
    let config = blob_path(&layout, &manifest["config"]);
    let mut bytes = std::fs::read(&config).expect("read");
    bytes[0] = b' ';
    std::fs::write(&config, &bytes).expect("write");
    let err = open(&oci_ref(&layout, None)).expect_err("config mismatch");
    assert!(
        matches!(&err, OciError::DigestMismatch { blob, .. } if blob == &config.display().to_string()),
        "{err}"
    );

    // A digest that is a path is refused before it is used as one.
    let mut bad = desc.clone();
    bad["digest"] = json!("sha256:../../../../etc/passwd");
    put_index(&layout, vec![bad]);
    let err = open(&oci_ref(&layout, None)).expect_err("bad digest");
    assert!(err.to_string().contains("parse index.json"), "{err}");
    // Well-formed, but not sha256: never turned into a path either.
    let mut other = desc;
    other["digest"] = json!(format!("sha512:{}", "ab".repeat(64)));
    put_index(&layout, vec![other]);
    let err = open(&oci_ref(&layout, None)).expect_err("sha512");
    assert!(
        matches!(&err, OciError::BadDigest { why, .. } if why.contains("only sha256")),
        "{err}"
    );
}

#[test]
fn docker_25_archive_with_blobs_and_manifest_json() {
    let s = Scene::new();
    let layout = s.path("layout");
    let base = TarLayer::new().file("f", b"from blobs").tar();
    let desc = put_image(&layout, &OciImage::new(Some("1"), vec![(base, Comp::Gzip)]));
    put_index(&layout, vec![desc.clone()]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(&layout, &desc)).expect("read"))
            .expect("json");
    let member = |d: &serde_json::Value| {
        format!(
            "blobs/sha256/{}",
            &d["digest"].as_str().expect("digest")[7..]
        )
    };
    let docker_manifest = json!([{
        "Config": member(&manifest["config"]),
        "RepoTags": ["app:1"],
        "Layers": [member(&manifest["layers"][0])],
    }]);
    std::fs::write(
        layout.join("manifest.json"),
        serde_json::to_vec(&docker_manifest).expect("json"),
    )
    .expect("write");
    let archive = s.path("save.tar");
    tar_folder(&layout, &archive);

    let image = open(&docker_ref(&archive, Some("app:1"))).expect("open");
    assert_eq!(
        image.config_digest,
        manifest["config"]["digest"].as_str().expect("digest")
    );
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(read(&dest.join("f")), "from blobs");
}

#[test]
fn docker_archive_by_tag_verified_by_diff_ids() {
    let s = Scene::new();
    let archive = s.path("save.tar");
    let base = TarLayer::new()
        .dir("etc")
        .file("etc/os-release", b"ID=test\n")
        .tar();
    docker_archive(
        &archive,
        &[
            DockerImage {
                repo_tags: &["web:1.0", "registry.local:5000/web:latest"],
                layers: vec![
                    (base.clone(), Comp::Gzip),
                    (TarLayer::new().file("www", b"page").tar(), Comp::Plain),
                ],
            },
            DockerImage {
                repo_tags: &["db:latest"],
                layers: vec![
                    (base.clone(), Comp::Gzip),
                    (TarLayer::new().file("db", b"rows").tar(), Comp::Plain),
                ],
            },
        ],
    );
    for tag in ["1.0", "web:1.0", "registry.local:5000/web:latest"] {
        let image = open(&docker_ref(&archive, Some(tag))).unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(
            image.layers[0].digest,
            crate::oci::digest::of(&base),
            "{tag}"
        );
    }
    let err = open(&docker_ref(&archive, Some("latest"))).expect_err("two images tagged latest");
    assert!(matches!(err, OciError::Ambiguous { count: 2, .. }), "{err}");
    let err = open(&docker_ref(&archive, None)).expect_err("no tag");
    assert!(matches!(err, OciError::Ambiguous { count: 2, .. }), "{err}");

    // The db image's base layer.tar is a symlink member to the web one's.
    let image = open(&docker_ref(&archive, Some("db:latest"))).expect("db");
    let dest = s.dest("rootfs");
    s.unpack(&image, &dest, &Policy::default()).expect("unpack");
    assert_eq!(read(&dest.join("etc/os-release")), "ID=test\n");
    assert_eq!(read(&dest.join("db")), "rows");
}

#[test]
fn docker_archive_layer_not_matching_its_diff_id() {
    let s = Scene::new();
    let archive = s.path("save.tar");
    docker_archive(
        &archive,
        &[DockerImage {
            repo_tags: &["x:1"],
            layers: vec![(TarLayer::new().file("f", b"original").tar(), Comp::Plain)],
        }],
    );
    let mut bytes = std::fs::read(&archive).expect("read");
    let at = bytes
        .windows(8)
        .position(|w| w == b"original")
        .expect("content");
    bytes[at] = b'O';
    std::fs::write(&archive, &bytes).expect("write");
    let image = open(&docker_ref(&archive, None)).expect("open");
    let err = s
        .unpack(&image, &s.dest("rootfs"), &Policy::default())
        .expect_err("diff_id mismatch");
    match &err {
        OciError::DigestMismatch { blob, expected, .. } => {
            assert!(blob.contains("layer.tar (uncompressed, diff_id)"), "{blob}");
            assert_eq!(expected, &image.layers[0].digest);
        }
        other => panic!("want a digest mismatch, got {other}"),
    }
}

#[test]
fn compressed_docker_archive_is_refused_clearly() {
    let s = Scene::new();
    let archive = s.path("save.tar.gz");
    std::fs::write(&archive, compress(b"not really a tar", Comp::Gzip)).expect("write");
    let err = open(&docker_ref(&archive, None)).expect_err("compressed");
    assert!(err.to_string().contains("decompress it first"), "{err}");
}
