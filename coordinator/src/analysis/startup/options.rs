//! How a log is read: its timestamps' year and UTC offset, its host, and which
//! gaps between phases count.

use super::error::StartupError;

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
