//! Replaying a saved LVM JSON report instead of running LVM.
