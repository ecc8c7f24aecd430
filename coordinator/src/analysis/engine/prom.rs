//! A parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0, as
//! served by vLLM's `/metrics` (prometheus_client) and re-exported by Ray Serve.
//!
//! It never fails a scrape: a malformed line is skipped and recorded in
//! [`Exposition::errors`]; [`ParseLimits`] bounds what one body may cost. Metric
//! names are canonicalised ([`canonical`]) so that Ray's re-exported names and
//! vLLM's own look the same to every lookup.
//!
//! Depends on std and thiserror only: the fuzz target compiles this file in by path.

use std::collections::{BTreeMap, BTreeSet};

use super::lex::{
    clip, is_metric_name, is_name_byte, parse_value, split_word, unescape_help, Cursor,
};

/// What one exposition may cost. Anything over a limit is recorded as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Samples kept; later samples are dropped (one error each). Families are
    /// bounded by the same number.
    pub max_samples: usize,
    /// Longer lines are skipped whole.
    pub max_line_bytes: usize,
    /// Labels per sample (and per exemplar).
    pub max_labels: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_samples: 200_000,
            max_line_bytes: 64 << 10,
            max_labels: 64,
        }
    }
}

/// How many line errors [`Exposition::errors`] keeps (all are counted).
pub const MAX_KEPT_ERRORS: usize = 32;

/// The metric type a `# TYPE` line declares (`Untyped` when none did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Untyped,
    Unknown,
}

impl MetricKind {
    fn parse(s: &str) -> Option<MetricKind> {
        Some(match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" => MetricKind::Histogram,
            "gaugehistogram" => MetricKind::GaugeHistogram,
            "summary" => MetricKind::Summary,
            "info" => MetricKind::Info,
            "stateset" => MetricKind::StateSet,
            "untyped" => MetricKind::Untyped,
            "unknown" => MetricKind::Unknown,
            _ => return None,
        })
    }

    /// Whether a sample named family + `suffix` belongs to a family of this kind.
    /// A counter accepts its own name too: Prometheus 0.0.4 declares `x_total`.
    fn allows(self, suffix: &str) -> bool {
        let ok: &[&str] = match self {
            MetricKind::Counter => &["", "_total", "_created"],
            MetricKind::Histogram => &["_bucket", "_sum", "_count", "_created"],
            MetricKind::GaugeHistogram => &["_bucket", "_gsum", "_gcount", "_sum", "_count"],
            MetricKind::Summary => &["", "_sum", "_count", "_created"],
            MetricKind::Info => &["_info", ""],
            _ => &[""],
        };
        ok.contains(&suffix)
    }
}

/// Every suffix a sample name may carry beyond its family's name.
const SUFFIXES: [&str; 8] = [
    "_total", "_created", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info",
];

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Canonical sample name ([`canonical`]), e.g. `vllm:prompt_tokens_total`.
    pub name: String,
    /// Labels in exposition order, values unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carried a timestamp.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when every `(label, value)` pair of `filter` is on this sample.
    pub fn matches(&self, filter: &[(&str, &str)]) -> bool {
        filter.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// A metric family: its declared type, help text and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub kind: MetricKind,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// One parsed `/metrics` body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Keyed by canonical family name: the `# TYPE` name (`vllm:prompt_tokens_total`
    /// in 0.0.4, `vllm:prompt_tokens` in OpenMetrics), or an undeclared sample's name.
    pub families: BTreeMap<String, Family>,
    /// Samples kept.
    pub samples_total: usize,
    /// The first [`MAX_KEPT_ERRORS`] skipped lines.
    pub errors: Vec<LineError>,
    /// Every skipped line (and every sample over the limit).
    pub errors_total: usize,
}

