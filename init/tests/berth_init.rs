//! Host tests of `berth init`, the init inside containers, run first
//! against Debian's tini as the reference (showing the cases themselves are
//! right) and then against berth, each as PID 1 of a new PID namespace and
//! as a subreaper (`-s`). The children are small `/bin/sh` scripts.
//!
//! Where berth deliberately differs from tini the case table says so per
//! implementation (see docs/berth-init.md); everything else must behave
//! the same under both.
//!
//! Every wait has a deadline; a run that overstays is killed with its whole
//! process tree, and every failure prints the child's stdout and stderr.

mod berth_init_harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use berth_init_harness::{
    children_of, processes, report, run_all, variants, Init, Mode, Run, Variant,
};

/// The two modes every behaviour is checked in.
const BOTH: &[Mode] = &[Mode::Pid1, Mode::Subreaper];
/// Generous for the slow path (a loaded 2-core CI machine); the happy path
/// never waits this long.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long a signal that must *not* arrive is given to show up anyway.
const QUIET: Duration = Duration::from_millis(300);

#[test]
fn exit_codes_pass_through() {
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        // Batches of concurrent runs keep 4 × 256 inits within seconds.
        let codes: Vec<i32> = (0..=255).collect();
        for batch in codes.chunks(32) {
            let mut runs = Vec::new();
            for &code in batch {
                let script = format!("exit {code}");
                runs.push((code, Run::start(v, &[], &["/bin/sh", "-c", &script])?));
            }
            for (code, mut run) in runs {
                let got = run.wait_exit(DEADLINE)?;
                if got != code {
                    return Err(run.failure(&format!("exit code {got}, want {code}")));
                }
            }
        }
        Ok(())
    });
    report("exit_codes_pass_through", &variants, failures);
}

#[test]
fn uncaught_signal_exits_128_plus_signal() {
    // (signal, exit code of the init)
    let table = [
        (libc::SIGTERM, 143),
        (libc::SIGUSR1, 138),
        (libc::SIGUSR2, 140),
        (libc::SIGHUP, 129),
        (libc::SIGINT, 130),
    ];
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        for (sig, code) in table {
            // `exec sleep`: the child is a plain program with default
            // dispositions (a signal that beats the exec kills sh the same).
            let mut run = Run::start(v, &[], &["/bin/sh", "-c", "echo ready; exec sleep 30"])?;
            run.expect_line("ready", DEADLINE)?;
            run.signal_init(v, sig)?;
            let got = run.wait_exit(DEADLINE)?;
            if got != code {
                return Err(run.failure(&format!("after signal {sig}: exit {got}, want {code}")));
            }
        }
        Ok(())
    });
    report("uncaught_signal_exits_128_plus_signal", &variants, failures);
}

/// What sending a signal to the init does to a child that traps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The child's trap runs.
    Reaches,
    /// The init ignores it; the child never sees it.
    Dropped,
    /// Not sent: tini leaves the synchronous signals unblocked, so one
    /// sent to it kills tini as a subreaper (and is dropped when tini is
    /// PID 1) — a documented difference, not a property worth asserting.
    NotSent,
}

