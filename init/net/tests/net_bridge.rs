//! Host tests of the bridge networking pieces of `berth_net`: the
//! rtnetlink handle (`rtnl`), veth attachment (`veth`), the nftables NAT
//! table (`nft`), and the whole bridge (`bridge::BridgeNet`) under layer-2
//! attacks from a container (ARP and address spoofing, another container's
//! MAC, router advertisements, flooded unicast), on the real kernel. Needs
//! root; skips with a message otherwise.
//!
//! Every test makes its own network namespaces: a thread unshares one and
//! the test keeps it open as a file (`/proc/thread-self/ns/net`), so it
//! dies with the test process whatever happens, with no name to clean up.
//! Berth code runs in threads that setns(2) into a namespace (a network
//! namespace belongs to a thread); sockets keep the namespace they were
//! made in, so a listener made in one namespace can be accepted on from
//! the test's own thread. Addresses exist only inside these namespaces:
//! 10.199.0.0/24 is the container subnet on bridge `br0` of a "node"
//! namespace, and 192.0.2.0/24 (TEST-NET-1) links the node (192.0.2.1) to
//! an "outside" namespace (192.0.2.2). Every wait has a deadline.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_config::network::{Bridge, Ipv4Cidr};
use berth_net::bridge::BridgeNet;
use berth_net::nft::{self, Forward, Port, Proto, Ruleset};
use berth_net::rtnl::{Monitor, Rtnl};
use berth_net::veth::{self, container_mac, Attach};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};

// Not `tests/frames.rs`: cargo would take that for a test of its own.
#[path = "net_bridge/frames.rs"]
mod frames;

const BRIDGE: &str = "br0";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
const PREFIX: u8 = 24;
const NODE_UPLINK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection that must fail is given.
const FAIL_TIMEOUT: Duration = Duration::from_millis(700);

fn skip_unless_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    eprintln!("skipping {test}: needs root to create network namespaces");
    true
}

/// A network namespace of the test's own, alive while this is.
struct Netns {
    file: File,
}

impl Netns {
    fn new() -> Netns {
        let file = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).expect("unshare a network namespace");
            File::open("/proc/thread-self/ns/net").expect("open the new namespace")
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
        Netns { file }
    }

    /// Runs `work` on a thread inside this namespace.
    fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(&self.file, CloneFlags::CLONE_NEWNET).expect("enter the namespace");
                    work()
                })
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    fn listen(&self, address: SocketAddrV4) -> TcpListener {
        self.run(|| TcpListener::bind(address).expect("listen"))
    }

    fn connect(&self, address: SocketAddrV4, timeout: Duration) -> std::io::Result<TcpStream> {
        self.run(|| TcpStream::connect_timeout(&SocketAddr::V4(address), timeout))
    }
}

/// A node namespace with bridge `br0` and `count` containers attached as
/// 10.199.0.2, .3, … through host ends `vb0`, `vb1`, ….
struct Node {
    node: Netns,
    containers: Vec<Netns>,
}

fn container_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 199, 0, 2 + n as u8)
}

impl Node {
    fn new(count: usize) -> Node {
        let node = Netns::new();
        let containers: Vec<Netns> = (0..count).map(|_| Netns::new()).collect();
        node.run(|| {
            let rtnl = Rtnl::open().expect("rtnetlink");
            veth::setup_bridge(&rtnl, BRIDGE, GATEWAY, PREFIX, None).expect("set up the bridge");
            for (n, container) in containers.iter().enumerate() {
                veth::attach(&rtnl, &attach_plan(n, container)).expect("attach");
            }
        });
        Node { node, containers }
    }
}

fn attach_plan(n: usize, container: &Netns) -> Attach<'_> {
    Attach {
        bridge: BRIDGE.into(),
        host_ifname: format!("vb{n}"),
        netns: container.file.as_fd(),
        mac: container_mac(container_ip(n)),
        address: container_ip(n),
        prefix_len: PREFIX,
        gateway: GATEWAY,
        mtu: None,
    }
}

/// Accepts one connection (the client has connected already, so it is
/// queued), returns the peer's address and sends `reply`.
fn accept_and_reply(listener: &TcpListener, reply: &[u8]) -> Ipv4Addr {
    listener.set_nonblocking(true).expect("non-blocking");
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((mut stream, SocketAddr::V4(peer))) => {
                stream.set_nonblocking(false).expect("blocking");
                stream.write_all(reply).expect("reply");
                return *peer.ip();
            }
            Ok((_, peer)) => panic!("unexpected peer {peer}"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection arrived");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn read_reply(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .expect("read timeout");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read the reply");
    reply
}

