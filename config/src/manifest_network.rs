//! The `[network]` table: the node's interfaces, the container bridge,
//! name servers and the `network-online` deadline; and the per-container
//! `network` and `ports` keys' checks that need every container.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::str::FromStr;

use toml::{Table, Value};

use crate::manifest::Container;
use crate::manifest_lifecycle as lifecycle;
use crate::network::{parse_mac, Bridge, Interface, LinkSelect, Network, NetworkMode, PortMap};
use crate::toml_walk::{index_path, key_path, quote, Walker};

/// Longest interface name the kernel takes (IFNAMSIZ - 1).
pub(crate) const IFNAME_MAX: usize = 15;

pub(crate) fn walk(path: &str, table: &Table, w: &mut Walker) -> Network {
    let mut network = Network::default();
    for (key, value) in table {
        let path = key_path(path, key);
        match key.as_str() {
            "interface" => network.interfaces = interfaces(&path, value, w),
            "bridge" => {
                if let Some(t) = w.table(&path, value) {
                    network.bridge = bridge(&path, t, w);
                }
            }
            "dns" => network.dns = parsed_list(&path, value, w, "a name server"),
            "search" => network.search = search(&path, value, w),
            "online-timeout" => {
                if let Some(s) = w.string(&path, value) {
                    match lifecycle::parse_duration(s) {
                        Ok(d) => network.online_timeout = d,
                        Err(e) => w.error(&path, e),
                    }
                }
            }
            _ => w.unknown_key(&path),
        }
    }
    check_overlap(path, &network, w);
    network
}

fn interfaces(path: &str, value: &Value, w: &mut Walker) -> Vec<Interface> {
    let Some(table) = w.table(path, value) else {
        return Vec::new();
    };
    let mut out: Vec<Interface> = Vec::with_capacity(table.len());
    // selector → path of the table that selected it first
    let mut seen: HashMap<LinkSelect, String> = HashMap::new();
    for (label, value) in table {
        let path = key_path(path, label);
        if let Some(problem) = ifname_problem(label) {
            w.error(&path, problem);
        }
        let Some(t) = w.table(&path, value) else {
            continue;
        };
        let iface = interface(label, &path, t, w);
        if let Some(first) = seen.get(&iface.select) {
            w.error(
                &path,
                format!(
                    "selects {} again (already selected by {first})",
                    iface.select
                ),
            );
            continue;
        }
        seen.insert(iface.select.clone(), path);
        out.push(iface);
    }
    out
}

fn interface(label: &str, path: &str, table: &Table, w: &mut Walker) -> Interface {
    let mut iface = Interface::dhcp(label);
    let mut dhcp = None;
    for (key, value) in table {
        let p = key_path(path, key);
        match key.as_str() {
            "mac" => {
                if let Some(s) = w.string(&p, value) {
                    match parse_mac(s) {
                        Ok(mac) => iface.select = LinkSelect::Mac(mac),
                        Err(e) => w.error(&p, e),
                    }
                }
            }
            "dhcp" => dhcp = w.boolean(&p, value),
            "addresses" => iface.addresses = parsed_list(&p, value, w, "an address"),
            "gateway" => {
                if let Some(s) = w.string(&p, value) {
                    match s.parse::<Ipv4Addr>() {
                        Ok(a) => iface.gateway = Some(a),
                        Err(_) => w.error(&p, format!("bad IPv4 address {}", quote(s))),
                    }
                }
            }
            "routes" => iface.routes = parsed_list(&p, value, w, "a route"),
            "dns" => iface.dns = parsed_list(&p, value, w, "a name server"),
            "mtu" => {
                if let Some(n) = w.integer(&p, value) {
                    match u32::try_from(n) {
                        Ok(n) if (68..=65535).contains(&n) => iface.mtu = Some(n),
                        _ => w.error(&p, format!("{n} out of range (68 to 65535)")),
                    }
                }
            }
            _ => w.unknown_key(&p),
        }
    }
    iface.dhcp = dhcp.unwrap_or(iface.addresses.is_empty());
    let static_only = [
        ("addresses", !iface.addresses.is_empty()),
        ("gateway", iface.gateway.is_some()),
        ("dns", !iface.dns.is_empty()),
    ];
    for (key, present) in static_only {
        if iface.dhcp && present {
            w.error(
                &key_path(path, key),
                "only for a static interface (the DHCP lease brings it; set dhcp = false)",
            );
        }
    }
    if let (false, Some(gateway)) = (iface.dhcp, iface.gateway) {
        if !iface.addresses.iter().any(|a| a.contains(gateway)) {
            w.error(
                &key_path(path, "gateway"),
                format!("{gateway} is not in the subnet of any of addresses"),
            );
        }
    }
    iface
}