/// vLLM's name for a metric however it was exported: Ray Serve replaces
/// `[^a-zA-Z0-9_]` by `_` and prefixes `ray_`, so `ray_vllm_nixl_xfer_time_seconds`
/// and `vllm_nixl_xfer_time_seconds` are both `vllm:nixl_xfer_time_seconds`.
/// Other names are returned unchanged.
pub fn canonical(name: &str) -> String {
    let rest = name.strip_prefix("ray_").unwrap_or(name);
    match rest.strip_prefix("vllm_") {
        Some(tail) => format!("vllm:{tail}"),
        None => name.to_string(),
    }
}

impl Exposition {
    /// The family `name` (canonicalised); a counter is found under either of its
    /// names (`x` or `x_total`).
    pub fn family(&self, name: &str) -> Option<&Family> {
        let c = canonical(name);
        self.families
            .get(&c)
            .or_else(|| match c.strip_suffix("_total") {
                Some(base) => self.families.get(base),
                None => self.families.get(&format!("{c}_total")),
            })
    }

    /// Every sample named `sample_name` (canonicalised), whichever family holds it.
    pub fn samples_named<'a>(&'a self, sample_name: &str) -> impl Iterator<Item = &'a Sample> {
        let name = canonical(sample_name);
        let mut fams: Vec<&'a Family> = self.families.get(&name).into_iter().collect();
        for suffix in SUFFIXES {
            if let Some(f) = name
                .strip_suffix(suffix)
                .and_then(|base| self.families.get(base))
            {
                fams.push(f);
            }
        }
        fams.into_iter()
            .flat_map(|f| f.samples.iter())
            .filter(move |s| s.name == name)
    }

    /// Sum of the samples named `sample_name` that match `filter` (other labels are
    /// summed over); `None` when there is none.
    pub fn value(&self, sample_name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        self.samples_named(sample_name)
            .filter(|s| s.matches(filter))
            .map(|s| s.value)
            .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
    }

    /// The distinct values of `label` across family `family`'s samples, sorted.
    pub fn label_values(&self, family: &str, label: &str) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .family(family)
            .into_iter()
            .flat_map(|f| f.samples.iter())
            .filter_map(|s| s.label(label))
            .collect();
        set.into_iter().map(str::to_string).collect()
    }

    fn error(&mut self, line: usize, message: String) {
        self.errors_total += 1;
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(LineError { line, message });
        }
    }
}

/// Parses one exposition. OpenMetrics (it has a `# EOF` line) reads timestamps as
/// seconds, 0.0.4 as milliseconds. Never fails: see [`Exposition::errors`].
pub fn parse(text: &str, limits: ParseLimits) -> Exposition {
    let openmetrics = text.split('\n').any(|l| l.trim() == "# EOF");
    let mut p = Parser {
        out: Exposition::default(),
        limits,
        openmetrics,
        current: None,
        typed: BTreeSet::new(),
    };
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.len() > limits.max_line_bytes {
            p.out.error(
                n,
                format!("line longer than {} bytes", limits.max_line_bytes),
            );
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed == "# EOF" {
            if text.split('\n').skip(n).any(|l| !l.trim().is_empty()) {
                p.out.error(n + 1, "content after # EOF ignored".into());
            }
            break;
        }
        let result = match trimmed.strip_prefix('#') {
            Some(comment) => p.comment(comment),
            None => p.sample(trimmed),
        };
        if let Err(message) = result {
            p.out.error(n, message);
        }
    }
    p.out
}

struct Parser {
    out: Exposition,
    limits: ParseLimits,
    openmetrics: bool,
    /// Family of the last HELP/TYPE line.
    current: Option<String>,
    /// Families that had a TYPE line.
    typed: BTreeSet<String>,
}

