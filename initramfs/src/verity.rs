//! dm-verity for the root image, build side: a hash tree appended to
//! `root.img` by `veritysetup format`, and `root.verity` recording its root
//! hash for the kernel command line (`berth.verity=`).
//!
//! ```text
//! root.img:  | EROFS, padded to 4 KiB | verity superblock | hash tree |
//!            0                    HASH_OFFSET          +4096
//! ```
//!
//! Algorithm: pad the EROFS image to a whole number of 4 KiB blocks (the
//! data area), derive the salt as sha256 of that data and the UUID from the
//! salt, then run `veritysetup format` with the image as both data and hash
//! device, the hash area starting right after the data (`--hash-offset`),
//! sha256 and 4 KiB blocks, with the superblock (the default), so the
//! guest learns salt and sizes from the disk and needs only the root hash.
//! Salt and UUID are the only inputs veritysetup would otherwise pick at
//! random; deriving them from the content keeps two builds of the same
//! inputs byte-identical. The salt is not a secret: it only has to differ
//! between images, which a hash of their content does.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::rootimg;
use crate::tool::{ToolError, VERITYSETUP};

/// Data and hash block size.
pub const BLOCK: u64 = 4096;
/// The hash algorithm (the guest accepts only this one).
pub const ALGORITHM: &str = "sha256";

/// What `veritysetup format` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatParams {
    /// Bytes of data (the padded filesystem), also where the hash area
    /// starts.
    pub data_bytes: u64,
    /// Hex.
    pub salt: String,
    pub uuid: String,
}

/// A verity-protected image's figures: `OUT/root.verity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityInfo {
    /// Hex sha256: `berth.verity=` on the kernel command line.
    pub root_hash: String,
    /// Bytes of verified data at the start of the image.
    pub data_bytes: u64,
    /// Where the verity superblock and hash tree start.
    pub hash_offset: u64,
    pub salt: String,
    pub uuid: String,
}

/// Adding or reading the hash tree failed.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error("{step} {path}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("add the dm-verity hash tree to {image}")]
    Format {
        image: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("veritysetup printed no root hash for {image}: {output:?}")]
    NoRootHash { image: PathBuf, output: String },
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VerityError {
    let path = path.to_owned();
    move |source| VerityError::Io { step, path, source }
}

/// Extends `image` with zeros to a whole number of [`BLOCK`]s; its new
/// length.
pub fn pad_to_block(image: &Path) -> Result<u64, VerityError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(io("open", image))?;
    let len = file.metadata().map_err(io("measure", image))?.len();
    let padded = len.next_multiple_of(BLOCK);
    if padded != len {
        file.set_len(padded).map_err(io("pad", image))?;
    }
    Ok(padded)
}

/// The salt for data `bytes` of `image`: their sha256, in hex.
pub fn derived_salt(image: &Path, bytes: u64) -> Result<String, VerityError> {
    let file = File::open(image).map_err(io("open", image))?;
    let mut hasher = Sha256::new();
    let mut reader = file.take(bytes);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(io("read", image))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The verity UUID for `salt`, shaped like the filesystem's.
pub fn derived_uuid(salt: &str) -> String {
    rootimg::derived_uuid(&[b"berth dm-verity", salt.as_bytes()])
}

/// `veritysetup format`'s arguments (cryptsetup 2.6, Debian 12): data
/// and hash in the same file, the hash area after the data.
pub fn format_args(image: &Path, p: &FormatParams) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["format".into()];
    for a in [
        format!("--hash={ALGORITHM}"),
        format!("--data-block-size={BLOCK}"),
        format!("--hash-block-size={BLOCK}"),
        format!("--data-blocks={}", p.data_bytes / BLOCK),
        format!("--hash-offset={}", p.data_bytes),
        format!("--salt={}", p.salt),
        format!("--uuid={}", p.uuid),
    ] {
        args.push(a.into());
    }
    args.push(image.into());
    args.push(image.into());
    args
}

/// `veritysetup verify`'s arguments for an image made by [`format`].
pub fn verify_args(image: &Path, info: &VerityInfo) -> Vec<OsString> {
    vec![
        "verify".into(),
        format!("--hash-offset={}", info.hash_offset).into(),
        image.into(),
        image.into(),
        info.root_hash.clone().into(),
    ]
}

/// The `Root hash:` line of `veritysetup format`'s report.
pub fn root_hash_from_output(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| berth_config::cmdline::parse_root_hash(h).is_some())
}

/// Pads `image` and appends its hash tree (see the module docs).
pub fn format(image: &Path) -> Result<VerityInfo, VerityError> {
    let data_bytes = pad_to_block(image)?;
    let salt = derived_salt(image, data_bytes)?;
    let params = FormatParams {
        data_bytes,
        uuid: derived_uuid(&salt),
        salt,
    };
    let stdout = VERITYSETUP
        .output(VERITYSETUP.command().args(format_args(image, &params)))
        .map_err(|source| VerityError::Format {
            image: image.to_owned(),
            source,
        })?;
    let root_hash = root_hash_from_output(&stdout).ok_or_else(|| VerityError::NoRootHash {
        image: image.to_owned(),
        output: stdout.clone(),
    })?;
    Ok(VerityInfo {
        root_hash,
        data_bytes,
        hash_offset: data_bytes,
        salt: params.salt,
        uuid: params.uuid,
    })
}

