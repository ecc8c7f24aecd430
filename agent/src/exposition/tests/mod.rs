use std::collections::{BTreeMap, BTreeSet};

use servescope_proto::v1::{
    sample, Availability, CallCost, FieldError, GpuInfo, GpuProcess, GpuReading, GpuSample,
    HostInfo, HostSample, Inventory, NetInterfaceReading, RdmaDeviceInfo, RdmaDeviceReading,
    RdmaPortInfo, RdmaPortReading, RdmaSample, Sample, SelfSample,
};

use super::*;

mod cases;
mod fixture;

// ---------------------------------------------------------------------------------
// A small validator of the text format 0.0.4 (line grammar plus the rules promtool
// and the Prometheus parser enforce), used on everything render() produces.

#[derive(Debug)]
struct ParsedFamily {
    kind: String,
    help: bool,
    samples: Vec<(BTreeMap<String, String>, f64)>,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !s.starts_with("__")
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.contains("inf") || s.contains("nan") => Err(format!("bad value {s:?}")),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// Parses `{a="x",b="y"} rest` → (labels, rest).
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut s) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let name = &s[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        s = &s[end + 1..];
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after label value".into());
        }
    }
}

fn check_help_text(t: &str) -> Result<(), String> {
    let mut it = t.chars();
    while let Some(c) = it.next() {
        if c == '\\' && !matches!(it.next(), Some('\\' | 'n')) {
            return Err("bad escape in HELP".into());
        }
    }
    Ok(())
}

/// Validates `text`; returns the families in order.
fn validate(text: &str) -> Result<Vec<(String, ParsedFamily)>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("output does not end with a newline".into());
    }
    let mut fams: Vec<(String, ParsedFamily)> = Vec::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or_else(|| err("no help".into()))?;
            if !is_name(name) {
                return Err(err("bad name".into()));
            }
            check_help_text(help).map_err(err)?;
            if fams.iter().any(|(f, _)| f == name) {
                return Err(err("second HELP for family".into()));
            }
            if let Some((prev, _)) = fams.last() {
                closed.insert(prev.clone());
            }
            fams.push((
                name.to_string(),
                ParsedFamily {
                    kind: String::new(),
                    help: true,
                    samples: vec![],
                },
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| err("no type".into()))?;
            if !matches!(
                kind,
                "counter" | "gauge" | "histogram" | "summary" | "untyped"
            ) {
                return Err(err("bad type".into()));
            }
            let Some((cur, f)) = fams.last_mut() else {
                return Err(err("TYPE without HELP".into()));
            };
            if cur != name {
                return Err(err("TYPE does not follow its HELP".into()));
            }
            if !f.kind.is_empty() {
                return Err(err("second TYPE".into()));
            }
            if !f.samples.is_empty() {
                return Err(err("TYPE after samples".into()));
            }
            f.kind = kind.to_string();
        } else if line.starts_with('#') {
            return Err(err("unexpected comment".into()));
        } else {
            let end = line
                .find(['{', ' '])
                .ok_or_else(|| err("no value".into()))?;
            let name = &line[..end];
            if !is_name(name) {
                return Err(err("bad metric name".into()));
            }
            let (labels, rest) = parse_labels(&line[end..]).map_err(err)?;
            let rest = rest
                .strip_prefix(' ')
                .ok_or_else(|| err("no space".into()))?;
            let mut parts = rest.split(' ');
            let value = parse_value(parts.next().unwrap_or("")).map_err(err)?;
            if let Some(ts) = parts.next() {
                ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
            }
            if parts.next().is_some() {
                return Err(err("trailing fields".into()));
            }
            if closed.contains(name) {
                return Err(err("family is not contiguous".into()));
            }
            let Some((cur, f)) = fams.last_mut() else {
                return Err(err("sample before any HELP/TYPE".into()));
            };
            if cur != name {
                return Err(err(format!("sample outside its family (current: {cur})")));
            }
            if f.kind.is_empty() {
                return Err(err("sample before TYPE".into()));
            }
            if f.samples.iter().any(|(l, _)| *l == labels) {
                return Err(err("label set repeated in family".into()));
            }
            f.samples.push((labels, value));
        }
    }
    for (name, f) in &fams {
        if !f.help || f.kind.is_empty() {
            return Err(format!("{name}: missing HELP or TYPE"));
        }
        if f.samples.is_empty() {
            return Err(format!("{name}: family without samples"));
        }
        match f.kind.as_str() {
            "counter" if !name.ends_with("_total") => {
                return Err(format!("{name}: counter without _total"));
            }
            "gauge" if name.ends_with("_total") => {
                return Err(format!("{name}: gauge with _total"));
            }
            _ => {}
        }
        if f.samples.iter().any(|(_, v)| v.is_nan()) {
            return Err(format!("{name}: NaN value"));
        }
    }
    Ok(fams)
}

fn family<'a>(fams: &'a [(String, ParsedFamily)], name: &str) -> Option<&'a ParsedFamily> {
    fams.iter().find(|(n, _)| n == name).map(|(_, f)| f)
}

#[test]
fn validator_rejects_bad_text() {
    let bad = [
        "x 1\n",
        "# HELP a h\n# TYPE a gauge\na 1",
        "# HELP a h\n# TYPE a gauge\na 1\n# HELP a h\n",
        "# HELP a h\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"\\q\"} 1\n",
        "# HELP a h\n# TYPE a gauge\na{x=\"\"\"} 1\n",
        "# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 1\na 2\n",
        "# HELP a_total h\n# TYPE a_total gauge\na_total 1\n",
        "# HELP a h\n# TYPE a counter\na 1\n",
        "# HELP a h\n# TYPE a gauge\na NaN\n",
        "# HELP a h\n# TYPE a gauge\na inf\n",
        "# HELP a h\n# TYPE a gauge\n",
        "# HELP a h\n# TYPE a gauge\nb 1\n",
    ];
    for b in bad {
        assert!(validate(b).is_err(), "accepted: {b:?}");
    }
    assert!(validate("# HELP a h\\n\n# TYPE a gauge\na{x=\"\\\\\\\"\\n\"} -1.5e3 123\n").is_ok());
}
