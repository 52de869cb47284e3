//! `berth`: PID 1 of a berth node and its operator CLI, one static binary.
//!
//! Dispatch: a known verb first (`berth validate MANIFEST`, …); otherwise,
//! as PID 1, boot. Which boot stage runs is told by `/etc/initrd-release`,
//! which only the initramfs carries: present → stage 0 (find and enter the
//! real root), absent → stage 1 (set up the node and supervise).

mod atomic_file;
mod cgroups;
mod cli;
mod client;
mod console;
mod container_init;
mod container_root;
mod devcgroup;
mod disk;
mod dm;
mod fatal;
mod footprint;
mod id_ranges;
mod journal;
mod kmsg;
mod modload;
mod mounts;
mod netns;
mod os;
mod plans;
mod powerbutton;
mod remote;
mod runtime;
// Started from the main loop by supervise.rs, which is wired separately.
mod scrub;
mod shutdown;
mod stage0;
mod stage1;
mod supervise;
mod switch_root;
mod sys;
mod system;
mod verity;
mod volumes;

use std::path::Path;

use berth_config::cmdline::KernelCmdline;
use berth_config::layout;

/// glibc's malloc, made safe for the children libcontainer clones from the
/// launcher thread (see [`sys::clone_child`]).
#[global_allocator]
static ALLOCATOR: sys::clone_child::Pid1Alloc = sys::clone_child::Pid1Alloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = cli::dispatch(&args) {
        std::process::exit(code);
    }
    if std::process::id() != 1 {
        eprintln!("berth: not PID 1 and no verb given\n\n{}", cli::USAGE);
        std::process::exit(2);
    }
    boot()
}

/// Rust's runtime sets SIGPIPE to "ignore" before `main`, and an ignored
/// signal stays ignored across `execve`: every container would inherit it.
/// A (no-op) handler instead gives PID 1 the same EPIPE on writes, while
/// `execve` resets handled signals to their default in the children.
fn unignore_sigpipe() {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(libc::SIGPIPE, flag) {
        log::warn!("replace the ignored SIGPIPE disposition: {e}");
    }
}

/// Remembers the optional modules stage 0 found the kernel refuses
/// ([`switch_root::REFUSED_MODULES_ARG`]).
fn take_stage0_refused_modules() {
    for arg in std::env::args().skip(1) {
        if let Some(names) = arg.strip_prefix(switch_root::REFUSED_MODULES_ARG) {
            modload::remember_refused(names.split(',').filter(|n| !n.is_empty()));
        }
    }
}

/// Puts the console lines stage 0 handed over ([`switch_root`]) in front
/// of stage 1's, so the boot log has the whole boot.
fn take_stage0_history() {
    use std::io::{Read, Seek};
    let fd = std::env::args().skip(1).find_map(|a| {
        a.strip_prefix(switch_root::STAGE0_LOG_ARG)
            .and_then(|n| n.parse::<i32>().ok())
    });
    let Some(mut file) = fd.and_then(|fd| sys::inherited_memfd(fd, switch_root::STAGE0_LOG_NAME))
    else {
        return;
    };
    let mut history = Vec::new();
    if file.rewind().is_ok() && file.read_to_end(&mut history).is_ok() {
        console::console().prepend_history(history);
    }
}

/// PID 1's path. Never returns: success supervises forever, failure ends in
/// `berth.panic=`'s action.
fn boot() -> ! {
    // First, so as few of the binary's pages as possible run uncovered;
    // berth.panic= is not known yet and replaces the default below.
    fatal::catch_bus_errors(berth_config::cmdline::PanicAction::default());
    let stage0 = Path::new(layout::INITRD_RELEASE).exists();
    // Mount /proc, /sys and /dev first so the console and the command line
    // exist; a failure here is reported once the console is open.
    let mounted = stage0::early_mounts();
    console::console().open();
    if !stage0 {
        take_stage0_history();
        take_stage0_refused_modules();
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let cmdline = KernelCmdline::parse(&cmdline);
    console::init_logging(cmdline.debug);
    fatal::install_panic_hook(cmdline.panic);
    fatal::set_bus_error_action(cmdline.panic);
    unignore_sigpipe();
    log::info!(
        "berth {} starting stage {} (uptime {:.3} s)",
        env!("CARGO_PKG_VERSION"),
        if stage0 { 0 } else { 1 },
        console::uptime().as_secs_f64()
    );
    for word in &cmdline.unknown {
        log::warn!("unknown kernel option {word} ignored");
    }
    for msg in &cmdline.invalid {
        log::warn!("{msg}");
    }
    if let Err(e) = mounted {
        fatal::die(&fatal::Fatal::new("early mounts", e), cmdline.panic);
    }
    let failure = if stage0 {
        stage0::run(&cmdline)
    } else {
        stage1::run()
    };
    fatal::die(&failure, cmdline.panic)
}
