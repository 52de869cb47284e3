//! `berth-image`: build berth images, boot them under QEMU, make busybox
//! rootfs folders. Arguments are parsed by hand: three verbs, few flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use berth_image::build::{self, BuildOptions};
use berth_image::busybox;
use berth_image::qemu::{self, Boot, Disk, Interface, Outcome, QemuOptions, Writes};

const USAGE: &str = "\
usage:
  berth-image build MANIFEST -o DIR [--skip-validation] [--no-verity] [--qcow2]
      build DIR/vmlinuz, DIR/initramfs.img, DIR/root.img from MANIFEST, the
      root image with a dm-verity hash tree whose root hash goes to
      DIR/root.verity; --no-verity leaves both out (development: the node
      boots unverified, with a warning). DIR/disk.img is the whole node
      disk (GPT: ESP with systemd-boot, ROOT-A, ROOT-B, STATE), sparse, to
      write to a drive; --qcow2 also writes DIR/disk.qcow2 (clouds, libvirt)
  berth-image run DIR [--direct] [--nvme | --sata] [--fresh] [--disk-size SIZE]
                      [--timeout SECONDS] [--forward HOST:GUEST]...
      boot DIR under qemu-system-x86_64 (TCG) with the console here; Ctrl-A X
      quits. By default as a real machine: OVMF firmware, systemd-boot, the
      ESP's boot entry, from DIR/disk.img. Writes go to DIR/node.qcow2, an
      overlay that keeps STATE between runs and leaves disk.img as built
      (made when missing, SIZE big, default 8G, so STATE grows into it on
      first boot; made afresh when disk.img was rebuilt, or with --fresh).
      --direct: start the kernel directly (-kernel, berth.verity= from
      DIR/root.verity), skipping firmware and boot loader: faster, for
      development. --nvme, --sata: attach the disk as NVMe or SATA instead
      of virtio. Exits 124 at the timeout, 128 + N when signal N (SIGTERM,
      SIGINT, SIGHUP) stopped it (QEMU is stopped too), else with QEMU's
      status. --forward: TCP port HOST on 127.0.0.1 reaches the guest's
      port GUEST
  berth-image ca init DIR
      make a certificate authority for the node's API: DIR/ca.pem (for the
      manifest's api.ca) and its key DIR/ca.key
  berth-image ca issue DIR --role reader|operator|admin --name NAME [--ttl TTL]
      issue a client certificate from the CA in DIR: DIR/NAME.pem and
      DIR/NAME.key, the role in its organisation, valid for TTL (30d, 12h,
      90m; default 24h); prints its serial number (what api.revoked and
      `berth revoke` name) and its validity
  berth-image ca issue DIR --node NAME [--ip ADDR]... [--ttl TTL]
      issue a node's certificate (for the manifest's api.certificate and
      api.key) for NAME and each ADDR, valid for TTL (default 365d):
      operators whose config names DIR/ca.pem as the context's ca then
      check nodes against it instead of pinning them
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
/// `--disk-size` unless given.
const DEFAULT_DISK_SIZE: u64 = 8 << 30;

#[derive(Debug, PartialEq, Eq)]
enum Cli {
    Help,
    Build {
        manifest: PathBuf,
        out: PathBuf,
        skip_validation: bool,
        no_verity: bool,
        qcow2: bool,
    },
    Run(RunArgs),
    BusyboxRootfs {
        dir: PathBuf,
    },
    CaInit {
        dir: PathBuf,
    },
    CaIssue {
        dir: PathBuf,
        role: berth_config::api::Role,
        name: String,
        ttl: Duration,
    },
    CaIssueNode {
        dir: PathBuf,
        name: String,
        ips: Vec<std::net::IpAddr>,
        ttl: Duration,
    },
}

