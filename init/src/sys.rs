//! The only place berth's init uses `unsafe`: thin wrappers over the few
//! calls nix does not cover. Each block states what it relies on.
#![allow(unsafe_code)]

pub mod clone_child;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

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
    // SAFETY: the child gets a copy of the address space in which only
    // the forking thread runs; PID 1's other thread (the launcher) may
    // hold locks there, so the child calls only async-signal-safe system
    // calls on the data prepared above, takes no lock, does not allocate,
    // and leaves through _exit, never returning into Rust code.
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

/// ioctl(2) on the device-mapper control node with a `struct dm_ioctl`
/// buffer (`dm.rs` encodes it). Refuses a request that does not take a
/// `struct dm_ioctl`, and a buffer whose `data_size` claims more than its
/// length, since the kernel reads and writes that many bytes.
pub fn dm_ioctl(
    control: std::os::fd::BorrowedFd<'_>,
    request: u32,
    buf: &mut [u8],
) -> io::Result<()> {
    const HEADER: usize = 312;
    let takes_dm_ioctl = (request >> 8) & 0xff == 0xfd && (request >> 16) & 0x3fff == HEADER as u32;
    let data_size = buf
        .get(12..16)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if !takes_dm_ioctl || buf.len() < HEADER || data_size.is_none_or(|n| n > buf.len()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a device-mapper ioctl buffer",
        ));
    }
    // SAFETY: `control` is an open descriptor for the whole call; the
    // request is a DM_* `_IOWR` of `struct dm_ioctl` (checked above), for
    // which the kernel copies in and writes back at most `data_size`
    // bytes, which the check above keeps within `buf`, exclusively
    // borrowed for the call.
    let r = unsafe {
        libc::ioctl(
            control.as_raw_fd(),
            libc::c_ulong::from(request),
            buf.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioprio_set(2): puts the calling process in the idle I/O class, so its
/// reads are served only when no one else wants the disk.
pub fn ioprio_set_idle() -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_IDLE: libc::c_int = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
    // SAFETY: ioprio_set takes three integers and no pointers; `0` names
    // the calling process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Forks the dm-verity scrub child (`scrub.rs`): it resets every signal
/// to its default and unblocks them (so a shutdown's SIGTERM ends it), runs
/// [`crate::scrub::child_main`] over the prepared `device`, `buf` and
/// `report` pipe, and leaves through `_exit` with its status. The caller
/// keeps its descriptors and drops its copies as usual.
pub fn fork_scrub(
    device: std::os::fd::BorrowedFd<'_>,
    size: u64,
    buf: &mut [u8],
    report: std::os::fd::BorrowedFd<'_>,
) -> io::Result<nix::unistd::Pid> {
    // SAFETY: as in `spawn_tcp_probe`, the child may inherit locks held
    // by PID 1's launcher thread, so it only calls `scrub_child`, which
    // uses async-signal-safe system calls, takes no lock and does not
    // allocate, and never returns into the caller's code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => scrub_child(device, size, buf, report),
        pid => Ok(nix::unistd::Pid::from_raw(pid)),
    }
}

fn scrub_child(
    device: std::os::fd::BorrowedFd<'_>,
    size: u64,
    buf: &mut [u8],
    report: std::os::fd::BorrowedFd<'_>,
) -> ! {
    // SAFETY: (whole block) sigemptyset, sigprocmask and signal are
    // async-signal-safe (signal-safety(7)); `set` is a local; resetting a
    // disposition to SIG_DFL installs no handler; SIGKILL and SIGSTOP,
    // which cannot be changed, fail harmlessly.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        // Linux signals are 1..=64 (_NSIG 65).
        for sig in 1..=64 {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let code = crate::scrub::child_main(device, size, buf, report);
    // SAFETY: _exit ends the child without running the parent's atexit
    // handlers or flushing its copied stdio buffers.
    unsafe { libc::_exit(code) }
}

/// `bpf(2)` commands and types (`include/uapi/linux/bpf.h`).
const BPF_PROG_LOAD: libc::c_long = 5;
/// How many times a device program load refused with EAGAIN (a signal
/// arrived while the verifier ran) is tried before the error stands.
const BPF_LOAD_ATTEMPTS: u32 = 20;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to the fields berth
/// sets; the tail the kernel knows beyond them must be zero, as it is.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads `insns` (encoded `struct bpf_insn`s) as a cgroup device
/// program, for [`attach_device_program`]. The verifier runs without a
/// log (its log costs more than the check itself); only when it refuses
/// the program is it run again with one, and the log is in the error.
pub fn load_device_program(insns: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    match bpf_prog_load(insns, None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut log = vec![0u8; 4096];
            match bpf_prog_load(insns, Some(&mut log)) {
                // Refused once, accepted now: nothing to explain.
                Ok(fd) => Ok(fd),
                Err(err) => {
                    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    let reason = if text.trim().is_empty() {
                        first.to_string()
                    } else {
                        format!("{err}: {}", text.trim())
                    };
                    Err(io::Error::new(
                        err.kind(),
                        format!("load the device program: {reason}"),
                    ))
                }
            }
        }
    }
}

/// One `BPF_PROG_LOAD` of a cgroup device program, with the verifier's
/// log in `log` if given.
fn bpf_prog_load(insns: &[u8], mut log: Option<&mut [u8]>) -> io::Result<std::os::fd::OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"berth_devcg");
    let (log_level, log_size, log_buf) = match log.as_deref_mut() {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len() / 8)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "program too long"))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    // The verifier gives up with EAGAIN when a signal is pending for the
    // calling process (PID 1 gets SIGCHLD whenever a container exits), so
    // a refusal with EAGAIN is tried again, as libbpf does; the program is
    // tiny and the verifier takes microseconds.
    let mut attempts = 0;
    let prog = loop {
        attempts += 1;
        // SAFETY: `load` is a valid, fully initialised prefix of `union
        // bpf_attr` (the kernel zero-extends a shorter attr) whose
        // pointers (`insns`, `license`, and `log_buf` with `log_size` when
        // set) point into buffers that live until the call returns; the
        // kernel only reads `insns` and `license` and writes at most
        // `log_size` bytes of the log.
        let prog = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &load as *const ProgLoadAttr,
                std::mem::size_of::<ProgLoadAttr>(),
            )
        };
        if prog >= 0 || attempts >= BPF_LOAD_ATTEMPTS {
            break prog;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => {
                if let Some(buf) = log.as_deref_mut() {
                    buf.fill(0);
                }
                continue;
            }
            _ => break prog,
        }
    };
    if prog < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: BPF_PROG_LOAD returned a new file descriptor (close-on-exec,
    // as every bpf(2) descriptor) that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(prog as i32) })
}

