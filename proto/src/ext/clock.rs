//! The one clock of the wire: nanoseconds since the Unix epoch on this host (every
//! `*_ns` timestamp in the API is one of these), and the UTC calendar of it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 if the clock is before the epoch).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Civil date (year, month 1–12, day 1–31), UTC, of a count of days since
/// 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u32, d as u32)
}

/// Civil (UTC) year of a Unix time in ns.
pub fn year_of_ns(ns: i64) -> i32 {
    let (y, _, _) = civil_from_days(ns.div_euclid(86_400_000_000_000));
    i32::try_from(y).unwrap_or(1970)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn years() {
        assert_eq!(year_of_ns(0), 1970);
        assert_eq!(year_of_ns(1_735_689_599_000_000_000), 2024); // 2024-12-31 23:59:59
        assert_eq!(year_of_ns(1_735_689_600_000_000_000), 2025);
        assert_eq!(year_of_ns(1_709_164_800_000_000_000), 2024); // 2024-02-29
    }

    #[test]
    fn now_is_after_2020_and_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(a > 1_577_836_800_000_000_000);
        assert!(b >= a);
    }
}
