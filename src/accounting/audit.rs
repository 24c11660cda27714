//! The cross-source audit: placement's DISK_GB allocations on this host compared, consumer by
//! consumer, with what is really here (the local source's instances and nova's LVs).
//!
//! Pure: [`audit`] takes placement's consumers, the local source's instances (libvirt or the
//! instances file) and the bytes of nova-named LVs per instance UUID, and returns the
//! consumers that disagree, each with its [`AuditKind`]:
//!
//! - [`AuditKind::AllocationWithoutInstance`]: placement allocates DISK_GB to a consumer that has
//!   no domain (no instance in the local source) and no LV here. A leaked allocation: the
//!   scheduler sees less free space than there is. Bytes: the allocation.
//! - [`AuditKind::InstanceWithoutAllocation`]: an instance of the local source, or nova-named LVs
//!   of an instance, that placement does not allocate here at all. The scheduler over-commits.
//!   Bytes: what the flavor needs by placement's rule when the local source knows the instance,
//!   else the LVs' bytes.
//! - [`AuditKind::AllocationMismatch`]: both sides know the instance, and its DISK_GB
//!   allocation differs from what its flavor needs by placement's rule. Bytes: the absolute
//!   difference.
//!
//! Placement's rule is nova's scheduler's (`ResourceRequest.from_request_spec` in
//! `nova/scheduler/utils.py`): DISK_GB = `ephemeral_gb` + `convert_mb_to_ceil_gb(swap)` +
//! `root_gb` unless the instance boots from a volume, whole GiB, swap rounded up; see
//! [`crate::tracked::Flavor::placement_allocation_bytes`], which the local sources already
//! apply to every instance ([`TrackedInstance::allocated_bytes`]). A flavor whose extra spec
//! `resources:DISK_GB` overrides that rule shows as a mismatch.
//!
//! A consumer that allocates no DISK_GB here and has no domain or LV is not a finding: it
//! holds no disk. A consumer with LVs but no domain is not one either: its disk is here (the
//! owner classes say whether those LVs are an instance's or an orphan's).

use std::collections::{BTreeMap, BTreeSet};

use crate::lvm::owner::attribute;
use crate::lvm::{Lv, VgReport};
use crate::tracked::{SourceKind, TrackedInstance, TrackedUsage};

/// What is wrong with one consumer (label `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditKind {
    /// Placement allocates DISK_GB to a consumer with no domain and no LV here.
    AllocationWithoutInstance,
    /// An instance (domain or LVs) here that placement does not allocate on this host.
    InstanceWithoutAllocation,
    /// The DISK_GB allocation differs from what the flavor needs by placement's rule.
    AllocationMismatch,
}

impl AuditKind {
    /// Every kind, in the order they are exported (so each series exists, 0 when none).
    pub const ALL: [AuditKind; 3] = [
        AuditKind::AllocationWithoutInstance,
        AuditKind::InstanceWithoutAllocation,
        AuditKind::AllocationMismatch,
    ];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::AllocationWithoutInstance => "allocation_without_instance",
            AuditKind::InstanceWithoutAllocation => "instance_without_allocation",
            AuditKind::AllocationMismatch => "allocation_mismatch",
        }
    }
}

/// One consumer (instance UUID) on which placement and this host disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFinding {
    /// What is wrong.
    pub kind: AuditKind,
    /// The consumer / instance UUID, lower case.
    pub uuid: String,
    /// Placement's DISK_GB allocation to it on this host, bytes; `None` when it has none.
    pub allocated_bytes: Option<u64>,
    /// What its flavor needs by placement's rule, bytes; `None` when the local source does not
    /// know the instance.
    pub expected_bytes: Option<u64>,
    /// Bytes of VG extents its nova-named LVs hold here (0 when it has none).
    pub lv_bytes: u64,
    /// The bytes this finding counts for (see the module documentation, per kind).
    pub bytes: u64,
}

/// The audit of one collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The local source placement was compared with.
    pub local_source: SourceKind,
    /// The consumers that disagree, by kind then UUID.
    pub findings: Vec<AuditFinding>,
}

impl Audit {
    /// How many consumers, and how many bytes, are of `kind`.
    pub fn totals(&self, kind: AuditKind) -> (u64, u64) {
        self.findings
            .iter()
            .filter(|finding| finding.kind == kind)
            .fold((0, 0), |(count, bytes), finding| {
                (count + 1, bytes.saturating_add(finding.bytes))
            })
    }
}

