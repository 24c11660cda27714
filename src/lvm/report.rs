//! Parsing of LVM's JSON reports (`--reportformat json --units b --nosuffix`).
//!
//! LVM prints one JSON document per command: `{"report":[{"vg":[...]}]}` for `vgs`,
//! `{"report":[{"lv":[...]}]}` for `lvs`, and one element per VG holding `vg`, `pv`, `lv`,
//! `pvseg` and `seg` arrays for `lvm fullreport`. A saved report is usually several of these
//! documents concatenated (`vgs ...; lvs ...`), so the text is read as a stream of documents.
//! Every value is a string. Sections and fields we do not use (`pv`, `pvseg`, `log`, ...) are
//! ignored.
//!
//! Things this module deals with that a naive reader gets wrong:
//! - `lvs -o ...,segtype` prints one row *per segment*: an LV that was extended after another LV
//!   was created appears twice, with its full `lv_size` on each row (verified on LVM 2.03.16).
//!   Rows are de-duplicated on (VG name, LV name), which LVM keeps unique within a VG.
//! - `lvm fullreport` leaves `vg_name` out of its `lv` rows and `segtype` out of its `lv` section:
//!   they are taken from the element's single `vg` row and from its `seg` rows (by `lv_uuid`).
//! - `lv_time` follows lvm.conf's `report/time_format`: the exporter forces `%s`, and a saved
//!   report in LVM's default `YYYY-MM-DD HH:MM:SS +ZZZZ` is read too (verified on LVM 2.03.16).
//! - VG and LV names are checked with the rules LVM applies to the names it imports
//!   ([`lvm_metadata::validate::check_name`], lvm2's `validate_name` and `NAME_LEN`), so that
//!   `lvm fullreport` and a replayed report refuse the names the metadata reader refuses: a
//!   1 MB or control-byte name never reaches an output. Error messages cut and sanitise names.
//! - Some LVM versions print invalid JSON (bad escapes, raw control characters, a trailing comma
//!   in the `log` section): the error names the field nearest to the fault, never panics.

use std::borrow::Cow;
use std::collections::HashMap;

use rustc_hash::FxHashMap;

use serde::Deserialize;
use serde_json::error::Category;

use lvm_metadata::validate::{check_lv_name, check_name, printable};

use super::{owner, Lv, LvmError, Vg, VgReport};
use crate::time::parse_rfc3339;

/// One PV of a watched VG: the metadata reader's type, which a fullreport's `pv` rows fill.
pub use lvm_metadata::PvRow;

/// The message for text that holds no `vg` section at all.
const NO_VG_SECTION: &str = "no vg section: not a vgs/lvs/fullreport JSON report";

/// Parses one or more concatenated LVM JSON report documents (`vgs`, `lvs -a`, `lvm fullreport`)
/// into a [`VgReport`]. `origin` names the command or file for error messages.
///
/// The text must contain at least one `vg` section (possibly empty); LVs are optional.
pub fn parse(text: &str, origin: &str) -> Result<VgReport, LvmError> {
    let sections = parse_sections(text, origin)?;
    if !sections.has_vg_section {
        let message = if text.trim().is_empty() {
            format!("empty input: {NO_VG_SECTION}")
        } else {
            NO_VG_SECTION.to_string()
        };
        return Err(parse_error(origin, message));
    }
    Ok(sections.report)
}

/// What [`parse_sections`] found: the VGs and LVs, and which sections were present at all (an
/// empty section still counts: `vgs` of a missing VG prints `"vg": []`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sections {
    /// The VG and LV rows, de-duplicated.
    pub report: VgReport,
    /// True when some document had a `vg` array.
    pub has_vg_section: bool,
    /// True when some document had an `lv` array.
    pub has_lv_section: bool,
    /// True when some document had a `report` array (possibly empty).
    pub has_report_array: bool,
    /// How many report elements (one per VG in a fullreport) the documents held.
    pub elements: usize,
}

/// Lines LVM prints on stdout between (or before) its JSON documents, through `log_print`,
/// which `--reportformat json` does not capture: lvm2 2.03's `lib/metadata/metadata.c` prints
/// "Retrying metadata scan." when a VG's metadata changed while it was being read (a concurrent
/// `lvcreate`). Seen in the field breaking other parsers of LVM's stdout too (Ansible's LVM
/// facts). Only these exact lines are set aside; any other text outside JSON stays an error.
pub const LVM_STDOUT_NOTICES: &[&str] = &["Retrying metadata scan."];

/// `text` with every line that is one of [`LVM_STDOUT_NOTICES`] (surrounding white space
/// aside) blanked, so that line and column numbers in errors still point into LVM's output. A
/// JSON string cannot hold a raw newline, so such a line is never part of a document.
pub fn without_lvm_notices(text: &str) -> Cow<'_, str> {
    let is_notice = |line: &str| LVM_STDOUT_NOTICES.contains(&line.trim());
    if !text.lines().any(is_notice) {
        return Cow::Borrowed(text);
    }
    let mut kept = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if is_notice(line) {
            tracing::debug!(
                notice = line.trim(),
                "LVM printed a notice beside its report"
            );
            if line.ends_with('\n') {
                kept.push('\n');
            }
        } else {
            kept.push_str(line);
        }
    }
    Cow::Owned(kept)
}

/// Parses concatenated LVM JSON report documents without requiring any particular section,
/// for callers that read the output of `lvs` alone. [`parse`] is the strict entry point.
/// LVM's stdout notices ([`LVM_STDOUT_NOTICES`]) between documents are set aside.
pub fn parse_sections(text: &str, origin: &str) -> Result<Sections, LvmError> {
    let text = &*without_lvm_notices(text);
    let mut builder = Builder::default();
    let mut has_vg_section = false;
    let mut has_lv_section = false;
    let mut has_report_array = false;
    let mut elements = 0;
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Document<'_>>();
    for (doc_index, document) in stream.enumerate() {
        let document = document.map_err(|err| json_error(text, &err, origin))?;
        has_report_array |= document.report.is_some();
        for element in document.report.unwrap_or_default() {
            elements += 1;
            has_vg_section |= element.vg.is_some();
            has_lv_section |= element.lv.is_some();
            let doc = doc_index + 1;
            let vg_rows = element.vg.unwrap_or_default();
            for (row, vg_row) in vg_rows.iter().enumerate() {
                let vg = vg_row
                    .to_vg(doc, row + 1)
                    .map_err(|msg| parse_error(origin, msg))?;
                builder.add_vg(vg).map_err(|msg| parse_error(origin, msg))?;
            }
            // fullreport: lv rows have no vg_name; the element describes exactly one VG.
            let element_vg = match vg_rows.as_slice() {
                [only] => only.vg_name.as_deref(),
                _ => None,
            };
            // fullreport: an LV's segment type is in its first `seg` row.
            let mut segtypes: FxHashMap<&str, &str> = FxHashMap::default();
            for seg in &element.seg {
                if let (Some(uuid), Some(segtype)) =
                    (seg.lv_uuid.as_deref(), seg.segtype.as_deref())
                {
                    segtypes.entry(uuid).or_insert(segtype);
                }
            }
            for (row, lv_row) in element.lv.unwrap_or_default().iter().enumerate() {
                let segtype = lv_row
                    .lv_uuid
                    .as_deref()
                    .and_then(|uuid| segtypes.get(uuid).copied());
                let lv = lv_row
                    .to_lv(element_vg, segtype, doc, row + 1)
                    .map_err(|msg| parse_error(origin, msg))?;
                builder.lvs.push(lv);
            }
        }
    }
    let lvs = dedupe_lvs(builder.lvs).map_err(|msg| parse_error(origin, msg))?;
    check_figures(&builder.vgs, &lvs).map_err(|msg| parse_error(origin, msg))?;
    Ok(Sections {
        report: VgReport {
            vgs: builder.vgs,
            lvs,
        },
        has_vg_section,
        has_lv_section,
        has_report_array,
        elements,
    })
}

