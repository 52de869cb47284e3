//! Containers with `network = "bridge"`: the bridge itself, one veth pair,
//! one address and one MAC per running container, the nftables NAT that
//! lets them out (masquerade) and lets published ports in (DNAT), and the
//! bridge rules that hold each container's port to its own MAC and
//! address.
//!
//! The bridge is created on the first attach, with the subnet's first
//! address, IPv4 forwarding on and the tables in place. Each start of a
//! container gets a fresh host-side veth name (`bv` and a counter): the
//! kernel tears down a dead namespace's links asynchronously, so reusing a
//! name could race with the previous run's teardown.
//!
//! Attaching goes: allocate the address, name the host end and derive the
//! MAC from the address, replace the tables with the new port's rules in
//! them, and only then create the pair and put it on the bridge, so the
//! port never forwards a frame its rules have not seen. Detaching deletes
//! the pair, then replaces the tables without the port. Both tables (NAT
//! and bridge) are replaced together in one atomic batch on every change.
//!
//! A failure is a [`BridgeError`] naming the step, its cause as the
//! source; [`crate::chain`] puts both on one line.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::Instant;

use berth_config::network::{format_mac, Bridge, Ipv4Cidr, PortMap};

use super::alloc::Allocator;
use super::nft::{self, Forward, Port, Ruleset};
use super::rtnl::{self, Rtnl};
use super::veth::{self, container_mac, Attach};
use crate::chain;

