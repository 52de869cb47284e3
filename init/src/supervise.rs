//! The supervisor loop: one thread that waits on every event source, tells
//! the pure orchestration core ([`Node`]) what happened, and carries out
//! the commands it answers with, from a queue, one at a time, here and
//! nowhere else. What starts or stops when is the core's business; this
//! loop only does it: launch (on the launcher's thread, see
//! [`launcher`]), signal, probe, answer, log, arm the timer.
//!
//! Event sources sit in one `poll` with a tag each ([`poll_set`]): the
//! signal pipe, the launcher's reports, the containers' output, the power
//! buttons, `exec` and probe sessions, the root's scrub, the network and
//! the control socket, and the console when lines wait. Signals only wake
//! the loop (signal-hook). Reaping happens only here, and never while the
//! launcher has work: libcontainer waits for its own intermediate process.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::Runtime;
use berth_config::{layout, Container, Kind};
use berth_net::node::Net;
use berth_supervisor::api;
use berth_supervisor::exit::{signal_name, ExitStatus};
use berth_supervisor::node::{Command, Event, Node};
use berth_supervisor::power::{self, PowerAction};
use nix::poll::{PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::console::{console, uptime};
use crate::fatal::Fatal;
use crate::scrub::{Scrub, ScrubResult};
use crate::{powerbutton, shutdown};
use berth_supervisor::control::{ConnId, Control};

mod backend;
mod launcher;
mod network;
mod outputs;
mod poll_set;
mod readers;
mod reaper;
mod requests;
mod sessions;
#[cfg(test)]
mod tests;

use launcher::{Backend, Job, LaunchJob, Launcher, Report};
use network::Network;
use outputs::Output;
use poll_set::PollSet;
use reaper::Reaper;
use sessions::{Purpose, Sessions};

/// Whose descriptor `poll` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The signal pipe: a signal arrived.
    Wake,
    /// The launcher reported.
    Launcher,
    /// A reader thread has an answer.
    Readers,
    /// Container `index`'s stdout (0) or stderr (1).
    Output {
        index: usize,
        stream: usize,
    },
    PowerButton,
    /// Session `id`'s stdout or stderr.
    Session {
        id: u64,
        stream: usize,
    },
    Scrub,
    /// STATE's set-up thread ended.
    State,
    /// The network's k-th descriptor.
    Net(usize),
    /// The control server's k-th descriptor.
    Control(usize),
    /// The console can take more.
    Console,
}

/// A power signal and the flag its handler sets.
type SignalFlag = (i32, Arc<AtomicBool>);

/// What the loop is built from; the tests pass fakes for the launcher's
/// backend, the network and the reaper.
pub(crate) struct Parts {
    pub containers: Vec<Container>,
    pub backend: Box<dyn Backend>,
    pub net: Box<dyn Network>,
    pub reaper: Box<dyn Reaper>,
    /// Readable when a signal arrived.
    pub wake: UnixStream,
    /// Set by the signal handlers, one per power signal.
    pub signals: Vec<SignalFlag>,
    pub buttons: Vec<File>,
    pub control: Control,
    /// `memory.max` of a workload without a `memory` key.
    pub workload_memory: Option<u64>,
    /// Where `/var/lib/berth` lives, or when it will be set up.
    pub state: crate::disk::later::Slot,
}

/// The loop's state.
pub(crate) struct Loop {
    node: Node,
    queue: VecDeque<Command>,
    /// Whether [`Loop::feed`] is carrying out the queue already.
    draining: bool,
    outputs: Vec<Output>,
    launcher: Launcher,
    net: Box<dyn Network>,
    reaper: Box<dyn Reaper>,
    wake: UnixStream,
    signals: Vec<SignalFlag>,
    buttons: Vec<File>,
    control: Control,
    sessions: Sessions,
    /// `exec` jobs with the launcher, by token.
    execs: HashMap<u64, Purpose>,
    next_token: u64,
    /// The one read of the whole verified root, while it runs.
    scrub: Option<Scrub>,
    /// When the scrub starts, unless the boot's first launches have all
    /// ended before (`Command::Supervising`):
    /// it hashes the whole root on the one CPU a small node may have, so
    /// it waits for the boot to finish rather than slow it down.
    scrub_due: Option<Duration>,
    /// The root's integrity for `berth status`.
    root: String,
    /// The core's next deadline.
    timer: Option<Duration>,
    /// A child ended and is not reaped yet.
    reap_due: bool,
    shutdown_started: Option<Instant>,
    workload_memory: Option<u64>,
    state: crate::disk::later::Slot,
    /// When STATE is set up at the latest, if it is left to the loop.
    state_due: Option<Duration>,
    /// The boot's pages are to be handed back once STATE is set up (its
    /// set-up after the first launches runs code the loop never needs).
    release_due: bool,
    /// Requests that read or write STATE, held until it is set up.
    state_waiters: Vec<(ConnId, berth_supervisor::api::Request)>,
    /// Threads answering from the disk (`boot-log`).
    readers: readers::Readers,
    /// `berth reset --state` was asked for: carried out by the shutdown.
    reset: Option<crate::disk::reset::Reset>,
    /// The console, to poll for POLLOUT ([`crate::console::Console::poll_handle`]).
    console_fd: Option<std::fs::File>,
}

