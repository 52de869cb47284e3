//! The `[container.NAME]` tables.

use std::path::PathBuf;

use toml::{Table, Value};

use crate::image::ImageRef;
use crate::manifest::{BindMount, Container, Kind, Phase, RestartPolicy, Volume};
use crate::manifest_deps as deps;
use crate::manifest_health as health;
use crate::manifest_lifecycle as lifecycle;
use crate::manifest_network;
use crate::manifest_rules as rules;
use crate::manifest_security as security;
use crate::network::NetworkMode;
use crate::toml_walk::{key_path, quote, StrList, Walker};

/// Every `[container.NAME]` table, in declaration order.
pub(crate) fn walk_all(path: &str, value: &Value, w: &mut Walker) -> Vec<Container> {
    let Some(table) = w.table(path, value) else {
        return Vec::new();
    };
    let mut containers = Vec::with_capacity(table.len());
    for (index, (name, value)) in table.iter().enumerate() {
        let path = key_path(path, name);
        let name_problem = rules::container_name_problem(name).or_else(|| {
            (name == crate::network::NETWORK_ONLINE).then(|| {
                format!(
                    "{} is reserved for the network readiness target",
                    quote(name)
                )
            })
        });
        if let Some(problem) = &name_problem {
            w.error(&path, problem.as_str());
        }
        // A badly named container is still walked so its other errors show.
        let Some(table) = w.table(&path, value) else {
            continue;
        };
        let container = walk(index, name, &path, table, w);
        if name_problem.is_none() {
            containers.push(container);
        }
    }
    containers
}

/// What the walk of one container table noted besides the container:
/// which keys were present (for the checks across keys) and the argv
/// parts.
#[derive(Default)]
struct Seen<'v> {
    security: security::Seen,
    mounts_path: Option<String>,
    host_pid_path: Option<String>,
    restart_path: Option<String>,
    essential_path: Option<String>,
    network_path: Option<String>,
    has_rootfs: bool,
    has_image: bool,
    /// None = present but not an array of strings (already reported).
    command: Option<StrList<'v>>,
    args: Option<StrList<'v>>,
}

/// One container table, the `index`-th of the manifest. The result is
/// meaningful only if `w` recorded no error; missing or bad values are
/// left at their defaults.
fn walk(index: usize, name: &str, path: &str, table: &Table, w: &mut Walker) -> Container {
    let mut container = Container::new(name, PathBuf::new());
    let mut seen = Seen {
        command: Some(StrList::empty()),
        args: Some(StrList::empty()),
        ..Seen::default()
    };
    for (key, value) in table {
        let path = key_path(path, key);
        let known = walk_process_key(key, &path, value, &mut container, &mut seen, w)
            || walk_lifecycle_key(key, &path, value, &mut container, &mut seen, w)
            || security::walk_key(key, &path, value, &mut container, &mut seen.security, w);
        if !known {
            w.unknown_key(&path);
        }
    }
    deps::check_container(path, table, &container, w);
    health::check_container(path, table, &container, w);
    security::check_container(index, &mut container, &seen.security, w);
    check_across_keys(path, &mut container, &seen, w);
    // An image's config may supply the whole command line.
    if let (Some(command), Some(args), false) = (&seen.command, &seen.args, seen.has_image) {
        check_argv(path, command, args, w);
    }
    if let (Some(command), Some(args)) = (&seen.command, &seen.args) {
        check_exec_size(path, command, args, &container.env, w);
    }
    let strings = |list: Option<StrList>| -> Vec<String> {
        list.map(|l| l.items.into_iter().map(|(_, s)| s.to_owned()).collect())
            .unwrap_or_default()
    };
    container.command = strings(seen.command);
    container.args = strings(seen.args);
    container
}

