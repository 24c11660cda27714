//! The metadata area: its header (`struct mda_header` with its `raw_locn` list,
//! `lib/format_text/layout.h`, checked as `raw_parse_mda_header` in
//! `lib/format_text/format-text.c` does) and the metadata text it locates in the area's circular
//! buffer, which may wrap around the area's end (`lib/format_text/format-text.c`; its checksum
//! as `lib/config/config.c` verifies it).
//!
//! Layout of the header sector, all little-endian:
//!
//! ```text
//! checksum_xl u32 | magic [16] | version u32 | start u64 | size u64
//! raw_locn { offset u64, size u64, checksum u32, flags u32 } ... { 0, 0, 0, 0 }
//! ```
//!
//! The checksum covers the 508 bytes after it. `raw_locn[0]` locates the committed text:
//! `offset` bytes from the header's `start`, `size` bytes long; when `offset + size` passes the
//! area's `size`, the rest continues right after the header sector.

use std::sync::Arc;

use crate::crc::{calc_crc, INITIAL_CRC};
use crate::text::{ConfigTree, Value};
use crate::{le_u32, le_u64, MetadataError, MAX_TEXT_BYTES, SECTOR_SIZE};

/// Bytes of the metadata area header (`MDA_HEADER_SIZE`); the text buffer follows it.
pub const MDA_HEADER_SIZE: usize = SECTOR_SIZE;
/// `FMTT_MAGIC`.
pub const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `FMTT_VERSION`.
pub const MDA_VERSION: u32 = 1;
/// `RAW_LOCN_IGNORED`: the area is not used for this VG's metadata.
pub const RAW_LOCN_IGNORED: u32 = 0x1;

const FIXED_PART: usize = 40;
const RAW_LOCN_SIZE: usize = 24;
const WHAT: &str = "metadata area header";

/// Where a metadata text is (`struct raw_locn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawLocn {
    /// Bytes from the start of the metadata area (its header) to the text.
    pub offset: u64,
    /// Bytes of text, its terminating NUL included.
    pub size: u64,
    /// `calc_crc` of the text.
    pub checksum: u32,
    /// Flags; [`RAW_LOCN_IGNORED`] is the only one defined.
    pub flags: u32,
}

impl RawLocn {
    /// True when the area is marked ignored (`pvchange --metadataignore y`).
    pub fn is_ignored(&self) -> bool {
        self.flags & RAW_LOCN_IGNORED != 0
    }
}

/// A metadata area header, checked: checksum, magic, version and start matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaHeader {
    /// Byte offset of the header on the device (the area's start).
    pub start: u64,
    /// Bytes in the area, header included.
    pub size: u64,
    /// The `raw_locn` entries before the terminating zero one; the first locates the text.
    pub raw_locns: Vec<RawLocn>,
}

/// Where the text of `raw_locn[0]` lies, as byte ranges from the start of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSpan {
    /// The first part: `(device offset, length)`.
    pub first: (u64, u64),
    /// The part that wrapped around the end of the area to just after its header, if any.
    pub wrapped: Option<(u64, u64)>,
}

fn malformed(detail: String) -> MetadataError {
    MetadataError::Malformed { what: WHAT, detail }
}

/// Parses and checks the header sector of the metadata area that the PV label places at
/// `expected_start` bytes into the device.
pub fn parse_mda_header(bytes: &[u8], expected_start: u64) -> Result<MdaHeader, MetadataError> {
    let Some(sector) = bytes.get(..MDA_HEADER_SIZE) else {
        return Err(MetadataError::Truncated {
            what: WHAT,
            needed: MDA_HEADER_SIZE as u64,
            available: bytes.len() as u64,
        });
    };
    let stored = le_u32(sector, 0).unwrap_or_default();
    let computed = calc_crc(INITIAL_CRC, &sector[4..]);
    if stored != computed {
        return Err(MetadataError::BadChecksum {
            what: WHAT,
            stored,
            computed,
        });
    }
    if &sector[4..20] != MDA_MAGIC {
        return Err(malformed("wrong magic".into()));
    }
    let version = le_u32(sector, 20).unwrap_or_default();
    if version != MDA_VERSION {
        return Err(malformed(format!(
            "version {version}, expected {MDA_VERSION}"
        )));
    }
    let start = le_u64(sector, 24).unwrap_or_default();
    if start != expected_start {
        return Err(malformed(format!(
            "it records start {start}, but it was read at {expected_start}"
        )));
    }
    let area_size = le_u64(sector, 32).unwrap_or_default();
    if area_size < MDA_HEADER_SIZE as u64 {
        return Err(malformed(format!(
            "area size {area_size} is smaller than its header"
        )));
    }
    let mut raw_locns = Vec::new();
    let mut at = FIXED_PART;
    loop {
        let entry = (
            le_u64(sector, at),
            le_u64(sector, at + 8),
            le_u32(sector, at + 16),
            le_u32(sector, at + 20),
        );
        let (Some(offset), Some(size), Some(checksum), Some(flags)) = entry else {
            return Err(malformed(
                "the raw_locn list does not end inside the header".into(),
            ));
        };
        if offset == 0 {
            return Ok(MdaHeader {
                start,
                size: area_size,
                raw_locns,
            });
        }
        raw_locns.push(RawLocn {
            offset,
            size,
            checksum,
            flags,
        });
        at += RAW_LOCN_SIZE;
    }
}

