//! The kernel side of the client: a UDP socket on port 68 of one
//! interface, behind the [`Transport`] seam so the session can be tested
//! with a recording fake.
//!
//! The socket is non-blocking and close-on-exec, has SO_REUSEADDR (another
//! interface's client binds the same port) and SO_BROADCAST, and is tied
//! to the interface with SO_BINDTODEVICE before binding 0.0.0.0:68, so it
//! sends out of and receives from that interface only (socket(7)). With no
//! address on the interface the kernel still sends a limited broadcast
//! from 0.0.0.0 through the bound device, and delivers broadcast replies
//! to the socket, which is why our messages ask for broadcast replies.
//! Caveat: with strict reverse-path filtering (`rp_filter=1`) on the
//! interface, replies from a server address are dropped until the
//! interface has an address; raw sockets would avoid that, a plain UDP
//! socket keeps the client small.

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
};

use super::error::Error;

/// The DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// The DHCP client port.
pub const CLIENT_PORT: u16 = 68;

/// Datagram I/O as the session needs it.
pub trait Transport {
    /// The descriptor to poll for readability.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Sends one datagram.
    fn send_to(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()>;
    /// Receives one datagram into `buf`; `Ok(None)` when nothing is queued.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
}

/// The real transport: a UDP socket bound to 0.0.0.0:68 on one interface.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
}

impl UdpTransport {
    /// Opens the client socket on interface `ifname`.
    pub fn open(ifname: &str) -> Result<UdpTransport, Error> {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|source| Error::Socket {
            ifname: ifname.to_string(),
            source,
        })?;
        let option = |name: &'static str, result: nix::Result<()>| {
            result.map_err(|source| Error::SocketOption {
                ifname: ifname.to_string(),
                option: name,
                source,
            })
        };
        option("SO_REUSEADDR", setsockopt(&fd, sockopt::ReuseAddr, &true))?;
        option("SO_BROADCAST", setsockopt(&fd, sockopt::Broadcast, &true))?;
        option(
            "SO_BINDTODEVICE",
            setsockopt(&fd, sockopt::BindToDevice, &OsString::from(ifname)),
        )?;
        let local = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT));
        bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &local).map_err(|source| Error::Bind {
            ifname: ifname.to_string(),
            source,
        })?;
        Ok(UdpTransport {
            socket: UdpSocket::from(fd),
        })
    }
}

impl Transport for UdpTransport {
    fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    fn send_to(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let sent = self.socket.send_to(bytes, to)?;
        if sent == bytes.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", bytes.len()),
            ))
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.socket.recv_from(buf) {
            Ok((len, _from)) => Ok(Some(len)),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        }
    }
}
