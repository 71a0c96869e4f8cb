//! Reading an archive and checking it as it goes: the header's format and version, every
//! line parsed into its record, the sections in order, and at the end the manifest's counts
//! and checksums against what was read. A stream cut short (no manifest, or a truncated
//! zstd frame) is an error.

use std::io::{BufRead, BufReader};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use super::record::Record;
use super::{Counts, FORMAT, FORMAT_VERSION, Header, Manifest, SECTIONS, checksum_text};

/// Reads `path`, handing each record to `on_record` in file order; returns the header and
/// the checked manifest. Errors name the line.
pub fn read(
    path: &Path,
    mut on_record: impl FnMut(Record) -> Result<(), String>,
) -> Result<(Header, Manifest), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dec = zstd::stream::read::Decoder::new(file)
        .map_err(|e| format!("{}: not a zstd stream: {e}", path.display()))?;
    let mut lines = BufReader::new(dec);
    let mut buf = String::new();
    let mut n = 0usize;
    let mut next = |buf: &mut String| -> Result<bool, String> {
        buf.clear();
        n += 1;
        match lines.read_line(buf) {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(format!(
                "line {n}: cannot read (damaged or cut short?): {e}"
            )),
        }
    };
    if !next(&mut buf)? {
        return Err("empty archive: no header".into());
    }
    let header: Header = serde_json::from_str(buf.trim_end())
        .map_err(|e| format!("line 1: not a quern archive header: {e}"))?;
    if header.format != FORMAT {
        return Err(format!(
            "line 1: format {:?}, not {FORMAT:?}",
            header.format
        ));
    }
    if header.format_version != FORMAT_VERSION {
        return Err(format!(
            "archive format version {} (written by quern {}); this quern reads version {FORMAT_VERSION}",
            header.format_version, header.quern_version
        ));
    }
    let mut hashers: Vec<Xxh3> = SECTIONS.iter().map(|_| Xxh3::new()).collect();
    let mut counts = Counts::default();
    let mut section = 0usize;
    let mut line_no = 1usize;
    let manifest = loop {
        line_no += 1;
        if !next(&mut buf)? {
            return Err(format!(
                "no manifest after line {}: the archive is cut short",
                line_no - 1
            ));
        }
        if !buf.ends_with('\n') {
            return Err(format!(
                "line {line_no}: no newline: the archive is cut short"
            ));
        }
        let rec = Record::from_line(buf.trim_end_matches('\n'))
            .map_err(|e| format!("line {line_no}: {e}"))?;
        let Some(rec) = rec else {
            let v: serde_json::Value = serde_json::from_str(&buf).map_err(|e| e.to_string())?;
            let m: Manifest = serde_json::from_value(v["manifest"].clone())
                .map_err(|e| format!("line {line_no}: bad manifest: {e}"))?;
            break m;
        };
        let s = rec.section();
        if s < section {
            return Err(format!(
                "line {line_no}: a {} record after the {} section",
                SECTIONS[s], SECTIONS[section]
            ));
        }
        section = s;
        hashers[s].update(buf.as_bytes());
        match &rec {
            Record::Queue(_) => counts.queues += 1,
            Record::Job(_) => counts.jobs += 1,
            Record::Workflow(_) => counts.workflows += 1,
            Record::Schedule(s) => {
                counts.schedules += 1;
                counts.schedule_runs += s.runs.len() as u64;
            }
        }
        on_record(rec).map_err(|e| format!("line {line_no}: {e}"))?;
    };
    if next(&mut buf)? {
        return Err(format!("line {}: data after the manifest", line_no + 1));
    }
    if manifest.header != header {
        return Err("the manifest does not repeat the header".into());
    }
    if manifest.counts != counts {
        return Err(format!(
            "the manifest counts {:?}, the archive holds {counts:?}",
            manifest.counts
        ));
    }
    for (name, h) in SECTIONS.iter().zip(&hashers) {
        let got = checksum_text(h.digest());
        match manifest.checksums.get(*name) {
            Some(want) if *want == got => {}
            Some(want) => {
                return Err(format!(
                    "checksum of the {name} section is {got}, the manifest says {want}"
                ));
            }
            None => return Err(format!("the manifest has no checksum for {name}")),
        }
    }
    Ok((header, manifest))
}
