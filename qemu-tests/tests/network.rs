//! Networking under QEMU's user-mode network (`restrict=on`; the host
//! reaches the guest only through `hostfwd` on 127.0.0.1): the node's
//! address by DHCP from QEMU and `network-online` ordering, a static
//! interface without the DHCP client, and bridge containers that talk to
//! each other by name and serve the host through a published port.

use std::time::Duration;

use qemu_tests::http::get_until;
use qemu_tests::vm::free_port;
use qemu_tests::{position, TestImage, Vm, BOOT};

/// A host container that prints the node's address, routes and name
/// servers once the network is online.
const PROBE: &str = r#"
[container.probe]
kind = "host"
rootfs = "@BUSYBOX@"
restart = "never"
after = ["network-online"]
command = ["/bin/sh", "-c", """
ip -4 addr show dev eth0 | sed 's/^/addr: /'
ip -4 route | sed 's/^/route: /'
sed 's/^/resolv: /' /etc/resolv.conf
echo probe done
"""]
"#;

/// Lines of `console` that contain `prefix`.
fn lines_with<'a>(console: &'a str, prefix: &str) -> Vec<&'a str> {
    console.lines().filter(|l| l.contains(prefix)).collect()
}

fn assert_address(console: &str) {
    let addr = lines_with(console, "probe | addr:");
    assert!(
        addr.iter().any(|l| l.contains("inet 10.0.2.15/24")),
        "no 10.0.2.15/24 on eth0: {addr:#?}"
    );
}

/// The default route and the name server of the static configuration
/// (QEMU's DHCP server leaves both out with `restrict=on`).
fn assert_route_and_dns(console: &str) {
    let routes = lines_with(console, "probe | route:");
    assert!(
        routes.iter().any(|l| l.contains("default via 10.0.2.2")),
        "no default route via 10.0.2.2: {routes:#?}"
    );
    let resolv = lines_with(console, "probe | resolv:");
    assert!(
        resolv.iter().any(|l| l.contains("nameserver 10.0.2.3")),
        "no name server 10.0.2.3: {resolv:#?}"
    );
}

#[test]
fn dhcp_from_qemu_then_network_online() {
    // No [network] table: DHCP on every Ethernet link.
    let image = TestImage::build("net-dhcp", PROBE);
    let mut vm = Vm::boot(&image);
    vm.wait_for("probe | probe done", BOOT);
    let console = vm.console();
    assert_address(&console);
    assert!(lines_with(&console, "probe | route:")
        .iter()
        .any(|l| l.contains("10.0.2.0/24 dev eth0")));
    assert!(console.contains("eth0: lease 10.0.2.15/24"));
    // The probe waited for network-online.
    let online = position(&console, "network online");
    assert!(online < position(&console, "started probe"));
    assert!(console.contains("DHCP started"), "DHCP client never ran");
}

#[test]
fn static_address_without_dhcp() {
    let manifest = format!(
        r#"
[network.interface.eth0]
addresses = ["10.0.2.15/24"]
gateway = "10.0.2.2"
dns = ["10.0.2.3"]

# On the node's network: reachable through the forward only if the static
# address is right.
[container.page]
kind = "host"
rootfs = "@BUSYBOX@"
init = true
command = ["/bin/sh", "-c", "mkdir -p /tmp/www && echo static node page > /tmp/www/index.html && exec httpd -f -p 8081 -h /tmp/www"]
{PROBE}"#
    );
    let image = TestImage::build("net-static", &manifest);
    let port = free_port();
    let mut vm = Vm::boot_forwarding(&image, "", &[(port, 8081)]);
    vm.wait_for("probe | probe done", BOOT);
    let console = vm.console();
    assert_address(&console);
    assert_route_and_dns(&console);
    assert!(console.contains("eth0: static 10.0.2.15/24, gateway 10.0.2.2"));
    assert!(
        !console.contains("DHCP"),
        "the DHCP client ran on a static interface"
    );
    get_until(port, "static node page", Duration::from_secs(30));
}

#[test]
fn bridge_containers_by_name_and_published_port() {
    let image = TestImage::build(
        "net-bridge",
        r#"
[container.web]
rootfs = "@BUSYBOX@"
init = true
ports = ["8080:80"]
command = ["/bin/sh", "-c", "mkdir -p /tmp/www && echo hello from web > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"]

[container.client]
rootfs = "@BUSYBOX@"
restart = "never"
after = ["web"]
command = ["/bin/sh", "-c", """
ip -4 addr show dev eth0 | grep inet | sed 's/^/addr: /'
ip -4 route | sed 's/^/route: /'
# busybox-static's wget crashes; nc resolves names through /etc/hosts.
n=0
until out=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 web 80) && [ -n "$out" ]; do
  n=$((n+1)); [ $n -gt 60 ] && break; sleep 0.5
done
echo "$out" | tail -n 1 | sed 's/^/got: /'
sed 's/^/hosts: /' /etc/hosts
echo client done
"""]
"#,
    );
    let port = free_port();
    let mut vm = Vm::boot_forwarding(&image, "", &[(port, 8080)]);
    vm.wait_for("client | client done", BOOT);
    let console = vm.console();
    // Each container has its own address on the bridge and its gateway.
    let addr = lines_with(&console, "client | addr:");
    assert!(
        addr.iter().any(|l| l.contains("inet 10.88.0.")),
        "client not on 10.88.0.0/24: {addr:#?}"
    );
    assert!(lines_with(&console, "client | route:")
        .iter()
        .any(|l| l.contains("default via 10.88.0.1")));
    // The client reached web by name over the bridge.
    assert!(
        console.contains("client | got: hello from web"),
        "client did not reach web by name"
    );
    let hosts = lines_with(&console, "client | hosts:");
    assert!(
        hosts
            .iter()
            .any(|l| l.ends_with("\tweb") || l.ends_with(" web")),
        "{hosts:#?}"
    );
    assert!(
        hosts
            .iter()
            .any(|l| l.ends_with("\tclient") || l.ends_with(" client")),
        "{hosts:#?}"
    );
    // The host reaches web through QEMU's forward to the published port.
    let body = get_until(port, "hello from web", Duration::from_secs(30));
    assert!(body.starts_with("HTTP/1."), "{body}");
}
