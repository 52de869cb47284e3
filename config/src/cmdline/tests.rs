//! Table tests for the `berth.*` command-line parser.

use super::*;

/// Starts from the defaults and applies `f`, for compact table rows.
fn with(f: fn(&mut KernelCmdline)) -> KernelCmdline {
    let mut c = KernelCmdline::default();
    f(&mut c);
    c
}

const HASH: &str = "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcd";
/// 64 characters, one of them not a hex digit.
const NOT_HEX: &str = "4bd5902c7f765f14cca1871176470d5c78c75c18b85a763584632993d49a5fcg";

#[test]
fn parse_root_and_rootwait() {
    let cases: Vec<(&str, &str, KernelCmdline)> = vec![
        ("empty", "", KernelCmdline::default()),
        (
            "no berth words",
            "console=ttyS0 root=/dev/sda quiet berthx=1 berth=2",
            KernelCmdline::default(),
        ),
        (
            "root",
            "berth.root=/dev/vdb",
            with(|c| c.root = Some("/dev/vdb".into())),
        ),
        ("slot b", "berth.slot=b", with(|c| c.slot = 'b')),
        (
            "slot bad keeps a",
            "berth.slot=c",
            with(|c| {
                c.invalid = vec!["berth.slot: unknown slot \"c\" (expected a or b); using a".into()]
            }),
        ),
        (
            "rootfstype erofs",
            "berth.rootfstype=erofs",
            with(|c| c.rootfstype = Some("erofs".into())),
        ),
        (
            "rootfstype squashfs",
            "berth.rootfstype=squashfs",
            with(|c| c.rootfstype = Some("squashfs".into())),
        ),
        (
            "rootfstype bad keeps detection",
            "berth.rootfstype=ext4",
            with(|c| {
                c.invalid = vec![
                    "berth.rootfstype: unknown filesystem \"ext4\" (expected erofs, squashfs); using detection".into(),
                ]
            }),
        ),
        (
            "rootwait integer",
            "berth.rootwait=3",
            with(|c| c.root_wait = Duration::from_secs(3)),
        ),
        (
            "rootwait decimal",
            "berth.rootwait=2.5",
            with(|c| c.root_wait = Duration::from_millis(2500)),
        ),
        (
            "rootwait zero",
            "berth.rootwait=0",
            with(|c| c.root_wait = Duration::ZERO),
        ),
        (
            "rootwait leading dot",
            "berth.rootwait=.25",
            with(|c| c.root_wait = Duration::from_millis(250)),
        ),
        (
            "rootwait bad",
            "berth.rootwait=-1",
            with(|c| {
                c.invalid = vec![
                    "berth.rootwait: invalid duration \"-1\" (expected seconds, such as 10 or 2.5); using 10 s".into(),
                ]
            }),
        ),
        (
            "rootwait nan",
            "berth.rootwait=nan berth.rootwait=1e3 berth.rootwait=.",
            with(|c| {
                c.invalid = ["nan", "1e3", "."]
                    .iter()
                    .map(|v| format!("berth.rootwait: invalid duration \"{v}\" (expected seconds, such as 10 or 2.5); using 10 s"))
                    .collect()
            }),
        ),
    ];
    check_parse(cases);
}

#[test]
fn parse_panic_and_debug() {
    let cases: Vec<(&str, &str, KernelCmdline)> = vec![
        (
            "panic halt",
            "berth.panic=halt",
            with(|c| c.panic = PanicAction::Halt),
        ),
        (
            "panic poweroff",
            "berth.panic=poweroff",
            with(|c| c.panic = PanicAction::Poweroff),
        ),
        (
            "panic bad",
            "berth.panic=explode",
            with(|c| {
                c.invalid = vec![
                    "berth.panic: unknown action \"explode\" (expected reboot, halt, poweroff); using reboot".into(),
                ]
            }),
        ),
        (
            "bad value keeps earlier good one",
            "berth.panic=halt berth.panic=explode",
            with(|c| {
                c.panic = PanicAction::Halt;
                c.invalid = vec![
                    "berth.panic: unknown action \"explode\" (expected reboot, halt, poweroff); using halt".into(),
                ]
            }),
        ),
        (
            "panic flag without value",
            "berth.panic",
            with(|c| {
                c.invalid = vec![
                    "berth.panic: unknown action \"\" (expected reboot, halt, poweroff); using reboot".into(),
                ]
            }),
        ),
        ("debug flag", "berth.debug", with(|c| c.debug = true)),
        ("debug =1", "berth.debug=1", with(|c| c.debug = true)),
        ("debug =true", "berth.debug=true", with(|c| c.debug = true)),
        (
            "debug =0 after flag",
            "berth.debug berth.debug=0",
            with(|c| c.debug = false),
        ),
        (
            "debug =false",
            "berth.debug=1 berth.debug=false",
            with(|c| c.debug = false),
        ),
        (
            "debug bad",
            "berth.debug=yes",
            with(|c| {
                c.invalid = vec![
                    "berth.debug: invalid value \"yes\" (expected 1, 0, true or false); using false".into(),
                ]
            }),
        ),
    ];
    check_parse(cases);
}