fn parse_error(origin: &str, message: String) -> LvmError {
    LvmError::Parse {
        origin: origin.to_string(),
        message,
    }
}

/// One JSON document as LVM prints it. Strings borrow from the text unless they hold escapes.
#[derive(Debug, Deserialize)]
struct Document<'a> {
    #[serde(default, borrow)]
    report: Option<Vec<Element<'a>>>,
}

/// The `pv` rows of a fullreport (run with `pv_name,pv_uuid` in its `pv` sub-report), each
/// with its element's VG. A row without a name or UUID (a missing PV) is kept with an empty
/// field: the caller treats it as a device it cannot read.
pub fn parse_pv_rows(text: &str, origin: &str) -> Result<Vec<PvRow>, LvmError> {
    let text = &*without_lvm_notices(text);
    #[derive(Deserialize)]
    struct PvDocument<'a> {
        #[serde(default, borrow)]
        report: Vec<PvElement<'a>>,
    }
    #[derive(Deserialize)]
    struct PvElement<'a> {
        #[serde(default, borrow)]
        vg: Vec<VgRow<'a>>,
        #[serde(default, borrow)]
        pv: Vec<PvFields<'a>>,
    }
    #[derive(Deserialize)]
    struct PvFields<'a> {
        #[serde(borrow)]
        pv_name: Field<'a>,
        #[serde(borrow)]
        pv_uuid: Field<'a>,
    }
    let mut rows = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<PvDocument<'_>>();
    for document in stream {
        let document = document.map_err(|err| json_error(text, &err, origin))?;
        for element in document.report {
            let vg = match element.vg.as_slice() {
                [only] => only.vg_name.as_deref().unwrap_or_default().to_string(),
                _ => continue,
            };
            for pv in element.pv {
                rows.push(PvRow {
                    vg: vg.clone(),
                    device: pv.pv_name.as_deref().unwrap_or_default().to_string(),
                    uuid: pv.pv_uuid.as_deref().unwrap_or_default().replace('-', ""),
                });
            }
        }
    }
    Ok(rows)
}

/// One element of `report`: a single section for `vgs`/`lvs`, all sections of one VG for
/// `fullreport`.
#[derive(Debug, Deserialize)]
struct Element<'a> {
    #[serde(borrow)]
    vg: Option<Vec<VgRow<'a>>>,
    #[serde(borrow)]
    lv: Option<Vec<LvRow<'a>>>,
    #[serde(default, borrow)]
    seg: Vec<SegRow<'a>>,
}

/// A field of a row: borrowed from the report text when it has no escapes.
type Field<'a> = Option<Cow<'a, str>>;

#[derive(Debug, Deserialize)]
struct VgRow<'a> {
    #[serde(borrow)]
    vg_name: Field<'a>,
    #[serde(borrow)]
    vg_size: Field<'a>,
    #[serde(borrow)]
    vg_free: Field<'a>,
    #[serde(borrow)]
    vg_extent_size: Field<'a>,
}

#[derive(Debug, Deserialize)]
struct LvRow<'a> {
    #[serde(borrow)]
    vg_name: Field<'a>,
    #[serde(borrow)]
    lv_name: Field<'a>,
    #[serde(borrow)]
    lv_uuid: Field<'a>,
    #[serde(borrow)]
    lv_size: Field<'a>,
    #[serde(borrow)]
    lv_attr: Field<'a>,
    #[serde(borrow)]
    segtype: Field<'a>,
    #[serde(borrow)]
    pool_lv: Field<'a>,
    #[serde(borrow)]
    lv_parent: Field<'a>,
    #[serde(borrow)]
    data_percent: Field<'a>,
    #[serde(borrow)]
    metadata_percent: Field<'a>,
    #[serde(borrow)]
    lv_time: Field<'a>,
    #[serde(borrow)]
    lv_tags: Field<'a>,
}

#[derive(Debug, Deserialize)]
struct SegRow<'a> {
    #[serde(borrow)]
    lv_uuid: Field<'a>,
    #[serde(borrow)]
    segtype: Field<'a>,
}

impl VgRow<'_> {
    fn to_vg(&self, doc: usize, row: usize) -> Result<Vg, String> {
        let what = || match &self.vg_name {
            Some(name) => format!("vg {:?}", printable(name)),
            None => format!("vg row {row} of document {doc}"),
        };
        let name = required(&what, "vg_name", self.vg_name.as_deref())?;
        check_name(name).map_err(|e| format!("{}: vg_name {e}", what()))?;
        let size = required(&what, "vg_size", self.vg_size.as_deref())?;
        let free = required(&what, "vg_free", self.vg_free.as_deref())?;
        let extent_size = match self.vg_extent_size.as_deref() {
            None | Some("") => 0,
            Some(raw) => size_field(&what, "vg_extent_size", raw)?,
        };
        Ok(Vg {
            name: name.to_string(),
            size_bytes: size_field(&what, "vg_size", size)?,
            free_bytes: size_field(&what, "vg_free", free)?,
            extent_size_bytes: extent_size,
        })
    }
}

