//! The node's own interfaces: find each declared link (by name or MAC),
//! set its MTU and bring it up, then configure it statically or run a
//! DHCP client on it; track when every interface has its address (the
//! `network-online` target) and say on the console when that takes longer
//! than the manifest allows.
//!
//! Nothing here blocks: DHCP sessions and the link monitor are sockets the
//! main loop polls, and a link that is missing at boot is looked for again
//! whenever the monitor reports a change. With no `[network.interface.*]`
//! table at all, every Ethernet-like link present at boot (not loopback)
//! runs DHCP, so a node comes up on an ordinary network without a network
//! section.

use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use berth_config::network::{format_mac, Interface, LinkSelect, Network};

use super::dhcp::{self, Lease, Session};
use super::rtnl::{Link, Monitor, Rtnl};

/// Where one interface stands.
#[derive(Debug)]
enum Status {
    /// No link matches its selector yet.
    NoLink,
    /// Waiting for a DHCP lease.
    Leasing(Box<Session>),
    /// DHCP lease bound: the session keeps running for renewals.
    Leased(Box<Session>, Lease),
    /// Static configuration applied.
    Static,
    /// Setting the link up failed; the reason was logged.
    Failed(String),
}

#[derive(Debug)]
struct Iface {
    config: Interface,
    /// The link's current name and index once found.
    link: Option<Link>,
    status: Status,
}

impl Iface {
    fn configured(&self) -> bool {
        matches!(self.status, Status::Leased(..) | Status::Static)
    }

    fn session(&mut self) -> Option<&mut Session> {
        match &mut self.status {
            Status::Leasing(s) | Status::Leased(s, _) => Some(s),
            _ => None,
        }
    }

    fn label(&self) -> &str {
        self.link
            .as_ref()
            .map_or(self.config.label.as_str(), |l| l.name.as_str())
    }

    /// Why it is not configured yet, for the late-network console line.
    fn waiting_for(&self) -> String {
        match &self.status {
            Status::NoLink => format!("no link {}", self.config.select),
            Status::Leasing(_) => "no DHCP lease yet".to_owned(),
            Status::Failed(why) => why.clone(),
            Status::Leased(..) | Status::Static => "configured".to_owned(),
        }
    }
}

/// What changed that the node's files (resolv.conf, the hostname) must
/// follow.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Name servers changed.
    pub dns: bool,
    /// A lease brought a host name (applied only if the manifest sets none).
    pub hostname: Option<String>,
    /// The node just became online.
    pub online: bool,
}

/// Every declared interface of the node.
#[derive(Debug)]
pub struct HostNet {
    rtnl: Rtnl,
    monitor: Option<Monitor>,
    ifaces: Vec<Iface>,
    /// `network.dns`, listed before any interface's servers.
    global_dns: Vec<Ipv4Addr>,
    /// Sent to DHCP servers as our host name (option 12).
    hostname: Option<String>,
    started: Duration,
    timeout: Duration,
    online_at: Option<Duration>,
    late_reported: bool,
}

impl HostNet {
    /// Opens rtnetlink, finds the links, applies static configuration and
    /// starts the DHCP clients. Problems with one interface are logged and
    /// leave it waiting; only failing to open rtnetlink is an error.
    pub fn start(
        network: &Network,
        hostname: Option<String>,
        now: Duration,
    ) -> Result<HostNet, super::rtnl::Error> {
        let rtnl = Rtnl::open()?;
        let monitor = match Monitor::open() {
            Ok(m) => Some(m),
            Err(e) => {
                log::warn!("network: link monitor unavailable: {e}");
                None
            }
        };
        let configs = if network.interfaces.is_empty() {
            default_interfaces(&rtnl)
        } else {
            network.interfaces.clone()
        };
        let mut host = HostNet {
            rtnl,
            monitor,
            ifaces: configs
                .into_iter()
                .map(|config| Iface {
                    config,
                    link: None,
                    status: Status::NoLink,
                })
                .collect(),
            global_dns: network.dns.clone(),
            hostname,
            started: now,
            timeout: network.online_timeout,
            online_at: None,
            late_reported: false,
        };
        if host.ifaces.is_empty() {
            log::info!("network: no interfaces to configure");
        }
        host.find_links(now);
        host.check_online(now);
        Ok(host)
    }

    /// Whether every interface has its address.
    pub fn online(&self) -> bool {
        self.online_at.is_some()
    }

    /// Name servers in the order resolv.conf lists them.
    pub fn dns(&self) -> Vec<Ipv4Addr> {
        let mut out = self.global_dns.clone();
        for i in &self.ifaces {
            match &i.status {
                Status::Leased(_, lease) => out.extend(&lease.dns),
                Status::Static => out.extend(&i.config.dns),
                _ => {}
            }
        }
        out
    }

