//! The node's own TLS identity: a key and a self-signed certificate made
//! on the first boot with the API on, kept on STATE
//! (`/var/lib/berth/api/node.key`, `node.pem`) so that it outlives
//! reboots and updates; clients pin its SHA-256 fingerprint. Its validity
//! spans 1975 to 4096 (rcgen's default): a node's clock at first boot may
//! be anything, and the pin, not the dates, is what clients check.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The node's certificate and key, DER.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: Vec<u8>,
    /// PKCS#8.
    pub key: Vec<u8>,
    /// Whether this boot made it.
    pub made: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{step} {}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("make the node's key and certificate: {0}")]
    Make(String),
    #[error("{} holds no usable {what}", path.display())]
    Unusable { path: PathBuf, what: &'static str },
}

impl Identity {
    /// `ab:cd:…`, the SHA-256 of the certificate, as clients pin it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }
}

/// The SHA-256 of a DER certificate, lower-case hex bytes joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The identity kept in `dir`, or a new one made (and kept) there.
pub fn load_or_make(dir: &Path, hostname: &str) -> Result<Identity, IdentityError> {
    let (cert_path, key_path) = (dir.join("node.pem"), dir.join("node.key"));
    if cert_path.exists() && key_path.exists() {
        return load(&cert_path, &key_path);
    }
    let key = rcgen::KeyPair::generate().map_err(|e| IdentityError::Make(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![hostname.to_owned()])
        .map_err(|e| IdentityError::Make(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, hostname);
    dn.push(rcgen::DnType::OrganizationName, "berth node");
    params.distinguished_name = dn;
    let cert = params
        .self_signed(&key)
        .map_err(|e| IdentityError::Make(e.to_string()))?;
    let io = |step, path: &Path| {
        let path = path.to_owned();
        move |source| IdentityError::Io { step, path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))?;
    crate::atomic_file::write(&key_path, key.serialize_pem().as_bytes(), 0o600)
        .map_err(io("write", &key_path))?;
    crate::atomic_file::write(&cert_path, cert.pem().as_bytes(), 0o644)
        .map_err(io("write", &cert_path))?;
    Ok(Identity {
        cert: cert.der().to_vec(),
        key: key.serialize_der(),
        made: true,
    })
}

/// The certificate and key at these paths (the image's, when the
/// manifest gives them).
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Identity, IdentityError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| IdentityError::Io {
            step: "read",
            path: p.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let cert = x509_parser::pem::parse_x509_pem(&cert_pem)
        .ok()
        .filter(|(_, p)| p.label == "CERTIFICATE")
        .map(|(_, p)| p.contents)
        .ok_or(IdentityError::Unusable {
            path: cert_path.to_owned(),
            what: "certificate",
        })?;
    let key = x509_parser::pem::parse_x509_pem(&key_pem)
        .ok()
        .filter(|(_, p)| p.label == "PRIVATE KEY")
        .map(|(_, p)| p.contents)
        .ok_or(IdentityError::Unusable {
            path: key_path.to_owned(),
            what: "PKCS#8 private key",
        })?;
    Ok(Identity {
        cert,
        key,
        made: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("api");
        let first = load_or_make(&dir, "spine").expect("make");
        assert!(first.made);
        let again = load_or_make(&dir, "spine").expect("load");
        assert!(!again.made);
        assert_eq!(first.cert, again.cert);
        assert_eq!(first.key, again.key);
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("node.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.join("node.pem"), "junk").expect("write");
        let err = load_or_make(&dir, "spine").expect_err("junk");
        assert!(
            err.to_string().contains("holds no usable certificate"),
            "{err}"
        );
    }
}