impl Parser {
    /// `# HELP`, `# TYPE`; other comments (`# UNIT`, free text) are ignored.
    fn comment(&mut self, rest: &str) -> Result<(), String> {
        let rest = rest.trim_start();
        let (keyword, rest) = split_word(rest);
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        let (name, arg) = split_word(rest);
        if !is_metric_name(name) {
            return Err(format!("bad metric name in {keyword}: {}", clip(name)));
        }
        let name = canonical(name);
        if keyword == "TYPE" {
            let kind = MetricKind::parse(arg.trim())
                .ok_or_else(|| format!("unknown metric type {}", clip(arg.trim())))?;
            if self.typed.contains(&name) {
                return Err(format!("second TYPE line for {}", clip(&name)));
            }
            self.family_mut(&name)?.kind = kind;
            self.typed.insert(name.clone());
        } else {
            self.family_mut(&name)?.help = Some(unescape_help(arg));
        }
        self.current = Some(name);
        Ok(())
    }

    fn family_mut(&mut self, name: &str) -> Result<&mut Family, String> {
        if !self.out.families.contains_key(name) {
            if self.out.families.len() >= self.limits.max_samples {
                return Err(format!(
                    "family limit ({}) reached",
                    self.limits.max_samples
                ));
            }
            self.out.families.insert(
                name.to_string(),
                Family {
                    kind: MetricKind::Untyped,
                    help: None,
                    samples: Vec::new(),
                },
            );
        }
        self.out
            .families
            .get_mut(name)
            .ok_or_else(|| "family vanished".to_string())
    }

    /// The family a sample named `name` belongs to.
    fn family_of(&self, name: &str) -> String {
        let fits = |fam: &str| {
            self.out.families.get(fam).is_some_and(|f| {
                name.strip_prefix(fam)
                    .is_some_and(|suffix| f.kind.allows(suffix))
            })
        };
        if let Some(cur) = self.current.as_deref().filter(|c| fits(c)) {
            return cur.to_string();
        }
        if self.out.families.contains_key(name) {
            return name.to_string();
        }
        SUFFIXES
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|base| fits(base))
            .unwrap_or(name)
            .to_string()
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        if self.out.samples_total >= self.limits.max_samples {
            return Err(format!(
                "sample limit ({}) reached",
                self.limits.max_samples
            ));
        }
        let mut c = Cursor { s: line, i: 0 };
        let raw_name = c.take_while(is_name_byte);
        if raw_name.is_empty() {
            return Err(format!("bad sample line: {}", clip(line)));
        }
        let labels = if c.peek() == Some(b'{') {
            c.labels(self.limits.max_labels)?
        } else {
            Vec::new()
        };
        c.spaces(true)?;
        let value = parse_value(c.word())?;
        let mut timestamp_ms = None;
        if c.spaces(false).is_ok() && c.peek().is_some_and(|b| b != b'#') {
            timestamp_ms = Some(self.timestamp(c.word())?);
            let _ = c.spaces(false);
        }
        if c.peek() == Some(b'#') {
            c.i += 1;
            c.spaces(true)?;
            if c.peek() != Some(b'{') {
                return Err("exemplar without labels".into());
            }
            c.labels(self.limits.max_labels)?;
            c.spaces(true)?;
            parse_value(c.word())?;
            if c.spaces(false).is_ok() && !c.at_end() {
                parse_value(c.word())?;
            }
        }
        c.spaces(false).ok();
        if !c.at_end() {
            return Err(format!("trailing text: {}", clip(&line[c.i..])));
        }
        let name = canonical(raw_name);
        let fam = self.family_of(&name);
        self.family_mut(&fam)?.samples.push(Sample {
            name,
            labels,
            value,
            timestamp_ms,
        });
        self.out.samples_total += 1;
        Ok(())
    }

    fn timestamp(&self, w: &str) -> Result<i64, String> {
        let bad = || format!("bad timestamp {}", clip(w));
        if self.openmetrics {
            let s: f64 = w.parse().map_err(|_| bad())?;
            let ms = (s * 1000.0).round();
            if !ms.is_finite() || ms.abs() >= 9.0e18 {
                return Err(bad());
            }
            Ok(ms as i64)
        } else {
            w.parse().map_err(|_| bad())
        }
    }
}
