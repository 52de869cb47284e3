//! Table-driven tests of `Manifest::parse`: each row is a manifest and
//! either the whole expected `Manifest` or the exact list of error paths
//! (in report order) with a key part of each message.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use berth_config::image::{ImageFormat, ImageRef};
use berth_config::network::{
    Bridge, Interface, Ipv4Cidr, LinkSelect, Network, NetworkMode, PortMap, Proto, Route,
};

use berth_config::{
    Backoff, BindMount, Container, CrashLoop, HealthCheck, Kind, Manifest, MilliCpus, Phase, Probe,
    RestartPolicy, Rlimit, System, User, UserNamespace, Volume,
};

#[allow(clippy::large_enum_variant)] // test table rows, built once
enum Want {
    Ok(Manifest),
    /// (path, fragment of the message), in the order they are reported.
    Err(Vec<(&'static str, &'static str)>),
}

struct Case {
    name: &'static str,
    toml: &'static str,
    want: Want,
}

fn case(name: &'static str, toml: &'static str, want: Want) -> Case {
    Case { name, toml, want }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A container with every optional field at its default.
fn container(name: &str, rootfs: &str, command: &[&str]) -> Container {
    Container {
        name: name.to_owned(),
        kind: Kind::Workload,
        rootfs: PathBuf::from(rootfs),
        image: None,
        command: strings(command),
        args: Vec::new(),
        env: Vec::new(),
        workdir: "/".to_owned(),
        restart: RestartPolicy::Always,
        mounts: Vec::new(),
        volumes: Vec::new(),
        backoff: berth_config::Backoff::default(),
        stop_signal: berth_config::manifest::DEFAULT_STOP_SIGNAL,
        stop_grace: berth_config::manifest::DEFAULT_STOP_GRACE,
        host_pid: false,
        init: false,
        crash_loop: CrashLoop {
            starts: 5,
            window: Duration::from_secs(60),
        },
        phase: Phase::Service,
        essential: true,
        after: Vec::new(),
        requires: Vec::new(),
        health: None,
        console: true,
        log_size: 1024 * 1024,
        network: NetworkMode::Bridge,
        ports: Vec::new(),
        memory: None,
        cpus: None,
        pids: None,
        user: None,
        userns: None,
        privileged: false,
        capabilities: Vec::new(),
        readonly: false,
        root_size: 64 * 1024 * 1024,
        rlimits: Vec::new(),
    }
}

fn bind(source: &str, destination: &str, readonly: bool) -> BindMount {
    BindMount {
        source: source.into(),
        destination: destination.into(),
        readonly,
    }
}

fn containers(containers: Vec<Container>) -> Manifest {
    Manifest {
        system: System::default(),
        network: Network::default(),
        containers,
        api: None,
    }
}

fn system(system: System) -> Manifest {
    Manifest {
        system,
        network: Network::default(),
        containers: Vec::new(),
        api: None,
    }
}

/// The whole table, by section; each piece stays under clippy's
/// `too_many_lines`.
fn cases() -> Vec<Case> {
    [
        limits_1(),
        limits_2(),
        limits_3(),
        limits_4(),
        limits_5(),
        good_manifests_1(),
        good_manifests_2(),
        good_manifests_3(),
        good_manifests_4(),
        volume_manifests(),
        good_manifests_5(),
        good_manifests_6(),
        good_manifests_7(),
        networking_1(),
        networking_2(),
        networking_3(),
        images(),
        dependencies_1(),
        dependencies_2(),
        dependencies_3(),
        dependencies_4(),
        bad_manifests_1(),
        bad_manifests_2(),
        bad_manifests_3(),
        bad_manifests_4(),
        bad_manifests_5(),
        bad_manifests_6(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ---- limits, identity and privileges ----
fn limits_1() -> Vec<Case> {
    vec![case(
        "resource limits, user and user namespace",
        r#"
            [container.first]
            rootfs = "r"
            command = ["/x"]
            [container.web]
            rootfs = "r"
            command = ["/x"]
            memory = "256MiB"
            cpus = 1.5
            pids = 512
            user = "1000"
            userns = true
            [container.two]
            rootfs = "r"
            command = ["/x"]
            memory = "1 GiB"
            cpus = 2
            user = "33:44"
            userns = false
            "#,
        Want::Ok(containers(vec![
            container("first", "r", &["/x"]),
            Container {
                memory: Some(256 << 20),
                cpus: Some(MilliCpus(1500)),
                pids: Some(512),
                user: Some(User {
                    uid: 1000,
                    gid: 1000,
                }),
                userns: Some(UserNamespace {
                    host_id: 165_536,
                    size: 65_536,
                }),
                ..container("web", "r", &["/x"])
            },
            Container {
                memory: Some(1 << 30),
                cpus: Some(MilliCpus(2000)),
                user: Some(User { uid: 33, gid: 44 }),
                ..container("two", "r", &["/x"])
            },
        ])),
    )]
}

fn limits_2() -> Vec<Case> {
    vec![case(
        "host privileges and limits",
        r#"
            [container.admin]
            kind = "host"
            rootfs = "r"
            command = ["/bin/sh"]
            privileged = true
            memory = "64MiB"
            pids = 100
            [container.ntp]
            rootfs = "r"
            command = ["/ntpd"]
            capabilities = ["CAP_NET_ADMIN", "SYS_TIME", "sys_nice"]
            privileged = false
            kind = "host"
            "#,
        Want::Ok(containers(vec![
            Container {
                kind: Kind::Host,
                network: NetworkMode::Host,
                privileged: true,
                memory: Some(64 << 20),
                pids: Some(100),
                ..container("admin", "r", &["/bin/sh"])
            },
            Container {
                kind: Kind::Host,
                network: NetworkMode::Host,
                capabilities: strings(&["CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_SYS_NICE"]),
                ..container("ntp", "r", &["/ntpd"])
            },
        ])),
    )]
}

fn limits_3() -> Vec<Case> {
    vec![
        case(
            "bad limit values",
            r#"
            [container.a]
            rootfs = "r"
            command = ["/x"]
            memory = "1MiB"
            cpus = 0
            pids = 0
            [container.b]
            rootfs = "r"
            command = ["/x"]
            memory = "256MB"
            cpus = 1025
            pids = 4194305
            [container.c]
            rootfs = "r"
            command = ["/x"]
            memory = 268435456
            cpus = "1.5"
            pids = "many"
            [container.d]
            rootfs = "r"
            command = ["/x"]
            cpus = 0.001
            pids = -1
            "#,
            Want::Err(vec![
                (
                    "container.a.memory",
                    "memory \"1MiB\" below the 4MiB minimum",
                ),
                (
                    "container.a.cpus",
                    "0 out of range (expected more than 0 and at most 1024)",
                ),
                ("container.a.pids", "0 out of range (1 to 4194304)"),
                ("container.b.memory", "invalid size \"256MB\""),
                ("container.b.cpus", "1025 out of range"),
                ("container.b.pids", "4194305 out of range"),
                ("container.c.memory", "expected a string, found integer"),
                ("container.c.cpus", "expected a number, found string"),
                ("container.c.pids", "expected an integer, found string"),
                ("container.d.cpus", "0.001 is below 0.01"),
                ("container.d.pids", "-1 out of range"),
            ]),
        ),
        case(
            "rlimits",
            r#"
            [container.redis]
            rootfs = "r"
            command = ["/x"]
            rlimits = { nofile = 10032, core = "0:unlimited", memlock = "unlimited" }
            "#,
            Want::Ok(containers(vec![Container {
                rlimits: vec![
                    Rlimit {
                        name: "nofile",
                        soft: 10032,
                        hard: 10032,
                    },
                    Rlimit {
                        name: "core",
                        soft: 0,
                        hard: u64::MAX,
                    },
                    Rlimit {
                        name: "memlock",
                        soft: u64::MAX,
                        hard: u64::MAX,
                    },
                ],
                ..container("redis", "r", &["/x"])
            }])),
        ),
    ]
}

fn limits_4() -> Vec<Case> {
    vec![
        case(
            "bad rlimits",
            r#"
            [container.a]
            rootfs = "r"
            command = ["/x"]
            rlimits = { nofiles = 5, nproc = "10:5", nofile = 2000000, core = -1, stack = "big", cpu = true }
            [container.b]
            rootfs = "r"
            command = ["/x"]
            rlimits = 1024
            "#,
            Want::Err(vec![
                (
                    "container.a.rlimits.nofiles",
                    "unknown limit \"nofiles\" (expected one of as, core",
                ),
                (
                    "container.a.rlimits.nproc",
                    "soft limit 10 is above the hard limit 5",
                ),
                (
                    "container.a.rlimits.nofile",
                    "above the kernel's fs.nr_open (1048576)",
                ),
                ("container.a.rlimits.core", "-1 is negative"),
                ("container.a.rlimits.stack", "\"big\" is not a limit"),
                (
                    "container.a.rlimits.cpu",
                    "expected a number or \"SOFT:HARD\", found boolean",
                ),
                ("container.b.rlimits", "expected a table, found integer"),
            ]),
        ),
        case(
            "bad users and user namespaces",
            r#"
            [container.a]
            rootfs = "r"
            command = ["/x"]
            user = "www-data"
            userns = "yes"
            [container.b]
            kind = "host"
            rootfs = "r"
            command = ["/x"]
            userns = true
            [container.c]
            rootfs = "r"
            command = ["/x"]
            user = "70000:100"
            userns = true
            [container.d]
            rootfs = "r"
            command = ["/x"]
            user = 1000
            "#,
            Want::Err(vec![
                (
                    "container.a.user",
                    "invalid user \"www-data\" (expected UID or UID:GID",
                ),
                ("container.a.userns", "expected a boolean, found string"),
                (
                    "container.b.userns",
                    "a user namespace is only for workloads",
                ),
                (
                    "container.c.user",
                    "uid 70000 not mapped in the user namespace (ids 0 to 65535)",
                ),
                ("container.d.user", "expected a string, found integer"),
            ]),
        ),
    ]
}

fn limits_5() -> Vec<Case> {
    vec![case(
        "host-only privileges on a workload, bad capability names",
        r#"
            [container.web]
            rootfs = "r"
            command = ["/x"]
            privileged = true
            capabilities = ["NET_ADMIN"]
            [container.admin]
            kind = "host"
            rootfs = "r"
            command = ["/x"]
            privileged = 1
            capabilities = ["CAP_NET_ADMIN", "net_admin", "CAP_FLY", 7, "ALL"]
            [container.other]
            kind = "host"
            rootfs = "r"
            command = ["/x"]
            capabilities = "NET_ADMIN"
            "#,
        Want::Err(vec![
            (
                "container.web.privileged",
                "privileged is only for kind = \"host\"",
            ),
            (
                "container.web.capabilities",
                "extra capabilities (CAP_NET_ADMIN) are only for kind = \"host\"",
            ),
            (
                "container.admin.privileged",
                "expected a boolean, found integer",
            ),
            // Wrong types are found while the list is read, names after.
            (
                "container.admin.capabilities[3]",
                "expected a string, found integer",
            ),
            (
                "container.admin.capabilities[1]",
                "capability CAP_NET_ADMIN listed twice",
            ),
            (
                "container.admin.capabilities[2]",
                "unknown capability \"CAP_FLY\"",
            ),
            ("container.admin.capabilities[4]", "use privileged = true"),
            (
                "container.other.capabilities",
                "expected an array, found string",
            ),
        ]),
    )]
}

// ---- good manifests ----
fn good_manifests_1() -> Vec<Case> {
    vec![
        case(
            "lifecycle keys",
            r#"
            [container.svc]
            kind = "host"
            rootfs = "r"
            command = ["/x"]
            backoff-initial = "250ms"
            backoff-max = "1m"
            backoff-reset = "2.5s"
            stop-signal = "SIGINT"
            stop-grace = "3s"
            host-pid = true
            crash-loop-starts = 3
            crash-loop-window = "10s"
            "#,
            Want::Ok(containers(vec![Container {
                kind: Kind::Host,
                network: NetworkMode::Host,
                backoff: Backoff {
                    initial: Duration::from_millis(250),
                    max: Duration::from_secs(60),
                    reset: Duration::from_millis(2500),
                },
                stop_signal: 2,
                stop_grace: Duration::from_secs(3),
                host_pid: true,
                crash_loop: CrashLoop {
                    starts: 3,
                    window: Duration::from_secs(10),
                },
                ..container("svc", "r", &["/x"])
            }])),
        ),
        case(
            "phases: onboot and onshutdown run once",
            r#"
            [container.setup]
            phase = "onboot"
            essential = false
            rootfs = "r"
            command = ["/setup"]
            [container.app]
            rootfs = "r"
            command = ["/app"]
            [container.flush]
            phase = "onshutdown"
            restart = "never"
            rootfs = "r"
            command = ["/flush"]
            "#,
            Want::Ok(containers(vec![
                Container {
                    phase: Phase::OnBoot,
                    essential: false,
                    restart: RestartPolicy::Never,
                    ..container("setup", "r", &["/setup"])
                },
                container("app", "r", &["/app"]),
                Container {
                    phase: Phase::OnShutdown,
                    restart: RestartPolicy::Never,
                    ..container("flush", "r", &["/flush"])
                },
            ])),
        ),
    ]
}

fn good_manifests_2() -> Vec<Case> {
    vec![
        case(
            "bad phases",
            r#"
            [container.a]
            phase = "sometime"
            rootfs = "r"
            command = ["/a"]
            [container.b]
            phase = "onboot"
            restart = "always"
            rootfs = "r"
            command = ["/b"]
            [container.c]
            essential = false
            rootfs = "r"
            command = ["/c"]
            "#,
            Want::Err(vec![
                (
                    "container.a.phase",
                    "unknown phase \"sometime\" (expected onboot, service, onshutdown)",
                ),
                ("container.b.restart", "onboot containers run once"),
                ("container.c.essential", "only for phase = \"onboot\""),
            ]),
        ),
        case(
            "log keys",
            r#"
            [container.noisy]
            rootfs = "r"
            command = ["/x"]
            console = false
            log-size = "64KiB"
            "#,
            Want::Ok(containers(vec![Container {
                console: false,
                log_size: 64 * 1024,
                ..container("noisy", "r", &["/x"])
            }])),
        ),
        case(
            "bad log keys",
            r#"
            [container.noisy]
            rootfs = "r"
            command = ["/x"]
            console = "no"
            log-size = "1GB"
            "#,
            Want::Err(vec![
                (
                    "container.noisy.console",
                    "expected a boolean, found string",
                ),
                ("container.noisy.log-size", "invalid size \"1GB\""),
            ]),
        ),
        case(
            "init wraps the command",
            r#"
            [container.app]
            rootfs = "r"
            command = ["/app"]
            init = true
            "#,
            Want::Ok(containers(vec![Container {
                init: true,
                ..container("app", "r", &["/app"])
            }])),
        ),
    ]
}

fn good_manifests_3() -> Vec<Case> {
    vec![
        case(
            "init must be a boolean",
            r#"
            [container.app]
            rootfs = "r"
            command = ["/app"]
            init = "yes"
            "#,
            Want::Err(vec![(
                "container.app.init",
                "expected a boolean, found string",
            )]),
        ),
        case(
            "bad lifecycle keys",
            r#"
            [container.svc]
            rootfs = "r"
            command = ["/x"]
            backoff-initial = "5s"
            backoff-max = "1s"
            backoff-reset = 60
            stop-signal = "SIGSTOP"
            stop-grace = "10"
            host-pid = true
            crash-loop-starts = -1
            crash-loop-window = 5
            "#,
            Want::Err(vec![
                (
                    "container.svc.backoff-reset",
                    "expected a string, found integer",
                ),
                (
                    "container.svc.stop-signal",
                    "unknown stop signal \"SIGSTOP\"",
                ),
                ("container.svc.stop-grace", "\"10\" has no unit"),
                ("container.svc.crash-loop-starts", "-1 out of range"),
                (
                    "container.svc.crash-loop-window",
                    "expected a string, found integer",
                ),
                ("container.svc.host-pid", "only for kind = \"host\""),
                (
                    "container.svc.backoff-max",
                    "1000 ms is less than backoff-initial (5000 ms)",
                ),
            ]),
        ),
        case(
            "host container with bind mounts",
            r#"
            [container.admin]
            kind = "host"
            rootfs = "r"
            command = ["/bin/sh"]
            mounts = ["/:/host", "/run/berth:/run/berth:ro", "/var/log:/logs:rw"]
            "#,
            Want::Ok(containers(vec![Container {
                kind: Kind::Host,
                network: NetworkMode::Host,
                mounts: vec![
                    bind("/", "/host", false),
                    bind("/run/berth", "/run/berth", true),
                    bind("/var/log", "/logs", false),
                ],
                ..container("admin", "r", &["/bin/sh"])
            }])),
        ),
        case(
            "bind mounts are for host containers only",
            r#"
            [container.web]
            rootfs = "r"
            command = ["/x"]
            mounts = ["/etc:/host-etc"]
            "#,
            Want::Err(vec![("container.web.mounts", "only for kind = \"host\"")]),
        ),
    ]
}

fn volume(name: &str, destination: &str, readonly: bool) -> Volume {
    Volume {
        name: name.into(),
        destination: destination.into(),
        readonly,
    }
}

fn volume_manifests() -> Vec<Case> {
    vec![
        case(
            "volumes on a workload and a host container",
            r#"
            [container.db]
            rootfs = "r"
            command = ["/db"]
            volumes = ["pgdata:/var/lib/postgresql/data", "conf.d:/etc/db:ro", "x_1:/x:rw"]
            [container.backup]
            kind = "host"
            rootfs = "r"
            command = ["/backup"]
            volumes = ["pgdata:/data:ro"]
            "#,
            Want::Ok(containers(vec![
                Container {
                    volumes: vec![
                        volume("pgdata", "/var/lib/postgresql/data", false),
                        volume("conf.d", "/etc/db", true),
                        volume("x_1", "/x", false),
                    ],
                    ..container("db", "r", &["/db"])
                },
                Container {
                    kind: Kind::Host,
                    network: NetworkMode::Host,
                    volumes: vec![volume("pgdata", "/data", true)],
                    ..container("backup", "r", &["/backup"])
                },
            ])),
        ),
        case(
            "bad volumes",
            r#"
            [container.db]
            kind = "host"
            rootfs = "r"
            command = ["/x"]
            volumes = ["../etc:/a", "Data:/b", "d:relative", "d:/c:exec", "d", "d:/", "e:/f", "g:/f", ".x:/h", "d:/m"]
            mounts = ["/srv:/m"]
            "#,
            Want::Err(vec![
                (
                    "container.db.volumes[0]",
                    "name \"../etc\": use lower-case letters",
                ),
                ("container.db.volumes[1]", "name \"Data\""),
                (
                    "container.db.volumes[2]",
                    "destination: invalid path \"relative\"",
                ),
                ("container.db.volumes[3]", "unknown option \"exec\""),
                ("container.db.volumes[4]", "expected NAME:/path"),
                (
                    "container.db.volumes[5]",
                    "cannot mount over the container's /",
                ),
                (
                    "container.db.volumes[7]",
                    "destination \"/f\" mounted twice",
                ),
                ("container.db.volumes[8]", "name \".x\""),
                (
                    "container.db.volumes",
                    "volume \"d\" and a host mount both mount \"/m\"",
                ),
            ]),
        ),
    ]
}

fn good_manifests_4() -> Vec<Case> {
    vec![
        case(
            "bad bind mounts",
            r#"
            [container.admin]
            kind = "host"
            rootfs = "r"
            command = ["/x"]
            mounts = ["/a:/b:rx", "relative:/c", "/d", "/e:/", "/f:/g", "/h:/g"]
            "#,
            Want::Err(vec![
                ("container.admin.mounts[0]", "unknown option \"rx\""),
                (
                    "container.admin.mounts[1]",
                    "source: invalid path \"relative\"",
                ),
                ("container.admin.mounts[2]", "expected SOURCE:DESTINATION"),
                (
                    "container.admin.mounts[3]",
                    "cannot mount over the container's /",
                ),
                (
                    "container.admin.mounts[5]",
                    "destination \"/g\" mounted twice",
                ),
            ]),
        ),
        case("empty document", "", Want::Ok(Manifest::default())),
        case(
            "version only",
            "version = 1\n",
            Want::Ok(Manifest::default()),
        ),
        case(
            "minimal container gets defaults",
            r#"
            [container.web]
            rootfs = "rootfs/busybox"
            command = ["/bin/httpd"]
            "#,
            Want::Ok(containers(vec![container(
                "web",
                "rootfs/busybox",
                &["/bin/httpd"],
            )])),
        ),
        case(
            "every container key",
            r#"
            version = 1
            [container.shell]
            kind = "host"
            rootfs = "/srv/rootfs/busybox"
            command = ["/bin/sh", "-c"]
            args = ["echo hi"]
            env = { PATH = "/bin", _X1 = "a=b" }
            workdir = "/home/user"
            restart = "on-failure"
            "#,
            Want::Ok(containers(vec![Container {
                kind: Kind::Host,
                network: NetworkMode::Host,
                args: strings(&["echo hi"]),
                env: pairs(&[("PATH", "/bin"), ("_X1", "a=b")]),
                workdir: "/home/user".into(),
                restart: RestartPolicy::OnFailure,
                ..container("shell", "/srv/rootfs/busybox", &["/bin/sh", "-c"])
            }])),
        ),
    ]
}

fn good_manifests_5() -> Vec<Case> {
    vec![
        case(
            "containers keep declaration order",
            r#"
            [container.zeta]
            rootfs = "z"
            args = ["/z"]
            [container.alpha]
            rootfs = "a"
            args = ["/a"]
            restart = "never"
            [container.mid-1_x]
            rootfs = "m"
            command = ["/m"]
            "#,
            Want::Ok(containers(vec![
                Container {
                    args: strings(&["/z"]),
                    ..container("zeta", "z", &[])
                },
                Container {
                    args: strings(&["/a"]),
                    restart: RestartPolicy::Never,
                    ..container("alpha", "a", &[])
                },
                container("mid-1_x", "m", &["/m"]),
            ])),
        ),
        case(
            "env keeps declaration order",
            r#"
            [container.web]
            rootfs = "r"
            command = ["/x"]
            [container.web.env]
            Z = "1"
            A = ""
            M = "multi word"
            "#,
            Want::Ok(containers(vec![Container {
                env: pairs(&[("Z", "1"), ("A", ""), ("M", "multi word")]),
                ..container("web", "r", &["/x"])
            }])),
        ),
        case(
            "container names at the limits",
            r#"
            [container.0]
            rootfs = "r"
            command = ["/x"]
            [container.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]
            rootfs = "r"
            command = ["/x"]
            "#,
            Want::Ok(containers(vec![
                container("0", "r", &["/x"]),
                container(&"a".repeat(63), "r", &["/x"]),
            ])),
        ),
        case(
            "empty container table",
            "[container]\n",
            Want::Ok(Manifest::default()),
        ),
    ]
}

fn good_manifests_6() -> Vec<Case> {
    vec![
        case(
            "full system table",
            r#"
            [system]
            hostname = "node-1.example.com"
            modules = ["veth", "dm-verity", "br_netfilter"]
            tmpfs = ["/var/tmp", "/var/cache"]
            overlay = ["/var/lib/x"]
            reserved-memory = "256MiB"
            [system.sysctl]
            "net.ipv4.ip_forward" = 1
            "kernel.sysrq" = false
            "net.ipv4.tcp_syncookies" = true
            "net.core.default_qdisc" = "fq"
            "vm.min_free_kbytes" = -0
            "#,
            Want::Ok(system(System {
                hostname: Some("node-1.example.com".into()),
                modules: strings(&["veth", "dm-verity", "br_netfilter"]),
                sysctl: pairs(&[
                    ("net.ipv4.ip_forward", "1"),
                    ("kernel.sysrq", "0"),
                    ("net.ipv4.tcp_syncookies", "1"),
                    ("net.core.default_qdisc", "fq"),
                    ("vm.min_free_kbytes", "0"),
                ]),
                tmpfs: strings(&["/var/tmp", "/var/cache"]),
                overlay: strings(&["/var/lib/x"]),
                reserved_memory: Some(256 << 20),
            })),
        ),
        case(
            "unquoted dotted sysctl keys are flattened",
            r#"
            [system.sysctl]
            net.ipv4.ip_forward = 1
            "net.ipv6.conf.all.forwarding" = 1
            net.ipv4.conf.all.rp_filter = 2
            "#,
            Want::Ok(system(System {
                sysctl: pairs(&[
                    ("net.ipv4.ip_forward", "1"),
                    ("net.ipv4.conf.all.rp_filter", "2"),
                    ("net.ipv6.conf.all.forwarding", "1"),
                ]),
                ..System::default()
            })),
        ),
        case(
            "paths berth handles itself are accepted and dropped",
            r#"
            [system]
            tmpfs = ["/run", "/var/tmp", "/tmp"]
            overlay = ["/etc", "/etc/ssh"]
            "#,
            Want::Ok(system(System {
                tmpfs: strings(&["/var/tmp"]),
                overlay: strings(&["/etc/ssh"]),
                ..System::default()
            })),
        ),
    ]
}

fn good_manifests_7() -> Vec<Case> {
    vec![case(
        "system and containers together",
        r#"
            version = 1
            [system]
            hostname = "n1"
            [container.a]
            rootfs = "a"
            command = ["/a"]
            "#,
        Want::Ok(Manifest {
            system: System {
                hostname: Some("n1".into()),
                ..System::default()
            },
            network: Network::default(),
            containers: vec![container("a", "a", &["/a"])],
            api: None,
        }),
    )]
}

// ---- networking ----
fn networking_1() -> Vec<Case> {
    vec![case(
        "network: dhcp, static, bridge and container ports",
        r#"
            [network]
            dns = ["192.0.2.53"]
            search = ["example.org"]
            online-timeout = "10s"
            [network.interface.eth0]
            mtu = 1400
            [network.interface.uplink]
            mac = "52:54:00:AB:CD:EF"
            addresses = ["10.0.2.15/24"]
            gateway = "10.0.2.2"
            routes = ["10.9.0.0/16 via 10.0.2.1"]
            dns = ["10.0.2.3"]
            [network.bridge]
            name = "br9"
            subnet = "172.30.0.0/24"
            [container.web]
            rootfs = "r"
            command = ["/web"]
            ports = ["8080:80", "5353:53/udp"]
            after = ["network-online"]
            [container.quiet]
            rootfs = "r"
            command = ["/q"]
            network = "none"
            [container.admin]
            kind = "host"
            rootfs = "r"
            command = ["/a"]
            "#,
        Want::Ok(Manifest {
            system: System::default(),
            network: Network {
                interfaces: vec![
                    Interface {
                        mtu: Some(1400),
                        ..Interface::dhcp("eth0")
                    },
                    Interface {
                        label: "uplink".into(),
                        select: LinkSelect::Mac([0x52, 0x54, 0, 0xab, 0xcd, 0xef]),
                        dhcp: false,
                        addresses: vec![Ipv4Cidr {
                            address: Ipv4Addr::new(10, 0, 2, 15),
                            prefix_len: 24,
                        }],
                        gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                        routes: vec!["10.9.0.0/16 via 10.0.2.1"
                            .parse::<Route>()
                            .expect("valid route")],
                        dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
                        mtu: None,
                    },
                ],
                bridge: Bridge {
                    name: "br9".into(),
                    subnet: Ipv4Cidr {
                        address: Ipv4Addr::new(172, 30, 0, 0),
                        prefix_len: 24,
                    },
                },
                dns: vec![Ipv4Addr::new(192, 0, 2, 53)],
                search: strings(&["example.org"]),
                online_timeout: Duration::from_secs(10),
            },
            containers: vec![
                Container {
                    ports: vec![
                        PortMap {
                            host: 8080,
                            container: 80,
                            proto: Proto::Tcp,
                        },
                        PortMap {
                            host: 5353,
                            container: 53,
                            proto: Proto::Udp,
                        },
                    ],
                    after: strings(&["network-online"]),
                    ..container("web", "r", &["/web"])
                },
                Container {
                    network: NetworkMode::None,
                    ..container("quiet", "r", &["/q"])
                },
                Container {
                    kind: Kind::Host,
                    network: NetworkMode::Host,
                    ..container("admin", "r", &["/a"])
                },
            ],
            api: None,
        }),
    )]
}

fn networking_2() -> Vec<Case> {
    vec![
        case(
            "bad network keys",
            r#"
            [network]
            dns = ["10.0.2"]
            online-timeout = "soon"
            speed = 10
            [network.interface.eth0]
            addresses = ["10.0.2.15"]
            mtu = 20
            [network.interface.eth1]
            dhcp = true
            gateway = "10.0.2.2"
            [network.interface.eth2]
            mac = "52:54:00:ab:cd"
            addresses = ["10.0.3.15/24"]
            gateway = "10.0.9.1"
            routes = ["default"]
            [network.interface."a/b"]
            [network.interface.eth3]
            mac = "52:54:00:00:00:01"
            [network.interface.eth4]
            mac = "52:54:00:00:00:01"
            [network.bridge]
            name = "a-bridge-name-too-long"
            subnet = "10.88.0.1/24"
            "#,
            Want::Err(vec![
                ("network.dns[0]", "bad a name server: \"10.0.2\""),
                ("network.online-timeout", "soon"),
                ("network.speed", "unknown key"),
                (
                    "network.interface.eth0.addresses[0]",
                    "expected ADDRESS/PREFIX",
                ),
                (
                    "network.interface.eth0.mtu",
                    "20 out of range (68 to 65535)",
                ),
                (
                    "network.interface.eth1.gateway",
                    "only for a static interface",
                ),
                ("network.interface.eth2.mac", "bad MAC address"),
                ("network.interface.eth2.routes[0]", "bad route \"default\""),
                (
                    "network.interface.eth2.gateway",
                    "10.0.9.1 is not in the subnet",
                ),
                ("network.interface.\"a/b\"", "bad interface name \"a/b\""),
                (
                    "network.interface.eth4",
                    "selects 52:54:00:00:00:01 again (already selected by network.interface.eth3)",
                ),
                ("network.bridge.name", "bad interface name"),
                (
                    "network.bridge.subnet",
                    "has host bits set (expected 10.88.0.0/24)",
                ),
            ]),
        ),
        case(
            "bridge subnet overlapping a static address",
            r#"
            [network.interface.eth0]
            addresses = ["10.88.0.5/16"]
            "#,
            Want::Err(vec![(
                "network.bridge.subnet",
                "10.88.0.0/24 overlaps address 10.88.0.5/16 of interface \"eth0\"",
            )]),
        ),
    ]
}

fn networking_3() -> Vec<Case> {
    vec![case(
        "bad container network keys",
        r#"
            [container.a]
            rootfs = "r"
            command = ["/a"]
            network = "nat"
            ports = ["80", "8080:80/sctp"]
            [container.b]
            kind = "host"
            rootfs = "r"
            command = ["/b"]
            network = "bridge"
            [container.c]
            rootfs = "r"
            command = ["/c"]
            network = "none"
            ports = ["8080:80"]
            [container.d]
            rootfs = "r"
            command = ["/d"]
            ports = ["8080:80", "8080:81/udp", "8080:82/tcp"]
            requires = ["network-online"]
            [container.e]
            rootfs = "r"
            command = ["/e"]
            ports = ["8080:80"]
            [container.network-online]
            rootfs = "r"
            command = ["/n"]
            "#,
        Want::Err(vec![
            (
                "container.a.network",
                "unknown network \"nat\" (expected host, none, bridge)",
            ),
            ("container.a.ports[0]", "bad port mapping \"80\""),
            ("container.a.ports[1]", "unknown protocol \"sctp\""),
            (
                "container.b.network",
                "host containers share the node's network",
            ),
            (
                "container.network-online",
                "reserved for the network readiness target",
            ),
            (
                "container.d.requires[0]",
                "network-online is a readiness target: list it in after",
            ),
            (
                "container.c.ports",
                "published ports need network = \"bridge\"",
            ),
            (
                "container.d.ports[2]",
                "host port 8080/tcp is already published by container.d.ports[0]",
            ),
            (
                "container.e.ports[0]",
                "host port 8080/tcp is already published by container.d.ports[0]",
            ),
        ]),
    )]
}

// ---- images ----
fn images() -> Vec<Case> {
    vec![
        case(
            "an OCI image instead of a rootfs; the command may come from it",
            r#"
            [container.web]
            image = "oci:images/web:1.0"
            [container.db]
            image = "docker-archive:db.tar"
            args = ["--port", "5432"]
            "#,
            Want::Ok(containers(vec![
                Container {
                    image: Some(ImageRef {
                        format: ImageFormat::Oci,
                        path: "images/web".into(),
                        tag: Some("1.0".into()),
                    }),
                    ..container("web", "", &[])
                },
                Container {
                    image: Some(ImageRef {
                        format: ImageFormat::DockerArchive,
                        path: "db.tar".into(),
                        tag: None,
                    }),
                    args: strings(&["--port", "5432"]),
                    ..container("db", "", &[])
                },
            ])),
        ),
        case(
            "bad image keys",
            r#"
            [container.a]
            image = "docker://nginx"
            [container.b]
            rootfs = "r"
            image = "oci:x"
            command = ["/b"]
            [container.c]
            command = ["/c"]
            "#,
            Want::Err(vec![
                (
                    "container.a.image",
                    "unknown image reference \"docker://nginx\"",
                ),
                ("container.b.image", "rootfs and image exclude each other"),
                ("container.c.rootfs", "missing required key (or set image)"),
            ]),
        ),
    ]
}

// ---- dependencies and health checks ----
fn dependencies_1() -> Vec<Case> {
    vec![
        case(
            "after and requires between services",
            r#"
            [container.web]
            rootfs = "r"
            command = ["/web"]
            after = ["cache"]
            requires = ["db", "cache"]
            [container.db]
            rootfs = "r"
            command = ["/db"]
            [container.cache]
            rootfs = "r"
            command = ["/cache"]
            after = ["db"]
            "#,
            Want::Ok(containers(vec![
                Container {
                    after: strings(&["cache"]),
                    requires: strings(&["db", "cache"]),
                    ..container("web", "r", &["/web"])
                },
                container("db", "r", &["/db"]),
                Container {
                    after: strings(&["db"]),
                    ..container("cache", "r", &["/cache"])
                },
            ])),
        ),
        case(
            "bad dependency lists",
            r#"
            [container.web]
            rootfs = "r"
            command = ["/web"]
            after = ["dbb", 5, "web", "db", "db", "Bad"]
            requires = "db"
            [container.db]
            rootfs = "r"
            command = ["/db"]
            requires = ["setup", "flush"]
            [container.setup]
            phase = "onboot"
            restart = "never"
            rootfs = "r"
            command = ["/setup"]
            after = ["db"]
            [container.flush]
            requires = []
            phase = "onshutdown"
            rootfs = "r"
            command = ["/flush"]
            "#,
            Want::Err(vec![
                ("container.web.after[1]", "expected a string, found integer"),
                ("container.web.after[5]", "invalid container name \"Bad\""),
                ("container.web.requires", "expected an array, found string"),
                ("container.web.after[2]", "\"web\" cannot wait for itself"),
                ("container.web.after[4]", "duplicate container \"db\" (already listed at container.web.after[3])"),
                ("container.setup.after", "after is only for phase = \"service\" (onboot containers run one after another"),
                ("container.flush.requires", "requires is only for phase = \"service\" (onshutdown containers"),
                ("container.web.after[0]", "unknown container \"dbb\""),
                ("container.db.requires[0]", "\"setup\" is an onboot container"),
                ("container.db.requires[1]", "\"flush\" is an onshutdown container"),
            ]),
        ),
    ]
}

fn dependencies_2() -> Vec<Case> {
    vec![case(
        "dependency cycles are reported once each",
        r#"
            [container.a]
            rootfs = "r"
            command = ["/a"]
            requires = ["b"]
            [container.b]
            rootfs = "r"
            command = ["/b"]
            after = ["c"]
            [container.c]
            rootfs = "r"
            command = ["/c"]
            after = ["a", "d"]
            [container.d]
            rootfs = "r"
            command = ["/d"]
            [container.x]
            rootfs = "r"
            command = ["/x"]
            after = ["y"]
            [container.y]
            rootfs = "r"
            command = ["/y"]
            requires = ["x"]
            "#,
        Want::Err(vec![
            ("container.a.requires", "dependency cycle a → b → c → a"),
            ("container.x.after", "dependency cycle x → y → x"),
        ]),
    )]
}

fn dependencies_3() -> Vec<Case> {
    vec![case(
        "health checks with defaults and every key",
        r#"
            [container.web]
            rootfs = "r"
            command = ["/web"]
            health = { tcp = 8080 }
            [container.db]
            rootfs = "r"
            command = ["/db"]
            [container.db.health]
            exec = ["/bin/check", "--quick"]
            interval = "2s"
            timeout = "500ms"
            retries = 5
            start-period = "30s"
            "#,
        Want::Ok(containers(vec![
            Container {
                health: Some(HealthCheck {
                    probe: Probe::Tcp(8080),
                    interval: Duration::from_secs(10),
                    timeout: Duration::from_secs(5),
                    retries: 3,
                    start_period: Duration::ZERO,
                }),
                ..container("web", "r", &["/web"])
            },
            Container {
                health: Some(HealthCheck {
                    probe: Probe::Exec(strings(&["/bin/check", "--quick"])),
                    interval: Duration::from_secs(2),
                    timeout: Duration::from_millis(500),
                    retries: 5,
                    start_period: Duration::from_secs(30),
                }),
                ..container("db", "r", &["/db"])
            },
        ])),
    )]
}

fn dependencies_4() -> Vec<Case> {
    vec![case(
        "bad health checks",
        r#"
            [container.a]
            rootfs = "r"
            command = ["/a"]
            health = { tcp = 0, interval = "0s", timeout = "5", retries = 0, start-period = 3, colour = 1 }
            [container.b]
            rootfs = "r"
            command = ["/b"]
            health = { exec = ["/x"], tcp = 80 }
            [container.c]
            rootfs = "r"
            command = ["/c"]
            health = { retries = 101 }
            [container.d]
            rootfs = "r"
            command = ["/d"]
            health = { exec = [] }
            [container.e]
            rootfs = "r"
            command = ["/e"]
            health = { exec = ["", "x"], tcp = 65536 }
            [container.f]
            rootfs = "r"
            command = ["/f"]
            health = "tcp:80"
            [container.g]
            phase = "onboot"
            rootfs = "r"
            command = ["/g"]
            health = { tcp = 80 }
            "#,
        Want::Err(vec![
            ("container.a.health.tcp", "port 0 out of range (1 to 65535)"),
            ("container.a.health.interval", "must be more than 0"),
            ("container.a.health.timeout", "\"5\" has no unit"),
            ("container.a.health.retries", "0 out of range (1 to 100)"),
            (
                "container.a.health.start-period",
                "expected a string, found integer",
            ),
            ("container.a.health.colour", "unknown key"),
            ("container.b.health", "both exec and tcp set"),
            ("container.c.health.retries", "101 out of range"),
            ("container.c.health", "no probe: set exec or tcp"),
            ("container.d.health.exec", "empty command"),
            ("container.e.health.exec[0]", "empty program name"),
            ("container.e.health.tcp", "port 65536 out of range"),
            ("container.e.health", "both exec and tcp set"),
            ("container.f.health", "expected a table, found string"),
            (
                "container.g.health",
                "health is only for phase = \"service\"",
            ),
        ]),
    )]
}

// ---- bad manifests ----
fn bad_manifests_1() -> Vec<Case> {
    vec![
        case(
            "syntax error names line and column",
            "version = 1\n[container.web\nrootfs = \"x\"\n",
            Want::Err(vec![("", "TOML syntax error at line 2, column")]),
        ),
        case(
            "duplicate key is a syntax error",
            "[system]\nhostname = \"a\"\nhostname = \"b\"\n",
            Want::Err(vec![("", "TOML syntax error at line 3")]),
        ),
        case(
            "unsupported version",
            "version = 2\n",
            Want::Err(vec![("version", "unsupported version 2 (expected 1)")]),
        ),
        case(
            "version of the wrong type",
            "version = \"1\"\n",
            Want::Err(vec![("version", "expected an integer, found string")]),
        ),
        case(
            "unknown keys at every level",
            r#"
            colour = "red"
            [system]
            colour = "red"
            [container.web]
            rootfs = "r"
            command = ["/x"]
            colour = "red"
            [extra]
            "#,
            Want::Err(vec![
                ("colour", "unknown key"),
                ("system.colour", "unknown key"),
                ("container.web.colour", "unknown key"),
                ("extra", "unknown key"),
            ]),
        ),
        case(
            "system must be a table",
            "system = 1\n",
            Want::Err(vec![("system", "expected a table, found integer")]),
        ),
        case(
            "bad hostnames",
            r#"
            [system]
            hostname = "-node"
            "#,
            Want::Err(vec![("system.hostname", "invalid hostname \"-node\"")]),
        ),
        case(
            "hostname over the kernel limit",
            r#"
            [system]
            hostname = "a23456789.123456789.123456789.123456789.123456789.123456789.12345"
            "#,
            Want::Err(vec![("system.hostname", "expected 1-64 characters")]),
        ),
    ]
}

fn bad_manifests_2() -> Vec<Case> {
    vec![
        case(
            "module list problems",
            r#"
            [system]
            modules = ["veth", 5, "bad name", "dm-verity", "dm_verity"]
            "#,
            Want::Err(vec![
                ("system.modules[1]", "expected a string, found integer"),
                ("system.modules[2]", "invalid module name \"bad name\""),
                ("system.modules[4]", "duplicate module \"dm_verity\" (already listed at system.modules[3])"),
            ]),
        ),
        case(
            "modules must be an array",
            "[system]\nmodules = \"veth\"\n",
            Want::Err(vec![("system.modules", "expected an array, found string")]),
        ),
        case(
            "bad mount points",
            r#"
            [system]
            tmpfs = ["var/tmp", "/", "/proc/x", "/var/", "/a/../b", "/a//b", "/dev", "/sys"]
            "#,
            Want::Err(vec![
                ("system.tmpfs[0]", "expected an absolute path"),
                ("system.tmpfs[1]", "invalid mount point \"/\""),
                ("system.tmpfs[2]", "/proc belongs to the kernel"),
                ("system.tmpfs[3]", "expected no trailing '/'"),
                ("system.tmpfs[4]", "expected no \".\" or \"..\" components"),
                ("system.tmpfs[5]", "expected no empty components"),
                ("system.tmpfs[6]", "/dev belongs to the kernel"),
                ("system.tmpfs[7]", "/sys belongs to the kernel"),
            ]),
        ),
        case(
            "duplicate paths within and across tmpfs and overlay",
            r#"
            [system]
            overlay = ["/var/lib/x", "/opt"]
            tmpfs = ["/var/tmp", "/var/lib/x", "/var/tmp", "/run", "/run"]
            "#,
            Want::Err(vec![
                ("system.tmpfs[1]", "duplicate path \"/var/lib/x\" (already listed at system.overlay[0])"),
                ("system.tmpfs[2]", "duplicate path \"/var/tmp\" (already listed at system.tmpfs[0])"),
                ("system.tmpfs[4]", "duplicate path \"/run\""),
            ]),
        ),
        case(
            "sysctl problems with quoted paths",
            r#"
            [system.sysctl]
            "net..x" = 1
            kernel = 1
            "net.core.rmem" = 1.5
            "net.ipv4.ip_forward" = 1
            net.ipv4.ip_forward = 0
            "vm.x" = [1]
            "#,
            Want::Err(vec![
                ("system.sysctl.\"net..x\"", "invalid sysctl name \"net..x\""),
                ("system.sysctl.kernel", "at least two dot-separated segments"),
                ("system.sysctl.\"net.core.rmem\"", "expected a string, integer or boolean, found float"),
                ("system.sysctl.net.ipv4.ip_forward", "duplicate sysctl \"net.ipv4.ip_forward\" (already set at system.sysctl.\"net.ipv4.ip_forward\")"),
                ("system.sysctl.\"vm.x\"", "found array"),
            ]),
        ),
    ]
}

fn bad_manifests_3() -> Vec<Case> {
    vec![
        case(
            "container must be a table of tables",
            "container = 5\n",
            Want::Err(vec![("container", "expected a table, found integer")]),
        ),
        case(
            "array of container tables is refused",
            "[[container]]\nrootfs = \"r\"\n",
            Want::Err(vec![("container", "expected a table, found array")]),
        ),
        case(
            "a container must be a table",
            "[container]\nweb = \"r\"\n",
            Want::Err(vec![("container.web", "expected a table, found string")]),
        ),
        case(
            "bad container name; its contents are still checked",
            r#"
            [container.Web]
            rootfs = "r"
            command = ["/x"]
            restart = "sometimes"
            [container."my app"]
            rootfs = "r"
            command = ["/x"]
            "#,
            Want::Err(vec![
                ("container.Web", "invalid container name \"Web\""),
                (
                    "container.Web.restart",
                    "unknown policy \"sometimes\" (expected always, on-failure, never)",
                ),
                ("container.\"my app\"", "invalid container name \"my app\""),
            ]),
        ),
        case(
            "unknown kind and policy",
            r#"
            [container.web]
            kind = "vm"
            rootfs = "r"
            command = ["/x"]
            restart = "sometimes"
            "#,
            Want::Err(vec![
                (
                    "container.web.kind",
                    "unknown kind \"vm\" (expected host, workload)",
                ),
                (
                    "container.web.restart",
                    "unknown policy \"sometimes\" (expected always, on-failure, never)",
                ),
            ]),
        ),
        case(
            "wrong scalar types name the toml type",
            r#"
            [container.web]
            kind = 1.5
            rootfs = 1979-05-27
            command = ["/x"]
            restart = true
            workdir = { a = 1 }
            "#,
            Want::Err(vec![
                ("container.web.kind", "expected a string, found float"),
                ("container.web.rootfs", "expected a string, found datetime"),
                ("container.web.restart", "expected a string, found boolean"),
                ("container.web.workdir", "expected a string, found table"),
            ]),
        ),
    ]
}

fn bad_manifests_4() -> Vec<Case> {
    vec![
        case(
            "missing and empty rootfs",
            r#"
            [container.a]
            command = ["/x"]
            [container.b]
            rootfs = ""
            command = ["/x"]
            "#,
            Want::Err(vec![
                ("container.a.rootfs", "missing required key"),
                ("container.b.rootfs", "empty path"),
            ]),
        ),
        case(
            "no command",
            r#"
            [container.a]
            rootfs = "r"
            [container.b]
            rootfs = "r"
            command = []
            args = []
            "#,
            Want::Err(vec![
                ("container.a.command", "no command: set command or args"),
                ("container.b.command", "no command: set command or args"),
            ]),
        ),
        case(
            "empty program name",
            r#"
            [container.a]
            rootfs = "r"
            command = ["", "x"]
            [container.b]
            rootfs = "r"
            command = []
            args = [""]
            "#,
            Want::Err(vec![
                ("container.a.command[0]", "empty program name"),
                ("container.b.args[0]", "empty program name"),
            ]),
        ),
        case(
            "bad command types report no extra no-command error",
            r#"
            [container.a]
            rootfs = "r"
            command = "/bin/sh"
            [container.b]
            rootfs = "r"
            command = [1]
            args = ["x", false]
            "#,
            Want::Err(vec![
                ("container.a.command", "expected an array, found string"),
                ("container.b.command[0]", "expected a string, found integer"),
                ("container.b.args[1]", "expected a string, found boolean"),
            ]),
        ),
    ]
}

fn bad_manifests_5() -> Vec<Case> {
    vec![
        case(
            "NUL bytes in arguments and env values",
            "[container.a]\nrootfs = \"r\"\ncommand = [\"/x\", \"a\\u0000b\"]\nenv = { A = \"\\u0000\" }\n",
            Want::Err(vec![
                ("container.a.command[1]", "\"a\\0b\" contains a NUL byte"),
                ("container.a.env.A", "contains a NUL byte"),
            ]),
        ),
        case(
            "env problems",
            r#"
            [container.web]
            rootfs = "r"
            command = ["/x"]
            env = { "1A" = "x", PORT = 8080, DEBUG = true, "A-B" = 1, OK = "y" }
            "#,
            Want::Err(vec![
                ("container.web.env.1A", "invalid variable name \"1A\""),
                ("container.web.env.PORT", "expected a string, found integer"),
                ("container.web.env.DEBUG", "expected a string, found boolean"),
                ("container.web.env.A-B", "invalid variable name \"A-B\""),
                ("container.web.env.A-B", "expected a string, found integer"),
            ]),
        ),
        case(
            "env must be a table",
            "[container.web]\nrootfs = \"r\"\ncommand = [\"/x\"]\nenv = [\"A=b\"]\n",
            Want::Err(vec![("container.web.env", "expected a table, found array")]),
        ),
        case(
            "relative and non-canonical workdir",
            r#"
            [container.a]
            rootfs = "r"
            command = ["/x"]
            workdir = "srv"
            [container.b]
            rootfs = "r"
            command = ["/x"]
            workdir = "/srv/./app"
            "#,
            Want::Err(vec![
                ("container.a.workdir", "invalid path \"srv\" (expected an absolute path)"),
                ("container.b.workdir", "invalid path \"/srv/./app\""),
            ]),
        ),
    ]
}

fn bad_manifests_6() -> Vec<Case> {
    vec![case(
        "many errors at once, in document order",
        r#"
            version = 3
            unknown = 1
            [system]
            hostname = "bad_host"
            modules = ["ok", ""]
            tmpfs = ["/proc"]
            [system.sysctl]
            "x" = 1
            [container.web]
            kind = "vm"
            command = []
            restart = "sometimes"
            colour = "blue"
            env = { "9" = "x" }
            [container.Bad]
            rootfs = "r"
            args = ["/x"]
            workdir = "relative"
            "#,
        Want::Err(vec![
            ("version", "unsupported version 3"),
            ("unknown", "unknown key"),
            ("system.hostname", "invalid hostname \"bad_host\""),
            ("system.modules[1]", "invalid module name \"\""),
            ("system.tmpfs[0]", "/proc belongs to the kernel"),
            ("system.sysctl.x", "invalid sysctl name \"x\""),
            ("container.web.kind", "unknown kind \"vm\""),
            ("container.web.restart", "unknown policy \"sometimes\""),
            ("container.web.colour", "unknown key"),
            ("container.web.env.9", "invalid variable name \"9\""),
            ("container.web.rootfs", "missing required key"),
            ("container.web.command", "no command"),
            ("container.Bad", "invalid container name \"Bad\""),
            ("container.Bad.workdir", "expected an absolute path"),
        ]),
    )]
}

#[test]
fn manifest_table() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    for Case { name, toml, want } in cases {
        let got = Manifest::parse(toml);
        match (got, want) {
            (Ok(got), Want::Ok(want)) => assert_eq!(got, want, "case {name:?}"),
            (Err(errors), Want::Err(want)) => {
                let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
                let want_paths: Vec<&str> = want.iter().map(|(p, _)| *p).collect();
                assert_eq!(paths, want_paths, "case {name:?}: error paths\n{errors}");
                for (error, (_, fragment)) in errors.0.iter().zip(&want) {
                    assert!(
                        error.message.contains(fragment),
                        "case {name:?}: {error} does not contain {fragment:?}"
                    );
                }
            }
            (Ok(got), Want::Err(want)) => {
                panic!("case {name:?}: parsed as {got:?}, expected errors {want:?}")
            }
            (Err(errors), Want::Ok(_)) => panic!("case {name:?}: unexpected errors:\n{errors}"),
        }
    }
}

#[test]
fn warnings_name_their_paths() {
    let m = match Manifest::parse(
        r#"
        [container.web]
        rootfs = "r"
        command = ["/x"]
        [container.admin]
        kind = "host"
        rootfs = "r"
        command = ["/bin/sh"]
        privileged = true
        host-pid = true
        mounts = ["/:/host:ro", "/var/lib/app:/data", "/dev:/dev/host", "/run/berth:/run/berth"]
        [container.ntp]
        kind = "host"
        rootfs = "r"
        command = ["/ntpd"]
        capabilities = ["SYS_TIME"]
        mounts = ["/run:/run/node"]
        "#,
    ) {
        Ok(m) => m,
        Err(errors) => panic!("parse: {errors}"),
    };
    let got: Vec<String> = m.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        got,
        [
            "container.admin.privileged: privileged container: every capability, no seccomp filter, no masked /proc paths, the node's devices",
            "container.admin.host-pid: shares the node's PID namespace: sees every process and may signal PID 1",
            "container.admin.mounts[0]: mounts / read-only at /host: the node's whole filesystem",
            "container.admin.mounts[2]: mounts /dev read-write at /dev/host: the node's devices",
            "container.admin.mounts[3]: mounts /run/berth read-write at /run/berth: berth's runtime state and control socket (full control of the node)",
            "container.ntp.capabilities: extra capabilities CAP_SYS_TIME",
            "container.ntp.mounts[0]: mounts /run read-write at /run/node: berth's runtime state and control socket (full control of the node)",
        ]
    );
    let quiet = Manifest::parse(
        "[container.web]\nrootfs = \"r\"\ncommand = [\"/x\"]\nuserns = true\nmemory = \"64MiB\"\n",
    );
    assert_eq!(quiet.map(|m| m.warnings()), Ok(Vec::new()));
}

#[test]
fn pids_default_by_kind() {
    let table = [
        ("kind = \"workload\"", Some(1024)),
        ("kind = \"host\"", None),
        ("kind = \"workload\"\npids = 64", Some(64)),
        ("kind = \"host\"\npids = 64", Some(64)),
    ];
    for (keys, want) in table {
        let text = format!("[container.c]\nrootfs = \"r\"\ncommand = [\"/x\"]\n{keys}\n");
        let m = Manifest::parse(&text).unwrap_or_else(|e| panic!("{keys}: {e}"));
        assert_eq!(m.containers[0].pids_limit(), want, "{keys}");
    }
}

#[test]
fn error_display_format() {
    let errors = match Manifest::parse("[container.web]\nrootfs = \"r\"\ncommand = [\"/x\"]\nrestart = \"sometimes\"\ncolour = 1\n") {
        Err(errors) => errors,
        Ok(m) => panic!("parsed: {m:?}"),
    };
    assert_eq!(
        errors.to_string(),
        "container.web.restart: unknown policy \"sometimes\" (expected always, on-failure, never)\n\
         container.web.colour: unknown key"
    );
}

/// The full example in docs/manifest.md must stay a valid manifest.
#[test]
fn documented_example_parses() {
    let doc = include_str!("../../docs/manifest.md");
    let example = doc
        .split("## Full example")
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|rest| rest.split("```").next());
    let Some(example) = example else {
        panic!("docs/manifest.md has no ```toml block under \"## Full example\"");
    };
    let manifest = match Manifest::parse(example) {
        Ok(m) => m,
        Err(errors) => panic!("documented example does not parse:\n{errors}"),
    };
    assert_eq!(manifest.system.hostname.as_deref(), Some("node-1"));
    assert_eq!(
        manifest.system.sysctl,
        pairs(&[
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.all.rp_filter", "2"),
            ("kernel.sysrq", "0"),
            ("net.core.default_qdisc", "fq"),
        ])
    );
    let names: Vec<&str> = manifest
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["web", "shell"]);
    let web = &manifest.containers[0];
    assert_eq!(web.argv(), strings(&["/bin/httpd", "-f", "-p", "8080"]));
    assert_eq!(web.env, pairs(&[("PORT", "8080")]));
}

