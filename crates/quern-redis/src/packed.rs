//! Reading the claim script's reply: one MessagePack value (`cmsgpack.pack` in Lua) instead
//! of a nested Redis array.
//!
//! A claim returns each job's whole hash. As a Redis array that is ~20 bulk strings per job,
//! and parsing them was a fifth of a draining worker's CPU (profiled with `perf`); one packed
//! string per call costs Redis less to write and the client a single bulk read plus this
//! small decoder. Only the shapes the scripts produce are read: arrays of arrays and
//! strings (`str` or `bin`).

use quern::{Error, Result};

fn bad(what: &str) -> Error {
    Error::Storage(format!("malformed packed reply: {what}"))
}

/// A cursor over a MessagePack buffer.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| bad("length"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| bad("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<usize> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b)))
    }

    /// The length of the array that starts here.
    pub(crate) fn array(&mut self) -> Result<usize> {
        let m = self.take(1)?[0];
        match m {
            0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => self.be(2),
            0xdd => self.be(4),
            // cmsgpack packs an empty Lua table as an empty map.
            0x80 => Ok(0),
            _ => Err(bad("expected an array")),
        }
    }

    /// The bytes of the string (`str` or `bin`) that starts here.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let m = self.take(1)?[0];
        let n = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 | 0xc4 => self.be(1)?,
            0xda | 0xc5 => self.be(2)?,
            0xdb | 0xc6 => self.be(4)?,
            _ => return Err(bad("expected a string")),
        };
        self.take(n)
    }

    /// The string that starts here, as UTF-8 text.
    pub(crate) fn text(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| bad("non-UTF-8 text"))
    }

    pub(crate) fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_arrays_of_strings_in_every_width() {
        let long = vec![b'x'; 300];
        let mut buf = vec![0x93, 0xa1, b'q', 0xd9, 2, b'i', b'd', 0x92];
        buf.extend_from_slice(&[0xda, 0x01, 0x2c]);
        buf.extend_from_slice(&long);
        buf.extend_from_slice(&[0xc4, 2, 0xff, 0x00]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.array().unwrap(), 3);
        assert_eq!(r.text().unwrap(), "q");
        assert_eq!(r.text().unwrap(), "id");
        assert_eq!(r.array().unwrap(), 2);
        assert_eq!(r.bytes().unwrap(), &long[..]);
        assert_eq!(r.bytes().unwrap(), &[0xff, 0x00]);
        assert!(r.done());
    }

    #[test]
    fn truncated_or_unexpected_input_is_an_error() {
        assert!(Reader::new(&[0xa5, b'a']).bytes().is_err());
        assert!(Reader::new(&[0x01]).array().is_err());
        assert!(Reader::new(&[]).array().is_err());
        assert!(Reader::new(&[0xa1, 0xff]).text().is_err());
    }
}
