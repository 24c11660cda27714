//! The file source: a JSON file of instances, for replay, support cases and tests.
