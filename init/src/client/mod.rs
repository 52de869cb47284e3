//! The operator CLI's side of the control socket: `berth status`, `logs`,
//! `dmesg`, `start|stop|restart`, `reboot|poweroff|halt`, `exec`.
//!
//! One request per connection (see `docs/api.md`): parse the command line,
//! send the request, print the answer for people or, with `--json`, as
//! JSON. `logs -f` then prints every follow line until the server closes
//! or the operator interrupts. Exit codes: 0 success, 1 the server refused
//! (`berth: CODE: message`), 2 usage, 3 no answer from the socket; after
//! an `exec` the command's own exit code instead of 0.

mod args;
mod error;
mod format;
pub mod raw;
mod remote;
mod session;

#[cfg(test)]
mod tests;

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::time::Duration;

use berth_supervisor::api::{
    decode_follow_line, decode_response, ExecResult, LogLine, Outcome, Request, Response,
    CLIENT_TIMEOUT, EXEC_CLIENT_TIMEOUT,
};

use self::args::Invocation;
use self::error::ClientError;
use self::session::Session;

pub const EXIT_OK: i32 = 0;
/// The server answered with an error (or the output could not be written).
pub const EXIT_REFUSED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
/// No usable answer: cannot connect, timed out, connection lost, or the
/// answer is not the protocol.
pub const EXIT_UNREACHABLE: i32 = 3;

/// Whether `word`, the first argument, starts a control command: a verb
/// or one of the options every verb takes.
pub fn is_client_word(word: &str) -> bool {
    args::VERBS.contains(&word)
        || word == "--json"
        || word == "--socket"
        || word.starts_with("--socket=")
        || matches!(word, "--node" | "--context")
        || word.starts_with("--node=")
        || word.starts_with("--context=")
}

