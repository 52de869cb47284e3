//! The client against a scripted server on a real Unix socket: what it
//! sends, what it prints and which exit code it returns.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use berth_supervisor::api::*;

use super::args::Invocation;
use super::*;

fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("berth-client-{}-{n}.sock", std::process::id()))
}

/// Serves one connection: reads the request line, writes `reply` bytes,
/// then holds the connection for `hold` before closing. Returns the
/// request as received.
fn serve(path: &PathBuf, reply: Vec<u8>, hold: Duration) -> thread::JoinHandle<Vec<u8>> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind");
    thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream);
        let mut request = Vec::new();
        reader.read_until(b'\n', &mut request).expect("read");
        let mut stream = reader.into_inner();
        // The client may be gone already (a timeout test): ignore.
        let _ = stream.write_all(&reply);
        thread::sleep(hold);
        request
    })
}

fn log(seq: u64, text: &str) -> LogLine {
    LogLine {
        seq,
        time_ms: 1000 * seq + 5,
        stream: Stream::Stdout,
        text: text.into(),
    }
}

fn logs(lines: Vec<LogLine>) -> Vec<u8> {
    encode_response(&Response::Success(Outcome::Logs(LogsResult { lines })))
}

struct Case {
    name: &'static str,
    json: bool,
    request: Request,
    reply: Vec<u8>,
    code: i32,
    stdout: &'static str,
    stderr: &'static str,
}

fn cases() -> Vec<Case> {
    [status_cases(), log_cases(), failure_cases()]
        .into_iter()
        .flatten()
        .collect()
}

fn logs_req(follow: bool) -> Request {
    Request::Logs {
        name: "web".into(),
        lines: None,
        follow,
    }
}

/// Status, server errors and messages.
fn status_cases() -> Vec<Case> {
    let status = StatusResult {
        node: NodeStatus {
            hostname: "n1".into(),
            uptime_ms: 12_000,
            berth_version: "0.1.0".into(),
            pid1_rss_kib: 900,
            stage: "services".into(),
            root: "verified (dm-verity), scrub clean".into(),
            state: String::new(),
            api: None,
        },
        containers: vec![],
    };
    vec![
        Case {
            name: "status table",
            json: false,
            request: Request::Status,
            reply: encode_response(&Response::Success(Outcome::Status(status.clone()))),
            code: EXIT_OK,
            stdout: "n1: up 12s, berth 0.1.0, PID 1 RSS 900 KiB, stage services\n\
                     root: verified (dm-verity), scrub clean\n\
                     NAME  KIND  PHASE  STATE  PID  RESTARTS  UPTIME  LAST-EXIT  HEALTH\n",
            stderr: "",
        },
        Case {
            name: "status json",
            json: true,
            request: Request::Status,
            reply: encode_response(&Response::Success(Outcome::Status(status))),
            code: EXIT_OK,
            stdout:
                "{\"node\":{\"hostname\":\"n1\",\"uptime_ms\":12000,\"berth_version\":\"0.1.0\",\
                     \"pid1_rss_kib\":900,\"stage\":\"services\",\"root\":\"verified (dm-verity), scrub clean\",\"state\":\"\"},\"containers\":[]}\n",
            stderr: "",
        },
        Case {
            name: "server error",
            json: false,
            request: Request::Stop {
                name: "nope".into(),
            },
            reply: encode_response(&Response::error(
                ErrorCode::NotFound,
                "no container \"nope\"",
            )),
            code: EXIT_REFUSED,
            stdout: "",
            stderr: "berth: not-found: no container \"nope\"\n",
        },
        Case {
            name: "message",
            json: false,
            request: Request::Restart { name: "web".into() },
            reply: encode_response(&Response::Success(Outcome::Restart(MessageResult::new(
                "web restarting",
            )))),
            code: EXIT_OK,
            stdout: "web restarting\n",
            stderr: "",
        },
    ]
}

