use std::time::Duration;

use super::*;
use crate::manifest::{
    Backoff, BindMount, CrashLoop, HealthCheck, Kind, MilliCpus, Phase, Probe, RestartPolicy,
    Rlimit, User, UserNamespace,
};
use crate::network::NetworkMode;
use crate::Manifest;

/// A container with every field away from its default.
fn everything() -> Container {
    Container {
        kind: Kind::Host,
        image: Some("oci:images/app:1.0".parse().expect("image ref")),
        command: vec!["/bin/app".into(), "--serve".into()],
        args: vec!["-v".into()],
        env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
        workdir: "/srv".into(),
        restart: RestartPolicy::OnFailure,
        mounts: vec![BindMount {
            source: "/run/berth/control.sock".into(),
            destination: "/run/control.sock".into(),
            readonly: true,
        }],
        backoff: Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
            reset: Duration::from_nanos(1_500_000_001),
        },
        stop_signal: 3,
        stop_grace: Duration::from_secs(2),
        host_pid: true,
        phase: Phase::OnBoot,
        essential: false,
        crash_loop: CrashLoop {
            starts: 0,
            window: Duration::from_secs(7),
        },
        init: true,
        after: vec!["db".into(), "network-online".into()],
        requires: vec!["db".into()],
        health: Some(HealthCheck {
            retries: 9,
            start_period: Duration::from_secs(1),
            ..HealthCheck::new(Probe::Exec(vec!["true".into()]))
        }),
        console: false,
        log_size: 4096,
        network: NetworkMode::None,
        ports: vec![
            "8080:80/tcp".parse().expect("port"),
            "53:53/udp".parse().expect("port"),
        ],
        memory: Some(64 << 20),
        cpus: Some(MilliCpus(1500)),
        pids: Some(77),
        user: Some(User {
            uid: 1000,
            gid: 100,
        }),
        userns: UserNamespace::for_index(2),
        privileged: true,
        capabilities: vec!["CAP_NET_ADMIN".into()],
        readonly: true,
        root_size: 1 << 20,
        rlimits: vec![
            Rlimit {
                name: "core",
                soft: 0,
                hard: 0,
            },
            crate::manifest_rlimits::DEFAULT_NOFILE,
        ],
        ..Container::new("app", "")
    }
}

fn plan(container: Container) -> Plan {
    Plan {
        container,
        user: ProcessUser {
            uid: 101,
            gid: 101,
            additional_gids: vec![5, 6],
        },
        image: Some(ImageFacts {
            exposed_ports: vec!["443/tcp".into(), "80/tcp".into()],
            stop_signal: Some("SIGQUIT".into()),
        }),
    }
}

#[test]
fn round_trips_every_field() {
    let health_tcp = Container {
        health: Some(HealthCheck::new(Probe::Tcp(8080))),
        rootfs: "rootfs/app".into(),
        image: None,
        ..Container::new("tcp", "")
    };
    for p in [
        plan(everything()),
        plan(health_tcp),
        Plan {
            container: Container::new("bare", "rootfs"),
            user: ProcessUser::default(),
            image: None,
        },
    ] {
        let bytes = p.to_json().expect("json");
        assert_eq!(Plan::from_json(&bytes).expect("parse"), p);
        assert_eq!(p.to_json().expect("json"), bytes, "same plan, same bytes");
    }
}

