//! Where things live on a berth node: the contract between the image
//! builder, which writes these paths, and PID 1, which reads them.

/// Present only in the initramfs; its presence selects boot stage 0
/// (systemd's convention).
pub const INITRD_RELEASE: &str = "/etc/initrd-release";
/// The manifest inside the root image.
pub const MANIFEST: &str = "/etc/berth/manifest.toml";
/// One OCI bundle per container: `BUNDLES/NAME/config.json` and
/// `BUNDLES/NAME/rootfs/`, read-only in the root image, and next to them
/// the container's resolved plan, [`PLAN_FILE`].
pub const BUNDLES: &str = "/usr/lib/berth/containers";
/// The file name of a container's plan ([`crate::plan::Plan`]) in its
/// bundle folder, `BUNDLES/NAME/plan.json`: what PID 1 runs the container
/// by.
pub const PLAN_FILE: &str = "plan.json";
/// The user and group id allowed into STATE's reserved blocks (as is any
/// process with CAP_SYS_RESOURCE: PID 1, not workloads): not root, the
/// default, so that a workload running as root that fills STATE cannot
/// take the room kept for the node's logs and keys. ext4 keeps these ids
/// in 16 bits; a container running as 65533 (rare: `nobody` is 65534)
/// could use the reserve.
pub const STATE_RESERVE_ID: u32 = 65_533;
/// Named volumes, one folder each (`VOLUMES/NAME`), on STATE: a mount of
/// its own (`nodev,nosuid`, but programs may run from it, as from a
/// Docker volume), bind-mounted into the containers that name them.
pub const VOLUMES: &str = "/var/lib/berth/volumes";
/// Which user-namespace id range each `userns` container holds, by name
/// (see `berth_config::id_ranges`), on STATE so that a container keeps
/// the owner of its volumes across images.
pub const USERNS_TABLE: &str = "/var/lib/berth/userns.toml";
/// The empty STATE filesystem in the root image
/// (`berth_config::state_template`), for `berth reset --state`.
pub const STATE_TEMPLATE: &str = "/usr/lib/berth/state.template";
/// The remote API's state on STATE: the node's key and certificate
/// (`node.key`, `node.pem`) and the serials `berth revoke` refused.
pub const API_DIR: &str = "/var/lib/berth/api";
pub const API_REVOKED: &str = "/var/lib/berth/api/revoked";
/// The operator CA certificates of the manifest's `api.ca`, in the image.
pub const API_CA_BUNDLE: &str = "/usr/lib/berth/api/operators.pem";
/// The node's certificate and key when the manifest gives them
/// (`api.certificate`, `api.key`), in the image (the key mode 0600).
pub const API_NODE_CERT: &str = "/usr/lib/berth/api/node.pem";
pub const API_NODE_KEY: &str = "/usr/lib/berth/api/node.key";
/// Where stage 0 mounts the real root before switching to it.
pub const SYSROOT: &str = "/sysroot";
/// Runtime state of berth (tmpfs).
pub const RUN_DIR: &str = "/run/berth";
/// libcontainer's state directory.
pub const RUNTIME_STATE: &str = "/run/berth/runtime";
/// Bundles PID 1 rewrote for this boot (a `userns` container whose range
/// is not the one its image was built with: `crate::id_ranges`).
pub const RUN_BUNDLES: &str = "/run/berth/bundles";
/// cgroup2 parents: PID 1 lives in `INIT`, host containers under `SYSTEM`,
/// workloads under `WORKLOADS` (paths below the cgroup2 mount).
pub const CGROUP_ROOT: &str = "berth";
pub const CGROUP_INIT: &str = "berth/init";
pub const CGROUP_SYSTEM: &str = "berth/system";
pub const CGROUP_WORKLOADS: &str = "berth/workloads";
/// `memory.min` of `CGROUP_INIT` (and of its parent `CGROUP_ROOT`, which
/// caps it): memory the kernel reclaims from PID 1 only when nothing else
/// is left, so a container filling the node cannot push the init out.
pub const INIT_MEMORY_MIN: u64 = 32 * 1024 * 1024;
/// Modules stage 0 always loads to reach the root image (EROFS); the disk
/// drivers come from [`STAGE0_DISK_DRIVERS`].
pub const STAGE0_MODULES: &[&str] = &["erofs"];

/// Which PCI functions a disk driver serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciMatch {
    /// Every function of this vendor (virtio: 0x1af4).
    Vendor(u16),
    /// Functions of this class, subclass and programming interface
    /// (`/sys/bus/pci/devices/*/class` without its `0x`).
    Class(u32),
}