/// A step of setting up the bridge or attaching a container failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("rtnetlink")]
    Rtnetlink(#[source] rtnl::Error),
    #[error("set up bridge {0}")]
    SetUp(String, #[source] veth::Error),
    #[error("enable IPv4 forwarding")]
    Forwarding(#[source] std::io::Error),
    #[error("no free address left in {0}")]
    NoAddress(Ipv4Cidr),
    #[error("nftables")]
    Rules(#[source] nft::Error),
    #[error("attach to {0}")]
    Attach(String, #[source] veth::Error),
}

/// How the host ends of the veth pairs are named: this and a counter.
const PORT_PREFIX: &str = "bv";

/// One attached container (or one being attached: its rules go in first).
#[derive(Debug, Clone)]
struct Attached {
    ifname: String,
    mac: [u8; 6],
    address: Ipv4Addr,
    ports: Vec<PortMap>,
}

/// The bridge and its containers.
#[derive(Debug)]
pub struct BridgeNet {
    config: Bridge,
    alloc: Allocator,
    rtnl: Option<Rtnl>,
    /// The bridge exists and the tables are in place.
    up: bool,
    counter: u32,
    attached: BTreeMap<String, Attached>,
}

impl BridgeNet {
    pub fn new(config: Bridge) -> BridgeNet {
        BridgeNet {
            alloc: Allocator::new(config.subnet),
            config,
            rtnl: None,
            up: false,
            counter: 0,
            attached: BTreeMap::new(),
        }
    }

    /// Every running container on the bridge, with its address, sorted by
    /// address: the other lines of everyone's `/etc/hosts`.
    pub fn neighbours(&self) -> Vec<(String, Ipv4Addr)> {
        self.alloc.held()
    }

    /// The address `name` holds while attached.
    pub fn address_of(&self, name: &str) -> Option<Ipv4Addr> {
        self.alloc.address_of(name)
    }

    /// Puts the container whose network namespace is `netns` on the
    /// bridge, publishing `ports`; returns its address.
    pub fn attach(
        &mut self,
        name: &str,
        netns: impl AsFd,
        ports: &[PortMap],
    ) -> Result<Ipv4Addr, BridgeError> {
        let t = Instant::now();
        self.ensure_up()?;
        let address = self
            .alloc
            .allocate(name)
            .ok_or(BridgeError::NoAddress(self.config.subnet))?;
        self.counter = self.counter.wrapping_add(1);
        let ifname = format!("{PORT_PREFIX}{}", self.counter);
        let mac = container_mac(address);
        self.attached.insert(
            name.to_owned(),
            Attached {
                ifname: ifname.clone(),
                mac,
                address,
                ports: ports.to_vec(),
            },
        );
        if let Err(e) = self.apply_rules() {
            self.attached.remove(name);
            self.alloc.release(name);
            return Err(e);
        }
        let plan = Attach {
            bridge: self.config.name.clone(),
            host_ifname: ifname.clone(),
            netns: netns.as_fd(),
            mac,
            address,
            prefix_len: self.config.subnet.prefix_len,
            gateway: self.config.gateway(),
            mtu: None,
        };
        let attached = self.rtnl().and_then(|rtnl| {
            veth::attach(rtnl, &plan).map_err(|e| BridgeError::Attach(plan.bridge.clone(), e))
        });
        if let Err(e) = attached {
            self.attached.remove(name);
            self.alloc.release(name);
            if let Err(e) = self.apply_rules() {
                log::error!("{name}: remove the rules of {ifname}: {}", chain(&e));
            }
            return Err(e);
        }
        log::info!(
            "{name}: network {address}/{} on {} (veth {ifname}, MAC {}){} in {} ms",
            self.config.subnet.prefix_len,
            self.config.name,
            format_mac(&mac),
            published(ports),
            t.elapsed().as_millis()
        );
        Ok(address)
    }

    /// Takes `name` off the bridge after it stopped: releases its address,
    /// its published ports and its port's rules. Its veth pair went with
    /// its namespace; the host end is deleted anyway in case something
    /// still holds that, before the rules go.
    pub fn detach(&mut self, name: &str) {
        let Some(a) = self.attached.remove(name) else {
            return;
        };
        self.alloc.release(name);
        if let Ok(rtnl) = self.rtnl() {
            if let Err(e) = veth::detach(rtnl, &a.ifname) {
                log::debug!("{name}: delete veth {}: {e}", a.ifname);
            }
        }
        // A host end that outlived the delete matches `bv*` in the bridge
        // table and stays mute without rules of its own.
        if let Err(e) = self.apply_rules() {
            log::error!("{name}: remove the rules of {}: {}", a.ifname, chain(&e));
        }
    }

    fn rtnl(&mut self) -> Result<&Rtnl, BridgeError> {
        let rtnl = match self.rtnl.take() {
            Some(rtnl) => rtnl,
            None => Rtnl::open().map_err(BridgeError::Rtnetlink)?,
        };
        Ok(self.rtnl.insert(rtnl))
    }

    /// Creates the bridge, turns on forwarding and installs the tables,
    /// once.
    fn ensure_up(&mut self) -> Result<(), BridgeError> {
        if self.up {
            return Ok(());
        }
        let t = Instant::now();
        let (name, gateway, prefix) = (
            self.config.name.clone(),
            self.config.gateway(),
            self.config.subnet.prefix_len,
        );
        let rtnl = self.rtnl()?;
        veth::setup_bridge(rtnl, &name, gateway, prefix, None)
            .map_err(|e| BridgeError::SetUp(name.clone(), e))?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1").map_err(BridgeError::Forwarding)?;
        self.apply_rules()?;
        self.up = true;
        log::info!(
            "network: bridge {name} {gateway}/{prefix} with NAT and port rules in {} ms",
            t.elapsed().as_millis()
        );
        Ok(())
    }

    /// Replaces both tables: masquerade for the subnet, DNAT for every
    /// published port of an attached container, and every container's
    /// bridge port held to its MAC and address.
    fn apply_rules(&self) -> Result<(), BridgeError> {
        let forwards = self
            .attached
            .values()
            .flat_map(|a| {
                a.ports.iter().map(|p| Forward {
                    proto: p.proto,
                    host_port: p.host,
                    addr: a.address,
                    port: p.container,
                })
            })
            .collect();
        let ports = self
            .attached
            .values()
            .map(|a| Port {
                ifname: a.ifname.clone(),
                mac: a.mac,
                address: a.address,
            })
            .collect();
        let ruleset = Ruleset {
            subnet: (self.config.subnet.network(), self.config.subnet.prefix_len),
            bridge: self.config.name.clone(),
            forwards,
            ports,
            port_prefix: PORT_PREFIX.to_owned(),
        };
        nft::apply(&ruleset).map_err(BridgeError::Rules)
    }
}

fn published(ports: &[PortMap]) -> String {
    if ports.is_empty() {
        return String::new();
    }
    let list: Vec<String> = ports.iter().map(PortMap::to_string).collect();
    format!(", publishing {}", list.join(" "))
}
