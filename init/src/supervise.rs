//! The supervisor loop: starts the manifest's containers, copies their
//! output line by line to the console, reaps every child, and carries out
//! what each container's [`Lifecycle`] decides (restart with backoff, stop
//! with a grace period). Shutdown requests — signals to PID 1 and the
//! power button — stop every container and then end in
//! [`shutdown::finish`].
//!
//! One thread; signals only wake `poll` through a self-pipe (signal-hook),
//! and reaping happens only here, never while libcontainer runs a launch
//! (it waits on its own intermediate process).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::net::node::Net;
use berth_config::network::NETWORK_ONLINE;
use berth_config::Phase;
use berth_config::Probe;
use berth_config::{layout, Container, Kind};
use berth_supervisor::api::{self, ErrorCode, Outcome, Request, Response};
use berth_supervisor::deps::Graph;
use berth_supervisor::exit::{signal_name, ExitStatus};
use berth_supervisor::health::{Checker, HealthAction, HealthEvent};
use berth_supervisor::lifecycle::{Action, Event, Lifecycle, State as LcState};
use berth_supervisor::lines::LineSplitter;
use berth_supervisor::phases::{SeqAction, SeqEvent, Sequencer, Stage};
use berth_supervisor::power::{self, PowerAction};
use berth_supervisor::ring::{Ring, Stream as RingStream};
use berth_supervisor::runtime::{Handle, Launched, Runtime};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::{console, uptime};
use crate::container_root;
use crate::control::{Control, Follow};
use crate::devcgroup;
use crate::fatal::{chain, Fatal};
use crate::os::RealOs;
use crate::scrub::{Scrub, ScrubResult};

mod requests;
mod sessions;
use crate::{kmsg, netns, powerbutton, shutdown, system};

/// One output stream of a running container.
#[derive(Debug, Default)]
struct Stream {
    fd: Option<OwnedFd>,
    lines: LineSplitter,
}

/// The live part of a started container.
#[derive(Debug)]
struct Running {
    container: Handle,
    pid: Pid,
}

/// A container the loop looks after.
#[derive(Debug)]
struct Slot {
    spec: Container,
    lifecycle: Lifecycle,
    running: Option<Running>,
    streams: [Stream; 2],
    /// Every line it printed, across restarts, for `berth logs`.
    ring: Ring,
    /// Should run but waits for what it depends on (`after`, `requires`).
    wanted: bool,
    /// Its health check, if it has one.
    checker: Option<Checker>,
    /// Counts its runs, so a late probe result of an old run is ignored.
    generation: u64,
    /// Starts so far, the last one's time, and how the last run ended.
    starts: u32,
    started_at: Option<Duration>,
    last_exit: Option<ExitStatus>,
}

/// A shutdown in progress.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    action: PowerAction,
    started: Instant,
}

/// The loop's state.
#[derive(Debug)]
struct Supervisor {
    runtime: Runtime,
    slots: Vec<Slot>,
    wake: UnixStream,
    /// Set by the signal handlers, one per power signal.
    requested: Vec<(i32, Arc<AtomicBool>)>,
    buttons: Vec<File>,
    shutdown: Option<Shutdown>,
    seq: Sequencer,
    graph: Graph,
    control: Control,
    /// Exec commands and health probes in flight.
    sessions: Vec<sessions::Session>,
    /// Interfaces, DHCP, the bridge and the name files.
    net: Net,
    /// The one read of the whole verified root, while it runs.
    scrub: Option<Scrub>,
    /// The root's integrity for `berth status`.
    root: String,
    /// `memory.max` of a workload without a `memory` key (see
    /// [`crate::cgroups::limit_workloads`]).
    workload_memory: Option<u64>,
}

/// Runs forever; returns only if the loop cannot be set up.
pub fn run(containers: Vec<Container>, net: Net, workload_memory: Option<u64>) -> Fatal {
    let mut sup = match Supervisor::new(containers, net, workload_memory) {
        Ok(s) => s,
        Err(f) => return f,
    };
    sup.start_all();
    sup.run()
}

