//! The confinement part of the spec, as tables: what a workload, a host
//! container and a privileged host container get.

use std::path::Path;

use berth_config::{MilliCpus, User};
use oci_spec::runtime::Capability;

use super::*;

fn container(kind: Kind) -> Container {
    Container {
        kind,
        command: vec!["/bin/app".into()],
        ..Container::new("app", "rootfs")
    }
}

fn mount<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_deref()?
        .iter()
        .find(|m| m.destination() == Path::new(destination))
}

fn options(spec: &Spec, destination: &str) -> Vec<String> {
    mount(spec, destination)
        .and_then(|m| m.options().clone())
        .unwrap_or_default()
}

struct Want {
    caps: usize,
    seccomp: bool,
    no_new_privs: bool,
    masked: bool,
    sys_ro: bool,
    node_dev: bool,
    pids: Option<i64>,
}

#[test]
fn confinement_by_kind() {
    let privileged = Container {
        privileged: true,
        ..container(Kind::Host)
    };
    let host_with_caps = Container {
        capabilities: vec!["CAP_NET_ADMIN".into(), "CAP_SYS_TIME".into()],
        ..container(Kind::Host)
    };
    let rows = [
        (
            "workload",
            container(Kind::Workload),
            Want {
                caps: 13,
                seccomp: true,
                no_new_privs: true,
                masked: true,
                sys_ro: true,
                node_dev: false,
                pids: Some(1024),
            },
        ),
        (
            "host",
            container(Kind::Host),
            Want {
                caps: 13,
                seccomp: true,
                no_new_privs: true,
                masked: true,
                sys_ro: true,
                node_dev: false,
                pids: None,
            },
        ),
        (
            "host with capabilities",
            host_with_caps,
            Want {
                caps: 15,
                seccomp: true,
                no_new_privs: true,
                masked: true,
                sys_ro: true,
                node_dev: false,
                pids: None,
            },
        ),
        (
            "privileged",
            privileged,
            Want {
                caps: 41,
                seccomp: false,
                no_new_privs: false,
                masked: false,
                sys_ro: false,
                node_dev: true,
                pids: None,
            },
        ),
    ];
    for (row, c, want) in rows {
        check_confinement(row, &c, &want);
    }
}

/// Asserts the confinement of `c`'s spec is `want`.
fn check_confinement(row: &str, c: &Container, want: &Want) {
    let spec = build_spec(c).expect("spec");
    let process = spec.process().as_ref().expect("process");
    let caps = process.capabilities().as_ref().expect("capabilities");
    let bounding = caps.bounding().clone().unwrap_or_default();
    assert_eq!(bounding.len(), want.caps, "{row}: capabilities");
    assert_eq!(caps.effective().as_ref(), Some(&bounding), "{row}");
    assert_eq!(caps.permitted().as_ref(), Some(&bounding), "{row}");
    assert!(
        caps.inheritable().as_ref().is_some_and(|s| s.is_empty()),
        "{row}"
    );
    assert!(
        caps.ambient().as_ref().is_some_and(|s| s.is_empty()),
        "{row}"
    );
    assert_eq!(
        process.no_new_privileges(),
        Some(want.no_new_privs),
        "{row}"
    );
    let linux = spec.linux().as_ref().expect("linux");
    assert_eq!(linux.seccomp().is_some(), want.seccomp, "{row}: seccomp");
    let masked = linux.masked_paths().clone().unwrap_or_default();
    let readonly = linux.readonly_paths().clone().unwrap_or_default();
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        assert_eq!(
            masked.contains(&path.to_owned()),
            want.masked,
            "{row}: masked paths {masked:?}"
        );
    }
    assert_eq!(
        readonly.contains(&"/proc/sys".to_owned()),
        want.masked,
        "{row}: read-only paths {readonly:?}"
    );
    if !want.masked {
        assert!(masked.is_empty() && readonly.is_empty(), "{row}");
    }
    for dest in ["/sys", "/sys/fs/cgroup"] {
        assert_eq!(
            options(&spec, dest).contains(&"ro".to_owned()),
            want.sys_ro,
            "{row}: {dest} options"
        );
    }
    let node_dev = mount(&spec, PRIVILEGED_NODE_DEV);
    assert_eq!(node_dev.is_some(), want.node_dev, "{row}: node /dev");
    if let Some(m) = node_dev {
        assert_eq!(m.source().as_deref(), Some(Path::new("/dev")), "{row}");
        assert_eq!(
            options(&spec, PRIVILEGED_NODE_DEV),
            ["rbind", "rw"],
            "{row}"
        );
    }
    // Every container keeps its own tmpfs /dev with the standard nodes.
    assert_eq!(
        mount(&spec, "/dev")
            .and_then(|m| m.typ().clone())
            .as_deref(),
        Some("tmpfs"),
        "{row}"
    );
    let resources = linux.resources().as_ref().expect("resources");
    assert_eq!(
        resources.pids().as_ref().map(|p| p.limit()),
        want.pids,
        "{row}: pids"
    );
    // `/` is the per-run overlay (a bounded writable layer over the
    // read-only image), never the image read-write.
    let root = spec.root().as_ref().expect("root");
    assert!(
        root.path().starts_with("/run/berth-roots/") && root.readonly() == Some(false),
        "{row}"
    );
}

