//! The node's networking as the main loop sees it: host interfaces and
//! `network-online`, container attachments, and the name files
//! (`/etc/resolv.conf`, `/etc/hosts`) of the node and of every container,
//! kept in step with both.
//!
//! The node's `/etc/hosts` lists localhost, the node's own name and every
//! running bridge container, so host containers (which see the node's
//! files) reach workloads by name too. A bridge container's lists the same
//! neighbours and itself; a `network = "none"` container's only itself.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Duration;

use berth_config::layout;
use berth_config::network::{Network, NetworkMode};
use berth_config::{Container, Kind};

use super::bridge::BridgeNet;
use super::files::{self, container_servers, write_in_place};
use super::host::{Changed, HostNet};
use crate::chain;

/// The address the node's own name resolves to (Debian's convention).
const OWN_NAME_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);

/// Everything network the main loop drives.
#[derive(Debug)]
pub struct Net {
    host: Option<HostNet>,
    bridge: BridgeNet,
    /// Containers with files of their own, by name.
    containers: BTreeMap<String, NetworkMode>,
    search: Vec<String>,
    /// `system.hostname`; when unset, a DHCP lease may name the node.
    manifest_hostname: Option<String>,
}

impl Net {
    /// Configures the node's interfaces (static ones at once, DHCP in the
    /// background) and writes the first name files.
    pub fn start(
        network: &Network,
        hostname: Option<String>,
        containers: &[Container],
        now: Duration,
    ) -> Net {
        let host = match HostNet::start(network, hostname.clone(), now) {
            Ok(h) => Some(h),
            Err(e) => {
                log::error!("network: {e}; the node stays offline");
                None
            }
        };
        let containers = containers
            .iter()
            .filter(|c| c.kind == Kind::Workload && c.network.own_namespace())
            .map(|c| (c.name.clone(), c.network))
            .collect();
        let net = Net {
            host,
            bridge: BridgeNet::new(network.bridge.clone()),
            containers,
            search: network.search.clone(),
            manifest_hostname: hostname,
        };
        net.refresh_files();
        net
    }

    /// Whether every interface of the node is configured.
    pub fn online(&self) -> bool {
        self.host.as_ref().is_some_and(HostNet::online)
    }

    pub fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.host
            .as_ref()
            .map(HostNet::poll_fds)
            .unwrap_or_default()
    }

    pub fn deadline(&self) -> Option<Duration> {
        self.host.as_ref().and_then(HostNet::deadline)
    }

    /// Handles readable descriptors (`ready[k]` for the k-th of
    /// [`Net::poll_fds`]); true when the node just became online.
    pub fn on_ready(&mut self, ready: &[bool], now: Duration) -> bool {
        let changed = match self.host.as_mut() {
            Some(h) => h.on_ready(ready, now),
            None => return false,
        };
        self.follow(changed)
    }

    /// Timers; true when the node just became online.
    pub fn tick(&mut self, now: Duration) -> bool {
        let changed = match self.host.as_mut() {
            Some(h) => h.tick(now),
            None => return false,
        };
        self.follow(changed)
    }

    fn follow(&mut self, changed: Changed) -> bool {
        if let (None, Some(name)) = (&self.manifest_hostname, &changed.hostname) {
            match nix::unistd::sethostname(name) {
                Ok(()) => log::info!("network: host name {name} from DHCP"),
                Err(e) => log::warn!("network: set host name {name} from DHCP: {e}"),
            }
        }
        if changed.dns || changed.hostname.is_some() {
            self.refresh_files();
        }
        changed.online
    }

    /// Puts a bridge container whose process is `pid` on the bridge; a
    /// no-op for other containers. Runs after libcontainer created the
    /// container and before its process starts.
    pub fn attach(&mut self, c: &Container, pid: i32) -> Result<(), String> {
        if c.kind != Kind::Workload || c.network != NetworkMode::Bridge {
            return Ok(());
        }
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("open the network namespace of pid {pid}: {e}"))?;
        self.bridge
            .attach(&c.name, &ns, &c.ports)
            .map_err(|e| chain(&e))?;
        self.refresh_files();
        Ok(())
    }

    /// After container `name` stopped: gives back its address and ports.
    pub fn detach(&mut self, name: &str) {
        if self.bridge.address_of(name).is_some() {
            self.bridge.detach(name);
            self.refresh_files();
        }
    }

    /// Rewrites every name file whose content changed.
    fn refresh_files(&self) {
        let servers = self.host.as_ref().map(HostNet::dns).unwrap_or_default();
        let neighbours = self.bridge.neighbours();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty() && h != "(none)");
        let own = hostname.as_deref().map(|h| (h, OWN_NAME_ADDRESS));
        write(
            Path::new("/etc/resolv.conf"),
            &files::resolv_conf(&servers, &self.search),
        );
        write(Path::new("/etc/hosts"), &files::hosts(own, &neighbours));
        let inside = container_servers(&servers);
        for (name, mode) in &self.containers {
            let path = |f: &str| layout::container_net_file(name, f);
            let (hosts, resolv) = match mode {
                NetworkMode::Bridge => {
                    let own = self.bridge.address_of(name).map(|a| (name.as_str(), a));
                    (
                        files::hosts(own, &neighbours),
                        files::resolv_conf(&inside, &self.search),
                    )
                }
                _ => (
                    files::hosts(Some((name.as_str(), OWN_NAME_ADDRESS)), &[]),
                    files::resolv_conf(&[], &[]),
                ),
            };
            write(Path::new(&path("hosts")), &hosts);
            write(Path::new(&path("resolv.conf")), &resolv);
        }
    }
}

fn write(path: &Path, content: &str) {
    if let Err(e) = write_in_place(path, content) {
        log::error!("network: write {}: {e}", path.display());
    }
}
