#!/usr/bin/env bash
# Installs what building and booting berth images needs on Debian 12, as
# root: QEMU, EROFS tools, cryptsetup-bin (veritysetup: the root image's
# dm-verity hash tree), busybox-static (test and example container
# content), libseccomp (linked statically into berth), kmod (depmod for the
# kernel's module index), cpio and file (checks), gcc and libc6-dev (the
# static inotify-hold tool of the QEMU tests), tini (the reference the
# `berth init` tests also run against), util-linux (unshare), perl, and
# iproute2 and nftables (the network host tests set up namespaces with `ip`
# and cross-check berth's NAT rules with `nft list`), umoci (the OCI image
# layouts the image-import tests start from), and for the node disk
# (disk.img): ovmf (UEFI firmware for QEMU), systemd-boot-efi (the boot
# loader put on the ESP), e2fsprogs (mkfs.ext4 for STATE), qemu-utils
# (qemu-img: disk.qcow2 and the overlays of `berth-image run`),
# dosfstools and mtools (fsck.fat, mdir: checking and reading the ESP),
# fdisk (sfdisk: the QEMU test of a first-boot grow cut off halfway).
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(qemu-system-x86 erofs-utils cryptsetup-bin busybox-static libseccomp-dev kmod cpio file pkg-config gcc libc6-dev tini util-linux perl-base iproute2 nftables umoci ovmf systemd-boot-efi dosfstools mtools qemu-utils e2fsprogs fdisk openssl zstd)
# Two passes: installing one package can remove another that conflicts
# with it (a machine with a backported qemu-utils loses it to bookworm's
# qemu-system-x86), and the second pass installs the matching version.
export DEBIAN_FRONTEND=noninteractive
updated=
for pass in 1 2; do
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && break
  echo "berth: installing ${missing[*]}" >&2
  [ -n "$updated" ] || { apt-get update -qq; updated=1; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
done
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { echo "berth: $p is still not installed" >&2; exit 1; }
done
# The kernel comes with `apt-get download`, which needs current package lists.
if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
  apt-get update -qq
fi

command -v cargo >/dev/null || { echo "berth: cargo not found: install Rust (rustup) first" >&2; exit 1; }
# berth is built for this explicit target (static glibc); it is the host's
# own target, present with any rustup toolchain, but add it if missing.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx x86_64-unknown-linux-gnu; then
  rustup target add x86_64-unknown-linux-gnu
fi