    /// Descriptors to poll: the monitor, then one per DHCP session.
    pub fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds: Vec<BorrowedFd<'_>> = self.monitor.iter().map(Monitor::fd).collect();
        for i in &self.ifaces {
            if let Status::Leasing(s) | Status::Leased(s, _) = &i.status {
                fds.push(s.fd());
            }
        }
        fds
    }

    /// The next time [`HostNet::tick`] must run.
    pub fn deadline(&self) -> Option<Duration> {
        let late =
            (self.online_at.is_none() && !self.late_reported).then(|| self.started + self.timeout);
        self.ifaces
            .iter()
            .filter_map(|i| match &i.status {
                Status::Leasing(s) | Status::Leased(s, _) => s.deadline(),
                _ => None,
            })
            .chain(late)
            .min()
    }

    /// Handles readable descriptors, `ready[k]` for the k-th of
    /// [`HostNet::poll_fds`].
    pub fn on_ready(&mut self, ready: &[bool], now: Duration) -> Changed {
        let mut changed = Changed::default();
        let mut k = 0;
        if self.monitor.is_some() {
            if ready.first().copied().unwrap_or(false) {
                self.on_link_changes(now);
            }
            k = 1;
        }
        for n in 0..self.ifaces.len() {
            let Some(session) = self.ifaces[n].session() else {
                continue;
            };
            let hit = ready.get(k).copied().unwrap_or(false);
            k += 1;
            if hit {
                let events = session.on_readable(now);
                self.on_dhcp(n, events, &mut changed);
            }
        }
        self.online_changed(now, &mut changed);
        changed
    }

    /// Timers: DHCP retransmissions and renewals, the online deadline.
    pub fn tick(&mut self, now: Duration) -> Changed {
        let mut changed = Changed::default();
        for n in 0..self.ifaces.len() {
            let due = self.ifaces[n]
                .session()
                .is_some_and(|s| s.deadline().is_some_and(|d| d <= now));
            if due {
                let events = self.ifaces[n].session().map(|s| s.on_tick(now));
                self.on_dhcp(n, events.unwrap_or_default(), &mut changed);
            }
        }
        if self.online_at.is_none() && !self.late_reported && now >= self.started + self.timeout {
            self.late_reported = true;
            let waiting: Vec<String> = self
                .ifaces
                .iter()
                .filter(|i| !i.configured())
                .map(|i| format!("{} ({})", i.label(), i.waiting_for()))
                .collect();
            log::warn!(
                "network not online after {} s: {}; containers after network-online keep waiting, the others run",
                self.timeout.as_secs(),
                waiting.join(", ")
            );
        }
        self.online_changed(now, &mut changed);
        changed
    }

    fn online_changed(&mut self, now: Duration, changed: &mut Changed) {
        let was = self.online_at.is_some();
        self.check_online(now);
        changed.online = !was && self.online_at.is_some();
    }

    fn check_online(&mut self, now: Duration) {
        if self.online_at.is_none() && self.ifaces.iter().all(Iface::configured) {
            self.online_at = Some(now);
            log::info!(
                "network online: {} interface(s) configured in {} ms",
                self.ifaces.len(),
                now.saturating_sub(self.started).as_millis()
            );
        }
    }

    fn on_link_changes(&mut self, now: Duration) {
        let changes = self
            .monitor
            .as_mut()
            .map(Monitor::drain)
            .unwrap_or_default();
        for c in &changes {
            log::info!("network: {c}");
        }
        if !changes.is_empty() && self.ifaces.iter().any(|i| i.link.is_none()) {
            self.find_links(now);
        }
    }

    /// Looks for the link of every interface that has none yet and sets
    /// up those it finds.
    fn find_links(&mut self, now: Duration) {
        let links = match self.rtnl.links() {
            Ok(l) => l,
            Err(e) => {
                log::error!("network: list links: {e}");
                return;
            }
        };
        for n in 0..self.ifaces.len() {
            if self.ifaces[n].link.is_some() {
                continue;
            }
            let found = links.iter().find(|l| match &self.ifaces[n].config.select {
                LinkSelect::Name(name) => &l.name == name,
                LinkSelect::Mac(mac) => l.mac.as_ref() == Some(mac),
            });
            if let Some(link) = found {
                let link = link.clone();
                self.ifaces[n].status = self.bring_up(&self.ifaces[n].config, &link, now);
                self.ifaces[n].link = Some(link);
            }
        }
    }

    fn bring_up(&self, config: &Interface, link: &Link, now: Duration) -> Status {
        let name = &link.name;
        if let Some(mtu) = config.mtu {
            if let Err(e) = self.rtnl.set_mtu(link.index, mtu) {
                log::error!("network: {e}");
            }
        }
        if let Err(e) = self.rtnl.set_up(link.index) {
            log::error!("network: {e}");
            return Status::Failed(e.to_string());
        }
        if !config.dhcp {
            self.apply_static(config, link);
            return Status::Static;
        }
        let Some(mac) = link.mac else {
            let why = format!("{name} has no MAC address for DHCP");
            log::error!("network: {why}");
            return Status::Failed(why);
        };
        match Session::open(name, mac, self.hostname.clone(), now) {
            Ok(s) => {
                log::info!("network: {name} ({}): DHCP started", format_mac(&mac));
                Status::Leasing(Box::new(s))
            }
            Err(e) => {
                log::error!("network: {name}: start DHCP: {e}");
                Status::Failed(format!("DHCP: {e}"))
            }
        }
    }

    fn apply_static(&self, config: &Interface, link: &Link) {
        for a in &config.addresses {
            self.report(self.rtnl.add_address(link.index, a.address, a.prefix_len));
        }
        if let Some(gw) = config.gateway {
            self.report(
                self.rtnl
                    .add_route(Ipv4Addr::UNSPECIFIED, 0, Some(gw), link.index),
            );
        }
        self.add_routes(config, link);
        let addrs: Vec<String> = config.addresses.iter().map(|a| a.to_string()).collect();
        log::info!(
            "network: {}: static {}{}",
            link.name,
            addrs.join(" "),
            config
                .gateway
                .map_or_else(String::new, |g| format!(", gateway {g}"))
        );
    }

    fn add_routes(&self, config: &Interface, link: &Link) {
        for r in &config.routes {
            self.report(self.rtnl.add_route(
                r.destination.address,
                r.destination.prefix_len,
                Some(r.gateway),
                link.index,
            ));
        }
    }

    /// Logs a failed configuration step; "already there" is not a failure
    /// (a renewed lease or a restarted client re-adds the same address).
    fn report(&self, result: Result<(), super::rtnl::Error>) {
        if let Err(e) = result {
            if !e.already_exists() {
                log::error!("network: {e}");
            }
        }
    }

    fn on_dhcp(&mut self, n: usize, events: Vec<dhcp::Event>, changed: &mut Changed) {
        for event in events {
            let Some(link) = self.ifaces[n].link.clone() else {
                return;
            };
            let status = std::mem::replace(&mut self.ifaces[n].status, Status::NoLink);
            let (session, previous) = match status {
                Status::Leasing(s) => (s, None),
                Status::Leased(s, lease) => (s, Some(lease)),
                other => {
                    self.ifaces[n].status = other;
                    return;
                }
            };
            self.ifaces[n].status = match event {
                dhcp::Event::Bound(lease) => {
                    if let Some(old) = previous.filter(|o| o.address != lease.address) {
                        self.report(
                            self.rtnl
                                .del_address(link.index, old.address, old.prefix_len),
                        );
                    }
                    self.apply_lease(&self.ifaces[n].config, &link, &lease);
                    changed.dns = true;
                    changed.hostname = lease.hostname.clone().or(changed.hostname.take());
                    Status::Leased(session, lease)
                }
                dhcp::Event::Renewed(lease) => {
                    changed.dns = true;
                    Status::Leased(session, lease)
                }
                dhcp::Event::Lost { reason } => {
                    log::warn!("network: {}: lease lost: {reason}", link.name);
                    if let Some(l) = previous {
                        self.report(self.rtnl.del_address(link.index, l.address, l.prefix_len));
                    }
                    changed.dns = true;
                    Status::Leasing(session)
                }
            };
        }
    }

    fn apply_lease(&self, config: &Interface, link: &Link, lease: &Lease) {
        if let (None, Some(mtu)) = (config.mtu, lease.mtu) {
            self.report(self.rtnl.set_mtu(link.index, u32::from(mtu)));
        }
        self.report(
            self.rtnl
                .add_address(link.index, lease.address, lease.prefix_len),
        );
        if let Some(router) = lease.router {
            self.report(
                self.rtnl
                    .add_route(Ipv4Addr::UNSPECIFIED, 0, Some(router), link.index),
            );
        }
        self.add_routes(config, link);
    }
}

/// With no interface declared: DHCP on every link present now that has a
/// MAC address, except loopback.
fn default_interfaces(rtnl: &Rtnl) -> Vec<Interface> {
    match rtnl.links() {
        Ok(links) => links
            .into_iter()
            .filter(|l| l.name != "lo" && l.mac.is_some_and(|m| m != [0; 6]))
            .map(|l| Interface::dhcp(&l.name))
            .collect(),
        Err(e) => {
            log::error!("network: list links: {e}");
            Vec::new()
        }
    }
}
