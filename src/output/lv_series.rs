//! The per-VG cap on per-LV series (`--collector.lvm.lv-series-limit`), shared by the metrics
//! output and the lists of `report` and the status page: the accounting lists every untracked LV
//! ([`UntrackedLv`], largest first); the outputs show at most `limit` of them on their own and
//! sum the rest per owner class in a row named [`OTHER_LVS_LABEL`], so that the number of
//! series stays bounded however many LVs a VG holds.

use std::collections::BTreeMap;

use crate::accounting::drift::UntrackedLv;
use crate::lvm::owner::Owner;

/// The LV label used for the sum of LVs beyond the per-VG series cap. LVM names hold only
/// `[a-zA-Z0-9+_.-]` (hidden LVs are shown in `[brackets]`), so no LV can be called this.
pub const OTHER_LVS_LABEL: &str = "(other)";

/// One LV of the capped list, or the sum of the LVs of one owner beyond the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LvSeries<'a> {
    /// LV name, or [`OTHER_LVS_LABEL`] for the overflow of the cap.
    pub name: &'a str,
    /// Its owner class.
    pub owner: Owner,
    /// VG bytes it holds.
    pub bytes: u64,
    /// How many LVs this entry stands for: 1 for an LV, the number summed for the overflow.
    pub lvs: u64,
    /// True for the overflow of the cap (told apart by this flag, never by the name).
    pub overflow: bool,
    /// The LV's creation time (`lv_time`), seconds since the epoch; for the overflow, the
    /// *earliest* among the summed LVs (the oldest one's, so that an age threshold sees it).
    /// `None` when LVM has none.
    pub creation_unix: Option<i64>,
}

/// `untracked` (the accounting's list, largest first) capped at `limit` LVs of their own,
/// followed by one overflow entry per owner class beyond the cap, in owner order. The sums
/// cannot exceed the owner totals the accounting already bounded; they saturate all the same.
pub fn capped_lv_series(untracked: &[UntrackedLv], limit: usize) -> Vec<LvSeries<'_>> {
    let mut series: Vec<LvSeries<'_>> = untracked
        .iter()
        .take(limit)
        .map(|lv| LvSeries {
            name: lv.name.as_str(),
            owner: lv.owner,
            bytes: lv.bytes,
            lvs: 1,
            overflow: false,
            creation_unix: lv.creation_unix,
        })
        .collect();
    let mut overflow: BTreeMap<Owner, LvSeries<'_>> = BTreeMap::new();
    for lv in untracked.iter().skip(limit) {
        let sum = overflow.entry(lv.owner).or_insert(LvSeries {
            name: OTHER_LVS_LABEL,
            owner: lv.owner,
            bytes: 0,
            lvs: 0,
            overflow: true,
            creation_unix: None,
        });
        sum.bytes = sum.bytes.saturating_add(lv.bytes);
        sum.lvs += 1;
        sum.creation_unix = match (sum.creation_unix, lv.creation_unix) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    series.extend(overflow.into_values());
    series
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{GIB, MIB};

    fn lv(name: &str, owner: Owner, bytes: u64, creation_unix: Option<i64>) -> UntrackedLv {
        UntrackedLv {
            name: name.into(),
            owner,
            bytes,
            creation_unix,
        }
    }

    #[test]
    fn per_lv_series_are_capped_and_the_rest_summed_per_owner() {
        // The accounting's order: largest first.
        let untracked = [
            lv("foreign4", Owner::Foreign, 5 * GIB, None),
            lv("foreign3", Owner::Foreign, 4 * GIB, None),
            lv("foreign2", Owner::Foreign, 3 * GIB, None),
            lv("foreign1", Owner::Foreign, 2 * GIB, None),
            lv("foreign0", Owner::Foreign, GIB, None),
            lv("volume-x", Owner::Cinder, 100 * MIB, None),
        ];
        let series = capped_lv_series(&untracked, 2);
        let rows: Vec<(&str, u64, Owner, u64, bool)> = series
            .iter()
            .map(|l| (l.name, l.bytes, l.owner, l.lvs, l.overflow))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("foreign4", 5 * GIB, Owner::Foreign, 1, false),
                ("foreign3", 4 * GIB, Owner::Foreign, 1, false),
                (OTHER_LVS_LABEL, 100 * MIB, Owner::Cinder, 1, true),
                (OTHER_LVS_LABEL, 6 * GIB, Owner::Foreign, 3, true),
            ]
        );
        // Within the limit nothing is summed; a limit of 0 sums everything.
        assert_eq!(capped_lv_series(&untracked, 100).len(), untracked.len());
        assert!(capped_lv_series(&untracked, 0).iter().all(|l| l.overflow));
    }

    #[test]
    fn creation_times_follow_the_series_and_the_overflow_has_its_oldest() {
        let untracked = [
            lv("big", Owner::Foreign, 5 * GIB, Some(1_000)),
            lv("pool", Owner::Foreign, GIB, Some(50)),
            lv("new_small", Owner::Foreign, 3 * MIB, Some(2_000)),
            lv("no_time", Owner::Foreign, 2 * MIB, None),
            lv("old_small", Owner::Foreign, MIB, Some(100)),
        ];
        let rows: Vec<(&str, Option<i64>)> = capped_lv_series(&untracked, 2)
            .iter()
            .map(|l| (l.name, l.creation_unix))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("big", Some(1_000)),
                ("pool", Some(50)),
                (OTHER_LVS_LABEL, Some(100)),
            ]
        );
        // An overflow of LVs that have no creation time has none either.
        let timeless = [
            lv("a", Owner::Foreign, GIB, None),
            lv("b", Owner::Foreign, MIB, None),
        ];
        assert_eq!(capped_lv_series(&timeless, 1)[1].creation_unix, None);
    }

    #[test]
    fn an_lv_named_like_the_old_overflow_label_is_an_lv_of_its_own() {
        // LVM allows `_other`; the overflow label is a name LVM forbids.
        assert!(!OTHER_LVS_LABEL
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b)));
        let untracked = [
            lv("big", Owner::Foreign, 5 * GIB, None),
            lv("_other", Owner::Foreign, 3 * GIB, None),
            lv("small", Owner::Foreign, GIB, None),
            lv("tiny", Owner::Foreign, MIB, None),
        ];
        let rows: Vec<(&str, u64, u64, bool)> = capped_lv_series(&untracked, 2)
            .iter()
            .map(|l| (l.name, l.bytes, l.lvs, l.overflow))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("big", 5 * GIB, 1, false),
                ("_other", 3 * GIB, 1, false),
                (OTHER_LVS_LABEL, GIB + MIB, 2, true),
            ]
        );
    }
}
