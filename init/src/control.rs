//! The control socket's connections: accept, read one request line with a
//! deadline and a size limit, answer, and keep `logs -f` followers fed —
//! all non-blocking, from the supervisor's single `poll` loop, so a slow,
//! silent or hostile client can never stall PID 1. What a request *does*
//! is the supervisor's business ([`crate::supervise`]); this module only
//! moves bytes.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_supervisor::api::{
    decode_request, encode_response, frame_request, ErrorCode, Frame, Request, Response,
    REQUEST_TIMEOUT,
};
use nix::poll::PollFlags;

/// Connections served at once; more are refused with an error.
const MAX_CONNECTIONS: usize = 64;
/// A client that does not take its answer within this is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Output a follower may have queued before it is cut off.
const FOLLOW_BACKLOG: usize = 4 * 1024 * 1024;

/// A connection's identity across loop iterations.
pub type ConnId = u64;

/// A `logs -f` subscription: the container slot and the last line sent.
#[derive(Debug, Clone, Copy)]
pub struct Follow {
    pub slot: usize,
    pub seq: u64,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the request line until the deadline.
    Reading { deadline: Instant },
    /// The request is with the supervisor; the answer may come later
    /// (`exec` answers when its command ends, itself bounded by a timeout).
    Awaiting,
    /// Answer queued; close once written (or at the deadline).
    Answering { deadline: Instant },
    /// Streaming new log lines.
    Following(Follow),
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    phase: Phase,
    /// The client shut its write side.
    eof: bool,
    /// Done: drop at the next flush.
    closed: bool,
}

/// The listener and its connections.
#[derive(Debug)]
pub struct Control {
    listener: Option<UnixListener>,
    conns: Vec<Conn>,
    next_id: ConnId,
}

impl Control {
    /// Binds the socket at `path` (its folder created 0700, the socket
    /// 0600: root only). A failure is logged and leaves the node without
    /// an API rather than without containers.
    pub fn bind(path: &Path) -> Control {
        let listener = match listen(path) {
            Ok(l) => {
                log::info!("control socket at {}", path.display());
                Some(l)
            }
            Err(e) => {
                log::error!("control socket {}: {e}", path.display());
                None
            }
        };
        Control {
            listener,
            conns: Vec::new(),
            next_id: 1,
        }
    }

