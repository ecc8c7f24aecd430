//! OTLP attribute values: text, numbers, resource identity. Every accessor is total:
//! a missing key, a wrong type or an absurd value gives `None`, never a panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use servescope_proto::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
use servescope_proto::otlp::resource::v1::Resource;

use super::ServiceKey;

/// Longest attribute value kept as text (longer ones are cut, with `…`).
pub const MAX_VALUE_CHARS: usize = 512;
/// Nesting depth rendered for array / kvlist values.
const MAX_DEPTH: usize = 4;

/// The value of the first attribute named `key`.
pub fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// A string attribute (other scalar types rendered as text), non-empty.
pub fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    let s = render(find(attrs, key)?, 0);
    (!s.is_empty()).then_some(s)
}

/// A number: double, int, or a string that parses; finite only.
pub fn float(attrs: &[KeyValue], key: &str) -> Option<f64> {
    let v = match find(attrs, key)? {
        Value::DoubleValue(d) => *d,
        Value::IntValue(i) => *i as f64,
        Value::StringValue(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    v.is_finite().then_some(v)
}

/// A non-negative integer: int, integral double, or a string that parses.
pub fn count(attrs: &[KeyValue], key: &str) -> Option<u64> {
    match find(attrs, key)? {
        Value::IntValue(i) => u64::try_from(*i).ok(),
        Value::DoubleValue(d) if d.is_finite() && *d >= 0.0 && d.fract() == 0.0 => {
            (*d < u64::MAX as f64).then_some(*d as u64)
        }
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Any value as bounded text: bytes as hex, arrays as `[a,b]`, kvlists as `{k=v}`.
pub fn render(v: &Value, depth: usize) -> String {
    let mut s = match v {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BytesValue(b) => hex(b),
        Value::ArrayValue(a) if depth < MAX_DEPTH => {
            let parts: Vec<String> = a.values.iter().map(|x| any(x, depth + 1)).collect();
            format!("[{}]", parts.join(","))
        }
        Value::KvlistValue(l) if depth < MAX_DEPTH => {
            let parts: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    let v = kv
                        .value
                        .as_ref()
                        .map_or(String::new(), |x| any(x, depth + 1));
                    format!("{}={v}", kv.key)
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::ArrayValue(_) | Value::KvlistValue(_) => "…".to_string(),
    };
    truncate(&mut s, MAX_VALUE_CHARS);
    s
}

fn any(v: &AnyValue, depth: usize) -> String {
    v.value.as_ref().map_or(String::new(), |x| render(x, depth))
}

/// Cuts `s` to at most `max` chars (on a char boundary), marking the cut.
pub fn truncate(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
        s.push('…');
    }
}

/// Lowercase hex of an id (trace or span id); `None` when empty or all zero.
pub fn id_hex(b: &[u8]) -> Option<String> {
    (!b.is_empty() && b.iter().any(|&x| x != 0)).then(|| hex(&b[..b.len().min(64)]))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Up to `max` attributes as text, keys cut to [`MAX_VALUE_CHARS`].
pub fn to_map(attrs: &[KeyValue], max: usize, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for kv in attrs {
        if out.len() >= max {
            break;
        }
        if skip.contains(&kv.key.as_str()) {
            continue;
        }
        let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        let mut k = kv.key.clone();
        truncate(&mut k, MAX_VALUE_CHARS);
        out.insert(k, render(v, 0));
    }
    out
}

/// OTLP nanoseconds since the epoch → `i64`; 0 (unset) and out-of-range → `None`.
pub fn ns(t: u64) -> Option<i64> {
    if t == 0 {
        None
    } else {
        i64::try_from(t).ok()
    }
}

/// The service and clock host of a resource: `service.name` (else
/// `unknown_service`), and `host.name`, else `service.instance.id`, else the
/// sender's address (`peer`).
pub fn service_key(resource: Option<&Resource>, peer: Option<&str>) -> ServiceKey {
    let attrs: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
    let service = text(attrs, "service.name").unwrap_or_else(|| "unknown_service".to_string());
    let host = text(attrs, "host.name")
        .or_else(|| text(attrs, "service.instance.id"))
        .or_else(|| peer.map(str::to_string));
    ServiceKey { service, host }
}

/// The process a resource describes: vLLM's `vllm.process_name` /
/// `vllm.process_id`, else the semantic-convention `process.pid`.
pub fn process(resource: Option<&Resource>) -> Option<String> {
    let attrs: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
    let pid = text(attrs, "vllm.process_id").or_else(|| text(attrs, "process.pid"));
    match (text(attrs, "vllm.process_name"), pid) {
        (Some(n), Some(p)) => Some(format!("{n} pid={p}")),
        (Some(n), None) => Some(n),
        (None, Some(p)) => Some(format!("pid={p}")),
        (None, None) => None,
    }
}
