//! Addresses of bridge containers: each running container holds one address
//! of the bridge subnet; no two hold the same one.
//!
//! The subnet's network address, its first host address (the bridge, the
//! containers' gateway) and its broadcast address are never handed out. A
//! container gets back the address it had before when that is still free,
//! so a restart keeps its address and its neighbours' `/etc/hosts` stay
//! right; otherwise it gets the lowest free one. An address is released
//! when its container stops, and only then can another take it.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use berth_config::network::Ipv4Cidr;

/// The bridge subnet's address book.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// First and last address containers may get.
    first: u32,
    last: u32,
    /// Container → address it holds now.
    held: HashMap<String, Ipv4Addr>,
    /// Container → address it held last (kept after release).
    previous: HashMap<String, Ipv4Addr>,
}

impl Allocator {
    /// The address book of `subnet`: from the network address + 2 to the
    /// broadcast address - 1. A subnet too small for any container (a /31 or
    /// /32; the manifest allows /8 to /30) has no addresses at all.
    pub fn new(subnet: Ipv4Cidr) -> Allocator {
        let network = u32::from(subnet.network());
        let broadcast = network | !subnet.netmask();
        Allocator {
            first: network.saturating_add(2),
            last: broadcast.saturating_sub(1),
            held: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    /// The address `name` holds, allocating one if it holds none; `None`
    /// when the subnet is full.
    pub fn allocate(&mut self, name: &str) -> Option<Ipv4Addr> {
        if let Some(a) = self.held.get(name) {
            return Some(*a);
        }
        let taken = |a: Ipv4Addr, held: &HashMap<String, Ipv4Addr>| held.values().any(|h| *h == a);
        let sticky = self
            .previous
            .get(name)
            .copied()
            .filter(|a| !taken(*a, &self.held));
        let address = match sticky {
            Some(a) => a,
            None => (self.first..=self.last)
                .map(Ipv4Addr::from)
                .find(|a| !taken(*a, &self.held) && !self.is_reserved_for_other(name, *a))
                .or_else(|| {
                    // Every free address was someone's previous one: take
                    // the lowest free address anyway.
                    (self.first..=self.last)
                        .map(Ipv4Addr::from)
                        .find(|a| !taken(*a, &self.held))
                })?,
        };
        self.held.insert(name.to_owned(), address);
        self.previous.insert(name.to_owned(), address);
        Some(address)
    }

    /// Gives `name`'s address back; nothing happens if it holds none.
    pub fn release(&mut self, name: &str) -> Option<Ipv4Addr> {
        self.held.remove(name)
    }

    /// The address `name` holds now.
    pub fn address_of(&self, name: &str) -> Option<Ipv4Addr> {
        self.held.get(name).copied()
    }

    /// Every (container, address) held now, sorted by address.
    pub fn held(&self) -> Vec<(String, Ipv4Addr)> {
        let mut out: Vec<(String, Ipv4Addr)> =
            self.held.iter().map(|(n, a)| (n.clone(), *a)).collect();
        out.sort_by_key(|(_, a)| *a);
        out
    }

    /// Whether `a` was another container's last address: a new container
    /// skips those while others are free, so a stopped container usually
    /// finds its address again.
    fn is_reserved_for_other(&self, name: &str, a: Ipv4Addr) -> bool {
        self.previous.iter().any(|(n, p)| n != name && *p == a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Ipv4Cidr {
        s.parse().expect("valid subnet")
    }

    fn ip(s: &str) -> Option<Ipv4Addr> {
        Some(s.parse().expect("valid address"))
    }

    enum Op {
        Alloc(&'static str, Option<&'static str>),
        Release(&'static str),
    }
    use Op::*;

    #[test]
    fn table() {
        // (subnet, operations with the expected address of each allocation)
        let rows: &[(&str, &[Op])] = &[
            (
                "10.88.0.0/24",
                &[
                    Alloc("a", Some("10.88.0.2")),
                    Alloc("b", Some("10.88.0.3")),
                    // Asking again gives the same address.
                    Alloc("a", Some("10.88.0.2")),
                    // A restart keeps the address.
                    Release("a"),
                    Alloc("a", Some("10.88.0.2")),
                    // A stopped container's address is skipped by others…
                    Release("b"),
                    Alloc("c", Some("10.88.0.4")),
                    Alloc("b", Some("10.88.0.3")),
                ],
            ),
            (
                // /30: network .0, bridge .1, one container .2, broadcast .3.
                "192.0.2.0/30",
                &[
                    Alloc("a", Some("192.0.2.2")),
                    Alloc("b", None),
                    Release("a"),
                    // …but taken when nothing else is free.
                    Alloc("b", Some("192.0.2.2")),
                    // and then a finds its old address held by b.
                    Release("b"),
                    Alloc("a", Some("192.0.2.2")),
                    Alloc("b", None),
                ],
            ),
            (
                // Host bits in the subnet do not shift the range.
                "10.1.2.77/29",
                &[
                    Alloc("a", Some("10.1.2.74")),
                    Alloc("b", Some("10.1.2.75")),
                    Alloc("c", Some("10.1.2.76")),
                    Alloc("d", Some("10.1.2.77")),
                    Alloc("e", Some("10.1.2.78")),
                    Alloc("f", None),
                ],
            ),
            ("10.0.0.1/32", &[Alloc("a", None)]),
            ("10.0.0.0/31", &[Alloc("a", None)]),
        ];
        for (net, ops) in rows {
            let mut alloc = Allocator::new(subnet(net));
            for (k, op) in ops.iter().enumerate() {
                match op {
                    Alloc(name, want) => {
                        let got = alloc.allocate(name);
                        assert_eq!(got, want.and_then(ip), "{net} step {k}: allocate {name}");
                    }
                    Release(name) => {
                        alloc.release(name);
                        assert_eq!(alloc.address_of(name), None, "{net} step {k}");
                    }
                }
                // Invariant: no address held twice, none outside the range.
                let held = alloc.held();
                let mut addrs: Vec<Ipv4Addr> = held.iter().map(|(_, a)| *a).collect();
                addrs.dedup();
                assert_eq!(addrs.len(), held.len(), "{net} step {k}: duplicate address");
                for a in addrs {
                    let c = subnet(net);
                    assert!(c.contains(a), "{net}: {a} outside");
                    assert_ne!(a, c.network());
                    assert_ne!(u32::from(a), u32::from(c.network()) + 1, "{net}: gateway");
                }
            }
        }
    }

    #[test]
    fn fills_a_subnet_without_collisions() {
        let mut alloc = Allocator::new(subnet("10.88.0.0/24"));
        let names: Vec<String> = (0..253).map(|i| format!("c{i}")).collect();
        for n in &names {
            assert!(alloc.allocate(n).is_some(), "{n}");
        }
        assert_eq!(alloc.allocate("one-too-many"), None);
        assert_eq!(alloc.held().len(), 253);
        assert_eq!(alloc.release("c100"), ip("10.88.0.102"));
        assert_eq!(alloc.allocate("one-too-many"), ip("10.88.0.102"));
    }
}
