//! The accounting layer, pure: the sources' observations and the configuration in, the derived
//! figures out. No I/O and no clocks; every function here is a step [`crate::collect`] runs
//! over one collection's observations.
//!
//! - [`drift`]: the model: per VG, the totals per owner class and the LVs nova does not track;
//!   drift by cause, corrected free space, the scheduler's view, the reserve that would fix it.
//! - [`audit`]: placement's allocations compared consumer by consumer with the local instances
//!   and nova's LVs.
//! - [`fit`]: how many more instances of each flavor fit, by corrected free space and by the
//!   scheduler's rule.
//! - [`orphans`]: the orphan LVs of nova's VG and why each is one, totalled per reason, and the
//!   doubt cast on a local source that sees no instance at all.
//!
//! `orphans` builds on `drift`'s per-VG figures; `audit` and `fit` stand alone.

pub mod audit;
pub mod drift;
pub mod fit;
pub mod orphans;