/// Pages out what the boot touched of PID 1's binary (see
/// [`crate::footprint::release_boot_pages`]): once the boot's first launches
/// have ended and STATE is set up.
fn release_boot_pages() {
    if let Some((before, after)) = crate::footprint::release_boot_pages() {
        log::info!(
            "PID 1 handed back {} KiB of its binary's pages touched during boot; RSS now {}",
            before.saturating_sub(after),
            rss_line()
        );
    }
}

/// Runs forever; returns only if the loop cannot be set up.
pub fn run(
    containers: Vec<Container>,
    net: Net,
    workload_memory: Option<u64>,
    state: crate::disk::later::Slot,
) -> Fatal {
    let (wake, signals) = match register_signals() {
        Ok(s) => s,
        Err(f) => return f,
    };
    // ctrl-alt-del then arrives as SIGINT instead of an immediate reboot.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        log::warn!("disable the kernel's ctrl-alt-del reboot: {e}");
    }
    let parts = Parts {
        containers,
        backend: Box::new(backend::Libcontainer::new(Runtime::new(
            layout::RUNTIME_STATE,
        ))),
        net: Box::new(net),
        reaper: Box::new(reaper::AnyChild),
        wake,
        signals,
        buttons: powerbutton::open_all(),
        control: Control::bind(Path::new(api::SOCKET_PATH)),
        workload_memory,
        state,
    };
    let mut lp = match Loop::new(parts) {
        Ok(l) => l,
        Err(e) => return Fatal::new("start the launcher thread", e),
    };
    lp.begin();
    console().defer_writes();
    loop {
        lp.turn(None);
    }
}

/// The signal pipe and one flag per power signal.
fn register_signals() -> Result<(UnixStream, Vec<SignalFlag>), Fatal> {
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
    Ok((wake_r, requested))
}

impl Loop {
    pub(crate) fn new(parts: Parts) -> std::io::Result<Loop> {
        let outputs = parts.containers.iter().map(Output::new).collect();
        Ok(Loop {
            node: Node::new(parts.containers),
            queue: VecDeque::new(),
            draining: false,
            outputs,
            launcher: Launcher::spawn(parts.backend)?,
            net: parts.net,
            reaper: parts.reaper,
            wake: parts.wake,
            signals: parts.signals,
            buttons: parts.buttons,
            control: parts.control,
            sessions: Sessions::default(),
            execs: HashMap::new(),
            next_token: 0,
            scrub: None,
            scrub_due: Some(uptime() + SCRUB_LATEST),
            root: "not verified".to_owned(),
            timer: None,
            reap_due: false,
            shutdown_started: None,
            workload_memory: parts.workload_memory,
            state_due: parts
                .state
                .ready()
                .is_none()
                .then(|| uptime() + crate::disk::later::STATE_LATEST),
            state: parts.state,
            release_due: false,
            state_waiters: Vec::new(),
            reset: None,
            readers: readers::Readers::new()?,
            console_fd: None,
        })
    }

    /// Begins the boot: the first `onboot` container or the services.
    pub(crate) fn begin(&mut self) {
        let online = self.net.online();
        self.feed(Event::Network { online });
        self.feed(Event::Begin);
    }

    /// Tells the core what happened and carries out what it answers, and
    /// whatever that leads to, in order. Commands that report back (a
    /// probe that did not start) come here again and only queue.
    fn feed(&mut self, event: Event) {
        let commands = self.node.next(uptime(), event);
        self.queue.extend(commands);
        if self.shutdown_started.is_none() && self.node.shutting_down().is_some() {
            self.shutdown_started = Some(Instant::now());
        }
        if self.draining {
            return;
        }
        self.draining = true;
        while let Some(command) = self.queue.pop_front() {
            self.carry_out(command);
        }
        self.draining = false;
    }

