//! The loop against a fake launcher backend, network and reaper: during a
//! 5-second launch it still copies output, answers requests, runs the
//! core's timers and the network's, and reaps nothing until the launch is
//! over; an exit during the launch is routed once it is.
//!
//! The fake containers are real child processes (a shell that ignores
//! SIGTERM), so signals reach something real; the fake reaper waits only
//! for those pids, never for anyone else's children.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use berth_supervisor::api::{decode_response, encode_request, Outcome, Request, Response};
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::pipe2;

use super::launcher::Started;
use super::*;

/// What the fakes share with the test.
#[derive(Debug, Default)]
struct Shared {
    /// A launch is between its start and its end.
    in_launch: AtomicBool,
    /// The reaper was asked to reap while a launch ran.
    early_reaps: AtomicUsize,
    pids: Mutex<HashMap<String, i32>>,
    /// Every process the fake started, for [`Cleanup`].
    spawned: Mutex<Vec<i32>>,
    /// The write end of each container's stdout.
    stdout: Mutex<HashMap<String, OwnedFd>>,
    /// Network attachments, in order: (name, pid).
    attached: Mutex<Vec<(String, i32)>>,
    net_reads: AtomicUsize,
    net_ticks: AtomicUsize,
}

struct FakeBackend {
    shared: Arc<Shared>,
    /// How long each container's launch takes.
    slow: HashMap<String, Duration>,
}

impl Backend for FakeBackend {
    fn launch(
        &mut self,
        job: &LaunchJob,
        prepare: &mut dyn FnMut(i32) -> Result<(), String>,
    ) -> Result<Started, String> {
        let shared = &self.shared;
        shared.in_launch.store(true, Ordering::SeqCst);
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "trap '' TERM; while :; do sleep 0.05; done"])
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id() as i32;
        // Reaped by the fake reaper, not by `Child::wait`.
        drop(child);
        lock(&shared.spawned).push(pid);
        ignores_sigterm(pid)?;
        prepare(pid)?;
        std::thread::sleep(self.slow.get(&job.name).copied().unwrap_or_default());
        let pipe = || pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(|e| e.to_string());
        let (out_r, out_w) = pipe()?;
        let (err_r, _err_w) = pipe()?;
        lock(&shared.stdout).insert(job.name.clone(), out_w);
        lock(&shared.pids).insert(job.name.clone(), pid);
        shared.in_launch.store(false, Ordering::SeqCst);
        Ok(Started {
            pid,
            stdout: out_r,
            stderr: err_r,
            notes: Vec::new(),
        })
    }

    fn exec(&mut self, _name: &str, _argv: &[String]) -> Result<Started, String> {
        Err("no exec in this test".to_owned())
    }

    fn remove(&mut self, _name: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Waits until the shell's `trap` is in place (SIGTERM in `SigIgn`).
fn ignores_sigterm(pid: i32) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if ignored & (1 << (libc::SIGTERM - 1)) != 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("pid {pid} does not ignore SIGTERM"))
}

/// Kills every fake container's process when the test ends, passed or
/// not.
struct Cleanup(Arc<Shared>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in lock(&self.0.spawned).drain(..) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits only for the fake containers' processes.
struct FakeReaper(Arc<Shared>);

impl Reaper for FakeReaper {
    fn reap(&mut self) -> Option<WaitStatus> {
        if self.0.in_launch.load(Ordering::SeqCst) {
            self.0.early_reaps.fetch_add(1, Ordering::SeqCst);
        }
        let pids: Vec<i32> = lock(&self.0.pids).values().copied().collect();
        for pid in pids {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(w @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    lock(&self.0.pids).retain(|_, p| *p != pid);
                    return Some(w);
                }
                _ => continue,
            }
        }
        None
    }
}

/// A network with one descriptor and a timer every 200 ms.
struct FakeNet {
    shared: Arc<Shared>,
    rx: UnixStream,
    next_tick: Duration,
}

impl Network for FakeNet {
    fn poll_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        vec![self.rx.as_fd()]
    }

    fn on_ready(&mut self, ready: &[bool], _now: Duration) -> bool {
        if ready.first() == Some(&true) {
            let mut buf = [0u8; 64];
            while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
            self.shared.net_reads.fetch_add(1, Ordering::SeqCst);
        }
        false
    }

    fn deadline(&self) -> Option<Duration> {
        Some(self.next_tick)
    }

    fn tick(&mut self, now: Duration) -> bool {
        self.shared.net_ticks.fetch_add(1, Ordering::SeqCst);
        self.next_tick = now + Duration::from_millis(200);
        false
    }

    fn online(&self) -> bool {
        true
    }

    fn attach(&mut self, c: &Container, pid: i32) -> Result<(), String> {
        lock(&self.shared.attached).push((c.name.clone(), pid));
        Ok(())
    }

    fn detach(&mut self, _name: &str) {}
}

