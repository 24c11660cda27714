//! Identifiers from upstream: instance and consumer UUIDs in one canonical spelling, so that the
//! same instance is the same key in every source (placement's consumers, nova's servers, libvirt
//! domains, the instances file, the provider UUID flag and nova's `compute_id`).

/// The canonical spelling of a UUID: lower-case hex digits in 8-4-4-4-12 groups, nova's and
/// placement's own form, or `None` when `text` is not a UUID.
///
/// Accepted: 32 hex digits in either case, either in 8-4-4-4-12 groups or without any hyphen
/// (both are UUIDs to oslo's `is_uuid_like`, which nova and placement validate with, and to
/// libvirt's parser). Refused: any other hyphenation, braces, a `urn:uuid:` prefix, whitespace
/// anywhere, other characters, another length.
pub fn canonical_uuid(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let digits: Vec<u8> = match bytes.len() {
        36 => {
            let grouped = bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => *b != b'-',
            });
            if !grouped {
                return None;
            }
            bytes.iter().copied().filter(|b| *b != b'-').collect()
        }
        32 => bytes.to_vec(),
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let lower: String = digits
        .iter()
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &lower[..8],
        &lower[8..12],
        &lower[12..16],
        &lower[16..20],
        &lower[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63";

    #[test]
    fn every_accepted_spelling_gives_the_one_canonical_form() {
        for spelling in [
            CANONICAL,
            "D47B9E21-3C6A-4F18-8E2D-5A9B1C7F3E63",
            "d47B9e21-3C6a-4f18-8E2d-5a9B1c7F3e63",
            "d47b9e213c6a4f188e2d5a9b1c7f3e63",
            "D47B9E213C6A4F188E2D5A9B1C7F3E63",
        ] {
            assert_eq!(
                canonical_uuid(spelling).as_deref(),
                Some(CANONICAL),
                "{spelling}"
            );
        }
        assert_eq!(
            canonical_uuid("00000000-0000-0000-0000-000000000000").as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn every_single_character_change_of_a_uuid_is_judged_exactly() {
        // Each position of the grouped form replaced by each printable ASCII character and a
        // few others: accepted exactly when a hex digit replaces a hex digit.
        let others = ['\0', '\t', '\n', ' ', '\u{7f}', 'é', '\u{202e}', '０'];
        for position in 0..CANONICAL.len() {
            let hyphen = matches!(position, 8 | 13 | 18 | 23);
            for c in (0x20u8..0x7f).map(char::from).chain(others) {
                let mut text = String::from(&CANONICAL[..position]);
                text.push(c);
                text.push_str(&CANONICAL[position + 1..]);
                let expected = if hyphen {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                };
                assert_eq!(
                    canonical_uuid(&text).is_some(),
                    expected,
                    "{text:?} (position {position})"
                );
                if expected {
                    assert_eq!(canonical_uuid(&text).unwrap(), text.to_ascii_lowercase());
                }
            }
        }
    }

    #[test]
    fn other_lengths_hyphenations_and_wrappings_are_refused() {
        let plain = CANONICAL.replace('-', "");
        for length in 0..=40 {
            let text: String = plain.chars().cycle().take(length).collect();
            assert_eq!(canonical_uuid(&text).is_some(), length == 32, "{text}");
        }
        for bad in [
            "d47b9e213-c6a-4f18-8e2d-5a9b1c7f3e63",
            "d47b9e21-3c6a4f18-8e2d-5a9b1c7f3e63-",
            "d47b-9e21-3c6a-4f18-8e2d5a9b1c7f3e63",
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e6-3",
            "d47b9e21--3c6a-4f18-8e2d-5a9b1c7f3e6",
            "-d47b9e213c6a4f188e2d5a9b1c7f3e63",
            "d47b9e213c6a4f188e2d5a9b1c7f3e63-",
            "{d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63}",
            "{d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63}",
            "{D47B9E213C6A4F188E2D5A9B1C7F3E63}",
            "urn:uuid:d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            "URN:UUID:D47B9E213C6A4F188E2D5A9B1C7F3E63",
            "urn:uuid:",
            "urn:d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            "uuid:d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            " d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63",
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63 ",
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e63_disk",
            "0xd47b9e213c6a4f188e2d5a9b1c7f3e",
            "d47b9e21-3c6a-4f18-8e2d-5a9b1c7f3é",
            "ｄ47b9e21-3c6a-4f18-8e2d-5a9b1c7f3e6",
        ] {
            assert_eq!(canonical_uuid(bad), None, "{bad:?}");
        }
    }
}
