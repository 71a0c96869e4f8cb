use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// How a payload's bytes are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// UTF-8 JSON (the default: readable in the CLI and in the store itself).
    #[default]
    Json,
    /// MessagePack with field names (`rmp_serde::to_vec_named`), so payloads survive field
    /// reordering.
    MsgPack,
}

/// Encoding settings: the format, when to compress, and the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    /// Serialization format for new payloads.
    pub format: Format,
    /// Compress with zstd when the encoded payload is larger than this many bytes.
    pub compress_above: usize,
    /// zstd level (1–22; 3 is zstd's default and a good balance).
    pub zstd_level: i32,
    /// Largest accepted payload, measured before compression. Also bounds decompression, so a
    /// small compressed blob cannot expand into gigabytes.
    pub max_bytes: usize,
}

impl Codec {
    /// The default payload limit: 16 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
}

impl Default for Codec {
    fn default() -> Self {
        Codec {
            format: Format::Json,
            compress_above: 64 * 1024,
            zstd_level: 3,
            max_bytes: Codec::DEFAULT_MAX_BYTES,
        }
    }
}

/// An encoded payload (or result): bytes plus how to read them.
///
/// In storage it is a one-byte tag ([`Payload::tag`]) and the bytes. Serialized (a [`Job`]
/// as JSON, the CLI's `--json`) it appears as the decoded value.
///
/// [`Job`]: crate::Job
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    format: Format,
    compressed: bool,
    bytes: Vec<u8>,
}

const TAG_MSGPACK: u8 = 0x01;
const TAG_ZSTD: u8 = 0x10;

impl Payload {
    /// JSON `null`.
    pub fn null() -> Self {
        Payload {
            format: Format::Json,
            compressed: false,
            bytes: b"null".to_vec(),
        }
    }

    /// Encodes a value with the codec's format, compressing above its threshold.
    pub fn encode<T: Serialize + ?Sized>(value: &T, codec: &Codec) -> Result<Self, Error> {
        let bytes = match codec.format {
            Format::Json => serde_json::to_vec(value).map_err(|e| Error::Codec(e.to_string()))?,
            Format::MsgPack => {
                rmp_serde::to_vec_named(value).map_err(|e| Error::Codec(e.to_string()))?
            }
        };
        Self::from_encoded(codec.format, bytes, codec)
    }

    /// Wraps already-encoded bytes, checking the limit and compressing above the threshold.
    pub fn from_encoded(format: Format, bytes: Vec<u8>, codec: &Codec) -> Result<Self, Error> {
        if bytes.len() > codec.max_bytes {
            return Err(Error::PayloadTooLarge {
                size: bytes.len(),
                limit: codec.max_bytes,
            });
        }
        if bytes.len() > codec.compress_above {
            let packed = zstd::bulk::compress(&bytes, codec.zstd_level)
                .map_err(|e| Error::Codec(format!("zstd: {e}")))?;
            if packed.len() < bytes.len() {
                return Ok(Payload {
                    format,
                    compressed: true,
                    bytes: packed,
                });
            }
        }
        Ok(Payload {
            format,
            compressed: false,
            bytes,
        })
    }

