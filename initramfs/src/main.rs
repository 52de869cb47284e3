//! `berth-image`: build berth images, boot them under QEMU, make busybox
//! rootfs folders. Arguments are parsed by hand: three verbs, few flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use berth_image::build::{self, BuildOptions};
use berth_image::busybox;
use berth_image::qemu::{self, Outcome, QemuOptions};

const USAGE: &str = "\
usage:
  berth-image build MANIFEST -o DIR [--skip-validation] [--no-verity]
      build DIR/vmlinuz, DIR/initramfs.img, DIR/root.img from MANIFEST, the
      root image with a dm-verity hash tree whose root hash goes to
      DIR/root.verity; --no-verity leaves both out (development: the node
      boots unverified, with a warning)
  berth-image run DIR [--timeout SECONDS] [--forward HOST:GUEST]...
      boot DIR under qemu-system-x86_64 (TCG) with the console here, with
      berth.verity= from DIR/root.verity if there is one; Ctrl-A X quits.
      Exits 124 at the timeout, 128 + N when signal N (SIGTERM, SIGINT,
      SIGHUP) stopped it (QEMU is stopped too), else with QEMU's status.
      --forward: TCP port HOST on 127.0.0.1 reaches the guest's port GUEST
  berth-image busybox-rootfs DIR
      make a minimal container rootfs in DIR from /bin/busybox (busybox-static)
  berth-image --help

environment:
  SOURCE_DATE_EPOCH  timestamp of every file in the images (default 0)
  BERTH_CACHE        kernel cache (default $XDG_CACHE_HOME/berth or ~/.cache/berth)
  BERTH_KERNEL_DIR   use this unpacked kernel tree instead of downloading one
  BERTH_BINARY       use this static berth binary instead of building one
";

/// Exit status of `run` when the timeout stopped QEMU, as timeout(1).
const TIMED_OUT: u8 = 124;

#[derive(Debug, PartialEq, Eq)]
enum Cli {
    Help,
    Build {
        manifest: PathBuf,
        out: PathBuf,
        skip_validation: bool,
        no_verity: bool,
    },
    Run {
        dir: PathBuf,
        timeout: Option<Duration>,
        /// `--forward HOST:GUEST`: TCP ports forwarded from 127.0.0.1.
        forwards: Vec<(u16, u16)>,
    },
    BusyboxRootfs {
        dir: PathBuf,
    },
}

fn parse(args: &[String]) -> Result<Cli, String> {
    let mut it = args.iter();
    let verb = it.next().map(String::as_str);
    let rest: Vec<&str> = it.map(String::as_str).collect();
    if rest.iter().any(|a| matches!(*a, "-h" | "--help")) {
        return Ok(Cli::Help);
    }
    match verb {
        None | Some("-h" | "--help" | "help") => Ok(Cli::Help),
        Some("build") => {
            let (mut manifest, mut out, mut skip, mut no_verity) = (None, None, false, false);
            let mut rest = rest.into_iter();
            while let Some(arg) = rest.next() {
                match arg {
                    "-o" | "--out" => out = Some(rest.next().ok_or("-o needs a folder")?),
                    "--skip-validation" => skip = true,
                    "--no-verity" => no_verity = true,
                    a if a.starts_with('-') => return Err(format!("build: unknown option {a}")),
                    a if manifest.is_none() => manifest = Some(a),
                    a => return Err(format!("build: unexpected argument {a}")),
                }
            }
            Ok(Cli::Build {
                manifest: manifest.ok_or("build: which MANIFEST?")?.into(),
                out: out.ok_or("build: -o DIR is required")?.into(),
                skip_validation: skip,
                no_verity,
            })
        }
        Some("run") => {
            let (mut dir, mut timeout, mut forwards) = (None, None, Vec::new());
            let mut rest = rest.into_iter();
            while let Some(arg) = rest.next() {
                match arg {
                    "--timeout" => {
                        let v = rest.next().ok_or("--timeout needs seconds")?;
                        let secs: f64 = v
                            .parse()
                            .map_err(|_| format!("--timeout {v}: not a number of seconds"))?;
                        let t = Duration::try_from_secs_f64(secs)
                            .map_err(|_| format!("--timeout {v}: not a number of seconds"))?;
                        timeout = Some(t);
                    }
                    "--forward" => {
                        let v = rest.next().ok_or("--forward needs HOST:GUEST")?;
                        forwards.push(forward(v)?);
                    }
                    a if a.starts_with('-') => return Err(format!("run: unknown option {a}")),
                    a if dir.is_none() => dir = Some(a),
                    a => return Err(format!("run: unexpected argument {a}")),
                }
            }
            Ok(Cli::Run {
                dir: dir.ok_or("run: which DIR?")?.into(),
                timeout,
                forwards,
            })
        }
        Some("busybox-rootfs") => match rest.as_slice() {
            [dir] if !dir.starts_with('-') => Ok(Cli::BusyboxRootfs { dir: dir.into() }),
            _ => Err("busybox-rootfs: expected exactly one DIR".to_owned()),
        },
        Some(other) => Err(format!("unknown command {other}")),
    }
}

