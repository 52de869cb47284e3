//! `berth-image ca`: the operators' certificate authority and the client
//! certificates it issues for the node's API (docs/api.md#certificates).
//!
//! `ca init DIR` makes `DIR/ca.pem` (the CA certificate, for the
//! manifest's `api.ca`) and `DIR/ca.key`; `ca issue DIR --role R --name N
//! [--ttl T]` makes `DIR/N.pem` and `DIR/N.key`: a client certificate
//! whose subject is `CN=N, O=R` (the role the node reads), valid from a
//! minute ago for T (24 hours unless given: short by default, and
//! printed), with a random 16-byte serial number (what revocation names).
//! Keys are ECDSA P-256, written mode 0600; nothing is overwritten.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_config::api::{serial_hex, Role};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

/// The CA's certificate and key in its folder.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
/// How long a CA is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A client certificate's lifetime unless `--ttl` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// A node certificate's lifetime unless `--ttl` says otherwise.
pub const DEFAULT_NODE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// The longest `--ttl`.
const MAX_TTL: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// Certificates start this long before they are made, so that a node
/// whose clock is a little behind accepts them.
const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{} exists already; remove it or choose another {what}", path.display())]
    Exists { path: PathBuf, what: &'static str },
    #[error("{step} {}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}")]
    Cert {
        step: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("{} and {} are not a CA made by `berth-image ca init`: {why}", cert.display(), key.display())]
    NotACa {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("the system has no source of random numbers for a serial number")]
    Random,
}

