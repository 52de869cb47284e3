//! The node disk as PID 1 sees it: the disk drivers stage 0 loads
//! ([`drivers`]), partitions found by GPT name or type ([`partitions`]),
//! and STATE, grown on the first boot ([`grow`]) and mounted at
//! `/var/lib/berth` ([`state`]). The layout itself is in
//! `berth_config::layout::disk` and `docs/disk.md`.

pub mod drivers;
pub mod grow;
pub mod later;
pub mod partitions;
pub mod reset;
pub mod state;