/// `HOST:GUEST`, two TCP ports.
fn forward(v: &str) -> Result<(u16, u16), String> {
    let bad = || format!("--forward {v}: expected HOST:GUEST, two ports 1-65535");
    let (host, guest) = v.split_once(':').ok_or_else(bad)?;
    let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
    Ok((port(host)?, port(guest)?))
}

/// Prints an error and every cause below it; multi-line causes (a list of
/// manifest errors) are indented under their heading.
fn report(err: &dyn std::error::Error) {
    eprintln!("berth-image: error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        let mut lines = text.lines();
        eprintln!("  caused by: {}", lines.next().unwrap_or_default());
        for line in lines {
            eprintln!("    {line}");
        }
        source = cause.source();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(msg) => {
            eprintln!("berth-image: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result: Result<ExitCode, Box<dyn std::error::Error>> = match cli {
        Cli::Help => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Cli::Build {
            manifest,
            out,
            skip_validation,
            no_verity,
        } => run_build(manifest, out, skip_validation, no_verity),
        Cli::Run {
            dir,
            timeout,
            forwards,
        } => run_qemu(&dir, timeout, forwards),
        Cli::BusyboxRootfs { dir } => run_busybox(&dir),
    };
    result.unwrap_or_else(|e| {
        report(e.as_ref());
        ExitCode::FAILURE
    })
}

/// `busybox-rootfs DIR`, with DIR made absolute first so that errors name
/// it unambiguously.
fn run_busybox(dir: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let dir = std::path::absolute(dir)?;
    let applets = busybox::busybox_rootfs(Path::new(busybox::HOST_BUSYBOX), &dir)?;
    println!(
        "made {} with busybox and {} applets",
        dir.display(),
        applets.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_build(
    manifest: PathBuf,
    out: PathBuf,
    skip_validation: bool,
    no_verity: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let opts = BuildOptions {
        manifest,
        out,
        skip_validation,
        source_date_epoch: build::source_date_epoch_from_env()?,
        verity: !no_verity,
    };
    let report = build::build(&opts)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn run_qemu(
    dir: &Path,
    timeout: Option<Duration>,
    forwards: Vec<(u16, u16)>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let opts = QemuOptions {
        hostfwd: forwards,
        ..QemuOptions::new(dir)
    };
    match qemu::run(&opts, timeout)? {
        Outcome::TimedOut => {
            eprintln!("berth-image: timeout: stopped QEMU");
            Ok(ExitCode::from(TIMED_OUT))
        }
        Outcome::Exited(status) => Ok(ExitCode::from(exit_code(status))),
        Outcome::Stopped(signal) => {
            eprintln!("berth-image: {signal}: stopped QEMU");
            Ok(ExitCode::from(
                u8::try_from(128 + signal as i32).unwrap_or(1),
            ))
        }
    }
}

/// QEMU's own status, or 128 + signal like a shell.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_verbs() {
        assert_eq!(p(&[]), Ok(Cli::Help));
        assert_eq!(p(&["build", "m.toml", "--help"]), Ok(Cli::Help));
        assert_eq!(
            p(&["build", "m.toml", "-o", "out"]),
            Ok(Cli::Build {
                manifest: "m.toml".into(),
                out: "out".into(),
                skip_validation: false,
                no_verity: false,
            })
        );
        assert_eq!(
            p(&["build", "--skip-validation", "-o", "out", "m.toml"]),
            Ok(Cli::Build {
                manifest: "m.toml".into(),
                out: "out".into(),
                skip_validation: true,
                no_verity: false,
            })
        );
        assert_eq!(
            p(&["build", "m.toml", "--no-verity", "-o", "out"]),
            Ok(Cli::Build {
                manifest: "m.toml".into(),
                out: "out".into(),
                skip_validation: false,
                no_verity: true,
            })
        );
        assert_eq!(
            p(&["run", "out"]),
            Ok(Cli::Run {
                dir: "out".into(),
                timeout: None,
                forwards: Vec::new(),
            })
        );
        assert_eq!(
            p(&["run", "out", "--timeout", "2.5"]),
            Ok(Cli::Run {
                dir: "out".into(),
                timeout: Some(Duration::from_millis(2500)),
                forwards: Vec::new(),
            })
        );
        assert_eq!(
            p(&["run", "out", "--forward", "8080:80", "--forward", "2222:22"]),
            Ok(Cli::Run {
                dir: "out".into(),
                timeout: None,
                forwards: vec![(8080, 80), (2222, 22)],
            })
        );
        assert_eq!(
            p(&["busybox-rootfs", "r"]),
            Ok(Cli::BusyboxRootfs { dir: "r".into() })
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["build", "m.toml"][..],
            &["build", "-o"],
            &["build", "a", "b", "-o", "o"],
            &["run"],
            &["run", "d", "--timeout", "soon"],
            &["run", "d", "--timeout", "-1"],
            &["run", "d", "--forward"],
            &["run", "d", "--forward", "8080"],
            &["run", "d", "--forward", "0:80"],
            &["run", "d", "--forward", "8080:70000"],
            &["busybox-rootfs"],
            &["frobnicate"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} should fail");
        }
    }
}
