//! Reads a vLLM / Ray Serve LLM log line by line (bounded line length, lossy UTF-8),
//! keeps the lines the pattern tables recognise, drops Ray's echoes of lines already
//! seen, resolves timestamps and picks the pattern table; [`super::assemble`] turns
//! the hits into phases.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::assemble;
use super::error::StartupError;
use super::hits::{Found, Hit};
use super::line;
use super::options::ParseOptions;
use super::patterns::{self, Cap, Event, Table, PATTERNS, TABLES};
use super::phase::Timeline;
use super::unplaced::{states_duration, Unplaced, UnplacedLines};

/// Lines longer than this are skipped (and counted).
pub const MAX_LINE: usize = 64 * 1024;

/// The result of parsing one log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogParse {
    /// File name or label.
    pub name: String,
    /// The pattern table used, e.g. `vllm-0.10..0.11`.
    pub table: String,
    /// Why that table: the engine's version, or the most version-specific matches.
    pub table_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub lines: usize,
    pub recognised_lines: usize,
    pub duplicates_dropped: usize,
    pub long_lines_skipped: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Engine lines recognised but not placed (count, and the first ones).
    #[serde(default)]
    pub unplaced_lines: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unplaced: Vec<Unplaced>,
    pub timeline: Timeline,
}

/// Streaming state: feed lines, then [`LogParser::finish`].
pub struct LogParser {
    opts: ParseOptions,
    line_no: usize,
    year: i32,
    last_month: u32,
    seen: HashSet<u64>,
    hits: Vec<Hit>,
    /// Untimed hits (index, latest time of their process so far) awaiting a time.
    pending: HashMap<u64, Vec<(usize, Option<i64>)>>,
    last_ts: HashMap<u64, i64>,
    first: Option<(i64, usize)>,
    actor: Option<(i64, usize)>,
    ranks: HashMap<u64, String>,
    long_lines: usize,
    duplicates: usize,
    bad_stamps: usize,
    unplaced: UnplacedLines,
    /// The message of each line that some pattern matched.
    hit_msgs: HashMap<usize, String>,
}

fn key(pid: u64, ts: Option<i64>, msg: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (pid, ts, msg).hash(&mut h);
    h.finish()
}

impl LogParser {
    pub fn new(opts: ParseOptions) -> LogParser {
        LogParser {
            year: opts.year,
            opts,
            line_no: 0,
            last_month: 0,
            seen: HashSet::new(),
            hits: Vec::new(),
            pending: HashMap::new(),
            last_ts: HashMap::new(),
            first: None,
            actor: None,
            ranks: HashMap::new(),
            long_lines: 0,
            duplicates: 0,
            bad_stamps: 0,
            unplaced: UnplacedLines::default(),
            hit_msgs: HashMap::new(),
        }
    }

    /// Counts a line that was too long to read.
    pub fn skip_long_line(&mut self) {
        self.line_no += 1;
        self.long_lines += 1;
    }

