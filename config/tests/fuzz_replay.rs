//! The fuzz targets' checks on stable: every committed corpus input of
//! `fuzz/corpus/{manifest,cmdline}` replayed through
//! [`berth_config::fuzz`], then property tests (random bytes, token soup,
//! mutated corpus seeds, and generated manifests that must parse back to
//! what was generated). The seed is fixed so CI runs are reproducible;
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` widen a local run.

use std::time::Duration;

use berth_config::fuzz::{check_cmdline, check_manifest};
use berth_config::{Container, HealthCheck, Kind, Manifest, Phase, Probe, RestartPolicy};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

#[path = "../../fuzz/support.rs"]
mod support;
use support::{config, mutated};

/// Pieces of manifests, so that random sequences reach past the TOML
/// parser into the walk.
const MANIFEST_TOKENS: &[&str] = &[
    "\n",
    "\n",
    " ",
    "=",
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "\"",
    "'",
    "\"\"\"",
    "#",
    "version",
    "1",
    "2",
    "-1",
    "0",
    "65536",
    "9223372036854775807",
    "1.5",
    "true",
    "1979-05-27",
    "container",
    "system",
    "network",
    "web",
    "db",
    "\"web\"",
    "rootfs",
    "\"r\"",
    "image",
    "\"oci:img:t\"",
    "command",
    "[\"/x\"]",
    "args",
    "[\"\"]",
    "env",
    "{A=\"b\"}",
    "after",
    "requires",
    "[\"web\"]",
    "[\"db\",\"web\"]",
    "phase",
    "\"onboot\"",
    "\"onshutdown\"",
    "kind",
    "\"host\"",
    "restart",
    "\"never\"",
    "health",
    "{tcp=80}",
    "{exec=[\"/x\"]}",
    "mounts",
    "[\"/a:/b:ro\"]",
    "ports",
    "[\"8080:80\"]",
    "stop-signal",
    "\"SIGTERM\"",
    "backoff-max",
    "\"1ms\"",
    "\"25h\"",
    "log-size",
    "\"4KiB\"",
    "sysctl",
    "\"a.b\"",
    "modules",
    "[\"tun\"]",
    "hostname",
    "tmpfs",
    "[\"/var\"]",
    "interface",
    "eth0",
    "bridge",
    "subnet",
    "\"10.0.0.0/8\"",
    "addresses",
    "[\"10.0.0.1/8\"]",
    "dns",
    "\\u0000",
    "\u{0}",
    "é",
    "\u{feff}",
    "network-online",
];

fn token_soup(tokens: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(tokens), 0..160).prop_map(|t| t.concat().into())
}

#[test]
fn manifest_corpus_replays() {
    support::replay("manifest", check_manifest);
}

#[test]
fn cmdline_corpus_replays() {
    support::replay("cmdline", check_cmdline);
}

#[test]
fn manifest_random_bytes() {
    TestRunner::new(config(256))
        .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            check_manifest(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn manifest_token_soup() {
    TestRunner::new(config(512))
        .run(&token_soup(MANIFEST_TOKENS), |bytes| {
            check_manifest(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn manifest_mutated_seeds() {
    mutated("manifest", 384, check_manifest);
}

#[test]
fn cmdline_random_and_mutated() {
    const WORDS: &[&str] = &[
        " ",
        " ",
        "\t",
        "\"",
        "=",
        "berth.",
        "berth.root",
        "berth.rootfstype",
        "berth.rootwait",
        "berth.panic",
        "berth.debug",
        "berth.verity",
        "=/dev/vda",
        "=erofs",
        "=2.5",
        "=.",
        "=halt",
        "=1",
        "=0",
        "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcd",
        "9",
        "\u{0}",
        "\u{a0}",
        "é",
        "\n",
    ];
    TestRunner::new(config(512))
        .run(&token_soup(WORDS), |bytes| {
            check_cmdline(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    TestRunner::new(config(256))
        .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            check_cmdline(&bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    mutated("cmdline", 256, check_cmdline);
}

// ---- round trip: generated manifests parse back to what was generated ----

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Any string a manifest may hold in an argument or a value.
fn text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\0', ""))
}

/// What the generator picks for one container, before names are known.
#[derive(Debug, Clone)]
struct Draw {
    host: bool,
    phase: Phase,
    restart: RestartPolicy,
    rootfs: String,
    command: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    workdir: String,
    signal: (&'static str, i32),
    backoff_ms: (u64, u64),
    log_kib: usize,
    flags: (bool, bool, bool),
    /// Indexes (modulo the earlier services) this one waits for.
    after: Vec<usize>,
    health: Option<Probe>,
}

fn draw() -> impl Strategy<Value = Draw> {
    let phase = prop::sample::select(vec![Phase::Service, Phase::OnBoot, Phase::OnShutdown]);
    let restart = prop::sample::select(vec![
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ]);
    let signal = prop::sample::select(vec![
        ("SIGTERM", 15),
        ("INT", 2),
        ("SIGUSR1", 10),
        ("37", 37),
    ]);
    let command = ("/[a-z]{1,8}", prop::collection::vec(text(), 0..3)).prop_map(|(p, mut rest)| {
        rest.insert(0, p);
        rest
    });
    let env = prop::collection::btree_map("[A-Z_][A-Z0-9_]{0,8}", text(), 0..4)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    let health = prop_oneof![
        Just(None),
        (1u16..).prop_map(|p| Some(Probe::Tcp(p))),
        ("/[a-z]{1,6}", prop::collection::vec(text(), 0..2)).prop_map(|(p, mut rest)| {
            rest.insert(0, p);
            Some(Probe::Exec(rest))
        }),
    ];
    (
        (any::<bool>(), phase, restart, "[a-zA-Z0-9_./-]{1,16}"),
        (command, prop::collection::vec(text(), 0..3), env),
        (
            "(/[a-z0-9]{1,6}){0,3}",
            signal,
            (0u64..5000, 0u64..5000),
            4usize..65536,
        ),
        (
            any::<(bool, bool, bool)>(),
            prop::collection::vec(any::<usize>(), 0..3),
            health,
        ),
    )
        .prop_map(
            |(
                (host, phase, restart, rootfs),
                (command, args, env),
                (workdir, signal, (a, b), log_kib),
                (flags, after, health),
            )| Draw {
                host,
                phase,
                restart,
                rootfs,
                command,
                args,
                env,
                workdir: if workdir.is_empty() {
                    "/".into()
                } else {
                    workdir
                },
                signal,
                backoff_ms: (a.min(b), a.max(b)),
                log_kib,
                flags,
                after,
                health,
            },
        )
}

/// The TOML of one container and the [`Container`] it must parse to.
fn render(name: &str, d: &Draw, services: &[String]) -> (String, Container) {
    let mut c = Container::new(name, d.rootfs.as_str());
    let mut t = format!("[container.{name}]\nrootfs = {}\n", toml_str(&d.rootfs));
    t += &format!("command = {}\n", toml_list(&d.command));
    c.command = d.command.clone();
    if !d.args.is_empty() {
        t += &format!("args = {}\n", toml_list(&d.args));
        c.args = d.args.clone();
    }
    let env: Vec<String> = d
        .env
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml_str(v)))
        .collect();
    t += &format!("env = {{ {} }}\n", env.join(", "));
    c.env = d.env.clone();
    t += &format!("workdir = {}\n", toml_str(&d.workdir));
    c.workdir = d.workdir.clone();
    t += &format!("phase = \"{}\"\n", d.phase.as_str());
    c.phase = d.phase;
    let (init, console, extra) = d.flags;
    t += &format!("init = {init}\nconsole = {console}\n");
    (c.init, c.console) = (init, console);
    if d.host {
        t += "kind = \"host\"\n";
        c.kind = Kind::Host;
        c.network = berth_config::network::NetworkMode::Host;
        t += &format!("host-pid = {extra}\n");
        c.host_pid = extra;
    }
    t += &format!("stop-signal = \"{}\"\n", d.signal.0);
    c.stop_signal = d.signal.1;
    let (initial, max) = d.backoff_ms;
    t += &format!("backoff-initial = \"{initial}ms\"\nbackoff-max = \"{max}ms\"\n");
    c.backoff.initial = Duration::from_millis(initial);
    c.backoff.max = Duration::from_millis(max);
    t += &format!("log-size = \"{}KiB\"\n", d.log_kib);
    c.log_size = d.log_kib * 1024;
    match d.phase {
        Phase::Service => {
            t += &format!("restart = \"{}\"\n", d.restart.as_str());
            c.restart = d.restart;
            if !services.is_empty() {
                let mut after: Vec<String> = Vec::new();
                for i in &d.after {
                    let s = &services[i % services.len()];
                    if !after.contains(s) {
                        after.push(s.clone());
                    }
                }
                t += &format!("after = {}\n", toml_list(&after));
                c.after = after;
            }
            if let Some(probe) = &d.health {
                let key = match probe {
                    Probe::Tcp(port) => format!("tcp = {port}"),
                    Probe::Exec(argv) => format!("exec = {}", toml_list(argv)),
                };
                t += &format!("health = {{ {key}, retries = 7 }}\n");
                c.health = Some(HealthCheck {
                    retries: 7,
                    ..HealthCheck::new(probe.clone())
                });
            }
        }
        Phase::OnBoot => {
            t += &format!("essential = {extra}\n");
            c.essential = extra;
            c.restart = RestartPolicy::Never;
        }
        Phase::OnShutdown => c.restart = RestartPolicy::Never,
    }
    (t, c)
}

fn manifests() -> impl Strategy<Value = (String, Manifest)> {
    let names = prop::collection::btree_set("[a-z0-9][a-z0-9_-]{0,12}", 0..5);
    let system = (
        prop::option::of("[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z0-9]{1,8}){0,2}"),
        prop::collection::btree_set("[a-z][a-z0-9_]{0,10}", 0..3),
        prop::collection::btree_map("[a-z]{1,5}\\.[a-z_]{1,8}", any::<i64>(), 0..3),
    );
    (names, system, prop::collection::vec(draw(), 5)).prop_map(
        |(names, (hostname, modules, sysctl), draws)| {
            let mut m = Manifest::default();
            let mut t = String::from("version = 1\n[system]\n");
            if let Some(h) = &hostname {
                t += &format!("hostname = {}\n", toml_str(h));
            }
            let modules: Vec<String> = modules.into_iter().collect();
            t += &format!("modules = {}\n", toml_list(&modules));
            t += "[system.sysctl]\n";
            for (k, v) in &sysctl {
                t += &format!("{} = {v}\n", toml_str(k));
            }
            m.system.hostname = hostname;
            m.system.modules = modules;
            m.system.sysctl = sysctl
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            let mut services: Vec<String> = Vec::new();
            for (name, d) in names.iter().zip(&draws) {
                // `network-online` is reserved.
                if name == "network-online" {
                    continue;
                }
                let (text, c) = render(name, d, &services);
                t += &text;
                if c.phase == Phase::Service {
                    services.push(name.clone());
                }
                m.containers.push(c);
            }
            (t, m)
        },
    )
}

#[test]
fn generated_manifests_round_trip() {
    TestRunner::new(config(128))
        .run(&manifests(), |(text, want)| {
            match Manifest::parse(&text) {
                Ok(got) => prop_assert_eq!(got, want, "{}", text),
                Err(e) => prop_assert!(false, "{e}\n---\n{text}"),
            }
            check_manifest(text.as_bytes());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
