#!/usr/bin/env bash
# Builds the boot benchmark's comparison node: a minimal Debian bookworm
# (debootstrap minbase) with systemd and crun that runs one busybox
# container as a systemd unit, booted with the kernel berth boots, the
# way berth's direct mode boots (QEMU's -kernel/-initrd, same machine,
# memory and CPU count). Outputs, in OUT_DIR:
#
#   vmlinuz      berth's cached Debian kernel, as is
#   initrd.img   uncompressed newc cpio: busybox /init that loads virtio and
#                ext4 modules, mounts /dev/vda and switch_roots to systemd
#   root.ext4    the Debian root (mkfs.ext4 -d: no loop device, no mount)
#   qemu.sh      runs the node (`qemu.sh --print`: only print the command)
#
# The container prints "bench-container: hello from crun" on ttyS0.
# The debootstrap tree is cached (BERTH_CACHE, else $XDG_CACHE_HOME/berth,
# else ~/.cache/berth, as berth's kernel cache: .../systemd-node/rootfs);
# the outputs are rebuilt from it on every run. Root on Debian 12; the
# network is used only for Debian's mirror (apt-get, debootstrap).
#
#   scripts/systemd-node.sh [OUT_DIR]    (default: target/systemd-node)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/systemd-node}
die() { echo "systemd-node: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, device nodes, file owners)"

packages=(debootstrap busybox-static e2fsprogs cpio kmod)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "systemd-node: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The kernel: the tree berth-image unpacked for the current
# linux-image-amd64 (initramfs/src/kernel.rs: BERTH_KERNEL_DIR, else
# CACHE/kernel/PACKAGE_VERSION with its .berth-kernel marker).
cache=${BERTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}
no_kernel() {
  die "no kernel tree of berth's in $cache/kernel ($*): build berth's example first (scripts/example.sh, or cargo run -p berth-image -- build examples/hello.toml -o out/hello)"
}
if [ -n "${BERTH_KERNEL_DIR:-}" ]; then
  ktree=$BERTH_KERNEL_DIR
else
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || no_kernel "apt-cache names no package behind linux-image-amd64"
  ver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/{print $2; exit}')
  ktree=$cache/kernel/${pkg}_${ver//:/%3a}
  [ -f "$ktree/.berth-kernel" ] || no_kernel "$pkg $ver is not unpacked"
fi
vmlinuz=$(find "$ktree/boot" -maxdepth 1 -name 'vmlinuz-*' | head -1)
[ -n "$vmlinuz" ] || no_kernel "$ktree/boot has no vmlinuz-*"
kver=${vmlinuz##*/vmlinuz-}
kmods=$ktree/lib/modules/$kver
[ -f "$kmods/modules.dep" ] || no_kernel "$kmods has no modules.dep"

# The Debian tree, made once: minbase + systemd as init + crun, and kmod
# (priority important, on every Debian: kmod-static-nodes.service runs it).
# No udev (not a dependency of systemd; the node needs no hotplug:
# devtmpfs has every node, and nothing waits on a .device unit, see fstab
# and getty). The stamp holds the package list: changing it rebuilds.
include=systemd,systemd-sysv,crun,kmod
root_cache=$cache/systemd-node/rootfs
if [ "$(cat "$root_cache/.complete" 2>/dev/null)" != "$include" ]; then
  # The host's mirror (deb822 sources, else sources.list), else Debian's.
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
    awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  rm -rf "$root_cache"
  mkdir -p "$(dirname "$root_cache")"
  echo "systemd-node: debootstrap bookworm into $root_cache" >&2
  start=$EPOCHREALTIME
  debootstrap --variant=minbase --include="$include" \
    bookworm "$root_cache" "${mirror:-http://deb.debian.org/debian}" >/dev/null \
    || die "debootstrap failed (see $root_cache/debootstrap/debootstrap.log)"
  awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "systemd-node: debootstrap took %.0f s\n", e - s }' >&2
  echo "$include" > "$root_cache/.complete"
fi

mkdir -p "$out"
out=$(realpath "$out")
root=$out/.rootfs
rm -rf "$root"
cp -a "$root_cache/." "$root"
rm -f "$root/.complete" "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*_Packages
echo bench-node > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tbench-node\n' > "$root/etc/hosts"
# The initramfs mounts the root read-only, systemd-remount-fs makes it
# read-write from this line: Debian's usual path. fsck pass 0: with no
# udev, systemd-fsck-root would wait for dev-vda.device that never shows
# up; the image is fresh and QEMU's snapshot=on throws every write away.
echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' > "$root/etc/fstab"
# No login on ttyS0: its getty (console=ttyS0) binds to dev-ttyS0.device,
# which only udev announces; unmasked, that job waits 90 s and times out.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"

# Modules on the root: what the initramfs loads, plus what systemd's PID 1
# loads itself at start when present (autofs4, configfs, virtio_rng, loop),
# with an index depmod makes for just these.
module_paths() { # NAME... -> the .ko files, dependencies first, relative to $ktree
  modprobe -d "$ktree" -S "$kver" -a --show-depends "$@" |
    awk -v k="$ktree/" '$1 == "insmod" { sub(k, "", $2); sub("^/+", "", $2); if (!seen[$2]++) print $2 }'
}
boot_modules=$(module_paths virtio_pci virtio_blk ext4)
[ -n "$boot_modules" ] || die "modprobe found no virtio_blk/ext4 modules in $kmods"
for m in $boot_modules $(module_paths autofs4 configfs virtio_rng loop); do
  install -D -m 0644 "$ktree/$m" "$root/$m"
done
cp "$kmods"/modules.{builtin,builtin.modinfo,order} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

# The container: Debian's static busybox under crun, config.json from
# `crun spec` (crun's defaults: namespaces, capabilities, a read-only
# root) with no terminal (its stdout is the unit's) and our command.
bundle=$root/var/lib/bench/bundle
mkdir -p "$bundle"/rootfs/{bin,proc,sys,dev}
install -m 0755 /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/sh"
# crun re-executes itself through /proc/self/exe, and fits the spec to the
# cgroup version it finds on /sys/fs/cgroup: give it /proc and the
# node's cgroup2 (whatever the host has), in a private mount namespace
# that goes away with the command.
unshare --mount --propagation private sh -c 'mount --rbind /proc "$1/proc" &&
  mount -t tmpfs tmpfs "$1/sys" && mkdir -p "$1/sys/fs/cgroup" &&
  mount -t cgroup2 cgroup2 "$1/sys/fs/cgroup" &&
  chroot "$1" sh -c "cd /var/lib/bench/bundle && crun spec"' sh "$root"
sed -i -e 's/"terminal": true/"terminal": false/' \
  -e 's|"sh"$|"/bin/sh", "-c", "echo bench-container: hello from crun"|' "$bundle/config.json"
grep -q '"terminal": false' "$bundle/config.json" && grep -q 'hello from crun' "$bundle/config.json" \
  || die "crun spec's config.json changed shape: edit the sed lines above"
cat > "$root/etc/systemd/system/bench.service" <<'EOF'
[Unit]
Description=Benchmark container (busybox under crun)

[Service]
Type=oneshot
ExecStart=/usr/bin/crun run --bundle /var/lib/bench/bundle bench
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf ../bench.service "$root/etc/systemd/system/multi-user.target.wants/bench.service"

# root.ext4: the tree plus a quarter and 64 MiB of room (journal, writes).
size=$(( $(du -sm "$root" | cut -f1) * 5 / 4 + 64 ))
rm -f "$out/root.ext4"; truncate -s "${size}M" "$out/root.ext4"
mkfs.ext4 -q -F -L bench-root -d "$root" "$out/root.ext4" || die "mkfs.ext4 -d $root failed"

# initrd.img: uncompressed, like berth's (the kernel takes it as is; no
# decompressor's time at boot). /dev/console exists before devtmpfs so
# /init has stdio.
initrd=$out/.initrd
rm -rf "$initrd"
mkdir -p "$initrd"/{bin,dev,proc,sys,root}
install -m 0755 /bin/busybox "$initrd/bin/busybox"
mknod -m 0600 "$initrd/dev/console" c 5 1
for m in $boot_modules; do install -D -m 0644 "$ktree/$m" "$initrd/$m"; done
cat > "$initrd/init" <<EOF
#!/bin/busybox sh
# Stage 0 of the comparison node: reach /dev/vda, hand over to systemd.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# modules.dep order. A failure is not fatal here: crc32c-intel has no CPU
# support under TCG's default CPU (crc32c_generic, next, serves ext4).
for m in $(echo $boot_modules); do insmod "/\$m" 2>/dev/null || true; done
i=0
until [ -b /dev/vda ]; do
  i=\$((i + 1)); [ \$i -le 200 ] || { echo "init: no /dev/vda after 10 s"; exec sh; }
  sleep 0.05
done
mount -t ext4 -o ro /dev/vda /root || { echo "init: cannot mount /dev/vda"; exec sh; }
umount /proc /sys
mount --move /dev /root/dev
exec switch_root /root /sbin/init
EOF
chmod 0755 "$initrd/init"
(cd "$initrd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$out/initrd.img"
cp "$vmlinuz" "$out/vmlinuz"
rm -rf "$root" "$initrd"

# qemu.sh: berth's direct mode (initramfs/src/qemu/args.rs): default
# machine (pc) and CPU, one vCPU, 512 MiB, TCG, no default devices, the
# disk on virtio-blk with snapshot=on, the same kernel command line.
# Unlike berth's, no NIC at all (berth's has user networking).
cat > "$out/qemu.sh" <<'EOF'
#!/usr/bin/env bash
# Boots the systemd comparison node; the console on stdout (quit: Ctrl-A X).
set -euo pipefail
dir=$(dirname "$(realpath "$0")")
serial=stdio; [ -t 0 ] && serial=mon:stdio
cmd=(qemu-system-x86_64 -nodefaults -no-user-config -no-reboot -accel tcg -m 512
  -display none -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img"
  -append "console=ttyS0 quiet panic=-1"
  -drive "file=$dir/root.ext4,format=raw,snapshot=on,if=none,id=disk0"
  -device virtio-blk-pci,drive=disk0 -nic none -serial "$serial")
line=; for a in "${cmd[@]}"; do case $a in *' '*) a="\"$a\"" ;; esac; line+="$a "; done
echo "$line" >&2
[ "${1:-}" = --print ] || exec "${cmd[@]}"
EOF
chmod 0755 "$out/qemu.sh"
ls -l "$out"/{vmlinuz,initrd.img,root.ext4,qemu.sh} >&2
