use crate::api::*;

fn requests() -> Vec<Request> {
    vec![
        Request::Status,
        Request::Logs {
            name: "web".into(),
            lines: None,
            follow: false,
        },
        Request::Logs {
            name: "web".into(),
            lines: Some(20),
            follow: true,
        },
        Request::Logs {
            name: "ünï \"quoted\"\n".into(),
            lines: Some(0),
            follow: false,
        },
        Request::Dmesg { lines: None },
        Request::Dmesg { lines: Some(5) },
        Request::Start { name: "db".into() },
        Request::Stop { name: "db".into() },
        Request::Restart { name: "db".into() },
        Request::Power {
            action: Power::Reboot,
        },
        Request::Power {
            action: Power::Poweroff,
        },
        Request::Power {
            action: Power::Halt,
        },
        Request::Exec {
            name: "web".into(),
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
        },
        Request::Exec {
            name: "web".into(),
            argv: vec!["".into(), "ünï \"quoted\"\n\t".into()],
        },
        Request::Reset { state: true },
        Request::Reset { state: false },
        Request::Revoke {
            serial: "5f3a".into(),
        },
    ]
}

fn log_line(seq: u64, stream: Stream, text: &str) -> LogLine {
    LogLine {
        seq,
        time_ms: 12_345u64.wrapping_add(seq),
        stream,
        text: text.into(),
    }
}

fn status() -> StatusResult {
    StatusResult {
        node: NodeStatus {
            hostname: "node1".into(),
            uptime_ms: 3_723_000,
            berth_version: "0.1.0".into(),
            pid1_rss_kib: 2_480,
            stage: "services".into(),
            root: "verified (dm-verity), scrub clean".into(),
            state: "STATE /dev/vda4 (ext4): 8.0 GiB, 24.0 MiB used (0%)".into(),
            api: Some("listening on 0.0.0.0:7443".into()),
        },
        containers: vec![
            ContainerStatus {
                name: "web".into(),
                kind: ContainerKind::Workload,
                phase: Phase::Service,
                state: "running".into(),
                pid: Some(412),
                restarts: 2,
                uptime_ms: Some(185_000),
                last_exit: Some("exited with code 3".into()),
                health: Some("healthy".into()),
            },
            ContainerStatus {
                name: "net".into(),
                kind: ContainerKind::Host,
                phase: Phase::Onboot,
                state: "done".into(),
                pid: None,
                restarts: 0,
                uptime_ms: None,
                last_exit: None,
                health: None,
            },
        ],
    }
}

fn responses() -> Vec<Response> {
    let mut all = vec![
        Response::Success(Outcome::Status(status())),
        Response::Success(Outcome::Status(StatusResult {
            containers: vec![],
            ..status()
        })),
        Response::Success(Outcome::Logs(LogsResult { lines: vec![] })),
        Response::Success(Outcome::Logs(LogsResult {
            lines: vec![
                log_line(1, Stream::Stdout, "hello"),
                log_line(u64::MAX, Stream::Stderr, "\tboom ✗"),
            ],
        })),
        Response::Success(Outcome::Dmesg(DmesgResult { lines: vec![] })),
        Response::Success(Outcome::Dmesg(DmesgResult {
            lines: vec![KernelLine {
                seq: 7,
                time_us: 1_234_567,
                level: 6,
                text: "virtio_blk virtio1: [vda] 8192 512-byte logical blocks".into(),
            }],
        })),
        Response::Success(Outcome::Start(MessageResult::new("web started"))),
        Response::Success(Outcome::Stop(MessageResult::new("web stopped"))),
        Response::Success(Outcome::Restart(MessageResult::new("web restarting"))),
        Response::Success(Outcome::Power(MessageResult::new("rebooting"))),
        Response::Success(Outcome::Reset(MessageResult::new("emptying STATE"))),
        Response::Success(Outcome::Revoke(MessageResult::new("serial 5f3a revoked"))),
        Response::Success(Outcome::Exec(ExecResult {
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
        })),
        Response::Success(Outcome::Exec(ExecResult {
            exit_code: 1,
            stdout: "uid=0(root)\n".into(),
            stderr: "warn: \u{1b}[31m ✗ \0\r\n".into(),
            truncated: true,
        })),
        Response::Success(Outcome::Exec(ExecResult {
            exit_code: 128 + 9,
            stdout: "no newline at the end".into(),
            stderr: String::new(),
            truncated: false,
        })),
    ];
    for code in ErrorCode::ALL {
        all.push(Response::error(code, format!("something about {code}")));
    }
    all
}

#[test]
fn every_request_round_trips() {
    for req in requests() {
        let line = encode_request(&req);
        assert_eq!(line.last(), Some(&b'\n'), "{req:?}");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "{req:?}");
        assert_eq!(decode_request(&line), Ok(req.clone()), "{req:?}");
    }
}

#[test]
fn every_response_round_trips() {
    for resp in responses() {
        let line = encode_response(&resp);
        assert_eq!(line.last(), Some(&b'\n'), "{resp:?}");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "{resp:?}");
        assert_eq!(decode_response(&line), Ok(resp.clone()), "{resp:?}");
    }
}

