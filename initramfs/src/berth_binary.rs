//! The static `berth` binary of this workspace, which becomes both `/init`
//! of the initramfs and `/sbin/init` of the root image.
//!
//! Built with `+crt-static` for the explicit host target (without
//! `--target`, RUSTFLAGS would also apply to build scripts and proc macros,
//! which cannot be static), into its own target folder
//! `target/static`: an outer cargo (running these tests) holds the lock of
//! `target/`, and different RUSTFLAGS would throw away its fingerprints.
//! libseccomp is linked statically through `.cargo/config.toml`'s `[env]`.
//! Its relative relocations are packed (`DT_RELR`, glibc 2.36 and binutils
//! 2.38 or later): the static-pie start-up reads 5 KiB of them instead of
//! 360 KiB of `.rela.dyn`, which took 0.36 MiB off the binary and about
//! 0.4 MiB off PID 1's RSS, with ASLR unchanged.
//!
//! `BERTH_BINARY=PATH` uses a prebuilt file instead. Either way the result
//! must be a static x86-64 ELF: the images carry no dynamic loader.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::elf::{self, ElfError};
use crate::tool::{Tool, ToolError};

const TARGET: &str = "x86_64-unknown-linux-gnu";
/// RUSTFLAGS of the static build; `scripts/test.sh` uses the same, so
/// that its build and the tests' share one fingerprint.
pub const STATIC_RUSTFLAGS: &str =
    "-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs";
const CARGO: Tool = Tool {
    program: "cargo",
    package: "cargo (or rustup)",
};

/// Getting the berth binary failed.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("build the static berth binary (cargo build --release -p berth --target {TARGET})")]
    Build(#[source] ToolError),
    #[error("check the berth binary {path}")]
    NotStatic {
        path: PathBuf,
        #[source]
        source: ElfError,
    },
}

/// The workspace this crate was built from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Where the static build puts the binary.
pub fn static_binary_path(workspace: &Path) -> PathBuf {
    workspace
        .join("target/static")
        .join(TARGET)
        .join("release/berth")
}

/// `BERTH_BINARY` if set, else a fresh static build (a no-op when nothing
/// changed); verified static either way.
pub fn berth_binary() -> Result<PathBuf, BinaryError> {
    let path = match std::env::var_os("BERTH_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build(&workspace_root())?,
    };
    elf::check_static_x86_64(&path).map_err(|source| BinaryError::NotStatic {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The cargo invocation of the static build.
pub fn build_command(workspace: &Path) -> Command {
    // Under `cargo test`, CARGO names the cargo that runs us: use the same
    // toolchain.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| CARGO.program.into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "-p", "berth", "--target", TARGET])
        .current_dir(workspace)
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        // Would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", workspace.join("target/static"));
    cmd
}

fn build(workspace: &Path) -> Result<PathBuf, BinaryError> {
    eprintln!("berth-image: building the static berth binary");
    CARGO
        .status(&mut build_command(workspace))
        .map_err(BinaryError::Build)?;
    Ok(static_binary_path(workspace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_command_is_static_and_isolated() {
        let ws = Path::new("/ws");
        let cmd = build_command(ws);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["build", "--release", "-p", "berth", "--target", TARGET]
        );
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&("RUSTFLAGS".as_ref(), Some(STATIC_RUSTFLAGS.as_ref()))));
        // scripts/test.sh builds first with the same flags; different ones
        // would make every test build the binary again.
        let script = std::fs::read_to_string(workspace_root().join("scripts/test.sh"))
            .expect("read scripts/test.sh");
        assert!(
            script.contains(&format!("RUSTFLAGS=\"{STATIC_RUSTFLAGS}\"")),
            "scripts/test.sh does not build with {STATIC_RUSTFLAGS}"
        );
        assert!(envs.contains(&(
            "CARGO_TARGET_DIR".as_ref(),
            Some(Path::new("/ws/target/static").as_os_str())
        )));
        assert!(envs.contains(&("CARGO_ENCODED_RUSTFLAGS".as_ref(), None)));
        assert_eq!(cmd.get_current_dir(), Some(ws));
        assert_eq!(
            static_binary_path(ws),
            Path::new("/ws/target/static/x86_64-unknown-linux-gnu/release/berth")
        );
    }

    #[test]
    fn workspace_root_holds_this_crate() {
        assert!(workspace_root().join("initramfs/Cargo.toml").is_file());
    }
}
