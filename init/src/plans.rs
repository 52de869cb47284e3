//! The containers PID 1 supervises, read from their plans
//! ([`berth_config::plan`]): the image builder resolved each manifest entry
//! against its image and wrote the result next to the bundle, so PID 1
//! looks nothing up in the bundles' `config.json`.
//!
//! Every plan is read, in the manifest's order, and every failure is kept:
//! the caller reports them all at once (see [`crate::stage1`] for what the
//! node then does).

use std::path::Path;

use berth_config::layout;
use berth_config::plan::{Plan, PlanError};
use berth_config::Container;

/// The resolved containers named by `names`, in that order, from
/// `bundles/NAME/plan.json`; or every plan that could not be read.
pub fn load<'a>(
    names: impl IntoIterator<Item = &'a str>,
    bundles: &Path,
) -> Result<Vec<Container>, Vec<PlanError>> {
    let mut containers = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let path = bundles.join(name).join(layout::PLAN_FILE);
        match Plan::from_file(name, &path) {
            Ok(plan) => containers.push(plan.container),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(containers)
    } else {
        Err(errors)
    }
}

/// Whether `e` is the root image failing to give a plan's bytes (EIO: on
/// a verified root, a block dm-verity rejected) rather than a plan that is
/// missing or malformed.
pub fn is_read_failure(e: &PlanError) -> bool {
    matches!(e, PlanError::Read { source, .. } if source.raw_os_error() == Some(libc::EIO))
}

#[cfg(test)]
mod tests {
    use berth_config::plan::ProcessUser;

    use super::*;
    use crate::fatal::chain;

    fn write_plan(bundles: &Path, dir: &str, c: &Container) {
        let plan = Plan::resolve(c, None, ProcessUser::default()).0;
        std::fs::create_dir_all(bundles.join(dir)).expect("mkdir");
        let path = bundles.join(dir).join(layout::PLAN_FILE);
        std::fs::write(path, plan.to_json().expect("json")).expect("write");
    }

    #[test]
    fn loads_in_the_given_order() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = Container {
            stop_signal: 3,
            ..Container::new("a", "rootfs")
        };
        let b = Container::new("b", "rootfs");
        write_plan(tmp.path(), "a", &a);
        write_plan(tmp.path(), "b", &b);
        let got = load(["b", "a"], tmp.path()).expect("plans");
        assert_eq!(got, [b, a]);
    }

    #[test]
    fn every_bad_plan_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        write_plan(tmp.path(), "good", &Container::new("good", "rootfs"));
        // A plan of another container in web's folder.
        write_plan(tmp.path(), "web", &Container::new("good", "rootfs"));
        std::fs::create_dir(tmp.path().join("junk")).expect("mkdir");
        std::fs::write(tmp.path().join("junk/plan.json"), b"{").expect("write");
        let errors = load(["good", "web", "junk", "gone"], tmp.path()).expect_err("bad plans");
        let p = |name: &str| {
            tmp.path()
                .join(name)
                .join("plan.json")
                .display()
                .to_string()
        };
        let got: Vec<String> = errors.iter().map(|e| chain(e)).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            format!("container web: its plan {} is for container good", p("web"))
        );
        assert!(
            got[1].starts_with(&format!(
                "container junk: its plan {} is not valid: ",
                p("junk")
            )),
            "{}",
            got[1]
        );
        assert_eq!(
            got[2],
            format!(
                "container gone: read its plan {}: No such file or directory (os error 2)",
                p("gone")
            )
        );
        assert!(errors.iter().all(|e| !is_read_failure(e)));
    }
}
