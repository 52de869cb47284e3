//! Kernel settings of the bridge's links and of a container's network
//! namespace: which ones (pure, as a table) and writing them below
//! `/proc/sys`, whose `net` folder shows the network namespace of the
//! thread that opens the file (so a thread that entered a container's
//! namespace with setns(2) sets the container's).
//!
//! In a container: no IPv6 on `eth0` (the bridge carries IPv4 only, and
//! drops IPv6 from containers anyway) and no router advertisements
//! accepted, so nothing can give the container an address or a route
//! behind the node's back; `lo` keeps `::1`, which programs that resolve
//! `localhost` to it expect. And ICMP echo sockets (`socket(AF_INET,
//! SOCK_DGRAM, IPPROTO_ICMP)`, icmp(7)) for every group, so `ping` works
//! without `CAP_NET_RAW`; the range is read in the writer's user
//! namespace, PID 1's, so it covers the node ids a user-namespaced
//! container's groups map to as well.
//!
//! On the node: no IPv6 and no router advertisements on the bridge and on
//! the host end of every veth pair, so the node accepts none from a
//! container even if one got past the bridge's rules.
//!
//! A kernel without IPv6 (no `/proc/sys/net/ipv6`) has nothing to turn
//! off: the IPv6 settings are skipped there.

use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel shows its settings.
pub const PROC_SYS: &str = "/proc/sys";

/// `net.ipv4.ping_group_range`: every group (systemd's default for the
/// node, and Docker's for containers).
const PING_GROUP_RANGE: &str = "0 2147483647";

/// One setting: its path below `/proc/sys`, a component each (an
/// interface name may hold a dot), and the value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub path: Vec<String>,
    pub value: &'static str,
}

impl Setting {
    fn new(path: &[&str], value: &'static str) -> Setting {
        Setting {
            path: path.iter().map(|c| c.to_string()).collect(),
            value,
        }
    }

    /// sysctl(8)'s name: components joined by dots, a dot inside one
    /// written as `/`.
    pub fn key(&self) -> String {
        self.path
            .iter()
            .map(|c| c.replace('.', "/"))
            .collect::<Vec<_>>()
            .join(".")
    }

    fn is_ipv6(&self) -> bool {
        self.path.get(1).is_some_and(|c| c == "ipv6")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("set {key} to {value:?}: {source}")]
pub struct Error {
    key: String,
    value: &'static str,
    #[source]
    source: io::Error,
}

/// Inside a container's namespace, before `ifname` (its end of the veth
/// pair) comes up.
pub fn container(ifname: &str) -> Vec<Setting> {
    vec![
        Setting::new(&["net", "ipv4", "ping_group_range"], PING_GROUP_RANGE),
        Setting::new(&["net", "ipv6", "conf", "all", "accept_ra"], "0"),
        Setting::new(&["net", "ipv6", "conf", "default", "accept_ra"], "0"),
        Setting::new(&["net", "ipv6", "conf", "default", "disable_ipv6"], "1"),
        Setting::new(&["net", "ipv6", "conf", ifname, "accept_ra"], "0"),
        Setting::new(&["net", "ipv6", "conf", ifname, "disable_ipv6"], "1"),
    ]
}

/// On the node, for the bridge and each host end of a veth pair, before
/// the link comes up.
pub fn bridge_link(ifname: &str) -> Vec<Setting> {
    vec![
        Setting::new(&["net", "ipv6", "conf", ifname, "accept_ra"], "0"),
        Setting::new(&["net", "ipv6", "conf", ifname, "disable_ipv6"], "1"),
    ]
}

/// Writes `settings` in order below `root` ([`PROC_SYS`] outside tests),
/// stopping at the first failure.
pub fn write(root: &Path, settings: &[Setting]) -> Result<(), Error> {
    let ipv6 = root.join("net/ipv6").exists();
    for setting in settings.iter().filter(|s| ipv6 || !s.is_ipv6()) {
        let file: PathBuf = setting
            .path
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c));
        std::fs::write(&file, setting.value).map_err(|source| Error {
            key: setting.key(),
            value: setting.value,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_by_place() {
        let keys = |settings: Vec<Setting>| -> Vec<String> {
            settings
                .iter()
                .map(|s| format!("{} = {}", s.key(), s.value))
                .collect()
        };
        assert_eq!(
            keys(container("eth0")),
            [
                "net.ipv4.ping_group_range = 0 2147483647",
                "net.ipv6.conf.all.accept_ra = 0",
                "net.ipv6.conf.default.accept_ra = 0",
                "net.ipv6.conf.default.disable_ipv6 = 1",
                "net.ipv6.conf.eth0.accept_ra = 0",
                "net.ipv6.conf.eth0.disable_ipv6 = 1",
            ]
        );
        assert_eq!(
            keys(bridge_link("br.0")),
            [
                "net.ipv6.conf.br/0.accept_ra = 0",
                "net.ipv6.conf.br/0.disable_ipv6 = 1",
            ]
        );
    }

    fn tree(dirs: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("temp dir");
        for dir in dirs {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        root
    }

    #[test]
    fn writes_each_file_and_skips_ipv6_without_it() {
        let root = tree(&[
            "net/ipv4",
            "net/ipv6/conf/all",
            "net/ipv6/conf/default",
            "net/ipv6/conf/eth0",
        ]);
        write(root.path(), &container("eth0")).expect("write");
        let read = |f: &str| std::fs::read_to_string(root.path().join(f)).expect(f);
        assert_eq!(read("net/ipv4/ping_group_range"), "0 2147483647");
        assert_eq!(read("net/ipv6/conf/eth0/disable_ipv6"), "1");
        assert_eq!(read("net/ipv6/conf/default/accept_ra"), "0");

        let no_ipv6 = tree(&["net/ipv4"]);
        write(no_ipv6.path(), &container("eth0")).expect("IPv6 skipped");
        assert!(no_ipv6.path().join("net/ipv4/ping_group_range").exists());
        write(no_ipv6.path(), &bridge_link("berth0")).expect("nothing to do");
    }

    #[test]
    fn a_failure_names_the_setting() {
        let root = tree(&["net/ipv6/conf"]);
        let err = write(root.path(), &bridge_link("bv1")).expect_err("no bv1");
        let message = err.to_string();
        assert!(
            message
                .starts_with("set net.ipv6.conf.bv1.accept_ra to \"0\": No such file or directory"),
            "{message}"
        );
    }
}
