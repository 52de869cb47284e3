//! The operator verbs of the `berth` binary.

use std::path::Path;

use berth_config::Manifest;

pub const USAGE: &str = "usage:
  berth validate MANIFEST   check a manifest and print every error, and
                            a warning for each setting that weakens
                            isolation (exit 0 when only warnings)
  berth init [-g] [-s] -- CMD [ARG...]
                            run CMD as a container's init: reap, forward
                            signals, exit with CMD's status
  berth help                this text
  berth version             print the version

Control verbs (talk to PID 1 over its control socket):
  berth status [--json]     the node and every container
  berth logs [-f] [-n N] [--json] NAME
                            a container's last N lines (default 100);
                            -f then follows new lines
  berth logs --boot -K [-n N] [NAME]
                            the console lines of the K-th boot before
                            this one (kept on STATE), or NAME's
  berth dmesg [-n N] [--json]
                            the kernel log
  berth start|stop|restart NAME
  berth reboot|poweroff|halt
                            orderly shutdown, then the power action
  berth exec [--json] NAME -- CMD [ARG...]
                            run CMD in a container, print its output and
                            exit with its code (killed after 30 s)
  berth revoke SERIAL       refuse the client certificate SERIAL on the
                            remote API from the next connection on
  berth reset --state       stop every container, empty STATE (volumes,
                            boot logs, everything kept there) and
                            reboot; root on the node only
  berth raw [--repeat N] [--times] < REQUEST
                            send standard input as is (N times) and
                            print the last answer
  --socket PATH             the control socket (default $BERTH_SOCKET,
                            else /run/berth/control.sock)
  --json                    print the result as JSON (follow: one line
                            per log line)
  exit codes: 0 success, 1 PID 1 answered with an error, 2 usage error,
  3 cannot reach the socket or no valid answer; exec: CMD's code

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
        "raw" if std::process::id() != 1 => {
            crate::client::raw::run(args.get(2..).unwrap_or_default())
        }
        // Control verbs talk to PID 1, so PID 1 never runs them: a `halt`
        // word on the kernel command line must not end the boot.
        v if crate::client::is_client_word(v) && std::process::id() != 1 => {
            crate::client::run(args.get(1..).unwrap_or_default())
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
            let warnings = m.warnings();
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: valid, {} container(s), {} warning(s)",
                path.display(),
                m.containers.len(),
                warnings.len()
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