/// Compares placement's consumers (`allocations`: each consumer's DISK_GB in
/// [`TrackedInstance::allocated_bytes`]) with the local source's `instances` and the bytes of
/// nova-named LVs per instance UUID (`lv_bytes`). UUIDs are compared in lower case.
pub fn audit(
    local_source: SourceKind,
    allocations: &[TrackedInstance],
    instances: &[TrackedInstance],
    lv_bytes: &BTreeMap<String, u64>,
) -> Audit {
    let allocated: BTreeMap<String, u64> = allocations
        .iter()
        .map(|consumer| (consumer.uuid.to_ascii_lowercase(), consumer.allocated_bytes))
        .collect();
    let expected: BTreeMap<String, u64> = instances
        .iter()
        .map(|instance| (instance.uuid.to_ascii_lowercase(), instance.allocated_bytes))
        .collect();
    let lv_bytes: BTreeMap<String, u64> = lv_bytes
        .iter()
        .map(|(uuid, bytes)| (uuid.to_ascii_lowercase(), *bytes))
        .collect();
    let uuids: BTreeSet<&String> = allocated
        .keys()
        .chain(expected.keys())
        .chain(lv_bytes.keys())
        .collect();

    let mut findings = Vec::new();
    for uuid in uuids {
        let allocated_bytes = allocated.get(uuid).copied();
        let expected_bytes = expected.get(uuid).copied();
        let on_disk = lv_bytes.get(uuid).copied();
        let finding = |kind, bytes| AuditFinding {
            kind,
            uuid: uuid.clone(),
            allocated_bytes,
            expected_bytes,
            lv_bytes: on_disk.unwrap_or(0),
            bytes,
        };
        match (allocated_bytes, expected_bytes, on_disk) {
            (Some(allocation), None, None) if allocation > 0 => {
                findings.push(finding(AuditKind::AllocationWithoutInstance, allocation))
            }
            (None, Some(need), _) => {
                findings.push(finding(AuditKind::InstanceWithoutAllocation, need))
            }
            (None, None, Some(bytes)) => {
                findings.push(finding(AuditKind::InstanceWithoutAllocation, bytes))
            }
            (Some(allocation), Some(need), _) if allocation != need => findings.push(finding(
                AuditKind::AllocationMismatch,
                allocation.abs_diff(need),
            )),
            _ => {}
        }
    }
    findings.sort_by(|a, b| (a.kind, &a.uuid).cmp(&(b.kind, &b.uuid)));
    Audit {
        local_source,
        findings,
    }
}

/// The bytes of VG extents held by nova-named LVs (`<uuid>_<disk>`) in the watched VGs, per
/// instance UUID, lower case. A thin volume is present with 0 bytes (its extents are its pool's).
pub fn nova_lv_bytes(report: &VgReport, watched_vgs: &[String]) -> BTreeMap<String, u64> {
    let mut by_uuid: BTreeMap<String, u64> = BTreeMap::new();
    for name in watched_vgs {
        let Some(vg) = report.vg(name) else { continue };
        let lvs: Vec<&Lv> = report.lvs_of(name).collect();
        for lv in attribute(vg, &lvs, None) {
            if let Some(uuid) = lv.instance_uuid {
                let bytes = by_uuid.entry(uuid).or_insert(0);
                *bytes = bytes.saturating_add(lv.allocated_bytes);
            }
        }
    }
    by_uuid
}