/// Every catchable signal but SIGCHLD, with its fate under (tini, berth).
/// SIGTERM comes last: its trap also ends the child.
const SIGNALS: &[(i32, Fate, Fate)] = {
    use Fate::*;
    &[
        (libc::SIGHUP, Reaches, Reaches),
        (libc::SIGINT, Reaches, Reaches),
        (libc::SIGQUIT, Reaches, Reaches),
        (libc::SIGILL, NotSent, Reaches),
        (libc::SIGTRAP, NotSent, Reaches),
        (libc::SIGABRT, NotSent, Reaches),
        (libc::SIGBUS, NotSent, Reaches),
        (libc::SIGFPE, NotSent, Reaches),
        (libc::SIGUSR1, Reaches, Reaches),
        (libc::SIGSEGV, NotSent, Reaches),
        (libc::SIGUSR2, Reaches, Reaches),
        (libc::SIGPIPE, Reaches, Reaches),
        (libc::SIGALRM, Reaches, Reaches),
        (libc::SIGSTKFLT, Reaches, Reaches),
        (libc::SIGCONT, Reaches, Reaches),
        (libc::SIGTSTP, Reaches, Reaches),
        (libc::SIGTTIN, Dropped, Dropped),
        (libc::SIGTTOU, Dropped, Dropped),
        (libc::SIGURG, Reaches, Reaches),
        (libc::SIGXCPU, Reaches, Reaches),
        (libc::SIGXFSZ, Reaches, Reaches),
        (libc::SIGVTALRM, Reaches, Reaches),
        (libc::SIGPROF, Reaches, Reaches),
        (libc::SIGWINCH, Reaches, Reaches),
        (libc::SIGIO, Reaches, Reaches),
        (libc::SIGPWR, Reaches, Reaches),
        (libc::SIGSYS, NotSent, Reaches),
        // Real-time signals: SIGRTMIN (34 with glibc), one inside, SIGRTMAX.
        (34, Reaches, Reaches),
        (50, Reaches, Reaches),
        (64, Reaches, Reaches),
        (libc::SIGTERM, Reaches, Reaches),
    ]
};

#[test]
fn every_catchable_signal_reaches_a_trapping_child() {
    let mut script = String::new();
    for &(sig, _, _) in SIGNALS {
        script.push_str(&format!("trap 'echo trapped {sig}' {sig}\n"));
    }
    script
        .push_str("trap 'echo trapped 15; exit 0' 15\necho ready\nwhile :; do sleep 0.02; done\n");
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        let mut run = Run::start(v, &[], &["/bin/sh", "-c", &script])?;
        run.expect_line("ready", DEADLINE)?;
        for &(sig, tini, berth) in SIGNALS {
            let fate = if v.init == Init::Tini { tini } else { berth };
            let line = format!("trapped {sig}");
            match fate {
                Fate::NotSent => continue,
                Fate::Reaches => {
                    run.signal_init(v, sig)?;
                    run.expect_line(&line, DEADLINE)?;
                }
                Fate::Dropped => {
                    run.signal_init(v, sig)?;
                    run.expect_no_line(&line, QUIET)?;
                }
            }
        }
        let code = run.wait_exit(DEADLINE)?;
        if code != 0 {
            return Err(run.failure(&format!("exit {code}, want 0 from the SIGTERM trap")));
        }
        Ok(())
    });
    report(
        "every_catchable_signal_reaches_a_trapping_child",
        &variants,
        failures,
    );
}

