//! What the loop needs of the node's network: its descriptors and timer,
//! whether it is online, and putting a container on it. [`Net`] in PID 1;
//! a fake in the loop's tests.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use berth_config::{Container, Kind};
use berth_net::node::Net;
use nix::unistd::Pid;

use crate::netns;

pub(crate) trait Network {
    fn poll_fds(&self) -> Vec<BorrowedFd<'_>>;
    /// `ready[k]`: the k-th of [`Network::poll_fds`] is readable; true when
    /// whether the node is online may have changed.
    fn on_ready(&mut self, ready: &[bool], now: Duration) -> bool;
    fn deadline(&self) -> Option<Duration>;
    /// Timers; true as for [`Network::on_ready`].
    fn tick(&mut self, now: Duration) -> bool;
    fn online(&self) -> bool;
    /// Readies a created container's namespaces before its process runs:
    /// loopback up in a namespace of its own, the bridge for a bridge
    /// container.
    fn attach(&mut self, c: &Container, pid: i32) -> Result<(), String>;
    /// After the container stopped: gives back its address and ports.
    fn detach(&mut self, name: &str);
}

impl Network for Net {
    fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        Net::poll_fds(self)
    }

    fn on_ready(&mut self, ready: &[bool], now: Duration) -> bool {
        Net::on_ready(self, ready, now)
    }

    fn deadline(&self) -> Option<Duration> {
        Net::deadline(self)
    }

    fn tick(&mut self, now: Duration) -> bool {
        Net::tick(self, now)
    }

    fn online(&self) -> bool {
        Net::online(self)
    }

    fn attach(&mut self, c: &Container, pid: i32) -> Result<(), String> {
        if c.kind == Kind::Workload && c.network.own_namespace() {
            if let Err(e) = netns::loopback_up_in(Pid::from_raw(pid)) {
                log::warn!("{}: {e}", c.name);
            }
        }
        Net::attach(self, c, pid)
    }

    fn detach(&mut self, name: &str) {
        Net::detach(self, name);
    }
}