#[test]
fn round_trips_the_example_manifests() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("examples") {
        let path = entry.expect("entry").path();
        // examples/rootfs/ holds content made by `berth-image busybox-rootfs`.
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let m = Manifest::from_file(&path).expect("example manifest");
        for c in m.containers {
            let p = Plan::resolve(&c, None, ProcessUser::default()).0;
            let back = Plan::from_json(&p.to_json().expect("json")).expect("parse");
            assert_eq!(back.container, c, "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen > 0);
}

#[test]
fn json_spells_keys_and_values_as_the_manifest_does() {
    let text = String::from_utf8(plan(everything()).to_json().expect("json")).expect("utf-8");
    for want in [
        r#""stop-signal": 3"#,
        r#""restart": "on-failure""#,
        r#""phase": "onboot""#,
        r#""kind": "host""#,
        r#""network": "none""#,
        r#""image": "oci:images/app:1.0""#,
        r#""8080:80/tcp""#,
        r#""additional-gids": ["#,
        r#""host-pid": true"#,
        r#""exec": ["#,
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    assert!(text.ends_with("}\n"));
}

#[test]
fn unknown_keys_and_names_are_refused() {
    let good: serde_json::Value =
        serde_json::from_slice(&plan(everything()).to_json().expect("json")).expect("value");
    let mut extra = good.clone();
    extra["container"]["colour"] = "blue".into();
    let mut rlimit = good.clone();
    rlimit["container"]["rlimits"][0]["name"] = "cores".into();
    let mut port = good;
    port["container"]["ports"][0] = "80".into();
    for bad in [extra, rlimit, port] {
        let bytes = serde_json::to_vec(&bad).expect("json");
        assert!(Plan::from_json(&bytes).is_err(), "{bad}");
    }
}

/// (manifest's stop-signal, image's StopSignal, result).
const STOP_SIGNALS: &[(i32, Option<&str>, Result<i32, ()>)] = &[
    (15, None, Ok(15)),
    (15, Some("SIGQUIT"), Ok(3)),
    (15, Some("QUIT"), Ok(3)),
    (15, Some("9"), Ok(9)),
    (15, Some("SIGTERM"), Ok(15)),
    (2, None, Ok(2)),
    (2, Some("SIGQUIT"), Ok(2)),
    (2, Some("SIGBOGUS"), Ok(2)),
    (15, Some("SIGBOGUS"), Err(())),
    (15, Some("SIGSTOP"), Err(())),
];

#[test]
fn stop_signal_resolution() {
    for &(manifest, image, want) in STOP_SIGNALS {
        let got = stop_signal(manifest, image).map_err(drop);
        assert_eq!(got, want, "manifest {manifest}, image {image:?}");
    }
}

#[test]
fn resolve_applies_the_image_stop_signal_or_warns() {
    let c = Container::new("web", "");
    let facts = |s: &str| ImageFacts {
        exposed_ports: vec!["80/tcp".into()],
        stop_signal: Some(s.into()),
    };
    let (p, warnings) = Plan::resolve(&c, Some(facts("SIGQUIT")), ProcessUser::default());
    assert_eq!((p.container.stop_signal, warnings.len()), (3, 0));
    assert_eq!(p.image, Some(facts("SIGQUIT")), "kept as written");

    let (p, warnings) = Plan::resolve(&c, Some(facts("SIGNOPE")), ProcessUser::default());
    assert_eq!(p.container.stop_signal, DEFAULT_STOP_SIGNAL);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("container web: the image's StopSignal: unknown stop signal"),
        "{}",
        warnings[0]
    );

    let manifest_wins = Container {
        stop_signal: 2,
        ..c
    };
    let (p, warnings) = Plan::resolve(
        &manifest_wins,
        Some(facts("SIGNOPE")),
        ProcessUser::default(),
    );
    assert_eq!((p.container.stop_signal, warnings.len()), (2, 0));
}

#[test]
fn from_file_names_the_container_and_the_file() {
    let dir = std::env::temp_dir().join(format!("berth-plan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let good = dir.join("good.json");
    let p = plan(everything());
    std::fs::write(&good, p.to_json().expect("json")).expect("write");
    assert_eq!(Plan::from_file("app", &good).expect("read"), p);

    let bad = dir.join("bad.json");
    std::fs::write(&bad, b"{\"container\": 1}").expect("write");
    let missing = dir.join("missing.json");
    let cases = [
        (
            "web",
            &good,
            format!(
                "container web: its plan {} is for container app",
                good.display()
            ),
        ),
        (
            "app",
            &bad,
            format!("container app: its plan {} is not valid", bad.display()),
        ),
        (
            "app",
            &missing,
            format!("container app: read its plan {}", missing.display()),
        ),
    ];
    for (name, path, want) in cases {
        let err = Plan::from_file(name, path).expect_err("bad plan");
        assert_eq!(err.to_string(), want);
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
