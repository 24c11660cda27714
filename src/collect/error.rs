//! Why a collector failed on one collection, typed up to the output edge: the outputs render
//! the text ([`std::fmt::Display`]); the collection itself branches on the kind.

use std::sync::Arc;
use std::time::Duration;

use crate::accounting::drift::AccountingError;
use crate::lvm::LvmError;
use crate::tracked::TrackedError;

/// Why one collector gave nothing usable on one collection. The text is the collector's
/// `error` in the report, the status page, `check` and the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectorError {
    /// The source did not answer within its timeout.
    #[error("timed out after {} ms", after.as_millis())]
    TimedOut {
        /// The timeout that expired.
        after: Duration,
    },
    /// The source panicked (a bug); the panic's message.
    #[error("internal error (a bug): {0}")]
    Panicked(String),
    /// The source answered with an error.
    #[error(transparent)]
    Source(SourceError),
    /// The source's figures (or LVM's) do not fit the accounting (sums beyond its range, a VG
    /// smaller than its free space).
    #[error(transparent)]
    DoesNotFit(AccountingError),
    /// LVM did not report every watched VG; the message says which and what LVM sees.
    #[error("{message}")]
    VgMissing {
        /// The watched VGs LVM did not report.
        vgs: Vec<String>,
        /// What the operator reads: the VGs, and the VGs and PVs LVM sees when it was asked.
        message: String,
    },
}

/// The error a source answered with, as the source typed it. Shared ([`Arc`]) so that a
/// snapshot, which is cloned, can hold errors that are not themselves `Clone`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The raw source (LVM).
    #[error(transparent)]
    Lvm(Arc<LvmError>),
    /// A tracked source.
    #[error(transparent)]
    Tracked(Arc<TrackedError>),
    /// A source whose errors are still text where they arise (the compute API's flavor list).
    #[error("{0}")]
    Text(String),
}

impl From<LvmError> for CollectorError {
    fn from(error: LvmError) -> Self {
        CollectorError::Source(SourceError::Lvm(Arc::new(error)))
    }
}

impl From<TrackedError> for CollectorError {
    fn from(error: TrackedError) -> Self {
        CollectorError::Source(SourceError::Tracked(Arc::new(error)))
    }
}

impl From<AccountingError> for CollectorError {
    fn from(error: AccountingError) -> Self {
        CollectorError::DoesNotFit(error)
    }
}

/// The same kind with the same text: what a reader of the snapshot can tell apart.
impl PartialEq for CollectorError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_says_what_the_collector_said_before_it_was_typed() {
        assert_eq!(
            CollectorError::TimedOut {
                after: Duration::from_millis(200)
            }
            .to_string(),
            "timed out after 200 ms"
        );
        assert_eq!(
            CollectorError::Panicked("boom".into()).to_string(),
            "internal error (a bug): boom"
        );
        let invalid = TrackedError::Invalid {
            path: "instances.json".into(),
            message: "bad".into(),
        };
        assert_eq!(
            CollectorError::from(invalid).to_string(),
            "instances.json: bad"
        );
        let vgs = CollectorError::VgMissing {
            vgs: vec!["gone-vg".into()],
            message: "volume group not found: gone-vg".into(),
        };
        assert_eq!(vgs.to_string(), "volume group not found: gone-vg");
        assert_ne!(
            vgs,
            CollectorError::Source(SourceError::Text("volume group not found: gone-vg".into()))
        );
    }
}
