//! `sqlite://` store URLs.

use std::path::PathBuf;
use std::time::Duration;

use quern::Error;

/// How hard a commit tries to reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: a commit survives a crash of the process (the
    /// default). A power loss can drop the last commits but never corrupts the file.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced, surviving power loss too.
    Fsync,
}

/// Parsed store location and options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteUrl {
    /// `None` for an in-memory database.
    pub path: Option<PathBuf>,
    pub durability: Durability,
    pub busy_timeout: Duration,
}

impl SqliteUrl {
    /// Parses `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, `sqlite:path.db`,
    /// `sqlite::memory:` or `sqlite://:memory:`, with optional `?durability=normal|fsync` and
    /// `&busy_timeout=5s`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad =
            |why: &str| Error::InvalidArgument(format!("bad sqlite store URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| bad("it must start with sqlite://"))?;
        let (loc, query) = match rest.split_once('?') {
            Some((l, q)) => (l, Some(q)),
            None => (rest, None),
        };
        let mut out = SqliteUrl {
            path: None,
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
        };
        if loc != ":memory:" {
            if loc.is_empty() {
                return Err(bad("no file path"));
            }
            out.path = Some(PathBuf::from(loc));
        }
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad("query parameters must be key=value"))?;
            match k {
                "durability" => {
                    out.durability = match v {
                        "normal" => Durability::Normal,
                        "fsync" => Durability::Fsync,
                        _ => return Err(bad("durability must be normal or fsync")),
                    }
                }
                "busy_timeout" => {
                    out.busy_timeout =
                        quern::model::parse_duration(v).map_err(|e| bad(&e.to_string()))?
                }
                _ => return Err(bad(&format!("unknown option {k:?}"))),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_options() {
        assert_eq!(
            SqliteUrl::parse("sqlite://quern.db").unwrap().path.unwrap(),
            PathBuf::from("quern.db")
        );
        assert_eq!(
            SqliteUrl::parse("sqlite:///tmp/q.db")
                .unwrap()
                .path
                .unwrap(),
            PathBuf::from("/tmp/q.db")
        );
        assert_eq!(
            SqliteUrl::parse("sqlite:q.db").unwrap().path.unwrap(),
            PathBuf::from("q.db")
        );
        assert!(SqliteUrl::parse("sqlite::memory:").unwrap().path.is_none());
        assert!(
            SqliteUrl::parse("sqlite://:memory:")
                .unwrap()
                .path
                .is_none()
        );
        let u = SqliteUrl::parse("sqlite://q.db?durability=fsync&busy_timeout=2s").unwrap();
        assert_eq!(u.durability, Durability::Fsync);
        assert_eq!(u.busy_timeout, Duration::from_secs(2));
        for bad in [
            "redis://x",
            "sqlite://",
            "sqlite://q.db?durability=always",
            "sqlite://q.db?x=1",
            "sqlite://q.db?busy_timeout=abc",
        ] {
            assert!(SqliteUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