    /// One line (without its newline).
    pub fn push_line(&mut self, raw: &str) {
        self.line_no += 1;
        if raw.len() > MAX_LINE {
            self.long_lines += 1;
            return;
        }
        let n = self.line_no;
        let parsed = line::parse(raw);
        let proc = parsed.procs.last().cloned();
        let pid = proc.as_ref().map_or(0, |p| p.pid);
        let ts = parsed.stamp.map(|s| {
            // A log spanning New Year: December then January.
            if self.last_month == 12 && s.month == 1 {
                self.year = self.year.saturating_add(1);
            }
            self.last_month = s.month;
            s.to_ns(self.year, self.opts.utc_offset_s)
        });
        if parsed.level.is_some() && ts.is_none() {
            self.bad_stamps += 1;
        }
        let msg = parsed.message.as_str();
        // Ray echoes worker lines through the engine core with more prefixes, and
        // prints some twice: same process, same time, same words is the same line.
        if (pid != 0 || ts.is_some()) && !self.seen.insert(key(pid, ts, msg)) {
            self.duplicates += 1;
            return;
        }
        if let Some(t) = ts {
            if self.first.is_none_or(|(f, _)| t < f) {
                self.first = Some((t, n));
            }
            let actor = parsed
                .procs
                .first()
                .is_some_and(|p| p.name.contains("LLMServer"));
            if actor && self.actor.is_none_or(|(a, _)| t < a) {
                self.actor = Some((t, n));
            }
            // An untimed line takes the time of its process's next line (not of a
            // late echo of an earlier one).
            if let Some(pend) = self.pending.get_mut(&pid) {
                pend.retain(|&(i, floor)| {
                    if floor.is_some_and(|f| t < f) {
                        return true;
                    }
                    if let Some(h) = self.hits.get_mut(i) {
                        h.ts_ns = Some(t);
                    }
                    false
                });
            }
            let last = self.last_ts.entry(pid).or_insert(t);
            *last = (*last).max(t);
        }
        if msg.contains(" in world size ") {
            if let Some(c) = patterns::find("rank {n} in world size {n}", msg) {
                if let Some(r) = c.first().and_then(Cap::num) {
                    self.ranks.insert(pid, format!("{r}"));
                }
            }
        }
        let mut matched = false;
        for (i, p) in PATTERNS.iter().enumerate() {
            let Some(caps) = patterns::find(p.template, msg) else {
                continue;
            };
            if !matched {
                matched = true;
                self.hit_msgs.insert(n, msg.to_string());
            }
            let mut nums = Vec::new();
            let mut texts = Vec::new();
            for c in caps {
                match c {
                    Cap::Num(v) => nums.push(v),
                    Cap::Text(t) => texts.push(t.to_string()),
                }
            }
            if p.event == Event::CacheDir {
                if let Some(r) = texts.first().and_then(|d| rank_from_dir(d)) {
                    self.ranks.entry(pid).or_insert(r);
                }
            }
            if ts.is_none() {
                let floor = self.last_ts.get(&pid).copied();
                self.pending
                    .entry(pid)
                    .or_default()
                    .push((self.hits.len(), floor));
            }
            self.hits.push(Hit {
                event: p.event,
                pattern: i,
                line: n,
                proc: proc.clone(),
                ts_ns: ts,
                ts_inferred: ts.is_none(),
                nums,
                texts,
            });
        }
        if !matched && parsed.level.is_some() && ts.is_some() && states_duration(msg) {
            self.unplaced
                .add(n, msg, "engine line with a duration no pattern knows");
        }
    }

    /// Resolves what is left, chooses the pattern table and builds the timeline.
    pub fn finish(mut self, name: &str) -> LogParse {
        // Untimed lines with no later line of their process: the last time seen.
        let last = self.hits.iter().filter_map(|h| h.ts_ns).max();
        for h in &mut self.hits {
            if h.ts_ns.is_none() {
                h.ts_ns = last;
            }
        }
        let version = self
            .hits
            .iter()
            .find(|h| h.event == Event::EngineConfig)
            .and_then(|h| h.texts.first().cloned());
        let (table, reason) = choose_table(&self.hits, version.as_deref());
        let admitted: HashSet<usize> = self
            .hits
            .iter()
            .filter(|h| table.admits(&PATTERNS[h.pattern]))
            .map(|h| h.line)
            .collect();
        let mut other_band: Vec<usize> = self
            .hits
            .iter()
            .map(|h| h.line)
            .filter(|l| !admitted.contains(l))
            .collect();
        other_band.dedup();
        for l in other_band {
            let msg = self.hit_msgs.get(&l).map_or("", String::as_str);
            let why = format!("wording of another release band than {}", table.name);
            self.unplaced.add(l, msg, &why);
        }
        self.unplaced.kept.sort_by_key(|u| u.line);
        self.hits.retain(|h| table.admits(&PATTERNS[h.pattern]));
        // One hit per (line, event): two wordings of one band can both match a line.
        let mut once = HashSet::new();
        self.hits.retain(|h| once.insert((h.line, h.event)));
        let mut warnings = Vec::new();
        if self.long_lines > 0 {
            warnings.push(format!(
                "{} line(s) longer than {} KiB skipped",
                self.long_lines,
                MAX_LINE / 1024
            ));
        }
        if self.bad_stamps > 0 {
            warnings.push(format!(
                "{} logger line(s) with an unreadable timestamp",
                self.bad_stamps
            ));
        }
        let recognised = self
            .hits
            .iter()
            .map(|h| h.line)
            .collect::<HashSet<_>>()
            .len();
        let model = assemble::model_name(&self.hits);
        let timeline = assemble::build(&Found {
            hits: &self.hits,
            ranks: &self.ranks,
            first: self.first,
            actor: self.actor,
            opts: &self.opts,
        });
        LogParse {
            name: name.to_string(),
            table: table.name.to_string(),
            table_reason: reason,
            engine_version: version,
            model,
            lines: self.line_no,
            recognised_lines: recognised,
            duplicates_dropped: self.duplicates,
            long_lines_skipped: self.long_lines,
            warnings,
            unplaced_lines: self.unplaced.count,
            unplaced: self.unplaced.kept,
            timeline,
        }
    }
}

