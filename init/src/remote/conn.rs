//! One remote connection, on its own thread: the TLS handshake (client
//! certificate required), who the client is (`CN=` its name, `O=` its
//! role), one request line, the role's check, and then the request goes
//! to the local control socket as any local client's would: PID 1's loop
//! serves both the same way, and everything it answers (a `logs -f`
//! stream, an `exec`'s result) is passed back. Every read has a
//! deadline, so a client that sends nothing holds only its own thread.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_config::api::Role;
use berth_supervisor::api::{
    decode_request, encode_request, encode_response, ErrorCode, Request, Response, MAX_REQUEST,
    SOCKET_PATH,
};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use rustls::ServerConnection;

/// A handshake must be done within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The request line must follow the handshake within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A write to a client that does not read fails after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Remote requests passed to the local control socket at once: the
/// socket serves 64 connections, and root on the node keeps the rest.
const MAX_PROXIED: usize = 32;

/// Who is at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: String,
    pub role: Option<Role>,
    pub serial: String,
}

/// Why a connection ended early, for the console.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("handshake refused: {0}")]
    Handshake(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no request within {REQUEST_TIMEOUT:?}")]
    Idle,
}

struct Tls {
    conn: ServerConnection,
    tcp: TcpStream,
}

impl Tls {
    /// Reads what the client sent until `want` says enough or `deadline`
    /// passes; plaintext goes to `buf`. `Ok(false)`: the client closed.
    fn read_until(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Instant,
        want: impl Fn(&[u8]) -> bool,
    ) -> Result<bool, ConnError> {
        loop {
            let mut chunk = [0u8; 4096];
            match self.conn.reader().read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if want(buf) {
                        return Ok(true);
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnError::Idle);
            }
            self.tcp.set_read_timeout(Some(left))?;
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ConnError::Idle)
                }
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.conn.write_tls(&mut self.tcp);
                return Err(ConnError::Io(std::io::Error::new(
                    ErrorKind::InvalidData,
                    e,
                )));
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.conn.writer().write_all(bytes)?;
        self.flush()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.tcp)?;
        }
        self.tcp.flush()
    }

    fn close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
    }
}

/// The handshake, by hand rather than with `complete_io`, which loops
/// inside itself: every read is bounded by what is left of
/// [`HANDSHAKE_TIMEOUT`], so a client that trickles a byte at a time
/// still ends at the deadline.
fn handshake(tls: &mut Tls) -> Result<(), ConnError> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let late = || ConnError::Handshake(format!("no handshake within {HANDSHAKE_TIMEOUT:?}"));
    while tls.conn.is_handshaking() {
        while tls.conn.wants_write() {
            tls.conn.write_tls(&mut tls.tcp)?;
        }
        if !tls.conn.is_handshaking() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        tls.tcp.set_read_timeout(Some(left))?;
        match tls.conn.read_tls(&mut tls.tcp) {
            Ok(0) => {
                return Err(ConnError::Handshake(
                    "the client closed the connection during the handshake".into(),
                ))
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(late())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = tls.conn.process_new_packets() {
            // The alert that says why, if it can still go out.
            let _ = tls.conn.write_tls(&mut tls.tcp);
            let e = std::io::Error::new(ErrorKind::InvalidData, e);
            return Err(ConnError::Handshake(handshake_error(&e)));
        }
    }
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut tls.tcp)?;
    }
    Ok(())
}

/// TCP keepalive: a client that vanished (no FIN, a cut network) is
/// noticed within about a minute even while nothing is sent (a quiet
/// `logs -f`), and its thread and proxy slot are freed.
fn keep_alive(tcp: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = setsockopt(tcp, sockopt::KeepAlive, &true);
    let _ = setsockopt(tcp, sockopt::TcpKeepIdle, &30);
    let _ = setsockopt(tcp, sockopt::TcpKeepInterval, &10);
    let _ = setsockopt(tcp, sockopt::TcpKeepCount, &3);
}

