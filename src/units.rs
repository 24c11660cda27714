//! Sizes: the one definition of GiB and MiB, and how sizes and ratios are written for people.

/// Bytes in one GiB, nova's unit for `root_gb` / `ephemeral_gb` / DISK_GB.
pub const GIB: u64 = 1024 * 1024 * 1024;
/// Bytes in one MiB, nova's unit for `swap` and `reserved_host_disk_mb`.
pub const MIB: u64 = 1024 * 1024;

/// `bytes` in GiB with two decimals, e.g. `200.00 GiB`, `-1.50 GiB`.
pub fn gib(bytes: i64) -> String {
    format!("{} GiB", gib_number(bytes))
}

/// `bytes` in GiB with two decimals, without the unit.
pub fn gib_number(bytes: i64) -> String {
    format!("{:.2}", bytes as f64 / GIB as f64)
}

/// A ratio without trailing zeros beyond one decimal (`1.0`, `1.5`, `16.0`).
pub fn format_ratio(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_gib_with_two_decimals() {
        assert_eq!(gib(200 * GIB as i64), "200.00 GiB");
        assert_eq!(gib(-(GIB as i64) / 2), "-0.50 GiB");
        assert_eq!(format_ratio(1.0), "1.0");
        assert_eq!(format_ratio(1.5), "1.5");
    }
}