impl LvRow<'_> {
    fn to_lv(
        &self,
        element_vg: Option<&str>,
        seg_segtype: Option<&str>,
        doc: usize,
        row: usize,
    ) -> Result<Lv, String> {
        let vg = self.vg_name.as_deref().or(element_vg);
        let what = || match (&self.lv_name, vg) {
            (Some(name), Some(vg)) => {
                format!("lv {:?} in vg {:?}", printable(name), printable(vg))
            }
            (Some(name), None) => format!("lv {:?}", printable(name)),
            (None, Some(vg)) => {
                format!("lv row {row} of document {doc} in vg {:?}", printable(vg))
            }
            (None, None) => format!("lv row {row} of document {doc}"),
        };
        let vg = required(&what, "vg_name", vg)?;
        let raw_name = required(&what, "lv_name", self.lv_name.as_deref())?;
        let size = required(&what, "lv_size", self.lv_size.as_deref())?;
        let (name, hidden) = strip_brackets(raw_name);
        check_name(vg).map_err(|e| format!("{}: vg_name {e}", what()))?;
        check_lv_name(vg, name).map_err(|e| format!("{}: lv_name {e}", what()))?;
        let data_used_ratio = match self.data_percent.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(percent_field(&what, "data_percent", raw)?),
        };
        let metadata_used_ratio = match self.metadata_percent.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(percent_field(&what, "metadata_percent", raw)?),
        };
        let creation_unix = match self.lv_time.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(time_field(&what, raw)?),
        };
        Ok(Lv {
            vg: vg.to_string(),
            name: name.to_string(),
            hidden,
            size_bytes: size_field(&what, "lv_size", size)?,
            attr: self.lv_attr.as_deref().unwrap_or_default().to_string(),
            segtype: self
                .segtype
                .as_deref()
                .or(seg_segtype)
                .unwrap_or_default()
                .to_string(),
            pool_lv: strip_brackets(self.pool_lv.as_deref().unwrap_or_default())
                .0
                .to_string(),
            parent: strip_brackets(self.lv_parent.as_deref().unwrap_or_default())
                .0
                .to_string(),
            data_used_ratio,
            metadata_used_ratio,
            creation_unix,
            tags: self
                .lv_tags
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter(|tag| !tag.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Describes the row at fault, for error messages only (built when an error happens).
type What<'a> = &'a dyn Fn() -> String;

fn required<'a>(what: What<'_>, field: &str, value: Option<&'a str>) -> Result<&'a str, String> {
    value.ok_or_else(|| format!("{}: missing field {field}", what()))
}

/// The largest size a report may state: 2^63 - 1, the most a signed 64-bit figure (and LVM's
/// own limit of 8 EiB per LV) holds.
pub const MAX_SIZE_BYTES: u64 = i64::MAX as u64;

/// A size in bytes: decimal digits, optionally followed by `B` (`--units b` without
/// `--nosuffix`).
fn size_field(what: What<'_>, field: &str, raw: &str) -> Result<u64, String> {
    let digits = raw.strip_suffix('B').unwrap_or(raw);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(bytes) = digits.parse::<u64>() {
            if bytes <= MAX_SIZE_BYTES {
                return Ok(bytes);
            }
        }
    }
    Err(format!(
        "{}: {field}: expected a size in bytes below 2^63, got {raw:?}",
        what()
    ))
}

/// A percentage such as `25.00`, returned as a ratio (0.25).
fn percent_field(what: What<'_>, field: &str, raw: &str) -> Result<f64, String> {
    let well_formed = raw.bytes().any(|b| b.is_ascii_digit())
        && raw.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && raw.bytes().filter(|&b| b == b'.').count() <= 1;
    match raw.parse::<f64>() {
        Ok(percent) if well_formed && percent.is_finite() => Ok(percent / 100.0),
        _ => Err(format!(
            "{}: {field}: expected a percentage like \"25.00\", got {raw:?}",
            what()
        )),
    }
}

/// `lv_time` as seconds since the epoch. [`super::exec`] has LVM print it with `%s` (digits);
/// a saved report may hold LVM's default format, `YYYY-MM-DD HH:MM:SS +ZZZZ`, which is read too.
/// Anything else (another `report/time_format`) is refused rather than guessed at.
fn time_field(what: What<'_>, raw: &str) -> Result<i64, String> {
    let seconds = if raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<i64>().ok()
    } else {
        // `2026-01-01 01:02:03 +0100`: RFC 3339 once the space before the offset goes.
        match (raw.len(), raw.as_bytes().get(19)) {
            (25, Some(b' ')) if raw.is_char_boundary(19) => {
                parse_rfc3339(&format!("{}{}", &raw[..19], &raw[20..])).map(|unix| unix as i64)
            }
            _ => None,
        }
    };
    seconds.ok_or_else(|| {
        format!(
            "{}: lv_time: expected seconds since the epoch or \"YYYY-MM-DD HH:MM:SS +ZZZZ\", got {raw:?}",
            what()
        )
    })
}

/// `[pool_tdata]` -> (`pool_tdata`, true); anything else unchanged.
fn strip_brackets(raw: &str) -> (&str, bool) {
    match raw.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(inner) => (inner, true),
        None => (raw, false),
    }
}

/// Collects VG rows, dropping repeats of the same VG (the same object in two concatenated
/// documents) and refusing repeats that disagree; LV rows are de-duplicated at the end.
#[derive(Default)]
struct Builder {
    vgs: Vec<Vg>,
    vg_index: HashMap<String, usize>,
    lvs: Vec<Lv>,
}

impl Builder {
    fn add_vg(&mut self, vg: Vg) -> Result<(), String> {
        let Some(&index) = self.vg_index.get(&vg.name) else {
            self.vg_index.insert(vg.name.clone(), self.vgs.len());
            self.vgs.push(vg);
            return Ok(());
        };
        let seen = &mut self.vgs[index];
        if (seen.size_bytes, seen.free_bytes) != (vg.size_bytes, vg.free_bytes) {
            return Err(format!(
                "vg {:?} appears twice with different figures (vg_size {} / vg_free {} and vg_size {} / vg_free {}): reports taken at different times?",
                vg.name, seen.size_bytes, seen.free_bytes, vg.size_bytes, vg.free_bytes
            ));
        }
        if seen.extent_size_bytes == 0 {
            seen.extent_size_bytes = vg.extent_size_bytes;
        }
        Ok(())
    }
}

/// Refuses a report whose figures contradict each other: a VG with more free space than size,
/// or whose LVs hold more extents than the VG has (summed with overflow checks). Sizes at or
/// beyond 2^63 are refused field by field ([`size_field`]).
fn check_figures(vgs: &[Vg], lvs: &[Lv]) -> Result<(), String> {
    let mut extents: HashMap<&str, u64> = vgs.iter().map(|vg| (vg.name.as_str(), 0)).collect();
    for lv in lvs {
        if let Some(sum) = extents.get_mut(lv.vg.as_str()) {
            *sum = sum.saturating_add(owner::own_extent_bytes(lv));
        }
    }
    for vg in vgs {
        if vg.free_bytes > vg.size_bytes {
            return Err(format!(
                "vg {:?}: vg_free {} is larger than vg_size {}: an inconsistent report",
                vg.name, vg.free_bytes, vg.size_bytes
            ));
        }
        let held = extents.get(vg.name.as_str()).copied().unwrap_or(0);
        if held > vg.size_bytes {
            let held = if held == u64::MAX {
                "more than 2^64".to_string()
            } else {
                held.to_string()
            };
            return Err(format!(
                "vg {:?}: its LVs hold {held} bytes of extents, more than vg_size {}: an inconsistent report",
                vg.name, vg.size_bytes
            ));
        }
    }
    Ok(())
}

