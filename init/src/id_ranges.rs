//! Each boot, the user-namespace id range of every `userns` container
//! comes from the table on STATE ([`berth_config::id_ranges`] decides,
//! [`layout::USERNS_TABLE`] keeps), not from its position in this image's
//! manifest, so a container keeps the owner of its volumes across images.
//!
//! A container whose range differs from the one its image was built with
//! runs from a copy of its bundle's `config.json` under
//! [`layout::RUN_BUNDLES`] with the id mappings replaced and the root
//! path made absolute (the rootfs stays in the image).

use std::path::{Path, PathBuf};

use berth_config::id_ranges::{assign, How, RangeTable};
use berth_config::{layout, Container, UserNamespace};
use libcontainer::oci_spec::runtime::{LinuxIdMappingBuilder, Spec};

/// Replaces the planned range of every `userns` container in `containers`
/// by the one it holds in the table, and records new holders there. A
/// table that cannot be read is left alone (and said so): the containers
/// then run with the ranges their image planned.
pub fn settle(containers: &mut [Container]) {
    let wanted: Vec<(String, UserNamespace)> = containers
        .iter()
        .filter_map(|c| c.userns.map(|ns| (c.name.clone(), ns)))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let path = Path::new(layout::USERNS_TABLE);
    let mut table = match std::fs::read_to_string(path) {
        Ok(text) => match RangeTable::parse(&text) {
            Ok(t) => t,
            Err(e) => return unusable(containers, path, &e.to_string()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RangeTable::default(),
        Err(e) => return unusable(containers, path, &e.to_string()),
    };
    let before = table.clone();
    let assigned = match assign(&mut table, &wanted, layout::USERNS_TABLE) {
        Ok(a) => a,
        Err(e) => return unusable(containers, path, &e.to_string()),
    };
    for a in &assigned {
        let range = ids(a.range);
        match a.how {
            How::Kept if a.range != a.planned => log::info!(
                "userns: {} keeps host ids {range} from {} (its image planned {})",
                a.name,
                path.display(),
                ids(a.planned)
            ),
            How::Kept => {}
            How::Planned => log::info!(
                "userns: {} holds host ids {range} from now on (recorded in {})",
                a.name,
                path.display()
            ),
            How::Moved => log::info!(
                "userns: {} gets host ids {range}: {}, which its image planned, belong to {}",
                a.name,
                ids(a.planned),
                holder(&before, a.planned.host_id)
            ),
        }
        if let Some(c) = containers.iter_mut().find(|c| c.name == a.name) {
            c.userns = Some(a.range);
        }
    }
    if table != before {
        if let Err(e) = crate::atomic_file::write(path, table.render().as_bytes(), 0o644) {
            log::error!(
                "userns: cannot record the ranges in {}: {e}; they hold for this boot only",
                path.display()
            );
        }
    }
}

/// The table cannot be used: it is left as it is, and this boot the
/// user-namespaced containers get ranges from the top of the id space,
/// which the table never hands out early, rather than their planned ones,
/// which the table may have given to others (whose volume files they
/// would then own).
fn unusable(containers: &mut [Container], path: &Path, why: &str) {
    let mut top = berth_config::id_ranges::top_ranges(containers.len()).into_iter();
    let mut moved = Vec::new();
    for c in containers.iter_mut().filter(|c| c.userns.is_some()) {
        c.userns = top.next();
        if let Some(ns) = c.userns {
            moved.push(format!("{} {}", c.name, ids(ns)));
        }
    }
    log::error!(
        "userns: {}: {why}; left as it is. This boot the user-namespaced containers run with \
         ranges nobody holds ({}): they will not own their volumes' files",
        path.display(),
        moved.join(", ")
    );
}

/// `first-last`.
fn ids(ns: UserNamespace) -> String {
    format!(
        "{}-{}",
        ns.host_id,
        u64::from(ns.host_id) + u64::from(ns.size) - 1
    )
}

/// Who holds `host_id` in `table`.
fn holder(table: &RangeTable, host_id: u32) -> String {
    table
        .ranges
        .iter()
        .find(|(_, &id)| id == host_id)
        .map_or_else(|| "another container".to_owned(), |(n, _)| n.clone())
}

/// The bundle container `name` runs from with `range`: its own when its
/// `config.json` maps exactly that range, else a copy of the spec with
/// the mappings replaced, written to `run_bundles/NAME` (in PID 1:
/// [`layout::RUN_BUNDLES`]).
pub fn bundle_for(
    bundle: &Path,
    run_bundles: &Path,
    name: &str,
    range: UserNamespace,
) -> Result<PathBuf, String> {
    let config = bundle.join("config.json");
    let mut spec = Spec::load(&config).map_err(|e| format!("read {}: {e}", config.display()))?;
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(range.host_id)
        .size(range.size)
        .build()
        .map_err(|e| format!("id mapping: {e}"))?;
    let Some(linux) = spec.linux_mut() else {
        return Err(format!("{}: no linux section", config.display()));
    };
    let maps = |m: &Option<Vec<_>>| m.as_deref() == Some(std::slice::from_ref(&map));
    if maps(linux.uid_mappings()) && maps(linux.gid_mappings()) {
        return Ok(bundle.to_owned());
    }
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    if let Some(root) = spec.root_mut() {
        if root.path().is_relative() {
            let absolute = bundle.join(root.path());
            root.set_path(absolute);
        }
    }
    let dir = run_bundles.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let out = dir.join("config.json");
    spec.save(&out)
        .map_err(|e| format!("write {}: {e}", out.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_table_gives_ranges_nobody_holds() {
        let mut containers = vec![
            Container::new("plain", "rootfs"),
            Container::new("keeper", "rootfs"),
        ];
        containers[1].userns = UserNamespace::for_index(1);
        unusable(
            &mut containers,
            Path::new("/t/userns.toml"),
            "not a range table",
        );
        assert_eq!(containers[0].userns, None);
        let top = berth_config::id_ranges::top_ranges(1);
        assert_eq!(containers[1].userns, top.first().copied());
    }

    #[test]
    fn a_bundle_built_with_another_range_is_copied_with_the_new_one() {
        let tmp = tempfile::tempdir().expect("ok");
        let bundle = tmp.path().join("web");
        std::fs::create_dir(&bundle).expect("ok");
        let planned = UserNamespace::for_index(1).expect("ok");
        let mut spec = Spec::default();
        let map = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(planned.host_id)
            .size(planned.size)
            .build()
            .expect("ok");
        if let Some(linux) = spec.linux_mut() {
            linux.set_uid_mappings(Some(vec![map]));
            linux.set_gid_mappings(Some(vec![map]));
        }
        spec.save(bundle.join("config.json")).expect("ok");
        let run = tmp.path().join("run");
        // The range it was built with: the bundle itself.
        assert_eq!(
            bundle_for(&bundle, &run, "web", planned).expect("ok"),
            bundle
        );
        assert!(!run.exists());
        // Another: a copy with both mappings replaced and the root made
        // absolute, so the rootfs is still the image's.
        let held = UserNamespace::for_index(0).expect("ok");
        let copy = bundle_for(&bundle, &run, "web", held).expect("ok");
        assert_eq!(copy, run.join("web"));
        let spec = Spec::load(copy.join("config.json")).expect("ok");
        let linux = spec.linux().as_ref().expect("ok");
        for maps in [linux.uid_mappings(), linux.gid_mappings()] {
            let maps = maps.as_ref().expect("ok");
            assert_eq!(maps.len(), 1);
            assert_eq!(
                (maps[0].container_id(), maps[0].host_id(), maps[0].size()),
                (0, 100_000, 65_536)
            );
        }
        assert_eq!(
            spec.root().as_ref().expect("ok").path(),
            &bundle.join("rootfs")
        );
    }
}
