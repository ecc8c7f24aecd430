//! Parser for `ucx_perftest` output, our cross-check oracle. Two forms:
//! - `-v` CSV: header `iterations,50.0_percentile_lat,avg_lat,overall_lat,avg_bw,
//!   overall_bw,avg_mr,overall_mr`, then rows (intermediate ones may be prefixed
//!   `[thread 0]`); the last row is the final result.
//! - the human table, whose last line is `Final:  2000  6.252  36.742 ... 27216`.
//!
//! Latencies are microseconds. ucx_perftest's "MB/s" is MiB/s (2^20 B/s); we
//! return bytes per second.

/// ucx_perftest's "MB/s" unit, in bytes per second.
pub const PERFTEST_MB: f64 = 1024.0 * 1024.0;

/// The final result of a ucx_perftest run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerftestResult {
    pub iterations: u64,
    /// The percentile column (50.0 by default, `-R`), µs.
    pub latency_pct_us: f64,
    pub latency_avg_us: f64,
    pub latency_overall_us: f64,
    /// Bytes per second (converted from MiB/s).
    pub bandwidth_avg_bps: f64,
    pub bandwidth_overall_bps: f64,
    pub msg_rate_avg: f64,
    pub msg_rate_overall: f64,
}

fn from_fields(f: &[&str]) -> Option<PerftestResult> {
    if f.len() != 8 {
        return None;
    }
    let iterations = f[0].trim().parse::<u64>().ok()?;
    let mut v = [0f64; 7];
    for (slot, s) in v.iter_mut().zip(&f[1..]) {
        let x = s.trim().parse::<f64>().ok()?;
        if !x.is_finite() {
            return None;
        }
        *slot = x;
    }
    Some(PerftestResult {
        iterations,
        latency_pct_us: v[0],
        latency_avg_us: v[1],
        latency_overall_us: v[2],
        bandwidth_avg_bps: v[3] * PERFTEST_MB,
        bandwidth_overall_bps: v[4] * PERFTEST_MB,
        msg_rate_avg: v[5],
        msg_rate_overall: v[6],
    })
}

/// The final result in `output` (CSV or table form), or None if it has none.
pub fn parse_perftest(output: &str) -> Option<PerftestResult> {
    let mut last_csv = None;
    let mut last_final = None;
    for line in output.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Final:") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let Some(r) = from_fields(&f) {
                last_final = Some(r);
            }
            continue;
        }
        // Intermediate CSV rows carry a "[thread N]" prefix.
        let row = match l.strip_prefix("[thread") {
            Some(r) => r.split_once(']').map_or("", |(_, x)| x),
            None => l,
        };
        if row.contains(',') {
            let f: Vec<&str> = row.split(',').collect();
            if let Some(r) = from_fields(&f) {
                last_csv = Some(r);
            }
        }
    }
    last_final.or(last_csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::test_support::Rng;

    const TABLE: &str = "\
+--------------+--------------+----------+---------+---------+----------+----------+-----------+-----------+
|    Stage     | # iterations | 50.0%ile | average | overall |  average |  overall |  average  |  overall  |
+--------------+--------------+----------+---------+---------+----------+----------+-----------+-----------+
Final:                  2000      6.252    36.742    36.742     1701.03     1701.03       27216       27216
";

    const CSV: &str = "\
iterations,50.0_percentile_lat,avg_lat,overall_lat,avg_bw,overall_bw,avg_mr,overall_mr
[thread 0] 720,0.398,1411.210,1411.210,44.29,44.29,709,709
[thread 0]1552,0.450,1201.811,1298.955,52.00,48.12,832,770
2000,0.494,1345.679,1309.421,46.44,47.73,743,764
";

    #[test]
    fn table_final_line_in_bytes_per_second() {
        let r = parse_perftest(TABLE).unwrap();
        assert_eq!(r.iterations, 2000);
        assert_eq!(r.latency_pct_us, 6.252);
        assert!((r.bandwidth_overall_bps - 1701.03 * 1048576.0).abs() < 1e-3);
        assert_eq!(r.msg_rate_overall, 27216.0);
    }

    #[test]
    fn csv_last_row_wins() {
        let r = parse_perftest(CSV).unwrap();
        assert_eq!(r.iterations, 2000);
        assert!((r.bandwidth_overall_bps - 47.73 * 1048576.0).abs() < 1e-3);
        assert_eq!(r.msg_rate_avg, 743.0);
    }

    #[test]
    fn nothing_to_parse() {
        assert_eq!(parse_perftest(""), None);
        assert_eq!(parse_perftest("Final: a b c"), None);
        assert_eq!(parse_perftest("iterations,50.0_percentile_lat"), None);
    }

    #[test]
    fn property_arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "Final:[thread 0],.-+e9 \n\t|x\u{e9}\u{0}0123456789"
            .chars()
            .collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let n = rng.below(120) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[rng.index(alphabet.len())])
                .collect();
            let _ = parse_perftest(&s);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            let _ = parse_perftest(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn property_generated_rows_round_trip() {
        let mut rng = Rng(42);
        for i in 0..2000 {
            let it = rng.below(10_000_000);
            // Values with 3 decimals, as ucx_perftest prints them.
            let vals: Vec<f64> = (0..7)
                .map(|_| rng.below(100_000_000) as f64 / 1000.0)
                .collect();
            let txt: Vec<String> = vals.iter().map(|v| format!("{v:.3}")).collect();
            let out = if i % 2 == 0 {
                format!("iterations,a,b,c,d,e,f,g\n{it},{}\n", txt.join(","))
            } else {
                format!("| Stage |\nFinal:   {it}   {}\n", txt.join("    "))
            };
            let r = parse_perftest(&out).unwrap();
            assert_eq!(r.iterations, it);
            assert_eq!(r.latency_pct_us, vals[0]);
            assert_eq!(r.latency_avg_us, vals[1]);
            assert_eq!(r.latency_overall_us, vals[2]);
            assert!((r.bandwidth_avg_bps / PERFTEST_MB - vals[3]).abs() < 1e-6);
            assert!((r.bandwidth_overall_bps / PERFTEST_MB - vals[4]).abs() < 1e-6);
            assert_eq!(r.msg_rate_avg, vals[5]);
            assert_eq!(r.msg_rate_overall, vals[6]);
        }
    }
}
