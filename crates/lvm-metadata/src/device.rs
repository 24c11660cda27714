//! The I/O edge: reading a PV's label, metadata area headers and metadata text from a block
//! device (or a PV image file), in the order lvm2's `lib/format_text/format-text.c` reads them.
//!
//! Block devices are opened read-only with `O_DIRECT`, so the page cache can never hand back
//! metadata older than what LVM last wrote; reads go through 4 KiB-aligned buffers. Regular files
//! (PV images in tests) whose file system refuses `O_DIRECT` are read through the page cache
//! instead, and [`PvMetadata::direct_io`] says so. Nothing is written and no LVM lock is taken:
//! a write racing the read is caught by reading the header again after the text and retrying
//! when the text's location moved.
//!
//! The sequence itself ([`read_pv_from`]) runs on any [`ReadAt`], so that it can be tested and
//! fuzzed on bytes in memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::label::{parse_label, DiskLocn, PvLabel, LABEL_SCAN_BYTES};
use crate::mda::{
    assemble_text, parse_mda_header, seqno, MdaHeader, RawLocn, VerifiedText, MDA_HEADER_SIZE,
};
use crate::scan::{vg_identity, worth_scanning, BlockDeviceInfo, ScannedPv};
use crate::MetadataError;

/// How many times the text of one metadata area is read when its header keeps moving.
pub const READ_ATTEMPTS: u32 = 3;

/// The alignment of `O_DIRECT` buffers, offsets and lengths (at least any logical block size).
const ALIGNMENT: usize = 4096;

/// Bytes at known offsets of a PV.
pub trait ReadAt {
    /// Exactly `len` bytes at `offset`, or an error ([`io::ErrorKind::UnexpectedEof`] past the
    /// end). Callers bound `len` before asking.
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
}

/// A PV image in memory.
impl ReadAt for &[u8] {
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        usize::try_from(offset)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(len)?))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

/// A block device or file opened read-only, with `O_DIRECT` where it can be.
pub struct PvDevice {
    file: File,
    direct: bool,
}

impl PvDevice {
    /// Opens `path` read-only: `O_DIRECT` for block devices; for a regular file `O_DIRECT` if
    /// its file system allows it, else buffered. Opened non-blocking (a FIFO cannot hang the
    /// open) and refused unless the opened descriptor is a block device or a regular file.
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_as(path, true)
    }

    /// Opens `path` read-only, through the page cache unless `direct`.
    fn open_as(path: &Path, direct: bool) -> io::Result<Self> {
        let open = |flags| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | flags)
                .open(path)
        };
        let (file, refused_direct) = match open(if direct { libc::O_DIRECT } else { 0 }) {
            Ok(file) => (file, false),
            // File systems without O_DIRECT refuse it with EINVAL: read those files buffered.
            Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => (open(0)?, true),
            Err(e) => return Err(e),
        };
        let kind = file.metadata()?.file_type();
        if kind.is_block_device() && refused_direct {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the block device refuses O_DIRECT",
            ));
        }
        if !kind.is_block_device() && !kind.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither a block device nor a regular file",
            ));
        }
        Ok(PvDevice {
            file,
            direct: direct && !refused_direct,
        })
    }

    /// True when reads bypass the page cache.
    pub fn direct_io(&self) -> bool {
        self.direct
    }
}