/// What `ca issue` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Makes a new CA in `dir` (created if missing).
pub fn init(dir: &Path) -> Result<PathBuf, CaError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    for path in [&cert_path, &key_path] {
        if path.exists() {
            return Err(CaError::Exists {
                path: path.clone(),
                what: "folder",
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let key = KeyPair::generate().map_err(cert_err("generate the CA key"))?;
    let mut params = CertificateParams::default();
    let serial = random_serial()?;
    // Its own name: a node looks for the issuer by name, and two CAs
    // with one name would look like a forged signature, not another CA.
    let id: String = serial_hex(serial.as_ref()).chars().take(8).collect();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("berth operators CA {id}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_LIFETIME;
    params.serial_number = Some(serial);
    let cert = params
        .self_signed(&key)
        .map_err(cert_err("sign the CA certificate"))?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(cert_path)
}

/// Issues a client certificate for `name` with `role`, valid for `ttl`.
pub fn issue(dir: &Path, role: Role, name: &str, ttl: Duration) -> Result<Issued, CaError> {
    let now = OffsetDateTime::now_utc();
    issue_between(dir, role, name, now - BACKDATE, now + ttl)
}

/// As [`issue`], valid from `not_before` to `not_after` (tests make
/// expired and not-yet-valid certificates with it).
pub fn issue_between(
    dir: &Path,
    role: Role,
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Issued, CaError> {
    sign(dir, name, Kind::Client(role), not_before, not_after)
}

fn sign(
    dir: &Path,
    name: &str,
    kind: Kind<'_>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Issued, CaError> {
    let (ca_cert_path, ca_key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let read = |p: &Path| std::fs::read_to_string(p).map_err(io("read", p));
    let (ca_pem, ca_key_pem) = (read(&ca_cert_path)?, read(&ca_key_path)?);
    let not_a_ca = |why: String| CaError::NotACa {
        cert: ca_cert_path.clone(),
        key: ca_key_path.clone(),
        why,
    };
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| not_a_ca(e.to_string()))?;
    let ca_params =
        CertificateParams::from_ca_cert_pem(&ca_pem).map_err(|e| not_a_ca(e.to_string()))?;
    // The issuer's name and key identifier, for the new certificate.
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| not_a_ca(e.to_string()))?;

    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    for path in [&cert_path, &key_path] {
        if path.exists() {
            return Err(CaError::Exists {
                path: path.clone(),
                what: "--name",
            });
        }
    }
    let key = KeyPair::generate().map_err(cert_err("generate the key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    match &kind {
        Kind::Client(role) => {
            dn.push(DnType::OrganizationName, role.as_str());
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        Kind::Node(ips) => {
            let name =
                rcgen::Ia5String::try_from(name.to_owned()).map_err(cert_err("the node's name"))?;
            params.subject_alt_names = std::iter::once(rcgen::SanType::DnsName(name))
                .chain(ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)))
                .collect();
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = not_before;
    params.not_after = not_after;
    let serial = random_serial()?;
    let serial_text = serial_hex(serial.as_ref());
    params.serial_number = Some(serial);
    let (not_before, not_after) = (params.not_before, params.not_after);
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(cert_err("sign the certificate"))?;
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(Issued {
        cert: cert_path,
        key: key_path,
        serial: serial_text,
        not_before,
        not_after,
    })
}

/// A node's certificate for `name` (and `ips`), signed by the CA in
/// `dir`: what a fleet CA vouches for, so operators' CLIs need not pin
/// (`api.certificate`, `api.key`). Valid for `ttl`.
pub fn issue_node(
    dir: &Path,
    name: &str,
    ips: &[std::net::IpAddr],
    ttl: Duration,
) -> Result<Issued, CaError> {
    let now = OffsetDateTime::now_utc();
    sign(dir, name, Kind::Node(ips), now - BACKDATE, now + ttl)
}

/// What a certificate is for.
enum Kind<'a> {
    Client(Role),
    Node(&'a [std::net::IpAddr]),
}

/// A positive 16-byte serial (the top bit clear, so DER needs no sign
/// byte and every tool prints the same digits).
fn random_serial() -> Result<SerialNumber, CaError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CaError::Random)?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x10;
    Ok(SerialNumber::from_slice(&bytes))
}

/// `30d`, `12h`, `90m`, `45s`: a lifetime for `--ttl`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("--ttl takes a number and a unit (s, m, h, d): 30d, 12h, 90m; got {text:?}");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    let ttl = Duration::from_secs(secs);
    if ttl < Duration::from_secs(60) {
        return Err(format!("--ttl {text} is shorter than a minute"));
    }
    if ttl > MAX_TTL {
        return Err(format!("--ttl {text} is longer than 5 years (1825d)"));
    }
    Ok(ttl)
}

/// `2026-12-03 18:40 UTC`.
pub fn show_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `24h`, `30d`, `90m`: a lifetime as `--ttl` would take it.
pub fn show_ttl(ttl: Duration) -> String {
    let s = ttl.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io("create", path))?;
    f.write_all(bytes).map_err(io("write", path))
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CaError {
    let path = path.to_owned();
    move |source| CaError::Io { step, path, source }
}

fn cert_err(step: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
    move |source| CaError::Cert { step, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_client_certificates_with_role_name_serial_and_lifetime() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("ca");
        let ca = init(&dir).expect("init");
        assert!(
            matches!(init(&dir), Err(CaError::Exists { .. })),
            "init twice"
        );
        let issued =
            issue(&dir, Role::Operator, "alice", Duration::from_secs(3600)).expect("issue");
        assert_eq!(issued.serial.len(), 32, "{}", issued.serial);
        let lifetime = issued.not_after - issued.not_before;
        assert_eq!(lifetime.whole_seconds(), 3660);
        let again = issue(&dir, Role::Reader, "alice", DEFAULT_TTL).expect_err("reissue");
        assert!(
            again
                .to_string()
                .contains("exists already; remove it or choose another --name"),
            "{again}"
        );

        // What the node will read: issuer, subject and role, the serial.
        let pem = std::fs::read(&issued.cert).expect("read");
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        let org: Vec<&str> = cert
            .subject()
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .collect();
        assert_eq!(org, ["operator"]);
        let cn: Vec<&str> = cert
            .subject()
            .iter_common_name()
            .filter_map(|o| o.as_str().ok())
            .collect();
        assert_eq!(cn, ["alice"]);
        assert_eq!(serial_hex(cert.raw_serial()), issued.serial);
        let ca_pem = std::fs::read(&ca).expect("read ca");
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(&ca_pem).expect("ca pem");
        let ca_cert = ca_pem.parse_x509().expect("ca x509");
        assert_eq!(cert.issuer(), ca_cert.subject());
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&issued.key)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_ttl("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "d", "30", "30w", "-1d", "1.5h", "30s", "2000d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
        assert_eq!(show_ttl(DEFAULT_TTL), "1d");
        assert_eq!(show_ttl(Duration::from_secs(5400)), "90m");
    }
}