#[test]
fn no_zombie_left_after_100_orphans() {
    // Each `( sleep 2 & )` subshell exits at once, orphaning its sleep,
    // which the kernel hands to the init (PID 1, or the nearest subreaper).
    // 2 s leaves a loaded machine time to fork all 100 before the first
    // one ends, so all can be counted as adopted.
    const ORPHANS: usize = 100;
    const LIFETIME: u64 = 2;
    let script = format!(
        "echo ready; read go
         i=0; while [ $i -lt {ORPHANS} ]; do (sleep {LIFETIME} &); i=$((i+1)); done
         echo spawned; read done; exit 0"
    );
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        let mut run = Run::start(v, &[], &["/bin/sh", "-c", &script])?;
        run.expect_line("ready", DEADLINE)?;
        let init = run.init_pid(v)?;
        let main: Vec<i32> = children_of(init).iter().map(|p| p.pid).collect();
        let [main] = main[..] else {
            return Err(run.failure(&format!("init has children {main:?}, want one")));
        };
        run.send_line("go")?;
        run.expect_line("spawned", DEADLINE)?;
        let others = |pid: i32| -> Vec<char> {
            children_of(pid)
                .iter()
                .filter(|p| p.pid != main)
                .map(|p| p.state)
                .collect()
        };
        // All orphans must have reached the init, or the check below
        // would pass without the init ever reaping anything.
        let adopted = others(init).len();
        if adopted != ORPHANS {
            return Err(run.failure(&format!("init adopted {adopted} orphans, want {ORPHANS}")));
        }
        // They exit after LIFETIME; the init must reap every one.
        let deadline = std::time::Instant::now() + Duration::from_secs(LIFETIME) + DEADLINE;
        loop {
            let left = others(init);
            if left.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let zombies = left.iter().filter(|&&s| s == 'Z').count();
                return Err(run.failure(&format!(
                    "{zombies} zombie(s) and {} live orphan(s) still children of the init",
                    left.len() - zombies
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        run.send_line("done")?;
        let code = run.wait_exit(DEADLINE)?;
        if code != 0 {
            return Err(run.failure(&format!("exit {code}, want 0")));
        }
        Ok(())
    });
    report("no_zombie_left_after_100_orphans", &variants, failures);
}

#[test]
fn group_flag_reaches_a_grandchild() {
    // The grandchild is a background job of the child's shell, so it stays
    // in the child's process group (no job control in `sh -c`).
    let script = "trap 'echo child got USR1' USR1
        trap 'kill $gc 2>/dev/null; exit 0' USR2
        sh -c 'trap \"echo grandchild got USR1\" USR1; echo grandchild ready
               while :; do sleep 0.02; done' &
        gc=$!
        echo child ready
        while :; do sleep 0.02; done";
    // (flags, does the grandchild get the signal)
    let table: [(&[&str], bool); 2] = [(&["-g"], true), (&[], false)];
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        for (flags, reaches) in table {
            let mut run = Run::start(v, flags, &["/bin/sh", "-c", script])?;
            run.expect_line("child ready", DEADLINE)?;
            run.expect_line("grandchild ready", DEADLINE)?;
            run.signal_init(v, libc::SIGUSR1)?;
            run.expect_line("child got USR1", DEADLINE)?;
            if reaches {
                run.expect_line("grandchild got USR1", DEADLINE)?;
            } else {
                run.expect_no_line("grandchild got USR1", QUIET)?;
            }
            run.signal_init(v, libc::SIGUSR2)?;
            let code = run.wait_exit(DEADLINE)?;
            if code != 0 {
                return Err(run.failure(&format!("flags {flags:?}: exit {code}, want 0")));
            }
        }
        Ok(())
    });
    report("group_flag_reaches_a_grandchild", &variants, failures);
}

