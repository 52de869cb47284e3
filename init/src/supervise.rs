//! The supervisor loop: starts the manifest's containers, copies their
//! output line by line to the console, reaps every child and reports each
//! exit. One thread; signals only wake `poll` through a self-pipe
//! (signal-hook), and reaping happens only here, never while libcontainer
//! runs a launch (it waits on its own intermediate process).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use berth_config::{layout, Container};
use berth_supervisor::exit::ExitStatus;
use berth_supervisor::lines::LineSplitter;
use berth_supervisor::runtime::{Launched, Runtime};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::console;
use crate::fatal::{chain, Fatal};
use crate::system;

/// One output stream of a running container.
#[derive(Debug, Default)]
struct Stream {
    fd: Option<OwnedFd>,
    lines: LineSplitter,
}

/// The live part of a started container.
#[derive(Debug)]
struct Running {
    container: berth_supervisor::runtime::Handle,
    pid: Pid,
}

/// A container the loop looks after.
#[derive(Debug)]
struct Slot {
    spec: Container,
    running: Option<Running>,
    streams: [Stream; 2],
    last_exit: Option<ExitStatus>,
}

/// Runs forever; returns only if the loop itself cannot go on.
pub fn run(containers: Vec<Container>) -> Fatal {
    let (wake_r, wake_w) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => return Fatal::new("create the signal pipe", e),
    };
    let _ = wake_r.set_nonblocking(true);
    if let Err(e) = signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, wake_w) {
        return Fatal::new("register the SIGCHLD handler", e);
    }

    let runtime = Runtime::new(layout::RUNTIME_STATE);
    let mut slots: Vec<Slot> = containers
        .into_iter()
        .map(|spec| Slot {
            spec,
            running: None,
            streams: [Stream::default(), Stream::default()],
            last_exit: None,
        })
        .collect();
    if slots.is_empty() {
        log::info!("no containers to start");
    }
    for slot in &mut slots {
        start(&runtime, slot);
    }
    let running = slots.iter().filter(|s| s.running.is_some()).count();
    log::info!(
        "supervising {running} of {} container(s); PID 1 RSS {} KiB",
        slots.len(),
        rss_kib().map_or_else(|| "unknown".to_owned(), |k| k.to_string())
    );

    let mut wake_r = wake_r;
    loop {
        let ready = match wait(&wake_r, &slots) {
            Ok(r) => r,
            Err(e) => {
                log::error!("poll: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        console().flush();
        for (i, s) in ready.streams {
            pump(&mut slots[i], s, false);
        }
        if ready.wake {
            let mut buf = [0u8; 64];
            while matches!(wake_r.read(&mut buf), Ok(n) if n > 0) {}
            reap(&runtime, &mut slots);
        }
    }
}

fn start(runtime: &Runtime, slot: &mut Slot) {
    let name = slot.spec.name.clone();
    let bundle = Path::new(layout::BUNDLES).join(&name);
    let t = std::time::Instant::now();
    let result = runtime.launch(&name, &bundle);
    // libcontainer touched PID 1's own oom_score_adj and dumpable flag.
    system::protect_pid1();
    match result {
        Ok(Launched {
            container,
            pid,
            stdout,
            stderr,
        }) => {
            log::info!(
                "started {name} ({}, pid {pid}) in {} ms",
                slot.spec.kind.as_str(),
                t.elapsed().as_millis()
            );
            slot.streams[0].fd = Some(stdout);
            slot.streams[1].fd = Some(stderr);
            slot.running = Some(Running { container, pid });
        }
        Err(e) => log::error!("start {name}: {}", chain(&e)),
    }
}

#[derive(Debug, Default)]
struct Ready {
    wake: bool,
    streams: Vec<(usize, usize)>,
}

/// PID 1's resident set size, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Polls the signal pipe, every open output stream and, when lines wait,
/// the console.
fn wait(wake: &UnixStream, slots: &[Slot]) -> Result<Ready, Errno> {
    let console = console();
    let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
    let mut owners = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        for (s, stream) in slot.streams.iter().enumerate() {
            if let Some(fd) = &stream.fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                owners.push((i, s));
            }
        }
    }
    let console_fd = if console.pending() {
        console.fd()
    } else {
        None
    };
    if let Some(fd) = console_fd {
        fds.push(PollFd::new(fd, PollFlags::POLLOUT));
    }
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok(Ready::default()),
        Err(e) => return Err(e),
    }
    let hit = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    let mut ready = Ready {
        wake: hit(&fds[0]),
        streams: Vec::new(),
    };
    for (k, owner) in owners.iter().enumerate() {
        if hit(&fds[k + 1]) {
            ready.streams.push(*owner);
        }
    }
    Ok(ready)
}

/// Reads what a stream has and prints its complete lines; at end of file
/// (or when `all`, after the process exited) prints the rest too.
fn pump(slot: &mut Slot, s: usize, all: bool) {
    let name = slot.spec.name.clone();
    let stream = &mut slot.streams[s];
    let Some(fd) = stream.fd.as_ref() else { return };
    let mut buf = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                let lines = stream.lines.push(&buf[..n]);
                let mut c = console();
                for l in lines {
                    c.line(&name, &l);
                }
                // Take what the pipe had now; come back after the others
                // had their turn, unless the process is gone.
                if !all && n < buf.len() {
                    break;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => break, // EAGAIN: drained for now.
        }
    }
    if eof || all {
        if let Some(rest) = stream.lines.finish() {
            console().line(&name, &rest);
        }
    }
    if eof {
        stream.fd = None;
    }
}

/// Reaps every exited child and routes it to its container; logs orphans.
fn reap(runtime: &Runtime, slots: &mut [Slot]) {
    let pids: BTreeMap<Pid, usize> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.running.as_ref().map(|r| (r.pid, i)))
        .collect();
    loop {
        let (pid, status) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Code(code)),
            Ok(WaitStatus::Signaled(pid, sig, core)) => (
                pid,
                ExitStatus::Signal {
                    signal: sig as i32,
                    core_dumped: core,
                },
            ),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                log::error!("waitpid: {e}");
                return;
            }
        };
        match pids.get(&pid) {
            Some(&i) => exited(runtime, &mut slots[i], status),
            None => log::debug!("reaped orphan pid {pid}: {status}"),
        }
    }
}

fn exited(runtime: &Runtime, slot: &mut Slot, status: ExitStatus) {
    // Print what the process wrote before it died ahead of its exit line.
    pump(slot, 0, true);
    pump(slot, 1, true);
    let name = slot.spec.name.clone();
    log::info!("{name} {status}");
    slot.last_exit = Some(status);
    if let Some(mut running) = slot.running.take() {
        if let Err(e) = runtime.remove(&name, &mut running.container) {
            log::warn!("clean up {name}: {}", chain(&e));
        }
    }
}
