//! Host test of the DHCPv4 client (`berth_net::dhcp::Session`) against a
//! small DHCP server of the test's own, across a veth pair between two
//! network namespaces created for the test. Needs root and `ip netns`;
//! skips with a message otherwise.
//!
//! Layout: namespace `…-srv` holds `dhcp-s` with 192.0.2.1/24 (TEST-NET-1,
//! RFC 5737) and the server thread; namespace `…-cli` holds `dhcp-c`, no
//! address, and the client thread running the real session. No traffic
//! leaves the two namespaces. The server hands out 192.0.2.100 for 4 s
//! with T1 2 s and always broadcasts its replies; it records every
//! message it receives, including the destination address the kernel
//! reports (IP_PKTINFO), so unicast renewal can be told from broadcast.
//!
//! The test walks one lease's life: bound (fields as handed out), renewed
//! by unicast with ciaddr once the test has put the address on `dhcp-c`
//! with `ip` (as the real caller would over rtnetlink), then a NAK to the
//! next renewal makes the client lose the lease and discover again, and it
//! binds anew once the server stops refusing. Every wait has a deadline;
//! failures print what the server saw. The namespaces (and with them the
//! veth pair) are deleted by a drop guard, after the threads are stopped.

use std::fs::File;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_net::dhcp::{Event, Lease, Session};
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, recvmsg, sendto, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, SockaddrIn,
};

const SERVER_IF: &str = "dhcp-s";
const CLIENT_IF: &str = "dhcp-c";
const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x02, 0x64];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const DNS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const LEASE_SECS: u32 = 4;
const T1_SECS: u32 = 2;
/// How long the client loop sleeps at most, so it sees the stop flag.
const SLICE: Duration = Duration::from_millis(50);

/// What the server received.
#[derive(Debug, Clone)]
struct Seen {
    kind: MessageType,
    xid: u32,
    broadcast_flag: bool,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
    from: Ipv4Addr,
    to: Ipv4Addr,
    nak_sent: bool,
}