/// Drops repeated rows of the same LV (per-segment rows, or the same LV in two concatenated
/// documents), keeping the first in report order, and refuses repeats whose sizes disagree.
/// Sorting indices instead of hashing names keeps this free of per-row allocations.
fn dedupe_lvs(lvs: Vec<Lv>) -> Result<Vec<Lv>, String> {
    let key = |i: usize| (lvs[i].vg.as_str(), lvs[i].name.as_str(), i);
    let mut order: Vec<usize> = (0..lvs.len()).collect();
    order.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));
    let mut repeated = vec![false; lvs.len()];
    for pair in order.windows(2) {
        let (first, later) = (&lvs[pair[0]], &lvs[pair[1]]);
        if first.vg == later.vg && first.name == later.name {
            if first.size_bytes != later.size_bytes {
                return Err(format!(
                    "lv {:?} in vg {:?} appears twice with different lv_size ({} and {}): reports taken at different times?",
                    later.name, later.vg, first.size_bytes, later.size_bytes
                ));
            }
            repeated[pair[1]] = true;
        }
    }
    if !repeated.contains(&true) {
        return Ok(lvs);
    }
    Ok(lvs
        .into_iter()
        .zip(repeated)
        .filter(|(_, repeated)| !repeated)
        .map(|(lv, _)| lv)
        .collect())
}

/// Turns a serde_json error into a message naming the field nearest before the fault (and the
/// LV or VG of that row when it can be seen), with LVM's line and column.
fn json_error(text: &str, err: &serde_json::Error, origin: &str) -> LvmError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let detail = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full);
    let what = match err.classify() {
        Category::Eof => "truncated JSON",
        Category::Syntax => "invalid JSON",
        Category::Data => "unexpected JSON value",
        Category::Io => "unreadable JSON",
    };
    let bytes = text.as_bytes();
    let located = byte_offset(bytes, line, column).and_then(|offset| {
        let key = preceding_key(bytes, offset)?;
        Some((key, row_label(bytes, offset)))
    });
    let preposition = if err.classify() == Category::Eof {
        "after"
    } else {
        "in"
    };
    let message = match located {
        Some((key, Some(row))) => format!(
            "{what} {preposition} field {key:?} of {row} (line {line}, column {column}): {detail}"
        ),
        Some((key, None)) => {
            format!("{what} {preposition} field {key:?} (line {line}, column {column}): {detail}")
        }
        None => format!("{what} (line {line}, column {column}): {detail}"),
    };
    parse_error(origin, message)
}

/// The byte offset of serde_json's 1-based line and column (column counts bytes), clamped to
/// the text. `None` when the error carries no position.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let line_start = if line == 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    Some(line_start.saturating_add(column).min(bytes.len()))
}

/// The nearest `"key":` that starts before `offset`.
/// Keys are LVM field names (ASCII letters, digits, `_`), which keeps colons inside values
/// (`"lv_time":"... 01:18:37 ..."`, tags like `a:b`) from being taken for keys.
fn preceding_key(bytes: &[u8], offset: usize) -> Option<String> {
    let mut end = offset.min(bytes.len());
    while let Some(colon) = bytes[..end].iter().rposition(|&b| b == b':') {
        end = colon;
        let before = bytes[..colon].trim_ascii_end();
        let Some(close) = before.len().checked_sub(1) else {
            continue;
        };
        if before[close] != b'"' {
            continue;
        }
        let Some(open) = before[..close].iter().rposition(|&b| b == b'"') else {
            continue;
        };
        let key = &before[open + 1..close];
        if !key.is_empty() && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            return Some(String::from_utf8_lossy(key).into_owned());
        }
    }
    None
}