impl ReadAt for PvDevice {
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if !self.direct {
            let mut buffer = vec![0; len];
            self.file.read_exact_at(&mut buffer, offset)?;
            return Ok(buffer);
        }
        let too_far = || io::Error::new(io::ErrorKind::InvalidInput, "read past 2^64 bytes");
        let window_start = offset & !(ALIGNMENT as u64 - 1);
        let lead = (offset - window_start) as usize;
        let window_len = lead
            .checked_add(len)
            .and_then(|n| n.checked_next_multiple_of(ALIGNMENT))
            .ok_or_else(too_far)?;
        let mut raw = vec![0u8; window_len.checked_add(ALIGNMENT).ok_or_else(too_far)?];
        let skip = raw.as_ptr().align_offset(ALIGNMENT);
        let window = &mut raw[skip..skip + window_len];
        let mut filled = 0;
        while filled < lead + len {
            let at = window_start
                .checked_add(filled as u64)
                .ok_or_else(too_far)?;
            match self.file.read_at(&mut window[filled..], at) {
                // The device ends before the requested bytes do.
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(window[lead..lead + len].to_vec())
    }
}

/// The committed metadata text of one metadata area, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaText {
    /// The area's header.
    pub header: MdaHeader,
    /// Where the text was (`raw_locn[0]`): a cache of the parsed VG can be keyed on it.
    pub locn: RawLocn,
    /// The text, without its terminating NUL; its checksum matched. Shared: when the bytes
    /// were those of the `previous` text handed to [`read_mda_text_unparsed`], this is that
    /// text's allocation.
    pub text: Arc<str>,
    /// True when the text wrapped around the end of the area's circular buffer.
    pub wrapped: bool,
    /// The VG's `seqno` from the text, when it has one.
    pub seqno: Option<u64>,
    /// Reads it took (1 unless LVM wrote while it was read).
    pub attempts: u32,
    /// `locn` and `text` as verified, kept apart from the public fields (which a caller may
    /// change) for [`MdaText::verified`].
    verified: VerifiedText,
}

impl MdaText {
    /// The text as this read verified it, to hand to the next read of the same area
    /// ([`read_mda_text_unparsed`]'s `previous`).
    pub fn verified(&self) -> VerifiedText {
        self.verified.clone()
    }

    /// Makes this text share `other`'s allocation when `other` holds the bytes this read
    /// verified (the same allocation, or compared in full), so that equal copies of a VG's metadata are held once
    /// and recognised by pointer on the next read. Returns whether it does.
    pub fn share(&mut self, other: &Arc<str>) -> bool {
        let verified = self.verified.text();
        if !Arc::ptr_eq(verified, other) && **verified != **other {
            return false;
        }
        self.text = Arc::clone(other);
        self.verified = VerifiedText::new(*self.verified.locn(), Arc::clone(other));
        true
    }
}

/// One metadata area of a PV and what reading it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaRead {
    /// The area as the label records it.
    pub area: DiskLocn,
    /// Its text, or why it could not be read.
    pub result: Result<MdaText, MetadataError>,
}

/// What a PV holds: its label and each metadata area's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvContents {
    /// The checked label (PV UUID, size, data and metadata areas).
    pub label: PvLabel,
    /// One entry per metadata area in the label, in its order.
    pub mdas: Vec<MdaRead>,
}

impl PvContents {
    /// The area text with the highest `seqno` among those read successfully.
    pub fn newest(&self) -> Option<&MdaText> {
        self.mdas
            .iter()
            .filter_map(|mda| mda.result.as_ref().ok())
            .max_by_key(|text| text.seqno)
    }
}

/// A PV read from a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvMetadata {
    /// The device or file read.
    pub device: PathBuf,
    /// True when the reads bypassed the page cache (`O_DIRECT`); false for an image file on a
    /// file system without it.
    pub direct_io: bool,
    /// Label and metadata areas.
    pub contents: PvContents,
}

/// Why a device could not be read as a PV at all (a single bad metadata area is reported in
/// its [`MdaRead`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", device.display())]
pub struct DeviceError {
    /// The device or file.
    pub device: PathBuf,
    /// What went wrong.
    pub error: MetadataError,
}

fn io_error(what: &str, offset: u64, len: usize, e: &io::Error) -> MetadataError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return MetadataError::Truncated {
            what: "device",
            needed: offset.saturating_add(len as u64),
            available: offset,
        };
    }
    MetadataError::Io(format!("reading the {what} ({len} bytes at {offset}): {e}"))
}