fn bridge(path: &str, table: &Table, w: &mut Walker) -> Bridge {
    let mut bridge = Bridge::default();
    for (key, value) in table {
        let p = key_path(path, key);
        match key.as_str() {
            "name" => {
                if let Some(s) = w.string(&p, value) {
                    match ifname_problem(s) {
                        Some(problem) => w.error(&p, problem),
                        None => bridge.name = s.to_owned(),
                    }
                }
            }
            "subnet" => {
                let Some(s) = w.string(&p, value) else {
                    continue;
                };
                match s.parse::<crate::network::Ipv4Cidr>() {
                    Err(e) => w.error(&p, e),
                    Ok(c) if !(8..=30).contains(&c.prefix_len) => w.error(
                        &p,
                        format!(
                            "prefix length /{} out of range (8 to 30: room for the bridge and containers)",
                            c.prefix_len
                        ),
                    ),
                    Ok(c) if c.network() != c.address => w.error(
                        &p,
                        format!("{s} has host bits set (expected {}/{})", c.network(), c.prefix_len),
                    ),
                    Ok(c) => bridge.subnet = c,
                }
            }
            _ => w.unknown_key(&p),
        }
    }
    bridge
}

/// The bridge subnet must not overlap a static address of the node: the
/// kernel would route one of them wrong.
fn check_overlap(path: &str, network: &Network, w: &mut Walker) {
    let subnet = network.bridge.subnet;
    for iface in &network.interfaces {
        for a in &iface.addresses {
            let (small, big) = if a.prefix_len >= subnet.prefix_len {
                (a.address, subnet)
            } else {
                (subnet.address, *a)
            };
            if big.contains(small) {
                w.error(
                    &key_path(&key_path(path, "bridge"), "subnet"),
                    format!(
                        "{subnet} overlaps address {a} of interface {}",
                        quote(&iface.label)
                    ),
                );
            }
        }
    }
}

fn search(path: &str, value: &Value, w: &mut Walker) -> Vec<String> {
    let Some(list) = w.strings(path, value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (p, s) in list.items {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            out.push(s.to_owned());
        } else {
            w.error(&p, format!("bad domain {}", quote(s)));
        }
    }
    out
}

/// An array of strings, each parsed with `T::from_str`.
fn parsed_list<T: FromStr>(path: &str, value: &Value, w: &mut Walker, what: &str) -> Vec<T>
where
    T::Err: ToString,
{
    let Some(list) = w.strings(path, value) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.items.len());
    for (p, s) in list.items {
        match s.parse::<T>() {
            Ok(v) => out.push(v),
            Err(e) => {
                let e = e.to_string();
                // std's address parser says only "invalid IPv4 address syntax".
                if e.starts_with("invalid") {
                    w.error(&p, format!("bad {what}: {}", quote(s)));
                } else {
                    w.error(&p, e);
                }
            }
        }
    }
    out
}

pub(crate) fn ifname_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    (!ok).then(|| {
        format!(
            "bad interface name {} (1 to {IFNAME_MAX} printable characters, no '/' or ':')",
            quote(name)
        )
    })
}

/// `ports` of one container: an array of `"HOST:CONTAINER[/PROTO]"`.
pub(crate) fn ports(path: &str, value: &Value, w: &mut Walker) -> Vec<PortMap> {
    parsed_list(path, value, w, "a port mapping")
}

/// Once every container is known: `ports` only on the bridge, and a host
/// port published once per protocol.
pub(crate) fn check_containers(containers: &[Container], w: &mut Walker) {
    // (host port, proto) → path of its first publication
    let mut seen: HashMap<(u16, &str), String> = HashMap::new();
    for c in containers {
        let path = key_path(&key_path("container", &c.name), "ports");
        if !c.ports.is_empty() && c.network != NetworkMode::Bridge {
            w.error(
                &path,
                format!(
                    "published ports need network = \"bridge\" (this container's network is {})",
                    quote(c.network.as_str())
                ),
            );
            continue;
        }
        for (i, p) in c.ports.iter().enumerate() {
            let key = (p.host, p.proto.as_str());
            if let Some(first) = seen.get(&key) {
                w.error(
                    &index_path(&path, i),
                    format!(
                        "host port {}/{} is already published by {first}",
                        p.host,
                        p.proto.as_str()
                    ),
                );
            } else {
                seen.insert(key, index_path(&path, i));
            }
        }
    }
}