/// `lv "name" in vg "vg"` or `vg "name"` for the JSON object that contains position `at`,
/// from the `lv_name` and `vg_name` values that are complete before `at`. `None` when the
/// object's name is not readable there (e.g. the text was cut inside it).
fn row_label(bytes: &[u8], at: usize) -> Option<String> {
    let start = bytes[..at].iter().rposition(|&b| b == b'{')?;
    let row = &bytes[start..at];
    let value = |field: &str| {
        let needle = format!("\"{field}\":\"");
        let pos = find(row, needle.as_bytes())? + needle.len();
        let len = row[pos..].iter().position(|&b| b == b'"')?;
        Some(String::from_utf8_lossy(&row[pos..pos + len]).into_owned())
    };
    match (value("lv_name"), value("vg_name")) {
        (Some(lv), Some(vg)) => Some(format!("lv {lv:?} in vg {vg:?}")),
        (Some(lv), None) => Some(format!("lv {lv:?}")),
        (None, Some(vg)) if find(row, b"\"lv_").is_none() => Some(format!("vg {vg:?}")),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lvm");

    fn fixture(name: &str) -> String {
        let path = format!("{FIXTURES}/{name}");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse_err(text: &str) -> String {
        match parse(text, "test") {
            Ok(report) => panic!("expected an error, parsed {report:?}"),
            Err(LvmError::Parse { origin, message }) => {
                assert_eq!(origin, "test");
                message
            }
            Err(other) => panic!("expected a Parse error, got {other:?}"),
        }
    }

    fn lv<'a>(report: &'a VgReport, name: &str) -> &'a Lv {
        report
            .lvs
            .iter()
            .find(|lv| lv.name == name)
            .unwrap_or_else(|| panic!("no lv {name} in {report:?}"))
    }

    use crate::units::{GIB, MIB};

    #[test]
    fn lvm_s_retrying_notice_on_stdout_is_set_aside_and_nothing_else_is() {
        let clean = fixture("fullreport.json");
        let expected = parse(&clean, "test").expect("the fixture parses");
        // Before the document, indented as LVM prints it, and after it with and without a
        // final newline.
        for noisy in [
            format!("  Retrying metadata scan.\n{clean}\n  Retrying metadata scan.\n"),
            format!("{clean}\nRetrying metadata scan."),
        ] {
            assert_eq!(
                parse(&noisy, "test").expect("the notices are set aside"),
                expected
            );
        }
        // Any other line outside JSON is still an error, at LVM's own line number.
        let other = format!("  Retrying metadata scan.\n  Reading all physical volumes.\n{clean}");
        let message = parse_err(&other);
        assert!(message.contains("(line 2, column"), "{message}");
        // Text that merely contains the notice is not one.
        let inside = format!("  Retrying metadata scan. Twice.\n{clean}");
        assert!(parse_err(&inside).starts_with("invalid JSON (line 1,"));
        // Without a notice the text is borrowed as it is.
        assert!(matches!(without_lvm_notices(&clean), Cow::Borrowed(_)));
    }

    #[test]
    fn seed_incident_example() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/seed-incident/lvm-report.json"
        ))
        .expect("example report");
        let report = parse(&text, "example").expect("parses");
        assert_eq!(
            report.vgs,
            vec![crate::lvm::build::vg(
                "vms-group",
                536_866_717_696,
                76_231_475_200
            )]
        );
        assert_eq!(report.lvs.len(), 7);
        let scratch = lv(&report, "scratch_data");
        assert_eq!(scratch.size_bytes, 200 * GIB);
        assert_eq!(scratch.vg, "vms-group");
        assert!(!scratch.hidden);
        assert_eq!(scratch.attr, "-wi-XX----");
        assert_eq!(scratch.segtype, "linear");
        assert!(scratch.tags.is_empty());
        assert_eq!(scratch.data_used_ratio, None);
        let used: u64 = report.lvs.iter().map(|lv| lv.size_bytes).sum();
        assert_eq!(used, 429 * GIB);
    }

    /// Captured from the real `vgs`/`lvs` (make-fixtures.sh): per-segment rows, thin pool,
    /// hidden LVs, tags.
    #[test]
    fn captured_vgs_lvs_with_thin_pool_and_segments() {
        let text = fixture("vgs-lvs.json");
        // The raw text really has the per-segment duplicate this test is about.
        assert_eq!(text.matches("\"lv_name\":\"grow_me\"").count(), 2);
        let report = parse(&text, "fixture").expect("parses");
        let vg = report.vg("fixture-vms").expect("vg");
        assert_eq!(vg.size_bytes, 5119 * 4 * MIB);
        assert_eq!(vg.extent_size_bytes, 4 * MIB);
        assert_eq!(report.lvs.len(), 11, "grow_me once, not per segment");

        let grow = lv(&report, "grow_me");
        assert_eq!(grow.size_bytes, 512 * MIB);

        let pool = lv(&report, "fixture-vms-pool");
        assert_eq!(
            (pool.attr.as_str(), pool.segtype.as_str(), pool.hidden),
            ("twi---tz--", "thin-pool", false)
        );
        for (name, size) in [
            ("fixture-vms-pool_tdata", GIB),
            ("fixture-vms-pool_tmeta", 8 * MIB),
        ] {
            let sub = lv(&report, name);
            assert!(sub.hidden, "{name} is hidden");
            assert_eq!(sub.parent, "fixture-vms-pool");
            assert_eq!(sub.size_bytes, size);
        }
        let spare = lv(&report, "lvol0_pmspare");
        assert!(spare.hidden);
        assert_eq!(spare.parent, "");
        let thin = lv(&report, "volume-9d8e7f6a-5b4c-4d3e-8f2a-6b5c4d3e2f1a");
        assert_eq!(
            (
                thin.attr.as_str(),
                thin.segtype.as_str(),
                thin.pool_lv.as_str()
            ),
            ("Vwi-XXtz--", "thin", "fixture-vms-pool")
        );
        assert_eq!(thin.size_bytes, 5 * GIB);
        assert_eq!(
            lv(&report, "scratch_data").tags,
            vec!["backup", "owner=ops"]
        );

        // Every extent is held by exactly one non-thin, non-pool LV: the pool's own size is
        // that of its _tdata, thin volumes are virtual.
        let allocated: u64 = report
            .lvs
            .iter()
            .filter(|lv| lv.segtype != "thin" && lv.segtype != "thin-pool")
            .map(|lv| lv.size_bytes)
            .sum();
        assert_eq!(allocated + vg.free_bytes, vg.size_bytes);
    }

    #[test]
    fn captured_fullreport_matches_vgs_lvs() {
        let full = parse(&fixture("fullreport.json"), "fullreport").expect("parses");
        let plain = parse(&fixture("vgs-lvs.json"), "vgs-lvs").expect("parses");
        assert_eq!(full.vgs, plain.vgs);
        let mut full_lvs = full.lvs.clone();
        let mut plain_lvs = plain.lvs.clone();
        full_lvs.sort_by(|a, b| a.name.cmp(&b.name));
        plain_lvs.sort_by(|a, b| a.name.cmp(&b.name));
        // The captured fullreport has every field, lv_time in LVM's default format included:
        // the LVs made with lvcreate have one, those written into the metadata (the pool, its
        // sub-LVs, the thin volumes) none. vgs-lvs.json has no lv_time.
        let created: Vec<(&str, Option<i64>)> = full_lvs
            .iter()
            .filter(|lv| lv.creation_unix.is_some())
            .map(|lv| (lv.name.as_str(), lv.creation_unix))
            .collect();
        assert_eq!(created.len(), 5, "{created:?}");
        assert!(created.iter().all(|(_, at)| *at == Some(1_795_569_713)));
        for lv in &mut full_lvs {
            lv.creation_unix = None;
        }
        assert_eq!(
            full_lvs, plain_lvs,
            "vg_name and segtype come from the vg and seg sections"
        );
    }

    /// A `vgs`/`lvs` document with one VG and the given (name, lv_size) LVs.
    fn one_vg(size: &str, free: &str, lvs: &[(&str, &str)]) -> String {
        let rows: Vec<String> = lvs
            .iter()
            .map(|(name, size)| {
                format!(r#"{{"vg_name":"vg1","lv_name":"{name}","lv_size":"{size}","segtype":"linear"}}"#)
            })
            .collect();
        format!(
            r#"{{"report":[{{"vg":[{{"vg_name":"vg1","vg_size":"{size}","vg_free":"{free}","vg_extent_size":"4194304"}}],"lv":[{}]}}]}}"#,
            rows.join(",")
        )
    }

    #[test]
    fn sizes_of_2_pow_63_and_beyond_are_refused() {
        let at_limit = MAX_SIZE_BYTES.to_string();
        let report = parse(&one_vg(&at_limit, "0", &[]), "t").expect("2^63 - 1 is a size");
        assert_eq!(report.vgs[0].size_bytes, MAX_SIZE_BYTES);
        for beyond in ["9223372036854775808", "18446744073709551615"] {
            assert_eq!(
                parse_err(&one_vg(beyond, "0", &[])),
                format!(
                    r#"vg "vg1": vg_size: expected a size in bytes below 2^63, got "{beyond}""#
                )
            );
            let message = parse_err(&one_vg("1000", "0", &[("big", beyond)]));
            assert!(
                message.contains("lv_size: expected a size in bytes below 2^63"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_vg_smaller_than_its_free_space_or_its_lvs_is_refused() {
        assert_eq!(
            parse_err(&one_vg("1000", "2000", &[])),
            r#"vg "vg1": vg_free 2000 is larger than vg_size 1000: an inconsistent report"#
        );
        assert_eq!(
            parse_err(&one_vg("1000", "0", &[("a", "600"), ("b", "600")])),
            r#"vg "vg1": its LVs hold 1200 bytes of extents, more than vg_size 1000: an inconsistent report"#
        );
        // Sums that would wrap a u64 are seen as such.
        let max = MAX_SIZE_BYTES.to_string();
        let lvs = [
            ("a", max.as_str()),
            ("b", max.as_str()),
            ("c", max.as_str()),
        ];
        assert_eq!(
            parse_err(&one_vg(&max, "0", &lvs)),
            format!(
                r#"vg "vg1": its LVs hold more than 2^64 bytes of extents, more than vg_size {max}: an inconsistent report"#
            )
        );
        // Exactly full is fine; thin volumes' virtual sizes do not count.
        let text = r#"{"report":[{"vg":[{"vg_name":"vg1","vg_size":"1000","vg_free":"0"}],
            "lv":[{"vg_name":"vg1","lv_name":"p","lv_size":"1000","segtype":"linear"},
                  {"vg_name":"vg1","lv_name":"t","lv_size":"90000","segtype":"thin","lv_attr":"Vwi-a-tz--"}]}]}"#;
        assert_eq!(parse(text, "t").expect("consistent").lvs.len(), 2);
    }

    /// Parses on a thread with the stack of tokio's blocking threads (2 MiB).
    fn parse_on_a_2mib_stack(text: String) -> Result<VgReport, LvmError> {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || parse(&text, "deep"))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deep_json_nesting_is_an_error_not_a_stack_overflow() {
        // Typed rows stop at the first value of the wrong shape.
        let deep =
            |open: &str, close: &str| format!("{}{}", open.repeat(100_000), close.repeat(100_000));
        for text in [
            deep("[", "]"),
            format!(r#"{{"report":{}}}"#, deep("[", "]")),
        ] {
            assert!(parse_on_a_2mib_stack(text).is_err());
        }
        // Fields the parser skips are walked to their end without recursion (serde_json skips
        // iteratively), so the rows around them still parse.
        let skipped = [
            format!(
                r#"{{"report":[{{"vg":[],"unknown":{}}}]}}"#,
                deep(r#"{"a":"#, "}").replace(":}", ":1}")
            ),
            format!(
                r#"{{"report":[{{"vg":[],"pv":[{{"x":{}}}]}}]}}"#,
                deep("[", "]")
            ),
            format!(r#"{{"log":{},"report":[{{"vg":[]}}]}}"#, deep("[", "]")),
        ];
        for text in skipped {
            assert_eq!(parse_on_a_2mib_stack(text).unwrap(), VgReport::default());
        }
        // A `serde_json::Value` (the nova source parses its API answers into one) stops at
        // serde_json's recursion limit of 128.
        let nested = deep("[", "]");
        let value = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || serde_json::from_str::<serde_json::Value>(&nested).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        assert!(value
            .unwrap_err()
            .to_string()
            .starts_with("recursion limit exceeded"));
    }

    #[test]
    fn fullreport_and_lvs_concatenated_do_not_double_count() {
        let text = fixture("fullreport.json") + &fixture("vgs-lvs.json");
        let report = parse(&text, "both").expect("parses");
        assert_eq!(report.vgs.len(), 1);
        assert_eq!(report.lvs.len(), 11);
    }

    #[test]
    fn thin_pool_data_percent() {
        let report = parse(&fixture("thin-active.json"), "fixture").expect("parses");
        let ratio = |name: &str| lv(&report, name).data_used_ratio;
        assert_eq!(ratio("fixture-vms-pool"), Some(0.375));
        assert_eq!(
            ratio("volume-0b7c4f6e-2d1a-4c3b-9e8f-1a2b3c4d5e6f"),
            Some(0.25)
        );
        assert_eq!(
            ratio("volume-9d8e7f6a-5b4c-4d3e-8f2a-6b5c4d3e2f1a"),
            Some(0.0)
        );
        assert_eq!(ratio("grow_me"), None);
        // metadata_percent: the pool's only; the fixture has no lv_time (a saved report without
        // the field), so no LV has a creation time.
        let pool = lv(&report, "fixture-vms-pool");
        assert_eq!(pool.metadata_used_ratio, Some(0.125));
        assert!(report.lvs.iter().all(|lv| lv.creation_unix.is_none()
            && (lv.name == pool.name || lv.metadata_used_ratio.is_none())));
    }

    #[test]
    fn lv_time_as_seconds_or_in_lvms_default_format() {
        let with_time = |time: &str| {
            format!(
                r#"{{"report":[{{"vg":[]}},{{"lv":[{{"vg_name":"v","lv_name":"l","lv_size":"1","lv_time":"{time}"}}]}}]}}"#
            )
        };
        let created =
            |time: &str| parse(&with_time(time), "t").expect("parses").lvs[0].creation_unix;
        // What the exporter asks for (`report/time_format = "%s"`), and LVM's default format in
        // any time zone: the same instant.
        assert_eq!(created("1767229323"), Some(1_767_229_323));
        assert_eq!(created("2026-01-01 01:02:03 +0000"), Some(1_767_229_323));
        assert_eq!(created("2026-01-01 02:02:03 +0100"), Some(1_767_229_323));
        assert_eq!(created("2025-12-31 20:02:03 -0500"), Some(1_767_229_323));
        // LVM prints nothing for an LV without a creation time.
        assert_eq!(created(""), None);
        for bad in [
            "Thu Jan  1 01:02:03 2026",
            "2026-01-01T01:02:03Z",
            "2026-01-01 01:02:03",
            "2026-13-01 01:02:03 +0000",
            "-5",
            "1.5",
            "99999999999999999999",
            "2026-01-01 01:02:03 +00é0",
        ] {
            assert_eq!(
                parse_err(&with_time(bad)),
                format!(
                    r#"lv "l" in vg "v": lv_time: expected seconds since the epoch or "YYYY-MM-DD HH:MM:SS +ZZZZ", got {bad:?}"#
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn metadata_percent_is_a_percentage() {
        let text = r#"{"report":[{"vg":[]},{"lv":[{"vg_name":"v","lv_name":"p","lv_size":"1","metadata_percent":"80.05"}]}]}"#;
        let report = parse(text, "t").expect("parses");
        assert_eq!(report.lvs[0].metadata_used_ratio, Some(0.8005));
        let text = text.replace("80.05", "80,05");
        assert_eq!(
            parse_err(&text),
            r#"lv "p" in vg "v": metadata_percent: expected a percentage like "25.00", got "80,05""#
        );
    }

    #[test]
    fn hand_written_fullreport_shape_with_log_section() {
        let text = r#"{"report":[
            {"vg":[{"vg_name":"vg1","vg_uuid":"u","vg_size":"1000B","vg_free":"400","vg_extent_size":"100"}],
             "pv":[{"pv_name":"/dev/sda","pv_size":"1000"}],
             "lv":[{"lv_uuid":"A","lv_name":"[p_tdata]","lv_parent":"[p]","lv_size":"500","lv_tags":"x,,y"},
                   {"lv_uuid":"B","lv_name":"t","pool_lv":"[p]","lv_size":"9000","data_percent":"5"}],
             "pvseg":[{"pvseg_start":"0","pvseg_size":"5"}],
             "seg":[{"segtype":"linear","lv_uuid":"A"},{"segtype":"thin","lv_uuid":"B"}]}
          ],
          "log":[{"log_type":"status","log_message":"success"}]}"#;
        let report = parse(text, "t").expect("parses");
        assert_eq!(report.vgs[0].size_bytes, 1000);
        let tdata = lv(&report, "p_tdata");
        assert_eq!(
            (
                tdata.vg.as_str(),
                tdata.parent.as_str(),
                tdata.hidden,
                tdata.segtype.as_str()
            ),
            ("vg1", "p", true, "linear")
        );
        assert_eq!(tdata.tags, vec!["x", "y"]);
        let thin = lv(&report, "t");
        assert_eq!(
            (thin.pool_lv.as_str(), thin.segtype.as_str()),
            ("p", "thin")
        );
        assert_eq!(thin.data_used_ratio, Some(0.05));
    }

    #[test]
    fn optional_fields_default_and_unknown_fields_are_ignored() {
        let text = r#"{"report":[{"vg":[{"vg_name":"v","vg_size":"10","vg_free":"0","vg_seqno":"7"}]},
                                  {"lv":[{"vg_name":"v","lv_name":"l","lv_size":"10","lv_time":"2026-01-01 01:02:03 +0000"}]},
                                  {"future_section":[{"x":"y"}]}]}"#;
        let report = parse(text, "t").expect("parses");
        assert_eq!(report.vgs[0].extent_size_bytes, 0);
        assert_eq!(
            report.lvs,
            vec![Lv {
                attr: String::new(),
                segtype: String::new(),
                creation_unix: Some(1_767_229_323),
                ..crate::lvm::build::linear_lv("v", "l", 10)
            }]
        );
    }

    #[test]
    fn trailing_b_is_accepted() {
        let text = r#"{"report":[{"vg":[{"vg_name":"v","vg_size":"21470642176B","vg_free":"0B","vg_extent_size":"4194304B"}]}]}"#;
        let report = parse(text, "t").expect("parses");
        assert_eq!(report.vgs[0].size_bytes, 21_470_642_176);
        assert_eq!(report.vgs[0].extent_size_bytes, 4 * MIB);
    }

    #[test]
    fn localised_and_negative_sizes_name_row_and_field() {
        let lv_text = r#"{"report":[{"vg":[]}]}{"report":[{"lv":[{"vg_name":"vms-group","lv_name":"foo","lv_size":"1,50g"}]}]}"#;
        assert_eq!(
            parse_err(lv_text),
            r#"lv "foo" in vg "vms-group": lv_size: expected a size in bytes below 2^63, got "1,50g""#
        );
        let vg_text =
            r#"{"report":[{"vg":[{"vg_name":"vms-group","vg_size":"-1","vg_free":"0"}]}]}"#;
        assert_eq!(
            parse_err(vg_text),
            r#"vg "vms-group": vg_size: expected a size in bytes below 2^63, got "-1""#
        );
        for bad in [
            "",
            "B",
            "1.5",
            "12 ",
            "+5",
            "1e9",
            "99999999999999999999999",
        ] {
            let text = format!(
                r#"{{"report":[{{"vg":[{{"vg_name":"v","vg_size":"1","vg_free":"{bad}"}}]}}]}}"#
            );
            assert!(
                parse_err(&text).contains("vg_free: expected a size in bytes"),
                "{bad:?}"
            );
        }
        let pct = r#"{"report":[{"vg":[]},{"lv":[{"vg_name":"v","lv_name":"p","lv_size":"1","data_percent":"25,00"}]}]}"#;
        assert_eq!(
            parse_err(pct),
            r#"lv "p" in vg "v": data_percent: expected a percentage like "25.00", got "25,00""#
        );
        for bad in ["inf", "NaN", "-1", "1.2.3", "."] {
            let text = format!(
                r#"{{"report":[{{"vg":[]}},{{"lv":[{{"vg_name":"v","lv_name":"p","lv_size":"1","data_percent":"{bad}"}}]}}]}}"#
            );
            assert!(parse_err(&text).contains("data_percent"), "{bad:?}");
        }
    }

    #[test]
    fn missing_required_fields() {
        let cases = [
            (
                r#"{"report":[{"vg":[{"vg_name":"v","vg_free":"0"}]}]}"#,
                r#"vg "v": missing field vg_size"#,
            ),
            (
                r#"{"report":[{"vg":[{"vg_size":"1","vg_free":"0"}]}]}"#,
                "vg row 1 of document 1: missing field vg_name",
            ),
            (
                r#"{"report":[{"vg":[]}]} {"report":[{"lv":[{"vg_name":"v","lv_name":"a","lv_size":"1"},{"vg_name":"v","lv_size":"1"}]}]}"#,
                r#"lv row 2 of document 2 in vg "v": missing field lv_name"#,
            ),
            (
                r#"{"report":[{"vg":[]},{"lv":[{"lv_name":"a","lv_size":"1"}]}]}"#,
                r#"lv "a": missing field vg_name"#,
            ),
            (
                r#"{"report":[{"vg":[]},{"lv":[{"vg_name":"v","lv_name":"a"}]}]}"#,
                r#"lv "a" in vg "v": missing field lv_size"#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_err(text), want);
        }
    }

    #[test]
    fn invalid_escape_fixture_names_the_field() {
        let message = parse_err(&fixture("invalid-escape.json"));
        assert!(
            message.starts_with(
                r#"invalid JSON in field "lv_tags" of lv "scratch_data" in vg "vms-group" (line 15, column "#
            ),
            "{message}"
        );
        assert!(message.ends_with("): invalid escape"), "{message}");
    }

    #[test]
    fn raw_control_character_names_the_field() {
        let text = "{\"report\":[{\"vg\":[{\"vg_name\":\"v\u{1}\",\"vg_size\":\"1\",\"vg_free\":\"0\"}]}]}";
        let message = parse_err(text);
        assert!(
            message.starts_with("invalid JSON in field \"vg_name\" (line 1, column"),
            "{message}"
        );
        assert!(message.contains("control character"), "{message}");
    }

    /// Captured: lvs with log/report_command_log=1 ends its log section with a trailing comma.
    #[test]
    fn report_command_log_trailing_comma_fixture() {
        let message = parse_err(&fixture("report-command-log.json"));
        assert!(
            message.starts_with("invalid JSON in field \"log_ret_code\""),
            "{message}"
        );
    }

    #[test]
    fn truncated_json() {
        let text = fixture("vgs-lvs.json");
        let cut = text.find("\"lv_tags\":\"nova\"").expect("tag") + 14;
        let message = parse_err(&text[..cut]);
        assert!(
            message.starts_with(r#"truncated JSON after field "lv_tags" of lv "6c1f0d3e-5b8a-4e52-9d3c-2f7a1b9e4c01_disk" in vg "fixture-vms" (line "#),
            "{message}"
        );
        // Cut anywhere: never a panic, and a success only at a document boundary.
        for cut in 0..text.len() {
            if let Ok(report) = parse(&text[..cut], "t") {
                assert!(
                    [0, 11].contains(&report.lvs.len()),
                    "cut at {cut}: {} lvs",
                    report.lvs.len()
                );
            }
        }
    }

    #[test]
    fn empty_input_and_no_vg_section() {
        assert_eq!(
            parse_err(""),
            "empty input: no vg section: not a vgs/lvs/fullreport JSON report"
        );
        assert_eq!(
            parse_err("  \n "),
            "empty input: no vg section: not a vgs/lvs/fullreport JSON report"
        );
        assert_eq!(parse_err(r#"{"report":[]}"#), NO_VG_SECTION);
        assert_eq!(
            parse_err(r#"{"report":[{"lv":[{"vg_name":"v","lv_name":"a","lv_size":"1"}]}]}"#),
            NO_VG_SECTION
        );
        // lvs output alone is fine for parse_sections.
        let sections = parse_sections(r#"{"report":[{"lv":[]}]}"#, "t").expect("parses");
        assert!(sections.has_lv_section && !sections.has_vg_section);
        // An empty vg section (vgs of a missing VG) is a valid, empty report.
        let report = parse(r#"{"report":[{"vg":[]}]}"#, "t").expect("parses");
        assert_eq!(report, VgReport::default());
    }

    #[test]
    fn garbage_and_wrong_types() {
        assert_eq!(
            parse_err("  Volume group \"x\" not found"),
            "invalid JSON (line 1, column 3): expected value"
        );
        let message =
            parse_err(r#"{"report":[{"vg":[{"vg_name":"v","vg_size":5,"vg_free":"0"}]}]}"#);
        assert!(
            message.starts_with("unexpected JSON value in field \"vg_size\""),
            "{message}"
        );
        assert!(parse_err("[1,2]").starts_with("unexpected JSON value"));
    }

    #[test]
    fn conflicting_duplicates_are_refused() {
        let text = r#"{"report":[{"vg":[]},{"lv":[{"vg_name":"v","lv_name":"a","lv_size":"1"},{"vg_name":"v","lv_name":"a","lv_size":"2"}]}]}"#;
        assert!(parse_err(text)
            .starts_with(r#"lv "a" in vg "v" appears twice with different lv_size (1 and 2)"#));
        let text = r#"{"report":[{"vg":[{"vg_name":"v","vg_size":"1","vg_free":"0"},{"vg_name":"v","vg_size":"1","vg_free":"1"}]}]}"#;
        assert!(parse_err(text).starts_with(r#"vg "v" appears twice"#));
    }

    /// Issue 20: the exec and replay paths refuse the names the metadata reader refuses (a
    /// 1 MB LV name made /metrics 2 MB; NUL and control bytes; names LVM forbids).
    #[test]
    fn names_lvm_refuses_are_refused() {
        let lv_row = |vg: &str, lv: &str| {
            format!(
                r#"{{"report":[{{"vg":[]}},{{"lv":[{{"vg_name":{},"lv_name":{},"lv_size":"4194304"}}]}}]}}"#,
                serde_json::to_string(vg).unwrap(),
                serde_json::to_string(lv).unwrap()
            )
        };
        let ok = parse(&lv_row("vms", "[a_tmeta]"), "test").expect("a valid name");
        assert_eq!(ok.lvs[0].name, "a_tmeta");
        let huge = "n".repeat(1024 * 1024);
        for (vg, lv, message) in [
            (
                "vms",
                huge.as_str(),
                "lv_name is 1048576 bytes long, LVM's limit is 127",
            ),
            (
                "vms",
                "a\0b",
                "lv_name holds byte 0x00, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
            (
                "vms",
                "a\u{1b}b",
                "lv_name holds byte 0x1b, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
            ("vms", "-a", "lv_name starts with '-'"),
            ("vms", "..", "lv_name is '.' or '..'"),
            ("vms", "", "lv_name is empty"),
            (
                "v ms",
                "a",
                "vg_name holds byte 0x20, outside LVM's a-z A-Z 0-9 . _ + -",
            ),
        ] {
            let text = lv_row(vg, lv);
            let error = parse_err(&text);
            assert!(error.ends_with(message), "{error}");
            assert!(
                error.len() < 400,
                "the message stays small: {} bytes",
                error.len()
            );
        }
        let vg_row = |vg: &str| {
            format!(
                r#"{{"report":[{{"vg":[{{"vg_name":{},"vg_size":"1","vg_free":"0"}}]}}]}}"#,
                serde_json::to_string(vg).unwrap()
            )
        };
        let error = parse_err(&vg_row(&"v".repeat(200)));
        assert!(
            error.ends_with("vg_name is 200 bytes long, LVM's limit is 127"),
            "{error}"
        );
        assert!(parse_err(&vg_row("a\u{7f}")).contains("byte 0x7f"));
    }

    #[test]
    fn never_panics_on_mangled_input() {
        let text = fixture("vgs-lvs.json");
        let mut errors = 0;
        for (i, c) in text.char_indices().step_by(7) {
            for replacement in ["\\", "\"", "{", "}", ":", ",", "\u{1}", "é", ""] {
                let mangled = format!("{}{replacement}{}", &text[..i], &text[i + c.len_utf8()..]);
                errors += usize::from(parse(&mangled, "t").is_err());
            }
        }
        assert!(errors > 100, "most manglings are errors, got {errors}");
    }
}
