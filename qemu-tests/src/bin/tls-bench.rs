//! The remote API's cost, under QEMU (TCG). Prints figures; asserts
//! nothing.
//!
//! Boots a node with `[api]`, a workload and a host container, then, side
//! by side in one run:
//! - a `status` round trip over TLS from the host (a new connection each:
//!   TCP through QEMU's user network, TLS 1.3 handshake with the client
//!   certificate, the request, the answer), 100 times, and over the local
//!   control socket from the host container (`berth raw --repeat 100
//!   --times`), medians of 100 each;
//! - PID 1's RSS before the API is used, after the 100 TLS round trips,
//!   and while 200 connections that send nothing are open.
//!
//! Usage: cargo run --release -p qemu-tests --bin tls-bench

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_config::api::Role;
use berth_image::ca;
use qemu_tests::{TestImage, Vm};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

const MANIFEST: &str = r#"
[api]
ca = ["@CA@"]

[container.web]
rootfs = "@BUSYBOX@"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 3600 & wait; done"]

[container.admin]
kind = "host"
rootfs = "@BUSYBOX@"
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
command = ["/bin/sh", "-c", """
sleep 2
printf '{"version":1,"op":"status"}\\n' | berth raw --repeat 100 --times 2>&1 >/dev/null | sed 's/^/local: /'
while :; do berth status --json | sed 's/.*"pid1_rss_kib":\\([0-9]*\\).*/rss \\1/'; sleep 1; done
"""]
"#;

/// The bench checks nothing about the node's certificate: it measures.
#[derive(Debug)]
struct AnyNode(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyNode {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn pem(path: &std::path::Path, label: &str) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read pem");
    x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .filter_map(Result::ok)
        .find(|p| p.label == label)
        .map(|p| p.contents)
        .expect("pem item")
}

/// One status round trip over TLS; the answer's length.
fn round_trip(config: &Arc<rustls::ClientConfig>, port: u16) -> usize {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let conn =
        rustls::ClientConnection::new(config.clone(), ServerName::try_from("node").expect("name"))
            .expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"{\"version\":1,\"op\":\"status\"}\n")
        .expect("send");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    answer.len()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cas = tmp.path().join("ca");
    let ca_pem = ca::init(&cas).expect("ca");
    let me = ca::issue(&cas, Role::Reader, "bench", ca::DEFAULT_TTL).expect("issue");
    let image = TestImage::build(
        "tls-bench",
        &MANIFEST.replace("@CA@", &ca_pem.display().to_string()),
    );
    let port = qemu_tests::vm::free_port();
    let mut vm = Vm::boot_forwarding(&image, "", &[(port, berth_config::api::DEFAULT_PORT)]);
    vm.wait_for("api: listening on", Duration::from_secs(120));
    let local = vm.wait_for(
        "admin | local: berth raw: round trip median",
        Duration::from_secs(120),
    );
    let rss_before = vm.wait_for("admin | rss ", Duration::from_secs(60));

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("tls13")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyNode(provider)))
            .with_client_auth_cert(
                vec![CertificateDer::from(pem(&me.cert, "CERTIFICATE"))],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pem(&me.key, "PRIVATE KEY"))),
            )
            .expect("client config"),
    );
    let mut rtts = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let n = round_trip(&config, port);
        rtts.push(t.elapsed());
        assert!(n > 0, "no answer over TLS");
    }
    let seen = vm.console().matches("admin | rss ").count();
    let rss_after = vm.wait_for_count("admin | rss ", seen + 1, Duration::from_secs(30));

    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let seen = vm.console().matches("admin | rss ").count();
    let rss_idle = vm.wait_for_count("admin | rss ", seen + 1, Duration::from_secs(30));
    drop(idle);

    let tail = |line: &str| line.rsplit(" rss ").next().unwrap_or("?").trim().to_owned();
    let local_line = local
        .split("round trip ")
        .nth(1)
        .unwrap_or("?")
        .trim()
        .to_owned();
    let tls_median = median(rtts.clone());
    rtts.sort();
    println!("status round trip (median of 100, one connection each)");
    println!("  local socket, from a host container:  {local_line}");
    println!(
        "  TLS 1.3 with a client certificate, from the host through QEMU's user network:  median {} us, fastest {} us, slowest {} us",
        tls_median.as_micros(),
        rtts[0].as_micros(),
        rtts[rtts.len() - 1].as_micros()
    );
    println!("PID 1 RSS (KiB)");
    println!(
        "  listener idle, after boot:             {}",
        tail(&rss_before)
    );
    println!(
        "  after 100 TLS round trips:             {}",
        tail(&rss_after)
    );
    println!(
        "  200 connections open, sending nothing: {}",
        tail(&rss_idle)
    );
    vm.monitor("system_powerdown");
    let _ = vm.wait_exit(Duration::from_secs(60));
}
