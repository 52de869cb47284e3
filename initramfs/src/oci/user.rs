//! Resolving an image's `User` to numeric ids through its rootfs.
//!
//! The rules are runc's (`libcontainer/user`), which Docker and
//! containerd share: `USER[:GROUP]`, each part a name or a number. A
//! numeric user need not exist (its gid is then taken from `/etc/passwd`
//! when listed there, else 0); a named one must. An explicit group sets
//! the gid and no supplementary groups; without one, the user's primary
//! gid applies and every `/etc/group` entry listing the user by name adds
//! a supplementary group. An empty user means root.
//!
//! `/etc/passwd` and `/etc/group` are read with the rootfs as `/`
//! ([`nofollow::resolve_in_root`]): an image whose `/etc/passwd` is a
//! symlink to `/host/passwd` gets the rootfs's `/host/passwd` (usually
//! none), never the builder's files. Missing files count as empty.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::OciError;
use crate::nofollow;

/// Larger account files are not read.
const MAX_FILE: u64 = 4 << 20;

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// `(uid, gid, supplementary gids)` for the image user `user`, looked up
/// in the unpacked `rootfs`.
pub fn resolve_user(user: &str, rootfs: &Path) -> Result<(u32, u32, Vec<u32>), OciError> {
    let passwd = read_in_root(rootfs, "/etc/passwd", user)?;
    let group = read_in_root(rootfs, "/etc/group", user)?;
    lookup(user, &parse_passwd(&passwd), &parse_group(&group)).map_err(|why| OciError::User {
        user: user.to_owned(),
        why,
    })
}

/// The file at `path` inside `rootfs` (rootfs as `/`); empty when missing.
fn read_in_root(rootfs: &Path, path: &str, user: &str) -> Result<String, OciError> {
    let err = |why: String| OciError::User {
        user: user.to_owned(),
        why: format!("read {path} in {}: {why}", rootfs.display()),
    };
    let Some(host) =
        nofollow::resolve_in_root(rootfs, Path::new(path)).map_err(|e| err(e.to_string()))?
    else {
        return Ok(String::new());
    };
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&host)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Non-comment lines split at `:`, with at least `min` fields.
fn records(text: &str, min: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= min)
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    records(text, 4)
        .filter_map(|f| {
            Some(Passwd {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    records(text, 3)
        .filter_map(|f| {
            Some(Group {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// runc's `GetExecUser` over parsed files.
fn lookup(spec: &str, passwd: &[Passwd], groups: &[Group]) -> Result<(u32, u32, Vec<u32>), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let (uid, mut gid, name) = match user.parse::<u32>() {
        Ok(uid) => match passwd.iter().find(|p| p.uid == uid) {
            Some(p) => (uid, p.gid, Some(p.name.as_str())),
            None => (uid, 0, None),
        },
        Err(_) => match passwd.iter().find(|p| p.name == user) {
            Some(p) => (p.uid, p.gid, Some(p.name.as_str())),
            None => return Err(format!("no user {user:?} in /etc/passwd")),
        },
    };
    let Some(group) = group else {
        let mut extra: Vec<u32> = Vec::new();
        for g in groups {
            if name.is_some_and(|n| g.members.iter().any(|m| m == n)) && !extra.contains(&g.gid) {
                extra.push(g.gid);
            }
        }
        return Ok((uid, gid, extra));
    };
    gid = match group.parse::<u32>() {
        Ok(n) => n,
        Err(_) => match groups.iter().find(|g| g.name == group) {
            Some(g) => g.gid,
            None => return Err(format!("no group {group:?} in /etc/group")),
        },
    };
    Ok((uid, gid, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken line
odd:x:notanumber:1::/:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,app
nginx:x:101:
app:x:1000:
www-data:x:33:app,nginx
audio:x:29:app
";

    #[test]
    fn users() {
        let passwd = parse_passwd(PASSWD);
        let groups = parse_group(GROUP);
        type Row<'a> = (&'a str, Result<(u32, u32, Vec<u32>), &'a str>);
        let rows: &[Row] = &[
            ("", Ok((0, 0, vec![10]))),
            ("root", Ok((0, 0, vec![10]))),
            ("nginx", Ok((101, 101, vec![33]))),
            ("app", Ok((1000, 1000, vec![10, 33, 29]))),
            ("101", Ok((101, 101, vec![33]))),
            ("4242", Ok((4242, 0, vec![]))),
            ("101:101", Ok((101, 101, vec![]))),
            ("4242:4243", Ok((4242, 4243, vec![]))),
            ("nginx:www-data", Ok((101, 33, vec![]))),
            ("app:0", Ok((1000, 0, vec![]))),
            ("1000:audio", Ok((1000, 29, vec![]))),
            ("app:", Ok((1000, 1000, vec![10, 33, 29]))),
            ("nobody", Err("no user \"nobody\" in /etc/passwd")),
            ("odd", Err("no user \"odd\" in /etc/passwd")),
            ("app:nogroup", Err("no group \"nogroup\" in /etc/group")),
        ];
        for (spec, want) in rows {
            let got = lookup(spec, &passwd, &groups);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{spec}"),
                (Err(w), Err(g)) => assert_eq!(w, g, "{spec}"),
                _ => panic!("{spec}: got {got:?}, want {want:?}"),
            }
        }
    }
}