/// A disk driver of stage 0 and the PCI functions it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskDriver {
    pub name: &'static str,
    pub matches: PciMatch,
    /// Loaded in this order, each with its `modules.dep` dependencies.
    pub modules: &'static [&'static str],
}

/// The disk drivers the initramfs carries. Stage 0 loads those whose PCI
/// functions are present (all of them when it cannot read the PCI bus),
/// so a node with a virtio disk does not pay for NVMe and SATA.
pub const STAGE0_DISK_DRIVERS: &[DiskDriver] = &[
    DiskDriver {
        name: "virtio",
        matches: PciMatch::Vendor(0x1af4),
        modules: &["virtio_pci", "virtio_blk"],
    },
    DiskDriver {
        name: "NVMe",
        matches: PciMatch::Class(0x01_08_02),
        modules: &["nvme"],
    },
    DiskDriver {
        name: "SATA (AHCI)",
        matches: PciMatch::Class(0x01_06_01),
        modules: &["ahci", "sd_mod"],
    },
];

/// Every module the initramfs carries for stage 0 (with their
/// dependencies): [`STAGE0_MODULES`], the disk drivers,
/// [`STAGE0_VERITY_MODULES`] and [`stage0_early_modules`]; STATE's
/// filesystem only when `state_first` (something in the manifest needs
/// STATE before the first container, see
/// [`crate::state_use::needed_before_containers`]).
pub fn stage0_all_modules(state_first: bool) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = STAGE0_MODULES.to_vec();
    for driver in STAGE0_DISK_DRIVERS {
        all.extend_from_slice(driver.modules);
    }
    all.extend_from_slice(STAGE0_VERITY_MODULES);
    all.extend(stage0_early_modules(state_first));
    all
}
/// Modules stage 1 needs that stage 0 already loads, best effort, while
/// the disk drivers wait for their devices (a module load is kernel CPU
/// work; the probe is mostly waiting): [`STAGE1_MODULES`], and STATE's
/// filesystem when `state_first` (otherwise STATE is mounted after the
/// boot's first launches, and ext4 loads then). Stage 1 still asks for
/// each and skips those the kernel has; a failure here is only logged, and
/// stage 1 reports its own.
pub fn stage0_early_modules(state_first: bool) -> Vec<&'static str> {
    let mut early = Vec::new();
    if state_first {
        early.push(STATE_FILESYSTEM);
    }
    early.extend_from_slice(STAGE1_MODULES);
    early
}
/// The filesystem of the STATE partition.
pub const STATE_FILESYSTEM: &str = "ext4";
/// Modules stage 0 loads when the root is verified (`berth.verity=`):
/// device-mapper and its verity target (`modules.dep` adds `dm_bufio`
/// and `reed_solomon`). The initramfs always carries them.
pub const STAGE0_VERITY_MODULES: &[&str] = &["dm_mod", "dm_verity"];
/// The device-mapper name of the verified root; stage 0 also links
/// `/dev/mapper/berth-root` to its `/dev/dm-N` node.
pub const VERITY_DEVICE: &str = "berth-root";
/// Modules stage 1 always loads (overlay for writable paths; the ACPI power
/// button and evdev, so a power-button press can be read; the virtio NIC
/// driver), before the manifest's own `system.modules`, which names the
/// drivers of other network cards.
pub const STAGE1_MODULES: &[&str] = &["overlay", "button", "evdev", "virtio_net"];
/// A folder in the root image holding berth (a hard link of `/sbin/init`),
/// bind-mounted read-only into containers with `init = true`.
pub const BERTH_BIN_DIR: &str = "/usr/lib/berth/bin";
/// Where that folder appears inside such a container; the command runs as
/// `/.berth/berth init -- ARGV`.
pub const CONTAINER_BERTH_DIR: &str = "/.berth";
/// Per-container network files PID 1 writes (`NET_DIR/NAME/hosts`,
/// `NET_DIR/NAME/resolv.conf`), bind-mounted read-only over the container's
/// own; rewritten in place (same inode) so the mounts see every change.
/// Outside `RUN_DIR`, which is 0700 (it holds the control socket): a
/// container with a user namespace resolves its bind-mount sources as an
/// unprivileged host user, which could not pass through `RUN_DIR`.
pub const NET_DIR: &str = "/run/berth-net";
/// The files of a container's image that the network setup mounts over:
/// file mount points, which the image builder creates as empty files.
pub const NETWORK_FILES: &[&str] = &["/etc/hosts", "/etc/resolv.conf"];

