//! Parser for the human output of libfabric's `fi_pingpong`, used as a cross-check
//! oracle for our own probe:
//!
//! ```text
//! bytes   #sent   #ack     total       time     MB/sec    usec/xfer   Mxfers/sec
//! 64k     100     =100     12m         1.33s      9.87    6640.30       0.00
//! ```
//!
//! Sizes carry binary suffixes (`k` = 1024, `m`, `g`, optionally one decimal:
//! `1.5k`); `MB/sec` is 10^6 bytes per second.

/// One row of `fi_pingpong` output.
#[derive(Debug, Clone, PartialEq)]
pub struct PingpongRow {
    /// Message size in bytes.
    pub bytes: u64,
    pub sent: u64,
    pub acked: u64,
    /// Total bytes moved as printed (rounded by the tool's human formatting).
    pub total_bytes: u64,
    pub time_s: f64,
    /// As printed: 10^6 bytes per second.
    pub mb_per_s: f64,
    pub usec_per_xfer: f64,
    pub mxfers_per_s: f64,
}

impl PingpongRow {
    /// Bandwidth in bytes per second (SI).
    pub fn bandwidth_bps(&self) -> f64 {
        self.mb_per_s * 1e6
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("fi_pingpong output line {line}: {reason}")]
pub struct PingpongParseError {
    pub line: usize,
    pub reason: String,
}

fn is_header(line: &str) -> bool {
    let t: Vec<&str> = line.split_whitespace().collect();
    t.first() == Some(&"bytes") && t.contains(&"#sent") && t.contains(&"MB/sec")
}

/// Parses every data row that follows a header line. Lines that do not start with a
/// digit (logs, blank lines) are skipped; a line that starts like a row but does not
/// parse is an error naming the line.
pub fn parse_fi_pingpong(output: &str) -> Result<Vec<PingpongRow>, PingpongParseError> {
    let mut rows = Vec::new();
    let mut seen_header = false;
    for (i, line) in output.lines().enumerate() {
        if is_header(line) {
            seen_header = true;
            continue;
        }
        let starts_digit = line
            .trim_start()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit());
        if !seen_header || !starts_digit {
            continue;
        }
        rows.push(parse_row(line).map_err(|reason| PingpongParseError {
            line: i + 1,
            reason,
        })?);
    }
    if !seen_header {
        return Err(PingpongParseError {
            line: 0,
            reason: "no header line (`bytes #sent #ack total time MB/sec ...`)".into(),
        });
    }
    Ok(rows)
}

fn parse_row(line: &str) -> Result<PingpongRow, String> {
    let t: Vec<&str> = line.split_whitespace().collect();
    if t.len() != 8 {
        return Err(format!("expected 8 columns, found {}", t.len()));
    }
    Ok(PingpongRow {
        bytes: parse_size(t[0])?,
        sent: parse_count(t[1])?,
        acked: parse_count(t[2].trim_start_matches('='))?,
        total_bytes: parse_size(t[3])?,
        time_s: parse_time(t[4])?,
        mb_per_s: parse_float(t[5], "MB/sec")?,
        usec_per_xfer: parse_float(t[6], "usec/xfer")?,
        mxfers_per_s: parse_float(t[7], "Mxfers/sec")?,
    })
}

/// Counts: `200`, `1k` (= 1000), `2.5m`, `1b` (decimal multiples, as printed for
/// `-I 1000`).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000),
        Some((i, 'm' | 'M')) => (&s[..i], 1_000_000),
        Some((i, 'b' | 'B' | 'g' | 'G')) => (&s[..i], 1_000_000_000),
        Some(_) => (s, 1),
        None => return Err("empty count".into()),
    };
    scaled(num, mult).ok_or_else(|| format!("bad count `{s}`"))
}

fn parse_float(s: &str, what: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("bad {what} `{s}`")),
    }
}

/// `4096`, `1k`, `1.5k`, `400k`, `12m`, `2g` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1u64 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1u64 << 30),
        Some(_) => (s, 1),
        None => return Err("empty size".into()),
    };
    scaled(num, mult).ok_or_else(|| format!("bad size `{s}`"))
}

/// `num` (digits, optionally one `.` and up to 9 decimals) times `mult`, rounded
/// up, in exact integer arithmetic: a printed `5.3g` reads back as at least 5.3 GiB.
fn scaled(num: &str, mult: u64) -> Option<u64> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let den = 10u128.pow(frac.len() as u32);
    let f = frac.parse::<u128>().unwrap_or(0);
    let n = int.parse::<u128>().ok()?.checked_mul(den)?.checked_add(f)?;
    let v = n.checked_mul(u128::from(mult))?.div_ceil(den);
    u64::try_from(v).ok()
}

