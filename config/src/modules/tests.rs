//! Table tests for the module index, on a small hand-made depmod output
//! shaped like Debian 6.1's.

use super::*;

const DEP: &str = "\
kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/md/dm-verity.ko.xz: kernel/drivers/md/dm-bufio.ko.xz kernel/drivers/md/dm-mod.ko.xz
kernel/drivers/md/dm-bufio.ko.xz: kernel/drivers/md/dm-mod.ko.xz
kernel/drivers/md/dm-mod.ko.xz:
kernel/fs/overlayfs/overlay.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/char/ipmi/ipmi_msghandler.ko:
kernel/drivers/char/ipmi/ipmi_devintf.ko: kernel/drivers/char/ipmi/ipmi_msghandler.ko
kernel/fs/smb/cifs.ko.zst:
kernel/test/cycle_a.ko.gz:
kernel/test/cycle_b.ko.gz:
";

const SOFTDEP: &str = "\
# Soft dependencies extracted from modules themselves.
softdep libcrc32c pre: crc32c
softdep ext4 pre: crypto-crc32c
softdep ext4 pre: no_such_thing
softdep ext4 pre: serial_8250
softdep ipmi_msghandler post: ipmi_devintf
softdep cifs gcm
softdep cycle_a pre: cycle_b
softdep cycle_b pre: cycle_a post: cycle_a
";

const ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias crc32c-intel crc32c_intel
alias crc32c crc32c_intel
alias crc32c crc32c_generic
alias crypto-crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias fs-erofs erofs
alias serial_8250 8250
alias virtio:d00000002v* virtio_blk
alias gcm missing_module
";

const BUILTIN: &str = "\
kernel/drivers/tty/serial/8250/8250.ko
kernel/lib/crc32.ko
";

fn index() -> ModuleIndex {
    let files = ModuleFiles {
        dep: DEP,
        softdep: SOFTDEP,
        alias: ALIAS,
        builtin: BUILTIN,
    };
    match ModuleIndex::parse(&files) {
        Ok(index) => index,
        Err(e) => panic!("test index does not parse: {e}"),
    }
}

/// (name, optional) pairs, the part of a step the order tests look at.
fn names(steps: &[LoadStep]) -> Vec<(&str, bool)> {
    steps
        .iter()
        .map(|s| (s.name.as_str(), s.optional))
        .collect()
}

const REQ: bool = false;
const OPT: bool = true;

/// (case name, requested names, expected (name, optional) steps)
type OrderCase = (
    &'static str,
    &'static [&'static str],
    Vec<(&'static str, bool)>,
);

#[test]
fn load_order_dependencies() {
    let cases: Vec<OrderCase> = vec![
        ("nothing", &[], vec![]),
        (
            "erofs: softdeps of a dependency come first, every alias target optional",
            &["erofs"],
            vec![
                ("crc32c_intel", OPT),
                ("crc32c_generic", OPT),
                ("libcrc32c", REQ),
                ("erofs", REQ),
            ],
        ),
        (
            "virtio_blk",
            &["virtio_blk"],
            vec![("virtio_ring", REQ), ("virtio", REQ), ("virtio_blk", REQ)],
        ),
        (
            "virtio_pci: deps deepest-first",
            &["virtio_pci"],
            vec![
                ("virtio_ring", REQ),
                ("virtio", REQ),
                ("virtio_pci_modern_dev", REQ),
                ("virtio_pci_legacy_dev", REQ),
                ("virtio_pci", REQ),
            ],
        ),
        (
            "shared deps appear once",
            &["virtio_pci", "virtio_blk"],
            vec![
                ("virtio_ring", REQ),
                ("virtio", REQ),
                ("virtio_pci_modern_dev", REQ),
                ("virtio_pci_legacy_dev", REQ),
                ("virtio_pci", REQ),
                ("virtio_blk", REQ),
            ],
        ),
        (
            "requested twice",
            &["overlay", "overlay"],
            vec![("overlay", REQ)],
        ),
    ];
    check_load_order(cases);
}