/// The keys of what runs and where: image or rootfs, argv, environment,
/// mounts, network, limits. False for a key that is not one of them.
fn walk_process_key<'v>(
    key: &str,
    path: &str,
    value: &'v Value,
    c: &mut Container,
    seen: &mut Seen<'v>,
    w: &mut Walker,
) -> bool {
    match key {
        "kind" => {
            if let Some(kind) = choice(path, value, "kind", rules::KINDS, Kind::as_str, w) {
                c.kind = kind;
            }
        }
        "rootfs" => {
            seen.has_rootfs = true;
            if let Some(rootfs) = rootfs(path, value, w) {
                c.rootfs = rootfs;
            }
        }
        "image" => {
            seen.has_image = true;
            if let Some(s) = w.string(path, value) {
                match s.parse::<ImageRef>() {
                    Ok(r) => c.image = Some(r),
                    Err(e) => w.error(path, e),
                }
            }
        }
        "command" => seen.command = argv_part(path, value, w),
        "args" => seen.args = argv_part(path, value, w),
        "env" => c.env = env(path, value, w),
        "workdir" => {
            if let Some(workdir) = workdir(path, value, w) {
                c.workdir = workdir;
            }
        }
        "mounts" => {
            c.mounts = mounts(path, value, w);
            seen.mounts_path = Some(path.to_owned());
        }
        "volumes" => c.volumes = volumes(path, value, w),
        "network" => {
            let spelling = NetworkMode::as_str;
            let all = &NetworkMode::ALL;
            if let Some(mode) = choice(path, value, "network", all, spelling, w) {
                c.network = mode;
                seen.network_path = Some(path.to_owned());
            }
        }
        "ports" => c.ports = manifest_network::ports(path, value, w),
        "rlimits" => c.rlimits = crate::manifest_rlimits::walk(path, value, w),
        _ => return false,
    }
    true
}

/// The keys of when it runs and how it is stopped and restarted. False for
/// a key that is not one of them.
fn walk_lifecycle_key(
    key: &str,
    path: &str,
    value: &Value,
    c: &mut Container,
    seen: &mut Seen<'_>,
    w: &mut Walker,
) -> bool {
    match key {
        "phase" => {
            if let Some(phase) = choice(path, value, "phase", rules::PHASES, Phase::as_str, w) {
                c.phase = phase;
            }
        }
        "essential" => {
            if let Some(b) = w.boolean(path, value) {
                c.essential = b;
                seen.essential_path = Some(path.to_owned());
            }
        }
        "restart" => {
            seen.restart_path = Some(path.to_owned());
            let spelling = RestartPolicy::as_str;
            if let Some(restart) = choice(path, value, "policy", rules::POLICIES, spelling, w) {
                c.restart = restart;
            }
        }
        "backoff-initial" => set_duration(path, value, w, &mut c.backoff.initial),
        "backoff-max" => set_duration(path, value, w, &mut c.backoff.max),
        "backoff-reset" => set_duration(path, value, w, &mut c.backoff.reset),
        "stop-grace" => set_duration(path, value, w, &mut c.stop_grace),
        "crash-loop-window" => set_duration(path, value, w, &mut c.crash_loop.window),
        "crash-loop-starts" => {
            if let Some(n) = w.integer(path, value) {
                match u32::try_from(n) {
                    Ok(n) if n <= 1000 => c.crash_loop.starts = n,
                    _ => w.error(
                        path,
                        format!("{n} out of range (0 to 1000; 0 turns the protection off)"),
                    ),
                }
            }
        }
        "stop-signal" => {
            if let Some(s) = w.string(path, value) {
                match lifecycle::parse_signal(s) {
                    Ok(n) => c.stop_signal = n,
                    Err(e) => w.error(path, e),
                }
            }
        }
        "console" => {
            if let Some(b) = w.boolean(path, value) {
                c.console = b;
            }
        }
        "log-size" => {
            if let Some(text) = w.string(path, value) {
                match lifecycle::parse_size(text) {
                    Ok(n) => c.log_size = n,
                    Err(e) => w.error(path, e),
                }
            }
        }
        "init" => {
            if let Some(b) = w.boolean(path, value) {
                c.init = b;
            }
        }
        "host-pid" => {
            if let Some(b) = w.boolean(path, value) {
                c.host_pid = b;
                seen.host_pid_path = Some(path.to_owned());
            }
        }
        "after" => c.after = deps::walk_list(path, value, w),
        "requires" => c.requires = deps::walk_list(path, value, w),
        "health" => c.health = health::walk(path, value, w),
        _ => return false,
    }
    true
}

