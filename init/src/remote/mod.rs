//! The node's API over mutual TLS (the manifest's `[api]` table;
//! docs/api.md#remote-access). No async runtime: one thread accepts, and
//! each connection gets a thread of its own, at most [`MAX_CONNECTIONS`]
//! at once (more are closed at once), each bounded by the handshake and
//! request deadlines ([`conn`]). The requests themselves go to the local
//! control socket, so PID 1's loop serves remote and local clients the
//! same way and never waits on the network.
//!
//! The node's key is made on the first boot and kept on STATE
//! ([`identity`]); the operator CAs come from the image
//! ([`layout::API_CA_BUNDLE`]); revoked serials from the manifest and
//! from `berth revoke` (kept on STATE, [`layout::API_REVOKED`]), checked
//! at every handshake ([`verifier`]).

pub mod conn;
pub mod identity;
pub mod verifier;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use berth_config::api::{normalize_serial, Api};
use berth_config::layout;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use self::verifier::{Revoked, Verifier};

/// Remote connections served at once.
pub const MAX_CONNECTIONS: usize = 128;
/// A connection thread's stack: rustls and ring need little.
const STACK: usize = 256 * 1024;

/// What `berth status` says about the API.
static STATUS: Mutex<String> = Mutex::new(String::new());
/// The revoked serials, shared with every handshake.
static REVOKED: OnceLock<Revoked> = OnceLock::new();

fn revoked_set() -> &'static Revoked {
    REVOKED.get_or_init(|| Arc::new(RwLock::new(BTreeSet::new())))
}

/// `listening on …, node certificate …` or why not, for `berth status`;
/// `None` when the manifest has no `[api]`.
pub fn status() -> Option<String> {
    let s = STATUS.lock().map(|s| s.clone()).unwrap_or_default();
    (!s.is_empty()).then_some(s)
}

