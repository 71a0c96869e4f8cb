//! The portable archive `quern backup` writes and `quern restore` reads: JSON Lines in one
//! zstd stream. The format is documented for users in docs/operations.md ("Backup, restore
//! and migrate"); this module is its one implementation.
//!
//! Line 1 is the header ([`Header`]); then the records, one JSON object per line, in
//! sections and in this order: `{"queue":…}`, `{"job":…}`, `{"workflow":…}`,
//! `{"schedule":…}`; the last line is `{"manifest":…}` ([`Manifest`]): the header's fields
//! again, the count of each section and an XXH3-64 checksum of each section's bytes (its
//! lines with their newlines). The manifest comes last because the counts and checksums are
//! known only then; a file cut short has none and fails `verify`.
//!
//! A job is the library's `Job` as JSON, except that `payload`, `result` and `checkpoint`
//! are their stored form (`{"tag": n, "data": base64}`), so a MessagePack or compressed
//! payload comes back byte for byte.
//!
//! Imports go one way: `write` and `read` use `record`; `record` uses only the library.

mod b64;
pub mod read;
pub mod record;
pub mod write;

use serde::{Deserialize, Serialize};

/// The `format` field of every archive.
pub const FORMAT: &str = "quern-archive";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The sections of an archive, in their order.
pub const SECTIONS: [&str; 4] = ["queues", "jobs", "workflows", "schedules"];

/// The first line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub format_version: u32,
    /// The `quern` version that wrote it.
    pub quern_version: String,
    /// The store it was taken from, its password redacted.
    pub source: String,
    /// When the copy started (RFC 3339, UTC).
    pub created_at: String,
}

impl Header {
    pub fn new(source: &str) -> Header {
        Header {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            quern_version: env!("CARGO_PKG_VERSION").into(),
            source: crate::store::redact(source),
            created_at: jiff::Timestamp::now().to_string(),
        }
    }
}

/// Records per section (and the schedules' run history entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub queues: u64,
    pub jobs: u64,
    pub workflows: u64,
    pub schedules: u64,
    pub schedule_runs: u64,
}

/// The last line: the header's fields, when the copy finished, counts and checksums.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub header: Header,
    pub finished_at: String,
    pub counts: Counts,
    /// Section name → `xxh3-64:<16 hex digits>` of the section's lines.
    pub checksums: std::collections::BTreeMap<String, String>,
}

/// The checksum text of a section's bytes.
pub fn checksum_text(hash: u64) -> String {
    format!("xxh3-64:{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_source_url_is_stored_without_its_password() {
        let h = super::Header::new("redis://user:s3cret@10.0.0.1:6379/0?prefix=q");
        assert!(!h.source.contains("s3cret"), "{}", h.source);
        assert!(h.source.contains("10.0.0.1:6379"), "{}", h.source);
        assert_eq!(h.format_version, super::FORMAT_VERSION);
    }
}