#[test]
fn parse_verity_and_words() {
    let verity_line = format!("console=ttyS0 berth.verity={HASH}");
    let verity_upper_line = format!("berth.verity={}", HASH.to_uppercase());
    let verity_then_bad_line = format!("berth.verity={HASH} berth.verity={NOT_HEX}");
    let cases: Vec<(&str, &str, KernelCmdline)> = vec![
        (
            "verity",
            &verity_line,
            with(|c| c.verity = RootVerity::RootHash(HASH.into())),
        ),
        (
            "verity upper case is lowered",
            &verity_upper_line,
            with(|c| c.verity = RootVerity::RootHash(HASH.into())),
        ),
        (
            "verity too short",
            "berth.verity=abc",
            with(|c| {
                c.verity = RootVerity::Invalid;
                c.invalid = vec![
                    "berth.verity: invalid root hash \"abc\" (expected 64 hex digits); the root will not be mounted unverified".into(),
                ]
            }),
        ),
        (
            "verity without value",
            "berth.verity",
            with(|c| {
                c.verity = RootVerity::Invalid;
                c.invalid = vec![
                    "berth.verity: invalid root hash \"\" (expected 64 hex digits); the root will not be mounted unverified".into(),
                ]
            }),
        ),
        (
            "verity bad after good fails closed",
            &verity_then_bad_line,
            with(|c| {
                c.verity = RootVerity::Invalid;
                c.invalid = vec![format!(
                    "berth.verity: invalid root hash \"{}\" (expected 64 hex digits); the root will not be mounted unverified",
                    NOT_HEX
                )]
            }),
        ),
        (
            "later overrides earlier",
            "berth.root=/dev/vda berth.root=/dev/vdc",
            with(|c| c.root = Some("/dev/vdc".into())),
        ),
        (
            "empty root",
            "berth.root=",
            with(|c| c.invalid = vec!["berth.root: expected a device path; using the slot partition".into()]),
        ),
        (
            "quoted value with spaces",
            "quiet berth.root=\"/dev/disk/by-label/my root\" ro",
            with(|c| c.root = Some("/dev/disk/by-label/my root".into())),
        ),
        (
            "quoted whole word",
            "\"berth.root=/dev/a b\"",
            with(|c| c.root = Some("/dev/a b".into())),
        ),
        (
            "unknown options kept whole",
            "berth.colour=red berth.flag berth.x=\"a b\"",
            with(|c| c.unknown = vec!["berth.colour=red".into(), "berth.flag".into(), "berth.x=a b".into()]),
        ),
        (
            "tabs and newlines separate",
            "a\tberth.debug\nberth.panic=halt\n",
            with(|c| {
                c.debug = true;
                c.panic = PanicAction::Halt;
            }),
        ),
        (
            "everything",
            "BOOT_IMAGE=/vmlinuz berth.root=/dev/vdb berth.rootfstype=squashfs berth.rootwait=30 berth.panic=poweroff berth.debug -- init-arg",
            with(|c| {
                c.root = Some("/dev/vdb".into());
                c.rootfstype = Some("squashfs".into());
                c.root_wait = Duration::from_secs(30);
                c.panic = PanicAction::Poweroff;
                c.debug = true;
            }),
        ),
    ];
    check_parse(cases);
}

fn check_parse(cases: Vec<(&str, &str, KernelCmdline)>) {
    for (name, cmdline, want) in cases {
        assert_eq!(
            KernelCmdline::parse(cmdline),
            want,
            "case {name:?}: {cmdline:?}"
        );
    }
}

#[test]
fn default_values() {
    let c = KernelCmdline::default();
    assert_eq!(c.root, None);
    assert_eq!(c.root_wait, Duration::from_secs(10));
    assert_eq!(c.panic, PanicAction::Reboot);
    assert_eq!(c.rootfstype, None);
    assert!(!c.debug);
    assert_eq!(c.verity, RootVerity::Off);
}

#[test]
fn root_hashes() {
    let cases = [
        (HASH, Some(HASH.to_owned())),
        (&HASH.to_uppercase(), Some(HASH.to_owned())),
        (&HASH[1..], None),
        (NOT_HEX, None),
        ("", None),
        (&format!("{HASH}0"), None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_root_hash(text), want, "parse_root_hash({text:?})");
    }
}

#[test]
fn seconds() {
    let cases = [
        ("0", Some(Duration::ZERO)),
        ("10", Some(Duration::from_secs(10))),
        ("1.5", Some(Duration::from_millis(1500))),
        ("1.", Some(Duration::from_secs(1))),
        ("0.000000001", Some(Duration::from_nanos(1))),
        ("0.0000000019", Some(Duration::from_nanos(1))),
        ("", None),
        (".", None),
        ("-1", None),
        ("+1", None),
        ("1e3", None),
        ("inf", None),
        ("1.2.3", None),
        ("99999999999999999999", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_seconds(text), want, "parse_seconds({text:?})");
    }
}

/// Found by the `cmdline` fuzz target: a quoted value may hold a newline,
/// and a later bad value named it unescaped, splitting the log line.
#[test]
fn kept_value_is_escaped() {
    let c = KernelCmdline::parse("berth.root=\"/dev/a\nb\" berth.root=");
    assert_eq!(c.root.as_deref(), Some("/dev/a\nb"));
    assert_eq!(
        c.invalid,
        vec!["berth.root: expected a device path; using /dev/a\\nb".to_owned()]
    );
}
