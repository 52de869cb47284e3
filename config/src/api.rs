//! The node's API over mutual TLS: the manifest's `[api]` table, and the
//! roles a client certificate carries (its subject's organisation, as
//! Talos has it) with the ops each allows.
//!
//! ```toml
//! [api]
//! listen = "0.0.0.0:7443"        # the default
//! ca = ["operators-ca.pem"]      # CAs whose client certificates the node accepts
//! revoked = ["5f3a09c1d2"]       # client certificate serials it refuses
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::{Table, Value};

use crate::toml_walk::{key_path, quote, Walker};

/// The port of the API unless `api.listen` names another.
pub const DEFAULT_PORT: u16 = 7443;

/// The `[api]` table: the API is on when the table is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// `api.listen`: where the node listens.
    pub listen: SocketAddr,
    /// `api.ca`: PEM files of the operator CAs, as written (relative to
    /// the manifest's folder); the image carries their certificates.
    pub ca: Vec<PathBuf>,
    /// `api.revoked`: serial numbers refused, normalised by
    /// [`normalize_serial`].
    pub revoked: Vec<String>,
    /// `api.certificate` and `api.key`: the node's certificate (signed
    /// by a fleet CA) and key, PEM files relative to the manifest's
    /// folder; without them the node makes its own on first boot.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// What a client certificate allows, from its subject's organisation
/// (`O=`): each role allows what the one before it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// status, logs, dmesg, boot-log.
    Reader,
    /// Also start, stop, restart and power.
    Operator,
    /// Also exec, reset and revoke.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reader, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The least role that may ask for `op` (an API op name); an op this
    /// table does not know is for admins only.
    pub fn needed_for(op: &str) -> Role {
        match op {
            "status" | "logs" | "dmesg" | "boot-log" => Role::Reader,
            "start" | "stop" | "restart" | "power" => Role::Operator,
            _ => Role::Admin,
        }
    }

    pub fn allows(self, op: &str) -> bool {
        self >= Role::needed_for(op)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A certificate serial number as berth writes it: lower-case hex without
/// leading zeros. Accepts `0x`, colons between bytes and upper case
/// (`openssl x509 -serial` prints `serial=5F3A…`).
pub fn normalize_serial(text: &str) -> Result<String, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{} is not a certificate serial number (hexadecimal, as `berth-image ca issue` prints it)",
            quote(text)
        ));
    }
    if hex.len() > 40 {
        return Err(format!(
            "{} is longer than a certificate serial number (20 bytes)",
            quote(text)
        ));
    }
    let trimmed = hex.trim_start_matches('0').to_ascii_lowercase();
    Ok(if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed
    })
}

/// The serial of a DER certificate's raw serial bytes, as
/// [`normalize_serial`] writes it.
pub fn serial_hex(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.to_owned()
    }
}

pub(crate) fn walk(path: &str, table: &Table, w: &mut Walker) -> Option<Api> {
    let mut listen = Some(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
    let mut ca = None;
    let mut revoked = Vec::new();
    let (mut certificate, mut key_file) = (None, None);
    for (key, value) in table {
        let path = key_path(path, key);
        match key.as_str() {
            "listen" => listen = listen_address(&path, value, w),
            "ca" => {
                let Some(list) = w.strings(&path, value) else {
                    continue;
                };
                if list.items.is_empty() {
                    w.error(
                        &path,
                        "names no CA certificate: no client could ever connect",
                    );
                }
                ca = Some(
                    list.items
                        .into_iter()
                        .map(|(_, p)| PathBuf::from(p))
                        .collect::<Vec<_>>(),
                );
            }
            "certificate" => certificate = w.string(&path, value).map(PathBuf::from),
            "key" => key_file = w.string(&path, value).map(PathBuf::from),
            "revoked" => {
                let Some(list) = w.strings(&path, value) else {
                    continue;
                };
                for (element, text) in list.items {
                    match normalize_serial(text) {
                        Ok(s) => revoked.push(s),
                        Err(e) => w.error(&element, e),
                    }
                }
            }
            _ => w.unknown_key(&path),
        }
    }
    if ca.is_none() {
        w.error(
            &key_path(path, "ca"),
            "missing: the PEM files of the operator CAs whose client certificates the node \
             accepts (`berth-image ca init` makes one)",
        );
    }
    let identity = match (certificate, key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            w.error(
                &key_path(path, "key"),
                "missing: api.certificate needs the node's private key beside it",
            );
            None
        }
        (None, Some(_)) => {
            w.error(
                &key_path(path, "certificate"),
                "missing: api.key needs the node's certificate beside it",
            );
            None
        }
    };
    Some(Api {
        listen: listen?,
        ca: ca?,
        revoked,
        identity,
    })
}

fn listen_address(path: &str, value: &Value, w: &mut Walker) -> Option<SocketAddr> {
    let text = w.string(path, value)?;
    match text.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Some(a),
        _ => {
            w.error(
                path,
                format!(
                    "{} is not an address and port (\"0.0.0.0:{DEFAULT_PORT}\", \"[::]:{DEFAULT_PORT}\")",
                    quote(text)
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_issue_says() {
        let table = [
            ("status", [true, true, true]),
            ("logs", [true, true, true]),
            ("dmesg", [true, true, true]),
            ("boot-log", [true, true, true]),
            ("start", [false, true, true]),
            ("stop", [false, true, true]),
            ("restart", [false, true, true]),
            ("power", [false, true, true]),
            ("exec", [false, false, true]),
            ("reset", [false, false, true]),
            ("revoke", [false, false, true]),
            ("some-future-op", [false, false, true]),
        ];
        for (op, want) in table {
            let got = Role::ALL.map(|r| r.allows(op));
            assert_eq!(got, want, "{op}");
        }
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn serials_are_normalised() {
        let ok = [
            ("5F3A", "5f3a"),
            ("0x005f3a", "5f3a"),
            ("00:5F:3A", "5f3a"),
            ("0", "0"),
            ("000", "0"),
        ];
        for (text, want) in ok {
            assert_eq!(normalize_serial(text).as_deref(), Ok(want), "{text}");
        }
        for bad in ["", "0x", "xyz", "12 34", &"1".repeat(41)] {
            assert!(normalize_serial(bad).is_err(), "{bad:?}");
        }
        assert_eq!(serial_hex(&[0, 0x5f, 0x3a]), "5f3a");
        assert_eq!(serial_hex(&[0]), "0");
    }
}