    /// A JSON payload from raw JSON text, which is checked to be valid JSON.
    pub fn from_json_str(text: &str, codec: &Codec) -> Result<Self, Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| Error::Codec(format!("payload is not valid JSON: {e}")))?;
        Self::from_encoded(Format::Json, text.as_bytes().to_vec(), codec)
    }

    /// A JSON payload from a JSON value, with the default codec settings but no size limit
    /// check beyond `codec`'s.
    pub fn from_json_value(v: &serde_json::Value, codec: &Codec) -> Result<Self, Error> {
        let json = Codec {
            format: Format::Json,
            ..*codec
        };
        Self::encode(v, &json)
    }

    /// Rebuilds a payload from its storage form. The bytes are not checked here; decoding
    /// checks them.
    pub fn from_stored(tag: u8, bytes: Vec<u8>) -> Result<Self, Error> {
        if tag & !(TAG_MSGPACK | TAG_ZSTD) != 0 {
            return Err(Error::Codec(format!("unknown payload tag {tag:#04x}")));
        }
        let format = if tag & TAG_MSGPACK != 0 {
            Format::MsgPack
        } else {
            Format::Json
        };
        Ok(Payload {
            format,
            compressed: tag & TAG_ZSTD != 0,
            bytes,
        })
    }

    /// The one-byte storage tag: bit 0 MessagePack, bit 4 zstd.
    pub fn tag(&self) -> u8 {
        let mut t = 0;
        if self.format == Format::MsgPack {
            t |= TAG_MSGPACK;
        }
        if self.compressed {
            t |= TAG_ZSTD;
        }
        t
    }

    /// The stored bytes (possibly compressed).
    pub fn stored_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the payload, returning the stored bytes.
    pub fn into_stored_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The serialization format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the stored bytes are zstd-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The encoded bytes after decompression, refusing to expand past `limit` bytes.
    pub fn raw_bytes(&self, limit: usize) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
        if !self.compressed {
            return Ok(std::borrow::Cow::Borrowed(&self.bytes));
        }
        zstd::bulk::decompress(&self.bytes, limit)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| Error::Codec(format!("zstd: {e} (or larger than {limit} bytes)")))
    }

    /// Decodes into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let raw = self.raw_bytes(Codec::DEFAULT_MAX_BYTES.max(self.bytes.len() * 64))?;
        match self.format {
            Format::Json => serde_json::from_slice(&raw).map_err(|e| Error::Codec(e.to_string())),
            Format::MsgPack => rmp_serde::from_slice(&raw).map_err(|e| Error::Codec(e.to_string())),
        }
    }

    /// Decodes into a JSON value whatever the format.
    pub fn to_json_value(&self) -> Result<serde_json::Value, Error> {
        self.decode()
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload::null()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("format", &self.format)
            .field("compressed", &self.compressed)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.to_json_value() {
            Ok(v) => v.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Payload::from_json_value(
            &v,
            &Codec {
                max_bytes: usize::MAX,
                ..Codec::default()
            },
        )
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Input {
        user_id: u64,
        email: String,
    }

    #[test]
    fn json_and_msgpack_round_trip_through_storage_form() {
        let v = Input {
            user_id: 7,
            email: "a@b.c".into(),
        };
        for format in [Format::Json, Format::MsgPack] {
            let codec = Codec {
                format,
                ..Codec::default()
            };
            let p = Payload::encode(&v, &codec).unwrap();
            let back = Payload::from_stored(p.tag(), p.stored_bytes().to_vec()).unwrap();
            assert_eq!(back.decode::<Input>().unwrap(), v);
            assert_eq!(back.to_json_value().unwrap()["user_id"], 7);
        }
    }

    #[test]
    fn ten_mib_payload_round_trips_compressed() {
        // Incompressible-ish 10 MiB: pseudo-random hex digits.
        let mut rng = fastrand::Rng::with_seed(1);
        let s: String = (0..10 * 1024 * 1024)
            .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
            .collect();
        let p = Payload::encode(&s, &Codec::default()).unwrap();
        assert!(p.is_compressed());
        assert!(p.stored_bytes().len() < s.len());
        assert_eq!(p.decode::<String>().unwrap(), s);
    }

    #[test]
    fn payload_over_the_limit_is_refused() {
        let codec = Codec {
            max_bytes: 1000,
            ..Codec::default()
        };
        let big = "x".repeat(2000);
        match Payload::encode(&big, &codec) {
            Err(Error::PayloadTooLarge { size, limit }) => {
                assert_eq!(limit, 1000);
                assert!(size > 2000);
            }
            other => panic!("expected PayloadTooLarge, got {other:?}"),
        }
        // The default limit is 16 MiB.
        assert_eq!(Codec::default().max_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn decompression_is_bounded() {
        let zeros = vec![b'0'; 1_000_000];
        let p = Payload::from_encoded(Format::Json, zeros, &Codec::default()).unwrap();
        assert!(p.is_compressed());
        assert!(p.raw_bytes(1000).is_err());
        assert_eq!(p.raw_bytes(1_000_000).unwrap().len(), 1_000_000);
    }

    #[test]
    fn invalid_json_text_and_tags_are_refused() {
        assert!(Payload::from_json_str("{not json", &Codec::default()).is_err());
        assert!(Payload::from_stored(0x80, vec![]).is_err());
    }
}
