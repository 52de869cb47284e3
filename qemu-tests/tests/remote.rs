//! The node's API over mutual TLS, reached through a host forward on
//! 127.0.0.1 with the operator CLI (`berth --node`): the role matrix;
//! certificates that are expired, from another CA, revoked, or missing,
//! a TLS 1.2 client and plain-text garbage, each refused with its own
//! message; `logs -f` and `exec` over TLS; 200 idle connections while
//! the console and a local `berth status` keep answering; a serial revoked
//! over the API refused on the next connection; the node's certificate
//! the same after a reboot (its key is on STATE); a node certificate from
//! a fleet CA, checked instead of pinned. See docs/api.md.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_config::api::Role;
use berth_image::ca;
use qemu_tests::{TestImage, Vm, BOOT};

const MANIFEST: &str = r#"
[system]
hostname = "apinode"

[api]
ca = ["@CA@"]
revoked = ["@REVOKED@"]

[container.web]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"]

# A local client: `berth status` over the control socket, every second.
[container.local]
kind = "host"
rootfs = "@BUSYBOX@"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", "while true; do berth status >/dev/null && echo local status ok; sleep 1; done"]
"#;

/// The operator CLI with the test's config file.
struct Cli {
    berth: PathBuf,
    config: PathBuf,
}

impl Cli {
    fn run(&self, context: &str, args: &[&str]) -> Output {
        Command::new(&self.berth)
            .env("BERTH_CONFIG", &self.config)
            .arg("--context")
            .arg(context)
            .arg("--node")
            .arg("node")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// Runs and returns (exit code, stdout, stderr).
    fn text(&self, context: &str, args: &[&str]) -> (i32, String, String) {
        let out = self.run(context, args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The config file: one context per certificate, all naming the node.
fn write_config(dir: &Path, port: u16, contexts: &[(&str, &ca::Issued)]) -> PathBuf {
    let mut text = String::new();
    for (name, issued) in contexts {
        text.push_str(&format!(
            "[context.{name}]\ncert = \"{}\"\nkey = \"{}\"\n[context.{name}.nodes]\nnode = \"127.0.0.1:{port}\"\n\n",
            issued.cert.display(),
            issued.key.display()
        ));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// `openssl s_client` against the node with `args`; its output.
fn openssl(port: u16, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (apt-get install openssl)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_api_over_mutual_tls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cas = tmp.path().join("ca");
    let ca_pem = ca::init(&cas).expect("ca init");
    let issue = |role, name: &str| ca::issue(&cas, role, name, ca::DEFAULT_TTL).expect("issue");
    let rita = issue(Role::Reader, "rita");
    let otto = issue(Role::Operator, "otto");
    let ada = issue(Role::Admin, "ada");
    let gone = issue(Role::Admin, "gone");
    let now = time::OffsetDateTime::now_utc();
    let expired = ca::issue_between(
        &cas,
        Role::Admin,
        "old",
        now - time::Duration::days(2),
        now - time::Duration::days(1),
    )
    .expect("issue an expired one");
    let other = tmp.path().join("other");
    ca::init(&other).expect("another ca");
    let stranger = ca::issue(&other, Role::Admin, "stranger", ca::DEFAULT_TTL).expect("issue");

    let manifest = MANIFEST
        .replace("@CA@", &ca_pem.display().to_string())
        .replace("@REVOKED@", &gone.serial);
    let image = TestImage::build("remote", &manifest);
    let port = qemu_tests::vm::free_port();
    let config = write_config(
        tmp.path(),
        port,
        &[
            ("reader", &rita),
            ("operator", &otto),
            ("admin", &ada),
            ("revoked", &gone),
            ("expired", &expired),
            ("stranger", &stranger),
        ],
    );
    let cli = Cli {
        berth: berth_image::berth_binary::berth_binary().expect("the berth binary"),
        config,
    };
    let overlay = tmp.path().join("node.qcow2");
    image.overlay(&overlay, image.disk_bytes());
    let boot = || {
        let overlay = overlay.clone();
        Vm::boot_opts(&image, move |opts, _| {
            opts.hostfwd = vec![(port, berth_config::api::DEFAULT_PORT)];
            opts.writes = berth_image::qemu::Writes::Overlay(overlay);
        })
    };
    let mut vm = boot();
    let listening = vm.wait_for("api: listening on 0.0.0.0:7443", BOOT);
    assert!(listening.contains("(made this boot)"), "{listening}");
    let fingerprint = listening
        .split("node certificate SHA-256 ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("a fingerprint")
        .to_owned();
    vm.wait_for("web | tick 2", BOOT);

    // First contact pins the node; the reader sees the status.
    let (code, out, err) = cli.text("reader", &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("api: listening on 0.0.0.0:7443"), "{out}");
    assert!(err.contains("first contact with node (127.0.0.1:"), "{err}");
    assert!(
        err.contains(&fingerprint),
        "pinned another certificate: {err}"
    );

    role_matrix(&cli, &mut vm);

    refusals(&cli, &mut vm, port, &gone.serial, &expired);

    follow_over_tls(&cli);
    idle_connections(&cli, &mut vm, port);

    // Revoked at run time, over the API: refused on the next connection.
    let (code, out, err) = cli.text("admin", &["revoke", &otto.serial]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("revoked: refused from the next connection on"),
        "{out}"
    );
    let (code, _, err) = cli.text("operator", &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the node has revoked your certificate"),
        "{err}"
    );

    // The node's certificate outlives a reboot: the pinned CLI connects.
    let (code, out, err) = cli.text("operator", &["reboot"]);
    assert_eq!(code, 3, "otto is revoked: {out}{err}");
    let (code, out, err) = cli.text("admin", &["reboot"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(vm.wait_exit(BOOT).success());
    drop(vm);
    let mut vm = boot();
    let listening = vm.wait_for("api: listening on 0.0.0.0:7443", BOOT);
    assert!(!listening.contains("made this boot"), "{listening}");
    assert!(listening.contains(&fingerprint), "{listening}");
    assert!(listening.contains("2 serial(s) revoked"), "{listening}");
    let (code, out, err) = cli.text("reader", &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("first contact"), "{err}");
    vm.monitor("system_powerdown");
    vm.wait_exit(BOOT);
}

fn role_matrix(cli: &Cli, vm: &mut Vm) {
    // The role matrix.
    let refused = |context: &str, args: &[&str], want: &str| {
        let (code, out, err) = cli.text(context, args);
        assert_eq!(code, 1, "{context} {args:?}: {out}{err}");
        assert!(err.contains(want), "{context} {args:?}: {err}");
    };
    refused(
        "reader",
        &["restart", "web"],
        "forbidden: rita (reader) may not restart: restart needs the operator role",
    );
    refused(
        "reader",
        &["exec", "web", "--", "id"],
        "forbidden: rita (reader) may not exec: exec needs the admin role",
    );
    refused(
        "operator",
        &["exec", "web", "--", "id"],
        "forbidden: otto (operator) may not exec: exec needs the admin role",
    );
    let (code, out, err) = cli.text("operator", &["restart", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cli.text("admin", &["exec", "web", "--", "echo", "hello over tls"]);
    assert_eq!((code, out.trim()), (0, "hello over tls"), "{err}");
    let console = vm.console();
    assert!(
        console.contains("api: otto (operator) from 10.0.2.2:"),
        "no log of otto"
    );
    assert!(console.contains(": restart web"));
    assert!(console.contains("api: ada (admin) from 10.0.2.2:"));
}

fn refusals(cli: &Cli, vm: &mut Vm, port: u16, revoked_serial: &str, expired: &ca::Issued) {
    // Certificates the node refuses, each with its own message.
    let (code, _, err) = cli.text("expired", &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("expired on") && err.contains("this machine's clock says"),
        "{err}"
    );
    let (code, _, err) = cli.text("stranger", &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the node does not trust the CA that issued your certificate"),
        "{err}"
    );
    let (code, _, err) = cli.text("revoked", &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the node has revoked your certificate") && err.contains(revoked_serial),
        "{err}"
    );

    // No certificate, TLS 1.2, plain text: the node says why on its
    // console (one failure a second at most, so one at a time).
    let wait_line = |vm: &mut Vm, want: &str| {
        vm.wait_for(want, Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(1100));
    };
    std::thread::sleep(Duration::from_millis(1100));
    let said = openssl(port, &["-tls1_3"]);
    assert!(said.contains("CONNECTED"), "{said}");
    wait_line(vm, "handshake refused: the client sent no certificate");
    // The CLI refuses an expired certificate before connecting; another
    // client that sends one is refused by the node.
    let (cert, key) = (
        expired.cert.display().to_string(),
        expired.key.display().to_string(),
    );
    openssl(port, &["-tls1_3", "-cert", &cert, "-key", &key]);
    wait_line(
        vm,
        "handshake refused: the client's certificate has expired",
    );
    let said = openssl(port, &["-tls1_2"]);
    assert!(
        said.contains("alert protocol version")
            || said.contains("no protocols available")
            || said.contains("wrong version"),
        "{said}"
    );
    wait_line(vm, "handshake refused: the client does not speak TLS 1.3");
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    wait_line(vm, "handshake refused: the client does not speak TLS");
}

fn follow_over_tls(cli: &Cli) {
    // logs -f over TLS: two new lines arrive.
    let mut follow = Command::new(&cli.berth)
        .env("BERTH_CONFIG", &cli.config)
        .args([
            "--context",
            "reader",
            "--node",
            "node",
            "logs",
            "-f",
            "-n",
            "0",
            "web",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("logs -f");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    for _ in 0..2 {
        let line = lines.next().expect("a line").expect("read");
        assert!(line.contains("tick "), "{line}");
    }
    let _ = follow.kill();
    let _ = follow.wait();
}

fn idle_connections(cli: &Cli, vm: &mut Vm, port: u16) {
    // 200 connections that send nothing: the console and a local client
    // keep going; once the handshake deadline dropped them, the API
    // answers again.
    let before = vm.console().matches("local | local status ok").count();
    let ticks = vm.console().matches("web | tick ").count();
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() >= 150, "only {} connections opened", idle.len());
    let t = Instant::now();
    vm.wait_for_count(
        "local | local status ok",
        before + 4,
        Duration::from_secs(30),
    );
    vm.wait_for_count("web | tick ", ticks + 4, Duration::from_secs(30));
    assert!(t.elapsed() < Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(12));
    let (code, out, err) = cli.text("reader", &["status"]);
    assert_eq!(code, 0, "after the idle connections: {out}{err}");
    drop(idle);
}

/// A node whose certificate a fleet CA signed (`api.certificate`,
/// `api.key`): a context naming that CA checks it, with no pinning; a
/// context naming another CA refuses it, saying so.
#[test]
fn a_fleet_ca_vouches_for_the_node() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ops = tmp.path().join("ops");
    let ops_ca = ca::init(&ops).expect("ops ca");
    let rita = ca::issue(&ops, Role::Reader, "rita", ca::DEFAULT_TTL).expect("issue");
    let fleet = tmp.path().join("fleet");
    let fleet_ca = ca::init(&fleet).expect("fleet ca");
    let node = ca::issue_node(&fleet, "node", &[], ca::DEFAULT_NODE_TTL).expect("node cert");
    let manifest = format!(
        "[api]\nca = [\"{}\"]\ncertificate = \"{}\"\nkey = \"{}\"\n\n[container.web]\nrootfs = \"@BUSYBOX@\"\ncommand = [\"/bin/sh\", \"-c\", \"echo web up; sleep 3600\"]\n",
        ops_ca.display(),
        node.cert.display(),
        node.key.display()
    );
    let image = TestImage::build("remote-fleet", &manifest);
    let port = qemu_tests::vm::free_port();
    let config = tmp.path().join("config.toml");
    let context = |name: &str, ca: &Path| {
        format!(
            "[context.{name}]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n[context.{name}.nodes]\nnode = \"127.0.0.1:{port}\"\n\n",
            rita.cert.display(),
            rita.key.display(),
            ca.display()
        )
    };
    std::fs::write(
        &config,
        context("fleet", &fleet_ca) + &context("wrong", &ops_ca),
    )
    .expect("write the config");
    let cli = Cli {
        berth: berth_image::berth_binary::berth_binary().expect("the berth binary"),
        config,
    };
    let mut vm = Vm::boot_forwarding(&image, "", &[(port, berth_config::api::DEFAULT_PORT)]);
    let listening = vm.wait_for("api: listening on 0.0.0.0:7443", BOOT);
    assert!(
        listening.contains("(from the image, issued by CN=berth operators CA "),
        "{listening}"
    );
    vm.wait_for("web | web up", BOOT);
    let (code, out, err) = cli.text("fleet", &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !err.contains("first contact"),
        "pinned under a fleet CA: {err}"
    );
    assert!(!tmp.path().join("known_nodes").exists());
    let (code, _, err) = cli.text("wrong", &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the node's certificate is not signed by your fleet CA"),
        "{err}"
    );
    vm.monitor("system_powerdown");
    vm.wait_exit(BOOT);
}
