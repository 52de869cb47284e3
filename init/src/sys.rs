//! The only place berth's init uses `unsafe`: thin wrappers over the few
//! calls nix does not cover. Each block states what it relies on.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Sets `IFF_UP` on the interface `name` (netdevice(7): SIOCGIFFLAGS, then
/// SIOCSIFFLAGS with the flag added).
pub fn interface_up(name: &str) -> io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `sock` is an open socket for the whole call; `req` is a valid,
    // NUL-terminated (zeroed beyond the name) ifreq that the kernel reads and
    // writes in place; SIOCGIFFLAGS fills only `ifru_flags`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just wrote `ifru_flags`, the active union field.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Forks a child that enters the network namespace of process `ns_pid`
/// and tries a TCP connect to 127.0.0.1:`port` within `timeout_ms`; it
/// exits 0 when the connect succeeded, 1 when it failed, 2 when it could
/// not enter the namespace. The caller reaps it like any child. A child is
/// used because setns(2) changes the calling thread, and PID 1 must stay
/// in its own namespace.
pub fn spawn_tcp_probe(ns_pid: i32, port: u16, timeout_ms: i32) -> io::Result<nix::unistd::Pid> {
    // Everything the child needs is prepared here: it must not allocate.
    let path = std::ffi::CString::new(format!("/proc/{ns_pid}/ns/net"))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: all-zero is a valid sockaddr_in; the fields are set below.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    // SAFETY: PID 1 is single-threaded (signal-hook's handlers only write
    // to a pipe and set flags; no helper threads), so the child inherits a
    // consistent address space; it calls only async-signal-safe system
    // calls on the data prepared above and leaves through _exit, never
    // returning into Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => tcp_probe_child(&path, &addr, timeout_ms),
        pid => Ok(nix::unistd::Pid::from_raw(pid)),
    }
}

fn tcp_probe_child(path: &std::ffi::CStr, addr: &libc::sockaddr_in, timeout_ms: i32) -> ! {
    // SAFETY: (whole block) open, setns, socket, connect, poll, getsockopt
    // and _exit are async-signal-safe system calls (signal-safety(7)); the
    // pointers refer to the parent-prepared `path` and `addr`, alive for
    // the whole child, and to locals.
    unsafe {
        let ns = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if ns < 0 || libc::setns(ns, libc::CLONE_NEWNET) != 0 {
            libc::_exit(2);
        }
        let s = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if s < 0 {
            libc::_exit(1);
        }
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::connect(s, (addr as *const libc::sockaddr_in).cast(), len) == 0 {
            libc::_exit(0);
        }
        if *libc::__errno_location() != libc::EINPROGRESS {
            libc::_exit(1);
        }
        let mut pfd = libc::pollfd {
            fd: s,
            events: libc::POLLOUT,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, timeout_ms) != 1 {
            libc::_exit(1);
        }
        let mut err: libc::c_int = 0;
        let mut err_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let got = libc::getsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut err_len,
        );
        libc::_exit(if got == 0 && err == 0 { 0 } else { 1 });
    }
}