fn rank_from_dir(dir: &str) -> Option<String> {
    let i = dir.find("/rank_")?;
    let r: String = dir[i + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!r.is_empty()).then_some(r)
}

fn choose_table(hits: &[Hit], version: Option<&str>) -> (&'static Table, String) {
    if let Some(t) = version.and_then(Table::for_version) {
        return (t, format!("engine version {}", version.unwrap_or_default()));
    }
    let specific = |i: usize| !TABLES.iter().all(|t| t.admits(&PATTERNS[i]));
    let mut best: Option<(&'static Table, usize)> = None;
    for t in TABLES {
        let n = hits
            .iter()
            .filter(|h| specific(h.pattern) && t.admits(&PATTERNS[h.pattern]))
            .map(|h| h.pattern)
            .collect::<HashSet<_>>()
            .len();
        // Ties go to the newer band (dev builds are usually recent).
        if best.is_none_or(|(_, b)| n >= b) {
            best = Some((t, n));
        }
    }
    let what = version.map_or("no engine version".to_string(), |v| {
        format!("engine version {v} is not a release")
    });
    match best {
        Some((t, n)) if n > 0 => (t, format!("{what}; {n} version-specific wording(s) match")),
        _ => {
            let t = TABLES.last().unwrap_or(&TABLES[0]);
            (
                t,
                format!("{what}; no version-specific wording, newest table"),
            )
        }
    }
}

/// Parses a log from a reader. Lines over [`MAX_LINE`] bytes are skipped and counted;
/// bytes that are not UTF-8 are replaced.
pub fn parse_reader<R: BufRead>(
    mut r: R,
    name: &str,
    opts: ParseOptions,
) -> Result<LogParse, StartupError> {
    let mut p = LogParser::new(opts);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = r.fill_buf().map_err(|e| StartupError::Read {
                name: name.to_string(),
                source: e,
            })?;
            if avail.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            if buf.len() + take > MAX_LINE {
                too_long = true;
            } else {
                buf.extend_from_slice(&avail[..take]);
            }
            r.consume(if done { take + 1 } else { take });
            if done {
                break;
            }
        }
        if !any {
            break;
        }
        if too_long {
            p.skip_long_line();
        } else {
            p.push_line(&String::from_utf8_lossy(&buf));
        }
    }
    Ok(p.finish(name))
}

/// Parses a log held in memory.
pub fn parse_str(text: &str, name: &str, opts: ParseOptions) -> LogParse {
    let mut p = LogParser::new(opts);
    for l in text.split('\n') {
        p.push_line(l);
    }
    if text.is_empty() || text.ends_with('\n') {
        // `split` yields a last empty piece that is not a line (the only piece of an
        // empty text).
        p.line_no = p.line_no.saturating_sub(1);
    }
    p.finish(name)
}

/// Parses a log file.
pub fn parse_file(path: &Path, opts: ParseOptions) -> Result<LogParse, StartupError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| StartupError::Read {
        name: name.clone(),
        source: e,
    })?;
    let short = path
        .file_name()
        .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
    parse_reader(std::io::BufReader::new(f), &short, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `startup_log` fuzz target: the empty text counted one line in
    /// memory and none from a reader.
    #[test]
    fn text_and_reader_count_the_same_lines() {
        for text in ["", "\n", "a", "a\n", "a\nb", "a\n\nb\n"] {
            let opts = ParseOptions::new(2026);
            let whole = parse_str(text, "t", opts.clone());
            let read = parse_reader(text.as_bytes(), "t", opts).unwrap();
            assert_eq!(whole, read, "{text:?}");
        }
        assert_eq!(parse_str("", "t", ParseOptions::new(2026)).lines, 0);
    }
}
