//! The operator verbs' command line, parsed into what to send and how to
//! show it. Pure: the environment's `BERTH_SOCKET` is passed in.

use std::path::PathBuf;

use berth_supervisor::api::{Power, Request, SOCKET_PATH};

/// The control verbs.
pub const VERBS: &[&str] = &[
    "status", "logs", "dmesg", "start", "stop", "restart", "reboot", "poweroff", "halt", "exec",
    "reset", "revoke",
];

/// One parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub socket: PathBuf,
    /// Print the result JSON instead of the human rendering.
    pub json: bool,
    pub request: Request,
    /// `--node NODE`: a node's API instead of the local socket.
    pub node: Option<String>,
    /// `--context NAME`: the config file's context to use.
    pub context: Option<String>,
}

/// Parses `args`, starting at the verb (`["logs", "-f", "web"]`).
/// `--socket PATH` and `--json` may appear anywhere; `--` ends options.
/// `exec` requires a `--` between its NAME and the command, so the
/// command's own options are never read as berth's.
pub fn parse(args: &[String], env_socket: Option<PathBuf>) -> Result<Invocation, String> {
    let mut socket = env_socket.unwrap_or_else(|| PathBuf::from(SOCKET_PATH));
    let mut json = false;
    let mut follow = false;
    let mut lines = None;
    let mut boot = None;
    let mut state = false;
    let (mut node, mut context) = (None, None);
    let mut words: Vec<&str> = Vec::new();
    // How many words came before `--`, once it was seen.
    let mut options_end: Option<usize> = None;
    let mut it = args.iter().map(String::as_str);
    while let Some(arg) = it.next() {
        if options_end.is_some() || !arg.starts_with('-') || arg == "-" {
            words.push(arg);
            continue;
        }
        match arg {
            "--" => options_end = Some(words.len()),
            "--json" => json = true,
            "-f" | "--follow" => follow = true,
            "--state" => state = true,
            "--node" => node = Some(value(arg, it.next())?.to_owned()),
            "--context" => context = Some(value(arg, it.next())?.to_owned()),
            "--socket" => socket = PathBuf::from(value(arg, it.next())?),
            "-n" | "--lines" => lines = Some(count(arg, value(arg, it.next())?)?),
            "--boot" => boot = Some(boot_number(value(arg, it.next())?)?),
            _ => {
                if let Some(v) = arg.strip_prefix("--node=") {
                    node = Some(value("--node", Some(v))?.to_owned());
                } else if let Some(v) = arg.strip_prefix("--context=") {
                    context = Some(value("--context", Some(v))?.to_owned());
                } else if let Some(v) = arg.strip_prefix("--socket=") {
                    socket = PathBuf::from(value("--socket", Some(v))?);
                } else if let Some(v) = arg.strip_prefix("--boot=") {
                    boot = Some(boot_number(v)?);
                } else if let Some(v) = arg.strip_prefix("--lines=") {
                    lines = Some(count("--lines", v)?);
                } else if let Some(v) = arg.strip_prefix("-n") {
                    lines = Some(count("-n", v)?);
                } else {
                    return Err(format!("unknown option {arg:?}"));
                }
            }
        }
    }
    let (verb, rest) = match words.split_first() {
        Some((verb, rest)) => (*verb, rest),
        None => return Err("no verb given".into()),
    };
    let request = match (verb, boot) {
        // The verb itself must come before the `--`.
        ("exec", None) => exec(rest, options_end.and_then(|n| n.checked_sub(1)))?,
        ("reset", None) => match (rest, state) {
            ([], true) => Request::Reset { state: true },
            ([], false) => {
                return Err("reset needs what to reset: --state (empty STATE, then reboot)".into())
            }
            ([extra, ..], _) => return Err(format!("reset takes no operand, got {extra:?}")),
        },
        (_, None) => build(verb, rest)?,
        ("logs", Some(boot)) if !follow => match rest {
            [] => Request::BootLog {
                boot,
                name: None,
                lines,
            },
            [name] => Request::BootLog {
                boot,
                name: Some((*name).to_owned()),
                lines,
            },
            _ => return Err("logs --boot takes at most one container NAME".into()),
        },
        ("logs", Some(_)) => return Err("logs --boot cannot follow (-f): that boot is over".into()),
        (_, Some(_)) => return Err(format!("{verb} does not take --boot")),
    };
    // Options a verb does not take are errors, not silently ignored: a
    // `berth status -f` that does not follow would surprise.
    if follow && !matches!(request, Request::Logs { .. }) {
        return Err(format!("{verb} does not take -f"));
    }
    if state && !matches!(request, Request::Reset { .. }) {
        return Err(format!("{verb} does not take --state"));
    }
    let request = match request {
        Request::Logs { name, .. } => Request::Logs {
            name,
            lines,
            follow,
        },
        Request::Dmesg { .. } => Request::Dmesg { lines },
        boot_log @ Request::BootLog { .. } => boot_log,
        other if lines.is_some() => return Err(format!("{} does not take -n", other.op())),
        other => other,
    };
    Ok(Invocation {
        socket,
        json,
        request,
        node,
        context,
    })
}

