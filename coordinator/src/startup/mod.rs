//! Replica startup attribution: where the minutes between "scale from
//! zero" and the first answer go.
//!
//! * [`phase`]: the phase model every source produces ([`Phase`], [`Timeline`]).
//! * [`patterns`]: versioned wording tables for vLLM 0.10 → 0.33 startup lines,
//!   in the [`template`] syntax.
//! * [`logparse`]: the log source (vLLM / Ray Serve LLM terminal output).
//! * [`nvml`]: phases inferred from NVML samples, per GPU ([`gpus`]), merged into a
//!   waterfall where the logs have no line for them ([`nvml_merge`]).
//! * [`compare`]: the seed's per-model tables and a stacked-bar HTML page from many
//!   parsed logs ([`chart`] draws the bars).

pub mod agent_logs;
mod assemble;
pub mod chart;
pub mod compare;
pub mod gpus;
pub mod line;
pub mod logparse;
pub mod nvml;
pub mod nvml_check;
pub mod nvml_merge;
pub mod patterns;
pub mod phase;
mod ranks;
pub mod run;
pub mod template;

use std::path::Path;

pub use logparse::{parse_reader, parse_str, LogParse, LogParser};
pub use phase::{Phase, PhaseKind, Source, Timeline};

/// Startup errors.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("reading {name}: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("bad UTC offset {0:?} (expected +HH:MM or -HH:MM)")]
    BadOffset(String),
}

/// How to read a log's `MM-DD HH:MM:SS` timestamps, and which gaps to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseOptions {
    /// Year of the first line (the log has none; December → January advances it).
    pub year: i32,
    /// Offset of the log's clock from UTC, seconds (UTC−7 is −25200).
    pub utc_offset_s: i32,
    /// Host the log was written on, when known.
    pub host: Option<String>,
    /// Gaps between phases shorter than this are timestamp rounding, not gaps
    /// (1 s: the log's resolution).
    pub min_gap_s: f64,
}

impl ParseOptions {
    pub fn new(year: i32) -> ParseOptions {
        ParseOptions {
            year,
            utc_offset_s: 0,
            host: None,
            min_gap_s: 1.0,
        }
    }
}

/// Parses `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH`, `Z` or `UTC` into seconds east of UTC.
pub fn parse_utc_offset(s: &str) -> Result<i32, StartupError> {
    let bad = || StartupError::BadOffset(s.to_string());
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return Err(bad());
    }
    let h: i32 = digits[..2].parse().map_err(|_| bad())?;
    let m: i32 = if digits.len() == 4 {
        digits[2..].parse().map_err(|_| bad())?
    } else {
        0
    };
    if h > 14 || m > 59 || (rest.contains(':') && rest.find(':') != Some(2)) {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
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

    #[test]
    fn startup_utc_offsets() {
        assert_eq!(parse_utc_offset("+00:00").unwrap(), 0);
        assert_eq!(parse_utc_offset("-07:00").unwrap(), -25_200);
        assert_eq!(parse_utc_offset("+0530").unwrap(), 19_800);
        assert_eq!(parse_utc_offset("+09").unwrap(), 32_400);
        assert_eq!(parse_utc_offset("UTC").unwrap(), 0);
        for bad in [
            "",
            "7",
            "+7",
            "+25:00",
            "+07:60",
            "+0:700",
            "++07:00",
            "+07:00:00",
        ] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
    }
}