/// The rules between keys of one container (kind, phase, network,
/// restart, backoff, rootfs or image).
fn check_across_keys(path: &str, c: &mut Container, seen: &Seen<'_>, w: &mut Walker) {
    for v in &c.volumes {
        if c.mounts.iter().any(|m| m.destination == v.destination) {
            w.error(
                &format!("{path}.volumes"),
                format!(
                    "volume {} and a host mount both mount {}",
                    quote(&v.name),
                    quote(&v.destination)
                ),
            );
        }
    }
    if let Some(p) = &seen.mounts_path {
        if c.kind != Kind::Host && !c.mounts.is_empty() {
            w.error(
                p,
                "host mounts are only for kind = \"host\" (a workload sees only its own image)",
            );
        }
    }
    match (c.kind, &seen.network_path) {
        // Host containers are defined by sharing the node's network.
        (Kind::Host, Some(p)) if c.network != NetworkMode::Host => w.error(
            p,
            format!(
                "host containers share the node's network (expected \"host\" or no network key; {} is for workloads)",
                quote(c.network.as_str())
            ),
        ),
        (Kind::Host, _) => c.network = NetworkMode::Host,
        _ => {}
    }
    if c.phase != Phase::Service {
        // Run-once phases: no restarts.
        if let Some(p) = &seen.restart_path {
            if c.restart != RestartPolicy::Never {
                w.error(
                    p,
                    format!(
                        "{} containers run once (expected \"never\" or no restart key)",
                        c.phase.as_str()
                    ),
                );
            }
        }
        c.restart = RestartPolicy::Never;
    }
    if let Some(p) = &seen.essential_path {
        if c.phase != Phase::OnBoot {
            w.error(p, "essential is only for phase = \"onboot\"");
        }
    }
    if let Some(p) = &seen.host_pid_path {
        if c.host_pid && c.kind != Kind::Host {
            w.error(p, "the node's PID namespace is only for kind = \"host\"");
        }
    }
    if c.backoff.max < c.backoff.initial {
        w.error(
            &key_path(path, "backoff-max"),
            format!(
                "{} ms is less than backoff-initial ({} ms)",
                c.backoff.max.as_millis(),
                c.backoff.initial.as_millis()
            ),
        );
    }
    match (seen.has_rootfs, seen.has_image) {
        (false, false) => w.error(
            &key_path(path, "rootfs"),
            "missing required key (or set image)",
        ),
        (true, true) => w.error(
            &key_path(path, "image"),
            "rootfs and image exclude each other (the image is the filesystem)",
        ),
        _ => {}
    }
}

/// A string that must be one of `all`'s spellings.
fn choice<T: Copy>(
    path: &str,
    value: &Value,
    what: &str,
    all: &[T],
    spelling: fn(T) -> &'static str,
    w: &mut Walker,
) -> Option<T> {
    let s = w.string(path, value)?;
    let found = rules::pick(all, spelling, s);
    if found.is_none() {
        w.error(
            path,
            format!(
                "unknown {what} {} (expected {})",
                quote(s),
                rules::spellings(all, spelling)
            ),
        );
    }
    found
}

fn rootfs(path: &str, value: &Value, w: &mut Walker) -> Option<PathBuf> {
    let s = w.string(path, value)?;
    if s.is_empty() {
        w.error(path, "empty path (expected a folder on the build host)");
        return None;
    }
    w.no_nul(path, s).then(|| PathBuf::from(s))
}

