//! Text made safe to show or to send: control characters escaped for a terminal line,
//! percent-encoding for a URL path segment or query value, and HTML escaping for the status page.

use std::fmt::Write as _;

/// `text` with every control character escaped (`\n`, `\r`, `\t`, `\u{1b}`, ...), and the
/// Unicode marks that reorder a terminal line (bidirectional overrides and isolates), so that a
/// name or an error read from outside prints as what it is: one line, no terminal escape
/// sequences. For the text outputs (`report`, `check`); the status page escapes for HTML, JSON
/// escapes by itself.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    let reorders = is_bidi_control;
    if !text.chars().any(|c| c.is_control() || reorders(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else if reorders(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// True for the Unicode bidirectional formatting characters (marks, embeddings, overrides,
/// isolates), which make text display in another order than it is stored.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escapes text for HTML element content and attribute values: the markup characters become
/// entities, and control characters (but line breaks and tabs) and bidirectional formatting
/// characters are shown as `\u{..}` escapes, as `report` shows them, so that a name cannot hide
/// or reorder what the page says.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) are the only ones left as they are.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a URL path segment or query value: everything but RFC 3986's unreserved
/// characters, UTF-8 bytes each as `%XX`.
pub fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_control_leaves_ordinary_text_alone() {
        assert!(matches!(
            escape_control("vms-group/lv_1+x.y"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_control("tab\there\u{0}\u{7f}\u{85}"),
            r"tab\there\0\u{7f}\u{85}"
        );
        assert_eq!(escape_control("ünïcødé ✓"), "ünïcødé ✓");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(percent_encode("cmp 7&x"), "cmp%207%26x");
        assert_eq!(percent_encode("cmp-7.example_a~b"), "cmp-7.example_a~b");
        // Every other byte, UTF-8 included, as upper-case %XX: what the hand-written encoder
        // before the crate produced, byte for byte.
        assert_eq!(percent_encode("é/x?a=b#c%"), "%C3%A9%2Fx%3Fa%3Db%23c%25");
        for byte in 0u8..128 {
            let text = (byte as char).to_string();
            let expected = if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                text.clone()
            } else {
                format!("%{byte:02X}")
            };
            assert_eq!(percent_encode(&text), expected, "byte {byte}");
        }
    }
}
