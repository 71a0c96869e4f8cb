//! Writing an archive: the header, records in section order, then the manifest with the
//! counts and checksums of what was written.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use super::record::Record;
use super::{Counts, Header, Manifest, SECTIONS, checksum_text};

/// zstd level of archives: zstd's default, a good balance of speed and size.
const LEVEL: i32 = 3;

pub struct ArchiveWriter {
    out: zstd::stream::write::Encoder<'static, BufWriter<std::fs::File>>,
    header: Header,
    section: usize,
    hashers: Vec<Xxh3>,
    counts: Counts,
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

impl ArchiveWriter {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: &Path, header: Header) -> Result<ArchiveWriter, String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = zstd::stream::write::Encoder::new(BufWriter::new(file), LEVEL).map_err(io)?;
        let line = serde_json::to_string(&header).map_err(|e| e.to_string())?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        Ok(ArchiveWriter {
            out,
            header,
            section: 0,
            hashers: SECTIONS.iter().map(|_| Xxh3::new()).collect(),
            counts: Counts::default(),
        })
    }

    /// Appends one record; records come in section order (queues, jobs, workflows,
    /// schedules).
    pub fn push(&mut self, r: &Record) -> Result<(), String> {
        let s = r.section();
        if s < self.section {
            return Err(format!(
                "internal: a {} record after the {} section",
                SECTIONS[s], SECTIONS[self.section]
            ));
        }
        self.section = s;
        let mut line = r.to_line()?;
        line.push('\n');
        self.hashers[s].update(line.as_bytes());
        self.out.write_all(line.as_bytes()).map_err(io)?;
        match r {
            Record::Queue(_) => self.counts.queues += 1,
            Record::Job(_) => self.counts.jobs += 1,
            Record::Workflow(_) => self.counts.workflows += 1,
            Record::Schedule(s) => {
                self.counts.schedules += 1;
                self.counts.schedule_runs += s.runs.len() as u64;
            }
        }
        Ok(())
    }

    /// Writes the manifest, ends the zstd stream and flushes the file to disk.
    pub fn finish(self) -> Result<Manifest, String> {
        let checksums: BTreeMap<String, String> = SECTIONS
            .iter()
            .zip(&self.hashers)
            .map(|(s, h)| (s.to_string(), checksum_text(h.digest())))
            .collect();
        let manifest = Manifest {
            header: self.header,
            finished_at: jiff::Timestamp::now().to_string(),
            counts: self.counts,
            checksums,
        };
        let mut out = self.out;
        let line = serde_json::to_string(&serde_json::json!({ "manifest": manifest }))
            .map_err(|e| e.to_string())?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        let buf = out.finish().map_err(io)?;
        let file = buf.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(io)?;
        Ok(manifest)
    }
}