/// `NET_DIR/NAME/FILE`, where `file` is the base name of one of
/// [`NETWORK_FILES`].
pub fn container_net_file(name: &str, file: &str) -> String {
    format!("{NET_DIR}/{name}/{file}")
}
/// Modules for bridge networking (veth pairs, the bridge, nftables NAT and
/// the bridge table's port rules), loaded in stage 1 when a container uses
/// `network = "bridge"`. `nft_meta_bridge` because a modular kernel refuses
/// `meta` in the bridge family until it is loaded (the kernel's own
/// autoload needs modprobe).
pub const BRIDGE_MODULES: &[&str] = &[
    "veth",
    "bridge",
    "nf_tables",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_meta_bridge",
];
/// Where a container's `/` is assembled for each run: an overlay of its
/// read-only image (lower) and a fresh, size-bounded tmpfs (upper) mounted
/// at `CONTAINER_ROOTS/NAME`, its tmpfs at `CONTAINER_ROOTS/NAME.layer`.
/// Outside `/run/berth` (0700), which a user-namespaced runtime cannot
/// traverse.
pub const CONTAINER_ROOTS: &str = "/run/berth-roots";
/// Size of a container's writable layer unless the manifest says.
pub const DEFAULT_ROOT_SIZE: usize = 64 * 1024 * 1024;

/// `CONTAINER_ROOTS/NAME`: the `root.path` of the container's spec.
pub fn container_root(name: &str) -> String {
    format!("{CONTAINER_ROOTS}/{name}")
}

/// Sysctls PID 1 sets on every node before the manifest's own (which may
/// override them). The kernel's per-node tables are shared by every
/// container, so their defaults let one workload starve the others: with
/// `fs.file-max` at its default (about a tenth of memory in KiB) one
/// workload's open files made others fail to start, and uid 0's 128 inotify
/// instances are shared by every container without a user namespace.
/// Raised here as systemd raises `fs.file-max`: what bounds a workload is
/// then its own `nofile` and `pids` limits and its memory, which the kernel
/// charges to its cgroup (open files and inotify instances are accounted
/// kernel memory).
pub const NODE_SYSCTLS: &[(&str, &str)] = &[
    ("fs.file-max", "9223372036854775807"),
    ("fs.inotify.max_user_instances", "1048576"),
    ("fs.inotify.max_user_watches", "1048576"),
];

/// Memory kept for the node (PID 1, host containers, the kernel) when the
/// manifest sets no `system.reserved-memory`: GKE's schedule for its node
/// reservation — 25% of the first 4 GiB, 20% of the next 4 GiB, 10% of the
/// next 8 GiB, 6% of the next 112 GiB, 2% of the rest — and at least 64 MiB.
pub fn default_reserved_memory(total: u64) -> u64 {
    const GIB: u64 = 1 << 30;
    let tiers: [(u64, u64); 5] = [
        (4 * GIB, 25),
        (4 * GIB, 20),
        (8 * GIB, 10),
        (112 * GIB, 6),
        (u64::MAX, 2),
    ];
    let mut left = total;
    let mut reserved = 0u64;
    for (size, percent) in tiers {
        let part = left.min(size);
        reserved += part / 100 * percent;
        left -= part;
        if left == 0 {
            break;
        }
    }
    reserved.max(64 << 20).min(total)
}

/// The least all workloads together may use, however much is reserved.
pub const MIN_WORKLOAD_BUDGET: u64 = 32 << 20;

/// What one workload without a `memory` key may use: three quarters of
/// what all workloads may use together, so that one runaway workload
/// leaves room for the others to start and run.
pub fn default_workload_memory(workload_budget: u64) -> u64 {
    workload_budget / 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_0_loads_every_stage_1_module_early_and_ext4_when_state_comes_first() {
        for first in [false, true] {
            for name in STAGE1_MODULES {
                assert!(stage0_early_modules(first).contains(name), "{name}");
                assert!(stage0_all_modules(first).contains(name), "{name}");
            }
            assert_eq!(
                stage0_early_modules(first).contains(&STATE_FILESYSTEM),
                first
            );
            assert_eq!(stage0_all_modules(first).contains(&STATE_FILESYSTEM), first);
        }
    }

    #[test]
    fn reserved_memory_by_node_size() {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        // (node memory, reserved)
        let table = [
            (128 * MIB, 64 * MIB),
            (512 * MIB, 128 * MIB),
            (GIB, 256 * MIB),
            (4 * GIB, GIB),
            (8 * GIB, GIB + GIB / 100 * 20 * 4),
            (32 * MIB, 32 * MIB),
        ];
        for (total, want) in table {
            let got = default_reserved_memory(total);
            // Integer percentages of whole tiers: within a MiB.
            assert!(got.abs_diff(want) < MIB, "{total}: {got} vs {want}");
        }
    }

    #[test]
    fn one_workload_leaves_a_quarter() {
        assert_eq!(default_workload_memory(400 << 20), 300 << 20);
    }
}