/// `berth-image run`'s arguments.
#[derive(Debug, PartialEq, Eq)]
struct RunArgs {
    dir: PathBuf,
    timeout: Option<Duration>,
    /// `--forward HOST:GUEST`: TCP ports forwarded from 127.0.0.1.
    forwards: Vec<(u16, u16)>,
    /// `--direct`: `-kernel` instead of OVMF.
    direct: bool,
    interface: Interface,
    /// `--fresh`: remake the overlay.
    fresh: bool,
    /// `--disk-size`: of a new overlay, bytes.
    disk_size: u64,
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
        Some("build") => parse_build(rest),
        Some("run") => parse_run(rest).map(Cli::Run),
        Some("ca") => parse_ca(rest),
        Some("busybox-rootfs") => match rest.as_slice() {
            [dir] if !dir.starts_with('-') => Ok(Cli::BusyboxRootfs { dir: dir.into() }),
            _ => Err("busybox-rootfs: expected exactly one DIR".to_owned()),
        },
        Some(other) => Err(format!("unknown command {other}")),
    }
}

fn parse_ca(rest: Vec<&str>) -> Result<Cli, String> {
    use berth_config::api::Role;
    let mut it = rest.into_iter();
    let verb = it.next();
    let mut dir = None;
    let (mut role, mut name, mut ttl) = (None, None, None);
    let (mut node, mut ips) = (None, Vec::new());
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or(format!("ca: {flag} needs a value"));
        match arg {
            "--role" => {
                let v = value("--role")?;
                role = Some(Role::parse(v).ok_or(format!(
                    "ca issue: --role is reader, operator or admin, got {v:?}"
                ))?);
            }
            "--name" => name = Some(value("--name")?),
            "--node" => node = Some(value("--node")?),
            "--ip" => {
                let v = value("--ip")?;
                ips.push(
                    v.parse()
                        .map_err(|_| format!("ca issue: --ip takes an address, got {v:?}"))?,
                );
            }
            "--ttl" => ttl = Some(berth_image::ca::parse_ttl(value("--ttl")?)?),
            a if a.starts_with('-') => return Err(format!("ca: unknown option {a}")),
            a if dir.is_none() => dir = Some(PathBuf::from(a)),
            a => return Err(format!("ca: unexpected argument {a}")),
        }
    }
    let dir = dir.ok_or("ca: which DIR?")?;
    match verb {
        Some("init") if role.is_none() && name.is_none() && ttl.is_none() => {
            Ok(Cli::CaInit { dir })
        }
        Some("init") => Err("ca init takes only DIR".into()),
        Some("issue") if node.is_some() => {
            if role.is_some() || name.is_some() {
                return Err("ca issue: --node NAME makes a node's certificate; --role and --name are for people".into());
            }
            let name = node.unwrap_or_default();
            check_name(name)?;
            Ok(Cli::CaIssueNode {
                dir,
                name: name.to_owned(),
                ips,
                ttl: ttl.unwrap_or(berth_image::ca::DEFAULT_NODE_TTL),
            })
        }
        Some("issue") if !ips.is_empty() => Err("ca issue: --ip goes with --node".into()),
        Some("issue") => {
            let name = name.ok_or("ca issue: --name NAME is required")?;
            check_name(name)?;
            Ok(Cli::CaIssue {
                dir,
                role: role.ok_or("ca issue: --role reader|operator|admin is required")?,
                name: name.to_owned(),
                ttl: ttl.unwrap_or(berth_image::ca::DEFAULT_TTL),
            })
        }
        _ => Err("ca: init DIR, or issue DIR --role ROLE --name NAME".into()),
    }
}

/// A certificate's name names its files too.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        || name.starts_with('.')
    {
        return Err(format!(
            "ca issue: a name is letters, digits, '-', '_', '.', '@' (it names the files), got {name:?}"
        ));
    }
    Ok(())
}