impl MdaHeader {
    /// The committed text's location (`raw_locn[0]`): [`MetadataError::NoText`] for an empty
    /// area (a PV in no VG), [`MetadataError::Ignored`] for an ignored one.
    pub fn current(&self) -> Result<RawLocn, MetadataError> {
        let locn = self
            .raw_locns
            .first()
            .copied()
            .ok_or(MetadataError::NoText)?;
        if locn.is_ignored() {
            return Err(MetadataError::Ignored);
        }
        Ok(locn)
    }

    /// Where the text of `locn` lies on the device, bounds-checked against the area as lvm2
    /// checks it (offset inside the area after the header, size at most the area's buffer and
    /// at most [`MAX_TEXT_BYTES`]).
    pub fn text_span(&self, locn: &RawLocn) -> Result<TextSpan, MetadataError> {
        let buffer = self.size.saturating_sub(MDA_HEADER_SIZE as u64);
        if locn.size == 0 {
            return Err(MetadataError::NoText);
        }
        if locn.offset < MDA_HEADER_SIZE as u64 || locn.offset >= self.size || locn.size > buffer {
            return Err(malformed(format!(
                "text at offset {} size {} is outside the {}-byte area",
                locn.offset, locn.size, self.size
            )));
        }
        if locn.size > MAX_TEXT_BYTES {
            return Err(MetadataError::TooLarge {
                size: locn.size,
                limit: MAX_TEXT_BYTES,
            });
        }
        // offset < size: what does not fit between the offset and the area's end wraps.
        let wrap = locn.size.saturating_sub(self.size - locn.offset);
        let absolute = |relative: u64| {
            self.start.checked_add(relative).ok_or_else(|| {
                malformed(format!(
                    "area start {} plus {relative} overflows",
                    self.start
                ))
            })
        };
        Ok(TextSpan {
            first: (absolute(locn.offset)?, locn.size - wrap),
            wrapped: match wrap {
                0 => None,
                _ => Some((absolute(MDA_HEADER_SIZE as u64)?, wrap)),
            },
        })
    }
}

/// A metadata text an earlier read of one metadata area verified (its checksum matched, it is
/// UTF-8), with the `raw_locn` it was read under. Only a successful read makes one
/// ([`crate::device::MdaText::verified`]); handed back to the next read of the same area
/// ([`crate::device::read_mda_text_unparsed`]), it lets that read skip the checksum, the copy
/// and the UTF-8 check when the bytes it reads are these bytes, compared in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedText {
    locn: RawLocn,
    text: Arc<str>,
}

impl VerifiedText {
    /// Made by the crate from a text it verified, never from outside: holding one means these
    /// bytes matched this `raw_locn`'s checksum.
    pub(crate) fn new(locn: RawLocn, text: Arc<str>) -> Self {
        VerifiedText { locn, text }
    }

    /// Where the text was (`raw_locn[0]` of the read that verified it).
    pub fn locn(&self) -> &RawLocn {
        &self.locn
    }

    /// The text, without its terminating NUL.
    pub fn text(&self) -> &Arc<str> {
        &self.text
    }

    /// True when `first` then `wrapped`, read under `locn`, are the bytes this text was
    /// verified from: the same `raw_locn` (offset, size, checksum, flags) and every byte equal
    /// (the text, then the NULs that ended it).
    fn is_read_as(&self, first: &[u8], wrapped: &[u8], locn: &RawLocn) -> bool {
        let text = self.text.as_bytes();
        if self.locn != *locn || text.len() > first.len() + wrapped.len() {
            return false;
        }
        let (in_first, in_wrapped) = text.split_at(text.len().min(first.len()));
        let padding_only = |bytes: &[u8]| bytes.iter().all(|byte| *byte == 0);
        first[..in_first.len()] == *in_first
            && padding_only(&first[in_first.len()..])
            && wrapped[..in_wrapped.len()] == *in_wrapped
            && padding_only(&wrapped[in_wrapped.len()..])
    }
}

