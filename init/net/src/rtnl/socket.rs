//! The syscall layer under rtnetlink and nftables: one netlink socket.
//!
//! The socket is bound to a kernel-chosen port, asks for extended acks
//! (the kernel's error text) and capped acks (errors echo only the
//! request's header), and has a receive timeout so PID 1 never blocks for
//! ever on a reply that does not come. A netlink socket belongs to the
//! network namespace of the thread that opened it, for its whole life.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// Large enough for any message the kernel sends: a dump fills at most
/// 32 KiB per datagram (net/netlink/af_netlink.c, `netlink_dump`).
const RECEIVE_BUFFER: usize = 64 * 1024;
/// Below the smallest default send buffer (`net.core.wmem_default` is
/// 212992 on Linux): datagrams up to this size need no larger buffer.
const SEND_BUFFER_DEFAULT: usize = 128 * 1024;
/// How long a request may wait for its answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct NlSocket {
    socket: netlink_sys::Socket,
}

impl NlSocket {
    /// Opens a socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`).
    pub fn open(protocol: isize) -> io::Result<NlSocket> {
        let mut socket = netlink_sys::Socket::new(protocol)?;
        socket.bind_auto()?;
        socket.set_ext_ack(true)?;
        socket.set_cap_ack(true)?;
        let timeout = TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)?;
        Ok(NlSocket { socket })
    }

    /// Joins multicast group `group` (an `RTNLGRP_*` number).
    pub fn subscribe(&self, group: u32) -> io::Result<()> {
        self.socket.add_membership(group)
    }

    pub fn set_non_blocking(&self) -> io::Result<()> {
        self.socket.set_non_blocking(true)
    }

    /// Sends one datagram to the kernel, whole. A datagram larger than
    /// the send buffer fails with EMSGSIZE (af_netlink.c,
    /// `netlink_sendmsg`), so a large one (an nftables batch with many
    /// rules) first grows the buffer, as nft does; `SO_SNDBUFFORCE` needs
    /// CAP_NET_ADMIN, which PID 1 has.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > SEND_BUFFER_DEFAULT {
            setsockopt(&self.socket, sockopt::SndBufForce, &bytes.len())?;
        }
        let sent = self.socket.send(bytes, 0)?;
        if sent != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", bytes.len()),
            ));
        }
        Ok(())
    }

    /// Waits for the next datagram, at most the reply timeout.
    pub fn receive(&self) -> io::Result<Vec<u8>> {
        match self.receive_with(0) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from the kernel within {REPLY_TIMEOUT:?}"),
            )),
            other => other,
        }
    }

    /// The next datagram if one is queued, without waiting.
    pub fn receive_now(&self) -> io::Result<Option<Vec<u8>>> {
        match self.receive_with(libc::MSG_DONTWAIT) {
            Ok(datagram) => Ok(Some(datagram)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn receive_with(&self, flags: libc::c_int) -> io::Result<Vec<u8>> {
        let mut buffer = Vec::with_capacity(RECEIVE_BUFFER);
        // MSG_TRUNC makes recv return the datagram's real length.
        let len = self.socket.recv(&mut buffer, flags | libc::MSG_TRUNC)?;
        if len > buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {len}-byte datagram did not fit the receive buffer"),
            ));
        }
        Ok(buffer)
    }
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