/// Logs, with and without `--follow`.
fn log_cases() -> Vec<Case> {
    vec![
        Case {
            name: "logs",
            json: false,
            request: logs_req(false),
            reply: logs(vec![log(1, "a"), log(2, "b")]),
            code: EXIT_OK,
            stdout: "[    1.005] stdout| a\n[    2.005] stdout| b\n",
            stderr: "",
        },
        Case {
            name: "logs json",
            json: true,
            request: logs_req(false),
            reply: logs(vec![log(1, "a")]),
            code: EXIT_OK,
            stdout:
                "{\"lines\":[{\"seq\":1,\"time_ms\":1005,\"stream\":\"stdout\",\"text\":\"a\"}]}\n",
            stderr: "",
        },
        Case {
            name: "follow with a gap, then the server closes",
            json: false,
            request: logs_req(true),
            reply: [
                logs(vec![log(1, "a")]),
                encode_follow_line(&log(2, "b")),
                encode_follow_line(&log(5, "e")),
            ]
            .concat(),
            code: EXIT_OK,
            stdout: "[    1.005] stdout| a\n[    2.005] stdout| b\n[    5.005] stdout| e\n",
            stderr: "… 2 lines not shown (dropped before they were sent)\n",
        },
        Case {
            name: "follow json, ended by an error",
            json: true,
            request: logs_req(true),
            reply: [
                logs(vec![]),
                encode_follow_line(&log(7, "g")),
                encode_response(&Response::error(ErrorCode::Internal, "shutting down")),
            ]
            .concat(),
            code: EXIT_REFUSED,
            stdout: "{\"seq\":7,\"time_ms\":7005,\"stream\":\"stdout\",\"text\":\"g\"}\n",
            stderr: "berth: internal: shutting down\n",
        },
    ]
}

/// Answers the client cannot use.
fn failure_cases() -> Vec<Case> {
    vec![
        Case {
            name: "garbage answer",
            json: false,
            request: Request::Status,
            reply: b"HTTP/1.1 400 Bad Request\r\n".to_vec(),
            code: EXIT_UNREACHABLE,
            stdout: "",
            stderr: "berth: cannot understand the answer from ",
        },
        Case {
            name: "answer for another op",
            json: false,
            request: Request::Status,
            reply: logs(vec![]),
            code: EXIT_UNREACHABLE,
            stdout: "",
            stderr: "for status but it answered logs",
        },
        Case {
            name: "closed without answer",
            json: false,
            request: Request::Status,
            reply: vec![],
            code: EXIT_UNREACHABLE,
            stdout: "",
            stderr: "closed the connection without answering",
        },
    ]
}

