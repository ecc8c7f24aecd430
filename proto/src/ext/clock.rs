//! The one clock of the wire: nanoseconds since the Unix epoch on this host (every
//! `*_ns` timestamp in the API is one of these).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 if the clock is before the epoch).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2020_and_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(a > 1_577_836_800_000_000_000);
        assert!(b >= a);
    }
}