/// The loop over `a` (quick to launch, ignores SIGTERM, 300 ms grace) and
/// `b` (a 5-second launch), with the test's ends of the signal pipe, the
/// network's descriptor and the control socket's path.
fn fixture(dir: &Path) -> (Loop, Arc<Shared>, UnixStream, UnixStream) {
    fixture_with(
        dir,
        crate::disk::later::Slot::Ready(crate::disk::state::State::Memory {
            why: "a host test".into(),
            device: None,
        }),
    )
}

/// [`fixture`] with STATE as `state`.
fn fixture_with(
    dir: &Path,
    state: crate::disk::later::Slot,
) -> (Loop, Arc<Shared>, UnixStream, UnixStream) {
    let shared = Arc::new(Shared::default());
    let a = Container {
        stop_grace: Duration::from_millis(300),
        restart: berth_config::RestartPolicy::Never,
        ..Container::new("a", "r")
    };
    let b = Container::new("b", "r");
    let (wake_r, wake_w) = UnixStream::pair().expect("socketpair");
    wake_r.set_nonblocking(true).expect("nonblocking");
    let (net_r, net_w) = UnixStream::pair().expect("socketpair");
    net_r.set_nonblocking(true).expect("nonblocking");
    let parts = Parts {
        containers: vec![a, b],
        backend: Box::new(FakeBackend {
            shared: shared.clone(),
            slow: HashMap::from([("b".to_owned(), Duration::from_secs(5))]),
        }),
        net: Box::new(FakeNet {
            shared: shared.clone(),
            rx: net_r,
            next_tick: uptime(),
        }),
        reaper: Box::new(FakeReaper(shared.clone())),
        wake: wake_r,
        signals: Vec::new(),
        buttons: Vec::new(),
        control: Control::bind(&dir.join("control.sock")),
        workload_memory: None,
        state,
    };
    let lp = Loop::new(parts).expect("launcher thread");
    (lp, shared, wake_w, net_w)
}

/// Turns the loop until `done` holds; false at the deadline.
fn turn_until(lp: &mut Loop, within: Duration, mut done: impl FnMut(&Loop) -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if done(lp) {
            return true;
        }
        lp.turn(Some(Duration::from_millis(20)));
    }
    done(lp)
}

/// Sends `request` on a new connection and turns the loop until the
/// answer is back.
fn ask(lp: &mut Loop, dir: &Path, request: &Request) -> Response {
    let mut conn = UnixStream::connect(dir.join("control.sock")).expect("connect");
    conn.write_all(&encode_request(request)).expect("send");
    conn.set_nonblocking(true).expect("nonblocking");
    let mut got = Vec::new();
    let answered = turn_until(lp, Duration::from_secs(3), |_| {
        read_answer(&mut conn, &mut got)
    });
    assert!(answered, "no answer to {request:?}");
    decode_response(&got).expect("a valid response")
}

/// Reads what a non-blocking connection has into `got`; whether a whole
/// answer (a line) has come.
fn read_answer(conn: &mut UnixStream, got: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got.contains(&b'\n')
}

fn state(lp: &Loop, i: usize) -> String {
    lp.node.statuses(uptime())[i].state.clone()
}

/// /proc/PID/stat's state letter.
fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|r| r.trim().chars().next())
        .unwrap_or('?')
}