#[test]
fn containers_reach_each_other_and_the_node_reaches_them() {
    if skip_unless_root("containers_reach_each_other_and_the_node_reaches_them") {
        return;
    }
    let topology = Node::new(2);
    let (c0, c1) = (&topology.containers[0], &topology.containers[1]);

    let (bridge, ports) = topology.node.run(|| {
        let rtnl = Rtnl::open().expect("rtnetlink");
        let bridge = rtnl.link(BRIDGE).expect("look up").expect("bridge exists");
        let ports: Vec<_> = ["vb0", "vb1"]
            .iter()
            .map(|name| rtnl.link(name).expect("look up").expect("host end exists"))
            .collect();
        (bridge, ports)
    });
    assert!(bridge.up, "bridge is up");
    for port in &ports {
        assert_eq!(
            port.master,
            Some(bridge.index),
            "{} is a port of br0",
            port.name
        );
        assert!(port.up, "{} is up", port.name);
    }
    let (eth0, lo, addresses) = c0.run(|| {
        let rtnl = Rtnl::open().expect("rtnetlink");
        let eth0 = rtnl.link("eth0").expect("look up").expect("eth0 exists");
        let lo = rtnl.link("lo").expect("look up").expect("lo exists");
        (
            eth0.clone(),
            lo,
            rtnl.addresses(eth0.index).expect("addresses"),
        )
    });
    assert!(eth0.up && lo.up, "eth0 and lo are up in the container");
    assert_eq!(addresses, [(container_ip(0), PREFIX)]);

    // Container to container, across the bridge.
    let listener = c1.listen(SocketAddrV4::new(container_ip(1), 7000));
    let mut client = c0
        .connect(SocketAddrV4::new(container_ip(1), 7000), CONNECT_TIMEOUT)
        .expect("container 0 reaches container 1");
    assert_eq!(accept_and_reply(&listener, b"c1"), container_ip(0));
    assert_eq!(read_reply(&mut client), "c1");

    // Node to container, from the bridge's address.
    let listener = c0.listen(SocketAddrV4::new(container_ip(0), 7001));
    let mut client = topology
        .node
        .connect(SocketAddrV4::new(container_ip(0), 7001), CONNECT_TIMEOUT)
        .expect("the node reaches container 0");
    assert_eq!(accept_and_reply(&listener, b"c0"), GATEWAY);
    assert_eq!(read_reply(&mut client), "c0");
}

/// A node with one container and an uplink to an "outside" namespace;
/// forwarding on in the node, no route to the container subnet outside.
struct Uplinked {
    node: Node,
    outside: Netns,
}

impl Uplinked {
    fn new() -> Uplinked {
        let node = Node::new(1);
        let outside = Netns::new();
        node.node.run(|| {
            let rtnl = Rtnl::open().expect("rtnetlink");
            rtnl.create_veth_into("up0", "up1", None, outside.file.as_fd())
                .expect("uplink veth");
            let up0 = rtnl.link("up0").expect("look up").expect("up0");
            rtnl.add_address(up0.index, NODE_UPLINK, 24)
                .expect("address");
            rtnl.set_up(up0.index).expect("up");
            // /proc/sys/net is the namespace of the thread that opens it.
            std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1").expect("forwarding on");
        });
        outside.run(|| {
            let rtnl = Rtnl::open().expect("rtnetlink");
            let up1 = rtnl.link("up1").expect("look up").expect("up1");
            rtnl.add_address(up1.index, OUTSIDE, 24).expect("address");
            rtnl.set_up(up1.index).expect("up");
            let lo = rtnl.link("lo").expect("look up").expect("lo");
            rtnl.set_up(lo.index).expect("lo up");
        });
        Uplinked { node, outside }
    }

    fn apply(&self, forwards: Vec<Forward>) {
        let ruleset = Ruleset {
            subnet: (Ipv4Addr::new(10, 199, 0, 0), PREFIX),
            bridge: BRIDGE.into(),
            forwards,
            // The container's port, which would be mute without its rules.
            ports: vec![Port {
                ifname: "vb0".into(),
                mac: container_mac(container_ip(0)),
                address: container_ip(0),
            }],
            port_prefix: "vb".into(),
        };
        self.node
            .node
            .run(|| nft::apply(&ruleset))
            .expect("apply the NAT table");
    }

    fn remove(&self) {
        self.node
            .node
            .run(nft::remove)
            .expect("remove the NAT table");
    }
}

/// `nft list table ip berth` in `ns`, if nft is installed: the kernel's
/// own account of what the batch installed.
fn nft_listing(ns: &Netns) -> Option<String> {
    nft_list(ns, "ip")
}