#[test]
fn conversations() {
    for case in cases() {
        let path = socket_path();
        let server = serve(&path, case.reply.clone(), Duration::ZERO);
        let inv = Invocation {
            socket: path.clone(),
            json: case.json,
            request: case.request.clone(),
            node: None,
            context: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = execute(&inv, Duration::from_secs(5), &mut out, &mut err);
        let sent = server.join().expect("server");
        let _ = std::fs::remove_file(&path);
        let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
        assert_eq!(
            decode_request(&sent).as_ref(),
            Ok(&case.request),
            "{}",
            case.name
        );
        assert_eq!(code, case.code, "{}: stderr {err:?}", case.name);
        assert_eq!(out, case.stdout, "{}", case.name);
        if case.stderr.is_empty() {
            assert_eq!(err, "", "{}", case.name);
        } else {
            assert!(err.contains(case.stderr), "{}: {err:?}", case.name);
        }
    }
}

fn exec_reply(exit_code: i32, stdout: &str, stderr: &str, truncated: bool) -> Vec<u8> {
    encode_response(&Response::Success(Outcome::Exec(ExecResult {
        exit_code,
        stdout: stdout.into(),
        stderr: stderr.into(),
        truncated,
    })))
}

/// (name, json, reply, exit code, stdout, stderr)
type ExecCase = (&'static str, bool, Vec<u8>, i32, String, String);

/// The note the client adds after a truncated output.
const NOTE: &str = "berth: output truncated at 1 MiB\n";

/// The command's exit code becomes the client's.
fn exec_code_cases() -> Vec<ExecCase> {
    vec![
        (
            "success",
            false,
            exec_reply(0, "uid=0(root)\n", "", false),
            0,
            "uid=0(root)\n".into(),
            String::new(),
        ),
        (
            "`false` exits 1",
            false,
            exec_reply(1, "", "", false),
            1,
            String::new(),
            String::new(),
        ),
        (
            "both streams, no prefixes, no newline added",
            false,
            exec_reply(2, "partial", "sh: warn\n\tdetail", false),
            2,
            "partial".into(),
            "sh: warn\n\tdetail".into(),
        ),
        (
            "exit code 3 is the command's too",
            false,
            exec_reply(3, "", "", false),
            3,
            String::new(),
            String::new(),
        ),
        (
            "killed by SIGKILL",
            false,
            exec_reply(137, "", "", false),
            137,
            String::new(),
            String::new(),
        ),
    ]
}

/// The truncation note, JSON, codes out of range and server errors.
fn exec_other_cases() -> Vec<ExecCase> {
    vec![
        (
            "truncated: the note follows stderr",
            false,
            exec_reply(0, "xxx", "err\n", true),
            0,
            "xxx".into(),
            format!("err\n{NOTE}"),
        ),
        (
            "truncated: the note gets a line of its own",
            false,
            exec_reply(1, "", "err", true),
            1,
            String::new(),
            format!("err\n{NOTE}"),
        ),
        (
            "truncated, nothing on stderr",
            false,
            exec_reply(0, "out\n", "", true),
            0,
            "out\n".into(),
            NOTE.into(),
        ),
        (
            "json: the result object, the command's code",
            true,
            exec_reply(4, "a\n", "b", true),
            4,
            "{\"exit_code\":4,\"stdout\":\"a\\n\",\"stderr\":\"b\",\"truncated\":true}\n".into(),
            String::new(),
        ),
        (
            "a code outside 0..=255 is not a false success",
            false,
            exec_reply(256, "", "", false),
            255,
            String::new(),
            String::new(),
        ),
        (
            "negative code",
            false,
            exec_reply(-1, "", "", false),
            255,
            String::new(),
            String::new(),
        ),
        (
            "the server killed it at the timeout",
            false,
            encode_response(&Response::error(
                ErrorCode::Timeout,
                "web: sh still running after 30 s, killed",
            )),
            EXIT_REFUSED,
            String::new(),
            "berth: timeout: web: sh still running after 30 s, killed\n".into(),
        ),
        (
            "no such container",
            false,
            encode_response(&Response::error(ErrorCode::NotFound, "no container \"db\"")),
            EXIT_REFUSED,
            String::new(),
            "berth: not-found: no container \"db\"\n".into(),
        ),
    ]
}

/// `exec` output must arrive unchanged, so these compare stderr exactly.
#[test]
fn exec_conversations() {
    let table: Vec<ExecCase> = [exec_code_cases(), exec_other_cases()]
        .into_iter()
        .flatten()
        .collect();
    let request = Request::Exec {
        name: "web".into(),
        argv: vec!["sh".into(), "-c".into(), "id; false".into()],
    };
    for (name, json, reply, code, stdout, stderr) in table {
        let path = socket_path();
        let server = serve(&path, reply, Duration::ZERO);
        let inv = Invocation {
            socket: path.clone(),
            json,
            request: request.clone(),
            node: None,
            context: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let got = execute(&inv, Duration::from_secs(5), &mut out, &mut err);
        let sent = server.join().expect("server");
        let _ = std::fs::remove_file(&path);
        assert_eq!(decode_request(&sent).as_ref(), Ok(&request), "{name}");
        let (out, err) = (String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
        assert_eq!(got, code, "{name}: stderr {err:?}");
        assert_eq!(out, stdout, "{name}");
        assert_eq!(err, stderr, "{name}");
    }
}

#[test]
fn exec_answer_for_another_op_is_unusable() {
    let path = socket_path();
    let reply = encode_response(&Response::Success(Outcome::Start(MessageResult::new("x"))));
    let server = serve(&path, reply, Duration::ZERO);
    let inv = Invocation {
        socket: path.clone(),
        json: false,
        request: Request::Exec {
            name: "web".into(),
            argv: vec!["id".into()],
        },
        node: None,
        context: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = execute(&inv, Duration::from_secs(5), &mut out, &mut err);
    let _ = server.join();
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, EXIT_UNREACHABLE);
    assert!(err.contains("for exec but it answered start"), "{err}");
}

#[test]
fn exec_usage_errors() {
    for line in [
        "exec",
        "exec web",
        "exec web id",
        "exec web --",
        "exec -- id",
        "exec a b -- id",
        "exec -f web -- id",
    ] {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        assert_eq!(run(&args), EXIT_USAGE, "{line:?}");
    }
}

#[test]
fn exec_waits_longer_than_the_server_lets_it_run() {
    let exec = Request::Exec {
        name: "web".into(),
        argv: vec!["sleep".into(), "29".into()],
    };
    assert!(wait_limit(&exec) > EXEC_TIMEOUT);
    assert_eq!(wait_limit(&Request::Status), CLIENT_TIMEOUT);
}

#[test]
fn unreachable_socket_names_the_path() {
    let path = socket_path();
    let inv = Invocation {
        socket: path.clone(),
        json: false,
        request: Request::Status,
        node: None,
        context: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = execute(&inv, Duration::from_secs(5), &mut out, &mut err);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, EXIT_UNREACHABLE);
    assert!(
        err.starts_with(&format!("berth: cannot reach {}: ", path.display())),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn silent_server_times_out() {
    let path = socket_path();
    let server = serve(&path, Vec::new(), Duration::from_millis(1500));
    let inv = Invocation {
        socket: path.clone(),
        json: false,
        request: Request::Status,
        node: None,
        context: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = execute(&inv, Duration::from_millis(200), &mut out, &mut err);
    let _ = server.join();
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, EXIT_UNREACHABLE);
    assert!(err.contains("no answer from"), "{err}");
}