/// `--boot N`: -1 is the previous boot, -2 the one before.
fn boot_number(v: &str) -> Result<i32, String> {
    match v.parse::<i32>() {
        Ok(n) if n < 0 => Ok(n),
        _ => Err(format!(
            "--boot takes a negative number (-1: the previous boot), got {v:?}; this boot's lines are `berth logs NAME`"
        )),
    }
}

/// The request for a verb and its operands (options already taken out).
fn build(verb: &str, operands: &[&str]) -> Result<Request, String> {
    let name = || match operands {
        [name] => Ok((*name).to_owned()),
        _ => Err(format!("{verb} takes one container NAME")),
    };
    let none = |request: Request| match operands {
        [] => Ok(request),
        [extra, ..] => Err(format!("{verb} takes no operand, got {extra:?}")),
    };
    match verb {
        "status" => none(Request::Status),
        "logs" => Ok(Request::Logs {
            name: name()?,
            lines: None,
            follow: false,
        }),
        "dmesg" => none(Request::Dmesg { lines: None }),
        "start" => Ok(Request::Start { name: name()? }),
        "stop" => Ok(Request::Stop { name: name()? }),
        "restart" => Ok(Request::Restart { name: name()? }),
        "reboot" => none(Request::Power {
            action: Power::Reboot,
        }),
        "poweroff" => none(Request::Power {
            action: Power::Poweroff,
        }),
        "halt" => none(Request::Power {
            action: Power::Halt,
        }),
        "revoke" => match operands {
            [serial] => Ok(Request::Revoke {
                serial: (*serial).to_owned(),
            }),
            _ => Err("revoke takes one SERIAL (as `berth-image ca issue` printed it)".into()),
        },
        other => Err(format!("unknown verb {other:?}")),
    }
}

/// `exec NAME -- CMD [ARG...]`: `operands` are the words after the verb,
/// the first `split` of them before the `--`.
fn exec(operands: &[&str], split: Option<usize>) -> Result<Request, String> {
    let Some(split) = split else {
        return Err("exec needs -- between NAME and the command".into());
    };
    let (name, argv) = operands.split_at(split);
    let [name] = name else {
        return Err("exec takes one container NAME before --".into());
    };
    if argv.is_empty() {
        return Err("exec needs a command after --".into());
    }
    Ok(Request::Exec {
        name: (*name).to_owned(),
        argv: argv.iter().map(|a| (*a).to_owned()).collect(),
    })
}

fn value<'a>(option: &str, v: Option<&'a str>) -> Result<&'a str, String> {
    match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{option} needs a value")),
    }
}