/// `1.33s`, `250.00ms`, `12.5us`, `40ns`: seconds.
pub fn parse_time(s: &str) -> Result<f64, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    parse_float(num, "time").map(|v| v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::test_support::Rng;

    const SAMPLE: &str = "\
bytes   #sent   #ack     total       time     MB/sec    usec/xfer   Mxfers/sec
64k     100     =100     12m         1.33s      9.87    6640.30       0.00
";
    /// Seen here: `fi_pingpong -p tcp -e rdm -S 1048576 -I 1000 127.0.0.1`.
    const SAMPLE_1K: &str = "\
bytes   #sent   #ack     total       time     MB/sec    usec/xfer   Mxfers/sec
1m      1k      =1k      1.9g        1.68s   1250.69     838.40       0.00
";

    #[test]
    fn parses_the_sample() {
        let rows = parse_fi_pingpong(SAMPLE).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.bytes, 65536);
        assert_eq!((r.sent, r.acked), (100, 100));
        assert_eq!(r.total_bytes, 12 << 20);
        assert!((r.time_s - 1.33).abs() < 1e-9);
        assert!((r.bandwidth_bps() - 9.87e6).abs() < 1.0);
        assert!((r.usec_per_xfer - 6640.30).abs() < 1e-9);
    }

    #[test]
    fn counts_use_decimal_suffixes() {
        let r = &parse_fi_pingpong(SAMPLE_1K).unwrap()[0];
        assert_eq!(r.bytes, 1 << 20);
        assert_eq!((r.sent, r.acked), (1000, 1000));
        assert_eq!(r.total_bytes, (19 * (1u64 << 30)).div_ceil(10));
        assert!((r.bandwidth_bps() - 1250.69e6).abs() < 1.0);
        assert_eq!(parse_count("2.5m"), Ok(2_500_000));
        assert!(parse_count("x").is_err());
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("400k"), Ok(400 * 1024));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("64"), Ok(64));
        assert!(parse_size("k").is_err());
        assert!(parse_size("-1k").is_err());
        assert!(parse_size("1e400").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
        assert!(parse_size("1..5k").is_err());
        assert!(parse_size(&"9".repeat(38)).is_err());
        assert!(parse_count(&format!("{}.5k", "9".repeat(38))).is_err());
        assert!((parse_time("250.00ms").unwrap() - 0.25).abs() < 1e-12);
        assert!((parse_time("3us").unwrap() - 3e-6).abs() < 1e-15);
    }

    #[test]
    fn no_header_and_bad_rows_are_errors() {
        assert!(parse_fi_pingpong("").is_err());
        let bad = format!("{SAMPLE}64k 100 =100\n");
        assert_eq!(parse_fi_pingpong(&bad).unwrap_err().line, 3);
        // Log lines after the header are skipped.
        let logs = format!("{SAMPLE}libfabric:1234:tcp: warning\n\n");
        assert_eq!(parse_fi_pingpong(&logs).unwrap().len(), 1);
    }

    /// fi_pingpong's size rendering: binary suffix, one decimal below 10 units.
    fn human(size: u64) -> String {
        let (base, mag) = match size {
            s if s >= 1 << 30 => (1u64 << 30, "g"),
            s if s >= 1 << 20 => (1 << 20, "m"),
            s if s >= 1 << 10 => (1 << 10, "k"),
            _ => (1, ""),
        };
        let frac = if size / base < 10 {
            (size % base) * 10 / base
        } else {
            0
        };
        if frac > 0 {
            format!("{}.{}{}", size / base, frac, mag)
        } else {
            format!("{}{}", size / base, mag)
        }
    }

    /// Counts as fi_pingpong prints them: decimal suffix, one decimal below 10.
    fn human_count(n: u64) -> String {
        let (base, mag) = match n {
            n if n >= 1_000_000_000 => (1_000_000_000u64, "b"),
            n if n >= 1_000_000 => (1_000_000, "m"),
            n if n >= 1_000 => (1_000, "k"),
            _ => (1, ""),
        };
        let frac = if n / base < 10 {
            (n % base) * 10 / base
        } else {
            0
        };
        if frac > 0 {
            format!("{}.{}{}", n / base, frac, mag)
        } else {
            format!("{}{}", n / base, mag)
        }
    }

    #[test]
    fn property_no_panic_on_arbitrary_input() {
        let alphabet: Vec<char> = "0123456789 .=kmgs\n\t#bytesMB/secé-e+xyz".chars().collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let len = rng.below(200) as usize;
            let mut s: String = (0..len)
                .map(|_| alphabet[rng.index(alphabet.len())])
                .collect();
            if rng.below(2) == 0 {
                s = format!("{SAMPLE}{s}");
            }
            let _ = parse_fi_pingpong(&s);
        }
    }

    #[test]
    fn property_round_trip_generated_rows() {
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let base = [1u64, 1 << 10, 1 << 20, 1 << 30][rng.index(4)];
            let bytes = (1 + rng.below(1023)) * base;
            let sent = 1 + rng.below(100_000);
            let total = bytes * sent * 2;
            let time_cs = 1 + rng.below(100_000);
            let mb = rng.below(10_000_000) as f64 / 100.0;
            let usec = rng.below(10_000_000) as f64 / 100.0;
            let mx = rng.below(1000) as f64 / 100.0;
            let text = format!(
                "bytes   #sent   #ack     total       time     MB/sec    usec/xfer   Mxfers/sec\n\
                 {:<8}{:<8}={:<8}{:<12}{:.2}s {:>10.2} {:>12.2} {:>12.2}\n",
                human(bytes),
                human_count(sent),
                human_count(sent),
                human(total),
                time_cs as f64 / 100.0,
                mb,
                usec,
                mx
            );
            let rows = parse_fi_pingpong(&text).unwrap();
            assert_eq!(rows.len(), 1, "{text}");
            let r = &rows[0];
            assert_eq!(r.bytes, bytes, "{text}");
            assert_eq!(human_count(r.sent), human_count(sent), "{text}");
            assert_eq!(r.sent, r.acked);
            assert_eq!(human(r.total_bytes), human(total), "{text}");
            assert!((r.time_s - time_cs as f64 / 100.0).abs() < 1e-9);
            assert!((r.mb_per_s - mb).abs() < 1e-9);
            assert!((r.usec_per_xfer - usec).abs() < 1e-9);
            assert!((r.mxfers_per_s - mx).abs() < 1e-9);
        }
    }
}