#[test]
fn load_order_builtins_and_aliases() {
    let cases: Vec<OrderCase> = vec![
        ("builtin is a no-op", &["8250"], vec![]),
        ("builtin by path-like name", &["crc32"], vec![]),
        ("alias to a builtin is a no-op", &["serial_8250"], vec![]),
        (
            "dashes and underscores are one",
            &["dm-verity"],
            vec![("dm_mod", REQ), ("dm_bufio", REQ), ("dm_verity", REQ)],
        ),
        (
            "compressed module names",
            &["dm_verity"],
            vec![("dm_mod", REQ), ("dm_bufio", REQ), ("dm_verity", REQ)],
        ),
        (
            "alias with one target is required",
            &["fs-erofs"],
            vec![
                ("crc32c_intel", OPT),
                ("crc32c_generic", OPT),
                ("libcrc32c", REQ),
                ("erofs", REQ),
            ],
        ),
        (
            "alias with several targets is optional",
            &["crc32c"],
            vec![("crc32c_intel", OPT), ("crc32c_generic", OPT)],
        ),
        (
            "module name wins over alias",
            &["crc32c-intel"],
            vec![("crc32c_intel", REQ)],
        ),
        (
            "optional then required becomes required in place",
            &["erofs", "crc32c_generic"],
            vec![
                ("crc32c_intel", OPT),
                ("crc32c_generic", REQ),
                ("libcrc32c", REQ),
                ("erofs", REQ),
            ],
        ),
        (
            "required then optional stays required",
            &["crc32c_intel", "erofs"],
            vec![
                ("crc32c_intel", REQ),
                ("crc32c_generic", OPT),
                ("libcrc32c", REQ),
                ("erofs", REQ),
            ],
        ),
    ];
    check_load_order(cases);
}

#[test]
fn load_order_softdeps() {
    let cases: Vec<OrderCase> = vec![
        (
            "merged softdep lines; unknown and builtin softdeps skipped",
            &["ext4"],
            vec![
                ("crc32c_intel", OPT),
                ("crc32c_generic", OPT),
                ("jbd2", REQ),
                ("mbcache", REQ),
                ("crc16", REQ),
                ("ext4", REQ),
            ],
        ),
        (
            "post softdep after the module",
            &["ipmi_msghandler"],
            vec![("ipmi_msghandler", REQ), ("ipmi_devintf", OPT)],
        ),
        (
            "post softdep that is also requested",
            &["ipmi_msghandler", "ipmi_devintf"],
            vec![("ipmi_msghandler", REQ), ("ipmi_devintf", REQ)],
        ),
        (
            "softdep without pre: or post: is ignored",
            &["cifs"],
            vec![("cifs", REQ)],
        ),
        (
            "softdep cycle terminates",
            &["cycle_a"],
            vec![("cycle_b", OPT), ("cycle_a", REQ)],
        ),
    ];
    check_load_order(cases);
}

fn check_load_order(cases: Vec<OrderCase>) {
    let index = index();
    for (name, request, want) in cases {
        match index.load_order(request) {
            Ok(steps) => assert_eq!(names(&steps), want, "case {name:?}"),
            Err(e) => panic!("case {name:?}: {e}"),
        }
    }
}

#[test]
fn unknown_names() {
    let cases: Vec<(&str, &[&str], &str)> = vec![
        ("plain unknown", &["nope"], "nope"),
        (
            "first unknown of several",
            &["erofs", "nope", "nope2"],
            "nope",
        ),
        ("unknown after builtin", &["8250", "zzz"], "zzz"),
        ("alias to a missing module", &["gcm"], "gcm"),
        (
            "wildcard aliases are not looked up",
            &["virtio:d00000002v*"],
            "virtio:d00000002v*",
        ),
    ];
    let index = index();
    for (name, request, want) in cases {
        match index.load_order(request) {
            Err(ModuleError::Unknown(got)) => assert_eq!(got, want, "case {name:?}"),
            other => panic!("case {name:?}: expected Unknown({want:?}), got {other:?}"),
        }
    }
}

#[test]
fn paths_kept_as_written() {
    let index = index();
    let steps = match index.load_order(&["dm-verity"]) {
        Ok(steps) => steps,
        Err(e) => panic!("{e}"),
    };
    let paths: Vec<&str> = steps.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "kernel/drivers/md/dm-mod.ko.xz",
            "kernel/drivers/md/dm-bufio.ko.xz",
            "kernel/drivers/md/dm-verity.ko.xz",
        ]
    );
}

