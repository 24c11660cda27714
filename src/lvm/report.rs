//! Parsing of LVM's JSON reports (`--reportformat json --units b --nosuffix`).
