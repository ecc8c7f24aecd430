//! NIXL's own telemetry as its `telemetry_reader` prints it: one shared-memory
//! buffer per NIXL agent (`NIXL_TELEMETRY_DIR/<agent name>`), read into events and
//! summed up per buffer: counts and sums per event name, transfer and post times
//! (µs) with percentiles and a decade histogram, error counts by status, dropped
//! events. Pure: the text comes from [`super::telemetry_read`].
//!
//! The reader prints a header, then one block per event:
//!
//! ```text
//! Successfully opened telemetry buffer (version: 4)
//! Buffer capacity: 4096 events
//!
//! === NIXL Telemetry Event ===
//! Event name: agent_xfer_time
//! Value: 214569
//! ===========================
//! ```
//!
//! (other NIXL releases add `Timestamp:` and `Category:` lines and say `Event:`).
//! Anything else is refused with the line it is on.

use std::collections::BTreeMap;

use crate::stats::percentile;

/// Bytes of reader output accepted (4096 events print ~400 KiB).
pub const MAX_BYTES: usize = 16 << 20;
/// Lines of reader output accepted.
pub const MAX_LINES: usize = 1 << 20;
/// Longest event name accepted.
const MAX_NAME: usize = 128;
/// Upper bounds (µs, exclusive) of the histogram's decades; the last bucket is open.
pub const DECADES_US: [u64; 5] = [10, 100, 1_000, 10_000, 100_000];

const OPEN: &str = "=== NIXL Telemetry Event ===";

/// Why a reader output is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry reader output over {0} bytes")]
    TooLarge(usize),
    #[error("telemetry reader output over {0} lines")]
    TooManyLines(usize),
    #[error("telemetry reader output, line {line}: {why}: `{text}`")]
    Bad {
        line: usize,
        why: &'static str,
        text: String,
    },
    #[error("telemetry reader output ends inside the event opened on line {0}")]
    Unterminated(usize),
}

/// One event of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub value: u64,
}

/// A reader's output as data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderOutput {
    /// The buffer's format version and capacity (events), as the reader says.
    pub version: Option<u32>,
    pub capacity: Option<u64>,
    pub events: Vec<Event>,
    /// The output was cut inside an event (the reader was stopped while printing
    /// it): that event is left out.
    pub partial_tail: bool,
}

fn bad(line: usize, why: &'static str, text: &str) -> TelemetryError {
    TelemetryError::Bad {
        line,
        why,
        text: text.chars().take(120).collect(),
    }
}

/// Header and trailer lines the reader prints outside events.
fn is_known_outside(l: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Telemetry path: ",
        "Opening telemetry buffer: ",
        "Press Ctrl+C to stop reading telemetry",
        "Total events read: ",
        "Final buffer size: ",
        "Received Ctrl+C",
    ];
    PREFIXES.iter().any(|p| l.starts_with(p))
}

/// `(version: N)` of the "Successfully opened" line.
fn version_of(l: &str) -> Option<Option<u32>> {
    let rest = l.strip_prefix("Successfully opened telemetry buffer")?;
    Some(
        rest.trim()
            .strip_prefix("(version: ")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|v| v.trim().parse().ok()),
    )
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= MAX_NAME && n.bytes().all(|b| b.is_ascii_graphic())
}

/// The event being read: its first line and what it said so far.
struct Open {
    line: usize,
    name: Option<String>,
    value: Option<u64>,
}

/// Parses a reader's output. `complete`: the reader exited by itself; when it was
/// stopped (it waits for events forever), an event cut at the end is left out and
/// `partial_tail` says so.
pub fn parse(text: &str, complete: bool) -> Result<ReaderOutput, TelemetryError> {
    if text.len() > MAX_BYTES {
        return Err(TelemetryError::TooLarge(MAX_BYTES));
    }
    let mut out = ReaderOutput::default();
    let mut open: Option<Open> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if n > MAX_LINES {
            return Err(TelemetryError::TooManyLines(MAX_LINES));
        }
        let l = raw.trim_end();
        match open.as_mut() {
            None => {
                if l.is_empty() || is_known_outside(l) {
                } else if l == OPEN {
                    open = Some(Open {
                        line: n,
                        name: None,
                        value: None,
                    });
                } else if let Some(v) = version_of(l) {
                    out.version = Some(v.ok_or_else(|| bad(n, "no version number", l))?);
                } else if let Some(c) = l.strip_prefix("Buffer capacity: ") {
                    let c = c.strip_suffix(" events").unwrap_or(c);
                    out.capacity = Some(c.parse().map_err(|_| bad(n, "bad capacity", l))?);
                } else {
                    return Err(bad(n, "not a line the telemetry reader prints", l));
                }
            }
            Some(ev) => {
                if l.len() >= 3 && l.bytes().all(|b| b == b'=') {
                    let (Some(name), Some(value)) = (ev.name.take(), ev.value.take()) else {
                        return Err(bad(n, "event without a name or a value", l));
                    };
                    out.events.push(Event { name, value });
                    open = None;
                } else if let Some(name) = l
                    .strip_prefix("Event name: ")
                    .or_else(|| l.strip_prefix("Event: "))
                {
                    if ev.name.is_some() {
                        return Err(bad(n, "a second event name", l));
                    }
                    if !valid_name(name) {
                        return Err(bad(n, "bad event name", l));
                    }
                    ev.name = Some(name.to_string());
                } else if let Some(v) = l.strip_prefix("Value: ") {
                    if ev.value.is_some() {
                        return Err(bad(n, "a second value", l));
                    }
                    ev.value = Some(v.parse().map_err(|_| bad(n, "bad value", l))?);
                } else if l.starts_with("Timestamp: ") || l.starts_with("Category: ") {
                } else {
                    return Err(bad(n, "not a line of an event", l));
                }
            }
        }
    }
    if let Some(ev) = open {
        if complete {
            return Err(TelemetryError::Unterminated(ev.line));
        }
        out.partial_tail = true;
    }
    Ok(out)
}