fn set_status(text: String) {
    if let Ok(mut s) = STATUS.lock() {
        *s = text;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("the node's identity")]
    Identity(#[from] identity::IdentityError),
    #[error("read the operator CAs {path}")]
    ReadCa {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operator CAs in {path}: {why}")]
    Ca { path: String, why: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Starts the API if the manifest asks for it; says on the console what
/// happened. Never fails the boot. `state_on_disk`: STATE is mounted
/// from its partition (else the node's key and run-time revocations
/// last one boot, and the console says so).
pub fn start(api: Option<&Api>, hostname: &str, state_on_disk: bool) {
    let Some(api) = api else {
        return;
    };
    if !state_on_disk {
        log::warn!(
            "api: STATE is in memory: a node key made now and serials revoked with `berth revoke` \
             last only until the next boot (name lasting revocations in the manifest's api.revoked)"
        );
    }
    match listen(api, hostname) {
        Ok(text) => {
            log::info!("api: {text}");
            set_status(text);
        }
        Err(e) => {
            let why = crate::fatal::chain(&e);
            log::error!("api: not started: {why}");
            set_status(format!("not started: {why}"));
        }
    }
}

fn listen(api: &Api, hostname: &str) -> Result<String, RemoteError> {
    let given = Path::new(layout::API_NODE_CERT);
    let (id, origin) = if given.exists() {
        let id = identity::load(given, Path::new(layout::API_NODE_KEY))?;
        let issuer = x509_parser::parse_x509_certificate(&id.cert)
            .map(|(_, c)| c.issuer().to_string())
            .unwrap_or_default();
        (id, format!(" (from the image, issued by {issuer})"))
    } else {
        let id = identity::load_or_make(Path::new(layout::API_DIR), hostname)?;
        let origin = if id.made { " (made this boot)" } else { "" };
        (id, origin.to_owned())
    };
    let mut revoked: BTreeSet<String> = api.revoked.iter().cloned().collect();
    revoked.extend(load_revoked(Path::new(layout::API_REVOKED)));
    let count = revoked.len();
    if let Ok(mut set) = revoked_set().write() {
        *set = revoked;
    }
    let config = server_config(&id, Path::new(layout::API_CA_BUNDLE))?;
    let listener = TcpListener::bind(api.listen).map_err(|source| RemoteError::Listen {
        addr: api.listen,
        source,
    })?;
    let config = Arc::new(config);
    std::thread::Builder::new()
        .name("berth-api".into())
        .spawn(move || accept_loop(&listener, &config))
        .map_err(|source| RemoteError::Listen {
            addr: api.listen,
            source,
        })?;
    Ok(format!(
        "listening on {} (TLS 1.3, client certificates from the operator CAs; {count} serial(s) revoked); node certificate SHA-256 {}{origin}",
        api.listen,
        id.fingerprint(),
    ))
}

fn server_config(
    id: &identity::Identity,
    ca_path: &Path,
) -> Result<rustls::ServerConfig, RemoteError> {
    let path = ca_path.display().to_string();
    let pem = std::fs::read(ca_path).map_err(|source| RemoteError::ReadCa {
        path: path.clone(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for found in x509_parser::pem::Pem::iter_from_buffer(&pem) {
        let p = found.map_err(|e| RemoteError::Ca {
            path: path.clone(),
            why: e.to_string(),
        })?;
        roots
            .add(CertificateDer::from(p.contents))
            .map_err(|e| RemoteError::Ca {
                path: path.clone(),
                why: e.to_string(),
            })?;
    }
    if roots.is_empty() {
        return Err(RemoteError::Ca {
            path,
            why: "no certificate".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| RemoteError::Ca {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let verifier = Arc::new(Verifier {
        inner,
        revoked: revoked_set().clone(),
    });
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(id.cert.clone())], key)?;
    // No resumption: a resumed session skips the client certificate, so
    // a revoked or expired one would keep its role.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

fn accept_loop(listener: &TcpListener, config: &Arc<rustls::ServerConfig>) {
    static ACTIVE: AtomicUsize = AtomicUsize::new(0);
    let mut quiet = Quiet::default();
    loop {
        let (tcp, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                quiet.say(format!("api: accept: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if ACTIVE.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            quiet.say(format!(
                "api: {MAX_CONNECTIONS} connections open; closed the one from {peer}"
            ));
            drop(tcp);
            continue;
        }
        ACTIVE.fetch_add(1, Ordering::AcqRel);
        let config = config.clone();
        let spawned = std::thread::Builder::new()
            .name("berth-api-conn".into())
            .stack_size(STACK)
            .spawn(move || {
                let log = |line: String| log::info!("{line}");
                if let Err(e) = conn::serve(tcp, config, &log) {
                    failures().say(format!("api: {peer}: {e}"));
                }
                ACTIVE.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            ACTIVE.fetch_sub(1, Ordering::AcqRel);
            quiet.say(format!("api: no thread for {peer}; closed"));
        }
    }
}

/// Failed connections are logged at most once a second (a scan or a
/// flood must not flood the console), the rest counted.
fn failures() -> std::sync::MutexGuard<'static, Quiet> {
    static FAILURES: Mutex<Quiet> = Mutex::new(Quiet {
        last: None,
        held: 0,
    });
    FAILURES.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Quiet {
    last: Option<Instant>,
    held: u64,
}

impl Quiet {
    fn say(&mut self, line: String) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.held += 1;
            return;
        }
        if self.held > 0 {
            log::warn!("{line} (and {} more like it not shown)", self.held);
        } else {
            log::warn!("{line}");
        }
        self.last = Some(now);
        self.held = 0;
    }
}

/// The serials `berth revoke` added on earlier boots: one per line.
fn load_revoked(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| normalize_serial(l).ok())
        .collect()
}

/// Whether `serial` (normalised) is revoked now.
pub fn is_revoked(serial: &str) -> bool {
    revoked_set()
        .read()
        .map(|set| set.contains(serial))
        .unwrap_or(true)
}

/// Refuses `serial` from the next handshake on, and keeps it on STATE.
pub fn revoke(serial: &str) -> Result<String, String> {
    let serial = normalize_serial(serial)?;
    let added = revoked_set()
        .write()
        .map(|mut set| set.insert(serial.clone()))
        .map_err(|_| "the revoked set is unusable".to_owned())?;
    if !added {
        return Ok(format!("serial {serial} was revoked already"));
    }
    let path = Path::new(layout::API_REVOKED);
    let kept = (|| -> std::io::Result<()> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        writeln!(f, "{serial}")?;
        f.sync_all()
    })();
    match kept {
        Ok(()) => Ok(format!(
            "serial {serial} revoked: refused from the next connection on (kept in {})",
            path.display()
        )),
        Err(e) => Ok(format!(
            "serial {serial} revoked until the next boot: cannot keep it in {}: {e}",
            path.display()
        )),
    }
}
