//! `berth raw [--socket PATH] [--repeat N] [--times]`: sends standard
//! input verbatim to the control socket (N times, one connection each)
//! and prints the last answer; `--times` adds the median, fastest and
//! slowest round trip on stderr. For scripts that speak the protocol
//! directly, for testing how PID 1 takes malformed input, and for
//! benchmarks.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Runs the verb with the words after `raw`; returns the exit code: 0 when
/// every connection got an answer, 1 when one did not, 2 on usage errors.
pub fn run(args: &[String]) -> i32 {
    let mut socket = std::env::var("BERTH_SOCKET")
        .unwrap_or_else(|_| berth_supervisor::api::SOCKET_PATH.to_owned());
    let mut repeat: usize = 1;
    let mut times = false;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        if a == "--times" {
            times = true;
            continue;
        }
        match (a.as_str(), it.next()) {
            ("--socket", Some(p)) => socket = p.clone(),
            ("--repeat", Some(n)) => match n.parse() {
                Ok(n) if n > 0 => repeat = n,
                _ => return usage(&format!("--repeat takes a positive number, not {n:?}")),
            },
            (other, _) => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("berth raw: read standard input: {e}");
        return 1;
    }
    let mut answered = 0;
    let mut last = Vec::new();
    let mut rtts = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        let result = exchange(&socket, &input);
        rtts.push(t.elapsed());
        match result {
            Ok(answer) if !answer.is_empty() => {
                answered += 1;
                last = answer;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("berth raw: {socket}: {e}");
            }
        }
    }
    let _ = std::io::stdout().write_all(&last);
    eprintln!("berth raw: {repeat} sent, {answered} answered");
    if times {
        rtts.sort();
        eprintln!(
            "berth raw: round trip median {} us, fastest {} us, slowest {} us",
            rtts[rtts.len() / 2].as_micros(),
            rtts[0].as_micros(),
            rtts[rtts.len() - 1].as_micros()
        );
    }
    if answered == repeat {
        0
    } else {
        1
    }
}

fn exchange(socket: &str, input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    // The server may answer (too-large) and close before taking it all.
    let _ = s.write_all(input);
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => Ok(answer),
        Err(_) if !answer.is_empty() => Ok(answer),
        Err(e) => Err(e),
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!(
        "berth raw: {msg}\nusage: berth raw [--socket PATH] [--repeat N] [--times] < REQUEST"
    );
    2
}