#[test]
fn capabilities_and_seccomp_follow_the_grant() {
    let c = Container {
        capabilities: vec!["CAP_SYS_TIME".into()],
        ..container(Kind::Host)
    };
    let spec = build_spec(&c).expect("spec");
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
        .expect("capabilities");
    assert!(caps
        .bounding()
        .as_ref()
        .is_some_and(|b| b.contains(&Capability::SysTime)));
    let profile = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .expect("seccomp");
    let names: Vec<&String> = profile
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|s| s.names())
        .collect();
    assert!(!names.iter().any(|n| *n == "settimeofday"), "{names:?}");
    assert!(names.iter().any(|n| *n == "mount"), "{names:?}");
}

/// (manifest user, image user, uid, gid, supplementary groups)
#[test]
fn manifest_user_over_image_user() {
    type Row = (
        Option<(u32, u32)>,
        Option<(u32, u32, Vec<u32>)>,
        (u32, u32),
        Option<Vec<u32>>,
    );
    let rows: Vec<Row> = vec![
        (None, None, (0, 0), None),
        (None, Some((101, 102, vec![5])), (101, 102), Some(vec![5])),
        (Some((1000, 1000)), None, (1000, 1000), None),
        (
            Some((1000, 50)),
            Some((101, 102, vec![5])),
            (1000, 50),
            None,
        ),
        (Some((0, 0)), Some((101, 102, vec![])), (0, 0), None),
    ];
    for (manifest, image, ids, groups) in rows {
        let c = Container {
            user: manifest.map(|(uid, gid)| User { uid, gid }),
            ..container(Kind::Workload)
        };
        let image_config = ImageConfig {
            user: image.clone(),
            ..ImageConfig::default()
        };
        let spec = build_spec_with_image(&c, Some(&image_config)).expect("spec");
        let user = spec.process().as_ref().expect("process").user().clone();
        let row = format!("manifest {manifest:?} image {image:?}");
        assert_eq!((user.uid(), user.gid()), ids, "{row}");
        assert_eq!(user.additional_gids().clone(), groups, "{row}");
    }
}

/// (kind, userns, network, user namespace and mapping, /sys mount type)
#[test]
fn user_namespaces() {
    let ns = UserNamespace {
        host_id: 165_536,
        size: 65_536,
    };
    let rows = [
        (Kind::Workload, None, NetworkMode::Bridge, false, "sysfs"),
        (Kind::Workload, Some(ns), NetworkMode::Bridge, true, "sysfs"),
        (Kind::Workload, Some(ns), NetworkMode::None, true, "sysfs"),
        (Kind::Workload, Some(ns), NetworkMode::Host, true, "bind"),
        // The parser refuses userns on host containers; the spec ignores it.
        (Kind::Host, Some(ns), NetworkMode::Host, false, "sysfs"),
    ];
    for (kind, userns, network, want_ns, sys_type) in rows {
        let c = Container {
            userns,
            network,
            ..container(kind)
        };
        let row = format!("{kind:?} {userns:?} {network:?}");
        let spec = build_spec(&c).expect("spec");
        let linux = spec.linux().as_ref().expect("linux");
        let types: Vec<LinuxNamespaceType> = linux
            .namespaces()
            .iter()
            .flatten()
            .map(|n| n.typ())
            .collect();
        assert_eq!(
            types.contains(&LinuxNamespaceType::User),
            want_ns,
            "{row}: {types:?}"
        );
        let maps = |m: &Option<Vec<LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
            m.iter()
                .flatten()
                .map(|m| (m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        let want_map: Vec<(u32, u32, u32)> = if want_ns {
            vec![(0, 165_536, 65_536)]
        } else {
            Vec::new()
        };
        assert_eq!(maps(linux.uid_mappings()), want_map, "{row}: uid map");
        assert_eq!(maps(linux.gid_mappings()), want_map, "{row}: gid map");
        let sys = mount(&spec, "/sys").expect("/sys");
        assert_eq!(sys.typ().as_deref(), Some(sys_type), "{row}");
        assert!(options(&spec, "/sys").contains(&"ro".to_owned()), "{row}");
        // Absolute, so libcontainer never picks the systemd manager.
        assert!(
            linux
                .cgroups_path()
                .as_ref()
                .is_some_and(|p| p.is_absolute()),
            "{row}"
        );
        // The devpts gid=5 option must be mapped (libcontainer checks).
        assert!(options(&spec, "/dev/pts").contains(&"gid=5".to_owned()));
    }
}

#[test]
fn limits_reach_the_spec() {
    let c = Container {
        memory: Some(256 << 20),
        cpus: Some(MilliCpus(1500)),
        pids: Some(64),
        ..container(Kind::Workload)
    };
    let spec = build_spec(&c).expect("spec");
    let json = serde_json::to_value(&spec).expect("json");
    let r = &json["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 268_435_456);
    assert_eq!(r["memory"]["swap"], 268_435_456);
    assert_eq!(r["unified"]["memory.swap.max"], "0");
    assert_eq!(r["cpu"]["quota"], 150_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["pids"]["limit"], 64);
}

/// The written config.json carries the profile libcontainer reads: spot
/// checks of the JSON a bundle holds.
#[test]
fn seccomp_in_config_json() {
    let spec = build_spec(&container(Kind::Workload)).expect("spec");
    let json = serde_json::to_value(&spec).expect("json");
    let seccomp = &json["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(
        seccomp["architectures"],
        serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    let clone3 = seccomp["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["names"] == serde_json::json!(["clone3"]))
        .expect("clone3 rule");
    assert_eq!(clone3["errnoRet"], 38);
    assert_eq!(json["process"]["noNewPrivileges"], true);
}