/// The node disk: a GPT disk whose partitions are found by name (or, for
/// the root, by type) — never by a fixed device path. Partition numbers
/// are those of a freshly built `disk.img`; STATE is last so that it can
/// grow into the rest of the disk.
pub mod disk {
    /// The EFI system partition (vfat): systemd-boot and one Boot Loader
    /// Specification entry per root slot.
    pub const ESP: &str = "ESP";
    /// The two root slots, each an EROFS image followed by its dm-verity
    /// hash tree; `berth.slot=a|b` picks one.
    pub const ROOT_A: &str = "ROOT-A";
    pub const ROOT_B: &str = "ROOT-B";
    /// The node's persistent state (ext4), mounted at [`STATE_MOUNT`].
    pub const STATE: &str = "STATE";
    /// The filesystem label of STATE (`mkfs.ext4 -L`).
    pub const STATE_LABEL: &str = "berth-state";
    /// Where STATE is mounted (`nodev,nosuid,noexec`), or a tmpfs when
    /// the node has no STATE partition.
    pub const STATE_MOUNT: &str = "/var/lib/berth";

    /// Partition type GUIDs of the Discoverable Partitions Specification
    /// (uapi-group.org/specifications/specs/discoverable_partitions_specification),
    /// in their textual (big-endian) form.
    pub const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
    /// "Root Partition (x86-64)".
    pub const ROOT_X86_64_TYPE: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
    /// "Variable Data Partition" (`/var`).
    pub const VAR_TYPE: &str = "4d21b016-b534-45c2-a9fb-5c16e091fd2d";

    /// The ESP's folder for a slot's kernel and initramfs:
    /// `/berth/a/vmlinuz`, `/berth/a/initramfs.img`.
    pub fn esp_slot_dir(slot: char) -> String {
        format!("/berth/{slot}")
    }
    /// The Boot Loader Specification entry of a slot, `loader/entries/berth-a.conf`.
    pub fn entry_name(slot: char) -> String {
        format!("berth-{slot}.conf")
    }
    /// A GUID's 16 bytes in its textual order (`c12a7328-f81f-…`, either
    /// case); `None` if `text` is not 8-4-4-4-12 hex digits.
    pub fn parse_guid(text: &str) -> Option<[u8; 16]> {
        let groups: Vec<&str> = text.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12] || !text.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()) {
            return None;
        }
        let hex: String = groups.concat();
        let mut raw = [0u8; 16];
        for (i, byte) in raw.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(raw)
    }

    /// A GUID in textual byte order as GPT stores it on disk: the first
    /// three groups little-endian, the rest as written (UEFI
    /// specification, appendix A).
    pub fn to_gpt_order(mut raw: [u8; 16]) -> [u8; 16] {
        raw[0..4].reverse();
        raw[4..6].reverse();
        raw[6..8].reverse();
        raw
    }

    /// A GUID's text as GPT stores it on disk; `None` if `text` is not a
    /// GUID.
    pub fn gpt_guid_bytes(text: &str) -> Option<[u8; 16]> {
        parse_guid(text).map(to_gpt_order)
    }

    /// The partition name of a slot (`a` → `ROOT-A`).
    pub fn root_name(slot: char) -> &'static str {
        if slot == 'b' {
            ROOT_B
        } else {
            ROOT_A
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn gpt_guids_are_mixed_endian() {
            // The ESP type as it appears on disk (UEFI spec, and `sgdisk`'s
            // hex dump of any ESP entry).
            let esp = [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b,
            ];
            let rows: &[(&str, Option<[u8; 16]>)] = &[
                (ESP_TYPE, Some(esp)),
                ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", Some(esp)),
                ("c12a7328f81f11d2ba4b00a0c93ec93b", None),
                ("c12a7328-f81f-11d2-ba4b-00a0c93ec93", None),
                ("g12a7328-f81f-11d2-ba4b-00a0c93ec93b", None),
                ("c12a7328-f81f-11d2-ba4b-00a0c93ec9+b", None),
            ];
            for (text, want) in rows {
                assert_eq!(gpt_guid_bytes(text), *want, "{text}");
            }
        }
    }
}