fn run_ca(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use berth_image::ca;
    match cli {
        Cli::CaInit { dir } => {
            let cert = ca::init(&dir)?;
            println!(
                "made the CA {} (and its key {}, keep it safe)\nname it in the manifest: [api] ca = [\"{}\"]",
                cert.display(),
                dir.join(ca::CA_KEY).display(),
                cert.display()
            );
        }
        Cli::CaIssue {
            dir,
            role,
            name,
            ttl,
        } => {
            let issued = ca::issue(&dir, role, &name, ttl)?;
            println!(
                "issued {} and {}\n  name {name}, role {role}, serial {}\n  valid from {} to {} ({}; --ttl sets it)",
                issued.cert.display(),
                issued.key.display(),
                issued.serial,
                ca::show_time(issued.not_before),
                ca::show_time(issued.not_after),
                ca::show_ttl(ttl)
            );
        }
        Cli::CaIssueNode {
            dir,
            name,
            ips,
            ttl,
        } => {
            let issued = ca::issue_node(&dir, &name, &ips, ttl)?;
            println!(
                "issued the node certificate {} and its key {}\n  for {name}{}, serial {}\n  valid from {} to {} ({})\nname them in the node's manifest: [api] certificate and key",
                issued.cert.display(),
                issued.key.display(),
                ips.iter().map(|ip| format!(", {ip}")).collect::<String>(),
                issued.serial,
                ca::show_time(issued.not_before),
                ca::show_time(issued.not_after),
                ca::show_ttl(ttl)
            );
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_build(rest: Vec<&str>) -> Result<Cli, String> {
    let (mut manifest, mut out) = (None, None);
    let (mut skip, mut no_verity, mut qcow2) = (false, false, false);
    let mut rest = rest.into_iter();
    while let Some(arg) = rest.next() {
        match arg {
            "-o" | "--out" => out = Some(rest.next().ok_or("-o needs a folder")?),
            "--skip-validation" => skip = true,
            "--no-verity" => no_verity = true,
            "--qcow2" => qcow2 = true,
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
        qcow2,
    })
}

fn parse_run(rest: Vec<&str>) -> Result<RunArgs, String> {
    let (mut dir, mut timeout, mut forwards) = (None, None, Vec::new());
    let (mut direct, mut fresh, mut interface) = (false, false, None);
    let mut disk_size = DEFAULT_DISK_SIZE;
    let mut set_interface = |flag: &str, i: Interface| match interface.replace(i) {
        Some(other) if other != i => Err(format!("run: {flag} and another disk interface")),
        _ => Ok(()),
    };
    let mut rest = rest.into_iter();
    while let Some(arg) = rest.next() {
        match arg {
            "--timeout" => {
                let v = rest.next().ok_or("--timeout needs seconds")?;
                let bad = || format!("--timeout {v}: not a number of seconds");
                let secs: f64 = v.parse().map_err(|_| bad())?;
                timeout = Some(Duration::try_from_secs_f64(secs).map_err(|_| bad())?);
            }
            "--forward" => {
                let v = rest.next().ok_or("--forward needs HOST:GUEST")?;
                forwards.push(forward(v)?);
            }
            "--direct" => direct = true,
            "--fresh" => fresh = true,
            "--nvme" => set_interface(arg, Interface::Nvme)?,
            "--sata" => set_interface(arg, Interface::Sata)?,
            "--disk-size" => {
                let v = rest.next().ok_or("--disk-size needs a size (8G)")?;
                disk_size = qemu::parse_size(v).ok_or_else(|| {
                    format!("--disk-size {v}: expected bytes or a K, M, G or T size")
                })?;
            }
            a if a.starts_with('-') => return Err(format!("run: unknown option {a}")),
            a if dir.is_none() => dir = Some(a),
            a => return Err(format!("run: unexpected argument {a}")),
        }
    }
    Ok(RunArgs {
        dir: dir.ok_or("run: which DIR?")?.into(),
        timeout,
        forwards,
        direct,
        interface: interface.unwrap_or(Interface::Virtio),
        fresh,
        disk_size,
    })
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
            qcow2,
        } => run_build(BuildOptions {
            manifest,
            out,
            skip_validation,
            source_date_epoch: 0,
            verity: !no_verity,
            qcow2,
        }),
        Cli::Run(args) => run_qemu(args),
        Cli::BusyboxRootfs { dir } => run_busybox(&dir),
        ca @ (Cli::CaInit { .. } | Cli::CaIssue { .. } | Cli::CaIssueNode { .. }) => run_ca(ca),
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

fn run_build(mut opts: BuildOptions) -> Result<ExitCode, Box<dyn std::error::Error>> {
    opts.source_date_epoch = build::source_date_epoch_from_env()?;
    let report = build::build(&opts)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `run`: OVMF (or `--direct`) on the persistent overlay of `disk.img`;
/// a folder built before `disk.img` existed boots `root.img` directly.
fn run_qemu(args: RunArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut opts = QemuOptions {
        hostfwd: args.forwards,
        interface: args.interface,
        ..QemuOptions::new(&args.dir)
    };
    if opts.disk == Disk::Image {
        let node = qemu::prepare_node(&args.dir, args.disk_size, args.fresh)?;
        if let Some(note) = &node.note {
            eprintln!("berth-image: {note}");
        }
        opts.writes = Writes::Overlay(node.overlay);
        if !args.direct {
            opts.boot = Boot::Uefi { vars: node.vars };
        }
    } else if !args.direct {
        eprintln!(
            "berth-image: {} has no disk.img (built by an older berth-image): booting root.img directly",
            args.dir.display()
        );
    }
    match qemu::run(&opts, args.timeout)? {
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

    fn run(dir: &str) -> RunArgs {
        RunArgs {
            dir: dir.into(),
            timeout: None,
            forwards: Vec::new(),
            direct: false,
            interface: Interface::Virtio,
            fresh: false,
            disk_size: 8 << 30,
        }
    }

    fn build(skip_validation: bool, no_verity: bool, qcow2: bool) -> Cli {
        Cli::Build {
            manifest: "m.toml".into(),
            out: "out".into(),
            skip_validation,
            no_verity,
            qcow2,
        }
    }

    #[test]
    fn parses_verbs() {
        // (arguments, what they mean)
        let table: Vec<(&[&str], Cli)> = vec![
            (&[], Cli::Help),
            (&["build", "m.toml", "--help"], Cli::Help),
            (
                &["build", "m.toml", "-o", "out"],
                build(false, false, false),
            ),
            (
                &["build", "--skip-validation", "-o", "out", "m.toml"],
                build(true, false, false),
            ),
            (
                &["build", "m.toml", "--no-verity", "-o", "out"],
                build(false, true, false),
            ),
            (
                &["build", "m.toml", "-o", "out", "--qcow2"],
                build(false, false, true),
            ),
            (&["run", "out"], Cli::Run(run("out"))),
            (
                &["run", "out", "--timeout", "2.5"],
                Cli::Run(RunArgs {
                    timeout: Some(Duration::from_millis(2500)),
                    ..run("out")
                }),
            ),
            (
                &["run", "out", "--forward", "8080:80", "--forward", "2222:22"],
                Cli::Run(RunArgs {
                    forwards: vec![(8080, 80), (2222, 22)],
                    ..run("out")
                }),
            ),
            (
                &["run", "--direct", "out", "--nvme", "--fresh"],
                Cli::Run(RunArgs {
                    direct: true,
                    interface: Interface::Nvme,
                    fresh: true,
                    ..run("out")
                }),
            ),
            (
                &["run", "out", "--sata", "--disk-size", "20G"],
                Cli::Run(RunArgs {
                    interface: Interface::Sata,
                    disk_size: 20 << 30,
                    ..run("out")
                }),
            ),
            (
                &["busybox-rootfs", "r"],
                Cli::BusyboxRootfs { dir: "r".into() },
            ),
        ];
        for (args, want) in table {
            assert_eq!(p(args), Ok(want), "{args:?}");
        }
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
            &["run", "d", "--nvme", "--sata"],
            &["run", "d", "--disk-size"],
            &["run", "d", "--disk-size", "big"],
            &["run", "d", "--disk-size", "0"],
            &["busybox-rootfs"],
            &["frobnicate"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} should fail");
        }
    }
}
