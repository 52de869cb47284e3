//! Turns manifest text into a [`Manifest`], collecting every error.
//!
//! The text is first parsed into a plain `toml::Table` (only a TOML syntax
//! error stops here, as there is no tree to walk). The tree is then walked
//! by hand: each known key is checked for its type and value, each unknown
//! key is reported, and walking continues after every problem. Because the
//! `toml` crate keeps keys in document order (`preserve_order`), errors come
//! out in document order too, grouped by the table they belong to.

use toml::{Table, Value};

use crate::manifest::{ConfigError, Manifest, ManifestErrors};
use crate::manifest_container;
use crate::manifest_deps;
use crate::manifest_network;
use crate::manifest_system;
use crate::toml_walk::{key_path, Walker};

/// The only manifest format version this crate understands.
const VERSION: i64 = 1;

pub(crate) fn parse(text: &str) -> Result<Manifest, ManifestErrors> {
    let root: Table = match toml::from_str(text) {
        Ok(root) => root,
        Err(e) => return Err(ManifestErrors(vec![syntax_error(text, &e)])),
    };
    let mut w = Walker::default();
    let mut manifest = Manifest::default();
    for (key, value) in &root {
        let path = key_path("", key);
        match key.as_str() {
            "version" => check_version(&path, value, &mut w),
            "system" => {
                if let Some(table) = w.table(&path, value) {
                    manifest.system = manifest_system::walk(&path, table, &mut w);
                }
            }
            "network" => {
                if let Some(table) = w.table(&path, value) {
                    manifest.network = manifest_network::walk(&path, table, &mut w);
                }
            }
            "api" => {
                if let Some(table) = w.table(&path, value) {
                    manifest.api = crate::api::walk(&path, table, &mut w);
                }
            }
            "container" => manifest.containers = manifest_container::walk_all(&path, value, &mut w),
            _ => w.unknown_key(&path),
        }
    }
    // Checks across containers come last: they need every name.
    manifest_deps::check_graph(&manifest.containers, &mut w);
    manifest_network::check_containers(&manifest.containers, &mut w);
    w.finish(manifest)
}

fn check_version(path: &str, value: &Value, w: &mut Walker) {
    match value {
        Value::Integer(VERSION) => {}
        Value::Integer(other) => w.error(
            path,
            format!("unsupported version {other} (expected {VERSION})"),
        ),
        other => w.wrong_type(path, "an integer", other),
    }
}

/// One error naming the line and column where `toml` gave up.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    // toml's Display adds a multi-line source excerpt and its message may
    // span lines ("invalid table header\nexpected `.`, `]`"); the report
    // keeps one error per line.
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let message = match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError {
        path: String::new(),
        message,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_columns() {
        let cases = [
            ("abc", 0, (1, 1)),
            ("abc", 2, (1, 3)),
            ("a\nbc", 2, (2, 1)),
            ("a\nbc", 3, (2, 2)),
            ("é\nx", 3, (2, 1)),
            ("éa", 2, (1, 2)),
            ("abc", 99, (1, 4)),
        ];
        for (text, offset, want) in cases {
            assert_eq!(
                line_column(text, offset),
                want,
                "line_column({text:?}, {offset})"
            );
        }
    }
}
