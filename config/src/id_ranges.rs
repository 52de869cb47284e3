//! User-namespace id ranges that stay with a container's name.
//!
//! The image builder gives a `userns = true` workload the range of its
//! position in the manifest ([`UserNamespace::for_index`]). The files such
//! a container writes to a volume carry host ids of that range, so a later
//! image that adds, removes or reorders containers would hand the range to
//! another container and leave the first one locked out of its own data.
//! PID 1 therefore keeps a table on STATE, [`layout::USERNS_TABLE`], of
//! which container holds which range, and decides each boot with
//! [`assign`]:
//!
//! 1. a container in the table keeps its range;
//! 2. a container not yet in the table takes the range its image planned
//!    when nobody holds it (so the first image of a node runs exactly as
//!    built), else the lowest range nobody holds;
//! 3. entries are never dropped: a container removed from the manifest
//!    keeps its range, which no other container is given (its files may
//!    still be in a volume), and gets it back if it returns.
//!
//! The table is a small TOML file a person can read:
//!
//! ```toml
//! [ranges]
//! db = 100000
//! web = 165536
//! ```
//!
//! [`layout::USERNS_TABLE`]: crate::layout::USERNS_TABLE

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{UserNamespace, USERNS_HOST_BASE, USERNS_SIZE};

/// The table as kept on STATE: container name → first host id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RangeTable {
    #[serde(default)]
    pub ranges: BTreeMap<String, u32>,
}

/// The table file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RangeTableError {
    #[error("not a range table: {0}")]
    Parse(String),
    #[error(
        "ranges.{name}: {host_id} is not the start of a range (ids {USERNS_HOST_BASE} \
         onward, in steps of {USERNS_SIZE})"
    )]
    NotARange { name: String, host_id: u32 },
    #[error("ranges.{name}: {host_id} is held by {other} too")]
    Shared {
        name: String,
        other: String,
        host_id: u32,
    },
}

/// How a container came by its range this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The table had it.
    Kept,
    /// New to the table: the range its image planned.
    Planned,
    /// New to the table, and its planned range was held: the lowest free
    /// one.
    Moved,
}

/// One container's range this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub name: String,
    pub range: UserNamespace,
    /// The range its image was built with (its `config.json`).
    pub planned: UserNamespace,
    pub how: How,
}

/// No range is left for a container (every one of the 65534 in the 32-bit
/// id space is held).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no user namespace range left for {0}: every range is held by a container in {1}")]
pub struct NoRangeLeft(pub String, pub &'static str);

impl RangeTable {
    /// Parses and checks a table: every value the start of a range, no
    /// range held twice.
    pub fn parse(text: &str) -> Result<RangeTable, RangeTableError> {
        let table: RangeTable =
            toml::from_str(text).map_err(|e| RangeTableError::Parse(e.message().to_owned()))?;
        let mut holders: BTreeMap<u32, &str> = BTreeMap::new();
        for (name, &host_id) in &table.ranges {
            if slot_of(host_id).is_none() {
                return Err(RangeTableError::NotARange {
                    name: name.clone(),
                    host_id,
                });
            }
            if let Some(other) = holders.insert(host_id, name) {
                return Err(RangeTableError::Shared {
                    name: name.clone(),
                    other: other.to_owned(),
                    host_id,
                });
            }
        }
        Ok(table)
    }

    /// The file's text: a comment saying what it is, then the table.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# berth: the host ids of each user-namespaced container (first id; 65536 ids each).\n\
             # Kept so that a container keeps the owner of its volumes across images.\n",
        );
        // A map of strings to integers always serialises.
        text.push_str(&toml::to_string(self).unwrap_or_default());
        text
    }
}

/// `n` ranges from the top of the id space down, for a boot whose table
/// cannot be read: the table hands out the lowest free ranges, so these
/// are held by nobody unless a node has seen tens of thousands of
/// containers; nobody's volume files become another container's.
pub fn top_ranges(n: usize) -> Vec<UserNamespace> {
    let count = (0..).map_while(UserNamespace::for_index).count();
    (0..count)
        .rev()
        .take(n)
        .filter_map(UserNamespace::for_index)
        .collect()
}

/// The range index of `host_id`, if it starts a range.
fn slot_of(host_id: u32) -> Option<u32> {
    let offset = host_id.checked_sub(USERNS_HOST_BASE)?;
    if offset % USERNS_SIZE != 0 {
        return None;
    }
    let slot = offset / USERNS_SIZE;
    UserNamespace::for_index(slot as usize).map(|_| slot)
}