/// Checks the text read from a [`TextSpan`] (`first`, then `wrapped`, empty when it did not
/// wrap) against `locn.checksum` and returns it without its terminating NUL.
///
/// `previous` is the text this area held when last verified: when `locn` is its `raw_locn` and
/// the bytes read are its bytes, compared in full, it is handed back (the same allocation)
/// without computing the checksum again: identical bytes have the identical checksum. Any
/// other bytes are checked in full.
pub fn assemble_text(
    first: &[u8],
    wrapped: &[u8],
    locn: &RawLocn,
    previous: Option<&VerifiedText>,
) -> Result<Arc<str>, MetadataError> {
    let expected = locn.size;
    let got = (first.len() + wrapped.len()) as u64;
    if got != expected {
        return Err(MetadataError::Truncated {
            what: "metadata text",
            needed: expected,
            available: got,
        });
    }
    if let Some(previous) = previous.filter(|previous| previous.is_read_as(first, wrapped, locn)) {
        return Ok(Arc::clone(&previous.text));
    }
    let computed = calc_crc(calc_crc(INITIAL_CRC, first), wrapped);
    if computed != locn.checksum {
        return Err(MetadataError::BadChecksum {
            what: "metadata text",
            stored: locn.checksum,
            computed,
        });
    }
    let mut text = Vec::with_capacity(first.len() + wrapped.len());
    text.extend_from_slice(first);
    text.extend_from_slice(wrapped);
    while text.last() == Some(&0) {
        text.pop();
    }
    String::from_utf8(text)
        .map(Arc::from)
        .map_err(|e| MetadataError::Malformed {
            what: "metadata text",
            detail: format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        })
}

/// The VG's `seqno` from its metadata text, as LVM reads it: the text parsed, then the `seqno`
/// value of the VG section (the first top-level section, as `import_vsn1.c` finds the VG).
/// `None` when the text does not parse or its VG section has no integer `seqno`. A line that
/// merely looks like `seqno = N` (inside a string, or a key `seqnox`) is not one.
pub fn seqno(text: &str) -> Option<u64> {
    vg_seqno(&crate::text::parse_metadata(text).ok()?)
}