    /// What to poll: the listener, and each connection for reading or
    /// writing.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = Vec::new();
        if let Some(l) = &self.listener {
            fds.push((l.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.conns {
            let mut flags = PollFlags::empty();
            if !c.eof && matches!(c.phase, Phase::Reading { .. } | Phase::Following(_)) {
                flags |= PollFlags::POLLIN;
            }
            if !c.output.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push((c.stream.as_fd(), flags));
        }
        fds
    }

    /// The earliest connection deadline, for the poll timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .filter_map(|c| match c.phase {
                Phase::Reading { deadline } | Phase::Answering { deadline } => Some(deadline),
                Phase::Following(_) | Phase::Awaiting => None,
            })
            .min()
    }

    /// Accepts, reads and frames; returns the well-formed requests for the
    /// supervisor to answer. Malformed, oversized and late requests are
    /// answered here. `ready` holds, in `poll_fds` order, each fd's events.
    pub fn service(&mut self, ready: &[PollFlags]) -> Vec<(ConnId, Request)> {
        let hit = |k: usize| ready.get(k).is_some_and(|r| !r.is_empty());
        let listener_ready = self.listener.is_some() && hit(0);
        let offset = usize::from(self.listener.is_some());
        let now = Instant::now();
        let mut requests = Vec::new();
        for (k, c) in self.conns.iter_mut().enumerate() {
            let events = ready.get(k + offset).copied().unwrap_or(PollFlags::empty());
            if events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
                && !events.contains(PollFlags::POLLIN)
            {
                // Both directions shut: the client is gone.
                c.closed = true;
                continue;
            }
            if !events.is_empty() {
                c.read_some();
            }
            if let Phase::Reading { deadline } = c.phase {
                match frame_request(&c.input) {
                    Frame::Complete(n) => match decode_request(&c.input[..n]) {
                        Ok(req) => {
                            c.phase = Phase::Awaiting;
                            requests.push((c.id, req));
                        }
                        Err(e) => c.answer(&e.response(), now),
                    },
                    Frame::TooLarge => c.answer(
                        &Response::error(ErrorCode::TooLarge, "request longer than 64 KiB"),
                        now,
                    ),
                    Frame::Incomplete if c.eof => c.answer(
                        &Response::error(
                            ErrorCode::BadRequest,
                            "connection closed before a complete request line",
                        ),
                        now,
                    ),
                    Frame::Incomplete if now >= deadline => c.answer(
                        &Response::error(
                            ErrorCode::Timeout,
                            format!("no complete request within {} s", REQUEST_TIMEOUT.as_secs()),
                        ),
                        now,
                    ),
                    Frame::Incomplete => {}
                }
            }
        }
        if listener_ready {
            self.accept_all(now);
        }
        requests
    }

    /// Queues the answer to a request; with `follow`, the connection then
    /// stays open for new log lines.
    pub fn reply(&mut self, id: ConnId, response: &Response, follow: Option<Follow>) {
        let now = Instant::now();
        if let Some(c) = self.conns.iter_mut().find(|c| c.id == id) {
            c.answer(response, now);
            if let Some(f) = follow {
                c.phase = Phase::Following(f);
            }
        }
    }

    /// The current follow subscriptions.
    pub fn followers(&self) -> Vec<(ConnId, Follow)> {
        self.conns
            .iter()
            .filter_map(|c| match c.phase {
                Phase::Following(f) => Some((c.id, f)),
                _ => None,
            })
            .collect()
    }

    /// Queues follow lines and moves the subscription on to `seq`.
    pub fn push_follow(&mut self, id: ConnId, bytes: &[u8], seq: u64) {
        if let Some(c) = self.conns.iter_mut().find(|c| c.id == id) {
            if c.output.len() + bytes.len() > FOLLOW_BACKLOG {
                // The client does not read: cut it off rather than buffer
                // without bound.
                c.closed = true;
                return;
            }
            c.output.extend_from_slice(bytes);
            if let Phase::Following(f) = &mut c.phase {
                f.seq = seq;
            }
        }
    }

    /// Writes what each connection has queued and drops the finished ones.
    pub fn flush(&mut self) {
        let now = Instant::now();
        for c in &mut self.conns {
            c.write_some();
            match c.phase {
                Phase::Answering { deadline } if c.output.is_empty() || now >= deadline => {
                    c.closed = true
                }
                _ => {}
            }
        }
        self.conns.retain(|c| !c.closed);
    }

    fn accept_all(&mut self, now: Instant) {
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(true);
                    let mut conn = Conn {
                        id: self.next_id,
                        stream,
                        input: Vec::new(),
                        output: Vec::new(),
                        phase: Phase::Reading {
                            deadline: now + REQUEST_TIMEOUT,
                        },
                        eof: false,
                        closed: false,
                    };
                    self.next_id += 1;
                    if self.conns.len() >= MAX_CONNECTIONS {
                        conn.answer(
                            &Response::error(
                                ErrorCode::Internal,
                                "too many connections; try again",
                            ),
                            now,
                        );
                        conn.write_some();
                        continue;
                    }
                    self.conns.push(conn);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: all accepted. Others (EMFILE): try next time.
                Err(_) => return,
            }
        }
    }
}

impl Conn {
    fn read_some(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    // No more input; stop polling for it (a closed read
                    // side is always readable). A follower may half-close:
                    // it leaves when a write fails.
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    if matches!(self.phase, Phase::Reading { .. }) {
                        // Keep at most one byte past the limit: enough to
                        // tell an oversized request.
                        let room = (berth_supervisor::api::MAX_REQUEST + 1)
                            .saturating_sub(self.input.len());
                        self.input.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    fn answer(&mut self, response: &Response, now: Instant) {
        self.output.extend_from_slice(&encode_response(response));
        self.phase = Phase::Answering {
            deadline: now + WRITE_TIMEOUT,
        };
    }

    fn write_some(&mut self) {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => break,
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    // EPIPE and friends: the client is gone.
                    self.closed = true;
                    self.output.clear();
                }
            }
        }
    }
}

fn listen(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
