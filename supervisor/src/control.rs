//! The control socket's connections: accept, read one request line with a
//! deadline and a size limit, answer, and keep `logs -f` followers fed —
//! all non-blocking, from the supervisor's single `poll` loop, so a slow,
//! silent or hostile client can never stall PID 1. What a request *does*
//! is the caller's business (PID 1's supervisor loop); this module only
//! moves bytes.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::api::{
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
    /// How long a client has to send its request line.
    request_timeout: Duration,
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
            request_timeout: REQUEST_TIMEOUT,
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
                            format!(
                                "no complete request within {} ms",
                                self.request_timeout.as_millis()
                            ),
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

    /// The user id of the process at the other end of connection `id`
    /// (`SO_PEERCRED`, taken when it connected), if the kernel says.
    pub fn peer_uid(&self, id: ConnId) -> Option<u32> {
        let c = self.conns.iter().find(|c| c.id == id)?;
        nix::sys::socket::getsockopt(&c.stream, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|cred| cred.uid())
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
                            deadline: now + self.request_timeout,
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
                        let room = (crate::api::MAX_REQUEST + 1).saturating_sub(self.input.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{decode_response, ErrorBody, MAX_REQUEST};
    use std::io::{Read, Write};

    /// A control socket in a fresh temporary folder, with a short request
    /// timeout.
    fn control(name: &str) -> (Control, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("berth-control-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("control.sock");
        let mut c = Control::bind(&path);
        c.request_timeout = Duration::from_millis(200);
        assert!(c.listener.is_some(), "bind {}", path.display());
        (c, path)
    }

    /// Runs the connection machinery as the loop would, for `rounds`,
    /// answering every request with `answer`, and returns the requests.
    fn spin(c: &mut Control, rounds: usize, answer: &Response) -> Vec<Request> {
        let mut seen = Vec::new();
        for _ in 0..rounds {
            let ready = vec![PollFlags::POLLIN; c.poll_fds().len()];
            for (id, req) in c.service(&ready) {
                seen.push(req);
                c.reply(id, answer, None);
            }
            c.flush();
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    }

    fn client(path: &Path, bytes: &[u8], half_close: bool) -> UnixStream {
        let mut s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let _ = s.write_all(bytes);
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        s
    }

    fn read_answer(mut s: UnixStream) -> Response {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        decode_response(&out)
            .unwrap_or_else(|e| panic!("answer {:?}: {e}", String::from_utf8_lossy(&out)))
    }

    fn code(r: &Response) -> Option<ErrorCode> {
        match r {
            Response::Failure(ErrorBody { code, .. }) => Some(*code),
            Response::Success(_) => None,
        }
    }

    #[test]
    fn socket_is_root_only() {
        let (_c, path) = control("mode");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn bad_inputs_are_answered_and_the_good_one_handed_out() {
        let (mut c, path) = control("inputs");
        let canned = Response::error(ErrorCode::Unsupported, "canned");
        // (bytes, half-close, expected error code; None = handed out)
        let table: Vec<(Vec<u8>, bool, Option<ErrorCode>)> = vec![
            (
                b"{\"version\":1,\"op\":\"status\"}\n".to_vec(),
                false,
                Some(ErrorCode::Unsupported),
            ),
            (b"not json\n".to_vec(), false, Some(ErrorCode::BadRequest)),
            (
                b"{\"version\":9,\"op\":\"status\"}\n".to_vec(),
                false,
                Some(ErrorCode::UnsupportedVersion),
            ),
            (
                vec![b'x'; MAX_REQUEST + 10],
                false,
                Some(ErrorCode::TooLarge),
            ),
            (
                b"{\"version\":1".to_vec(),
                true,
                Some(ErrorCode::BadRequest),
            ),
            (Vec::new(), false, Some(ErrorCode::Timeout)),
        ];
        for (bytes, half_close, want) in table {
            let s = client(&path, &bytes, half_close);
            let handed = spin(&mut c, 40, &canned);
            let got = read_answer(s);
            assert_eq!(
                code(&got),
                want,
                "{:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            );
            // Only the well-formed request reaches the supervisor.
            assert_eq!(
                handed.len(),
                usize::from(want == Some(ErrorCode::Unsupported))
            );
        }
        assert!(c.conns.is_empty(), "connections left open");
    }

    #[test]
    fn a_slow_client_does_not_hold_up_others() {
        let (mut c, path) = control("slow");
        let canned = Response::error(ErrorCode::Unsupported, "canned");
        let slow = client(&path, b"{\"vers", false);
        let fast = client(&path, b"{\"version\":1,\"op\":\"status\"}\n", false);
        spin(&mut c, 3, &canned);
        assert_eq!(code(&read_answer(fast)), Some(ErrorCode::Unsupported));
        spin(&mut c, 30, &canned);
        assert_eq!(code(&read_answer(slow)), Some(ErrorCode::Timeout));
    }
}
