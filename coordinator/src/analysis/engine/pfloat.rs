//! Serde for floats that may be `NaN`/`±Inf` (JSON has no such numbers): those
//! are written as Prometheus spells them (`"+Inf"`), finite ones as numbers.

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Num(f64),
    Text(String),
}

fn to_repr(v: f64) -> Repr {
    match v {
        v if v.is_finite() => Repr::Num(v),
        v if v.is_nan() => Repr::Text("NaN".into()),
        v if v > 0.0 => Repr::Text("+Inf".into()),
        _ => Repr::Text("-Inf".into()),
    }
}

fn from_repr(r: Repr) -> Result<f64, String> {
    match r {
        Repr::Num(v) => Ok(v),
        Repr::Text(s) => s.parse().map_err(|_| format!("not a number: {s:?}")),
    }
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    to_repr(*v).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    from_repr(Repr::deserialize(d)?).map_err(D::Error::custom)
}

pub mod pairs {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let r: Vec<(Repr, Repr)> = v.iter().map(|&(a, b)| (to_repr(a), to_repr(b))).collect();
        r.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        Vec::<(Repr, Repr)>::deserialize(d)?
            .into_iter()
            .map(|(a, b)| Ok((from_repr(a)?, from_repr(b)?)))
            .collect::<Result<_, String>>()
            .map_err(D::Error::custom)
    }
}