/// `nft list table FAMILY berth` in `ns`, if nft is installed.
fn nft_list(ns: &Netns, family: &str) -> Option<String> {
    ns.run(|| {
        match Command::new("nft")
            .args(["list", "table", family, "berth"])
            .output()
        {
            Ok(out) => {
                assert!(out.status.success(), "nft list: {out:?}");
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("run nft: {e}"),
        }
    })
}

#[test]
fn outbound_traffic_is_masqueraded_only_with_the_table() {
    if skip_unless_root("outbound_traffic_is_masqueraded_only_with_the_table") {
        return;
    }
    let net = Uplinked::new();
    let container = &net.node.containers[0];
    let listener = net.outside.listen(SocketAddrV4::new(OUTSIDE, 7100));

    net.apply(vec![]);
    let mut client = container
        .connect(SocketAddrV4::new(OUTSIDE, 7100), CONNECT_TIMEOUT)
        .expect("the container reaches the outside through NAT");
    assert_eq!(
        accept_and_reply(&listener, b"out"),
        NODE_UPLINK,
        "the outside sees the node's address"
    );
    assert_eq!(read_reply(&mut client), "out");

    // Without NAT the SYN leaves with 10.199.0.2, to which the outside has
    // no route: the handshake never completes.
    net.remove();
    let without = container.connect(SocketAddrV4::new(OUTSIDE, 7100), FAIL_TIMEOUT);
    assert!(without.is_err(), "no NAT, no connection: {without:?}");
    // Removing twice is fine: the table is deleted if present.
    net.remove();
}

#[test]
fn published_port_reaches_the_container() {
    if skip_unless_root("published_port_reaches_the_container") {
        return;
    }
    let net = Uplinked::new();
    let container = &net.node.containers[0];
    let server = container.listen(SocketAddrV4::new(container_ip(0), 80));
    let published = SocketAddrV4::new(NODE_UPLINK, 8080);
    net.apply(vec![
        Forward {
            proto: Proto::Tcp,
            host_port: 8080,
            addr: container_ip(0),
            port: 80,
        },
        Forward {
            proto: Proto::Udp,
            host_port: 5353,
            addr: container_ip(0),
            port: 53,
        },
    ]);

    if let Some(listing) = nft_listing(&net.node.node) {
        for line in [
            "type nat hook postrouting priority srcnat; policy accept;",
            "ip saddr 10.199.0.0/24 oifname != \"br0\" masquerade",
            "type nat hook prerouting priority dstnat; policy accept;",
            "iifname != \"br0\" tcp dport 8080 dnat to 10.199.0.2:80",
            "iifname != \"br0\" udp dport 5353 dnat to 10.199.0.2:53",
        ] {
            assert!(listing.contains(line), "missing {line:?} in:\n{listing}");
        }
    } else {
        eprintln!("nft is not installed: not comparing the kernel's listing");
    }

    let mut client = net
        .outside
        .connect(published, CONNECT_TIMEOUT)
        .expect("the outside reaches the published port");
    assert_eq!(
        accept_and_reply(&server, b"hello from the container"),
        OUTSIDE,
        "DNAT keeps the client's address"
    );
    assert_eq!(read_reply(&mut client), "hello from the container");

    // Replacing the table with no ports unpublishes it: the node itself
    // has nothing on 8080 and refuses.
    net.apply(vec![]);
    let refused = net.outside.connect(published, FAIL_TIMEOUT);
    assert!(refused.is_err(), "port no longer published: {refused:?}");
}

#[test]
fn detach_removes_the_pair_and_errors_name_their_object() {
    if skip_unless_root("detach_removes_the_pair_and_errors_name_their_object") {
        return;
    }
    let topology = Node::new(1);
    let container = &topology.containers[0];
    let spare = Netns::new();
    topology.node.run(|| {
        let rtnl = Rtnl::open().expect("rtnetlink");
        let bridge = rtnl.link(BRIDGE).expect("look up").expect("bridge");

        let again = rtnl
            .add_address(bridge.index, GATEWAY, PREFIX)
            .expect_err("the bridge has that address already");
        assert!(again.already_exists());
        // Newer kernels add their own text after the errno.
        let message = again.to_string();
        assert!(
            message.starts_with("add address 10.199.0.1/24 to br0: File exists (os error 17)"),
            "{message}"
        );
        let missing = rtnl.set_up(9999).expect_err("no such link");
        assert_eq!(
            missing.to_string(),
            "bring link #9999 up: No such device (os error 19)"
        );

        // Setting up the bridge again changes nothing.
        let index = veth::setup_bridge(&rtnl, BRIDGE, GATEWAY, PREFIX, None).expect("idempotent");
        assert_eq!(index, bridge.index);
        assert_eq!(
            rtnl.addresses(index).expect("addresses"),
            [(GATEWAY, PREFIX)]
        );

        // A failure inside the container's namespace: the pair is deleted
        // and the thread is back in the node's namespace.
        let plan = Attach {
            prefix_len: 33,
            ..attach_plan(5, &spare)
        };
        let failed = veth::attach(&rtnl, &plan).expect_err("invalid prefix");
        assert_eq!(
            failed.to_string(),
            "in the container's network namespace: add address 10.199.0.7/33 to eth0: \
             an IPv4 prefix length is at most 32"
        );
        assert!(rtnl.link("vb5").expect("look up").is_none(), "cleaned up");
        let here = Rtnl::open().expect("rtnetlink");
        assert!(
            here.link(BRIDGE).expect("look up").is_some(),
            "the thread is back in the node's namespace"
        );

        let no_bridge = Attach {
            bridge: "nobr".into(),
            ..attach_plan(6, &spare)
        };
        let e = veth::attach(&rtnl, &no_bridge).expect_err("no bridge");
        assert_eq!(e.to_string(), "there is no bridge nobr");
        let long_name = Attach {
            host_ifname: "a-name-too-long-for-linux".into(),
            ..attach_plan(6, &spare)
        };
        assert!(veth::attach(&rtnl, &long_name).is_err());

        assert!(veth::detach(&rtnl, "vb0").expect("detach"), "vb0 was there");
        assert!(rtnl.link("vb0").expect("look up").is_none(), "vb0 is gone");
        assert!(
            !veth::detach(&rtnl, "vb0").expect("detach again"),
            "already gone"
        );
    });
    // The container's end went with the host end.
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while container
        .run(|| {
            Rtnl::open()
                .expect("rtnetlink")
                .link("eth0")
                .expect("look up")
        })
        .is_some()
    {
        assert!(Instant::now() < deadline, "eth0 outlived its peer");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rtnl_renames_moves_and_routes() {
    if skip_unless_root("rtnl_renames_moves_and_routes") {
        return;
    }
    let here = Netns::new();
    let there = Netns::new();
    here.run(|| {
        let rtnl = Rtnl::open().expect("rtnetlink");
        rtnl.create_veth("r0", "r1").expect("veth");
        let r0 = rtnl.link("r0").expect("look up").expect("r0");
        let r1 = rtnl.link("r1").expect("look up").expect("r1");
        assert!(r0.mac.is_some(), "a veth has a MAC address");
        rtnl.set_mtu(r0.index, 1400).expect("mtu");
        rtnl.set_name(r0.index, "wan0").expect("rename");
        let wan0 = rtnl.link("wan0").expect("look up").expect("renamed");
        assert_eq!((wan0.index, wan0.mtu), (r0.index, 1400));
        rtnl.add_address(wan0.index, Ipv4Addr::new(198, 51, 100, 2), 24)
            .expect("address");
        rtnl.set_up(wan0.index).expect("up");
        rtnl.add_route(
            Ipv4Addr::new(203, 0, 113, 0),
            24,
            Some(Ipv4Addr::new(198, 51, 100, 1)),
            wan0.index,
        )
        .expect("route");
        let twice = rtnl
            .add_route(
                Ipv4Addr::new(203, 0, 113, 0),
                24,
                Some(Ipv4Addr::new(198, 51, 100, 1)),
                wan0.index,
            )
            .expect_err("route exists");
        let message = twice.to_string();
        assert!(
            message.starts_with(
                "add route 203.0.113.0/24 via 198.51.100.1 dev wan0: File exists (os error 17)"
            ),
            "{message}"
        );
        rtnl.del_route(
            Ipv4Addr::new(203, 0, 113, 0),
            24,
            Some(Ipv4Addr::new(198, 51, 100, 1)),
            wan0.index,
        )
        .expect("delete route");
        rtnl.del_address(wan0.index, Ipv4Addr::new(198, 51, 100, 2), 24)
            .expect("delete address");
        assert!(rtnl.addresses(wan0.index).expect("addresses").is_empty());
        rtnl.set_down(wan0.index).expect("down");
        assert!(!rtnl.link("wan0").expect("look up").expect("wan0").up);

        rtnl.set_netns_fd(r1.index, there.file.as_fd())
            .expect("move");
        assert!(rtnl.link("r1").expect("look up").is_none(), "r1 left");
        let bad = rtnl
            .create_bridge("wan0")
            .expect_err("wan0 is a veth, not a bridge");
        assert!(bad.to_string().starts_with("create bridge wan0: "), "{bad}");
    });
    let moved = there.run(|| {
        Rtnl::open()
            .expect("rtnetlink")
            .link("r1")
            .expect("look up")
    });
    assert!(moved.is_some(), "r1 arrived in the other namespace");
}

#[test]
fn monitor_reports_carrier_and_addresses() {
    if skip_unless_root("monitor_reports_carrier_and_addresses") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        let rtnl = Rtnl::open().expect("rtnetlink");
        // Present before the monitor: not reported.
        let lo = rtnl.link("lo").expect("look up").expect("lo");
        rtnl.set_up(lo.index).expect("lo up");
        let mut monitor = Monitor::open().expect("monitor");
        let mut seen: Vec<String> = Vec::new();

        rtnl.create_veth("m0", "m1").expect("veth");
        let m0 = rtnl.link("m0").expect("look up").expect("m0");
        let m1 = rtnl.link("m1").expect("look up").expect("m1");
        rtnl.set_up(m0.index).expect("up");
        rtnl.set_up(m1.index).expect("up");
        wait_for(&mut monitor, &mut seen, &["m0: link up", "m1: link up"]);

        rtnl.add_address(m0.index, Ipv4Addr::new(10, 199, 9, 1), 24)
            .expect("address");
        wait_for(
            &mut monitor,
            &mut seen,
            &["m0: address 10.199.9.1/24 added"],
        );

        // m1 down: m1 is down, and m0 loses its carrier.
        rtnl.set_down(m1.index).expect("down");
        wait_for(&mut monitor, &mut seen, &["m1: link down", "m0: link down"]);
        rtnl.del_address(m0.index, Ipv4Addr::new(10, 199, 9, 1), 24)
            .expect("delete address");
        wait_for(
            &mut monitor,
            &mut seen,
            &["m0: address 10.199.9.1/24 removed"],
        );

        assert!(
            !seen.iter().any(|line| line.starts_with("lo:")),
            "lo was up before the monitor: {seen:?}"
        );
        let ups = seen.iter().filter(|line| *line == "m0: link up").count();
        assert_eq!(ups, 1, "one transition, one line: {seen:?}");
    });
}

/// Polls the monitor until every line of `want` has been seen.
fn wait_for(monitor: &mut Monitor, seen: &mut Vec<String>, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !want.iter().all(|w| seen.iter().any(|s| s == w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "waited for {want:?}, saw {seen:?}");
        let mut fds = [PollFd::new(monitor.fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        poll(&mut fds, timeout).expect("poll");
        seen.extend(monitor.drain().iter().map(ToString::to_string));
    }
}

#[test]
fn a_large_table_is_one_batch() {
    if skip_unless_root("a_large_table_is_one_batch") {
        return;
    }
    let node = Netns::new();
    let forwards: Vec<Forward> = (0..2000u16)
        .map(|n| Forward {
            proto: if n % 2 == 0 { Proto::Tcp } else { Proto::Udp },
            host_port: 10000 + n,
            addr: container_ip(usize::from(n % 200)),
            port: 80,
        })
        .collect();
    let ruleset = Ruleset {
        subnet: (Ipv4Addr::new(10, 199, 0, 0), PREFIX),
        bridge: BRIDGE.into(),
        forwards,
        ports: vec![],
        port_prefix: "vb".into(),
    };
    let started = Instant::now();
    node.run(|| nft::apply(&ruleset))
        .expect("apply 2000 forwards");
    eprintln!("2000 forwards applied in {:?}", started.elapsed());
    if let Some(listing) = nft_listing(&node) {
        assert_eq!(listing.matches(" dnat to ").count(), 2000);
    }
}

// Layer 2: the bridge as PID 1 runs it (`BridgeNet`: the port's rules in
// place before its veth joins the bridge, the container's settings made
// inside its namespace), with an attacker and a victim container. The
// attacker is the test itself in the attacker's namespace with a packet
// socket (the test holds CAP_NET_RAW, which a default workload no longer
// does): what it sends is what a workload with raw sockets could send.
// Each test was seen to fail with the bridge rules and the settings
// turned off.

/// 10.199.0.0/24 again, in a namespace of its own.
const L2_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 0);
/// TEST-NET-like IPv6 prefix (2001:db8::/32, documentation) that the rogue
/// router advertisement offers.
const ROGUE_PREFIX: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0xb0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
/// How long a capture waits for frames that must not come.
const CAPTURE: Duration = Duration::from_millis(600);

/// A container of the layer-2 tests.
struct Member {
    ns: Netns,
    ip: Ipv4Addr,
    mac: [u8; 6],
}

/// A node whose bridge `br0` is run by `BridgeNet`, with two containers:
/// the attacker on `bv1` (10.199.0.2), the victim on `bv2` (10.199.0.3).
struct L2 {
    node: Netns,
    bridge: BridgeNet,
    attacker: Member,
    victim: Member,
    gateway_mac: [u8; 6],
}

impl L2 {
    fn new() -> L2 {
        let node = Netns::new();
        let mut bridge = BridgeNet::new(Bridge {
            name: BRIDGE.into(),
            subnet: Ipv4Cidr {
                address: L2_SUBNET,
                prefix_len: PREFIX,
            },
        });
        let mut member = |name: &str| {
            let ns = Netns::new();
            let ip = node
                .run(|| bridge.attach(name, &ns.file, &[]))
                .unwrap_or_else(|e| panic!("attach {name}: {e:?}"));
            Member {
                ns,
                ip,
                mac: container_mac(ip),
            }
        };
        let attacker = member("attacker");
        let victim = member("victim");
        // Read last: a bridge without a MAC of its own takes its ports'
        // lowest, so it may change as ports join.
        let gateway_mac = node.run(|| {
            let rtnl = Rtnl::open().expect("rtnetlink");
            let links = rtnl.links().expect("links");
            for port in ["bv1", "bv2"] {
                assert!(links.iter().any(|l| l.name == port), "{port} exists");
            }
            links
                .iter()
                .find(|l| l.name == BRIDGE)
                .and_then(|l| l.mac)
                .expect("the bridge's MAC")
        });
        L2 {
            node,
            bridge,
            attacker,
            victim,
            gateway_mac,
        }
    }

    /// One UDP exchange between the victim and the node, so each has the
    /// other in its neighbour table and the bridge knows where the
    /// victim's MAC lives.
    fn exchange(&self, port: u16) {
        let server = self.node.run(|| {
            let socket = UdpSocket::bind((GATEWAY, port)).expect("bind on the node");
            socket
                .set_read_timeout(Some(CONNECT_TIMEOUT))
                .expect("timeout");
            socket
        });
        let ip = self.victim.ip;
        let client = self.victim.ns.run(|| {
            let socket = UdpSocket::bind((ip, port)).expect("bind in the victim");
            socket
                .set_read_timeout(Some(CONNECT_TIMEOUT))
                .expect("timeout");
            socket
        });
        client.send_to(b"ping", (GATEWAY, port)).expect("send");
        let mut buf = [0u8; 16];
        let (_, from) = server
            .recv_from(&mut buf)
            .expect("the node hears the victim");
        server.send_to(b"pong", from).expect("reply");
        let (len, _) = client
            .recv_from(&mut buf)
            .expect("the victim hears the node");
        assert_eq!(&buf[..len], b"pong");
    }

    /// `ip link set dev PORT type bridge_slave ARGS` in the node.
    fn bridge_port(&self, port: &str, args: &[&str]) {
        let out = self.node.run(|| {
            Command::new("ip")
                .args(["link", "set", "dev", port, "type", "bridge_slave"])
                .args(args)
                .output()
                .expect("run ip (iproute2)")
        });
        assert!(out.status.success(), "ip link set {port}: {out:?}");
    }
}

/// A UDP socket in `ns` bound to `address:port`, with a read timeout.
fn udp_socket(ns: &Netns, address: Ipv4Addr, port: u16) -> UdpSocket {
    ns.run(|| {
        let socket = UdpSocket::bind((address, port)).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        socket
    })
}

/// Reads datagrams until `last` arrives or the deadline passes; every
/// (payload, source) seen.
fn datagrams_until(socket: &UdpSocket, last: &[u8]) -> Vec<(Vec<u8>, Ipv4Addr)> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline && !seen.iter().any(|(p, _)| p == last) {
        match socket.recv_from(&mut buf) {
            Ok((len, SocketAddr::V4(from))) => seen.push((buf[..len].to_vec(), *from.ip())),
            Ok((_, from)) => panic!("unexpected peer {from}"),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("receive: {e}"),
        }
    }
    seen
}

fn mac_text(mac: [u8; 6]) -> String {
    berth_config::network::format_mac(&mac)
}

#[test]
fn arp_claiming_another_address_is_dropped() {
    if skip_unless_root("arp_claiming_another_address_is_dropped") {
        return;
    }
    let l2 = L2::new();
    let (attacker, victim) = (&l2.attacker, &l2.victim);
    l2.exchange(7300);
    let victim_before = victim.ns.run(frames::arp_table);
    let node_before = l2.node.run(frames::arp_table);
    assert_eq!(victim_before.get(&GATEWAY), Some(&mac_text(l2.gateway_mac)));
    assert_eq!(node_before.get(&victim.ip), Some(&mac_text(victim.mac)));

    let sniffer = victim.ns.run(|| frames::Wire::open("eth0"));
    attacker.ns.run(|| {
        let wire = frames::Wire::open("eth0");
        // Gratuitous ARP (sender = target) claiming the gateway's address,
        // then the victim's: a neighbour that has an entry takes it over.
        for (claimed, marker) in [(GATEWAY, b"l2-arp-gw"), (victim.ip, b"l2-arp-vi")] {
            wire.send(&frames::gratuitous_arp(attacker.mac, claimed, marker));
        }
    });
    let seen = sniffer.capture(CAPTURE);
    for marker in [&b"l2-arp-gw"[..], b"l2-arp-vi"] {
        assert!(
            !seen.iter().any(|f| frames::contains(f, marker)),
            "the victim received the spoofed ARP {}",
            String::from_utf8_lossy(marker)
        );
    }
    let victim_after = victim.ns.run(frames::arp_table);
    let node_after = l2.node.run(frames::arp_table);
    assert_eq!(
        victim_after.get(&GATEWAY),
        victim_before.get(&GATEWAY),
        "the victim's entry for the gateway"
    );
    assert_eq!(
        node_after.get(&victim.ip),
        node_before.get(&victim.ip),
        "the gateway's entry for the victim"
    );
}

#[test]
fn ipv4_with_another_source_address_is_dropped() {
    if skip_unless_root("ipv4_with_another_source_address_is_dropped") {
        return;
    }
    let l2 = L2::new();
    let (attacker, victim) = (&l2.attacker, &l2.victim);
    let server = udp_socket(&l2.node, GATEWAY, 7400);
    attacker.ns.run(|| {
        let wire = frames::Wire::open("eth0");
        for (source, payload) in [(victim.ip, &b"spoofed"[..]), (attacker.ip, b"honest")] {
            wire.send(&frames::udp(
                attacker.mac,
                l2.gateway_mac,
                source,
                GATEWAY,
                7400,
                payload,
            ));
        }
    });
    let seen = datagrams_until(&server, b"honest");
    assert!(
        seen.contains(&(b"honest".to_vec(), attacker.ip)),
        "the attacker's own packet arrives: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(payload, _)| payload == b"spoofed"),
        "the node received a packet from {} sent by the attacker: {seen:?}",
        victim.ip
    );
}

#[test]
fn frames_with_another_containers_mac_are_dropped() {
    if skip_unless_root("frames_with_another_containers_mac_are_dropped") {
        return;
    }
    let l2 = L2::new();
    let (attacker, victim) = (&l2.attacker, &l2.victim);
    l2.exchange(7500);
    let inbox = udp_socket(&victim.ns, victim.ip, 7501);
    let victim_wire = victim.ns.run(|| frames::Wire::open("eth0"));
    let attacker_wire = attacker.ns.run(|| frames::Wire::open("eth0"));
    // The victim's MAC as source: the bridge would learn it on the
    // attacker's port and send the victim's traffic there.
    attacker_wire.send(&frames::udp(
        victim.mac,
        frames::BROADCAST,
        attacker.ip,
        Ipv4Addr::new(10, 199, 0, 255),
        7502,
        b"l2-mac-spoof",
    ));
    std::thread::sleep(Duration::from_millis(100));
    let sender = udp_socket(&l2.node, GATEWAY, 7501);
    sender
        .send_to(b"for the victim", (victim.ip, 7501))
        .expect("send to the victim");
    let got = datagrams_until(&inbox, b"for the victim");
    let to_attacker = attacker_wire.capture(CAPTURE);
    let to_victim = victim_wire.capture(Duration::ZERO);
    assert!(
        !to_victim
            .iter()
            .any(|f| frames::contains(f, b"l2-mac-spoof")),
        "the victim received a frame with its own MAC as source"
    );
    assert!(
        !to_attacker.iter().any(|f| frames::macs(f).0 == victim.mac),
        "the attacker received a frame for the victim's MAC"
    );
    assert!(
        got.contains(&(b"for the victim".to_vec(), GATEWAY)),
        "the victim's traffic still reaches the victim: {got:?}"
    );
}

#[test]
fn unicast_flooded_for_another_container_is_not_delivered_to_others() {
    if skip_unless_root("unicast_flooded_for_another_container_is_not_delivered_to_others") {
        return;
    }
    let l2 = L2::new();
    let (attacker, victim) = (&l2.attacker, &l2.victim);
    // The bridge never learns where the victim's MAC lives, so every
    // frame for it is flooded to all ports: what happens after its entry
    // aged out, or while the bridge's table is full.
    l2.bridge_port("bv2", &["learning", "off", "fdb_flush"]);
    l2.exchange(7600);
    let inbox = udp_socket(&victim.ns, victim.ip, 7601);
    let attacker_wire = attacker.ns.run(|| frames::Wire::open("eth0"));
    let sender = udp_socket(&l2.node, GATEWAY, 7601);
    for _ in 0..3 {
        sender
            .send_to(b"for the victim", (victim.ip, 7601))
            .expect("send to the victim");
    }
    let got = datagrams_until(&inbox, b"for the victim");
    assert!(
        got.contains(&(b"for the victim".to_vec(), GATEWAY)),
        "the victim gets its traffic: {got:?}"
    );
    let flooded: Vec<_> = attacker_wire
        .capture(CAPTURE)
        .into_iter()
        .filter(|f| frames::macs(f).0 == victim.mac)
        .collect();
    assert!(
        flooded.is_empty(),
        "the attacker received {} frame(s) for the victim's MAC",
        flooded.len()
    );
}

/// Whether an `ipv6_route` table holds a default route (`::/0`) through
/// a real interface (the kernel lists unreachable ones on `lo`).
fn has_default_route(routes: &str) -> bool {
    routes.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first() == Some(&"00000000000000000000000000000000")
            && fields.get(1) == Some(&"00")
            && fields.last() != Some(&"lo")
    })
}

