//! Why replacing or removing berth's tables failed. Messages end with
//! their cause, like the rtnetlink ones, since callers log them with `{e}`.

use std::io;

use crate::rtnl::KernelError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid ruleset: {0}")]
    Invalid(String),
    #[error("open a netfilter netlink socket: {0}")]
    Open(io::Error),
    #[error("send the nftables batch: {0}")]
    Send(io::Error),
    #[error("read the kernel's answers to the nftables batch: {0}")]
    Receive(io::Error),
    #[error("cannot decode the kernel's answers to the nftables batch: {0}")]
    Decode(String),
    #[error("{what}: {cause}")]
    Kernel { what: String, cause: KernelError },
    #[error("the kernel did not answer {what}")]
    NoAnswer { what: String },
}
