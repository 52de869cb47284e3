//! A recording transport: datagrams sent are kept, datagrams to receive
//! are queued by the test, both through a shared handle.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use super::super::socket::Transport;

#[derive(Debug, Default)]
pub struct Wire {
    pub sent: Vec<(Vec<u8>, SocketAddrV4)>,
    pub inbox: VecDeque<io::Result<Vec<u8>>>,
    pub fail_sends: bool,
}

#[derive(Debug)]
pub struct FakeTransport {
    pub wire: Rc<RefCell<Wire>>,
    fd: OwnedFd,
}

impl FakeTransport {
    pub fn new() -> (FakeTransport, Rc<RefCell<Wire>>) {
        let wire = Rc::new(RefCell::new(Wire::default()));
        let fd = File::open("/dev/null").expect("open /dev/null").into();
        let transport = FakeTransport {
            wire: Rc::clone(&wire),
            fd,
        };
        (transport, wire)
    }
}

impl Transport for FakeTransport {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn send_to(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let mut wire = self.wire.borrow_mut();
        if wire.fail_sends {
            return Err(io::Error::from(io::ErrorKind::NetworkUnreachable));
        }
        wire.sent.push((bytes.to_vec(), to));
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.wire.borrow_mut().inbox.pop_front() {
            None => Ok(None),
            Some(Err(err)) => Err(err),
            Some(Ok(bytes)) => {
                let len = bytes.len().min(buf.len());
                buf[..len].copy_from_slice(&bytes[..len]);
                Ok(Some(len))
            }
        }
    }
}
