//! Host tests of the bridge networking pieces of `berth::net`: the
//! rtnetlink handle (`rtnl`), veth attachment (`veth`) and the nftables NAT
//! table (`nft`), on the real kernel. Needs root; skips with a message
//! otherwise.
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
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::net::nft::{self, Forward, Port, Proto, Ruleset};
use berth::net::rtnl::{Monitor, Rtnl};
use berth::net::veth::{self, container_mac, Attach};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};

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
    ns.run(|| {
        match Command::new("nft")
            .args(["list", "table", "ip", "berth"])
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
