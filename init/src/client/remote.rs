//! `berth --node NODE VERB …`: the same verbs over a node's API, TLS 1.3
//! with this operator's client certificate (docs/api.md#remote-access).
//!
//! NODE is a name from the current context of the config file or
//! `HOST[:PORT]` (port 7443 unless given). The config file is
//! `$BERTH_CONFIG`, else `$XDG_CONFIG_HOME/berth/config.toml`, else
//! `~/.config/berth/config.toml`:
//!
//! ```toml
//! current = "lab"
//! [context.lab]
//! cert = "alice.pem"          # relative to the config file's folder
//! key = "alice.key"
//! [context.lab.nodes]
//! web-1 = "192.0.2.10:7443"
//! ```
//!
//! The node's certificate is pinned on first contact: its SHA-256 goes to
//! `known_nodes` beside the config file, and a later change is refused
//! with both fingerprints. Failures are said in words a person acts on:
//! an expired or not-yet-valid certificate (with its dates and the local
//! clock), a CA the node does not trust, a revoked certificate, a changed
//! node certificate, a refused role.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConnection, DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;

use super::error::ClientError;

/// A connection to a node's API.
pub type TlsStream = rustls::StreamOwned<ClientConnection, TcpStream>;

const DEFAULT_PORT: u16 = 7443;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    current: Option<String>,
    #[serde(default)]
    context: BTreeMap<String, Context>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Context {
    cert: PathBuf,
    key: PathBuf,
    /// A fleet CA that signed the nodes' certificates: checked instead
    /// of pinning.
    ca: Option<PathBuf>,
    #[serde(default)]
    nodes: BTreeMap<String, String>,
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `web-1 (192.0.2.10:7443)` or `192.0.2.10:7443`, for messages.
    pub display: String,
    /// `HOST:PORT`.
    pub addr: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub known_nodes: PathBuf,
    /// The fleet CA, when the context names one.
    pub ca: Option<PathBuf>,
    /// The name the node's certificate must carry under a fleet CA: the
    /// context's name for it, else the host.
    pub server_name: String,
}

/// The config file's path.
fn config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("berth").join("config.toml")
}