fn read(
    device: &mut impl ReadAt,
    what: &str,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, MetadataError> {
    device
        .read_at(offset, len)
        .map_err(|e| io_error(what, offset, len, &e))
}

/// Reads and checks the label at the start of `device`.
pub fn read_label(device: &mut impl ReadAt) -> Result<PvLabel, MetadataError> {
    parse_label(&read(device, "label sectors", 0, LABEL_SCAN_BYTES)?)
}

/// Reads and checks the header of the metadata area `area`: the cheap steady-state check (if
/// its `raw_locn[0]` is unchanged, so is the text).
pub fn read_mda_header(
    device: &mut impl ReadAt,
    area: &DiskLocn,
) -> Result<MdaHeader, MetadataError> {
    parse_mda_header(
        &read(device, "metadata area header", area.offset, MDA_HEADER_SIZE)?,
        area.offset,
    )
}

/// Reads the committed text of the metadata area `area`: header, text (both parts when it
/// wraps), checksum, then the header again; when `raw_locn[0]` moved in between, or the text
/// did not match its checksum and the header moved, starts over, at most [`READ_ATTEMPTS`]
/// times ([`MetadataError::Moved`]).
pub fn read_mda_text(device: &mut impl ReadAt, area: &DiskLocn) -> Result<MdaText, MetadataError> {
    let mut text = read_mda_text_unparsed(device, area, None)?;
    text.seqno = seqno(&text.text);
    Ok(text)
}

/// Like [`read_mda_text`], without parsing the text: its `seqno` is left `None`, for a caller
/// that parses the text itself (once per distinct text).
///
/// `previous` is what the last read of this area verified ([`MdaText::verified`]), if any.
/// The header is read and checked before and after the text as always; when `raw_locn[0]` is
/// still `previous`'s and the bytes read are its bytes, compared in full, the text handed back
/// is `previous`'s own (no checksum, copy or UTF-8 check: identical bytes have the identical
/// checksum). A changed byte, or another location, is checked in full.
pub fn read_mda_text_unparsed(
    device: &mut impl ReadAt,
    area: &DiskLocn,
    previous: Option<&VerifiedText>,
) -> Result<MdaText, MetadataError> {
    let mut header = read_mda_header(device, area)?;
    for attempt in 1..=READ_ATTEMPTS {
        let locn = header.current()?;
        let span = header.text_span(&locn)?;
        // text_span bounded both lengths by MAX_TEXT_BYTES, so they fit in usize.
        let first = read(device, "metadata text", span.first.0, span.first.1 as usize)?;
        let wrapped = match span.wrapped {
            Some((offset, len)) => read(device, "wrapped metadata text", offset, len as usize)?,
            None => Vec::new(),
        };
        let text = assemble_text(&first, &wrapped, &locn, previous);
        let again = read_mda_header(device, area)?;
        if again.raw_locns.first() == Some(&locn) {
            let text = text?;
            return Ok(MdaText {
                seqno: None,
                header: again,
                locn,
                verified: VerifiedText::new(locn, Arc::clone(&text)),
                text,
                wrapped: span.wrapped.is_some(),
                attempts: attempt,
            });
        }
        header = again;
    }
    Err(MetadataError::Moved {
        attempts: READ_ATTEMPTS,
    })
}

/// Reads the label and every metadata area's text from `device`.
pub fn read_pv_from(device: &mut impl ReadAt) -> Result<PvContents, MetadataError> {
    let label = read_label(device)?;
    if label.metadata_areas.is_empty() {
        return Err(MetadataError::NoMetadataArea);
    }
    let mdas = label
        .metadata_areas
        .iter()
        .map(|area| MdaRead {
            area: *area,
            result: read_mda_text(device, area),
        })
        .collect();
    Ok(PvContents { label, mdas })
}

/// Opens `path` read-only and reads its label and metadata areas. Blocking: run it off the
/// async runtime.
pub fn read_pv(path: &Path) -> Result<PvMetadata, DeviceError> {
    let fail = |error| DeviceError {
        device: path.to_path_buf(),
        error,
    };
    let mut device = PvDevice::open(path)
        .map_err(|e| fail(MetadataError::Io(format!("cannot open read-only: {e}"))))?;
    let contents = read_pv_from(&mut device).map_err(fail)?;
    Ok(PvMetadata {
        device: path.to_path_buf(),
        direct_io: device.direct_io(),
        contents,
    })
}

/// Reads the label of `path` and, when it is a PV, the VG its newest readable metadata text
/// names: `Ok(None)` for a device without an LVM label (not a PV). Blocking.
pub fn scan_device(path: &Path) -> Result<Option<ScannedPv>, DeviceError> {
    let fail = |error| DeviceError {
        device: path.to_path_buf(),
        error,
    };
    let mut device = PvDevice::open(path)
        .map_err(|e| fail(MetadataError::Io(format!("cannot open read-only: {e}"))))?;
    let label = match read_label(&mut device) {
        Ok(label) => label,
        Err(MetadataError::NotAPv) => return Ok(None),
        Err(error) => return Err(fail(error)),
    };
    // The newest text of the areas that read cleanly; a PV whose texts all fail is still
    // found by its label (another PV's metadata may list it, and the read then says why), and
    // keeps why its metadata could not be read (the VG's reason when no other PV names it).
    let mut texts = Vec::new();
    let mut metadata_error = None;
    for area in &label.metadata_areas {
        match read_mda_text(&mut device, area) {
            Ok(text) => texts.push(text),
            // An ignored area, or a PV in no VG: nothing wrong.
            Err(MetadataError::Ignored | MetadataError::NoText) => {}
            Err(error) => {
                metadata_error.get_or_insert(error);
            }
        }
    }
    let vg = match texts.into_iter().max_by_key(|text| text.seqno) {
        Some(newest) => {
            let identity = crate::text::parse_metadata(&newest.text)
                .ok()
                .and_then(|tree| vg_identity(&tree));
            if identity.is_none() {
                metadata_error = Some(MetadataError::Malformed {
                    what: "metadata text",
                    detail: "it does not parse into a VG with a name, id, seqno and PV list".into(),
                });
            }
            identity
        }
        None => None,
    };
    Ok(Some(ScannedPv {
        device: path.to_path_buf(),
        pv_uuid: label.pv_uuid,
        vg,
        metadata_error,
    }))
}

/// The block devices under `/dev` the kernel lists in `/sys/class/block`, less those
/// [`worth_scanning`] leaves out, by name. Empty when `/sys` cannot be read.
pub fn block_devices() -> Vec<PathBuf> {
    let sys = Path::new("/sys/class/block");
    let Ok(entries) = std::fs::read_dir(sys) else {
        return Vec::new();
    };
    let read = |path: PathBuf| std::fs::read_to_string(path).map(|s| s.trim_end().to_string());
    let mut devices: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            let holder_dm_uuids = std::fs::read_dir(dir.join("holders"))
                .map(|holders| {
                    holders
                        .flatten()
                        .filter_map(|h| read(sys.join(h.file_name()).join("dm/uuid")).ok())
                        .collect()
                })
                .unwrap_or_default();
            let info = BlockDeviceInfo {
                name: entry.file_name().to_string_lossy().into_owned(),
                size_sectors: read(dir.join("size")).ok()?.parse().ok()?,
                dm_uuid: read(dir.join("dm/uuid")).ok(),
                holder_dm_uuids,
            };
            worth_scanning(&info).then(|| Path::new("/dev").join(&info.name))
        })
        .collect();
    devices.sort();
    devices
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::{calc_crc, INITIAL_CRC};
    use crate::label::tests::REAL;

    #[test]
    fn a_real_pv_head_reads_in_memory() {
        let mut image = REAL;
        let contents = read_pv_from(&mut image).unwrap();
        assert_eq!(contents.label.pv_uuid, "2ofoesBB8lQdVAT1XGiF2lE1u1pV8Q6d");
        let text = contents.newest().unwrap();
        assert_eq!(
            (text.seqno, text.wrapped, text.attempts),
            (Some(1), false, 1)
        );
    }

    #[test]
    fn a_short_image_is_truncated_not_a_panic() {
        for len in [0, 100, 1024, 4096, 4200, 4700] {
            let mut image = &REAL[..len];
            match read_pv_from(&mut image) {
                Ok(contents) => assert!(contents.mdas.iter().all(|m| m.result.is_err()), "{len}"),
                Err(e) => assert!(
                    matches!(e, MetadataError::Truncated { .. } | MetadataError::NotAPv),
                    "{len}: {e}"
                ),
            }
        }
    }

    #[test]
    fn direct_and_buffered_reads_give_the_same_bytes() {
        let mut image = REAL.to_vec();
        image.extend((0..60_000u32).map(|i| (i % 251) as u8));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pv.img");
        std::fs::write(&path, &image).unwrap();
        let mut direct = PvDevice::open(&path).unwrap();
        let mut buffered = PvDevice::open_as(&path, false).unwrap();
        assert!(!buffered.direct_io());
        let len = image.len() as u64;
        for (offset, size) in [
            (0, 1),
            (1, 4095),
            (4095, 2),
            (4608, 710),
            (8191, 8193),
            (len - 3, 3),
        ] {
            let expected = &image[offset as usize..(offset + size) as usize];
            assert_eq!(direct.read_at(offset, size as usize).unwrap(), expected);
            assert_eq!(buffered.read_at(offset, size as usize).unwrap(), expected);
        }
        for device in [&mut direct, &mut buffered] {
            let past = device.read_at(len - 3, 4).unwrap_err();
            assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
        }
        let read = read_pv(&path).unwrap();
        assert_eq!(read.contents, read_pv_from(&mut buffered).unwrap());
    }

    #[test]
    fn only_block_devices_and_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let error = read_pv(path).unwrap_err();
            assert!(matches!(error.error, MetadataError::Io(_)), "{error}");
            assert!(error.to_string().starts_with(&path.display().to_string()));
        }
    }

    /// A device whose header changes after each read of it, as when LVM commits concurrently.
    struct Racing {
        image: Vec<u8>,
        header_reads: u32,
        moves: u32,
    }

    impl ReadAt for Racing {
        fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
            let bytes = (&self.image[..]).read_at(offset, len)?;
            if offset == 4096 && len == MDA_HEADER_SIZE {
                self.header_reads += 1;
                if self.header_reads <= self.moves {
                    // Move the text by one byte: write a copy at offset + 1 and reseal.
                    let header = &mut self.image[4096..4608];
                    let text_offset = u64::from_le_bytes(header[40..48].try_into().unwrap());
                    let size = u64::from_le_bytes(header[48..56].try_into().unwrap()) as usize;
                    header[40..48].copy_from_slice(&(text_offset + 1).to_le_bytes());
                    let crc = calc_crc(INITIAL_CRC, &header[4..]);
                    header[..4].copy_from_slice(&crc.to_le_bytes());
                    let from = 4096 + text_offset as usize;
                    self.image.copy_within(from..from + size, from + 1);
                }
            }
            Ok(bytes)
        }
    }

    #[test]
    fn a_moving_header_is_retried_then_given_up() {
        let mut settles = Racing {
            image: REAL.to_vec(),
            header_reads: 0,
            moves: 2,
        };
        let text = read_mda_text(
            &mut settles,
            &DiskLocn {
                offset: 4096,
                size: 0x1f_f000,
            },
        )
        .unwrap();
        assert_eq!((text.attempts, text.locn.offset), (3, 514));
        let mut never = Racing {
            image: REAL.to_vec(),
            header_reads: 0,
            moves: u32::MAX,
        };
        assert_eq!(
            read_mda_text(
                &mut never,
                &DiskLocn {
                    offset: 4096,
                    size: 0x1f_f000
                }
            ),
            Err(MetadataError::Moved {
                attempts: READ_ATTEMPTS
            })
        );
    }

    const AREA: DiskLocn = DiskLocn {
        offset: 4096,
        size: 4096,
    };

    /// A metadata area at [`AREA`] whose circular buffer holds `text` (plus its NUL) at
    /// `offset` from the area's start, wrapping past the area's end when it does not fit.
    struct Area {
        image: Vec<u8>,
        offset: u64,
        size: usize,
    }

    impl Area {
        fn new(text: &str, offset: u64) -> Self {
            let mut area = Area {
                image: vec![0; (AREA.offset + AREA.size) as usize],
                offset,
                size: text.len() + 1,
            };
            area.image[4096..4608].copy_from_slice(&REAL[4096..4608]);
            area.image[4096 + 32..4096 + 40].copy_from_slice(&AREA.size.to_le_bytes());
            let mut with_nul = text.as_bytes().to_vec();
            with_nul.push(0);
            for (at, byte) in with_nul.iter().enumerate() {
                let device_offset = area.device_offset(at);
                area.image[device_offset] = *byte;
            }
            area.seal(calc_crc(INITIAL_CRC, &with_nul));
            area
        }

        /// Where byte `at` of the text (its NUL included) lies on the device.
        fn device_offset(&self, at: usize) -> usize {
            let buffer = AREA.size as usize - MDA_HEADER_SIZE;
            let relative = (self.offset as usize - MDA_HEADER_SIZE + at) % buffer;
            AREA.offset as usize + MDA_HEADER_SIZE + relative
        }

        /// Writes `raw_locn[0]` with `checksum` and reseals the header.
        fn seal(&mut self, checksum: u32) {
            let header = &mut self.image[4096..4608];
            header[40..48].copy_from_slice(&self.offset.to_le_bytes());
            header[48..56].copy_from_slice(&(self.size as u64).to_le_bytes());
            header[56..60].copy_from_slice(&checksum.to_le_bytes());
            header[60..64].fill(0);
            let crc = calc_crc(INITIAL_CRC, &header[4..]);
            header[..4].copy_from_slice(&crc.to_le_bytes());
        }

        /// The text bytes (NUL included) as the device holds them.
        fn bytes(&self) -> Vec<u8> {
            (0..self.size)
                .map(|at| self.image[self.device_offset(at)])
                .collect()
        }

        /// Reads the area, handing `previous` to the read, and counts the bytes checksummed.
        fn read(&self, previous: Option<&VerifiedText>) -> (Result<MdaText, MetadataError>, u64) {
            let before = crate::crc::BYTES_CHECKSUMMED.with(std::cell::Cell::get);
            let read = read_mda_text_unparsed(&mut &self.image[..], &AREA, previous);
            let after = crate::crc::BYTES_CHECKSUMMED.with(std::cell::Cell::get);
            (read, after - before)
        }
    }

    /// What checking one header costs: the 508 bytes its checksum covers.
    const HEADER_CRC_BYTES: u64 = (MDA_HEADER_SIZE - 4) as u64;

    fn sample_text() -> String {
        (0..40).fold(String::from("vg {\nseqno = 7\n"), |text, i| {
            text + &format!("lv{i} {{\nid = \"x\"\n}}\n")
        }) + "}\n"
    }

    /// Unwrapped, and wrapped at several points (the area's buffer is 3,584 bytes).
    fn placements(text: &str) -> Vec<u64> {
        let size = text.len() as u64 + 1;
        vec![512, 4096 - size, 4096 - 1, 4096 - size / 2, 4096 - 7]
    }

    #[test]
    fn unchanged_bytes_hand_back_the_verified_text_without_a_checksum() {
        let text = sample_text();
        for offset in placements(&text) {
            let area = Area::new(&text, offset);
            let (first, checksummed) = area.read(None);
            let first = first.unwrap();
            assert_eq!(&*first.text, text.trim_end_matches('\0'), "{offset}");
            assert_eq!(first.wrapped, offset + area.size as u64 > 4096, "{offset}");
            // Headers before and after, and the text.
            assert_eq!(checksummed, 2 * HEADER_CRC_BYTES + area.size as u64);
            let (again, checksummed) = area.read(Some(&first.verified()));
            let again = again.unwrap();
            assert!(Arc::ptr_eq(&again.text, &first.text), "{offset}");
            // Both headers still checked; the text's checksum not computed again.
            assert_eq!(checksummed, 2 * HEADER_CRC_BYTES, "{offset}");
            assert_eq!(again.verified(), first.verified());
            assert_eq!((again.locn, again.attempts), (first.locn, 1));
        }
    }

    #[test]
    fn a_changed_byte_anywhere_is_checked_in_full() {
        let text = sample_text();
        for offset in placements(&text) {
            let area = Area::new(&text, offset);
            let verified = area.read(None).0.unwrap().verified();
            let size = area.size;
            // First, middle, last byte of the text, its NUL, and (when wrapped) the first byte
            // after the wrap.
            let wrap_at = (4096 - offset) as usize;
            let mut positions = vec![0, size / 2, size - 2, size - 1];
            if wrap_at < size {
                positions.extend([wrap_at, wrap_at - 1]);
            }
            for at in positions {
                let mut changed = Area::new(&text, offset);
                let device_offset = changed.device_offset(at);
                changed.image[device_offset] = b'#';
                // Under the old checksum: refused.
                let (read, checksummed) = changed.read(Some(&verified));
                assert!(
                    matches!(
                        read,
                        Err(MetadataError::BadChecksum {
                            what: "metadata text",
                            ..
                        })
                    ),
                    "{offset} {at}: {read:?}"
                );
                assert_eq!(checksummed, 2 * HEADER_CRC_BYTES + size as u64);
                // Resealed with the new bytes' checksum: read in full, a new text.
                changed.seal(calc_crc(INITIAL_CRC, &changed.bytes()));
                let (read, checksummed) = changed.read(Some(&verified));
                let read = read.unwrap();
                assert!(!Arc::ptr_eq(&read.text, verified.text()), "{offset} {at}");
                let mut expected = text.clone().into_bytes();
                expected.push(0);
                expected[at] = b'#';
                if expected.last() == Some(&0) {
                    expected.pop();
                }
                assert_eq!(read.text.as_bytes(), expected, "{offset} {at}");
                assert_eq!(checksummed, 2 * HEADER_CRC_BYTES + size as u64);
            }
        }
    }

    #[test]
    fn the_same_bytes_under_another_raw_locn_are_checked_in_full() {
        let text = sample_text();
        let area = Area::new(&text, 512);
        let verified = area.read(None).0.unwrap().verified();
        // The header's checksum of the text corrupted, the bytes untouched: refused.
        let mut corrupted = Area::new(&text, 512);
        corrupted.seal(verified.locn().checksum ^ 1);
        let (read, checksummed) = corrupted.read(Some(&verified));
        assert!(
            matches!(read, Err(MetadataError::BadChecksum { .. })),
            "{read:?}"
        );
        assert_eq!(checksummed, 2 * HEADER_CRC_BYTES + area.size as u64);
        // The same text at another offset: read in full, equal but not the verified one.
        let moved = Area::new(&text, 1024);
        let (read, checksummed) = moved.read(Some(&verified));
        let read = read.unwrap();
        assert_eq!(read.text, *verified.text());
        assert!(!Arc::ptr_eq(&read.text, verified.text()));
        assert_eq!(checksummed, 2 * HEADER_CRC_BYTES + area.size as u64);
    }

    #[test]
    fn a_moving_header_is_retried_with_a_verified_text() {
        let area = DiskLocn {
            offset: 4096,
            size: 0x1f_f000,
        };
        let mut image = REAL;
        let verified = read_mda_text_unparsed(&mut image, &area, None)
            .unwrap()
            .verified();
        let mut settles = Racing {
            image: REAL.to_vec(),
            header_reads: 0,
            moves: 2,
        };
        let text = read_mda_text_unparsed(&mut settles, &area, Some(&verified)).unwrap();
        assert_eq!((text.attempts, text.locn.offset), (3, 514));
        assert_eq!(text.text, *verified.text());
        assert!(!Arc::ptr_eq(&text.text, verified.text()));
        let mut never = Racing {
            image: REAL.to_vec(),
            header_reads: 0,
            moves: u32::MAX,
        };
        assert_eq!(
            read_mda_text_unparsed(&mut never, &area, Some(&verified)),
            Err(MetadataError::Moved {
                attempts: READ_ATTEMPTS
            })
        );
    }

    #[test]
    fn the_verified_text_is_not_what_a_caller_writes_into_the_fields() {
        let area = Area::new(&sample_text(), 512);
        let mut read = area.read(None).0.unwrap();
        let verified = read.verified();
        let forged: Arc<str> = Arc::from("forged {\n}\n");
        read.text = Arc::clone(&forged);
        read.locn.checksum ^= 1;
        assert_eq!(read.verified(), verified);
        // What is shared is compared with the verified bytes, not the fields.
        assert!(!read.share(&forged));
        assert_eq!(read.verified(), verified);
        // Sharing an equal text's allocation keeps the text; an unequal one is refused.
        let equal: Arc<str> = Arc::from(&*sample_text());
        let mut shared = area.read(None).0.unwrap();
        assert!(shared.share(&equal));
        assert!(Arc::ptr_eq(&shared.text, &equal) && Arc::ptr_eq(shared.verified().text(), &equal));
        assert!(!shared.share(&Arc::from("other")));
        assert!(Arc::ptr_eq(&shared.text, &equal));
    }
}
