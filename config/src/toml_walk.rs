//! Helpers for walking a parsed TOML tree by hand: an error collector that
//! records each problem with its dotted path, typed accessors that report a
//! wrong type instead of failing, and TOML-style path rendering.
//!
//! Every accessor returns `None` (or skips the element) after recording the
//! error, so callers keep walking and the operator sees all problems at once.

use toml::{Table, Value};

use crate::manifest::{ConfigError, ManifestErrors};

/// Collects [`ConfigError`]s in the order the walk finds them, which is
/// document order because `toml` preserves key order.
#[derive(Debug, Default)]
pub(crate) struct Walker {
    errors: Vec<ConfigError>,
}

/// The string elements of an array, each with its own path.
#[derive(Debug)]
pub(crate) struct StrList<'v> {
    pub items: Vec<(String, &'v str)>,
    /// False when some element was not a string (already reported); checks
    /// that look at the list as a whole are then skipped to avoid noise.
    pub complete: bool,
}

impl StrList<'_> {
    /// An empty, complete list: what an absent key means.
    pub fn empty() -> Self {
        StrList {
            items: Vec::new(),
            complete: true,
        }
    }
}

impl Walker {
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    pub fn unknown_key(&mut self, path: &str) {
        self.error(path, "unknown key");
    }

    /// Records "expected X, found Y"; `expected` carries its article
    /// ("a string", "an array").
    pub fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.error(
            path,
            format!("expected {expected}, found {}", found.type_str()),
        );
    }

    pub fn table<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Table> {
        match value {
            Value::Table(t) => Some(t),
            other => {
                self.wrong_type(path, "a table", other);
                None
            }
        }
    }

    pub fn string<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    pub fn integer(&mut self, path: &str, value: &Value) -> Option<i64> {
        match value {
            Value::Integer(n) => Some(*n),
            other => {
                self.wrong_type(path, "an integer", other);
                None
            }
        }
    }

    pub fn boolean(&mut self, path: &str, value: &Value) -> Option<bool> {
        match value {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(path, "a boolean", other);
                None
            }
        }
    }

    /// An array of strings. Elements of another type are reported and
    /// left out; `None` means the value was not an array at all.
    pub fn strings<'v>(&mut self, path: &str, value: &'v Value) -> Option<StrList<'v>> {
        let Value::Array(array) = value else {
            self.wrong_type(path, "an array", value);
            return None;
        };
        let mut list = StrList {
            items: Vec::with_capacity(array.len()),
            complete: true,
        };
        for (i, element) in array.iter().enumerate() {
            let element_path = index_path(path, i);
            match self.string(&element_path, element) {
                Some(s) => list.items.push((element_path, s)),
                None => list.complete = false,
            }
        }
        Some(list)
    }

    /// Records an error unless `s` is free of NUL bytes, which can never
    /// reach the kernel inside a path, an argument or an environment value.
    pub fn no_nul(&mut self, path: &str, s: &str) -> bool {
        if s.contains('\0') {
            self.error(path, format!("{} contains a NUL byte", quote(s)));
            return false;
        }
        true
    }

    /// `Ok(value)` when nothing was recorded, otherwise every error.
    pub fn finish<T>(self, value: T) -> Result<T, ManifestErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ManifestErrors(self.errors))
        }
    }
}

/// `parent.key`, with `key` quoted the way TOML would need it
/// (`system.sysctl."net.ipv4.ip_forward"`).
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let is_bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if is_bare {
        key.to_owned()
    } else {
        toml_quote(key)
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`, 0-based like TOML arrays.
pub(crate) fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Characters of a value [`quote`] shows; the rest is summed up.
const QUOTE_MAX: usize = 60;

/// A user value inside a message, quoted with control characters escaped
/// so a stray newline or NUL stays visible. A value longer than
/// [`QUOTE_MAX`] characters is cut there and its size given
/// (`"aaa…" (5242880 bytes)`): a 5 MB mistake must not make a 5 MB error.
pub(crate) fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        None => format!("\"{}\"", s.escape_debug()),
        Some((cut, _)) => format!("\"{}…\" ({} bytes)", s[..cut].escape_debug(), s.len()),
    }
}

/// A TOML basic string, for keys in paths.
fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_bounded() {
        let a61 = "a".repeat(61);
        let e61 = "é".repeat(61);
        let huge = "x".repeat(5 << 20);
        let a60 = "a".repeat(60);
        let e60 = "é".repeat(60);
        let rows: [(&str, String); 7] = [
            ("", "\"\"".to_owned()),
            ("web", "\"web\"".to_owned()),
            ("a\nb", "\"a\\nb\"".to_owned()),
            (&a60, format!("\"{a60}\"")),
            (&a61, format!("\"{a60}…\" (61 bytes)")),
            // Characters, not bytes, are counted: no char is cut in two.
            (&e61, format!("\"{e60}…\" (122 bytes)")),
            (&huge, format!("\"{}…\" (5242880 bytes)", "x".repeat(60))),
        ];
        for (value, want) in rows {
            let got = quote(value);
            assert_eq!(got, want, "quote of {} bytes", value.len());
            assert!(got.len() <= 2 + 60 * 2 + 30, "{} bytes", got.len());
        }
    }

    #[test]
    fn a_huge_bad_value_is_not_quoted_whole() {
        let huge = "9".repeat(5 << 20);
        // (what, the manifest with VALUE standing for the huge value)
        let rows = [
            (
                "restart",
                "[container.web]\nrootfs = \"r\"\ncommand = [\"/x\"]\nrestart = \"VALUE\"\n",
            ),
            (
                "image",
                "[container.web]\nimage = \"VALUE\"\ncommand = [\"/x\"]\n",
            ),
            (
                "user",
                "[container.web]\nrootfs = \"r\"\ncommand = [\"/x\"]\nuser = \"VALUE\"\n",
            ),
            (
                "address",
                "[network.interface.eth0]\naddresses = [\"VALUE\"]\n",
            ),
            ("route", "[network.interface.eth0]\nroutes = [\"VALUE\"]\n"),
            ("mac", "[network.interface.eth0]\nmac = \"VALUE\"\n"),
        ];
        for (what, template) in rows {
            let text = template.replace("VALUE", &huge);
            let errors = crate::Manifest::parse(&text).expect_err(what).0;
            assert!(!errors.is_empty(), "{what}");
            for e in errors {
                assert!(
                    e.message.len() < 400 && e.message.contains("(5242880 bytes)"),
                    "{what}: {}",
                    e.message.get(..400).unwrap_or(&e.message)
                );
            }
        }
    }

    #[test]
    fn key_paths() {
        let cases = [
            ("", "system", "system"),
            ("container", "web", "container.web"),
            ("container", "web-1_a", "container.web-1_a"),
            (
                "system.sysctl",
                "net.ipv4.ip_forward",
                "system.sysctl.\"net.ipv4.ip_forward\"",
            ),
            ("container", "my app", "container.\"my app\""),
            ("container", "", "container.\"\""),
            ("x", "a\"b\\c", "x.\"a\\\"b\\\\c\""),
            ("x", "a/b", "x.\"a/b\""),
            ("x", "tab\there", "x.\"tab\\there\""),
            ("x", "nul\0", "x.\"nul\\u0000\""),
        ];
        for (parent, key, want) in cases {
            assert_eq!(key_path(parent, key), want, "key_path({parent:?}, {key:?})");
        }
    }
}
