//! API microversions (`major.minor`), shared by the placement and compute (nova) sources.
//!
//! Both services publish the range they support in their version document (placement:
//! `min_version`/`max_version`; nova: `min_version`/`version`) and take the wanted version in
//! the `OpenStack-API-Version: <service type> <major.minor>` header.

/// A microversion `major.minor`, ordered numerically (`2.9 < 2.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u32, pub u32);

impl Microversion {
    /// Parses `1.39` (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(Self(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microversions_parse_and_order_numerically() {
        assert_eq!(Microversion::parse(" 2.87 "), Some(Microversion(2, 87)));
        assert_eq!(Microversion::parse("2"), None);
        assert_eq!(Microversion::parse("2.x"), None);
        assert!(Microversion(2, 10) > Microversion(2, 9));
        assert_eq!(Microversion(2, 1).to_string(), "2.1");
    }
}
