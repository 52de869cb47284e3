//! Launches OCI bundles in-process through youki's `libcontainer`: no runc,
//! no shim, no daemon. The container's init process becomes a direct child
//! of the caller, which reaps it from its own loop and then calls
//! [`Runtime::remove`].
//!
//! libcontainer's `build()` forks an intermediate process and waits for it
//! itself, so the caller must not reap (`waitpid(-1)`) while a launch runs.
//! It also writes `/proc/self/oom_score_adj` and clears the dumpable flag of
//! the calling process; the caller (PID 1) restores its own values after
//! each launch.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;

/// libcontainer's handle of a created container.
pub type Handle = Container;
use libcontainer::capabilities;
use libcontainer::error::LibcontainerError;
use libcontainer::oci_spec::runtime::{
    Capabilities, LinuxCapabilities, LinuxNamespaceType, LinuxSeccomp, Process, Spec,
};
use libcontainer::oci_spec::OciSpecError;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::get_executor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::unistd::{pipe2, Gid, Pid, Uid};

/// A launch or removal step failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("create output pipes for {0}")]
    Pipe(String, #[source] nix::Error),
    #[error("open /dev/null for {0}")]
    DevNull(String, #[source] std::io::Error),
    #[error("prepare state directory {0}")]
    StateDir(PathBuf, #[source] std::io::Error),
    #[error("create container {0}")]
    Create(String, #[source] LibcontainerError),
    #[error("start container {0}")]
    Start(String, #[source] LibcontainerError),
    #[error("prepare container {0}")]
    Prepare(String, #[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("container {0} has no pid after start")]
    NoPid(String),
    #[error("exec in container {0}")]
    Exec(String, #[source] LibcontainerError),
    #[error("exec in container {0}: read its spec {1}")]
    ExecSpec(String, PathBuf, #[source] OciSpecError),
    #[error("exec in container {0}: write the process description {1}")]
    ExecProcess(String, PathBuf, #[source] std::io::Error),
    #[error("exec in container {0}: open its user namespace {1}")]
    ExecUserNamespace(String, PathBuf, #[source] std::io::Error),
    #[error("delete container {0}")]
    Delete(String, #[source] LibcontainerError),
}

/// A running container: its libcontainer handle, its init pid and the read
/// ends of its stdout and stderr pipes.
#[derive(Debug)]
pub struct Launched {
    pub container: Container,
    pub pid: Pid,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A process started in a running container.
#[derive(Debug)]
pub struct Exec {
    pub pid: Pid,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// libcontainer with berth's settings.
#[derive(Debug, Clone)]
pub struct Runtime {
    state_dir: PathBuf,
}

impl Runtime {
    /// `state_dir` holds libcontainer's per-container state (on tmpfs).
    pub fn new(state_dir: impl Into<PathBuf>) -> Runtime {
        Runtime {
            state_dir: state_dir.into(),
        }
    }

    /// Creates and starts the container `id` from `bundle`, its stdin on
    /// `/dev/null` and its stdout/stderr on fresh non-blocking pipes.
    /// `before_start` runs between creation and start, with the pid of the
    /// container's (still waiting) process: the place to prepare its
    /// namespaces from outside. If it fails, the container is deleted
    /// before its process ran and the launch fails with its reason as the
    /// source of [`RuntimeError::Prepare`].
    pub fn launch<E>(
        &self,
        id: &str,
        bundle: &Path,
        before_start: impl FnOnce(Pid) -> Result<(), E>,
    ) -> Result<Launched, RuntimeError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| RuntimeError::StateDir(self.state_dir.clone(), e))?;
        self.clear_stale(id)?;

        let Stdio {
            null,
            out_r,
            out_w,
            err_r,
            err_w,
        } = Stdio::new(id)?;

        let mut container = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(&self.state_dir)
            .map_err(|e| RuntimeError::Create(id.into(), e))?
            .with_stdin(OwnedFd::from(null))
            .with_stdout(out_w)
            .with_stderr(err_w)
            // libcontainer loads the spec's filter for the container's own
            // process itself.
            .with_executor(BerthExecutor {
                seccomp: None,
                userns: None,
            })
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| RuntimeError::Create(id.into(), e))?;
        let pid = container
            .pid()
            .ok_or_else(|| RuntimeError::NoPid(id.into()))?;
        if let Err(why) = before_start(pid) {
            // The process never ran; delete(force) kills it, and the
            // caller's reaper collects it.
            let _ = container.delete(true);
            return Err(RuntimeError::Prepare(id.into(), why.into()));
        }
        container
            .start()
            .map_err(|e| RuntimeError::Start(id.into(), e))?;
        Ok(Launched {
            container,
            pid,
            stdout: out_r,
            stderr: err_r,
        })
    }

    /// Runs `argv` in the namespaces and cgroup of the running container
    /// `id` (libcontainer's tenant process, as `runc exec` does), stdin on
    /// `/dev/null`, stdout and stderr on fresh non-blocking pipes. The
    /// process becomes a child of the caller, which reaps it.
    ///
    /// The process gets everything the container's own process has: its
    /// user and groups, capabilities, `no_new_privs`, rlimits, environment
    /// and working directory (the spec's `process` with `argv` as its
    /// arguments, handed over as a process description), and its seccomp
    /// filter. libcontainer's tenant builder keeps only namespaces, cgroup,
    /// personality and time offsets of the spec's `linux` section, and of
    /// the namespaces all but the user namespace, so [`BerthExecutor`]
    /// enters that one and loads the filter right before the `execve`.
    pub fn exec(&self, id: &str, argv: &[String]) -> Result<Exec, RuntimeError> {
        let (spec, pid) = self.container_spec(id)?;
        let userns = match (has_user_namespace(&spec), pid) {
            (true, Some(pid)) => {
                let path = PathBuf::from(format!("/proc/{pid}/ns/user"));
                let ns = File::open(&path)
                    .map_err(|e| RuntimeError::ExecUserNamespace(id.into(), path, e))?;
                Some(Arc::new(OwnedFd::from(ns)))
            }
            // libcontainer refuses a container without a pid itself.
            _ => None,
        };
        let process = exec_process(&spec, argv);
        let process_path = self.state_dir.join(format!("{id}.exec.json"));
        write_process(&process_path, &process)
            .map_err(|e| RuntimeError::ExecProcess(id.into(), process_path.clone(), e))?;
        let executor = BerthExecutor {
            seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
            userns,
        };
        let Stdio {
            null,
            out_r,
            out_w,
            err_r,
            err_w,
        } = Stdio::new(id)?;
        let built = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(&self.state_dir)
            .map_err(|e| RuntimeError::Exec(id.into(), e))
            .map(|b| {
                b.with_stdin(OwnedFd::from(null))
                    .with_stdout(out_w)
                    .with_stderr(err_w)
                    .with_executor(executor)
                    .as_tenant()
                    .with_process(Some(&process_path))
                    .with_detach(true)
                    .build()
                    .map_err(|e| RuntimeError::Exec(id.into(), e))
            });
        let _ = std::fs::remove_file(&process_path);
        let pid = built??;
        Ok(Exec {
            pid,
            stdout: out_r,
            stderr: err_r,
        })
    }

    /// The runtime spec the running container `id` was created from, and
    /// the pid of its process.
    fn container_spec(&self, id: &str) -> Result<(Spec, Option<Pid>), RuntimeError> {
        let container = Container::load(self.state_dir.join(id))
            .map_err(|e| RuntimeError::Exec(id.into(), e))?;
        let path = container.bundle().join("config.json");
        let spec = Spec::load(&path).map_err(|e| RuntimeError::ExecSpec(id.into(), path, e))?;
        Ok((spec, container.pid()))
    }

    /// Removes a container whose process has been reaped: its state
    /// directory and its cgroup.
    pub fn remove(&self, id: &str, container: &mut Container) -> Result<(), RuntimeError> {
        container
            .delete(true)
            .map_err(|e| RuntimeError::Delete(id.into(), e))
    }

    /// A state directory left by an earlier run of the same container (for
    /// example one whose removal failed) would make `build()` refuse with
    /// "already exists": force-delete it first.
    fn clear_stale(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = self.state_dir.join(id);
        if !dir.exists() {
            return Ok(());
        }
        if let Ok(mut old) = Container::load(dir.clone()) {
            if old.delete(true).is_ok() {
                return Ok(());
            }
        }
        std::fs::remove_dir_all(&dir).map_err(|e| RuntimeError::StateDir(dir, e))
    }
}

/// The process of `berth exec` or a health probe: the container's own
/// process (user, capabilities, `no_new_privs`, rlimits, env, cwd, oom
/// score) with `argv` as its arguments and no terminal.
pub fn exec_process(spec: &Spec, argv: &[String]) -> Process {
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(argv.to_vec()));
    process.set_terminal(Some(false));
    process.set_console_size(None);
    process
}

fn write_process(path: &Path, process: &Process) -> std::io::Result<()> {
    let text = serde_json::to_vec(process).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// Runs the last step of every process berth starts in a container, in
/// the forked process: loads `seccomp` (for a process entering a running
/// container: libcontainer's tenant builder drops the spec's filter) after
/// capabilities and `no_new_privs` were set, as for the container's own
/// process, then executes as libcontainer's default executor does. A
/// failure is also written to the process's stderr, which is a pipe to
/// PID 1: libcontainer only logs it through `tracing`, which berth does not
/// collect, so the container's log would otherwise show nothing but an
/// exit code (`Argument list too long` was exit 255 and silence).
#[derive(Debug, Clone)]
pub struct BerthExecutor {
    pub seccomp: Option<LinuxSeccomp>,
    /// The user namespace of the container a process enters, when it has
    /// one: libcontainer's tenant builder joins the container's other
    /// namespaces but not this one, and the process would run as the
    /// node's root with its capabilities counting on the node.
    pub userns: Option<Arc<OwnedFd>>,
}

impl Executor for BerthExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(ns) = &self.userns {
            if let Err(e) = enter_user_namespace(ns, spec) {
                eprintln!("berth: cannot enter the container's user namespace: {e}");
                return Err(ExecutorError::Other(format!(
                    "enter the container's user namespace: {e}"
                )));
            }
        }
        if let Some(seccomp) = &self.seccomp {
            // A filter that fails to load must stop the exec: running the
            // command unfiltered is the escape this executor closes.
            if let Err(e) = libcontainer::seccomp::initialize_seccomp(seccomp) {
                eprintln!("berth: cannot load the seccomp filter: {e}");
                return Err(ExecutorError::Other(format!(
                    "load the seccomp filter: {e}"
                )));
            }
        }
        get_executor().exec(spec).inspect_err(|e| {
            eprintln!(
                "berth: cannot execute {}: {}",
                program(spec),
                crate::fatal::chain(e)
            );
        })
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        get_executor().validate(spec).inspect_err(|e| {
            eprintln!("berth: cannot execute {}: {e}", program(spec));
        })
    }
}

/// Whether the container's spec gives it a user namespace of its own.
fn has_user_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|ns| ns.typ() == LinuxNamespaceType::User))
}

/// Moves the calling process (libcontainer's tenant process, in the
/// container's other namespaces already, about to execute) into the
/// container's user namespace `ns`, then gives it the container's ids and
/// capabilities again, in the order libcontainer uses for the container's
/// own process. Joining a user namespace grants every capability in it,
/// bounding set included, and leaves the ids as they were (the node's
/// root, which means nothing there): both are set anew from the spec.
fn enter_user_namespace(ns: &OwnedFd, spec: &Spec) -> Result<(), String> {
    let process = spec.process().as_ref().ok_or("the spec has no process")?;
    setns(ns, CloneFlags::CLONE_NEWUSER).map_err(|e| format!("setns: {e}"))?;
    let syscall = SyscallType::default().create_syscall();
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // Always: the groups held so far are the node's.
    syscall
        .set_groups(&groups)
        .map_err(|e| format!("set supplementary groups {groups:?}: {e}"))?;
    syscall
        .set_id(Uid::from_raw(user.uid()), Gid::from_raw(user.gid()))
        .map_err(|e| format!("set uid {} and gid {}: {e}", user.uid(), user.gid()))?;
    let none = LinuxCapabilities::default()
        .set_bounding(Some(Capabilities::new()))
        .set_effective(Some(Capabilities::new()))
        .set_permitted(Some(Capabilities::new()))
        .set_inheritable(Some(Capabilities::new()))
        .set_ambient(Some(Capabilities::new()))
        .clone();
    let caps = process.capabilities().as_ref().unwrap_or(&none);
    capabilities::reset_effective(syscall.as_ref())
        .and_then(|()| capabilities::drop_privileges(caps, syscall.as_ref()))
        .map_err(|e| format!("set capabilities: {e}"))
}

/// The program a spec runs, for messages.
fn program(spec: &Spec) -> String {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default()
}

/// A process's standard streams: stdin on `/dev/null`, stdout and stderr
/// on pipes. The read ends stay with PID 1 and never block its loop; the
/// write ends go to the process and are closed here once it holds them.
struct Stdio {
    null: File,
    out_r: OwnedFd,
    out_w: OwnedFd,
    err_r: OwnedFd,
    err_w: OwnedFd,
}

impl Stdio {
    fn new(id: &str) -> Result<Stdio, RuntimeError> {
        let pipe = || {
            pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .map_err(|e| RuntimeError::Pipe(id.into(), e))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        clear_nonblock(&out_w);
        clear_nonblock(&err_w);
        let null = OpenOptions::new()
            .read(true)
            .open("/dev/null")
            .map_err(|e| RuntimeError::DevNull(id.into(), e))?;
        Ok(Stdio {
            null,
            out_r,
            out_w,
            err_r,
            err_w,
        })
    }
}

/// The container's ends of its pipes must block: programs do not expect
/// EAGAIN on stdout.
fn clear_nonblock(fd: &OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg};
    if let Ok(flags) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
        // Failure leaves the pipe non-blocking; the container then sees
        // EAGAIN when PID 1 falls behind, which is no worse than a full pipe.
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags));
    }
}