/// Gives each of `wanted` (name, planned range; in manifest order) its
/// range this boot, recording new ones in `table`. See the module docs
/// for the rules. `table_name` names the table in errors.
pub fn assign(
    table: &mut RangeTable,
    wanted: &[(String, UserNamespace)],
    table_name: &'static str,
) -> Result<Vec<Assigned>, NoRangeLeft> {
    let mut held: BTreeSet<u32> = table.ranges.values().copied().collect();
    let mut out = Vec::with_capacity(wanted.len());
    for (name, planned) in wanted {
        if let Some(&host_id) = table.ranges.get(name) {
            out.push(Assigned {
                name: name.clone(),
                range: UserNamespace {
                    host_id,
                    size: USERNS_SIZE,
                },
                planned: *planned,
                how: How::Kept,
            });
            continue;
        }
        let (range, how) = if slot_of(planned.host_id).is_some()
            && planned.size == USERNS_SIZE
            && !held.contains(&planned.host_id)
        {
            (*planned, How::Planned)
        } else {
            let free = (0..)
                .map_while(UserNamespace::for_index)
                .find(|r| !held.contains(&r.host_id))
                .ok_or_else(|| NoRangeLeft(name.clone(), table_name))?;
            (free, How::Moved)
        };
        held.insert(range.host_id);
        table.ranges.insert(name.clone(), range.host_id);
        out.push(Assigned {
            name: name.clone(),
            range,
            planned: *planned,
            how,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(i: usize) -> UserNamespace {
        UserNamespace::for_index(i).expect("slot")
    }

    fn wanted(list: &[(&str, usize)]) -> Vec<(String, UserNamespace)> {
        list.iter()
            .map(|(n, i)| ((*n).to_owned(), slot(*i)))
            .collect()
    }

    fn ranges(out: &[Assigned]) -> Vec<(&str, u32, How)> {
        out.iter()
            .map(|a| (a.name.as_str(), a.range.host_id, a.how))
            .collect()
    }

    #[test]
    fn the_first_image_runs_as_built() {
        let mut table = RangeTable::default();
        let out = assign(&mut table, &wanted(&[("web", 0), ("db", 2)]), "t").expect("ok");
        assert_eq!(
            ranges(&out),
            [
                ("web", 100_000, How::Planned),
                ("db", 231_072, How::Planned)
            ]
        );
        assert_eq!(table.ranges.len(), 2);
    }

    #[test]
    fn a_container_inserted_before_does_not_move_the_others() {
        let mut table = RangeTable::default();
        assign(&mut table, &wanted(&[("keeper", 0)]), "t").expect("ok");
        // The next image puts "intruder" first: both plans shift.
        let out = assign(&mut table, &wanted(&[("intruder", 0), ("keeper", 1)]), "t").expect("ok");
        assert_eq!(
            ranges(&out),
            [
                ("intruder", 165_536, How::Moved),
                ("keeper", 100_000, How::Kept)
            ]
        );
    }

    #[test]
    fn removed_containers_keep_their_range_and_get_it_back() {
        let mut table = RangeTable::default();
        assign(&mut table, &wanted(&[("a", 0), ("b", 1)]), "t").expect("ok");
        // "a" is gone; "c" is planned on a's range but may not take it.
        let out = assign(&mut table, &wanted(&[("b", 0), ("c", 1), ("d", 5)]), "t").expect("ok");
        assert_eq!(
            ranges(&out),
            [
                ("b", 165_536, How::Kept),
                ("c", 231_072, How::Moved),
                ("d", 100_000 + 5 * 65_536, How::Planned)
            ]
        );
        let out = assign(&mut table, &wanted(&[("a", 3)]), "t").expect("ok");
        assert_eq!(ranges(&out), [("a", 100_000, How::Kept)]);
    }

    #[test]
    fn two_new_containers_never_share() {
        let mut table = RangeTable::default();
        table.ranges.insert("old".into(), 100_000);
        let out = assign(&mut table, &wanted(&[("x", 0), ("y", 0)]), "t").expect("ok");
        assert_eq!(
            ranges(&out),
            [("x", 165_536, How::Moved), ("y", 231_072, How::Moved)]
        );
    }

    #[test]
    fn top_ranges_are_the_last_ones() {
        let top = top_ranges(2);
        assert_eq!(top.len(), 2);
        let last = top[0];
        assert!(u64::from(last.host_id) + u64::from(last.size) <= u64::from(u32::MAX));
        assert!(
            u64::from(last.host_id) + 2 * u64::from(last.size) > u64::from(u32::MAX),
            "not the last range: {last:?}"
        );
        assert_eq!(top[1].host_id, last.host_id - USERNS_SIZE);
    }

    #[test]
    fn the_table_round_trips_and_bad_tables_name_the_entry() {
        let mut table = RangeTable::default();
        assign(&mut table, &wanted(&[("web", 1), ("db", 0)]), "t").expect("ok");
        let text = table.render();
        assert!(text.starts_with("# berth: "), "{text}");
        assert_eq!(RangeTable::parse(&text).expect("ok"), table);
        let cases = [
            (
                "[ranges]\nweb = 100001\n",
                "ranges.web: 100001 is not the start of a range",
            ),
            ("[ranges]\nweb = 5\n", "ranges.web: 5 is not the start"),
            (
                "[ranges]\na = 100000\nb = 100000\n",
                "ranges.b: 100000 is held by a too",
            ),
            ("[ranges]\nweb = \"x\"\n", "not a range table: "),
            ("[other]\n", "not a range table: "),
        ];
        for (text, want) in cases {
            let err = RangeTable::parse(text)
                .expect_err("a bad table")
                .to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
        assert_eq!(RangeTable::parse("").expect("ok"), RangeTable::default());
    }
}