impl Supervisor {
    fn new(
        containers: Vec<Container>,
        net: Net,
        workload_memory: Option<u64>,
    ) -> Result<Supervisor, Fatal> {
        let (wake_r, wake_w) =
            UnixStream::pair().map_err(|e| Fatal::new("create the signal pipe", e))?;
        let _ = wake_r.set_nonblocking(true);
        let _ = wake_w.set_nonblocking(true);
        let mut requested = Vec::new();
        for &sig in power::SIGNALS.iter().chain(&[libc::SIGCHLD]) {
            let w = wake_w
                .try_clone()
                .map_err(|e| Fatal::new("clone the signal pipe", e))?;
            signal_hook::low_level::pipe::register(sig, w)
                .map_err(|e| Fatal::new("register signal handlers", e))?;
            if sig != libc::SIGCHLD {
                let flag = Arc::new(AtomicBool::new(false));
                signal_hook::flag::register(sig, flag.clone())
                    .map_err(|e| Fatal::new("register signal handlers", e))?;
                requested.push((sig, flag));
            }
        }
        // ctrl-alt-del then arrives as SIGINT instead of an immediate reboot.
        if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
            log::warn!("disable the kernel's ctrl-alt-del reboot: {e}");
        }
        let seq = Sequencer::new(&containers);
        let graph = Graph::new(&containers);
        let slots = containers
            .into_iter()
            .map(|spec| Slot {
                lifecycle: Lifecycle::new(&spec),
                running: None,
                streams: [Stream::default(), Stream::default()],
                ring: Ring::new(spec.log_size),
                wanted: false,
                checker: spec.health.as_ref().map(Checker::new),
                generation: 0,
                starts: 0,
                started_at: None,
                last_exit: None,
                spec,
            })
            .collect();
        Ok(Supervisor {
            runtime: Runtime::new(layout::RUNTIME_STATE),
            slots,
            wake: wake_r,
            requested,
            buttons: powerbutton::open_all(),
            shutdown: None,
            seq,
            graph,
            control: Control::bind(Path::new(api::SOCKET_PATH)),
            sessions: Vec::new(),
            net,
            scrub: None,
            root: "not verified".to_owned(),
            workload_memory,
        })
    }

    fn start_all(&mut self) {
        if self.slots.is_empty() {
            log::info!("no containers to start");
        }
        self.sequence(SeqEvent::Begin);
        self.start_scrub();
    }

    /// Reads the whole verified root once, in a child at idle I/O
    /// priority, so corruption anywhere shows within a minute of boot and
    /// not only when a damaged file happens to be read.
    fn start_scrub(&mut self) {
        let Some(device) = crate::dm::find_by_name(layout::VERITY_DEVICE) else {
            return;
        };
        match Scrub::start(&device) {
            // Scrub::start logs the start line itself.
            Ok(s) => {
                self.root = "verified (dm-verity), scrub running".to_owned();
                self.scrub = Some(s);
            }
            Err(e) => {
                log::error!("dm-verity scrub of {}: {e}", device.display());
                self.root = format!("verified (dm-verity), scrub failed to start: {e}");
            }
        }
    }

    /// The scrub's verdict: on the console and in `berth status`.
    fn scrub_done(&mut self, result: ScrubResult) {
        if result.is_corrupt() {
            log::error!("{result}");
            self.root = format!("CORRUPT: {result}");
        } else {
            log::info!("{result}");
            self.root = format!("verified (dm-verity), {result}");
        }
    }

    /// Gives the phase sequencer an event and carries out its actions.
    fn sequence(&mut self, event: SeqEvent) {
        let before = self.seq.stage();
        for action in self.seq.next(event) {
            match action {
                SeqAction::Log(line) => log::info!("{line}"),
                SeqAction::Start(i) => {
                    if self.slots[i].spec.phase == Phase::Service {
                        // Services start as soon as what they wait for is
                        // ready; independent ones at once.
                        self.slots[i].wanted = true;
                    } else {
                        self.launch(i);
                    }
                }
                SeqAction::StopServices => {
                    let now = uptime();
                    for s in &mut self.slots {
                        s.wanted = false;
                    }
                    // Dependents first: the reverse of the start order,
                    // then any run-once container still running.
                    let mut order = self.graph.stop_order();
                    order.extend(
                        (0..self.slots.len())
                            .rev()
                            .filter(|i| self.slots[*i].spec.phase == Phase::OnBoot),
                    );
                    for i in order {
                        self.feed(i, Event::Stop { now });
                    }
                }
                SeqAction::Kill(i) => self.signal(i, libc::SIGKILL),
                SeqAction::Finish => {
                    if let Some(sd) = self.shutdown {
                        shutdown::finish(sd.action, sd.started);
                    }
                }
            }
        }
        self.start_waiting();
        if before != Stage::Services && self.seq.stage() == Stage::Services {
            let running = self.slots.iter().filter(|s| s.running.is_some()).count();
            log::info!(
                "supervising {running} of {} container(s); PID 1 RSS {} KiB",
                self.slots.len(),
                rss_kib().map_or_else(|| "unknown".to_owned(), |k| k.to_string())
            );
        }
    }

    /// Whether container `i` counts as ready for those that wait on it:
    /// running, and past its first passing health check if it has one.
    fn is_ready(&self, i: usize) -> bool {
        let slot = &self.slots[i];
        matches!(slot.lifecycle.state(), LcState::Running { .. })
            && slot.checker.as_ref().is_none_or(Checker::is_ready)
    }

    fn deps_ready(&self, i: usize) -> bool {
        self.graph.can_start(i, &|j| self.is_ready(j))
            && (self.net.online() || !waits_for_network(&self.slots[i].spec))
    }

    /// The names of what `i` waits for that is not ready yet.
    fn waiting_on(&self, i: usize) -> String {
        let mut names: Vec<&str> = self
            .graph
            .waits_for(i)
            .iter()
            .filter(|j| !self.is_ready(**j))
            .map(|j| self.slots[*j].spec.name.as_str())
            .collect();
        if waits_for_network(&self.slots[i].spec) && !self.net.online() {
            names.push(NETWORK_ONLINE);
        }
        names.join(", ")
    }

    /// Starts every wanted container whose dependencies are ready, until
    /// nothing more can start (a start can make others ready).
    fn start_waiting(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        loop {
            let next = (0..self.slots.len()).find(|&i| self.slots[i].wanted && self.deps_ready(i));
            let Some(i) = next else { return };
            self.slots[i].wanted = false;
            let reason = "what it requires is ready again".to_owned();
            self.feed(i, Event::Start { reason });
        }
    }

    /// Stops what `requires` container `i`, which just went down, and
    /// marks it to start again once `i` is ready.
    fn stop_dependents(&mut self, i: usize) {
        if self.shutdown.is_some() {
            return;
        }
        let now = uptime();
        for d in self.graph.required_by(i) {
            if self.slots[d].running.is_some()
                || matches!(self.slots[d].lifecycle.state(), LcState::Backoff { .. })
            {
                log::info!(
                    "stopping {}: it requires {}, which went down",
                    self.slots[d].spec.name,
                    self.slots[i].spec.name
                );
                self.feed(d, Event::Stop { now });
                self.slots[d].wanted = true;
            }
        }
    }

    /// A run-once container that has settled tells the sequencer.
    fn run_once_settled(&mut self, i: usize, status: Option<ExitStatus>) {
        let slot = &self.slots[i];
        if slot.spec.phase != Phase::Service && slot.lifecycle.settled() {
            self.sequence(SeqEvent::Finished {
                index: i,
                status,
                at: uptime(),
            });
        }
    }

    fn signal(&self, i: usize, sig: i32) {
        if let Some(r) = &self.slots[i].running {
            let sent = Signal::try_from(sig)
                .map_err(|e| e.to_string())
                .and_then(|s| kill(r.pid, s).map_err(|e| e.to_string()));
            if let Err(e) = sent {
                log::warn!(
                    "signal {} to {}: {e}",
                    signal_name(sig),
                    self.slots[i].spec.name
                );
            }
        }
    }

    fn run(mut self) -> Fatal {
        console().defer_writes();
        loop {
            // Once a turn (and so whenever poll saw the console writable).
            console().flush();
            let ready = match self.wait() {
                Ok(r) => r,
                Err(e) => {
                    log::error!("poll: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            for (i, s) in ready.streams {
                pump(&mut self.slots[i], s, false);
            }
            if ready.wake {
                let mut buf = [0u8; 256];
                while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
                self.check_signals();
                self.reap();
            }
            if ready.button {
                self.check_buttons();
            }
            if ready.scrub {
                if let Some(result) = self.scrub.as_mut().and_then(Scrub::on_readable) {
                    self.scrub_done(result);
                }
            }
            if ready.net.iter().any(|r| *r) && self.net.on_ready(&ready.net, uptime()) {
                self.start_waiting();
            }
            for (k, j) in ready.sessions {
                self.read_session(k, j);
            }
            self.finish_sessions();
            for (id, request) in self.control.service(&ready.control) {
                if let Some((response, follow)) = self.handle(id, request) {
                    self.control.reply(id, &response, follow);
                }
            }
            self.tick();
            self.feed_followers();
            self.control.flush();
            if self.seq.stage() == Stage::StoppingServices
                && self
                    .slots
                    .iter()
                    .filter(|s| s.spec.phase != Phase::OnShutdown)
                    .all(|s| s.lifecycle.settled())
            {
                if let Some(sd) = self.shutdown {
                    log::info!(
                        "shutdown: containers stopped ({} ms)",
                        sd.started.elapsed().as_millis()
                    );
                }
                self.sequence(SeqEvent::ServicesSettled { now: uptime() });
            }
        }
    }

    /// Handles network events that arrived meanwhile, without waiting: a
    /// launch takes a while, and a DHCP answer should not wait for every
    /// container of a boot to start. (A container waiting for
    /// `network-online` is then picked up by `start_waiting`'s next round.)
    fn poll_net(&mut self) {
        let now = uptime();
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = self
                .net
                .poll_fds()
                .into_iter()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                Vec::new()
            } else {
                fds.iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect()
            }
        };
        if ready.iter().any(|r| *r) {
            self.net.on_ready(&ready, now);
        }
        if self.net.deadline().is_some_and(|t| t <= now) {
            self.net.tick(now);
        }
    }

    /// Launches slot `i` and feeds the outcome to its lifecycle.
    fn launch(&mut self, i: usize) {
        self.poll_net();
        if !self.deps_ready(i) {
            // A restart by policy while a requirement is down: wait for it
            // instead (start_waiting picks it up).
            log::info!(
                "{} waits for {}",
                self.slots[i].spec.name,
                self.waiting_on(i)
            );
            self.feed(i, Event::Stop { now: uptime() });
            self.slots[i].wanted = self.shutdown.is_none();
            return;
        }
        self.slots[i].wanted = false;
        let slot = &mut self.slots[i];
        let name = slot.spec.name.clone();
        let bundle = Path::new(layout::BUNDLES).join(&name);
        let t = Instant::now();
        if !slot.spec.readonly {
            let owner = slot.spec.userns.map(|u| u.host_id);
            let lower = bundle.join("rootfs");
            let prepared =
                container_root::prepare(&RealOs, &name, &lower, slot.spec.root_size, owner);
            if let Err(error) = prepared {
                self.feed(
                    i,
                    Event::LaunchFailed {
                        at: uptime(),
                        error: chain(&error),
                    },
                );
                self.run_once_settled(i, None);
                return;
            }
        }
        let slot = &mut self.slots[i];
        let own_netns = slot.spec.kind == Kind::Workload && slot.spec.network.own_namespace();
        let net = &mut self.net;
        let spec = &slot.spec;
        let default_memory = self
            .workload_memory
            .filter(|_| spec.kind == Kind::Workload && spec.memory.is_none());
        let result = self.runtime.launch(&name, &bundle, |pid| {
            let cgroup = Path::new("/sys/fs/cgroup")
                .join(berth_supervisor::spec::cgroup_path(spec).trim_start_matches('/'));
            if !spec.privileged {
                devcgroup::confine(&cgroup)?;
            }
            if let Some(bytes) = default_memory {
                let file = cgroup.join("memory.max");
                std::fs::write(&file, bytes.to_string())
                    .map_err(|e| format!("default memory limit {}: {e}", file.display()))?;
            }
            if own_netns {
                if let Err(e) = netns::loopback_up_in(pid) {
                    log::warn!("{name}: {e}");
                }
            }
            net.attach(spec, pid.as_raw())
        });
        // libcontainer touched PID 1's own oom_score_adj and dumpable flag.
        system::protect_pid1();
        let event = match result {
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
                slot.starts += 1;
                slot.started_at = Some(uptime());
                slot.generation += 1;
                slot.running = Some(Running { container, pid });
                Event::Launched { at: uptime() }
            }
            Err(e) => {
                self.net.detach(&name);
                container_root::release(&RealOs, &name);
                Event::LaunchFailed {
                    at: uptime(),
                    error: chain(&e),
                }
            }
        };
        let failed = matches!(event, Event::LaunchFailed { .. });
        self.feed(i, event);
        if failed {
            self.run_once_settled(i, None);
        } else {
            self.health_feed(i, HealthEvent::Started { at: uptime() });
            self.start_waiting();
        }
    }

    /// Gives slot `i`'s lifecycle an event and carries out its actions.
    fn feed(&mut self, i: usize, event: Event) {
        let actions = self.slots[i].lifecycle.next(event);
        for action in actions {
            match action {
                Action::Log(line) => log::info!("{line}"),
                Action::Launch => self.launch(i),
                Action::Signal(sig) => self.signal(i, sig),
            }
        }
    }

    /// Lets every lifecycle see the time (restart delays, grace periods).
    fn tick(&mut self) {
        let now = uptime();
        if self.net.deadline().is_some_and(|t| t <= now) && self.net.tick(now) {
            self.start_waiting();
        }
        if self.seq.wake_at().is_some_and(|t| t <= now) {
            self.sequence(SeqEvent::Tick { now });
        }
        self.expire_sessions();
        for i in 0..self.slots.len() {
            if self.slots[i].lifecycle.wake_at().is_some_and(|t| t <= now) {
                self.feed(i, Event::Tick { now });
            }
            if self.slots[i]
                .checker
                .as_ref()
                .and_then(Checker::wake_at)
                .is_some_and(|t| t <= now)
            {
                self.health_feed(i, HealthEvent::Tick { now });
            }
        }
    }

    fn check_signals(&mut self) {
        let mut hits = Vec::new();
        for (sig, flag) in &self.requested {
            if flag.swap(false, Ordering::SeqCst) {
                hits.push(*sig);
            }
        }
        for sig in hits {
            if let Some(action) = power::action_for_signal(sig) {
                self.request_shutdown(action, &format!("received {}", signal_name(sig)));
            }
        }
    }

    fn check_buttons(&mut self) {
        let mut pressed = false;
        for b in &mut self.buttons {
            let mut buf = [0u8; power::INPUT_EVENT_SIZE * 16];
            while let Ok(n) = b.read(&mut buf) {
                if n == 0 {
                    break;
                }
                pressed |= power::has_power_press(&buf[..n]);
            }
        }
        if pressed {
            self.request_shutdown(PowerAction::Poweroff, "power button pressed");
        }
    }

    /// Starts an orderly shutdown: every container gets its stop signal, in
    /// reverse manifest order; the loop goes on reaping and logging until
    /// all have stopped.
    fn request_shutdown(&mut self, action: PowerAction, why: &str) {
        if let Some(sd) = self.shutdown {
            log::info!("{why}: already shutting down ({})", sd.action.as_str());
            return;
        }
        log::info!("{why}: {} requested; stopping containers", action.as_str());
        self.shutdown = Some(Shutdown {
            action,
            started: Instant::now(),
        });
        self.sequence(SeqEvent::Shutdown);
    }

    /// Polls the signal pipe, every open output stream, the power buttons
    /// and, when lines wait, the console, until the next lifecycle deadline.
    fn wait(&self) -> Result<Ready, Errno> {
        let console = console();
        let mut fds = vec![PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
        let mut owners = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            for (s, stream) in slot.streams.iter().enumerate() {
                if let Some(fd) = &stream.fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    owners.push((i, s));
                }
            }
        }
        let buttons_at = fds.len();
        for b in &self.buttons {
            fds.push(PollFd::new(b.as_fd(), PollFlags::POLLIN));
        }
        let sessions_at = fds.len();
        let session_fds = self.session_fds();
        let session_owners: Vec<(usize, usize)> =
            session_fds.iter().map(|(k, j, _)| (*k, *j)).collect();
        for (_, _, fd) in session_fds {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let scrub_at = fds.len();
        let scrub_fd = self.scrub.as_ref().and_then(Scrub::fd);
        let scrub_n = usize::from(scrub_fd.is_some());
        if let Some(fd) = scrub_fd {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let net_at = fds.len();
        let net_fds = self.net.poll_fds();
        let net_n = net_fds.len();
        for fd in net_fds {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let control_at = fds.len();
        let control_fds = self.control.poll_fds();
        let control_n = control_fds.len();
        for (fd, flags) in control_fds {
            fds.push(PollFd::new(fd, flags));
        }
        if let Some(fd) = console.pending().then(|| console.fd()).flatten() {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
        }
        // Sleep until the next deadline: a lifecycle's (restart delay,
        // grace period), the sequencer's (onshutdown), a client's.
        let next = self
            .slots
            .iter()
            .filter_map(|s| s.lifecycle.wake_at())
            .chain(self.seq.wake_at())
            .chain(self.net.deadline())
            .chain(
                self.slots
                    .iter()
                    .filter_map(|s| s.checker.as_ref().and_then(Checker::wake_at)),
            )
            .min()
            .map(|t| t.saturating_sub(uptime()));
        let deadlines = self
            .control
            .deadline()
            .into_iter()
            .chain(self.session_deadline());
        let control_wait = deadlines
            .min()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = match next.into_iter().chain(control_wait).min() {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.as_millis().saturating_add(1);
                PollTimeout::try_from(ms.min(60_000) as u32).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Ready::default()),
            Err(e) => return Err(e),
        }
        let hit = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let mut ready = Ready {
            wake: hit(&fds[0]),
            button: fds[buttons_at..buttons_at + self.buttons.len()]
                .iter()
                .any(hit),
            streams: Vec::new(),
            sessions: Vec::new(),
            net: fds[net_at..net_at + net_n].iter().map(hit).collect(),
            scrub: fds[scrub_at..scrub_at + scrub_n].iter().any(hit),
            control: fds[control_at..control_at + control_n]
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect(),
        };
        for (k, owner) in owners.iter().enumerate() {
            if hit(&fds[k + 1]) {
                ready.streams.push(*owner);
            }
        }
        for (k, owner) in session_owners.iter().enumerate() {
            if hit(&fds[sessions_at + k]) {
                ready.sessions.push(*owner);
            }
        }
        Ok(ready)
    }

    /// Reaps every exited child and routes it to its container; logs
    /// orphans at debug level.
    fn reap(&mut self) {
        loop {
            let ws = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG));
            if let Ok(w) = ws {
                if let Some(scrub) = self.scrub.as_mut().filter(|s| w.pid() == Some(s.pid())) {
                    let result = scrub.on_exit(w);
                    self.scrub = None;
                    if let Some(result) = result {
                        self.scrub_done(result);
                    }
                    continue;
                }
            }
            let (pid, status) = match ws {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(w) => match (w.pid(), ExitStatus::from_wait(w)) {
                    (Some(pid), Some(status)) => (pid, status),
                    _ => continue,
                },
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log::error!("waitpid: {e}");
                    return;
                }
            };
            match self
                .slots
                .iter()
                .position(|s| s.running.as_ref().is_some_and(|r| r.pid == pid))
            {
                Some(i) => self.exited(i, status),
                None => {
                    if !self.session_exited(pid, status) {
                        log::debug!("reaped orphan pid {pid}: {status}");
                    }
                }
            }
        }
    }

    fn exited(&mut self, i: usize, status: ExitStatus) {
        self.net.detach(&self.slots[i].spec.name);
        container_root::release(&RealOs, &self.slots[i].spec.name);
        let slot = &mut self.slots[i];
        // Print what the process wrote before it died ahead of its exit line.
        pump(slot, 0, true);
        pump(slot, 1, true);
        slot.last_exit = Some(status);
        if let Some(mut running) = slot.running.take() {
            if let Err(e) = self.runtime.remove(&slot.spec.name, &mut running.container) {
                log::warn!("clean up {}: {}", slot.spec.name, chain(&e));
            }
        }
        self.feed(
            i,
            Event::Exited {
                at: uptime(),
                status,
            },
        );
        self.health_feed(i, HealthEvent::Stopped);
        self.run_once_settled(i, Some(status));
        self.stop_dependents(i);
        self.start_waiting();
    }
}

