//! The operator verbs of the `berth` binary.

use std::path::Path;

use berth_config::Manifest;

pub const USAGE: &str = "usage:
  berth validate MANIFEST   check a manifest and print every error
  berth init [-g] [-s] -- CMD [ARG...]
                            run CMD as a container's init: reap, forward
                            signals, exit with CMD's status
  berth help                this text
  berth version             print the version
As PID 1 with no verb, berth boots the node.";

/// Runs a verb and returns its exit code, or `None` when `args` names no
/// verb (then PID 1 boots).
pub fn dispatch(args: &[String]) -> Option<i32> {
    let verb = args.get(1)?;
    Some(match verb.as_str() {
        "validate" => match args.get(2..) {
            Some([path]) => validate(Path::new(path)),
            _ => usage_error("validate takes one MANIFEST"),
        },
        // A bare `init` word on the kernel command line reaches the node's
        // PID 1 as an argument: boot rather than run `berth init` without
        // a command.
        "init" if args.len() == 2 && std::process::id() == 1 => return None,
        "init" => crate::container_init::run(args.get(2..).unwrap_or_default()),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            0
        }
        "version" | "--version" => {
            println!("berth {}", env!("CARGO_PKG_VERSION"));
            0
        }
        // The kernel passes unknown command-line words to init as
        // arguments; PID 1 boots regardless.
        _ if std::process::id() == 1 => return None,
        other => usage_error(&format!("unknown verb {other:?}")),
    })
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("berth: {msg}\n\n{USAGE}");
    2
}

fn validate(path: &Path) -> i32 {
    match Manifest::from_file(path) {
        Ok(m) => {
            println!(
                "{}: valid, {} container(s)",
                path.display(),
                m.containers.len()
            );
            0
        }
        Err(berth_config::LoadError::Invalid { errors, .. }) => {
            eprintln!("{}: {} error(s)", path.display(), errors.0.len());
            for e in &errors.0 {
                eprintln!("{e}");
            }
            1
        }
        Err(e) => {
            eprintln!("berth: {}", crate::fatal::chain(&e));
            1
        }
    }
}