fn workdir(path: &str, value: &Value, w: &mut Walker) -> Option<String> {
    let s = w.string(path, value)?;
    if let Some(problem) = rules::abs_path_problem(s) {
        w.error(path, problem);
        return None;
    }
    Some(s.to_owned())
}

/// `command` or `args`: an array of strings without NUL bytes. `None`
/// (or an incomplete list) tells `check_argv` to stay quiet.
fn argv_part<'v>(path: &str, value: &'v Value, w: &mut Walker) -> Option<StrList<'v>> {
    let mut list = w.strings(path, value)?;
    for (element_path, s) in &list.items {
        if !w.no_nul(element_path, s) {
            list.complete = false;
        }
    }
    Some(list)
}

/// `command` followed by `args` must name a program.
fn check_argv(path: &str, command: &StrList, args: &StrList, w: &mut Walker) {
    if !command.complete || !args.complete {
        return;
    }
    match command.items.iter().chain(&args.items).next() {
        None => w.error(
            &key_path(path, "command"),
            "no command: set command or args",
        ),
        Some((first_path, "")) => w.error(
            first_path,
            "empty program name (expected the program to run)",
        ),
        Some(_) => {}
    }
}

/// The longest single argument or environment string execve(2) takes:
/// `MAX_ARG_STRLEN`, 32 pages, with its NUL.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// What execve(2) takes for all arguments and environment strings with
/// their pointers: a quarter of the default 8 MiB stack limit.
pub const MAX_EXEC_BYTES: usize = 2 * 1024 * 1024;

/// The kernel refuses an exec whose strings are too long with E2BIG, which
/// a container would only show as an exit code: say it at validation.
fn check_exec_size(
    path: &str,
    command: &StrList,
    args: &StrList,
    env: &[(String, String)],
    w: &mut Walker,
) {
    let mut total = 0usize;
    for (element_path, s) in command.items.iter().chain(&args.items) {
        total += s.len() + 1 + 8;
        if s.len() + 1 > MAX_ARG_STRLEN {
            w.error(
                element_path,
                format!(
                    "argument is {} bytes, over the kernel's {MAX_ARG_STRLEN}-byte limit for one argument (execve fails with E2BIG)",
                    s.len()
                ),
            );
        }
    }
    for (name, value) in env {
        let len = name.len() + 1 + value.len();
        total += len + 1 + 8;
        if len + 1 > MAX_ARG_STRLEN {
            w.error(
                &key_path(&key_path(path, "env"), name),
                format!(
                    "{name}=… is {len} bytes, over the kernel's {MAX_ARG_STRLEN}-byte limit for one environment string (execve fails with E2BIG)"
                ),
            );
        }
    }
    if total > MAX_EXEC_BYTES {
        w.error(
            path,
            format!(
                "command, args and env take {total} bytes, over the kernel's {MAX_EXEC_BYTES}-byte limit (execve fails with E2BIG)"
            ),
        );
    }
}

fn env(path: &str, value: &Value, w: &mut Walker) -> Vec<(String, String)> {
    let Some(table) = w.table(path, value) else {
        return Vec::new();
    };
    let mut env = Vec::with_capacity(table.len());
    for (name, value) in table {
        let path = key_path(path, name);
        let name_problem = rules::env_name_problem(name);
        if let Some(problem) = &name_problem {
            w.error(&path, problem.as_str());
        }
        let Some(s) = w.string(&path, value) else {
            continue;
        };
        if w.no_nul(&path, s) && name_problem.is_none() {
            env.push((name.clone(), s.to_owned()));
        }
    }
    env
}

