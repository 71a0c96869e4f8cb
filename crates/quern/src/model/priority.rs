use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// Job priority, 0 (most urgent) to 9 (least urgent). Within a queue a ready job with a
/// lower number is always claimed before one with a higher number.
///
/// Five levels have names: `critical` = 0, `high` = 2, `normal` = 5 (the default), `low` = 7
/// and `batch` = 9. Parsing accepts a name or a number; printing uses the name when there is
/// one. Serialized as a number; deserialized from a number or a name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(u8);

impl Priority {
    pub const CRITICAL: Priority = Priority(0);
    pub const HIGH: Priority = Priority(2);
    pub const NORMAL: Priority = Priority(5);
    pub const LOW: Priority = Priority(7);
    pub const BATCH: Priority = Priority(9);
    /// The most urgent value.
    pub const MAX_URGENT: u8 = 0;
    /// The least urgent value.
    pub const LEAST_URGENT: u8 = 9;

    /// A priority from its number; `None` above 9.
    pub fn new(n: u8) -> Option<Self> {
        (n <= 9).then_some(Priority(n))
    }

    /// The number, 0–9.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The name of this level, if it has one.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("critical"),
            2 => Some("high"),
            5 => Some("normal"),
            7 => Some("low"),
            9 => Some("batch"),
            _ => None,
        }
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Debug for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Priority({})", self.0)
    }
}

impl FromStr for Priority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        let p = match t.as_str() {
            "critical" => Some(Priority::CRITICAL),
            "high" => Some(Priority::HIGH),
            "normal" => Some(Priority::NORMAL),
            "low" => Some(Priority::LOW),
            "batch" => Some(Priority::BATCH),
            n => n.parse::<u8>().ok().and_then(Priority::new),
        };
        p.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{s:?} is not a priority (use 0-9 or critical, high, normal, low, batch)"
            ))
        })
    }
}

impl TryFrom<u8> for Priority {
    type Error = Error;
    fn try_from(n: u8) -> Result<Self, Error> {
        Priority::new(n)
            .ok_or_else(|| Error::InvalidArgument(format!("priority {n} is out of range 0-9")))
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => u8::try_from(n).ok().and_then(Priority::new).ok_or_else(|| {
                serde::de::Error::custom(format!("priority {n} is out of range 0-9"))
            }),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse_and_print() {
        for (name, n) in [
            ("critical", 0),
            ("high", 2),
            ("normal", 5),
            ("low", 7),
            ("batch", 9),
        ] {
            let p: Priority = name.parse().unwrap();
            assert_eq!(p.get(), n);
            assert_eq!(p.to_string(), name);
            assert_eq!(n.to_string().parse::<Priority>().unwrap(), p);
        }
        assert_eq!("3".parse::<Priority>().unwrap().to_string(), "3");
        assert!("10".parse::<Priority>().is_err());
        assert!("urgent".parse::<Priority>().is_err());
        assert_eq!(Priority::default(), Priority::NORMAL);
    }

    #[test]
    fn serde_accepts_names_and_numbers() {
        let p: Priority = serde_json::from_str("\"high\"").unwrap();
        assert_eq!(p, Priority::HIGH);
        let p: Priority = serde_json::from_str("7").unwrap();
        assert_eq!(p, Priority::LOW);
        assert!(serde_json::from_str::<Priority>("12").is_err());
        assert_eq!(serde_json::to_string(&Priority::BATCH).unwrap(), "9");
    }
}