#[test]
fn commands_that_cannot_run_exit_127_or_126() {
    let dir = std::env::temp_dir();
    let not_executable = dir.join(format!("berth-init-test-{}-noexec", std::process::id()));
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").expect("write test script");
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644))
        .expect("chmod test script");
    let not_executable = not_executable.to_string_lossy().into_owned();
    // (command, exit code)
    let table = [
        ("/nonexistent/berth-test-command", 127),
        ("berth-test-command-not-on-path", 127),
        (not_executable.as_str(), 126),
        ("/", 126),
    ];
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        for (command, code) in table {
            let mut run = Run::start(v, &[], &[command])?;
            let got = run.wait_exit(DEADLINE)?;
            let stderr = run.stderr(DEADLINE);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            if got != code {
                return Err(run.failure(&format!("exit {got}, want {code}")));
            }
            if lines.len() != 1 || !lines[0].contains(command) {
                return Err(run.failure("want one stderr line naming the command"));
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_file(&not_executable);
    report(
        "commands_that_cannot_run_exit_127_or_126",
        &variants,
        failures,
    );
}

#[test]
fn child_inherits_the_signal_state_the_init_started_with() {
    const PERL: &str = "/usr/bin/perl";
    if !Path::new(PERL).exists() {
        eprintln!("skipping: {PERL} (perl-base) not found to set up a dirty signal state");
        return;
    }
    // The wrapper blocks SIGHUP and SIGUSR1 and ignores SIGINT and SIGQUIT,
    // then execs the init, which inherits that state.
    let wrapper = [
        PERL,
        "-MPOSIX",
        "-e",
        "sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGHUP, SIGUSR1)) or die;
         $SIG{INT} = $SIG{QUIT} = 'IGNORE'; exec @ARGV or die",
    ];
    // Bit n-1 of /proc's SigBlk/SigIgn masks stands for signal n.
    const HUP_USR1: u64 = 1 << (libc::SIGHUP - 1) | 1 << (libc::SIGUSR1 - 1);
    const INT_QUIT: u64 = 1 << (libc::SIGINT - 1) | 1 << (libc::SIGQUIT - 1);
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        let command = ["/bin/grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];
        let mut run = Run::start_wrapped(v, &[], &wrapper, &command)?;
        let mask = |run: &mut Run, field: &str| -> Result<u64, String> {
            let hex = run.line_after(&format!("{field}:\t"), DEADLINE)?;
            u64::from_str_radix(&hex, 16).map_err(|e| run.failure(&format!("{field}: {e}")))
        };
        let blocked = mask(&mut run, "SigBlk")?;
        let ignored = mask(&mut run, "SigIgn")?;
        // Both pass their inherited state on, as a program started under
        // `nohup` or with signals blocked expects; what the init itself
        // changed (SIGTTIN, SIGTTOU) is back as it was.
        const TTIN_TTOU: u64 = 1 << (libc::SIGTTIN - 1) | 1 << (libc::SIGTTOU - 1);
        let ok = blocked & HUP_USR1 == HUP_USR1
            && ignored & INT_QUIT == INT_QUIT
            && ignored & TTIN_TTOU == 0;
        if !ok {
            return Err(run.failure(&format!(
                "SigBlk {blocked:#x}, SigIgn {ignored:#x}: not what {:?} should give",
                v.init
            )));
        }
        let code = run.wait_exit(DEADLINE)?;
        if code != 0 {
            return Err(run.failure(&format!("exit {code}, want 0")));
        }
        Ok(())
    });
    report(
        "child_inherits_the_signal_state_the_init_started_with",
        &variants,
        failures,
    );
}

#[test]
fn a_command_under_nohup_survives_sighup() {
    const NOHUP: &str = "/usr/bin/nohup";
    if !Path::new(NOHUP).exists() {
        eprintln!("skipping: {NOHUP} (coreutils) not found");
        return;
    }
    let variants = variants(BOTH);
    let failures = run_all(&variants, |v| {
        let script = "kill -HUP $$; echo survived";
        let mut run = Run::start_wrapped(v, &[], &[NOHUP], &["/bin/sh", "-c", script])?;
        run.expect_line("survived", DEADLINE)?;
        let code = run.wait_exit(DEADLINE)?;
        if code != 0 {
            return Err(run.failure(&format!("exit {code}, want 0")));
        }
        Ok(())
    });
    report("a_command_under_nohup_survives_sighup", &variants, failures);
}

#[test]
fn warns_when_neither_pid1_nor_subreaper() {
    let variants = variants(&[Mode::Plain]);
    let failures = run_all(&variants, |v: Variant| {
        let mut run = Run::start(v, &[], &["/bin/sh", "-c", "exit 3"])?;
        let code = run.wait_exit(DEADLINE)?;
        let stderr = run.stderr(DEADLINE);
        if code != 3 {
            return Err(run.failure(&format!("exit {code}, want 3")));
        }
        if !stderr.to_lowercase().contains("subreaper") {
            return Err(run.failure("no warning about not being a subreaper"));
        }
        Ok(())
    });
    report("warns_when_neither_pid1_nor_subreaper", &variants, failures);
}

/// The harness itself: `/proc` is readable and we appear in it.
#[test]
fn proc_scan_sees_this_process() {
    let me = std::process::id() as i32;
    assert!(processes().iter().any(|p| p.pid == me));
}
