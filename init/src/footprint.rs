//! PID 1's resident memory after boot. Most of it is the binary's own
//! pages: the boot touches stage-1 code that never runs again (manifest
//! checks, disk set-up, the first launches' paths), and the kernel's
//! fault-around maps whole 64 KiB windows of it. Once the boot's first
//! launches have ended (the `supervising` line), PID 1 hands those clean pages back (`MADV_PAGEOUT` over the
//! mappings of its executable); what the loop uses afterwards is read
//! back through dm-verity on first touch, as any page would be.

/// The mappings of PID 1's executable in `/proc/self/maps` text: start
/// and length of each.
pub fn exe_mappings(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let path = fields.nth(4)?;
            if path != exe {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then(|| (start, end - start))
        })
        .collect()
}

/// Pages out PID 1's executable mappings; returns how many KiB the
/// resident set shrank by, for the console line.
pub fn release_boot_pages() -> Option<(u64, u64)> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let before = rss_file_kib()?;
    for (start, len) in exe_mappings(&maps, &exe.to_string_lossy()) {
        if let Err(e) = crate::sys::page_out(start, len) {
            log::debug!("page out {start:#x}+{len:#x}: {e}");
            return None;
        }
    }
    let after = rss_file_kib()?;
    Some((before, after))
}

fn rss_file_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssFile:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_the_executable_s_mappings() {
        let maps = "\
00400000-00452000 r--p 00000000 fe:00 12 /sbin/init
00452000-00a00000 r-xp 00052000 fe:00 12 /sbin/init
00c00000-00c10000 rw-p 00800000 fe:00 12 /sbin/init
01000000-01021000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000001000 r--p 00000000 fe:00 13 /sbin/init-other
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
";
        assert_eq!(
            exe_mappings(maps, "/sbin/init"),
            vec![
                (0x40_0000, 0x5_2000),
                (0x45_2000, 0x5a_e000),
                (0xc0_0000, 0x1_0000)
            ]
        );
        assert!(exe_mappings(maps, "/usr/bin/other").is_empty());
    }
}