#[test]
fn normalize_table() {
    let cases = [
        ("erofs", "erofs"),
        ("dm-verity", "dm_verity"),
        ("dm-verity.ko", "dm_verity"),
        ("kernel/drivers/md/dm-verity.ko", "dm_verity"),
        ("kernel/drivers/md/dm-verity.ko.xz", "dm_verity"),
        ("kernel/drivers/md/dm-verity.ko.zst", "dm_verity"),
        ("kernel/drivers/md/dm-verity.ko.gz", "dm_verity"),
        ("crc32c-intel", "crc32c_intel"),
    ];
    for (name, want) in cases {
        assert_eq!(ModuleIndex::normalize(name), want, "normalize({name:?})");
    }
}

#[test]
fn builtins() {
    let index = index();
    let cases = [
        ("8250", true),
        ("crc32", true),
        ("kernel/lib/crc32.ko", true),
        ("erofs", false),
        ("serial_8250", false),
    ];
    for (name, want) in cases {
        assert_eq!(index.is_builtin(name), want, "is_builtin({name:?})");
    }
}

#[test]
fn dep_parse_errors() {
    let cases = [
        (
            "no colon",
            "kernel/a.ko: \nkernel/b.ko\n",
            2,
            "expected \"path.ko: dependencies\"",
        ),
        (
            "not a module",
            "kernel/a.txt:\n",
            1,
            "\"kernel/a.txt\" is not a module file",
        ),
        (
            "bad dependency",
            "\n# c\nkernel/a.ko: kernel/b\n",
            3,
            "\"kernel/b\" is not a module file",
        ),
        (
            "listed twice",
            "kernel/a-b.ko:\nother/a_b.ko.xz:\n",
            2,
            "module a_b listed twice",
        ),
        ("suffix only", "kernel/.ko:\n", 1, "is not a module file"),
    ];
    for (name, dep, want_line, want_message) in cases {
        let files = ModuleFiles {
            dep,
            softdep: "",
            alias: "",
            builtin: "",
        };
        match ModuleIndex::parse(&files) {
            Err(ModuleError::Parse { line, message }) => {
                assert_eq!(line, want_line, "case {name:?}");
                assert!(message.contains(want_message), "case {name:?}: {message}");
            }
            other => panic!("case {name:?}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn dependency_without_its_own_line() {
    let files = ModuleFiles {
        dep: "kernel/a.ko: kernel/b.ko kernel/c.ko\n",
        softdep: "",
        alias: "",
        builtin: "",
    };
    let steps = ModuleIndex::parse(&files).and_then(|i| i.load_order(&["a"]));
    match steps {
        Ok(steps) => assert_eq!(names(&steps), [("c", REQ), ("b", REQ), ("a", REQ)]),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn subset_files_are_small_and_consistent() {
    let index = index();
    let request = ["erofs", "ipmi_msghandler", "virtio_blk"];
    let steps = match index.load_order(&request) {
        Ok(steps) => steps,
        Err(e) => panic!("{e}"),
    };
    let (dep, softdep, alias, builtin) = index.subset_files(&steps);
    assert_eq!(
        dep,
        "\
kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/ipmi/ipmi_msghandler.ko:
kernel/drivers/char/ipmi/ipmi_devintf.ko: kernel/drivers/char/ipmi/ipmi_msghandler.ko
"
    );
    assert_eq!(
        softdep,
        "softdep libcrc32c pre: crc32c\nsoftdep ipmi_msghandler post: ipmi_devintf\n"
    );
    assert_eq!(
        alias,
        "\
alias crc32c-intel crc32c_intel
alias crc32c crc32c_intel
alias crc32c crc32c_generic
alias crypto-crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias fs-erofs erofs
alias virtio:d00000002v* virtio_blk
"
    );
    assert_eq!(builtin, BUILTIN);

    // The subset gives the same order as the full index.
    let files = ModuleFiles {
        dep: &dep,
        softdep: &softdep,
        alias: &alias,
        builtin: &builtin,
    };
    let again = ModuleIndex::parse(&files).and_then(|i| i.load_order(&request));
    match again {
        Ok(again) => assert_eq!(again, steps),
        Err(e) => panic!("subset does not parse: {e}"),
    }
}
