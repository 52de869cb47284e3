//! Containers with `network = "bridge"`: the bridge itself, one veth pair
//! and one address per running container, and the nftables NAT that lets
//! them out (masquerade) and lets published ports in (DNAT).
//!
//! The bridge is created on the first attach, with the subnet's first
//! address, IPv4 forwarding on and the NAT table in place. Each start of a
//! container gets a fresh host-side veth name (`bv` and a counter): the
//! kernel tears down a dead namespace's links asynchronously, so reusing a
//! name could race with the previous run's teardown. The NAT table is
//! replaced atomically whenever the set of published ports changes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::Instant;

use berth_config::network::{Bridge, PortMap};

use super::alloc::Allocator;
use super::nft::{self, Forward, Ruleset};
use super::rtnl::Rtnl;
use super::veth::{self, container_mac, Attach};

/// One attached container.
#[derive(Debug, Clone)]
struct Attached {
    ifname: String,
    address: Ipv4Addr,
    ports: Vec<PortMap>,
}

/// The bridge and its containers.
#[derive(Debug)]
pub struct BridgeNet {
    config: Bridge,
    alloc: Allocator,
    rtnl: Option<Rtnl>,
    /// The bridge exists and the NAT table is in place.
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
    ) -> Result<Ipv4Addr, String> {
        let t = Instant::now();
        self.ensure_up()?;
        let address = self
            .alloc
            .allocate(name)
            .ok_or_else(|| format!("no free address left in {}", self.config.subnet))?;
        self.counter = self.counter.wrapping_add(1);
        let ifname = format!("bv{}", self.counter);
        let plan = Attach {
            bridge: self.config.name.clone(),
            host_ifname: ifname.clone(),
            netns: netns.as_fd(),
            mac: container_mac(address),
            address,
            prefix_len: self.config.subnet.prefix_len,
            gateway: self.config.gateway(),
            mtu: None,
        };
        let rtnl = self.rtnl()?;
        if let Err(e) = veth::attach(rtnl, &plan) {
            self.alloc.release(name);
            return Err(format!("attach to {}: {e}", self.config.name));
        }
        self.attached.insert(
            name.to_owned(),
            Attached {
                ifname: ifname.clone(),
                address,
                ports: ports.to_vec(),
            },
        );
        if !ports.is_empty() {
            self.apply_nat()?;
        }
        log::info!(
            "{name}: network {address}/{} on {} (veth {ifname}){} in {} ms",
            self.config.subnet.prefix_len,
            self.config.name,
            published(ports),
            t.elapsed().as_millis()
        );
        Ok(address)
    }

    /// Takes `name` off the bridge after it stopped: releases its address
    /// and its published ports. Its veth pair went with its namespace; the
    /// host end is deleted anyway in case something still holds that.
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
        if !a.ports.is_empty() {
            if let Err(e) = self.apply_nat() {
                log::error!("{name}: unpublish ports: {e}");
            }
        }
    }

    fn rtnl(&mut self) -> Result<&Rtnl, String> {
        if self.rtnl.is_none() {
            self.rtnl = Some(Rtnl::open().map_err(|e| e.to_string())?);
        }
        self.rtnl
            .as_ref()
            .ok_or_else(|| "rtnetlink unavailable".to_owned())
    }

    /// Creates the bridge, turns on forwarding and installs the NAT table,
    /// once.
    fn ensure_up(&mut self) -> Result<(), String> {
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
            .map_err(|e| format!("set up bridge {name}: {e}"))?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1")
            .map_err(|e| format!("enable IPv4 forwarding: {e}"))?;
        self.apply_nat()?;
        self.up = true;
        log::info!(
            "network: bridge {name} {gateway}/{prefix} with NAT in {} ms",
            t.elapsed().as_millis()
        );
        Ok(())
    }

    /// Replaces the NAT table: masquerade for the subnet, DNAT for every
    /// published port of an attached container.
    fn apply_nat(&self) -> Result<(), String> {
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
        let ruleset = Ruleset {
            subnet: (self.config.subnet.network(), self.config.subnet.prefix_len),
            bridge: self.config.name.clone(),
            forwards,
        };
        nft::apply(&ruleset).map_err(|e| format!("nftables: {e}"))
    }
}

fn published(ports: &[PortMap]) -> String {
    if ports.is_empty() {
        return String::new();
    }
    let list: Vec<String> = ports.iter().map(PortMap::to_string).collect();
    format!(", publishing {}", list.join(" "))
}
