//! Process plumbing for the `berth init` host tests: which inits to run and
//! how, reading the child's output with deadlines, signalling the init,
//! inspecting `/proc`, and always killing what a case leaves behind.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const TINI: &str = "/usr/bin/tini";
const UNSHARE: &str = "/usr/bin/unshare";
const POLL: Duration = Duration::from_millis(10);

/// The implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Debian's tini, the reference the cases are checked against first.
    Tini,
    /// `berth init`.
    Berth,
}

/// How the init runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of a new PID namespace: `unshare --pid --fork --mount-proc`.
    Pid1,
    /// A plain child of the test, registered as a subreaper with `-s`.
    Subreaper,
    /// A plain child of the test without `-s`: neither PID 1 nor a reaper.
    Plain,
}

/// One init in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub init: Init,
    pub mode: Mode,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let init = match self.init {
            Init::Tini => "tini",
            Init::Berth => "berth init",
        };
        let mode = match self.mode {
            Mode::Pid1 => "as PID 1 of a new PID namespace",
            Mode::Subreaper => "as subreaper (-s)",
            Mode::Plain => "as a plain child",
        };
        write!(f, "{init} {mode}")
    }
}

/// The variants to run in `modes`: tini first (the reference), then berth.
/// A variant that cannot run here is skipped with the reason on stderr.
pub fn variants(modes: &[Mode]) -> Vec<Variant> {
    let mut out = Vec::new();
    for init in [Init::Tini, Init::Berth] {
        if init == Init::Tini && !Path::new(TINI).exists() {
            eprintln!("skipping tini: {TINI} not found (apt-get install tini)");
            continue;
        }
        for &mode in modes {
            if mode == Mode::Pid1 {
                if !Path::new(UNSHARE).exists() {
                    eprintln!("skipping PID 1 mode: {UNSHARE} (util-linux) not found");
                    continue;
                }
                if !nix::unistd::geteuid().is_root() {
                    eprintln!("skipping PID 1 mode: a new PID namespace needs root");
                    continue;
                }
            }
            out.push(Variant { init, mode });
        }
    }
    out
}

/// The full command line that runs `command` under `variant` with `flags`
/// (`-g`, …) after `wrapper` (a program that sets up state and execs the
/// rest, or nothing).
fn command_line(
    variant: Variant,
    flags: &[&str],
    wrapper: &[&str],
    command: &[&str],
) -> Vec<String> {
    let mut words: Vec<String> = wrapper.iter().map(|w| w.to_string()).collect();
    if variant.mode == Mode::Pid1 {
        words.extend([UNSHARE, "--pid", "--fork", "--mount-proc", "--"].map(String::from));
    }
    match variant.init {
        Init::Tini => words.push(TINI.to_owned()),
        Init::Berth => {
            words.push(env!("CARGO_BIN_EXE_berth").to_owned());
            words.push("init".to_owned());
        }
    }
    if variant.mode == Mode::Subreaper {
        words.push("-s".to_owned());
    }
    words.extend(flags.iter().map(|f| f.to_string()));
    words.push("--".to_owned());
    words.extend(command.iter().map(|w| w.to_string()));
    words
}

/// An init under test, its output collected by two reader threads. Dropping
/// it kills the whole process tree it started.
pub struct Run {
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<(String, bool)>>,
    exited: Option<Result<i32, String>>,
}

impl Run {
    /// Starts `command` under `variant`.
    pub fn start(variant: Variant, flags: &[&str], command: &[&str]) -> Result<Run, String> {
        Run::start_wrapped(variant, flags, &[], command)
    }

    /// Starts `command` under `variant`, launched through `wrapper`.
    pub fn start_wrapped(
        variant: Variant,
        flags: &[&str],
        wrapper: &[&str],
        command: &[&str],
    ) -> Result<Run, String> {
        let words = command_line(variant, flags, wrapper, command);
        let label = format!("{variant}, {}", short(&command.join(" ")));
        let mut child = Command::new(&words[0])
            .args(&words[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{label}: cannot start {words:?}: {e}"))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().ok_or("stdout not piped")?;
        // Detached readers: a leftover grandchild may hold the pipes open
        // after the init is gone, so nothing ever joins them.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new((String::new(), false)));
        let mut pipe = child.stderr.take().ok_or("stderr not piped")?;
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = pipe.read(&mut buf).unwrap_or(0);
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    s.1 = true;
                    break;
                }
                s.0.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Run {
            label,
            child,
            stdin,
            lines,
            stdout: Vec::new(),
            stderr,
            exited: None,
        })
    }

