//! Work inside a container's network namespace from PID 1 itself.
//!
//! A new network namespace starts with its loopback interface down, and
//! libcontainer leaves it so; programs expect `localhost` to work. setns(2)
//! moves only the calling thread, so PID 1's loop thread can enter the
//! namespace, bring `lo` up, and return to its own, synchronously, while
//! the launcher thread waits for it before starting the container's
//! process.

use std::fs::File;

use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;

/// Brings `lo` up in the network namespace of process `pid`.
pub fn loopback_up_in(pid: Pid) -> Result<(), String> {
    let own =
        File::open("/proc/self/ns/net").map_err(|e| format!("open own network namespace: {e}"))?;
    let target = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("open network namespace of {pid}: {e}"))?;
    setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("enter network namespace of {pid}: {e}"))?;
    let result = crate::sys::interface_up("lo").map_err(|e| format!("bring up lo: {e}"));
    // Going back must work: PID 1 must not stay in a container's namespace.
    setns(&own, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("return to the node's network namespace: {e}"))?;
    result
}
