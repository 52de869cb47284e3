//! The containers' output: each stream's pipe, split into lines, copied to
//! the console (unless `console = false`) and into the container's ring
//! for `berth logs`, a bounded amount per turn.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use berth_config::Container;
use berth_supervisor::lines::LineSplitter;
use berth_supervisor::ring::{Ring, Stream as RingStream};
use nix::errno::Errno;

use crate::console::{console, uptime};

/// Bytes one stream may hand over in one turn of the loop: a container
/// writing as fast as it can gets this much, then the other streams, the
/// control socket, signals and timers have their turn. Its writes block on
/// the full pipe meanwhile, which is the back-pressure it should feel.
pub(crate) const TURN_BYTES: usize = 64 * 1024;

/// Bytes read after a container's process exited: what it wrote before it
/// died, but not the endless output of a descendant that outlived it (a
/// `host-pid` container's daemon, say), which would hold the loop.
const EXIT_BYTES: usize = 1024 * 1024;

/// One output stream of a running container.
#[derive(Debug, Default)]
struct Stream {
    fd: Option<OwnedFd>,
    lines: LineSplitter,
}

/// A container's output, across its runs.
#[derive(Debug)]
pub(crate) struct Output {
    name: String,
    console: bool,
    streams: [Stream; 2],
    /// Every line it printed, across restarts, for `berth logs`.
    pub(crate) ring: Ring,
}

impl Output {
    pub(crate) fn new(c: &Container) -> Output {
        Output {
            name: c.name.clone(),
            console: c.console,
            streams: [Stream::default(), Stream::default()],
            ring: Ring::new(c.log_size),
        }
    }

    /// A new run's pipes.
    pub(crate) fn attach(&mut self, stdout: OwnedFd, stderr: OwnedFd) {
        self.streams[0].fd = Some(stdout);
        self.streams[1].fd = Some(stderr);
    }

    /// The open streams' descriptors, with their stream number.
    pub(crate) fn fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> {
        self.streams
            .iter()
            .enumerate()
            .filter_map(|(s, st)| st.fd.as_ref().map(|fd| (s, fd.as_fd())))
    }

    /// Reads what stream `s` has, up to its turn's share, and prints its
    /// complete lines; at end of file (or when `all`, after the process
    /// exited) prints the rest too and closes the stream.
    pub(crate) fn pump(&mut self, s: usize, all: bool) {
        let kind = if s == 0 {
            RingStream::Stdout
        } else {
            RingStream::Stderr
        };
        let Some(fd) = self.streams[s].fd.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        let mut eof = false;
        let budget = if all { EXIT_BYTES } else { TURN_BYTES };
        let mut taken = 0;
        while taken < budget {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    taken += n;
                    let lines = self.streams[s].lines.push(&buf[..n]);
                    self.print(kind, lines);
                    if n < buf.len() {
                        break; // the pipe is empty for now
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break, // EAGAIN: drained for now.
            }
        }
        if eof || all {
            if let Some(rest) = self.streams[s].lines.finish() {
                self.print(kind, vec![rest]);
            }
            self.streams[s].fd = None;
        }
    }

    fn print(&mut self, kind: RingStream, lines: Vec<String>) {
        let now = uptime();
        let mut c = console();
        for l in lines {
            if self.console {
                c.line(&self.name, &l);
            }
            self.ring.push(now, kind, l);
        }
    }
}