#[test]
fn during_a_long_launch_the_loop_serves_output_requests_and_timers_and_defers_reaping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut lp, shared, mut wake, mut net) = fixture(dir.path());
    let _cleanup = Cleanup(shared.clone());
    lp.begin();
    assert!(turn_until(&mut lp, Duration::from_secs(3), |lp| {
        lp.node.running(0).is_some() && shared.in_launch.load(Ordering::SeqCst)
    }));
    let launch_began = Instant::now();
    let (a_pid, _) = lp.node.running(0).expect("a runs");
    assert_eq!(state(&lp, 1), "starting");

    // Output: a's line reaches its ring while b launches.
    lock(&shared.stdout)["a"]
        .try_clone()
        .map(File::from)
        .and_then(|mut f| f.write_all(b"hello from a\n"))
        .expect("write a's stdout");
    assert!(turn_until(&mut lp, Duration::from_secs(1), |lp| lp.outputs
        [0]
    .ring
    .tail(10)
    .any(|e| e.text == "hello from a")));

    // Requests: answered at once, with b still starting.
    let status = ask(&mut lp, dir.path(), &Request::Status);
    let Response::Success(Outcome::Status(status)) = status else {
        panic!("status failed: {status:?}");
    };
    let words: Vec<&str> = status.containers.iter().map(|c| c.state.as_str()).collect();
    assert_eq!(words, ["running", "starting"]);
    let stop = ask(&mut lp, dir.path(), &Request::Stop { name: "a".into() });
    assert!(
        matches!(stop, Response::Success(Outcome::Stop(_))),
        "{stop:?}"
    );

    // Timers: a ignores SIGTERM; the 300 ms grace runs out and SIGKILL
    // goes out, all during the launch. Its death wakes the loop (as
    // SIGCHLD would), but nothing is reaped until the launch is over.
    assert!(turn_until(&mut lp, Duration::from_secs(2), |_| proc_state(
        a_pid
    ) == 'Z'));
    wake.write_all(b"c").expect("wake");
    net.write_all(b"n").expect("network");
    let ticks = shared.net_ticks.load(Ordering::SeqCst);
    assert!(turn_until(&mut lp, Duration::from_secs(1), |_| {
        shared.net_reads.load(Ordering::SeqCst) > 0
            && shared.net_ticks.load(Ordering::SeqCst) > ticks
    }));
    assert!(
        shared.in_launch.load(Ordering::SeqCst),
        "the launch is still running"
    );
    assert!(launch_began.elapsed() < Duration::from_secs(4));
    assert_eq!(
        state(&lp, 0),
        "stopping",
        "a is not reaped during the launch"
    );
    assert_eq!(proc_state(a_pid), 'Z');

    // After the launch: b runs, attached before it ran; a's exit is routed.
    assert!(turn_until(&mut lp, Duration::from_secs(8), |lp| lp
        .node
        .running(1)
        .is_some()));
    let (b_pid, _) = lp.node.running(1).expect("b runs");
    assert!(lock(&shared.attached).contains(&("b".to_owned(), b_pid)));
    assert!(turn_until(&mut lp, Duration::from_secs(2), |lp| state(
        lp, 0
    )
        == "stopped"));
    assert_eq!(shared.early_reaps.load(Ordering::SeqCst), 0);
    let last = &lp.node.statuses(uptime())[0].last_exit;
    assert_eq!(last.as_deref(), Some("killed by signal SIGKILL (9)"));
}

#[test]
fn state_left_to_the_loop_waits_for_the_launches_and_a_status_waits_for_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let began = Arc::new(AtomicBool::new(false));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let flag = began.clone();
    let job = Box::new(move || {
        flag.store(true, Ordering::SeqCst);
        let _ = released.recv_timeout(Duration::from_secs(20));
        crate::disk::state::State::Memory {
            why: "set up by the loop".into(),
            device: None,
        }
    });
    let (mut lp, shared, _wake, _net) =
        fixture_with(dir.path(), crate::disk::later::Slot::Later(job));
    let _cleanup = Cleanup(shared.clone());
    lp.begin();
    // b's launch takes 5 s: the boot's first launches have not ended.
    assert!(turn_until(&mut lp, Duration::from_secs(3), |lp| {
        lp.node.running(0).is_some() && shared.in_launch.load(Ordering::SeqCst)
    }));
    assert!(
        !began.load(Ordering::SeqCst),
        "STATE began before the launches ended"
    );

    // A status needs STATE: it begins now, and the answer waits for it.
    let mut conn = UnixStream::connect(dir.path().join("control.sock")).expect("connect");
    conn.write_all(&encode_request(&Request::Status))
        .expect("send");
    conn.set_nonblocking(true).expect("nonblocking");
    assert!(turn_until(&mut lp, Duration::from_secs(3), |_| began
        .load(Ordering::SeqCst)));
    let mut got = Vec::new();
    assert!(
        !turn_until(&mut lp, Duration::from_millis(300), |_| read_answer(
            &mut conn, &mut got
        )),
        "answered before STATE was set up"
    );
    release.send(()).expect("release the job");
    assert!(turn_until(
        &mut lp,
        Duration::from_secs(3),
        |_| read_answer(&mut conn, &mut got)
    ));
    let Ok(Response::Success(Outcome::Status(status))) = decode_response(&got) else {
        panic!("no status: {}", String::from_utf8_lossy(&got));
    };
    assert!(
        status.node.state.ends_with("): set up by the loop"),
        "{}",
        status.node.state
    );
}
