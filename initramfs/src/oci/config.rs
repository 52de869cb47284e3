//! What an image's config says about running it, as plain data.
//!
//! Pure: [`ImageDefaults::from_config`] reads the config's `config`
//! object (absent fields become empty). `Env` entries are split at their
//! first `=` (an entry without one is a variable with an empty value);
//! exposed ports get the default protocol spelled out (`80` → `80/tcp`,
//! as the image spec defines) and are sorted, since the config stores
//! them as a map.

use oci_spec::image::ImageConfiguration;

/// Defaults for a container's process, from its image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// In the config's order.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// Raw: `name`, `uid`, `name:group`, `uid:gid`… (see
    /// [`super::resolve_user`]).
    pub user: Option<String>,
    /// Sorted, with protocol: `80/tcp`, `53/udp`.
    pub exposed_ports: Vec<String>,
    /// A signal name or number, as written (`SIGQUIT`).
    pub stop_signal: Option<String>,
}

impl ImageDefaults {
    pub fn from_config(config: &ImageConfiguration) -> ImageDefaults {
        let Some(c) = config.config() else {
            return ImageDefaults::default();
        };
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let mut exposed_ports: Vec<String> = c
            .exposed_ports()
            .iter()
            .flatten()
            .map(|p| {
                if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                }
            })
            .collect();
        exposed_ports.sort();
        exposed_ports.dedup();
        ImageDefaults {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().iter().flatten().map(|e| split_env(e)).collect(),
            workdir: non_empty(c.working_dir()),
            user: non_empty(c.user()),
            exposed_ports,
            stop_signal: non_empty(c.stop_signal()),
        }
    }
}

fn split_env(entry: &str) -> (String, String) {
    match entry.split_once('=') {
        Some((name, value)) => (name.to_owned(), value.to_owned()),
        None => (entry.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(config_json: serde_json::Value) -> ImageDefaults {
        let mut json = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": [] },
        });
        if !config_json.is_null() {
            json["config"] = config_json;
        }
        let config: ImageConfiguration = serde_json::from_value(json).expect("config");
        ImageDefaults::from_config(&config)
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_from_configs() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let rows: Vec<(serde_json::Value, ImageDefaults)> = vec![
            (serde_json::Value::Null, ImageDefaults::default()),
            (serde_json::json!({}), ImageDefaults::default()),
            (
                serde_json::json!({
                    "Entrypoint": ["/docker-entrypoint.sh"],
                    "Cmd": ["nginx", "-g", "daemon off;"],
                    "Env": ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.27", "EQ=a=b", "BARE"],
                    "WorkingDir": "/srv",
                    "User": "101:101",
                    "ExposedPorts": { "80/tcp": {}, "443": {}, "53/udp": {} },
                    "StopSignal": "SIGQUIT",
                }),
                ImageDefaults {
                    entrypoint: strings(&["/docker-entrypoint.sh"]),
                    cmd: strings(&["nginx", "-g", "daemon off;"]),
                    env: env(&[
                        ("PATH", "/usr/sbin:/usr/bin"),
                        ("NGINX_VERSION", "1.27"),
                        ("EQ", "a=b"),
                        ("BARE", ""),
                    ]),
                    workdir: Some("/srv".into()),
                    user: Some("101:101".into()),
                    exposed_ports: strings(&["443/tcp", "53/udp", "80/tcp"]),
                    stop_signal: Some("SIGQUIT".into()),
                },
            ),
            (
                // Docker writes nulls and empty strings for unset fields.
                serde_json::json!({
                    "Entrypoint": null, "Cmd": ["sh"], "WorkingDir": "", "User": "",
                    "ExposedPorts": null, "Env": null,
                }),
                ImageDefaults {
                    cmd: strings(&["sh"]),
                    ..ImageDefaults::default()
                },
            ),
        ];
        for (i, (json, want)) in rows.into_iter().enumerate() {
            assert_eq!(defaults(json), want, "row {i}");
        }
    }
}