#[test]
fn arguments_over_the_kernels_exec_limits_name_e2big() {
    let arg = "x".repeat(200_000);
    let env_value = "y".repeat(140_000);
    let many: Vec<String> = (0..20)
        .map(|_| format!("\"{}\"", "z".repeat(120_000)))
        .collect();
    let toml = format!(
        r#"
        [container.one]
        rootfs = "r"
        command = ["/x", "{arg}"]
        [container.env]
        rootfs = "r"
        command = ["/x"]
        env = {{ BIG = "{env_value}" }}
        [container.total]
        rootfs = "r"
        command = ["/x", {}]
        [container.fine]
        rootfs = "r"
        command = ["/x", "{}"]
        "#,
        many.join(", "),
        "w".repeat(100_000)
    );
    let errors = Manifest::parse(&toml).expect_err("over the limits");
    let got: Vec<(&str, &str)> = errors
        .0
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    let paths: Vec<&str> = got.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        paths,
        [
            "container.one.command[1]",
            "container.env.env.BIG",
            "container.total"
        ],
        "{errors}"
    );
    assert!(
        got[0].1.contains("argument is 200000 bytes"),
        "{}",
        got[0].1
    );
    for (_, message) in &got {
        assert!(message.contains("E2BIG"), "{message}");
        assert!(
            message.len() < 200,
            "the value is not quoted: {message:.100}"
        );
    }
}
