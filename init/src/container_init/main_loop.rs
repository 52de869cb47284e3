//! The one loop of `berth init`: reap, wait for a signal, forward it, and
//! again, until the main child has been reaped.
//!
//! Every pass first reaps all ended children (`waitpid(-1, WNOHANG)` until
//! none is left), so orphans never linger as zombies, and only then waits.
//! SIGCHLD is read like any other signal; it just ends the wait. When the
//! main child is among the reaped, berth returns its status at once, like
//! tini: as PID 1 its exit then kills the rest of the namespace; as a
//! subreaper the survivors move on to the next reaper up.
//!
//! The kernel sits behind [`Kernel`] so the loop is tested with a scripted
//! fake; [`super::kernel::Live`] is the real one.

use berth_supervisor::exit::ExitStatus;
use nix::errno::Errno;
use nix::unistd::Pid;

use super::error::InitError;
use super::signals::{self, Action};

/// The three things the loop asks of the kernel.
pub trait Kernel {
    /// Blocks until a signal for berth arrives and returns its number.
    fn next_signal(&mut self) -> Result<i32, InitError>;
    /// Sends `sig` to `pid`, or to its process group when `group` is set.
    fn send(&mut self, pid: Pid, sig: i32, group: bool) -> Result<(), Errno>;
    /// Reaps one ended child without blocking; `None` once no ended child
    /// is left (including when there are no children at all).
    fn reap_one(&mut self) -> Result<Option<(Pid, ExitStatus)>, InitError>;
}

/// Runs until `child` ends and returns the code to exit with: the child's
/// code, or 128 + the signal that killed it. `group` selects `-g`.
pub fn run(kernel: &mut impl Kernel, child: Pid, group: bool) -> Result<i32, InitError> {
    loop {
        if let Some(status) = reap_all(kernel, child)? {
            return Ok(status.code());
        }
        let sig = kernel.next_signal()?;
        if signals::action(sig) != Action::Forward {
            continue;
        }
        match kernel.send(child, sig, group) {
            // Already gone (or its group is): the next reap pass sees it.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => eprintln!("berth init: forwarding signal {sig} to {child}: {e}"),
        }
    }
}