#[test]
fn follow_lines_round_trip() {
    for line in [
        log_line(1, Stream::Stdout, ""),
        log_line(99, Stream::Stderr, "a \u{1b}[31m b"),
    ] {
        let wire = encode_follow_line(&line);
        assert_eq!(wire.last(), Some(&b'\n'));
        assert_eq!(decode_follow_line(&wire), Ok(line));
    }
}

/// The bytes on the wire, as docs/api.md shows them.
#[test]
fn wire_format_is_as_documented() {
    let table: &[(Vec<u8>, &str)] = &[
        (
            encode_request(&Request::Status),
            r#"{"version":1,"op":"status"}"#,
        ),
        (
            encode_request(&Request::Logs {
                name: "web".into(),
                lines: Some(20),
                follow: true,
            }),
            r#"{"version":1,"op":"logs","name":"web","lines":20,"follow":true}"#,
        ),
        (
            encode_request(&Request::Power {
                action: Power::Poweroff,
            }),
            r#"{"version":1,"op":"power","action":"poweroff"}"#,
        ),
        (
            encode_request(&Request::Exec {
                name: "web".into(),
                argv: vec!["sh".into(), "-c".into(), "id".into()],
            }),
            r#"{"version":1,"op":"exec","name":"web","argv":["sh","-c","id"]}"#,
        ),
        (
            encode_response(&Response::Success(Outcome::Exec(ExecResult {
                exit_code: 1,
                stdout: "uid=0(root) gid=0(root)\n".into(),
                stderr: "id: warning\n".into(),
                truncated: false,
            }))),
            r#"{"version":1,"ok":true,"op":"exec","result":{"exit_code":1,"stdout":"uid=0(root) gid=0(root)\n","stderr":"id: warning\n","truncated":false}}"#,
        ),
        (
            encode_response(&Response::error(
                ErrorCode::Timeout,
                "web: sh still running after 30 s, killed",
            )),
            r#"{"version":1,"ok":false,"error":{"code":"timeout","message":"web: sh still running after 30 s, killed"}}"#,
        ),
        (
            encode_response(&Response::Success(Outcome::Restart(MessageResult::new(
                "web restarting",
            )))),
            r#"{"version":1,"ok":true,"op":"restart","result":{"message":"web restarting"}}"#,
        ),
        (
            encode_response(&Response::error(ErrorCode::NotFound, "no container \"x\"")),
            r#"{"version":1,"ok":false,"error":{"code":"not-found","message":"no container \"x\""}}"#,
        ),
        (
            encode_follow_line(&log_line(3, Stream::Stderr, "oops")),
            r#"{"version":1,"line":{"seq":3,"time_ms":12348,"stream":"stderr","text":"oops"}}"#,
        ),
    ];
    for (got, want) in table {
        assert_eq!(String::from_utf8_lossy(got), format!("{want}\n"));
    }
}

/// The largest `exec` answer, both streams full of bytes JSON must escape,
/// still fits what a client accepts.
#[test]
fn full_exec_answer_fits_the_response_limit() {
    let worst = "\u{1}".repeat(EXEC_OUTPUT_LIMIT);
    let line = encode_response(&Response::Success(Outcome::Exec(ExecResult {
        exit_code: 255,
        stdout: worst.clone(),
        stderr: worst,
        truncated: true,
    })));
    assert!(line.len() > 12 * EXEC_OUTPUT_LIMIT, "{}", line.len());
    assert!(line.len() <= MAX_RESPONSE, "{}", line.len());
}

/// Version 1 may grow fields; decoders must not trip over them.
#[test]
fn unknown_fields_are_ignored() {
    let table: &[(&str, Request)] = &[
        (
            r#"{"version":1,"op":"status","verbose":true}"#,
            Request::Status,
        ),
        (
            r#"{"op":"stop","name":"web","grace_ms":5,"version":1}"#,
            Request::Stop { name: "web".into() },
        ),
        (
            "{\"version\":1,\"op\":\"dmesg\",\"lines\":null}\r\n",
            Request::Dmesg { lines: None },
        ),
    ];
    for (line, want) in table {
        assert_eq!(decode_request(line.as_bytes()).as_ref(), Ok(want), "{line}");
    }
    let resp =
        r#"{"version":1,"ok":true,"op":"stop","result":{"message":"ok","took_ms":3},"trace":"x"}"#;
    assert_eq!(
        decode_response(resp.as_bytes()),
        Ok(Response::Success(Outcome::Stop(MessageResult::new("ok"))))
    );
}

#[test]
fn unknown_error_code_keeps_the_message() {
    let line = r#"{"version":1,"ok":false,"error":{"code":"quota","message":"too many"}}"#;
    assert_eq!(
        decode_response(line.as_bytes()),
        Ok(Response::error(ErrorCode::Internal, "quota: too many"))
    );
}

#[test]
fn api_errors_become_error_responses() {
    let Err(err) = decode_request(b"{\"version\":2,\"op\":\"status\"}") else {
        panic!("version 2 decoded")
    };
    let line = encode_response(&err.response());
    match decode_response(&line) {
        Ok(Response::Failure(body)) => {
            assert_eq!(body.code, ErrorCode::UnsupportedVersion);
            assert_eq!(body.message, err.to_string());
        }
        other => panic!("{other:?}"),
    }
}