/// The server's switches and log, shared with the test.
#[derive(Debug, Default)]
struct ServerState {
    nak: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

impl ServerState {
    fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    fn dump(&self) -> String {
        let mut dump = String::from("the server saw:\n");
        for seen in self.seen() {
            dump.push_str(&format!("  {seen:?}\n"));
        }
        dump
    }
}

/// The two namespaces and the threads inside them; dropping it stops the
/// threads and deletes the namespaces.
struct Lab {
    server_ns: String,
    client_ns: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Lab {
    fn create() -> Result<Lab, String> {
        let pid = std::process::id();
        let lab = Lab {
            server_ns: format!("berth-dhcp-{pid}-srv"),
            client_ns: format!("berth-dhcp-{pid}-cli"),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        // From here on, Drop cleans up whatever was made.
        ip(&["netns", "add", &lab.server_ns])?;
        ip(&["netns", "add", &lab.client_ns])?;
        let (srv, cli) = (lab.server_ns.as_str(), lab.client_ns.as_str());
        ip(&[
            "-n", srv, "link", "add", SERVER_IF, "type", "veth", "peer", "name", CLIENT_IF,
            "netns", cli,
        ])?;
        let mac = CLIENT_MAC
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        ip(&["-n", cli, "link", "set", CLIENT_IF, "address", &mac])?;
        ip(&["-n", srv, "addr", "add", "192.0.2.1/24", "dev", SERVER_IF])?;
        ip(&["-n", srv, "link", "set", SERVER_IF, "up"])?;
        ip(&["-n", cli, "link", "set", CLIENT_IF, "up"])?;
        Ok(lab)
    }

    fn netns_path(name: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(name)
    }

    /// Starts the server and waits until it listens.
    fn start_server(&mut self, state: Arc<ServerState>) -> Result<(), String> {
        let (ready_tx, ready_rx) = channel();
        let ns = Lab::netns_path(&self.server_ns);
        let stop = Arc::clone(&self.stop);
        self.threads.push(std::thread::spawn(move || {
            let result = open_server(&ns).map(|socket| {
                let _ = ready_tx.send(Ok(()));
                serve(&socket, &state, &stop);
            });
            if let Err(err) = result {
                let _ = ready_tx.send(Err(err));
            }
        }));
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|err| format!("server did not start: {err}"))?
    }

    /// Starts the client session; its events (with their time) arrive on
    /// the returned channel.
    fn start_client(&mut self) -> Receiver<Result<(Duration, Event), String>> {
        let (tx, rx) = channel();
        let ns = Lab::netns_path(&self.client_ns);
        let stop = Arc::clone(&self.stop);
        self.threads.push(std::thread::spawn(move || {
            if let Err(err) = run_client(&ns, &tx, &stop) {
                let _ = tx.send(Err(err));
            }
        }));
        rx
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        for ns in [&self.server_ns, &self.client_ns] {
            if let Err(err) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {err}");
            }
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|err| format!("run ip {}: {err}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn enter(ns: &PathBuf) -> Result<(), String> {
    let file = File::open(ns).map_err(|err| format!("open {}: {err}", ns.display()))?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|err| format!("setns {}: {err}", ns.display()))
}

/// The real client, as PID 1 would run it: poll, then read or tick.
fn run_client(
    ns: &PathBuf,
    events: &Sender<Result<(Duration, Event), String>>,
    stop: &AtomicBool,
) -> Result<(), String> {
    enter(ns)?;
    let origin = Instant::now();
    let mut session = Session::open(
        CLIENT_IF,
        CLIENT_MAC,
        Some("berth-test".to_string()),
        origin.elapsed(),
    )
    .map_err(|err| format!("open the session: {err:?}"))?;
    while !stop.load(Ordering::SeqCst) {
        let now = origin.elapsed();
        let wait = session
            .deadline()
            .map_or(SLICE, |deadline| deadline.saturating_sub(now))
            .min(SLICE);
        // Round up, so a wait of less than a millisecond does not spin.
        let millis = u16::try_from(wait.as_millis() + 1).unwrap_or(u16::MAX);
        let readable = {
            let mut fds = [PollFd::new(session.fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(_) => fds[0]
                    .revents()
                    .is_some_and(|revents| revents.contains(PollFlags::POLLIN)),
                Err(nix::errno::Errno::EINTR) => false,
                Err(err) => return Err(format!("poll: {err}")),
            }
        };
        let now = origin.elapsed();
        let mut happened = Vec::new();
        if readable {
            happened.extend(session.on_readable(now));
        }
        if session.deadline().is_some_and(|deadline| deadline <= now) {
            happened.extend(session.on_tick(now));
        }
        for event in happened {
            let _ = events.send(Ok((now, event)));
        }
    }
    Ok(())
}

fn open_server(ns: &PathBuf) -> Result<OwnedFd, String> {
    enter(ns)?;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|err| format!("server socket: {err}"))?;
    let options = [
        setsockopt(&fd, sockopt::ReuseAddr, &true),
        setsockopt(&fd, sockopt::Broadcast, &true),
        setsockopt(&fd, sockopt::Ipv4PacketInfo, &true),
        setsockopt(&fd, sockopt::BindToDevice, &SERVER_IF.into()),
    ];
    for result in options {
        result.map_err(|err| format!("server socket option: {err}"))?;
    }
    let local = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67));
    bind(fd.as_raw_fd(), &local).map_err(|err| format!("bind the server to :67: {err}"))?;
    Ok(fd)
}

/// Answers until told to stop. Errors are printed, not fatal: the test's
/// own deadlines report what went missing.
fn serve(socket: &OwnedFd, state: &ServerState, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(err) => {
                eprintln!("server: poll: {err}");
                return;
            }
        }
        let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
        let (len, from, to) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<SockaddrIn>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            ) {
                Ok(msg) => msg,
                Err(err) => {
                    eprintln!("server: recvmsg: {err}");
                    continue;
                }
            };
            let from = msg.address.map_or(Ipv4Addr::UNSPECIFIED, |a| a.ip());
            let mut to = Ipv4Addr::UNSPECIFIED;
            if let Ok(cmsgs) = msg.cmsgs() {
                for cmsg in cmsgs {
                    if let ControlMessageOwned::Ipv4PacketInfo(info) = cmsg {
                        to = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                    }
                }
            }
            (msg.bytes, from, to)
        };
        let Ok(request) = Message::decode(&mut Decoder::new(&buf[..len])) else {
            eprintln!("server: undecodable {len} bytes from {from}");
            continue;
        };
        if request.opcode() != Opcode::BootRequest {
            continue;
        }
        let Some(kind) = request.opts().msg_type() else {
            continue;
        };
        let nak = kind == MessageType::Request && state.nak.load(Ordering::SeqCst);
        let seen = Seen {
            kind,
            xid: request.xid(),
            broadcast_flag: request.flags().broadcast(),
            ciaddr: request.ciaddr(),
            requested: match request.opts().get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(address)) => Some(*address),
                _ => None,
            },
            server_id: match request.opts().get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(address)) => Some(*address),
                _ => None,
            },
            from,
            to,
            nak_sent: nak,
        };
        if let Ok(mut log) = state.seen.lock() {
            log.push(seen);
        }
        let reply_kind = match (kind, nak) {
            (MessageType::Discover, _) => MessageType::Offer,
            (MessageType::Request, false) => MessageType::Ack,
            (MessageType::Request, true) => MessageType::Nak,
            _ => continue,
        };
        let bytes = match reply(&request, reply_kind) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("server: encode: {err}");
                continue;
            }
        };
        let broadcast = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::BROADCAST, 68));
        if let Err(err) = sendto(socket.as_raw_fd(), &bytes, &broadcast, MsgFlags::empty()) {
            eprintln!("server: send {reply_kind:?}: {err}");
        }
    }
}

