//! What the log parser finds in a log's lines, handed to [`super::assemble`].

use std::collections::HashMap;

use super::line::Proc;
use super::options::ParseOptions;
use super::patterns::Event;

/// A recognised line.
#[derive(Debug, Clone)]
pub struct Hit {
    pub event: Event,
    /// Index into [`PATTERNS`](super::patterns::PATTERNS).
    pub pattern: usize,
    /// 1-based line number.
    pub line: usize,
    /// The process that wrote it (innermost prefix).
    pub proc: Option<Proc>,
    pub ts_ns: Option<i64>,
    /// The line had no timestamp; `ts_ns` is the next timestamped line of its process.
    pub ts_inferred: bool,
    pub nums: Vec<f64>,
    pub texts: Vec<String>,
}

/// Everything one log's lines yielded, ready to become phases.
pub(super) struct Found<'a> {
    pub(super) hits: &'a [Hit],
    /// Rank of each process id, when a line told it.
    pub(super) ranks: &'a HashMap<u64, String>,
    /// Earliest timestamp in the log, and its line.
    pub(super) first: Option<(i64, usize)>,
    /// Earliest timestamp of the LLMServer replica actor, and its line.
    pub(super) actor: Option<(i64, usize)>,
    pub(super) opts: &'a ParseOptions,
}