/// Attaches the device program `prog` ([`load_device_program`]) to the
/// cgroup directory `cgroup`. The attachment holds the program; it goes
/// with the cgroup. One loaded program may be attached to any number of
/// cgroups.
pub fn attach_device_program(
    cgroup: &std::fs::File,
    prog: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    let attach = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..ProgAttachAttr::default()
    };
    // SAFETY: `attach` is a valid prefix of `union bpf_attr`; both fds are
    // open for the whole call; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if r < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("attach the device program: {err}"),
        ));
    }
    Ok(())
}

/// `BLKPG` (linux/fs.h: `_IO(0x12, 105)`) with `BLKPG_RESIZE_PARTITION`
/// (linux/blkpg.h): tells the kernel that partition `number` of the disk
/// open as `disk` now spans `length` bytes from byte `start`. Unlike a
/// re-read of the whole table (`BLKRRPART`), it works while partitions of
/// the disk are mounted.
pub fn resize_partition(
    disk: &std::fs::File,
    number: u32,
    start: u64,
    length: u64,
) -> io::Result<()> {
    #[repr(C)]
    struct BlkpgPartition {
        start: libc::c_longlong,
        length: libc::c_longlong,
        pno: libc::c_int,
        devname: [libc::c_char; 64],
        volname: [libc::c_char; 64],
    }
    #[repr(C)]
    struct BlkpgIoctlArg {
        op: libc::c_int,
        flags: libc::c_int,
        datalen: libc::c_int,
        data: *mut libc::c_void,
    }
    const BLKPG: libc::c_ulong = 0x1269;
    const BLKPG_RESIZE_PARTITION: libc::c_int = 3;
    let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "partition out of range");
    let mut part = BlkpgPartition {
        start: i64::try_from(start).map_err(|_| too_big())?,
        length: i64::try_from(length).map_err(|_| too_big())?,
        pno: libc::c_int::try_from(number).map_err(|_| too_big())?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let mut arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: `disk` is an open block device for the whole call; `arg`
    // and the `part` it points to are valid, initialised, `repr(C)`
    // structures laid out as linux/blkpg.h declares them, and both live
    // until the ioctl returns. The kernel only reads them.
    if unsafe { libc::ioctl(disk.as_raw_fd(), BLKPG, &mut arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `EXT4_IOC_RESIZE_FS` (`_IOW('f', 16, __u64)`, ext4's online resize,
/// what `resize2fs` uses on a mounted filesystem): grows the ext4
/// filesystem mounted at the folder open as `mount` to `blocks` blocks.
pub fn ext4_resize(mount: &std::fs::File, blocks: u64) -> io::Result<()> {
    const EXT4_IOC_RESIZE_FS: libc::c_ulong = 0x4008_6610;
    let count: u64 = blocks;
    // SAFETY: `mount` is an open descriptor of the filesystem's folder for
    // the whole call; the kernel reads one u64 from `&count`, which lives
    // until the ioctl returns.
    if unsafe { libc::ioctl(mount.as_raw_fd(), EXT4_IOC_RESIZE_FS, &count) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `BLKZEROOUT` (`_IO(0x12, 127)`): has the block device open as `dev`
/// write zeroes over `len` bytes from `start` (both multiples of 512),
/// with the device's own zeroing command when it has one.
pub fn block_zero_out(dev: &std::fs::File, start: u64, len: u64) -> io::Result<()> {
    const BLKZEROOUT: libc::c_ulong = 0x127f;
    block_range_ioctl(dev, BLKZEROOUT, start, len)
}

/// `BLKDISCARD` (`_IO(0x12, 119)`): tells the device the range is unused.
pub fn block_discard(dev: &std::fs::File, start: u64, len: u64) -> io::Result<()> {
    const BLKDISCARD: libc::c_ulong = 0x1277;
    block_range_ioctl(dev, BLKDISCARD, start, len)
}

fn block_range_ioctl(
    dev: &std::fs::File,
    request: libc::c_ulong,
    start: u64,
    len: u64,
) -> io::Result<()> {
    let range: [u64; 2] = [start, len];
    // SAFETY: `dev` is an open descriptor for the whole call; the kernel
    // reads two u64 (start, length) from `range`, which lives until the
    // ioctl returns, and writes nothing back.
    if unsafe { libc::ioctl(dev.as_raw_fd(), request, range.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The memfd named `name` that an earlier program of this process (stage
/// 0, before its `execve`) left open as descriptor `fd`, taken over; `None`
/// when `fd` is not open or is something else.
pub fn inherited_memfd(fd: i32, name: &str) -> Option<std::fs::File> {
    if fd < 3 {
        return None;
    }
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    if !target
        .to_string_lossy()
        .starts_with(&format!("/memfd:{name}"))
    {
        return None;
    }
    // SAFETY: `fd` is open (its /proc link exists) and is the memfd stage
    // 0 made and handed over across `execve`; nothing in this program has
    // opened or taken it, so the new File is its only owner.
    Some(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// What a SIGBUS handler receives: the signal, its `siginfo_t` (the
/// faulting address) and the interrupted context.
pub type FaultHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Runs `handler` on SIGBUS, which signal-hook refuses to register: a
/// fault signal's handler must not return into the faulting code unless
/// it has restored the default first ([`die_of_signal`]).
pub fn on_bus_error(handler: FaultHandler) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::SigAction(handler),
        SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    // SAFETY: `handler` either never returns (it reboots the machine) or
    // restores the default disposition and re-raises first, so no code
    // resumes on a state the signal interrupted; replacing SIGBUS's
    // disposition affects no other handler, and the previous one (the
    // default) is not needed.
    unsafe { sigaction(Signal::SIGBUS, &action) }.map(|_| ())
}

/// From a fault signal's handler: restores the signal's default action
/// and raises it again, so that once the handler returns the process
/// dies of it, as if it had never been caught (a faulting instruction
/// would also fault again). Async-signal-safe.
pub fn die_of_signal(signal: libc::c_int) {
    // SAFETY: signal(2) and raise(3) are async-signal-safe and take plain
    // integers; the raised signal stays pending until the handler returns.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// The faulting address in a fault signal's `siginfo_t` (0 if none).
pub fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t (or
    // null is checked); si_addr is set for SIGBUS and SIGSEGV.
    unsafe { info.as_ref().map_or(0, |i| i.si_addr() as usize) }
}

/// Test support: forks a child that runs `install` (a SIGBUS handler)
/// and then reads a page mapped past the end of an empty file, which the
/// kernel answers with SIGBUS; returns the signal the child died of, or
/// None if it lived on for 15 s (then it is killed). The child first
/// enters a user namespace of its own, where `reboot(2)` is refused: a
/// handler that took it for PID 1 must not reboot the machine the tests
/// run on.
#[cfg(test)]
pub fn bus_error_in_a_child(install: fn()) -> Option<libc::c_int> {
    let file = tempfile::tempfile().expect("temporary file");
    // SAFETY: the child only installs the handler, maps and reads, then
    // exits; the parent only waits for it.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: unshare takes a flag; the forked child has one thread.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(3) };
            }
            install();
            // SAFETY: a shared read mapping of one page of an empty file;
            // the read past its end raises SIGBUS.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                );
                if p == libc::MAP_FAILED {
                    libc::_exit(2);
                }
                std::ptr::read_volatile(p.cast::<u8>());
                libc::_exit(0)
            }
        }
        pid if pid > 0 => {
            let mut status = 0;
            for _ in 0..150 {
                // SAFETY: polls the child just forked; `status` is ours.
                if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                    return libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // SAFETY: kills and reaps the child, which is still ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            None
        }
        _ => None,
    }
}

/// `write(2)` of all of `bytes` to `fd`, errors ignored: for a signal
/// handler's last words (no allocation, no lock).
pub fn write_raw(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe `bytes`, which outlives
        // the call; write(2) only reads them.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => bytes = &bytes[n.min(bytes.len())..],
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// `nanosleep(2)` for `secs` seconds, async-signal-safe.
pub fn sleep_raw(secs: libc::time_t) {
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec; the remainder pointer may be null.
    unsafe { libc::nanosleep(&t, std::ptr::null_mut()) };
}

/// `sync(2)` then `reboot(2)` with `cmd` (`RB_AUTOBOOT`, ...), for a
/// signal handler; returns only if the kernel refused (not PID 1).
pub fn sync_and_reboot_raw(cmd: libc::c_int) {
    // SAFETY: sync and reboot take no pointers; reboot fails with EPERM
    // without CAP_SYS_BOOT and otherwise does not return.
    unsafe {
        libc::sync();
        libc::reboot(cmd);
    }
}

/// `madvise(MADV_PAGEOUT)` over `len` bytes at `addr`: the kernel
/// reclaims the range's pages now (clean file pages are simply dropped;
/// they are read again if touched).
pub fn page_out(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: MADV_PAGEOUT never changes what the memory holds, only
    // where it lives: a page touched later is faulted in again with the
    // same contents, so no reference into the range is invalidated. The
    // kernel checks the range itself and fails with EINVAL or ENOMEM.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