/// The `seqno` of the VG section of a parsed metadata text (see [`seqno`]).
pub fn vg_seqno(tree: &ConfigTree<'_>) -> Option<u64> {
    let (_, vg) = tree.root.sections().next()?;
    match vg.value("seqno")? {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::tests::REAL;

    const AREA: u64 = 4096;

    fn reseal(header: &mut [u8]) {
        let crc = calc_crc(INITIAL_CRC, &header[4..MDA_HEADER_SIZE]);
        header[..4].copy_from_slice(&crc.to_le_bytes());
    }

    fn real_header() -> Vec<u8> {
        REAL[4096..4096 + MDA_HEADER_SIZE].to_vec()
    }

    #[test]
    fn a_real_header_and_text_parse() {
        let header = parse_mda_header(&real_header(), AREA).unwrap();
        assert_eq!((header.start, header.size), (4096, 0x1f_f000));
        let locn = header.current().unwrap();
        assert_eq!((locn.offset, locn.size, locn.flags), (512, 0x2c6, 0));
        let span = header.text_span(&locn).unwrap();
        assert_eq!(
            span,
            TextSpan {
                first: (4608, 0x2c6),
                wrapped: None
            }
        );
        let text = assemble_text(&REAL[4608..4608 + 0x2c6], &[], &locn, None).unwrap();
        assert!(text.starts_with("probevg {\nid = "));
        assert!(text.ends_with("\n"));
        assert_eq!(seqno(&text), Some(1));
    }

    #[test]
    fn checksum_magic_version_start_and_size_are_checked() {
        let mut flipped = real_header();
        flipped[100] ^= 1;
        assert!(matches!(
            parse_mda_header(&flipped, AREA),
            Err(MetadataError::BadChecksum { what: WHAT, .. })
        ));
        assert!(matches!(
            parse_mda_header(&real_header(), 8192),
            Err(MetadataError::Malformed { .. })
        ));
        for (at, value) in [(4usize, b'x'), (20, 2), (32, 0)] {
            let mut header = real_header();
            header[at] = value;
            if at == 32 {
                header[32..40].copy_from_slice(&100u64.to_le_bytes());
            }
            reseal(&mut header);
            assert!(
                matches!(
                    parse_mda_header(&header, AREA),
                    Err(MetadataError::Malformed { .. })
                ),
                "{at}"
            );
        }
        assert!(matches!(
            parse_mda_header(&real_header()[..511], AREA),
            Err(MetadataError::Truncated { .. })
        ));
    }

    #[test]
    fn zero_unterminated_and_ignored_raw_locns() {
        let mut empty = real_header();
        empty[40..64].fill(0);
        reseal(&mut empty);
        assert_eq!(
            parse_mda_header(&empty, AREA).unwrap().current(),
            Err(MetadataError::NoText)
        );
        let mut full = real_header();
        full[40..].fill(0x11);
        reseal(&mut full);
        assert!(matches!(
            parse_mda_header(&full, AREA),
            Err(MetadataError::Malformed { .. })
        ));
        let mut ignored = real_header();
        ignored[60] = 1;
        reseal(&mut ignored);
        assert_eq!(
            parse_mda_header(&ignored, AREA).unwrap().current(),
            Err(MetadataError::Ignored)
        );
    }

    fn header(size: u64) -> MdaHeader {
        MdaHeader {
            start: AREA,
            size,
            raw_locns: vec![],
        }
    }

    fn locn(offset: u64, size: u64) -> RawLocn {
        RawLocn {
            offset,
            size,
            checksum: 0,
            flags: 0,
        }
    }

    #[test]
    fn spans_wrap_and_hostile_locations_are_refused() {
        let area = header(4096);
        assert_eq!(
            area.text_span(&locn(4000, 200)).unwrap(),
            TextSpan {
                first: (AREA + 4000, 96),
                wrapped: Some((AREA + 512, 104))
            }
        );
        assert_eq!(area.text_span(&locn(3896, 200)).unwrap().wrapped, None);
        for (offset, size) in [
            (0, 10),
            (511, 10),
            (4096, 10),
            (u64::MAX, 10),
            (512, 3585),
            (600, u64::MAX),
        ] {
            assert!(
                matches!(
                    area.text_span(&locn(offset, size)),
                    Err(MetadataError::Malformed { .. })
                ),
                "{offset} {size}"
            );
        }
        assert_eq!(area.text_span(&locn(512, 0)), Err(MetadataError::NoText));
        let huge = header(u64::MAX);
        assert!(matches!(
            huge.text_span(&locn(512, MAX_TEXT_BYTES + 1)),
            Err(MetadataError::TooLarge { .. })
        ));
        let overflowing = MdaHeader {
            start: u64::MAX - 10,
            size: 1 << 20,
            raw_locns: vec![],
        };
        assert!(matches!(
            overflowing.text_span(&locn(512, 10)),
            Err(MetadataError::Malformed { .. })
        ));
    }

    #[test]
    fn a_wrapped_text_is_checked_over_both_parts() {
        let text = b"vg {\nseqno = 7\n}\n\0";
        let checksum = calc_crc(INITIAL_CRC, text);
        let whole = RawLocn {
            offset: 512,
            size: text.len() as u64,
            checksum,
            flags: 0,
        };
        for split in 0..text.len() {
            let (first, wrapped) = text.split_at(split);
            assert_eq!(
                &*assemble_text(first, wrapped, &whole, None).unwrap(),
                "vg {\nseqno = 7\n}\n"
            );
        }
        let (first, wrapped) = text.split_at(5);
        assert!(matches!(
            assemble_text(wrapped, first, &whole, None),
            Err(MetadataError::BadChecksum {
                what: "metadata text",
                ..
            })
        ));
        assert!(matches!(
            assemble_text(first, &[], &whole, None),
            Err(MetadataError::Truncated { .. })
        ));
        let bad_utf8 = [0xff, 0xfe, 0];
        let bad = RawLocn {
            checksum: calc_crc(INITIAL_CRC, &bad_utf8),
            size: 3,
            ..whole
        };
        assert!(matches!(
            assemble_text(&bad_utf8, &[], &bad, None),
            Err(MetadataError::Malformed { .. })
        ));
    }

    #[test]
    fn seqno_is_the_vg_sections_value() {
        assert_eq!(
            seqno("vg {\nid = \"x\"\n\tseqno = 42\nlv {\nseqno = 1\n}\n}"),
            Some(42)
        );
        assert_eq!(seqno("vg {\n}"), None);
        assert_eq!(seqno("seqno = lots"), None);
        // A string holding a line that looks like a seqno is a string.
        assert_eq!(
            seqno("description = \"x\nseqno = 99999\n\"\nvg {\nseqno = 3\n}\n"),
            Some(3)
        );
        // A key that starts with seqno is another key.
        assert_eq!(seqno("vg {\nseqnox = 9\nseqno = 4\n}\n"), Some(4));
        // Top-level values are not the VG's.
        assert_eq!(seqno("seqno = 8\nvg {\nseqno = 5\n}\n"), Some(5));
        assert_eq!(seqno("vg {\nseqno = \"5\"\n}\n"), None);
        assert_eq!(seqno("vg {\nseqno = -1\n}\n"), None);
    }
}
