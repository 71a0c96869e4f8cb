//! The workflow file as a tree of values that remember where they came from.
//!
//! Validation errors must name the line they are about, for YAML and JSON alike. Both formats
//! are read into one [`Node`] tree through serde-saphyr's `Spanned` values (JSON is a subset of
//! YAML 1.2; a strict JSON syntax check runs first so that JSON files get JSON's rules). The
//! typed model is then deserialized *from the tree* with the [`Deserializer`] implemented here,
//! which stamps every serde error with the position of the innermost node it came from: an
//! unknown field points at its key, a bad duration at its value, a missing field at its map.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Number;
use serde_saphyr::Spanned;

use super::reference::PathSegment;

/// A 1-based line and column in the source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// The line, counted from 1.
    pub line: u32,
    /// The column, counted from 1 in characters.
    pub column: u32,
}

impl Pos {
    fn from_location(l: serde_saphyr::Location) -> Option<Pos> {
        let line = u32::try_from(l.line()).ok().filter(|l| *l > 0)?;
        let column = u32::try_from(l.column()).unwrap_or(0);
        Some(Pos { line, column })
    }
}

/// The format of a workflow file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// YAML 1.2.
    Yaml,
    /// JSON (RFC 8259).
    Json,
}

impl SourceFormat {
    /// Picks the format from a file name: `.json` is JSON, anything else YAML.
    pub fn from_path(path: &std::path::Path) -> SourceFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => SourceFormat::Json,
            _ => SourceFormat::Yaml,
        }
    }

    /// Guesses the format from the text: a document starting with `{` is JSON.
    pub fn sniff(text: &str) -> SourceFormat {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('{') => SourceFormat::Json,
            _ => SourceFormat::Yaml,
        }
    }
}

/// One value of the source tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Where the value starts; `None` when the parser could not say.
    pub pos: Option<Pos>,
}

/// The shape of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Node>),
    /// Entries in file order; keys are strings with their own positions.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Option<Pos>,
}

/// A syntax error: the text is not YAML or JSON at all.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SyntaxError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl Node {
    /// Parses `text` into a tree.
    pub fn parse(text: &str, format: SourceFormat) -> Result<Node, SyntaxError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let owned;
        let yaml_text = match format {
            SourceFormat::Yaml => text,
            SourceFormat::Json => {
                // JSON's own parser decides what is valid JSON and reports its errors.
                if let Err(e) = serde_json::from_str::<de::IgnoredAny>(text) {
                    let line = u32::try_from(e.line()).unwrap_or(0);
                    let column = u32::try_from(e.column()).unwrap_or(0);
                    return Err(SyntaxError {
                        message: format!("invalid JSON: {}", strip_json_position(&e.to_string())),
                        pos: (line > 0).then_some(Pos { line, column }),
                    });
                }
                // Valid JSON has tabs only as whitespace between tokens (inside strings
                // they must be escaped), and YAML rejects some tab indentation, so turning
                // them into spaces keeps the meaning and every line/column.
                owned = text.replace('\t', " ");
                &owned
            }
        };
        let mut options = serde_saphyr::Options::default();
        // YAML 1.1's yes/no/on/off booleans surprise people (`country: no`); only true/false.
        options.strict_booleans = true;
        // The parser's own snippet rendering is for terminals; we report line and column.
        options.with_snippet = false;
        match serde_saphyr::from_str_with_options::<Option<Node>>(yaml_text, options) {
            Ok(Some(node)) => Ok(node),
            Ok(None) => Ok(Node {
                kind: Kind::Null,
                pos: Some(Pos { line: 1, column: 1 }),
            }),
            Err(e) => Err(SyntaxError {
                pos: e.location().and_then(Pos::from_location),
                message: strip_yaml_position(&first_line(&e.to_string())),
            }),
        }
    }

    /// The entry of a map under the first of `names` present, with its key.
    pub fn entry(&self, names: &[&str]) -> Option<(&Key, &Node)> {
        let Kind::Map(entries) = &self.kind else {
            return None;
        };
        names
            .iter()
            .find_map(|n| entries.iter().find(|(k, _)| k.name == *n))
            .map(|(k, v)| (k, v))
    }

    /// The value of a map under the first of `names` present.
    pub fn get(&self, names: &[&str]) -> Option<&Node> {
        self.entry(names).map(|(_, v)| v)
    }

    /// The element `i` of a sequence.
    pub fn index(&self, i: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(i),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// Follows a path of map keys and list indices (as in a `serde_json::Value`).
    pub fn at(&self, path: &[PathSegment]) -> Option<&Node> {
        let mut n = self;
        for seg in path {
            n = match seg {
                PathSegment::Key(k) => n.get(&[k.as_str()])?,
                PathSegment::Index(i) => n.index(*i)?,
            };
        }
        Some(n)
    }

    /// Deserializes a typed value from this node; errors carry the position of the node
    /// they are about.
    pub fn deserialize<'de, T: Deserialize<'de>>(&'de self) -> Result<T, NodeError> {
        T::deserialize(self)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

/// Drops the parser's own " at line N, column M": the error carries the position.
fn strip_yaml_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) if s[i..].contains(", column ") => s[..i].to_owned(),
        _ => s.to_owned(),
    }
}

