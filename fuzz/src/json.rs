//! JSON helpers of the oracles: what a text is, read without the crate's own types.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The members of a JSON object, in order and with duplicate keys kept, values unparsed. Only
/// an object is one: an array is not, whatever serde's derived structs accept.
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The members of `text` if it is exactly one JSON object (surrounding whitespace allowed).
    pub fn of(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The values under `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&'a RawValue> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .collect()
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(ObjectOnly)
    }
}

/// Whether `text` is one well-formed JSON value (lone surrogate escapes allowed, as
/// JavaScript's `JSON.parse` allows them).
pub fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// `raw` as a string, if it is one (with valid escapes).
pub fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str(raw.get()).ok()
}
