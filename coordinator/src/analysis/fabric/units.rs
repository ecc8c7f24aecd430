//! Sizes and rates as users type and read them. Sizes use binary suffixes
//! (`4K` = 4096, as ucx_perftest and fabtests do); rates are printed in SI (GB/s =
//! 10⁹ B/s).

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnitError {
    #[error(
        "size `{0}`: expected a number with an optional K, M, G suffix (binary), e.g. 64K, 1M"
    )]
    Size(String),
    #[error("size `{0}`: must be at least 1 byte")]
    Zero(String),
}

/// One size: `4096`, `4K`, `4KiB`, `1M`, `16MiB`, `1G`.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let bad = || UnitError::Size(s.chars().take(64).collect());
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suf) = t.split_at(split);
    if num.is_empty() || num.len() > 20 {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match suf.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if v == 0 {
        return Err(UnitError::Zero(s.to_string()));
    }
    Ok(v)
}

/// A comma-separated list, or a range `4K..64M` (powers of 4, as the probe default).
pub fn parse_sizes(s: &str) -> Result<Vec<u64>, UnitError> {
    if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (parse_size(a)?, parse_size(b)?);
        let mut v = Vec::new();
        let mut x = a;
        while x <= b && v.len() < 64 {
            v.push(x);
            x = x.saturating_mul(4);
        }
        return Ok(v);
    }
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_size)
        .collect()
}

/// `65536` → "64 KiB".
pub fn fmt_size(b: u64) -> String {
    match b {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// Bytes/s → "12.34 GB/s" (SI).
pub fn fmt_rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} GB/s", bps / 1e9)
    } else {
        format!("{:.1} MB/s", bps / 1e6)
    }
}

/// ucx_perftest's "MB/s" is MiB/s.
pub fn perftest_mb_to_bps(v: f64) -> f64 {
    v * 1_048_576.0
}

/// fabtests' / fi_pingpong's "MB/sec" is 10⁶ B/s.
pub fn fabtests_mb_to_bps(v: f64) -> f64 {
    v * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(
            parse_size("1T"),
            Ok(1 << 40),
            "parsed; the agent refuses it by limit"
        );
        assert!(matches!(parse_size("0"), Err(UnitError::Zero(_))));
        assert!(parse_size("-5").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999999999999K").is_err());
        assert_eq!(
            parse_sizes("64K,1M,16M"),
            Ok(vec![64 << 10, 1 << 20, 16 << 20])
        );
        assert_eq!(parse_sizes("4K..64K"), Ok(vec![4096, 16384, 65536]));
        assert_eq!(fmt_size(1 << 20), "1 MiB");
        assert_eq!(fmt_rate(12.5e9), "12.50 GB/s");
    }

    #[test]
    fn size_parser_never_panics_on_arbitrary_input() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789kKmMgGtTiIbB.,- \xff";
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| alphabet[((x >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            let s = String::from_utf8_lossy(&s);
            let _ = parse_sizes(&s);
            if let Ok(v) = parse_size(&s) {
                assert!(v > 0);
            }
        }
    }
}
