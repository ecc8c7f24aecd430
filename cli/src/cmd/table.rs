//! The load-point table shared by `load`, `show` and `compare`.

use servescope_coordinator::load::metrics::Aggregate;
use servescope_coordinator::load::stats::Summary;

fn p(s: &Summary, q: f64) -> f64 {
    s.percentile(q).unwrap_or(0.0)
}

pub const HEADER: &str = "point                      ok/fail   req/s  out tok/s  TTFT mean   p99  TPOT mean   p99  ITL p99  E2EL p99  peak  goodput";

/// One line for a point (latencies in ms).
pub fn row(label: &str, a: &Aggregate) -> String {
    format!(
        "{:<26} {:>5}/{:<4} {:>6.2} {:>10.1} {:>9.1} {:>5.0} {:>10.2} {:>5.1} {:>8.1} {:>9.0} {:>5} {:>8}",
        label,
        a.completed,
        a.failed,
        a.request_throughput,
        a.output_throughput,
        a.ttft_ms.mean,
        p(&a.ttft_ms, 99.0),
        a.tpot_ms.mean,
        p(&a.tpot_ms, 99.0),
        p(&a.itl_ms, 99.0),
        p(&a.e2el_ms, 99.0),
        a.peak_concurrency,
        a.request_goodput.map(|g| format!("{g:.2}")).unwrap_or_else(|| "-".into()),
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