/// The server's answer to `request`.
fn reply(request: &Message, kind: MessageType) -> Result<Vec<u8>, String> {
    let yiaddr = if kind == MessageType::Nak {
        Ipv4Addr::UNSPECIFIED
    } else {
        CLIENT_IP
    };
    let mut msg = Message::new_with_id(
        request.xid(),
        Ipv4Addr::UNSPECIFIED,
        yiaddr,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        request.chaddr(),
    );
    msg.set_opcode(Opcode::BootReply).set_flags(request.flags());
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(SERVER_IP));
    if kind == MessageType::Nak {
        opts.insert(DhcpOption::Message("test server says no".to_string()));
    } else {
        opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        opts.insert(DhcpOption::Router(vec![SERVER_IP]));
        opts.insert(DhcpOption::DomainNameServer(vec![DNS_IP]));
        opts.insert(DhcpOption::DomainName("test.example".to_string()));
        opts.insert(DhcpOption::AddressLeaseTime(LEASE_SECS));
        opts.insert(DhcpOption::Renewal(T1_SECS));
    }
    let mut bytes = Vec::new();
    msg.encode(&mut Encoder::new(&mut bytes))
        .map_err(|err| err.to_string())?;
    Ok(bytes)
}

/// The next event within `within`, failing with the server's log.
fn next_event(
    events: &Receiver<Result<(Duration, Event), String>>,
    within: Duration,
    waiting_for: &str,
    state: &ServerState,
) -> (Duration, Event) {
    match events.recv_timeout(within) {
        Ok(Ok(event)) => event,
        Ok(Err(err)) => panic!("client failed while waiting for {waiting_for}: {err}"),
        Err(err) => panic!(
            "no client event within {within:?} while waiting for {waiting_for} ({err})\n{}",
            state.dump()
        ),
    }
}

/// Waits until what the server has seen satisfies `wanted`.
fn wait_seen(state: &ServerState, within: Duration, what: &str, wanted: impl Fn(&[Seen]) -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if wanted(&state.seen()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server never saw {what}\n{}", state.dump());
}

/// Prints the session's log lines, so a failing run shows its decisions.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        eprintln!("{:5} {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".to_string());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(err) => Some(format!("cannot run `ip`: {err}")),
    }
}

fn check_lease(lease: &Lease, state: &ServerState) {
    let got = (
        lease.address,
        lease.prefix_len,
        lease.router,
        lease.dns.clone(),
        lease.domain.as_deref(),
        lease.server,
        lease.lease_time,
        lease.renew_after,
        lease.rebind_after,
    );
    let want = (
        CLIENT_IP,
        24,
        Some(SERVER_IP),
        vec![DNS_IP],
        Some("test.example"),
        SERVER_IP,
        Duration::from_secs(4),
        Duration::from_secs(2),
        Duration::from_millis(3500),
    );
    assert_eq!(got, want, "lease fields\n{}", state.dump());
}