    fn carry_out(&mut self, command: Command) {
        match command {
            Command::Launch(i) => self.launch(i),
            Command::Signal { index, pid, signal } => {
                let sent = Signal::try_from(signal)
                    .map_err(|e| e.to_string())
                    .and_then(|s| kill(Pid::from_raw(pid), s).map_err(|e| e.to_string()));
                if let Err(e) = sent {
                    log::warn!(
                        "signal {} to {}: {e}",
                        signal_name(signal),
                        self.name(index)
                    );
                }
            }
            Command::Probe { index, generation } => self.start_probe(index, generation),
            Command::Answer { id, response } => self.control.reply(id, &response, None),
            Command::Log(line) => log::info!("{line}"),
            Command::Timer(at) => self.timer = at,
            Command::Supervising { running, total } => {
                log::info!(
                    "supervising {running} of {total} container(s); PID 1 RSS {}",
                    rss_line()
                );
                self.release_due = true;
                self.begin_state();
                self.start_scrub();
            }
            Command::Finish(action) => {
                let started = self.shutdown_started.unwrap_or_else(Instant::now);
                self.drain_launcher(SHUTDOWN_DRAIN);
                // The boot log and a reset need STATE; the unmount must
                // not cut its mount short.
                self.state.settle(SHUTDOWN_DRAIN);
                shutdown::finish(action, started, self.reset.as_ref());
            }
        }
    }

