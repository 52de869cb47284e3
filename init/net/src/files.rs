//! `/etc/resolv.conf` and `/etc/hosts`, for the node and for each
//! container: rendered by pure functions, written in place.
//!
//! Containers see these files through read-only bind mounts, which pin the
//! inode: replacing a file by rename would leave every container with the
//! old one. So a file is rewritten in place (truncate, write), and only
//! when its content changes.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

/// resolv.conf(5): `nameserver` lines (at most three count; more are kept
/// for the reader's information, resolvers ignore them) and `search`.
pub fn resolv_conf(servers: &[Ipv4Addr], search: &[String]) -> String {
    let mut out = String::from("# written by berth\n");
    let mut seen = Vec::new();
    for s in servers {
        if !seen.contains(s) {
            seen.push(*s);
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out
}

/// Name servers a container in its own network namespace can use: the
/// node's, minus loopback ones (they would be the container's own
/// loopback).
pub fn container_servers(node: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    node.iter().copied().filter(|a| !a.is_loopback()).collect()
}

/// hosts(5): localhost, then `own` (the name this file's reader calls
/// itself, with its address), then `others` (name, address) in order.
pub fn hosts(own: Option<(&str, Ipv4Addr)>, others: &[(String, Ipv4Addr)]) -> String {
    let mut out = String::from(
        "# written by berth\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    if let Some((name, addr)) = own {
        out.push_str(&format!("{addr}\t{name}\n"));
    }
    for (name, addr) in others {
        if own.is_none_or(|(n, _)| n != name) {
            out.push_str(&format!("{addr}\t{name}\n"));
        }
    }
    out
}

/// Writes `content` to `path` in place unless it already holds exactly
/// that; creates the file (mode 0644) and its folder if needed.
pub fn write_in_place(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("valid address")
    }

    #[test]
    fn resolv_conf_lists_servers_once_and_search() {
        let text = resolv_conf(
            &[ip("10.0.2.3"), ip("192.0.2.53"), ip("10.0.2.3")],
            &["example.org".into(), "lan".into()],
        );
        assert_eq!(
            text,
            "# written by berth\nnameserver 10.0.2.3\nnameserver 192.0.2.53\nsearch example.org lan\n"
        );
        assert_eq!(resolv_conf(&[], &[]), "# written by berth\n");
        assert_eq!(
            container_servers(&[ip("127.0.0.53"), ip("10.0.2.3")]),
            vec![ip("10.0.2.3")]
        );
    }

    #[test]
    fn hosts_has_localhost_own_name_and_neighbours() {
        let others = vec![
            ("db".to_owned(), ip("10.88.0.3")),
            ("web".to_owned(), ip("10.88.0.2")),
        ];
        let text = hosts(Some(("web", ip("10.88.0.2"))), &others);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "# written by berth",
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "10.88.0.2\tweb",
                "10.88.0.3\tdb",
            ]
        );
        assert!(hosts(None, &[]).ends_with("ip6-loopback\n"));
    }

    #[test]
    fn writes_in_place_keeping_the_inode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("net/web/hosts");
        write_in_place(&path, "one\n").expect("create");
        let inode = std::fs::metadata(&path).expect("meta").ino();
        write_in_place(&path, "two, longer\n").expect("rewrite");
        write_in_place(&path, "3\n").expect("shorter");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "3\n");
        assert_eq!(std::fs::metadata(&path).expect("meta").ino(), inode);
    }
}