/// Runs a control verb; `args` start at the verb or a global option.
pub fn run(args: &[String]) -> i32 {
    let env_socket = std::env::var_os("BERTH_SOCKET").map(PathBuf::from);
    let invocation = match args::parse(args, env_socket) {
        Ok(i) => i,
        Err(msg) => {
            eprintln!("berth: {msg}\n\n{}", crate::cli::USAGE);
            return EXIT_USAGE;
        }
    };
    execute(
        &invocation,
        wait_limit(&invocation.request),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// How long each read and write may take: an `exec` answer comes only
/// once the command has ended, which the server allows `EXEC_TIMEOUT`.
fn wait_limit(request: &Request) -> Duration {
    match request {
        Request::Exec { .. } => EXEC_CLIENT_TIMEOUT,
        _ => CLIENT_TIMEOUT,
    }
}

/// Our exit code after `exec`: the command's. A shell-convention code is
/// 0 to 255; anything else (which a correct server never sends) would be
/// cut to its low byte by `exit(2)`, perhaps into a false 0, so it
/// becomes 255.
fn exec_exit_code(code: i32) -> i32 {
    if (0..=255).contains(&code) {
        code
    } else {
        255
    }
}

/// Talks to the server and prints; returns the exit code.
fn execute(inv: &Invocation, timeout: Duration, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Messages to stderr are best effort: with stderr gone there is
    // nowhere left to complain, and the exit code still tells.
    match talk(inv, timeout, out, err) {
        Ok(Ok(code)) => code,
        // The reader went away (`berth logs -f web | head`): not a failure.
        Ok(Err(e)) if e.kind() == ErrorKind::BrokenPipe => EXIT_OK,
        Ok(Err(e)) => {
            let _ = writeln!(err, "berth: write output: {e}");
            EXIT_REFUSED
        }
        Err(e) => {
            let _ = writeln!(err, "berth: {}", crate::fatal::chain(&e));
            EXIT_UNREACHABLE
        }
    }
}

/// The outer result is the conversation with the server, the inner one
/// writing the output.
fn talk(
    inv: &Invocation,
    timeout: Duration,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<std::io::Result<i32>, ClientError> {
    let mut session = match &inv.node {
        None => Session::open(&inv.socket, timeout)?,
        Some(node) => {
            let target = remote::resolve(node, inv.context.as_deref()).map_err(|why| {
                ClientError::Remote {
                    node: node.clone(),
                    why,
                }
            })?;
            Session::remote(&target, timeout)?
        }
    };
    session.send(&inv.request)?;
    let line = session.receive()?.ok_or_else(|| ClientError::Closed {
        path: session.path().to_owned(),
    })?;
    session.answered();
    let outcome = match decode_response(&line).map_err(|source| garbled(&session, source))? {
        Response::Success(outcome) => outcome,
        Response::Failure(e) => {
            let _ = writeln!(err, "berth: {}: {}", e.code, e.message);
            return Ok(Ok(EXIT_REFUSED));
        }
    };
    if outcome.op() != inv.request.op() {
        return Err(ClientError::WrongOp {
            path: inv.socket.clone(),
            asked: inv.request.op(),
            got: outcome.op(),
        });
    }
    let follow = matches!(inv.request, Request::Logs { follow: true, .. });
    if let (true, Outcome::Logs(logs)) = (follow, &outcome) {
        for line in &logs.lines {
            if let Err(e) = print_log_line(line, inv.json, out) {
                return Ok(Err(e));
            }
        }
        return follow_log(
            &mut session,
            logs.lines.last().map(|l| l.seq),
            inv.json,
            out,
            err,
        );
    }
    let code = match &outcome {
        Outcome::Exec(result) => exec_exit_code(result.exit_code),
        _ => EXIT_OK,
    };
    Ok(print_outcome(&outcome, inv.json, out, err).map(|()| code))
}

/// Prints follow lines until the server closes the stream. The server may
/// end it with an error response instead (say, the node shuts down).
fn follow_log(
    session: &mut Session,
    mut last_seq: Option<u64>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<std::io::Result<i32>, ClientError> {
    session.wait_forever()?;
    while let Some(raw) = session.receive()? {
        let line = match decode_follow_line(&raw) {
            Ok(line) => line,
            Err(e) => match decode_response(&raw) {
                Ok(Response::Failure(body)) => {
                    let _ = writeln!(err, "berth: {}: {}", body.code, body.message);
                    return Ok(Ok(EXIT_REFUSED));
                }
                _ => return Err(garbled(session, e)),
            },
        };
        if let Some(notice) = format::gap_notice(last_seq, line.seq) {
            let _ = writeln!(err, "{notice}");
        }
        last_seq = Some(line.seq);
        if let Err(e) = print_log_line(&line, json, out).and_then(|()| out.flush()) {
            return Ok(Err(e));
        }
    }
    let _ = writeln!(
        err,
        "berth: {} closed the log stream",
        session.path().display()
    );
    Ok(Ok(EXIT_OK))
}

fn print_outcome(
    outcome: &Outcome,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", outcome.result_json());
    }
    match outcome {
        Outcome::Status(s) => {
            writeln!(out, "{}", format::node_line(&s.node))?;
            write!(out, "{}", format::status_table(&s.containers))
        }
        Outcome::Logs(logs) => logs
            .lines
            .iter()
            .try_for_each(|l| print_log_line(l, false, out)),
        Outcome::Dmesg(d) => d
            .lines
            .iter()
            .try_for_each(|l| writeln!(out, "{}", format::kernel_line(l))),
        Outcome::BootLog(b) => b.lines.iter().try_for_each(|l| writeln!(out, "{l}")),
        Outcome::Start(m)
        | Outcome::Stop(m)
        | Outcome::Restart(m)
        | Outcome::Power(m)
        | Outcome::Reset(m)
        | Outcome::Revoke(m) => {
            writeln!(out, "{}", m.message)
        }
        Outcome::Exec(r) => print_exec(r, out, err),
    }
}

/// The command's output byte for byte, each stream to ours, so `berth
/// exec` composes like the command itself; then the truncation note on a
/// line of its own. The command's stderr goes out even when stdout could
/// not be written; writing it is best effort, like berth's own messages.
fn print_exec(r: &ExecResult, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<()> {
    let written = out
        .write_all(r.stdout.as_bytes())
        .and_then(|()| out.flush());
    let _ = err.write_all(r.stderr.as_bytes());
    if r.truncated {
        if !r.stderr.is_empty() && !r.stderr.ends_with('\n') {
            let _ = writeln!(err);
        }
        let _ = writeln!(err, "{}", format::truncation_notice());
    }
    let _ = err.flush();
    written
}

fn print_log_line(line: &LogLine, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", line.to_json())
    } else {
        writeln!(out, "{}", format::log_line(line))
    }
}

fn garbled(session: &Session, source: berth_supervisor::api::ApiError) -> ClientError {
    ClientError::Garbled {
        path: session.path().to_owned(),
        source,
    }
}
