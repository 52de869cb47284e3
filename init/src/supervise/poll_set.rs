//! One `poll(2)` over descriptors that each carry a tag saying whose they
//! are, so the loop dispatches by tag instead of by position.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Descriptors to poll, each with its tag.
#[derive(Debug)]
pub(crate) struct PollSet<'a, T> {
    fds: Vec<PollFd<'a>>,
    tags: Vec<T>,
}

impl<'a, T: Copy> PollSet<'a, T> {
    pub(crate) fn new() -> Self {
        PollSet {
            fds: Vec::new(),
            tags: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, fd: BorrowedFd<'a>, flags: PollFlags, tag: T) {
        self.fds.push(PollFd::new(fd, flags));
        self.tags.push(tag);
    }

    /// Waits up to `timeout` and returns the tags of the descriptors that
    /// are ready, with what they are ready for (in the order added).
    /// Interrupted by a signal, nothing is ready.
    pub(crate) fn wait(mut self, timeout: PollTimeout) -> Result<Vec<(T, PollFlags)>, Errno> {
        match poll(&mut self.fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
        Ok(self
            .fds
            .iter()
            .zip(&self.tags)
            .filter_map(|(fd, tag)| {
                let r = fd.revents().unwrap_or(PollFlags::empty());
                (!r.is_empty()).then_some((*tag, r))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn ready_descriptors_come_back_with_their_tags() {
        let (a_r, mut a_w) = UnixStream::pair().expect("socketpair");
        let (b_r, _b_w) = UnixStream::pair().expect("socketpair");
        let (c_r, mut c_w) = UnixStream::pair().expect("socketpair");
        a_w.write_all(b"x").expect("write");
        c_w.write_all(b"y").expect("write");
        let mut set = PollSet::new();
        set.add(a_r.as_fd(), PollFlags::POLLIN, "a");
        set.add(b_r.as_fd(), PollFlags::POLLIN, "b");
        set.add(c_r.as_fd(), PollFlags::POLLIN, "c");
        let ready = set.wait(PollTimeout::ZERO).expect("poll");
        let tags: Vec<&str> = ready.iter().map(|(t, _)| *t).collect();
        assert_eq!(tags, ["a", "c"]);
        assert!(ready.iter().all(|(_, f)| f.contains(PollFlags::POLLIN)));
    }
}