/// Count and sum of one event name's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameStat {
    pub count: u64,
    pub sum: u64,
}

/// A time series (µs): count, average, percentiles, maximum and a decade histogram
/// (bucket i counts values below `DECADES_US[i]`, the last one the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Times {
    pub count: u64,
    pub avg_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub decades: [u64; 6],
}

impl Times {
    fn of(mut v: Vec<u64>) -> Times {
        v.sort_unstable();
        let mut decades = [0u64; 6];
        for &x in &v {
            let i = DECADES_US.iter().position(|&b| x < b).unwrap_or(5);
            decades[i] += 1;
        }
        let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
        Times {
            count: v.len() as u64,
            avg_us: if v.is_empty() {
                0.0
            } else {
                sum as f64 / v.len() as f64
            },
            p50_us: percentile(&v, 50.0).unwrap_or(0),
            p99_us: percentile(&v, 99.0).unwrap_or(0),
            max_us: v.last().copied().unwrap_or(0),
            decades,
        }
    }
}

/// One buffer summed up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub version: Option<u32>,
    pub capacity: Option<u64>,
    pub events: u64,
    pub partial_tail: bool,
    pub by_name: BTreeMap<String, NameStat>,
    /// `agent_xfer_time` and `agent_xfer_post_time`.
    pub xfer: Times,
    pub post: Times,
    /// Error events by status (`backend`, `remote_disconnect`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Events NIXL could not buffer (`agent_telemetry_events_dropped`).
    pub dropped: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub tx_requests: u64,
    pub rx_requests: u64,
}

impl Summary {
    pub fn error_total(&self) -> u64 {
        self.errors.values().fold(0u64, |a, &c| a.saturating_add(c))
    }
}

/// NIXL's statuses by their negative code (`agent_error` events carry the code).
const STATUSES: [&str; 12] = [
    "not_posted",
    "invalid_param",
    "backend",
    "not_found",
    "mismatch",
    "not_allowed",
    "repost_active",
    "unknown",
    "not_supported",
    "remote_disconnect",
    "canceled",
    "no_telemetry",
];

/// The status an error event names, and how many errors it counts.
fn error_of(e: &Event) -> Option<(String, u64)> {
    if let Some(s) = e.name.strip_prefix("agent_err_") {
        return Some((s.to_string(), e.value));
    }
    if let Some(s) = e.name.strip_prefix("NIXL_ERR_") {
        return Some((s.to_ascii_lowercase(), e.value.max(1)));
    }
    if e.name == "agent_error" {
        let code = e.value as i64;
        let name = usize::try_from(-code)
            .ok()
            .and_then(|i| STATUSES.get(i.wrapping_sub(1)))
            .map_or_else(|| format!("status {code}"), |s| s.to_string());
        return Some((name, 1));
    }
    None
}

/// Sums up a parsed buffer.
pub fn summarize(out: &ReaderOutput) -> Summary {
    let mut s = Summary {
        version: out.version,
        capacity: out.capacity,
        events: out.events.len() as u64,
        partial_tail: out.partial_tail,
        ..Default::default()
    };
    let (mut xfer, mut post) = (Vec::new(), Vec::new());
    for e in &out.events {
        let st = s.by_name.entry(e.name.clone()).or_default();
        st.count += 1;
        st.sum = st.sum.saturating_add(e.value);
        let add = |a: &mut u64| *a = a.saturating_add(e.value);
        match e.name.as_str() {
            "agent_xfer_time" => xfer.push(e.value),
            "agent_xfer_post_time" => post.push(e.value),
            "agent_tx_bytes" => add(&mut s.tx_bytes),
            "agent_rx_bytes" => add(&mut s.rx_bytes),
            "agent_tx_requests_num" => add(&mut s.tx_requests),
            "agent_rx_requests_num" => add(&mut s.rx_requests),
            "agent_telemetry_events_dropped" => add(&mut s.dropped),
            _ => {
                if let Some((status, n)) = error_of(e) {
                    let c = s.errors.entry(status).or_default();
                    *c = c.saturating_add(n);
                }
            }
        }
    }
    s.xfer = Times::of(xfer);
    s.post = Times::of(post);
    s
}

#[cfg(test)]
#[path = "telemetry_tests.rs"]
mod tests;