/// Whether `c` lists `network-online` in `after`.
fn waits_for_network(c: &Container) -> bool {
    c.after.iter().any(|a| a == NETWORK_ONLINE)
}

#[derive(Debug, Default)]
struct Ready {
    wake: bool,
    button: bool,
    streams: Vec<(usize, usize)>,
    sessions: Vec<(usize, usize)>,
    net: Vec<bool>,
    scrub: bool,
    control: Vec<PollFlags>,
}

/// PID 1's resident set size, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Bytes one stream may hand over in one turn of the loop: a container
/// writing as fast as it can gets this much, then the other streams, the
/// control socket, signals and timers have their turn. Its writes block on
/// the full pipe meanwhile, which is the back-pressure it should feel.
const TURN_BYTES: usize = 64 * 1024;

/// Bytes read after a container's process exited: what it wrote before it
/// died, but not the endless output of a descendant that outlived it (a
/// `host-pid` container's daemon, say), which would hold the loop.
const EXIT_BYTES: usize = 1024 * 1024;

/// Reads what a stream has, up to its turn's share, and prints its complete
/// lines; at end of file (or when `all`, after the process exited) prints
/// the rest too and closes the stream.
fn pump(slot: &mut Slot, s: usize, all: bool) {
    let name = slot.spec.name.clone();
    let kind = if s == 0 {
        RingStream::Stdout
    } else {
        RingStream::Stderr
    };
    let stream = &mut slot.streams[s];
    let Some(fd) = stream.fd.as_ref() else { return };
    let mut buf = [0u8; 16 * 1024];
    let mut eof = false;
    let budget = if all { EXIT_BYTES } else { TURN_BYTES };
    let mut taken = 0;
    while taken < budget {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                taken += n;
                let lines = stream.lines.push(&buf[..n]);
                let now = uptime();
                let mut c = console();
                for l in lines {
                    if slot.spec.console {
                        c.line(&name, &l);
                    }
                    slot.ring.push(now, kind, l);
                }
                if n < buf.len() {
                    break; // the pipe is empty for now
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => break, // EAGAIN: drained for now.
        }
    }
    if eof || all {
        if let Some(rest) = stream.lines.finish() {
            if slot.spec.console {
                console().line(&name, &rest);
            }
            slot.ring.push(uptime(), kind, rest);
        }
        stream.fd = None;
    }
}