/// `mounts`: `"SOURCE:DESTINATION[:ro|rw]"` bind mounts of node paths.
fn mounts(path: &str, value: &Value, w: &mut Walker) -> Vec<BindMount> {
    let Some(list) = w.strings(path, value) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (element_path, s) in &list.items {
        match parse_mount(s) {
            Ok(m) => {
                if out
                    .iter()
                    .any(|o: &BindMount| o.destination == m.destination)
                {
                    w.error(
                        element_path,
                        format!("destination {} mounted twice", quote(&m.destination)),
                    );
                } else {
                    out.push(m);
                }
            }
            Err(problem) => w.error(element_path, format!("bad mount {}: {problem}", quote(s))),
        }
    }
    out
}

/// `volumes`: `"NAME:/path[:ro|rw]"`.
fn volumes(path: &str, value: &Value, w: &mut Walker) -> Vec<Volume> {
    let Some(list) = w.strings(path, value) else {
        return Vec::new();
    };
    let mut out: Vec<Volume> = Vec::new();
    for (element_path, s) in &list.items {
        match parse_volume(s) {
            Ok(v) if out.iter().any(|o| o.destination == v.destination) => w.error(
                element_path,
                format!("destination {} mounted twice", quote(&v.destination)),
            ),
            Ok(v) => out.push(v),
            Err(problem) => w.error(element_path, format!("bad volume {}: {problem}", quote(s))),
        }
    }
    out
}

/// Parses `NAME:/path[:ro|rw]`. A name is a folder name on STATE: lower-
/// case letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit, at most 63 characters (so never `..` or a path).
pub(crate) fn parse_volume(s: &str) -> Result<Volume, String> {
    let (name, destination, readonly) = split_mount(s, "NAME:/path[:ro|rw]")?;
    let name_ok = name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !name_ok {
        return Err(format!(
            "name {}: use lower-case letters, digits, -, _ and ., starting with a letter or digit, at most 63",
            quote(name)
        ));
    }
    check_destination(destination)?;
    Ok(Volume {
        name: name.to_owned(),
        destination: destination.to_owned(),
        readonly,
    })
}

/// Splits `WHAT:DESTINATION[:ro|rw]` into its parts and whether it is
/// read-only; `shape` names the form in the error.
fn split_mount<'s>(s: &'s str, shape: &str) -> Result<(&'s str, &'s str, bool), String> {
    match s.split(':').collect::<Vec<_>>().as_slice() {
        [what, dst] => Ok((what, dst, false)),
        [what, dst, "ro"] => Ok((what, dst, true)),
        [what, dst, "rw"] => Ok((what, dst, false)),
        [_, _, opt] => Err(format!("unknown option {} (expected ro, rw)", quote(opt))),
        _ => Err(format!("expected {shape}")),
    }
}

/// A mount's destination: absolute, normal, not the container's `/`.
fn check_destination(destination: &str) -> Result<(), String> {
    if let Some(problem) = rules::abs_path_problem(destination) {
        return Err(format!("destination: {problem}"));
    }
    if destination == "/" {
        return Err("destination: cannot mount over the container's /".into());
    }
    Ok(())
}

/// Parses `SOURCE:DESTINATION[:ro|rw]`; both paths absolute.
pub(crate) fn parse_mount(s: &str) -> Result<BindMount, String> {
    let (source, destination, readonly) = split_mount(s, "SOURCE:DESTINATION[:ro|rw]")?;
    if let Some(problem) = rules::abs_path_problem(source) {
        return Err(format!("source: {problem}"));
    }
    check_destination(destination)?;
    Ok(BindMount {
        source: source.to_owned(),
        destination: destination.to_owned(),
        readonly,
    })
}

/// A duration key (`"100ms"`, `"30s"`): sets `slot` when valid.
fn set_duration(path: &str, value: &Value, w: &mut Walker, slot: &mut std::time::Duration) {
    if let Some(s) = w.string(path, value) {
        match lifecycle::parse_duration(s) {
            Ok(d) => *slot = d,
            Err(e) => w.error(path, e),
        }
    }
}