fn count(option: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("{option} needs a non-negative number, got {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(name: &str, lines: Option<usize>, follow: bool) -> Request {
        Request::Logs {
            name: name.into(),
            lines,
            follow,
        }
    }

    fn exec(name: &str, argv: &[&str]) -> Request {
        Request::Exec {
            name: name.into(),
            argv: argv.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn inv(socket: &str, json: bool, request: Request) -> Result<Invocation, String> {
        Ok(Invocation {
            socket: socket.into(),
            json,
            request,
            node: None,
            context: None,
        })
    }

    const D: &str = SOCKET_PATH;

    /// A command line and what it parses to.
    type Line = (&'static str, Result<Invocation, String>);

    fn boot_log_lines() -> Vec<Line> {
        vec![
            (
                "logs --boot -1",
                inv(
                    D,
                    false,
                    Request::BootLog {
                        boot: -1,
                        name: None,
                        lines: None,
                    },
                ),
            ),
            (
                "logs --boot=-2 -n 3 web",
                inv(
                    D,
                    false,
                    Request::BootLog {
                        boot: -2,
                        name: Some("web".into()),
                        lines: Some(3),
                    },
                ),
            ),
            (
                "logs --boot 0 web",
                Err("--boot takes a negative number (-1: the previous boot), got \"0\"; this boot's lines are `berth logs NAME`".into()),
            ),
            (
                "logs --boot -1 -f web",
                Err("logs --boot cannot follow (-f): that boot is over".into()),
            ),
            ("status --boot -1", Err("status does not take --boot".into())),
        ]
    }

    fn request_lines() -> Vec<Line> {
        vec![
            ("status", inv(D, false, Request::Status)),
            ("status --json", inv(D, true, Request::Status)),
            ("--json status", inv(D, true, Request::Status)),
            (
                "--socket /tmp/s status",
                inv("/tmp/s", false, Request::Status),
            ),
            (
                "status --socket=/tmp/s",
                inv("/tmp/s", false, Request::Status),
            ),
            ("logs web", inv(D, false, logs("web", None, false))),
            (
                "logs -f -n 5 web",
                inv(D, false, logs("web", Some(5), true)),
            ),
            (
                "logs web -n5 --follow --json",
                inv(D, true, logs("web", Some(5), true)),
            ),
            (
                "logs --lines=0 web",
                inv(D, false, logs("web", Some(0), false)),
            ),
            ("logs -- -odd", inv(D, false, logs("-odd", None, false))),
            ("dmesg", inv(D, false, Request::Dmesg { lines: None })),
            (
                "dmesg -n 20 --json",
                inv(D, true, Request::Dmesg { lines: Some(20) }),
            ),
            (
                "start db",
                inv(D, false, Request::Start { name: "db".into() }),
            ),
            (
                "stop db",
                inv(D, false, Request::Stop { name: "db".into() }),
            ),
            (
                "restart db",
                inv(D, false, Request::Restart { name: "db".into() }),
            ),
            (
                "reboot",
                inv(
                    D,
                    false,
                    Request::Power {
                        action: Power::Reboot,
                    },
                ),
            ),
            (
                "poweroff",
                inv(
                    D,
                    false,
                    Request::Power {
                        action: Power::Poweroff,
                    },
                ),
            ),
            (
                "halt",
                inv(
                    D,
                    false,
                    Request::Power {
                        action: Power::Halt,
                    },
                ),
            ),
            ("exec web -- id", inv(D, false, exec("web", &["id"]))),
            (
                "reset --state",
                inv(D, false, Request::Reset { state: true }),
            ),
            (
                "exec --json web -- ls -l --json -- x",
                inv(D, true, exec("web", &["ls", "-l", "--json", "--", "x"])),
            ),
            (
                "--socket /tmp/s exec web --json -- sh -c true",
                inv("/tmp/s", true, exec("web", &["sh", "-c", "true"])),
            ),
        ]
    }

    fn exec_errors() -> Vec<Line> {
        vec![
            ("exec web -- -", inv(D, false, exec("web", &["-"]))),
            (
                "exec web",
                Err("exec needs -- between NAME and the command".into()),
            ),
            (
                "exec web id",
                Err("exec needs -- between NAME and the command".into()),
            ),
            ("exec web ls -l", Err("unknown option \"-l\"".into())),
            ("exec web --", Err("exec needs a command after --".into())),
            (
                "exec -- id",
                Err("exec takes one container NAME before --".into()),
            ),
            (
                "exec a b -- id",
                Err("exec takes one container NAME before --".into()),
            ),
            (
                "-- exec web id",
                Err("exec needs -- between NAME and the command".into()),
            ),
            (
                "exec",
                Err("exec needs -- between NAME and the command".into()),
            ),
        ]
    }

    fn usage_errors() -> Vec<Line> {
        vec![
            ("exec -f web -- id", Err("exec does not take -f".into())),
            ("exec -n 3 web -- id", Err("exec does not take -n".into())),
            ("", Err("no verb given".into())),
            ("--json", Err("no verb given".into())),
            ("frob", Err("unknown verb \"frob\"".into())),
            ("logs", Err("logs takes one container NAME".into())),
            ("logs a b", Err("logs takes one container NAME".into())),
            ("start", Err("start takes one container NAME".into())),
            (
                "status web",
                Err("status takes no operand, got \"web\"".into()),
            ),
            (
                "reboot now",
                Err("reboot takes no operand, got \"now\"".into()),
            ),
            (
                "reset",
                Err("reset needs what to reset: --state (empty STATE, then reboot)".into()),
            ),
            (
                "reset --state now",
                Err("reset takes no operand, got \"now\"".into()),
            ),
            ("status --state", Err("status does not take --state".into())),
            ("status -f", Err("status does not take -f".into())),
            ("stop -n 3 web", Err("stop does not take -n".into())),
            (
                "logs -n web",
                Err("-n needs a non-negative number, got \"web\"".into()),
            ),
            (
                "logs -n -1 web",
                Err("-n needs a non-negative number, got \"-1\"".into()),
            ),
            ("logs web -n", Err("-n needs a value".into())),
            ("status --socket", Err("--socket needs a value".into())),
            ("status --socket=", Err("--socket needs a value".into())),
            ("status -x", Err("unknown option \"-x\"".into())),
        ]
    }

    #[test]
    fn command_lines() {
        let table: Vec<Line> = [
            request_lines(),
            boot_log_lines(),
            exec_errors(),
            usage_errors(),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (line, want) in table {
            let args: Vec<String> = line.split_whitespace().map(String::from).collect();
            assert_eq!(parse(&args, None), want, "{line:?}");
        }
    }

    #[test]
    fn socket_from_environment_then_flag() {
        let env = Some(PathBuf::from("/env/sock"));
        let args = |s: &str| -> Vec<String> { s.split_whitespace().map(String::from).collect() };
        let got = parse(&args("status"), env.clone()).map(|i| i.socket);
        assert_eq!(got, Ok(PathBuf::from("/env/sock")));
        let got = parse(&args("--socket /flag status"), env).map(|i| i.socket);
        assert_eq!(got, Ok(PathBuf::from("/flag")));
    }
}
