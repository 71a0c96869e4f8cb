//! Byte sizes as people write them in config: `512MiB`, `2GiB`, `100MB`, `4096` (bytes).

use crate::Error;

/// Parses a size: a number with an optional unit (`B`, `KB`/`MB`/`GB`/`TB` in powers of
/// 1000, `KiB`/`MiB`/`GiB`/`TiB` in powers of 1024; case-insensitive, a space allowed).
///
/// ```
/// assert_eq!(quern::model::parse_bytes("512MiB").unwrap(), 512 << 20);
/// assert_eq!(quern::model::parse_bytes("2 GB").unwrap(), 2_000_000_000);
/// assert!(quern::model::parse_bytes("lots").is_err());
/// ```
pub fn parse_bytes(s: &str) -> Result<u64, Error> {
    let bad = || {
        Error::InvalidArgument(format!(
            "{s:?} is not a size (examples: 4096, 100MB, 512MiB, 2GiB)"
        ))
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let v = n * mult as f64;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v.round() as u64)
}

/// A size for people: `512.0 MiB`, `3.2 GiB`, `900 B`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("1KiB").unwrap(), 1024);
        assert_eq!(parse_bytes("1.5 kb").unwrap(), 1500);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        for bad in ["", "MiB", "-1", "5 parsecs", "1e3"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_bytes(900), "900 B");
        assert_eq!(format_bytes(512 << 20), "512.0 MiB");
    }
}