fn strip_json_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

// ---- building the tree from serde-saphyr ------------------------------------------------

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Shape>::deserialize(d)?;
        Ok(Node {
            kind: spanned.value.0,
            pos: Pos::from_location(spanned.referenced),
        })
    }
}

/// The value part of a node, read with `deserialize_any`.
struct Shape(Kind);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor).map(Shape)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Number::from_f64(v)
            .map(Kind::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::String(v))
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Shape::deserialize(d).map(|s| s.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let name = match k.kind {
                Kind::String(s) => s,
                Kind::Number(n) => n.to_string(),
                Kind::Bool(b) => b.to_string(),
                Kind::Null => "null".to_owned(),
                Kind::Seq(_) | Kind::Map(_) => {
                    return Err(de::Error::custom(
                        "a mapping key must be a string, not a list or a mapping",
                    ));
                }
            };
            let value = map.next_value::<Node>()?;
            entries.push((Key { name, pos: k.pos }, value));
        }
        Ok(Kind::Map(entries))
    }
}

// ---- reading typed values back out of the tree -------------------------------------------

/// A serde error while reading a typed value from a [`Node`], with the position of the node
/// it is about.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NodeError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl NodeError {
    /// Stamps a position on the error unless an inner node already did.
    fn at(mut self, pos: Option<Pos>) -> Self {
        if self.pos.is_none() {
            self.pos = pos;
        }
        self
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError {
            message: msg.to_string(),
            pos: None,
        }
    }
}

impl<'de> Deserializer<'de> for &'de Node {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        let out = match &self.kind {
            Kind::Null => v.visit_unit(),
            Kind::Bool(b) => v.visit_bool(*b),
            Kind::Number(n) => {
                if let Some(u) = n.as_u64() {
                    v.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    v.visit_i64(i)
                } else {
                    v.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Kind::String(s) => v.visit_borrowed_str(s),
            Kind::Seq(items) => v.visit_seq(NodeSeq {
                items: items.iter(),
            }),
            Kind::Map(entries) => v.visit_map(NodeMap {
                entries: entries.iter(),
                value: None,
            }),
        };
        out.map_err(|e| e.at(self.pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        match self.kind {
            Kind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
        .map_err(|e| e.at(self.pos))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, NodeError> {
        v.visit_newtype_struct(self).map_err(|e| e.at(self.pos))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        let out = match &self.kind {
            Kind::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            Kind::Map(entries) if entries.len() == 1 => v.visit_enum(NodeEnum {
                variant: &entries[0].0,
                value: &entries[0].1,
            }),
            _ => Err(de::Error::custom(
                "expected a name, or a mapping with a single key naming the variant",
            )),
        };
        out.map_err(|e| e.at(self.pos))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct NodeSeq<'de> {
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for NodeSeq<'de> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        match self.items.next() {
            Some(n) => seed.deserialize(n).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct NodeMap<'de> {
    entries: std::slice::Iter<'de, (Key, Node)>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for NodeMap<'de> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(KeyDe(k))
                    .map(Some)
                    .map_err(|e| e.at(k.pos))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <NodeError as de::Error>::custom("a value was read before its key"))?;
        seed.deserialize(node)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Deserializes a map key (always a string in our tree).
struct KeyDe<'de>(&'de Key);

impl<'de> Deserializer<'de> for KeyDe<'de> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_borrowed_str(&self.0.name)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct
        map struct enum identifier ignored_any
    }
}

struct NodeEnum<'de> {
    variant: &'de Key,
    value: &'de Node,
}

impl<'de> de::EnumAccess<'de> for NodeEnum<'de> {
    type Error = NodeError;
    type Variant = &'de Node;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'de Node), NodeError> {
        let v = seed
            .deserialize(KeyDe(self.variant))
            .map_err(|e| e.at(self.variant.pos))?;
        Ok((v, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for &'de Node {
    type Error = NodeError;

    fn unit_variant(self) -> Result<(), NodeError> {
        match self.kind {
            Kind::Null => Ok(()),
            _ => Err(<NodeError as de::Error>::custom("this variant takes no value").at(self.pos)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, NodeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, NodeError> {
        de::Deserializer::deserialize_seq(self, v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        de::Deserializer::deserialize_map(self, v)
    }
}

#[cfg(test)]
impl Node {
    /// The plain JSON value of this node.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::String(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