/// The audit of one collection, when it can be made: LVM was read and placement and a local
/// source (libvirt or file) both succeeded. The local source is `primary` when that is a local
/// one, else the first local source in `usages`.
pub fn audit_collection(
    report: Option<&VgReport>,
    watched_vgs: &[String],
    usages: &[(SourceKind, &TrackedUsage)],
    primary: Option<SourceKind>,
) -> Option<Audit> {
    let report = report?;
    let usage_of = |kind: SourceKind| {
        usages
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, usage)| *usage)
    };
    let placement = usage_of(SourceKind::Placement)?;
    let is_local = |kind: SourceKind| matches!(kind, SourceKind::Libvirt | SourceKind::File);
    let (local_kind, local) = primary
        .filter(|kind| is_local(*kind))
        .and_then(|kind| usage_of(kind).map(|usage| (kind, usage)))
        .or_else(|| usages.iter().copied().find(|(kind, _)| is_local(*kind)))?;
    Some(audit(
        local_kind,
        &placement.instances,
        &local.instances,
        &nova_lv_bytes(report, watched_vgs),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::build::{linear_lv, vg};
    use crate::tracked::Flavor;
    use crate::units::{GIB, MIB};

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    const C: &str = "cccccccc-0000-4000-8000-000000000003";

    fn consumer(uuid: &str, disk_gb: u64) -> TrackedInstance {
        TrackedInstance::from_allocation(uuid, disk_gb * GIB)
    }

    fn instance(uuid: &str, root_gb: u64, ephemeral_gb: u64, swap_mb: u64) -> TrackedInstance {
        TrackedInstance::from_flavor(
            uuid,
            &Flavor {
                root_gb,
                ephemeral_gb,
                swap_mb,
                boot_from_volume: false,
            },
        )
    }

    fn lvs(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(u, b)| (u.to_string(), *b)).collect()
    }

    fn run(
        allocations: &[TrackedInstance],
        instances: &[TrackedInstance],
        lv: &[(&str, u64)],
    ) -> Audit {
        audit(SourceKind::Libvirt, allocations, instances, &lvs(lv))
    }

    #[test]
    fn agreeing_sides_and_empty_sides_give_no_finding() {
        assert!(run(&[], &[], &[]).findings.is_empty());
        let agreed = run(
            &[consumer(A, 21)],
            &[instance(A, 20, 0, 1024)],
            &[(A, 21 * GIB)],
        );
        assert!(agreed.findings.is_empty());
        for kind in AuditKind::ALL {
            assert_eq!(agreed.totals(kind), (0, 0));
        }
    }

    #[test]
    fn a_leaked_allocation_counts_its_bytes() {
        let result = run(
            &[consumer(A, 40), consumer(B, 10)],
            &[instance(B, 10, 0, 0)],
            &[],
        );
        assert_eq!(
            result.findings,
            vec![AuditFinding {
                kind: AuditKind::AllocationWithoutInstance,
                uuid: A.into(),
                allocated_bytes: Some(40 * GIB),
                expected_bytes: None,
                lv_bytes: 0,
                bytes: 40 * GIB,
            }]
        );
        assert_eq!(
            result.totals(AuditKind::AllocationWithoutInstance),
            (1, 42_949_672_960)
        );
    }

    #[test]
    fn a_consumer_with_lvs_but_no_domain_or_no_disk_allocation_is_not_leaked() {
        // Its disk is here (the LVs' owner class tells the rest).
        assert!(run(&[consumer(A, 40)], &[], &[(A, 40 * GIB)])
            .findings
            .is_empty());
        // A consumer that allocates no DISK_GB (a boot-from-volume instance elsewhere in the
        // tree, a migration record of VCPU/MEMORY_MB only) holds no disk here.
        assert!(run(&[consumer(A, 0)], &[], &[]).findings.is_empty());
    }

    #[test]
    fn an_instance_without_allocation_counts_what_its_flavor_needs_or_its_lvs() {
        let result = run(
            &[],
            &[instance(A, 20, 5, 1536)],
            &[(A, 27 * GIB + 512 * MIB), (B, 3 * GIB + 4 * MIB)],
        );
        assert_eq!(
            result.findings,
            vec![
                AuditFinding {
                    kind: AuditKind::InstanceWithoutAllocation,
                    uuid: A.into(),
                    allocated_bytes: None,
                    expected_bytes: Some(27 * GIB),
                    lv_bytes: 27 * GIB + 512 * MIB,
                    bytes: 27 * GIB,
                },
                AuditFinding {
                    kind: AuditKind::InstanceWithoutAllocation,
                    uuid: B.into(),
                    allocated_bytes: None,
                    expected_bytes: None,
                    lv_bytes: 3 * GIB + 4 * MIB,
                    bytes: 3 * GIB + 4 * MIB,
                },
            ]
        );
        assert_eq!(
            result.totals(AuditKind::InstanceWithoutAllocation),
            (2, 28_991_029_248 + 3_225_419_776)
        );
    }

    #[test]
    fn swap_is_rounded_up_to_whole_gib_as_the_scheduler_does() {
        // root 10 + swap 1 MiB -> 11 GiB; 512 MiB -> 11; 1024 -> 11; 1025 -> 12.
        for (swap_mb, need_gb) in [(1, 11), (512, 11), (1024, 11), (1025, 12), (0, 10)] {
            assert!(
                run(&[consumer(A, need_gb)], &[instance(A, 10, 0, swap_mb)], &[])
                    .findings
                    .is_empty(),
                "swap {swap_mb} MiB"
            );
            let off = run(
                &[consumer(A, need_gb - 1)],
                &[instance(A, 10, 0, swap_mb)],
                &[],
            );
            assert_eq!(off.totals(AuditKind::AllocationMismatch), (1, GIB));
        }
    }

    #[test]
    fn a_mismatch_counts_the_difference_either_way() {
        let result = run(
            &[consumer(A, 15), consumer(B, 30), consumer(C, 0)],
            &[
                instance(A, 20, 0, 0),
                instance(B, 20, 5, 2048),
                instance(C, 1, 0, 0),
            ],
            &[],
        );
        let by_uuid: Vec<(&str, Option<u64>, Option<u64>, u64)> = result
            .findings
            .iter()
            .map(|f| {
                assert_eq!(f.kind, AuditKind::AllocationMismatch);
                (
                    f.uuid.as_str(),
                    f.allocated_bytes,
                    f.expected_bytes,
                    f.bytes,
                )
            })
            .collect();
        assert_eq!(
            by_uuid,
            vec![
                (A, Some(15 * GIB), Some(20 * GIB), 5 * GIB),
                (B, Some(30 * GIB), Some(27 * GIB), 3 * GIB),
                (C, Some(0), Some(GIB), GIB),
            ]
        );
        assert_eq!(
            result.totals(AuditKind::AllocationMismatch),
            (3, 9_663_676_416)
        );
    }

    #[test]
    fn a_boot_from_volume_root_is_not_expected_in_the_allocation() {
        let bfv = TrackedInstance::from_flavor(
            A,
            &Flavor {
                root_gb: 80,
                ephemeral_gb: 2,
                swap_mb: 100,
                boot_from_volume: true,
            },
        );
        assert!(run(&[consumer(A, 3)], std::slice::from_ref(&bfv), &[])
            .findings
            .is_empty());
        let with_root = run(&[consumer(A, 83)], &[bfv], &[]);
        assert_eq!(
            with_root.totals(AuditKind::AllocationMismatch),
            (1, 80 * GIB)
        );
    }

    #[test]
    fn uuids_are_compared_in_lower_case() {
        let upper = A.to_ascii_uppercase();
        assert!(run(
            &[consumer(&upper, 10)],
            &[instance(A, 10, 0, 0)],
            &[(&upper, GIB)]
        )
        .findings
        .is_empty());
    }

    fn report(lvs: &[(&str, u64)]) -> VgReport {
        let lv = |name: &str, size_bytes: u64| linear_lv("vms-group", name, size_bytes);
        VgReport {
            vgs: vec![vg(
                "vms-group",
                100 * GIB,
                100 * GIB - lvs.iter().map(|(_, b)| b).sum::<u64>(),
            )],
            lvs: lvs.iter().map(|(name, bytes)| lv(name, *bytes)).collect(),
        }
    }

    #[test]
    fn nova_lvs_are_summed_per_instance_and_other_lvs_ignored() {
        let disk = format!("{A}_disk");
        let swap = format!("{A}_disk.swap");
        let other = format!("{}_disk", B.to_ascii_uppercase());
        let lvm = report(&[
            (&disk, 10 * GIB),
            (&swap, 512 * MIB),
            (&other, GIB),
            ("volume-cccccccc-0000-4000-8000-000000000003", 3 * GIB),
            ("scratch", 5 * GIB),
        ]);
        assert_eq!(
            nova_lv_bytes(&lvm, &["vms-group".to_string(), "absent".to_string()]),
            lvs(&[(A, 10 * GIB + 512 * MIB), (B, GIB)])
        );
        assert!(nova_lv_bytes(&lvm, &[]).is_empty());
    }

    #[test]
    fn the_collection_is_audited_only_with_lvm_placement_and_a_local_source() {
        let lvm = report(&[]);
        let vgs = ["vms-group".to_string()];
        let placement = TrackedUsage::from_local(vec![consumer(A, 10)], &Default::default());
        let libvirt = TrackedUsage::from_local(vec![instance(B, 5, 0, 0)], &Default::default());
        let file = TrackedUsage::from_local(vec![instance(A, 10, 0, 0)], &Default::default());
        let all = [
            (SourceKind::Placement, &placement),
            (SourceKind::Libvirt, &libvirt),
            (SourceKind::File, &file),
        ];
        // Without LVM, placement or a local source (the nova source is not local): no audit.
        assert_eq!(audit_collection(None, &vgs, &all, None), None);
        assert_eq!(audit_collection(Some(&lvm), &vgs, &all[1..], None), None);
        let nova_only = [
            (SourceKind::Placement, &placement),
            (SourceKind::Nova, &file),
        ];
        assert_eq!(
            audit_collection(Some(&lvm), &vgs, &nova_only, Some(SourceKind::Nova)),
            None
        );
        // A local primary is the one compared; else the first local source.
        let by_file = audit_collection(Some(&lvm), &vgs, &all, Some(SourceKind::File)).unwrap();
        assert_eq!(by_file.local_source, SourceKind::File);
        assert!(by_file.findings.is_empty());
        let by_libvirt =
            audit_collection(Some(&lvm), &vgs, &all, Some(SourceKind::Placement)).unwrap();
        assert_eq!(by_libvirt.local_source, SourceKind::Libvirt);
        assert_eq!(
            by_libvirt
                .findings
                .iter()
                .map(|f| (f.kind, f.uuid.as_str(), f.bytes))
                .collect::<Vec<_>>(),
            vec![
                (AuditKind::AllocationWithoutInstance, A, 10 * GIB),
                (AuditKind::InstanceWithoutAllocation, B, 5 * GIB),
            ]
        );
    }
}