/// Reaps every ended child; returns the main child's status if it was
/// among them.
fn reap_all(kernel: &mut impl Kernel, child: Pid) -> Result<Option<ExitStatus>, InitError> {
    let mut main = None;
    while let Some((pid, status)) = kernel.reap_one()? {
        if pid == child {
            main = Some(status);
        }
    }
    Ok(main)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    const CHILD: i32 = 100;
    const ORPHAN: i32 = 200;

    /// One wake-up of the loop: what is ready to reap at the start of the
    /// reap pass, and the signal the following wait returns.
    type Pass<'a> = (&'a [(i32, ExitStatus)], Option<i32>);

    /// Replays passes and records what the loop sends.
    struct Fake {
        reapable: VecDeque<Vec<(Pid, ExitStatus)>>,
        signals: VecDeque<i32>,
        sent: Vec<(i32, i32, bool)>,
        send_result: Result<(), Errno>,
    }

    impl Fake {
        fn new(passes: &[Pass<'_>], send_result: Result<(), Errno>) -> Fake {
            Fake {
                reapable: passes
                    .iter()
                    .map(|(r, _)| r.iter().map(|&(p, s)| (Pid::from_raw(p), s)).collect())
                    .collect(),
                signals: passes.iter().filter_map(|(_, s)| *s).collect(),
                sent: Vec::new(),
                send_result,
            }
        }
    }

    impl Kernel for Fake {
        fn next_signal(&mut self) -> Result<i32, InitError> {
            Ok(self
                .signals
                .pop_front()
                .expect("loop waited past the script"))
        }
        fn send(&mut self, pid: Pid, sig: i32, group: bool) -> Result<(), Errno> {
            self.sent.push((pid.as_raw(), sig, group));
            self.send_result
        }
        fn reap_one(&mut self) -> Result<Option<(Pid, ExitStatus)>, InitError> {
            let Some(pass) = self.reapable.front_mut() else {
                return Ok(None);
            };
            if pass.is_empty() {
                self.reapable.pop_front();
                return Ok(None);
            }
            Ok(Some(pass.remove(0)))
        }
    }

    fn code(c: i32) -> ExitStatus {
        ExitStatus::Code(c)
    }

    fn killed(signal: i32) -> ExitStatus {
        ExitStatus::Signal {
            signal,
            core_dumped: false,
        }
    }

    struct Case<'a> {
        name: &'static str,
        group: bool,
        passes: &'a [Pass<'a>],
        send_result: Result<(), Errno>,
        want_sent: &'static [(i32, i32, bool)],
        want_code: i32,
    }

    #[test]
    fn loop_table() {
        let cases = [
            Case {
                name: "child exits at once",
                group: false,
                passes: &[(&[(CHILD, code(7))], None)],
                send_result: Ok(()),
                want_sent: &[],
                want_code: 7,
            },
            Case {
                name: "SIGTERM forwarded, child dies of it",
                group: false,
                passes: &[
                    (&[], Some(libc::SIGTERM)),
                    (&[], Some(libc::SIGCHLD)),
                    (&[(CHILD, killed(libc::SIGTERM))], None),
                ],
                send_result: Ok(()),
                want_sent: &[(CHILD, libc::SIGTERM, false)],
                want_code: 143,
            },
            Case {
                name: "-g sends to the group",
                group: true,
                passes: &[
                    (&[], Some(libc::SIGUSR1)),
                    (&[], Some(40)),
                    (&[(CHILD, code(0))], None),
                ],
                send_result: Ok(()),
                want_sent: &[(CHILD, libc::SIGUSR1, true), (CHILD, 40, true)],
                want_code: 0,
            },
            Case {
                name: "SIGCHLD and the tty stops are not forwarded",
                group: false,
                passes: &[
                    (&[], Some(libc::SIGCHLD)),
                    (&[], Some(libc::SIGTTIN)),
                    (&[], Some(libc::SIGTTOU)),
                    (&[], Some(libc::SIGTSTP)),
                    (&[(CHILD, code(1))], None),
                ],
                send_result: Ok(()),
                want_sent: &[(CHILD, libc::SIGTSTP, false)],
                want_code: 1,
            },
            Case {
                name: "orphans reaped, their status ignored",
                group: false,
                passes: &[
                    (&[(ORPHAN, code(9)), (ORPHAN + 1, killed(9))], Some(17)),
                    (
                        &[
                            (ORPHAN + 2, code(3)),
                            (CHILD, code(4)),
                            (ORPHAN + 3, code(5)),
                        ],
                        None,
                    ),
                ],
                send_result: Ok(()),
                want_sent: &[],
                want_code: 4,
            },
            Case {
                name: "a child already gone is not an error",
                group: false,
                passes: &[(&[], Some(libc::SIGHUP)), (&[(CHILD, code(0))], None)],
                send_result: Err(Errno::ESRCH),
                want_sent: &[(CHILD, libc::SIGHUP, false)],
                want_code: 0,
            },
            Case {
                name: "other send errors do not stop the loop",
                group: true,
                passes: &[(&[], Some(libc::SIGINT)), (&[(CHILD, killed(2))], None)],
                send_result: Err(Errno::EPERM),
                want_sent: &[(CHILD, libc::SIGINT, true)],
                want_code: 130,
            },
        ];
        for case in cases {
            let mut fake = Fake::new(case.passes, case.send_result);
            let got = run(&mut fake, Pid::from_raw(CHILD), case.group);
            assert_eq!(got.ok(), Some(case.want_code), "{}: exit code", case.name);
            assert_eq!(fake.sent, case.want_sent, "{}: sent", case.name);
            assert!(fake.signals.is_empty(), "{}: signals left", case.name);
            assert!(
                fake.reapable.iter().all(Vec::is_empty),
                "{}: zombies left",
                case.name
            );
        }
    }
}
