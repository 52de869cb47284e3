//! Whether anything in a manifest needs STATE (`/var/lib/berth`) before the
//! first container starts. When nothing does, PID 1 mounts STATE once the
//! boot's first launches have ended, so a node's first container does not
//! wait for the ext4 module and the mount; the image builder then leaves
//! ext4 out of the initramfs, which would otherwise load it early.

use std::path::{Path, PathBuf};

use crate::layout::disk::STATE_MOUNT;
use crate::Manifest;

/// The first reason `manifest` needs STATE mounted before any container
/// starts, or `None`. `resolve` turns a node path into the path it names
/// (symbolic links followed, where the image has them), so a mount of a
/// link into STATE counts too.
pub fn needed_before_containers(
    manifest: &Manifest,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Option<String> {
    if manifest.api.is_some() {
        return Some("the remote API keeps the node's identity on STATE".to_owned());
    }
    let state = Path::new(STATE_MOUNT);
    for c in &manifest.containers {
        if let Some(v) = c.volumes.first() {
            return Some(format!("container {} has volume {}", c.name, v.name));
        }
        if c.userns.is_some() {
            return Some(format!(
                "container {} keeps its user-namespace range on STATE",
                c.name
            ));
        }
        for m in &c.mounts {
            let source = Path::new(&m.source);
            let resolved = resolve(source);
            if [source, resolved.as_path()]
                .iter()
                .any(|p| p.starts_with(state) || state.starts_with(p))
            {
                return Some(format!("container {} mounts {}", c.name, m.source));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(toml: &str) -> Option<String> {
        let m = Manifest::parse(toml).unwrap_or_else(|e| panic!("{e}"));
        needed_before_containers(&m, &|p: &Path| p.to_owned())
    }

    const PLAIN: &str = r#"
[container.web]
rootfs = "/r"
command = ["/bin/true"]
[container.admin]
kind = "host"
rootfs = "/r"
command = ["/bin/true"]
mounts = ["/run/berth:/run/berth", "/usr/lib/berth/bin:/usr/local/bin:ro"]
"#;

    #[test]
    fn containers_without_state_do_not_need_it() {
        assert_eq!(reason(PLAIN), None);
        assert_eq!(reason(""), None);
    }

    #[test]
    fn volumes_userns_and_the_api_need_it() {
        let volume = format!("{PLAIN}volumes = [\"data:/data\"]\n");
        assert_eq!(
            reason(&volume).as_deref(),
            Some("container admin has volume data")
        );
        let userns = "[container.u]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\nuserns = true\n";
        assert_eq!(
            reason(userns).as_deref(),
            Some("container u keeps its user-namespace range on STATE")
        );
        let api = format!("[api]\nca = [\"ca.pem\"]\n{PLAIN}");
        assert_eq!(
            reason(&api).as_deref(),
            Some("the remote API keeps the node's identity on STATE")
        );
    }

    #[test]
    fn mounts_into_over_or_through_a_link_to_state_need_it() {
        for source in ["/var/lib/berth", "/var/lib/berth/logs", "/var", "/"] {
            let toml = format!(
                "[container.h]\nkind = \"host\"\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\nmounts = [\"{source}:/s\"]\n"
            );
            assert_eq!(
                reason(&toml),
                Some(format!("container h mounts {source}")),
                "{source}"
            );
        }
        let toml = "[container.h]\nkind = \"host\"\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\nmounts = [\"/srv/link:/s\"]\n";
        let m = Manifest::parse(toml).unwrap_or_else(|e| panic!("{e}"));
        let through_link = |p: &Path| {
            if p == Path::new("/srv/link") {
                PathBuf::from("/var/lib/berth/volumes")
            } else {
                p.to_owned()
            }
        };
        assert_eq!(
            needed_before_containers(&m, &through_link).as_deref(),
            Some("container h mounts /srv/link")
        );
        assert_eq!(needed_before_containers(&m, &|p: &Path| p.to_owned()), None);
        let beside = "[container.h]\nkind = \"host\"\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\nmounts = [\"/var/lib/berthx:/s\"]\n";
        assert_eq!(reason(beside), None);
    }
}