/// Serves one connection; returns who it was and what they asked (for
/// the console), or why it ended.
pub fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    log: &dyn Fn(String),
) -> Result<(), ConnError> {
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a: SocketAddr| a.to_string());
    let _ = tcp.set_nodelay(true);
    keep_alive(&tcp);
    tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let conn =
        ServerConnection::new(config).map_err(|e| ConnError::Io(std::io::Error::other(e)))?;
    let mut tls = Tls { conn, tcp };
    handshake(&mut tls)?;
    let client = identify(&tls.conn);
    // Resumption is off (no tickets, no session cache), so every
    // connection's certificate was just checked; the serial is checked
    // here again, against the set as it is now.
    if super::is_revoked(&client.serial) {
        tls.close();
        return Err(ConnError::Handshake(
            "the client's certificate is revoked".into(),
        ));
    }
    let mut line = Vec::new();
    let got = tls.read_until(&mut line, Instant::now() + REQUEST_TIMEOUT, |b| {
        b.contains(&b'\n') || b.len() > MAX_REQUEST
    })?;
    if !got {
        return Ok(());
    }
    let end = line
        .iter()
        .position(|b| *b == b'\n')
        .map_or(line.len(), |i| i + 1);
    let request = match decode_request(&line[..end]) {
        Ok(r) => r,
        Err(e) => {
            tls.send(&encode_response(&e.response()))?;
            tls.close();
            return Ok(());
        }
    };
    let op = request.op();
    let Some(role) = client.role.filter(|r| r.allows(op.as_str())) else {
        let why = match client.role {
            None => format!(
                "{} has no role: its certificate's organisation must be reader, operator or admin",
                client.name
            ),
            Some(role) => format!(
                "{} ({role}) may not {op}: {op} needs the {} role",
                client.name,
                Role::needed_for(op.as_str())
            ),
        };
        log(format!("api: {peer}: refused: {why}"));
        tls.send(&encode_response(&Response::error(
            ErrorCode::Forbidden,
            why,
        )))?;
        tls.close();
        return Ok(());
    };
    log(format!(
        "api: {} ({role}) from {peer}: {}",
        client.name,
        describe(&request)
    ));
    static PROXIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    use std::sync::atomic::Ordering;
    if PROXIED.fetch_add(1, Ordering::AcqRel) >= MAX_PROXIED {
        PROXIED.fetch_sub(1, Ordering::AcqRel);
        let busy = Response::error(
            ErrorCode::Timeout,
            format!("the node is serving {MAX_PROXIED} remote requests; ask again"),
        );
        tls.send(&encode_response(&busy))?;
        tls.close();
        return Ok(());
    }
    let result = proxy(&mut tls, &request);
    PROXIED.fetch_sub(1, Ordering::AcqRel);
    result
}

/// The client's name and role from its (verified) certificate.
fn identify(conn: &ServerConnection) -> Client {
    let der = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return Client {
            name: "?".into(),
            role: None,
            serial: String::new(),
        };
    };
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map_or_else(|| "?".to_owned(), str::to_owned);
    let role = subject
        .iter_organization()
        .next()
        .and_then(|a| a.as_str().ok())
        .and_then(Role::parse);
    let serial = berth_config::api::serial_hex(cert.raw_serial());
    Client { name, role, serial }
}

/// `restart web`, `exec web -- id`, `status`.
fn describe(request: &Request) -> String {
    match request {
        Request::Logs { name, follow, .. } => {
            format!("logs{} {name}", if *follow { " -f" } else { "" })
        }
        Request::Start { name } | Request::Stop { name } | Request::Restart { name } => {
            format!("{} {name}", request.op())
        }
        Request::Exec { name, argv } => format!("exec {name} -- {}", argv.join(" ")),
        Request::Power { action } => format!("power {}", action.as_str()),
        Request::Revoke { serial } => format!("revoke {serial}"),
        other => other.op().to_string(),
    }
}

/// Sends `request` to the local control socket and passes every byte of
/// the answer back until the socket closes; a client that leaves ends it.
fn proxy(tls: &mut Tls, request: &Request) -> Result<(), ConnError> {
    let connected = UnixStream::connect(SOCKET_PATH).and_then(|mut s| {
        s.write_all(&encode_request(request))?;
        Ok(s)
    });
    let mut local = match connected {
        Ok(s) => s,
        Err(e) => {
            // Said to the client too, not only on the console.
            let why = format!("the node's control socket {SOCKET_PATH}: {e}");
            tls.send(&encode_response(&Response::error(
                ErrorCode::Internal,
                why.clone(),
            )))?;
            tls.close();
            return Err(ConnError::Io(std::io::Error::other(why)));
        }
    };
    tls.tcp.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (local_ready, client_ready) = {
            let mut fds = [
                PollFd::new(local.as_fd(), PollFlags::POLLIN),
                PollFd::new(tls.tcp.as_fd(), PollFlags::POLLIN),
            ];
            nix::poll::poll(&mut fds, PollTimeout::from(60_000u16))
                .map_err(|e| ConnError::Io(e.into()))?;
            let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if local_ready {
            match local.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => tls.send(&buf[..n])?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if client_ready {
            // The client has nothing more to say: data, close_notify or
            // EOF all end the conversation once it hung up.
            match tls.conn.read_tls(&mut tls.tcp) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    if tls.conn.process_new_packets().is_err() {
                        return Ok(());
                    }
                    let mut sink = [0u8; 512];
                    if matches!(tls.conn.reader().read(&mut sink), Ok(0)) {
                        return Ok(());
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Ok(()),
            }
        }
    }
    tls.close();
    Ok(())
}

/// What rustls said, in words an operator acts on.
fn handshake_error(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    use rustls::{CertificateError as C, Error as E, PeerIncompatible as P};
    match tls {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the client's certificate has expired".into()
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the client's certificate is not valid yet".into()
        }
        E::InvalidCertificate(C::Revoked) => "the client's certificate is revoked".into(),
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "the client's certificate is not from an operator CA (api.ca)".into()
        }
        E::NoCertificatesPresented => "the client sent no certificate".into(),
        E::PeerIncompatible(P::SupportedVersionsExtensionRequired) => {
            "the client does not speak TLS 1.3".into()
        }
        E::InvalidMessage(_) => "the client does not speak TLS".into(),
        other => other.to_string(),
    }
}