#[test]
fn dhcp_client_binds_renews_by_unicast_and_loses_on_nak() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping the dhcp host test: {reason}");
        return;
    }
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let mut lab = Lab::create().expect("create the namespaces and veth pair");
    let state = Arc::new(ServerState::default());
    lab.start_server(Arc::clone(&state))
        .expect("start the test dhcp server");
    let events = lab.start_client();

    // 1. Discovery: the lease is what the server handed out.
    let (bound_at, event) = next_event(&events, Duration::from_secs(5), "a lease", &state);
    let Event::Bound(lease) = event else {
        panic!("first event {event:?}, want Bound\n{}", state.dump());
    };
    check_lease(&lease, &state);
    let seen = state.seen();
    let discover = seen.iter().find(|s| s.kind == MessageType::Discover);
    assert!(
        discover.is_some_and(|d| d.broadcast_flag && d.to == Ipv4Addr::BROADCAST),
        "a broadcast DISCOVER with the broadcast flag\n{}",
        state.dump()
    );
    let request = seen.iter().find(|s| s.kind == MessageType::Request);
    assert!(
        request.is_some_and(|r| r.requested == Some(CLIENT_IP)
            && r.server_id == Some(SERVER_IP)
            && r.ciaddr.is_unspecified()
            && r.broadcast_flag
            && r.xid == discover.map_or(0, |d| d.xid)),
        "a SELECTING REQUEST with options 50 and 54 and the DISCOVER's xid\n{}",
        state.dump()
    );

    // The caller's part: configure the address, so unicast renewal works.
    ip(&[
        "-n",
        &lab.client_ns,
        "addr",
        "add",
        "192.0.2.100/24",
        "dev",
        CLIENT_IF,
    ])
    .expect("configure the leased address");

    // 2. Renewal at T1 (2 s): unicast from the leased address, ciaddr set.
    let (renewed_at, event) = next_event(&events, Duration::from_secs(4), "a renewal", &state);
    let Event::Renewed(renewed) = event else {
        panic!("second event {event:?}, want Renewed\n{}", state.dump());
    };
    check_lease(&renewed, &state);
    assert!(
        renewed_at >= bound_at + Duration::from_millis(1500),
        "renewed at {renewed_at:?}, bound at {bound_at:?}: not at T1"
    );
    assert!(
        state.seen().iter().any(|s| s.kind == MessageType::Request
            && s.ciaddr == CLIENT_IP
            && s.from == CLIENT_IP
            && s.to == SERVER_IP
            && !s.broadcast_flag
            && s.requested.is_none()
            && s.server_id.is_none()),
        "a unicast renewing REQUEST with ciaddr and without options 50 and 54\n{}",
        state.dump()
    );

    // 3. The server refuses the next renewal: lease lost, discovery again.
    state.nak.store(true, Ordering::SeqCst);
    let (_, event) = next_event(&events, Duration::from_secs(4), "the NAK", &state);
    let Event::Lost { reason } = event else {
        panic!("third event {event:?}, want Lost\n{}", state.dump());
    };
    assert!(
        reason.contains("nak") && reason.contains("test server says no"),
        "reason: {reason}"
    );
    ip(&["-n", &lab.client_ns, "addr", "flush", "dev", CLIENT_IF])
        .expect("remove the lost address");
    wait_seen(
        &state,
        Duration::from_secs(3),
        "a DISCOVER after the NAK",
        |seen| {
            seen.iter()
                .skip_while(|s| !s.nak_sent)
                .any(|s| s.kind == MessageType::Discover)
        },
    );

    // 4. The server relents: bound again.
    state.nak.store(false, Ordering::SeqCst);
    let (_, event) = next_event(&events, Duration::from_secs(6), "a new lease", &state);
    let Event::Bound(again) = event else {
        panic!("fourth event {event:?}, want Bound\n{}", state.dump());
    };
    check_lease(&again, &state);
}