#[test]
fn router_advertisements_from_a_container_are_ignored() {
    if skip_unless_root("router_advertisements_from_a_container_are_ignored") {
        return;
    }
    let l2 = L2::new();
    let (attacker, victim) = (&l2.attacker, &l2.victim);
    let sniffer = victim.ns.run(|| frames::Wire::open("eth0"));
    attacker.ns.run(|| {
        let wire = frames::Wire::open("eth0");
        for _ in 0..3 {
            wire.send(&frames::router_advertisement(attacker.mac, ROGUE_PREFIX));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let seen = sniffer.capture(Duration::from_millis(1000));
    assert!(
        !seen.iter().any(|f| frames::contains(f, &ROGUE_PREFIX[..6])),
        "the router advertisement reached the victim"
    );
    let rogue = "20010db800b0";
    for (who, ns) in [("victim", &victim.ns), ("node", &l2.node)] {
        let (addresses, routes) = ns.run(frames::ipv6_state);
        assert!(
            !addresses.contains(rogue),
            "the {who} took an address from the advertisement:\n{addresses}"
        );
        assert!(
            !routes.contains(rogue) && !has_default_route(&routes),
            "the {who} took a route from the advertisement:\n{routes}"
        );
    }
}

/// One ICMP echo to `to` over an ICMP datagram socket (icmp(7)), in the
/// calling thread's namespace. Creating one needs no capability, only a
/// group in `net.ipv4.ping_group_range` (CAP_NET_RAW plays no part, so the
/// test's own root privileges do not help it): this is what `ping` does
/// in a workload without CAP_NET_RAW.
fn echo(to: Ipv4Addr) -> Result<(), String> {
    use nix::sys::socket::{
        recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol,
        SockType, SockaddrIn,
    };
    use nix::sys::time::{TimeVal, TimeValLike};
    use std::os::fd::AsRawFd;

    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::empty(),
        SockProtocol::Icmp,
    )
    .map_err(|e| format!("open an ICMP echo socket: {e}"))?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::milliseconds(2000))
        .map_err(|e| format!("timeout: {e}"))?;
    // Type 8 (echo request); the kernel fills in the identifier and the
    // checksum.
    let request = [8, 0, 0, 0, 0, 0, 0, 1, b'b', b'e', b'r', b't', b'h'];
    let address = SockaddrIn::from(SocketAddrV4::new(to, 0));
    sendto(fd.as_raw_fd(), &request, &address, MsgFlags::empty())
        .map_err(|e| format!("send an echo request to {to}: {e}"))?;
    let mut reply = [0u8; 64];
    let len = recv(fd.as_raw_fd(), &mut reply, MsgFlags::empty())
        .map_err(|e| format!("no echo reply from {to}: {e}"))?;
    if len == request.len() && reply[0] == 0 && reply[8..len] == request[8..] {
        Ok(())
    } else {
        Err(format!("unexpected answer from {to}: {:?}", &reply[..len]))
    }
}

#[test]
fn containers_keep_talking_and_pinging_under_the_rules() {
    if skip_unless_root("containers_keep_talking_and_pinging_under_the_rules") {
        return;
    }
    let mut l2 = L2::new();
    for member in [&l2.attacker, &l2.victim] {
        let mac = member.ns.run(|| {
            Rtnl::open()
                .expect("rtnetlink")
                .link("eth0")
                .expect("look up")
                .and_then(|l| l.mac)
        });
        assert_eq!(mac, Some(member.mac), "eth0 has the MAC PID 1 chose");
    }
    if let Some(listing) = nft_list(&l2.node, "bridge") {
        for line in [
            "type filter hook prerouting priority filter; policy accept;",
            "iifname \"bv1\" jump port-bv1",
            "iifname \"bv2\" jump port-bv2",
            "iifname \"bv*\" drop",
            "ether saddr 02:42:0a:c7:00:02 arp htype 1 arp ptype ip arp hlen 6 arp plen 4 \
             arp saddr ether 02:42:0a:c7:00:02 arp saddr ip 10.199.0.2 accept",
            "ether saddr 02:42:0a:c7:00:03 ip saddr 10.199.0.3 accept",
            "type filter hook postrouting priority filter; policy accept;",
            "oifname \"bv2\" ether daddr != 02:42:0a:c7:00:03 ether daddr & 01:00:00:00:00:00 \
             == 00:00:00:00:00:00 drop",
        ] {
            assert!(listing.contains(line), "missing {line:?} in:\n{listing}");
        }
    } else {
        eprintln!("nft is not installed: not comparing the kernel's listing");
    }

    let (attacker, victim) = (&l2.attacker, &l2.victim);
    let listener = attacker.ns.listen(SocketAddrV4::new(attacker.ip, 7700));
    let mut client = victim
        .ns
        .connect(SocketAddrV4::new(attacker.ip, 7700), CONNECT_TIMEOUT)
        .expect("one container reaches the other");
    assert_eq!(accept_and_reply(&listener, b"hi"), victim.ip);
    assert_eq!(read_reply(&mut client), "hi");
    for to in [GATEWAY, attacker.ip] {
        victim
            .ns
            .run(|| echo(to))
            .unwrap_or_else(|e| panic!("ping from the victim: {e}"));
    }

    // Detaching takes the port's rules away with it.
    let node = &l2.node;
    let bridge = &mut l2.bridge;
    node.run(|| bridge.detach("attacker"));
    if let Some(listing) = nft_list(&l2.node, "bridge") {
        assert!(!listing.contains("bv1"), "bv1's rules are gone:\n{listing}");
        assert!(listing.contains("chain port-bv2"), "bv2's stay:\n{listing}");
    }
}
