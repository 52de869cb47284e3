//! [`RecordingOs`]: an [`Os`] for unit tests. It answers from in-memory
//! state set up by the test (which paths exist, with which filesystem magic
//! and device; which files hold what; which calls fail) and records every
//! call as one readable line, e.g.
//! `mount tmpfs on /run (tmpfs) [nosuid,nodev] mode=0755` or
//! `write /sys/fs/cgroup/berth/init/cgroup.procs = 1`.
//!
//! Calls that change state (mount, mkdir, write, …) are listed by
//! [`RecordingOs::effects`]; [`RecordingOs::calls`] also lists the queries
//! (exists, statfs, stat, read, getpid).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::Os;

/// An existing path: its statfs magic and stat device.
#[derive(Debug, Clone, Copy)]
struct Node {
    magic: i64,
    dev: u64,
}

/// The recording fake; see the module docs.
#[derive(Debug)]
pub struct RecordingOs {
    paths: RefCell<BTreeMap<PathBuf, Node>>,
    files: BTreeMap<PathBuf, String>,
    /// A call fails with the errno when its record starts with the prefix.
    failures: Vec<(String, Errno)>,
    pid: u32,
    /// (changes state, record) in call order.
    log: RefCell<Vec<(bool, String)>>,
}

impl Default for RecordingOs {
    fn default() -> Self {
        Self {
            paths: RefCell::default(),
            files: BTreeMap::new(),
            failures: Vec::new(),
            pid: 1,
            log: RefCell::default(),
        }
    }
}

impl RecordingOs {
    /// No paths, no files, no failures, PID 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// `path` exists, on a filesystem with statfs `magic` and device `dev`.
    pub fn path(self, path: &str, magic: i64, dev: u64) -> Self {
        self.paths
            .borrow_mut()
            .insert(PathBuf::from(path), Node { magic, dev });
        self
    }

    /// `path` exists and reads as `contents`.
    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.insert(PathBuf::from(path), contents.to_owned());
        self
    }

    /// Every call whose record starts with `prefix` fails with `errno`
    /// (queries answer "absent" instead).
    pub fn fail(mut self, prefix: &str, errno: Errno) -> Self {
        self.failures.push((prefix.to_owned(), errno));
        self
    }

    /// The PID `getpid` answers.
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = pid;
        self
    }

    /// Every call so far, queries included.
    pub fn calls(&self) -> Vec<String> {
        self.log.borrow().iter().map(|(_, c)| c.clone()).collect()
    }

    /// The calls so far that change state, failed ones included.
    pub fn effects(&self) -> Vec<String> {
        self.log
            .borrow()
            .iter()
            .filter(|(effect, _)| *effect)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Records `call` and answers whether it is configured to fail.
    fn record(&self, effect: bool, call: String) -> Result<(), Errno> {
        let failure = self
            .failures
            .iter()
            .find(|(prefix, _)| call.starts_with(prefix.as_str()))
            .map(|(_, errno)| *errno);
        self.log.borrow_mut().push((effect, call));
        failure.map_or(Ok(()), Err)
    }

    fn node(&self, path: &Path) -> Option<Node> {
        self.paths.borrow().get(path).copied()
    }

    fn add_dir(&self, path: &Path) {
        let parent = path.parent().and_then(|p| self.node(p));
        let node = parent.unwrap_or(Node { magic: 0, dev: 0 });
        self.paths.borrow_mut().insert(path.to_path_buf(), node);
    }
}

/// `nosuid,nodev` for `MS_NOSUID | MS_NODEV`, as mount(8) spells them.
fn flag_names(flags: MsFlags) -> String {
    flags
        .iter_names()
        .map(|(name, _)| name.trim_start_matches("MS_").to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

impl Os for RecordingOs {
    fn mount(
        &self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        let mut call = format!("mount {source} on {target} ({fstype})");
        if !flags.is_empty() {
            call += &format!(" [{}]", flag_names(flags));
        }
        if let Some(data) = data {
            call += &format!(" {data}");
        }
        self.record(true, call)
    }

    fn umount_detach(&self, target: &str) -> nix::Result<()> {
        self.record(true, format!("umount {target}"))
    }

    fn chown(&self, path: &Path, id: u32) -> io::Result<()> {
        Ok(self.record(true, format!("chown {} {id}", path.display()))?)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        self.record(true, format!("mkdir {} {mode:04o}", path.display()))?;
        if self.exists(path) {
            return Err(Errno::EEXIST.into());
        }
        self.add_dir(path);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.record(true, format!("mkdir -p {}", path.display()))?;
        for dir in path.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if self.node(dir).is_none() {
                self.add_dir(dir);
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.record(false, format!("exists {}", path.display()))
            .is_ok()
            && (self.node(path).is_some() || self.files.contains_key(path))
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let data = String::from_utf8_lossy(data);
        self.record(
            true,
            format!("write {} = {}", path.display(), data.escape_debug()),
        )?;
        Ok(())
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        self.record(false, format!("read {}", path.display()))?;
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| Errno::ENOENT.into())
    }

    fn fs_magic(&self, path: &Path) -> Option<i64> {
        self.record(false, format!("statfs {}", path.display()))
            .ok()?;
        self.node(path).map(|n| n.magic)
    }

    fn device(&self, path: &Path) -> Option<u64> {
        self.record(false, format!("stat {}", path.display()))
            .ok()?;
        self.node(path).map(|n| n.dev)
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        self.record(true, format!("sethostname {name}"))
    }

    fn interface_up(&self, name: &str) -> io::Result<()> {
        Ok(self.record(true, format!("interface up {name}"))?)
    }

    fn getpid(&self) -> u32 {
        let _ = self.record(false, "getpid".to_owned());
        self.pid
    }

    fn set_dumpable(&self, dumpable: bool) -> nix::Result<()> {
        self.record(true, format!("set dumpable {dumpable}"))
    }
}
