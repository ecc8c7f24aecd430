//! A key that may be absent, `null` or hold a value, and `request_rate`'s two shapes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A key that may be absent, `null`, or hold a value; absent keys are not written.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    /// The key is not in the file.
    #[default]
    Absent,
    /// The key is `null`.
    Null,
    /// The key holds a value.
    Value(T),
}

impl<T> Field<T> {
    /// Whether the key is absent (then it is not serialised).
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }
    /// The value, if any.
    pub fn get(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
    /// `Some(v)` → value, `None` → `null`.
    pub fn from_option(v: Option<T>) -> Field<T> {
        v.map_or(Field::Null, Field::Value)
    }
}

impl<T: Copy> Field<T> {
    /// The value, if any, by copy.
    pub fn value(&self) -> Option<T> {
        self.get().copied()
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Field::from_option(Option::<T>::deserialize(d)?))
    }
}

/// `request_rate`: a number, or the string `"inf"` (vLLM 0.11 may also write a huge
/// float such as `1e9` for "all at once").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestRate {
    /// Requests per second.
    Rate(f64),
    /// Text, normally `"inf"`.
    Text(String),
}

impl RequestRate {
    /// Requests per second (`inf` for `"inf"` and unparsable text).
    pub fn as_f64(&self) -> f64 {
        match self {
            RequestRate::Rate(r) => *r,
            RequestRate::Text(t) => t.parse().unwrap_or(f64::INFINITY),
        }
    }
}
