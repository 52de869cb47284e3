//! A container's plan: its manifest entry resolved against its image, the
//! one description PID 1 runs the container by.
//!
//! The image builder knows both the manifest and the image's config; PID 1
//! should not have to dig facts out of either again. So the builder
//! writes, next to each bundle (`BUNDLES/NAME/plan.json`,
//! [`crate::layout::PLAN_FILE`]), a [`Plan`]: the manifest's [`Container`]
//! with the image's defaults applied, the user the process runs as, and
//! what the image's config said that the spec does not carry (its exposed
//! ports, its stop signal as written). PID 1 reads the plans at boot, in
//! the manifest's order, and never the bundle's `config.json`
//! annotations.
//!
//! Resolution, per field:
//!
//! | field | manifest | image | result |
//! | --- | --- | --- | --- |
//! | stop signal | other than SIGTERM | any | the manifest's |
//! | stop signal | SIGTERM (or unset) | StopSignal | the image's |
//! | stop signal | SIGTERM (or unset) | none, or one berth does not know | SIGTERM (the latter with a build warning) |
//! | user | `user` | any | the manifest's ids, no extra groups |
//! | user | unset | User | the image's, resolved through its files |
//! | user | unset | none | 0:0 |
//!
//! The user is taken from the runtime spec the builder made (so the two
//! cannot disagree); the stop signal is resolved here ([`stop_signal`]).
//!
//! JSON, kebab-case keys in declaration order, durations as
//! `{"secs", "nanos"}`, ports and image references in their manifest
//! spelling: the same manifest and image give the same bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::{Container, DEFAULT_STOP_SIGNAL};

/// One container, resolved: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Plan {
    /// The manifest's entry with the image's defaults applied; its
    /// `stop_signal` is the one PID 1 sends.
    pub container: Container,
    /// Who the container's process runs as.
    pub user: ProcessUser,
    /// What the image's config said, for a container made from an image.
    pub image: Option<ImageFacts>,
}

/// The ids a container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// The parts of an image's config that the runtime spec does not carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageFacts {
    /// ExposedPorts, sorted, with protocol (`80/tcp`): information only,
    /// nothing is published unless the manifest's `ports` says so.
    pub exposed_ports: Vec<String>,
    /// StopSignal as written (`SIGQUIT`), whether or not it was used.
    pub stop_signal: Option<String>,
}

/// Reading a plan at boot failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("container {name}: read its plan {}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {name}: its plan {} is not valid", path.display())]
    Parse {
        name: String,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("container {name}: its plan {} is for container {found}", path.display())]
    OtherContainer {
        name: String,
        path: PathBuf,
        found: String,
    },
}

impl Plan {
    /// The plan of `container`: `image` is what its image's config said
    /// (`None` for a `rootfs` folder), `user` who the runtime spec runs the
    /// process as. The warnings are for the build's report.
    pub fn resolve(
        container: &Container,
        image: Option<ImageFacts>,
        user: ProcessUser,
    ) -> (Plan, Vec<String>) {
        let mut warnings = Vec::new();
        let mut resolved = container.clone();
        let image_signal = image.as_ref().and_then(|i| i.stop_signal.as_deref());
        resolved.stop_signal = match stop_signal(container.stop_signal, image_signal) {
            Ok(n) => n,
            Err(e) => {
                warnings.push(format!(
                    "container {}: the image's StopSignal: {e}; stopping it with SIGTERM",
                    container.name
                ));
                DEFAULT_STOP_SIGNAL
            }
        };
        let plan = Plan {
            container: resolved,
            user,
            image,
        };
        (plan, warnings)
    }

    /// The plan as the file the image builder writes: pretty JSON and a
    /// final newline. Fails only for a path that is not UTF-8, which no
    /// manifest can name.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses a plan file's content.
    pub fn from_json(bytes: &[u8]) -> Result<Plan, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Reads the plan of the container called `name` from `path`; a plan
    /// of another container is an error too.
    pub fn from_file(name: &str, path: &Path) -> Result<Plan, PlanError> {
        let bytes = std::fs::read(path).map_err(|source| PlanError::Read {
            name: name.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let plan = Plan::from_json(&bytes).map_err(|source| PlanError::Parse {
            name: name.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        if plan.container.name != name {
            return Err(PlanError::OtherContainer {
                name: name.to_owned(),
                path: path.to_owned(),
                found: plan.container.name,
            });
        }
        Ok(plan)
    }
}

/// The signal that stops a container: the manifest's `stop-signal` when it
/// is other than SIGTERM, else the image's StopSignal if it has one, else
/// SIGTERM. An image signal berth does not know is an error (the caller
/// falls back to SIGTERM and says so).
pub fn stop_signal(manifest: i32, image: Option<&str>) -> Result<i32, String> {
    if manifest != DEFAULT_STOP_SIGNAL {
        return Ok(manifest);
    }
    match image {
        Some(text) => crate::manifest_lifecycle::parse_signal(text),
        None => Ok(DEFAULT_STOP_SIGNAL),
    }
}

#[cfg(test)]
mod tests;