    /// Waits until the child prints the line `want`; lines before it are
    /// kept for the failure report.
    pub fn expect_line(&mut self, want: &str, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        if self.stdout.iter().any(|l| l == want) {
            return Ok(());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line == want;
                    self.stdout.push(line);
                    if hit {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no line {want:?} within {within:?}")))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.failure(&format!("output ended without {want:?}")))
                }
            }
        }
    }

    /// Writes `line` to the child's stdin (scripts `read` it to go on).
    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        let result = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => return Err(self.failure("stdin already closed")),
        };
        result.map_err(|e| self.failure(&format!("writing {line:?} to stdin: {e}")))
    }

    /// Waits for a line starting with `prefix` and returns the rest of it.
    pub fn line_after(&mut self, prefix: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(rest) = self.stdout.iter().find_map(|l| l.strip_prefix(prefix)) {
                return Ok(rest.to_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(_) => return Err(self.failure(&format!("no line starting {prefix:?}"))),
            }
        }
    }

    /// Checks that the line `unwanted` does not appear during `window`.
    pub fn expect_no_line(&mut self, unwanted: &str, window: Duration) -> Result<(), String> {
        let deadline = Instant::now() + window;
        loop {
            if self.stdout.iter().any(|l| l == unwanted) {
                return Err(self.failure(&format!("unexpected line {unwanted:?}")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => thread::sleep(left),
            }
        }
    }

    /// The pid of the init under test as the host sees it: the process we
    /// started, or in PID 1 mode the child `unshare --fork` made.
    pub fn init_pid(&self, variant: Variant) -> Result<i32, String> {
        let started = self.child.id() as i32;
        if variant.mode != Mode::Pid1 {
            return Ok(started);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = children_of(started).first() {
                return Ok(pid.pid);
            }
            if Instant::now() > deadline {
                return Err(self.failure("unshare never forked the init"));
            }
            thread::sleep(POLL);
        }
    }

    /// Sends signal number `sig` (real-time ones too) to the init.
    pub fn signal_init(&self, variant: Variant, sig: i32) -> Result<(), String> {
        let pid = self.init_pid(variant)?;
        send_signal(pid, sig).map_err(|e| self.failure(&e))
    }

    /// Waits for the process we started to exit and returns its exit code;
    /// on the deadline the whole tree is killed and that is the error.
    pub fn wait_exit(&mut self, within: Duration) -> Result<i32, String> {
        if let Some(done) = &self.exited {
            return done.clone();
        }
        let deadline = Instant::now() + within;
        let result = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    break status
                        .code()
                        .ok_or_else(|| self.failure(&format!("init ended by {status}")))
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) => {
                    kill_tree(self.child.id() as i32);
                    break Err(self.failure(&format!("did not exit within {within:?}")));
                }
                Err(e) => break Err(self.failure(&format!("wait: {e}"))),
            }
        };
        self.exited = Some(result.clone());
        result
    }

    /// Everything the init and its child wrote on stderr, once the pipe
    /// has closed (or after `within`).
    pub fn stderr(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let s = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
            if s.1 || Instant::now() > deadline {
                return s.0.clone();
            }
            drop(s);
            thread::sleep(POLL);
        }
    }

    /// A failure message with the whole output so far.
    pub fn failure(&self, what: &str) -> String {
        let err = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        format!(
            "{}: {what}\n  stdout: {:?}\n  stderr: {err:?}",
            self.label, self.stdout
        )
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stdin = None;
        if self.exited.is_none() {
            kill_tree(self.child.id() as i32);
        }
        let _ = self.child.wait();
    }
}

/// `text` cut to one readable line for labels (the full scripts are in the
/// test source).
fn short(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Sends signal number `sig` to `pid` through the shell's `kill`, since
/// nix's `Signal` cannot name the real-time signals.
pub fn send_signal(pid: i32, sig: i32) -> Result<(), String> {
    let status = Command::new("/bin/sh")
        .args(["-c", &format!("kill -{sig} {pid}")])
        .status()
        .map_err(|e| format!("running kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid}: {status}"))
    }
}

/// One line of `/proc/PID/stat`, the fields we need.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
}

/// Every process on the host (the test runs in the root PID namespace).
pub fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat)
    })
    .collect()
}

/// Parses `pid (comm) state ppid …`; comm may hold spaces and parentheses,
/// so the fields after it are found from the last `)`.
fn parse_stat(stat: &str) -> Option<Proc> {
    let (head, tail) = stat.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let mut fields = tail.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc { pid, ppid, state })
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<Proc> {
    processes().into_iter().filter(|p| p.ppid == pid).collect()
}

/// SIGKILLs `root` and every descendant, a few rounds so that processes
/// forked while we kill are caught too. In PID 1 mode killing the
/// namespace's init kills the namespace; in the other modes descendants
/// must be found one by one.
pub fn kill_tree(root: i32) {
    for _ in 0..3 {
        let mut by_parent: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in processes() {
            by_parent.entry(p.ppid).or_default().push(p.pid);
        }
        let mut stack = vec![root];
        let mut found = Vec::new();
        while let Some(pid) = stack.pop() {
            for &c in by_parent.get(&pid).map(Vec::as_slice).unwrap_or_default() {
                found.push(c);
                stack.push(c);
            }
        }
        for &pid in &found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if found.is_empty() {
            break;
        }
    }
    let _ = kill(Pid::from_raw(root), Signal::SIGKILL);
}

/// Runs every variant through `case`, in parallel, and returns the
/// failures, each already labelled.
pub fn run_all(
    variants: &[Variant],
    case: impl Fn(Variant) -> Result<(), String> + Sync,
) -> Vec<String> {
    let case = &case;
    thread::scope(|s| {
        let handles: Vec<_> = variants
            .iter()
            .map(|&v| (v, s.spawn(move || case(v))))
            .collect();
        handles
            .into_iter()
            .filter_map(|(v, h)| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(format!("{v}: case panicked")),
            })
            .collect()
    })
}

/// Fails the test with every failure, after saying which variants passed.
pub fn report(name: &str, variants: &[Variant], failures: Vec<String>) {
    for v in variants {
        eprintln!("{name}: ran {v}");
    }
    assert!(
        failures.is_empty(),
        "{name}: {} failure(s)\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        // (line of /proc/PID/stat, (pid, state, ppid))
        let table = [
            ("12 (sh) S 1 12 12 0", Some((12, 'S', 1))),
            ("99 (a b) c) Z 7 0", Some((99, 'Z', 7))),
            ("garbage", None),
        ];
        for (line, want) in table {
            let got = parse_stat(line).map(|p| (p.pid, p.state, p.ppid));
            assert_eq!(got, want, "{line}");
        }
    }
}
