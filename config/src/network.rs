//! The network part of the manifest as plain data: the node's interfaces
//! (`[network.interface.NAME]`), the container bridge (`[network.bridge]`),
//! and a container's `network` mode and published `ports`, with the small
//! parsers for their string forms (`10.0.2.15/24`, `8080:80/tcp`,
//! `52:54:00:12:34:56`). Every parser returns a message meant to follow the
//! TOML path in an error line.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use crate::toml_walk::quote;

/// The readiness target a service lists in `after` to wait until every
/// declared interface is configured.
pub const NETWORK_ONLINE: &str = "network-online";

/// How long the node waits for its interfaces before it reports on the
/// console that the network is not online. Containers that wait for
/// [`NETWORK_ONLINE`] keep waiting; the others never wait at all.
pub const DEFAULT_ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// The bridge's default name and subnet (podman's default subnet, narrowed
/// to a /24).
pub const DEFAULT_BRIDGE: &str = "berth0";
pub const DEFAULT_SUBNET: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::new(10, 88, 0, 0),
    prefix_len: 24,
};

/// The `[network]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `network.interface.*`, in declaration order.
    pub interfaces: Vec<Interface>,
    /// `network.bridge`.
    pub bridge: Bridge,
    /// `network.dns`: name servers written to `/etc/resolv.conf` before
    /// those an interface declares or leases.
    pub dns: Vec<Ipv4Addr>,
    /// `network.search`: DNS search domains.
    pub search: Vec<String>,
    /// `network.online-timeout`: see [`DEFAULT_ONLINE_TIMEOUT`].
    pub online_timeout: Duration,
}

impl Default for Network {
    fn default() -> Network {
        Network {
            interfaces: Vec::new(),
            bridge: Bridge::default(),
            dns: Vec::new(),
            search: Vec::new(),
            online_timeout: DEFAULT_ONLINE_TIMEOUT,
        }
    }
}

/// One `[network.interface.LABEL]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The table's key: the interface name, unless `mac` selects it.
    pub label: String,
    /// Which link this table configures.
    pub select: LinkSelect,
    /// `dhcp`: true unless `addresses` are given.
    pub dhcp: bool,
    /// `addresses`: static addresses.
    pub addresses: Vec<Ipv4Cidr>,
    /// `gateway`: the default route of a static interface.
    pub gateway: Option<Ipv4Addr>,
    /// `routes`: extra static routes.
    pub routes: Vec<Route>,
    /// `dns`: name servers of a static interface (a lease brings its own).
    pub dns: Vec<Ipv4Addr>,
    /// `mtu`.
    pub mtu: Option<u32>,
}

impl Interface {
    /// A DHCP interface selected by its name, every other key at its
    /// default.
    pub fn dhcp(name: &str) -> Interface {
        Interface {
            label: name.to_owned(),
            select: LinkSelect::Name(name.to_owned()),
            dhcp: true,
            addresses: Vec::new(),
            gateway: None,
            routes: Vec::new(),
            dns: Vec::new(),
            mtu: None,
        }
    }
}

/// How an interface table finds its link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkSelect {
    Name(String),
    Mac([u8; 6]),
}

impl fmt::Display for LinkSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkSelect::Name(name) => f.write_str(name),
            LinkSelect::Mac(mac) => f.write_str(&format_mac(mac)),
        }
    }
}

/// A static route: `"10.1.0.0/16 via 10.0.2.1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Cidr,
    pub gateway: Ipv4Addr,
}

impl FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Route, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let [destination, "via", gateway] = words.as_slice() else {
            return Err(format!(
                "bad route {} (expected \"DESTINATION/PREFIX via GATEWAY\")",
                quote(s)
            ));
        };
        let destination: Ipv4Cidr = destination.parse()?;
        if destination.network() != destination.address {
            return Err(format!(
                "route destination {destination} has host bits set (expected {}/{})",
                destination.network(),
                destination.prefix_len
            ));
        }
        let gateway = gateway
            .parse()
            .map_err(|_| format!("bad gateway {} in route {}", quote(gateway), quote(s)))?;
        Ok(Route {
            destination,
            gateway,
        })
    }
}

/// The `[network.bridge]` table: where `network = "bridge"` containers
/// live. The bridge takes the subnet's first address, containers the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub subnet: Ipv4Cidr,
}

impl Default for Bridge {
    fn default() -> Bridge {
        Bridge {
            name: DEFAULT_BRIDGE.to_owned(),
            subnet: DEFAULT_SUBNET,
        }
    }
}

impl Bridge {
    /// The bridge's own address: the subnet's first host address, which
    /// containers use as their gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }
}

/// An IPv4 address with a prefix length: `10.88.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    pub fn netmask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.netmask())
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.netmask() == u32::from(self.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Ipv4Cidr, String> {
        let Some((address, prefix)) = s.split_once('/') else {
            return Err(format!(
                "bad address {} (expected ADDRESS/PREFIX, like \"10.0.2.15/24\")",
                quote(s)
            ));
        };
        let address = address
            .parse()
            .map_err(|_| format!("bad IPv4 address {} in {}", quote(address), quote(s)))?;
        let prefix_len = match prefix.parse::<u8>() {
            Ok(n) if n <= 32 && !prefix.starts_with('+') => n,
            _ => {
                return Err(format!(
                    "bad prefix length {} in {} (0 to 32)",
                    quote(prefix),
                    quote(s)
                ))
            }
        };
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
    }
}

