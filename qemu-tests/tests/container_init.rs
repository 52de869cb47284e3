//! `init = true` under QEMU: the command runs under `berth init`, which
//! reaps the orphans it leaves; the same script without it leaves zombies
//! (the control that shows the check can fail).

use qemu_tests::{TestImage, Vm, BOOT};

/// Orphans ten `sleep`s and then execs `sleep 4`, which never reaps: it
/// only stays zombie-free if something else is the namespace's init. A
/// background subshell counts the zombies of the PID namespace after the
/// orphans died, with shell builtins only (no child of its own to confuse
/// the count). A shell cannot be the control: ash reaps any child it sees.
const SCRIPT: &str = r#"echo "PID 1 is $(cat /proc/1/comm)"
(sleep 2; n=0; for f in /proc/[0-9]*/stat; do read -r l < $f; case "$l" in *") Z "*) n=$((n+1));; esac; done; echo "zombies: $n") &
for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.5 &); done
exec sleep 4"#;

#[test]
fn init_reaps_what_the_command_orphans() {
    let script = SCRIPT.replace('"', "\\\"").replace('\n', "\\n");
    let image = TestImage::build(
        "init",
        &format!(
            r#"
[container.with-init]
rootfs = "@BUSYBOX@"
init = true
restart = "never"
command = ["/bin/sh", "-c", "{script}"]

[container.without-init]
rootfs = "@BUSYBOX@"
restart = "never"
command = ["/bin/sh", "-c", "{script}"]
"#
        ),
    );
    let mut vm = Vm::boot(&image);
    vm.wait_for("with-init | PID 1 is berth", BOOT);
    vm.wait_for("without-init | PID 1 is sh", BOOT);
    vm.wait_for("without-init exited with code 0", BOOT);
    let with = vm.wait_for("with-init | zombies:", BOOT);
    let without = vm.wait_for("without-init | zombies:", BOOT);
    assert!(
        with.ends_with("zombies: 0"),
        "berth init left zombies: {with}"
    );
    let left: u32 = without
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        left > 0,
        "the control shows no zombies, so the check cannot tell: {without}"
    );
    // berth init passes the command's status on.
    vm.wait_for("with-init exited with code 0", BOOT);
}