/// Checks every block of `image` against `info.root_hash` on the host
/// (`veritysetup verify`, no device-mapper needed).
pub fn verify(image: &Path, info: &VerityInfo) -> Result<(), ToolError> {
    VERITYSETUP
        .output(VERITYSETUP.command().args(verify_args(image, info)))
        .map(|_| ())
}

const KEYS: [&str; 5] = ["ROOT_HASH", "DATA_BYTES", "HASH_OFFSET", "SALT", "UUID"];

impl VerityInfo {
    /// `root.verity`: shell-sourceable `KEY=VALUE` lines.
    pub fn to_file(&self) -> String {
        format!(
            "ROOT_HASH={}\nDATA_BYTES={}\nHASH_OFFSET={}\nSALT={}\nUUID={}\n",
            self.root_hash, self.data_bytes, self.hash_offset, self.salt, self.uuid
        )
    }

    /// Parses [`VerityInfo::to_file`]'s output; `path` names the file in
    /// errors. Blank lines and `#` comments are skipped; unknown keys are
    /// errors, so a typo is not silently a different image.
    pub fn parse(text: &str, path: &Path) -> Result<VerityInfo, VerityError> {
        let problem = |problem: String| VerityError::File {
            path: path.to_owned(),
            problem,
        };
        let mut values: [Option<&str>; 5] = [None; 5];
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| problem(format!("line {}: expected KEY=VALUE", n + 1)))?;
            let slot = KEYS
                .iter()
                .position(|k| *k == key)
                .ok_or_else(|| problem(format!("line {}: unknown key {key}", n + 1)))?;
            values[slot] = Some(value);
        }
        let get = |i: usize| values[i].ok_or_else(|| problem(format!("no {}=", KEYS[i])));
        let number = |i: usize| -> Result<u64, VerityError> {
            let v = get(i)?;
            v.parse()
                .map_err(|_| problem(format!("{}={v}: not a number", KEYS[i])))
        };
        let root_hash = berth_config::cmdline::parse_root_hash(get(0)?).ok_or_else(|| {
            problem(format!(
                "ROOT_HASH={}: not 64 hex digits",
                values[0].unwrap_or_default()
            ))
        })?;
        Ok(VerityInfo {
            root_hash,
            data_bytes: number(1)?,
            hash_offset: number(2)?,
            salt: get(3)?.to_owned(),
            uuid: get(4)?.to_owned(),
        })
    }

    /// `DIR/root.verity`, or `None` where the image was built without.
    pub fn read(dir: &Path) -> Result<Option<VerityInfo>, VerityError> {
        let path = dir.join(crate::build::ROOT_VERITY);
        match std::fs::read_to_string(&path) {
            Ok(text) => VerityInfo::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(VerityError::Io {
                step: "read",
                path,
                source,
            }),
        }
    }

    /// The kernel command-line option that makes stage 0 verify the root.
    pub fn cmdline_option(&self) -> String {
        format!("berth.verity={}", self.root_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcd";

    fn info() -> VerityInfo {
        VerityInfo {
            root_hash: ROOT.into(),
            data_bytes: 204_800,
            hash_offset: 204_800,
            salt: "00ff".into(),
            uuid: "aaaaaaaa-bbbb-8ccc-9ddd-eeeeeeeeeeee".into(),
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn veritysetup_arguments() {
        let p = FormatParams {
            data_bytes: 204_800,
            salt: "00ff".into(),
            uuid: "u".into(),
        };
        assert_eq!(
            strings(format_args(Path::new("/o/root.img"), &p)),
            [
                "format",
                "--hash=sha256",
                "--data-block-size=4096",
                "--hash-block-size=4096",
                "--data-blocks=50",
                "--hash-offset=204800",
                "--salt=00ff",
                "--uuid=u",
                "/o/root.img",
                "/o/root.img",
            ]
        );
        assert_eq!(
            strings(verify_args(Path::new("/o/root.img"), &info())),
            [
                "verify",
                "--hash-offset=204800",
                "/o/root.img",
                "/o/root.img",
                ROOT
            ]
        );
    }

    #[test]
    fn root_hash_from_report() {
        let report = format!(
            "VERITY header information for img\nUUID:            \taaaa\nHash type:       \t1\nSalt:            \t00ff\nRoot hash:      \t{}\n",
            ROOT.to_uppercase()
        );
        let table = [
            (report.as_str(), Some(ROOT.to_owned())),
            ("Root hash: \tnothex\n", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(root_hash_from_output(text), want, "{text:?}");
        }
    }

    #[test]
    fn file_round_trip() {
        let i = info();
        let text = i.to_file();
        assert_eq!(
            text,
            format!("ROOT_HASH={ROOT}\nDATA_BYTES=204800\nHASH_OFFSET=204800\nSALT=00ff\nUUID=aaaaaaaa-bbbb-8ccc-9ddd-eeeeeeeeeeee\n")
        );
        let path = Path::new("/o/root.verity");
        assert_eq!(VerityInfo::parse(&text, path).expect("parse"), i);
        let commented = format!("# made by berth-image\n\n{text}");
        assert_eq!(VerityInfo::parse(&commented, path).expect("parse"), i);
        assert_eq!(i.cmdline_option(), format!("berth.verity={ROOT}"));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let good = info().to_file();
        let table = [
            (
                good.replace("ROOT_HASH=4bd5", "ROOT_HASH=zzz5"),
                "ROOT_HASH=zzz5",
            ),
            (
                good.replace("DATA_BYTES=204800", "DATA_BYTES=lots"),
                "DATA_BYTES=lots: not a number",
            ),
            (good.replace("SALT=00ff\n", ""), "no SALT="),
            (format!("{good}COLOUR=red\n"), "line 6: unknown key COLOUR"),
            (format!("{good}junk\n"), "line 6: expected KEY=VALUE"),
        ];
        for (text, want) in table {
            let err = VerityInfo::parse(&text, Path::new("/o/root.verity")).expect_err(want);
            let msg = err.to_string();
            assert!(msg.starts_with("/o/root.verity: "), "{msg}");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
    }

    #[test]
    fn read_missing_file_is_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(VerityInfo::read(tmp.path()).expect("read"), None);
        std::fs::write(tmp.path().join("root.verity"), info().to_file()).expect("write");
        assert_eq!(VerityInfo::read(tmp.path()).expect("read"), Some(info()));
    }

    #[test]
    fn padding_and_derived_salt() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a");
        std::fs::write(&a, b"erofs").expect("write");
        assert_eq!(pad_to_block(&a).expect("pad"), 4096);
        assert_eq!(pad_to_block(&a).expect("pad again"), 4096, "already padded");
        let salt = derived_salt(&a, 4096).expect("salt");
        assert_eq!(salt.len(), 64);
        assert_eq!(salt, derived_salt(&a, 4096).expect("same"), "stable");
        let b = tmp.path().join("b");
        std::fs::write(&b, b"erofZ").expect("write");
        pad_to_block(&b).expect("pad");
        assert_ne!(
            salt,
            derived_salt(&b, 4096).expect("other"),
            "content-derived"
        );
        // Only the data counts: a hash tree behind it does not change it.
        let mut longer = std::fs::read(&a).expect("read");
        longer.extend([1u8; 4096]);
        std::fs::write(&b, longer).expect("write");
        assert_eq!(salt, derived_salt(&b, 4096).expect("data only"));
        assert_ne!(derived_uuid(&salt), derived_uuid("00"));
        assert_eq!(derived_uuid(&salt), derived_uuid(&salt));
    }

    fn have(program: &str) -> bool {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file())
    }

    /// A real EROFS image with its hash tree: `veritysetup verify` takes
    /// it, rebuilding gives the same bytes, and one flipped data byte
    /// makes the verification fail.
    #[test]
    fn verity_image_verifies_and_detects_a_flipped_byte() {
        if !have("veritysetup") || !have("mkfs.erofs") {
            eprintln!("skipped: needs veritysetup (cryptsetup-bin) and mkfs.erofs (erofs-utils)");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).expect("mkdir");
        std::fs::write(tree.join("etc/hello"), "hello, verified world\n").expect("write");
        std::fs::write(tree.join("big"), vec![0x42u8; 20_000]).expect("write");
        let opts = rootimg::ErofsOptions {
            timestamp: 0,
            uuid: "aaaaaaaa-bbbb-8ccc-9ddd-eeeeeeeeeeee".into(),
            compression: None,
        };
        let build = |name: &str| {
            let img = tmp.path().join(name);
            rootimg::make_image(&tree, &img, &opts).expect("mkfs.erofs");
            let info = format(&img).expect("veritysetup format");
            (img, info)
        };
        let (img, info) = build("a.img");
        assert_eq!(info.hash_offset, info.data_bytes);
        assert_eq!(info.data_bytes % BLOCK, 0);
        let len = std::fs::metadata(&img).expect("stat").len();
        assert!(len >= info.data_bytes + 2 * BLOCK, "superblock and tree");
        verify(&img, &info).expect("veritysetup verify accepts the image");

        let (again, info_again) = build("b.img");
        assert_eq!(info_again, info, "same inputs, same root hash");
        assert_eq!(
            std::fs::read(&img).expect("read"),
            std::fs::read(&again).expect("read"),
            "byte-identical"
        );

        let mut bytes = std::fs::read(&img).expect("read");
        bytes[8192] ^= 1;
        std::fs::write(&img, &bytes).expect("write");
        let err = verify(&img, &info).expect_err("a flipped byte must fail");
        assert!(matches!(err, ToolError::Failed { .. }), "{err}");
    }
}