/// A container's `network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The node's own network namespace (every host container).
    Host,
    /// An own namespace with only loopback.
    None,
    /// An own namespace on the bridge: the default for workloads.
    Bridge,
}

impl NetworkMode {
    pub const ALL: [NetworkMode; 3] = [NetworkMode::Host, NetworkMode::None, NetworkMode::Bridge];

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
            NetworkMode::Bridge => "bridge",
        }
    }

    /// Whether the container gets a network namespace of its own.
    pub fn own_namespace(self) -> bool {
        self != NetworkMode::Host
    }
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One element of `ports`: `"HOST:CONTAINER[/tcp|/udp]"` (tcp when the
/// protocol is left out); serialised in that form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMap {
    pub host: u16,
    pub container: u16,
    pub proto: Proto,
}

crate::serde_text::as_text!(PortMap);

impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.host,
            self.container,
            self.proto.as_str()
        )
    }
}

impl FromStr for PortMap {
    type Err = String;
    fn from_str(s: &str) -> Result<PortMap, String> {
        let expected =
            "expected \"HOST:CONTAINER\" or \"HOST:CONTAINER/tcp|udp\", like \"8080:80/tcp\"";
        let (ports, proto) = match s.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Proto::Tcp),
            Some((ports, "udp")) => (ports, Proto::Udp),
            Some((_, other)) => {
                return Err(format!(
                    "unknown protocol {} in {} (expected tcp or udp)",
                    quote(other),
                    quote(s)
                ))
            }
            None => (s, Proto::Tcp),
        };
        let Some((host, container)) = ports.split_once(':') else {
            return Err(format!("bad port mapping {} ({expected})", quote(s)));
        };
        let port = |p: &str, which: &str| -> Result<u16, String> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(format!(
                    "bad {which} port {} in {} (1 to 65535; {expected})",
                    quote(p),
                    quote(s)
                )),
            }
        };
        Ok(PortMap {
            host: port(host, "host")?,
            container: port(container, "container")?,
            proto,
        })
    }
}

/// `"52:54:00:12:34:56"` (case-insensitive, colons only).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || {
        format!(
            "bad MAC address {} (expected six hex pairs like \"52:54:00:12:34:56\")",
            quote(s)
        )
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        let ok = |host, container, proto| {
            Ok(PortMap {
                host,
                container,
                proto,
            })
        };
        let rows: &[(&str, Result<PortMap, &str>)] = &[
            ("8080:80/tcp", ok(8080, 80, Proto::Tcp)),
            ("8080:80", ok(8080, 80, Proto::Tcp)),
            ("53:5353/udp", ok(53, 5353, Proto::Udp)),
            ("65535:1", ok(65535, 1, Proto::Tcp)),
            ("8080", Err("bad port mapping \"8080\"")),
            ("8080:80/sctp", Err("unknown protocol \"sctp\"")),
            ("0:80", Err("bad host port \"0\"")),
            ("65536:80", Err("bad host port \"65536\"")),
            ("80:-1", Err("bad container port \"-1\"")),
            ("+80:80", Err("bad host port \"+80\"")),
            (":80", Err("bad host port \"\"")),
            ("80:", Err("bad container port \"\"")),
            ("1.2.3.4:80:80", Err("bad host port \"1.2.3.4\"")),
            ("80:80/", Err("unknown protocol \"\"")),
            ("", Err("bad port mapping \"\"")),
        ];
        for (text, want) in rows {
            let got = text.parse::<PortMap>();
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{text}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{text}: {g}"),
                _ => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            "8080:80".parse::<PortMap>().map(|p| p.to_string()),
            Ok("8080:80/tcp".to_owned())
        );
    }

    #[test]
    fn cidrs() {
        let c: Ipv4Cidr = "10.0.2.15/24".parse().expect("valid");
        assert_eq!(c.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 2, 0));
        assert!(c.contains(Ipv4Addr::new(10, 0, 2, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 0, 3, 1)));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        for bad in [
            "10.0.2.15",
            "10.0.2/24",
            "10.0.2.15/33",
            "10.0.2.15/-1",
            "x/8",
            "10.0.0.1/+8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        assert_eq!(Bridge::default().gateway(), Ipv4Addr::new(10, 88, 0, 1));
    }

    #[test]
    fn routes_and_macs() {
        let r: Route = "10.1.0.0/16 via 10.0.2.1".parse().expect("valid");
        assert_eq!(r.gateway, Ipv4Addr::new(10, 0, 2, 1));
        assert!("10.1.0.1/16 via 10.0.2.1"
            .parse::<Route>()
            .is_err_and(|e| e.contains("host bits")));
        assert!("10.1.0.0/16 10.0.2.1".parse::<Route>().is_err());
        assert_eq!(
            parse_mac("52:54:00:AB:cd:0f"),
            Ok([0x52, 0x54, 0, 0xab, 0xcd, 0x0f])
        );
        for bad in [
            "52:54:00:ab:cd",
            "52-54-00-ab-cd-ef",
            "52:54:00:ab:cd:xg",
            "525:4:00:ab:cd:ef",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_mac(&[0x52, 0x54, 0, 0xab, 0xcd, 0x0f]),
            "52:54:00:ab:cd:0f"
        );
    }
}