/// Finds `node` in the config file's context (`context` or its `current`).
pub fn resolve(node: &str, context: Option<&str>) -> Result<Target, String> {
    let path = config_path();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "read the config file {}: {e} (it names your certificate and key; see docs/api.md#the-operators-config-file)",
            path.display()
        )
    })?;
    let config: Config =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let name = context
        .map(str::to_owned)
        .or(config.current.clone())
        .ok_or_else(|| {
            format!(
                "{}: no `current` context, and no --context given",
                path.display()
            )
        })?;
    let ctx = config.context.get(&name).ok_or_else(|| {
        format!(
            "{}: no context {name:?} (has: {})",
            path.display(),
            config
                .context
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (addr, display, server_name) = match ctx.nodes.get(node) {
        Some(a) => (
            with_port(a),
            format!("{node} ({})", with_port(a)),
            node.to_owned(),
        ),
        None => (with_port(node), with_port(node), host_of(&with_port(node))),
    };
    Ok(Target {
        display,
        addr,
        cert: dir.join(&ctx.cert),
        key: dir.join(&ctx.key),
        known_nodes: dir.join("known_nodes"),
        ca: ctx.ca.as_ref().map(|c| dir.join(c)),
        server_name,
    })
}

fn with_port(node: &str) -> String {
    let has_port = match node.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        node.to_owned()
    } else if node.contains(':') && !node.starts_with('[') {
        format!("[{node}]:{DEFAULT_PORT}")
    } else {
        format!("{node}:{DEFAULT_PORT}")
    }
}

fn host_of(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// A certificate's facts for messages.
#[derive(Debug, Clone, Default)]
struct CertFacts {
    issuer: String,
    serial: String,
    not_before: i64,
    not_after: i64,
}

fn pem_contents(path: &Path, label: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    for item in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let item = item.map_err(|e| format!("{}: not PEM: {e}", path.display()))?;
        if item.label == label {
            return Ok(item.contents);
        }
    }
    Err(format!("{} holds no {label}", path.display()))
}

fn facts(der: &[u8]) -> Option<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(CertFacts {
        issuer: cert.issuer().to_string(),
        serial: berth_config::api::serial_hex(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// `2026-12-03 18:40:00 UTC`.
fn show_time(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{unix} (seconds since 1970)"),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Pins the node's certificate: accepts the one `known_nodes` holds for
/// it, or any on first contact (recording what it saw either way).
#[derive(Debug)]
struct Pin {
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = crate::remote::identity::fingerprint(end_entity.as_ref());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(fp.clone());
        }
        match &self.expected {
            Some(want) if *want != fp => Err(rustls::Error::General("pin".into())),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The pinned fingerprint of `addr`, from `known_nodes` lines
/// `HOST:PORT FINGERPRINT`.
fn pinned(known: &Path, addr: &str) -> Option<String> {
    let text = std::fs::read_to_string(known).ok()?;
    text.lines().find_map(|l| {
        let (a, fp) = l.split_once(' ')?;
        (a == addr).then(|| fp.trim().to_owned())
    })
}

fn pin(known: &Path, addr: &str, fp: &str) -> std::io::Result<()> {
    if let Some(dir) = known.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(known)?;
    writeln!(f, "{addr} {fp}")
}

/// Checks nodes' certificates against the fleet CA in `ca` (and the
/// node's name), as a browser checks a web server's.
fn fleet_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let bytes =
        std::fs::read(ca).map_err(|e| format!("read the fleet CA {}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for item in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let item = item.map_err(|e| format!("{}: not PEM: {e}", ca.display()))?;
        roots
            .add(CertificateDer::from(item.contents))
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("the fleet CA {}: {e}", ca.display()))?;
    Ok(verifier)
}

/// An open connection and what is needed to explain its failures.
#[derive(Debug)]
pub struct Remote {
    pub stream: TlsStream,
    target: Target,
    mine: CertFacts,
    pin: Arc<Pin>,
    first_contact: bool,
}

fn tls_error(target: &Target, why: String) -> ClientError {
    ClientError::Remote {
        node: target.display.clone(),
        why,
    }
}

/// Connects to `target` and completes the handshake.
pub fn open(target: &Target, timeout: Duration) -> Result<Remote, ClientError> {
    let fail = |why: String| tls_error(target, why);
    let cert_der = pem_contents(&target.cert, "CERTIFICATE").map_err(&fail)?;
    let key_der = pem_contents(&target.key, "PRIVATE KEY").map_err(&fail)?;
    let mine = facts(&cert_der).ok_or_else(|| {
        fail(format!(
            "your certificate {} is not an X.509 certificate",
            target.cert.display()
        ))
    })?;
    let now = now_unix();
    if now < mine.not_before {
        return Err(fail(format!(
            "your certificate {} is not valid yet: valid from {} (this machine's clock says {})",
            target.cert.display(),
            show_time(mine.not_before),
            show_time(now)
        )));
    }
    if now > mine.not_after {
        return Err(fail(format!(
            "your certificate {} expired on {} (this machine's clock says {}); ask for a new one (berth-image ca issue)",
            target.cert.display(),
            show_time(mine.not_after),
            show_time(now)
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let expected = match target.ca {
        Some(_) => None,
        None => pinned(&target.known_nodes, &target.addr),
    };
    let first_contact = expected.is_none() && target.ca.is_none();
    let pin = Arc::new(Pin {
        expected,
        seen: Mutex::new(None),
        provider: provider.clone(),
    });
    let verifier: Arc<dyn ServerCertVerifier> = match &target.ca {
        None => pin.clone(),
        Some(ca) => fleet_verifier(ca, provider.clone()).map_err(&fail)?,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(
            vec![CertificateDer::from(cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        )
        .map_err(|e| fail(format!("your certificate and key: {e}")))?;
    let name = ServerName::try_from(target.server_name.clone())
        .map_err(|e| fail(format!("{}: {e}", target.server_name)))?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| fail(e.to_string()))?;
    let addr = target
        .addr
        .to_socket_addrs()
        .map_err(|e| fail(format!("resolve {}: {e}", target.addr)))?
        .next()
        .ok_or_else(|| fail(format!("{} resolves to no address", target.addr)))?;
    let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| {
        fail(format!(
            "cannot connect to {addr}: {e}{}",
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                " (is [api] in the node's manifest, and the port right?)"
            } else {
                ""
            }
        ))
    })?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(e.to_string()))?;
    let mut remote = Remote {
        stream: rustls::StreamOwned::new(conn, tcp),
        target: target.clone(),
        mine,
        pin,
        first_contact,
    };
    while remote.stream.conn.is_handshaking() {
        let TlsStream { conn, sock } = &mut remote.stream;
        if let Err(e) = conn.complete_io(sock) {
            return Err(remote.explain(&e));
        }
    }
    Ok(remote)
}

impl Remote {
    /// After the first answer: pins a node seen for the first time.
    pub fn answered(&mut self) {
        if !self.first_contact {
            return;
        }
        self.first_contact = false;
        let seen = self.pin.seen.lock().ok().and_then(|s| s.clone());
        if let Some(fp) = seen {
            match pin(&self.target.known_nodes, &self.target.addr, &fp) {
                Ok(()) => eprintln!(
                    "berth: first contact with {}: its certificate (SHA-256 {fp}) is now pinned in {}",
                    self.target.display,
                    self.target.known_nodes.display()
                ),
                Err(e) => eprintln!(
                    "berth: could not pin {} in {}: {e}",
                    self.target.display,
                    self.target.known_nodes.display()
                ),
            }
        }
    }

    /// The failure `e` (a read, write or handshake) in words.
    pub fn explain(&self, e: &std::io::Error) -> ClientError {
        let t = &self.target;
        let cert = t.cert.display();
        let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        let why = match tls {
            Some(rustls::Error::General(g)) if g == "pin" => {
                let seen = self.pin.seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
                format!(
                    "the node's certificate changed: {} pinned SHA-256 {}, the node now shows {seen}. \
                     A reinstalled node or a reset STATE makes a new one; so does someone in between. \
                     If it is expected, delete the line for {} from that file",
                    t.known_nodes.display(),
                    self.pin.expected.clone().unwrap_or_default(),
                    t.addr
                )
            }
            Some(rustls::Error::InvalidCertificate(c)) if t.ca.is_some() => {
                let ca = t.ca.as_deref().unwrap_or(Path::new("?")).display();
                match c {
                    rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => {
                        format!("the node's certificate is not signed by your fleet CA {ca}")
                    }
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. } => format!(
                        "the node's certificate is not for {} (the name your context gives it)",
                        t.server_name
                    ),
                    other => format!("the node's certificate does not check out against your fleet CA {ca}: {other:?}"),
                }
            }
            Some(rustls::Error::AlertReceived(alert)) => match alert {
                AlertDescription::CertificateExpired => format!(
                    "the node refused your certificate {cert} as expired or not yet valid: valid from {} to {}; \
                     this machine's clock says {} (is the node's clock right?)",
                    show_time(self.mine.not_before),
                    show_time(self.mine.not_after),
                    show_time(now_unix())
                ),
                AlertDescription::CertificateRevoked => format!(
                    "the node has revoked your certificate {cert} (serial {}); ask for a new one",
                    self.mine.serial
                ),
                // DecryptError: a CA of the same name signed it.
                AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::DecryptError => format!(
                    "the node does not trust the CA that issued your certificate {cert} (issuer {}): \
                     its manifest's api.ca names another",
                    self.mine.issuer
                ),
                AlertDescription::CertificateRequired => {
                    format!("the node wants a client certificate and got none ({cert})")
                }
                AlertDescription::ProtocolVersion => "the node speaks only TLS 1.3".into(),
                other => format!("the node ended the TLS handshake: {other:?}"),
            },
            Some(other) => format!("TLS: {other}"),
            None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                "the node closed the connection during the handshake (too many connections open?)".into()
            }
            None => e.to_string(),
        };
        tls_error(t, why)
    }

    pub fn display(&self) -> &str {
        &self.target.display
    }
}

impl Read for Remote {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Remote {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_get_the_default_port() {
        let cases = [
            ("web-1", "web-1:7443", "web-1"),
            ("10.0.0.5:9000", "10.0.0.5:9000", "10.0.0.5"),
            ("127.0.0.1", "127.0.0.1:7443", "127.0.0.1"),
            ("::1", "[::1]:7443", "::1"),
            ("[::1]:8443", "[::1]:8443", "::1"),
        ];
        for (node, addr, host) in cases {
            assert_eq!(with_port(node), addr, "{node}");
            assert_eq!(host_of(addr), host, "{addr}");
        }
    }

    #[test]
    fn contexts_name_nodes_and_certificates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = tmp.path().join("config.toml");
        std::fs::write(
            &config,
            "current = \"lab\"\n[context.lab]\ncert = \"a.pem\"\nkey = \"a.key\"\n[context.lab.nodes]\nweb-1 = \"127.0.0.1:17443\"\n",
        )
        .expect("write");
        // Only this test reads BERTH_CONFIG.
        std::env::set_var("BERTH_CONFIG", &config);
        let t = resolve("web-1", None).expect("resolve");
        assert_eq!(t.addr, "127.0.0.1:17443");
        assert_eq!(t.display, "web-1 (127.0.0.1:17443)");
        assert_eq!(t.cert, tmp.path().join("a.pem"));
        assert_eq!(t.known_nodes, tmp.path().join("known_nodes"));
        let other = resolve("10.1.1.1", None).expect("resolve");
        assert_eq!(other.addr, "10.1.1.1:7443");
        let err = resolve("web-1", Some("prod")).expect_err("no such context");
        assert!(err.contains("no context \"prod\" (has: lab)"), "{err}");
        std::env::remove_var("BERTH_CONFIG");
    }
}