    /// Lets the launcher finish what it has (the last containers'
    /// removal: their writable roots unmounted, libcontainer's state
    /// deleted) before the shutdown ends every process, at most `limit`.
    fn drain_launcher(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            self.launcher.start_next();
            if !self.launcher.busy() {
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("shutdown: the launcher is still busy; going on");
                return;
            }
            let mut set = PollSet::new();
            set.add(self.launcher.fd(), PollFlags::POLLIN, Source::Launcher);
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let _ = set.wait(PollTimeout::from(ms));
            self.launcher_reports();
        }
    }

    fn name(&self, i: usize) -> &str {
        self.node.container(i).map_or("?", |c| c.name.as_str())
    }

    /// Hands container `i`'s launch to the launcher.
    fn launch(&mut self, i: usize) {
        let Some(c) = self.node.container(i) else {
            return;
        };
        let cgroup = Path::new("/sys/fs/cgroup")
            .join(berth_oci::spec::cgroup_path(c).trim_start_matches('/'));
        let job = LaunchJob {
            index: i,
            name: c.name.clone(),
            bundle: Path::new(layout::BUNDLES).join(&c.name),
            cgroup,
            root_size: (!c.readonly).then_some(c.root_size),
            owner: c.userns.map(|u| u.host_id),
            userns: c.userns,
            confine_devices: !c.privileged,
            default_memory: self
                .workload_memory
                .filter(|_| c.kind == Kind::Workload && c.memory.is_none()),
            volumes: c.volumes.iter().map(|v| v.name.clone()).collect(),
        };
        self.launcher.submit(Job::Launch(job));
    }

    /// What the launcher reported.
    fn launcher_reports(&mut self) {
        for report in self.launcher.take() {
            match report {
                Report::Prepare { index, pid } => {
                    let result = match self.node.container(index) {
                        Some(c) => self.net.attach(c, pid),
                        None => Err(format!("no container {index}")),
                    };
                    self.launcher.prepared(result);
                }
                Report::Launched {
                    index,
                    took,
                    result,
                } => self.launched(index, took, result),
                Report::Exec { token, result } => self.exec_started(token, result),
                Report::Removed { name, result } => {
                    if let Err(e) = result {
                        log::warn!("clean up {name}: {e}");
                    }
                }
            }
        }
    }

    fn launched(&mut self, i: usize, took: Duration, result: Result<launcher::Started, String>) {
        let name = self.name(i).to_owned();
        match result {
            Ok(s) => {
                for note in &s.notes {
                    log::info!("{note}");
                }
                let kind = self.node.container(i).map_or("?", |c| c.kind.as_str());
                log::info!(
                    "started {name} ({kind}, pid {}) in {} ms",
                    s.pid,
                    took.as_millis()
                );
                self.outputs[i].attach(s.stdout, s.stderr);
                self.feed(Event::Launched {
                    index: i,
                    pid: s.pid,
                });
            }
            Err(error) => {
                self.net.detach(&name);
                self.feed(Event::LaunchFailed { index: i, error });
            }
        }
    }

    /// Reads the whole verified root once, in a child at idle I/O
    /// priority, so corruption anywhere shows within a minute of boot and
    /// not only when a damaged file happens to be read: once the
    /// boot's first launches have ended, or [`SCRUB_LATEST`] after the
    /// loop began;
    /// only once.
    fn start_scrub(&mut self) {
        if self.scrub_due.take().is_none() {
            return;
        }
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

    /// One turn: wait for any source or deadline (at most `max`), then
    /// handle what is ready.
    pub(crate) fn turn(&mut self, max: Option<Duration>) {
        // Once a turn (and so whenever poll saw the console writable).
        console().flush();
        let ready = match self.wait(max) {
            Ok(r) => r,
            Err(e) => {
                log::error!("poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
        };
        self.dispatch(&ready);
        if let Some(line) = self.launcher.enforce() {
            log::warn!("{line}");
        }
        if self.reap_due && !self.launcher.busy() {
            self.reap_due = false;
            self.reap();
        }
        self.launcher.start_next();
        self.sessions_turn();
        self.timers();
        self.feed_followers();
        self.control.flush();
    }

    fn dispatch(&mut self, ready: &[(Source, PollFlags)]) {
        let mut net_ready = Vec::new();
        let mut control_ready = Vec::new();
        for &(source, flags) in ready {
            match source {
                Source::Wake => {
                    let mut buf = [0u8; 256];
                    while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
                    self.check_signals();
                    self.reap_due = true;
                }
                Source::Launcher => self.launcher_reports(),
                Source::Readers => {
                    for (conn, response) in self.readers.take() {
                        self.control.reply(conn, &response, None);
                    }
                }
                Source::Output { index, stream } => self.outputs[index].pump(stream, false),
                Source::PowerButton => self.check_buttons(),
                Source::Session { id, stream } => self.sessions.read(id, stream),
                Source::Scrub => {
                    if let Some(result) = self.scrub.as_mut().and_then(Scrub::on_readable) {
                        self.scrub_done(result);
                    }
                }
                Source::State => self.state_ready(),
                Source::Net(k) => net_ready.push(k),
                Source::Control(k) => control_ready.push((k, flags)),
                Source::Console => {}
            }
        }
        if !net_ready.is_empty() {
            let mut flags = vec![false; self.net.poll_fds().len()];
            for k in net_ready {
                if let Some(f) = flags.get_mut(k) {
                    *f = true;
                }
            }
            if self.net.on_ready(&flags, uptime()) {
                let online = self.net.online();
                self.feed(Event::Network { online });
            }
        }
        let mut flags = vec![PollFlags::empty(); self.control.poll_fds().len()];
        for (k, f) in control_ready {
            if let Some(slot) = flags.get_mut(k) {
                *slot = f;
            }
        }
        for (id, request) in self.control.service(&flags) {
            self.handle(id, request);
        }
    }

    /// The network's and the core's deadlines.
    fn timers(&mut self) {
        let now = uptime();
        if self.net.deadline().is_some_and(|t| t <= now) && self.net.tick(now) {
            let online = self.net.online();
            self.feed(Event::Network { online });
        }
        if self.timer.is_some_and(|t| t <= uptime()) {
            self.feed(Event::Tick);
        }
        if self.scrub_due.is_some_and(|t| t <= uptime()) {
            self.start_scrub();
        }
        if self.state_due.is_some_and(|t| t <= uptime()) {
            self.begin_state();
        }
    }

    /// Begins STATE's set-up if the loop holds it back.
    fn begin_state(&mut self) {
        self.state_due = None;
        self.state.begin();
        self.state_ready();
    }

    /// Once STATE is set up: answers the requests that waited for it.
    fn state_ready(&mut self) {
        self.state.collect();
        if self.state.ready().is_some() {
            for (conn, request) in std::mem::take(&mut self.state_waiters) {
                self.handle(conn, request);
            }
            if std::mem::take(&mut self.release_due) {
                release_boot_pages();
            }
        }
    }

    fn check_signals(&mut self) {
        let hits: Vec<i32> = self
            .signals
            .iter()
            .filter(|(_, flag)| flag.swap(false, Ordering::SeqCst))
            .map(|(sig, _)| *sig)
            .collect();
        for sig in hits {
            if let Some(action) = power::action_for_signal(sig) {
                let why = format!("received {}", signal_name(sig));
                self.feed(Event::Shutdown { action, why });
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
            let why = "power button pressed".to_owned();
            self.feed(Event::Shutdown {
                action: PowerAction::Poweroff,
                why,
            });
        }
    }

    /// Polls every source until the next deadline (at most `max`).
    fn wait(
        &mut self,
        max: Option<Duration>,
    ) -> Result<Vec<(Source, PollFlags)>, nix::errno::Errno> {
        // The console's lock is taken only to look: never held in `poll`.
        let pending = {
            let console = console();
            if self.console_fd.is_none() {
                self.console_fd = console.poll_handle();
            }
            console.pending()
        };
        let mut set = PollSet::new();
        let r = PollFlags::POLLIN;
        set.add(self.wake.as_fd(), r, Source::Wake);
        set.add(self.launcher.fd(), r, Source::Launcher);
        set.add(self.readers.fd(), r, Source::Readers);
        for (index, out) in self.outputs.iter().enumerate() {
            for (stream, fd) in out.fds() {
                set.add(fd, r, Source::Output { index, stream });
            }
        }
        for b in &self.buttons {
            set.add(b.as_fd(), r, Source::PowerButton);
        }
        for (id, stream, fd) in self.sessions.fds() {
            set.add(fd, r, Source::Session { id, stream });
        }
        if let Some(fd) = self.scrub.as_ref().and_then(Scrub::fd) {
            set.add(fd, r, Source::Scrub);
        }
        if let Some(fd) = self.state.fd() {
            set.add(fd, r, Source::State);
        }
        for (k, fd) in self.net.poll_fds().into_iter().enumerate() {
            set.add(fd, r, Source::Net(k));
        }
        for (k, (fd, flags)) in self.control.poll_fds().into_iter().enumerate() {
            set.add(fd, flags, Source::Control(k));
        }
        if let Some(fd) = self.console_fd.as_ref().filter(|_| pending) {
            set.add(fd.as_fd(), PollFlags::POLLOUT, Source::Console);
        }
        set.wait(self.timeout(max))
    }

    /// Until the next deadline: the core's, the network's, a client's, a
    /// session's; at most a minute (or `max`).
    fn timeout(&self, max: Option<Duration>) -> PollTimeout {
        let now = uptime();
        let since_boot = self
            .timer
            .into_iter()
            .chain(self.net.deadline())
            .chain(self.scrub_due)
            .chain(self.state_due)
            .min()
            .map(|t| t.saturating_sub(now));
        let instants = self
            .control
            .deadline()
            .into_iter()
            .chain(self.sessions.deadline())
            .chain(self.launcher.deadline())
            .min()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let wait = since_boot
            .into_iter()
            .chain(instants)
            .chain(max)
            .min()
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        let ms = wait.as_millis().saturating_add(1);
        PollTimeout::try_from(ms.min(60_000) as u32).unwrap_or(PollTimeout::MAX)
    }

    /// Reaps every ended child and routes it to its owner: a container, a
    /// session, the scrub; logs orphans at debug level.
    fn reap(&mut self) {
        while let Some(w) = self.reaper.reap() {
            if let Some(scrub) = self.scrub.as_mut().filter(|s| w.pid() == Some(s.pid())) {
                let result = scrub.on_exit(w);
                self.scrub = None;
                if let Some(result) = result {
                    self.scrub_done(result);
                }
                continue;
            }
            let Some((pid, status)) = reaper::decode(w) else {
                continue;
            };
            let owner = (0..self.node.len())
                .find(|&i| self.node.running(i).is_some_and(|(p, _)| p == pid.as_raw()));
            match owner {
                Some(i) => self.exited(i, status),
                None => {
                    if !self.sessions.exited(pid, status) {
                        log::debug!("reaped orphan pid {pid}: {status}");
                    }
                }
            }
        }
    }

    fn exited(&mut self, i: usize, status: ExitStatus) {
        let name = self.name(i).to_owned();
        self.net.detach(&name);
        // Print what the process wrote before it died ahead of its exit line.
        self.outputs[i].pump(0, true);
        self.outputs[i].pump(1, true);
        self.launcher.submit(Job::Remove { name });
        self.feed(Event::Exited { index: i, status });
    }
}

/// How long a shutdown waits for the launcher's last jobs.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);
/// The latest the dm-verity scrub starts after the loop does, when the
/// boot's first launches have not all ended by then (a launch that
/// takes that long).
const SCRUB_LATEST: Duration = Duration::from_secs(20);

/// PID 1's resident set size, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    status_kib(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmRSS:",
    )
}

/// `KEY:   N kB` of `/proc/self/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `6708 KiB (heap and stacks 2104, binary 4604)`: the resident set and
/// its anonymous and file-backed parts.
fn rss_line() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key| status_kib(&status, key).map_or_else(|| "?".to_owned(), |k| k.to_string());
    format!(
        "{} KiB (heap and stacks {}, binary {})",
        kib("VmRSS:"),
        kib("RssAnon:"),
        kib("RssFile:")
    )
}
