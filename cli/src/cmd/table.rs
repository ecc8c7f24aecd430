//! The load-point table shared by `load`, `show` and `compare`.

use servescope_coordinator::orchestration::load::metrics::Aggregate;
use servescope_coordinator::orchestration::load::stats::Summary;
use servescope_coordinator::store::ErrorSample;

/// A latency statistic `width` wide with `prec` decimals; "–" when the summary has no
/// sample (no successful request), as the HTML report shows it.
fn lat(s: &Summary, q: Option<f64>, width: usize, prec: usize) -> String {
    let v = match q {
        _ if s.count == 0 => None,
        None => Some(s.mean),
        Some(q) => s.percentile(q),
    };
    match v {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "–"),
    }
}

pub const HEADER: &str = "point                      ok/fail   req/s  out tok/s  TTFT mean   p99  TPOT mean   p99  ITL p99  E2EL p99  peak  goodput";

/// One line for a point (latencies in ms).
pub fn row(label: &str, a: &Aggregate) -> String {
    format!(
        "{:<26} {:>5}/{:<4} {:>6.2} {:>10.1} {} {} {} {} {} {} {:>5} {:>8}",
        label,
        a.completed,
        a.failed,
        a.request_throughput,
        a.output_throughput,
        lat(&a.ttft_ms, None, 9, 1),
        lat(&a.ttft_ms, Some(99.0), 5, 0),
        lat(&a.tpot_ms, None, 10, 2),
        lat(&a.tpot_ms, Some(99.0), 5, 1),
        lat(&a.itl_ms, Some(99.0), 8, 1),
        lat(&a.e2el_ms, Some(99.0), 9, 0),
        a.peak_concurrency,
        a.request_goodput
            .map(|g| format!("{g:.2}"))
            .unwrap_or_else(|| "-".into()),
    )
}

/// Extra lines: failures by class, normalised throughput.
pub fn notes(a: &Aggregate) -> Vec<String> {
    let mut out = Vec::new();
    if a.failed > 0 {
        let classes: Vec<String> = a
            .errors_by_class
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push(format!(
            "  failed {} of {} ({:.1} %): {}",
            a.failed,
            a.num_requests,
            a.failure_rate * 100.0,
            classes.join(", ")
        ));
    }
    for (what, n) in [("GPU", &a.per_gpu), ("replica", &a.per_replica)] {
        if let Some(n) = n {
            out.push(format!(
                "  per {what}: {:.3} req/s, {:.1} output tok/s, {:.1} total tok/s",
                n.request_throughput, n.output_throughput, n.total_token_throughput
            ));
        }
    }
    out
}

/// One line per distinct error message of a point (`error_detail` as stored).
pub fn error_lines(errors: &[ErrorSample]) -> Vec<String> {
    errors
        .iter()
        .map(|e| format!("  {} × {}: {}", e.count, e.class, e.detail))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_coordinator::orchestration::load::metrics::{
        aggregate, AggregateOptions, ChunkArrival, ErrorClass, RequestRecord,
    };

    fn failed(i: u64) -> RequestRecord {
        RequestRecord {
            scheduled_ns: i * 10,
            send_ns: i * 10,
            first_byte_ns: Some(i * 10 + 1),
            first_token_ns: None,
            chunks: Vec::new(),
            last_byte_ns: Some(i * 10 + 2),
            finished_ns: i * 10 + 3,
            input_tokens: 2000,
            output_tokens: 0,
            error: Some(ErrorClass::HttpStatus(400)),
        }
    }

    #[test]
    fn a_point_without_a_success_prints_dashes_not_zero_latencies() {
        let recs: Vec<_> = (1..=4).map(failed).collect();
        let a = aggregate(&recs, &AggregateOptions::default()).unwrap();
        let line = row("concurrency 2", &a);
        assert!(line.contains("    0/4"), "{line}");
        let tail = &line[HEADER.find("  TTFT").unwrap()..];
        assert_eq!(tail.matches('–').count(), 6, "{line}");
        assert!(!tail.contains("0.0"), "{line}");
        // A success 50 ms to its first token, 60 ms in all: the same columns.
        let ms = 1_000_000;
        let mut ok = failed(0);
        ok.error = None;
        ok.first_byte_ns = Some(50 * ms);
        ok.first_token_ns = Some(50 * ms);
        ok.chunks = [50, 60]
            .map(|t| ChunkArrival {
                at_ns: t * ms,
                tokens: 1,
            })
            .to_vec();
        ok.last_byte_ns = Some(60 * ms);
        ok.finished_ns = 60 * ms;
        ok.output_tokens = 2;
        let good = aggregate(&[ok], &AggregateOptions::default()).unwrap();
        let good = row("concurrency 2", &good);
        assert!(!good.contains('–'), "{good}");
        assert_eq!(line.chars().count(), good.chars().count(), "columns kept");
    }
}
