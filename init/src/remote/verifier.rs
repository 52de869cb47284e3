//! Client certificates: chained to an operator CA (rustls' WebPKI
//! verifier: signature, validity dates, client-auth use), and not
//! revoked — the revoked serials can change while the node runs (`berth
//! revoke`), so the check reads the shared set at each handshake. A
//! refusal becomes the TLS alert the client reads (`certificate_revoked`,
//! `certificate_expired`, `unknown_ca`).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Serials refused, as `berth_config::api::normalize_serial` writes them.
pub type Revoked = Arc<RwLock<BTreeSet<String>>>;

#[derive(Debug)]
pub struct Verifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub revoked: Revoked,
}

/// The serial of a DER certificate, normalised; `None` if it does not
/// parse (the inner verifier then refuses it).
pub fn serial_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(berth_config::api::serial_hex(cert.raw_serial()))
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let serial = serial_of(end_entity);
        let revoked = self
            .revoked
            .read()
            .map(|set| serial.is_some_and(|s| set.contains(&s)))
            // A poisoned lock: a writer panicked mid-update; refuse.
            .unwrap_or(true);
        if revoked {
            return Err(Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
