//! NIXL's own telemetry in `fabric check` (read only with `--read-nixl-telemetry`):
//! per NIXL agent, what its buffer held (requests and bytes each way, transfer and
//! post times with a decade histogram), and findings for transfer errors NIXL
//! counted by status, events it dropped, and buffers that could not be read.

use servescope_proto::v1::{NixlNodeCheck, NixlTelemetryBuffer, NixlTelemetryTimes};

use super::check::{f, Finding, Severity};
use super::units::fmt_size;

/// Labels of the wire's decade buckets, in order.
const DECADES: [&str; 6] = [
    "<10µs",
    "10-100µs",
    "0.1-1ms",
    "1-10ms",
    "10-100ms",
    "≥100ms",
];

/// "33 × avg 2259.4 p50 74 p99 34868 max 34868 µs (10-100µs 24, 0.1-1ms 6, 10-100ms 3)".
pub fn describe_times(t: Option<&NixlTelemetryTimes>) -> String {
    let Some(t) = t.filter(|t| t.count > 0) else {
        return "none".into();
    };
    let hist: Vec<String> = DECADES
        .iter()
        .zip(&t.decades)
        .filter(|(_, c)| **c > 0)
        .map(|(l, c)| format!("{l} {c}"))
        .collect();
    format!(
        "{} × avg {:.1} p50 {} p99 {} max {} µs ({})",
        t.count,
        t.avg_us,
        t.p50_us,
        t.p99_us,
        t.max_us,
        hist.join(", ")
    )
}

/// What to do about errors of a NIXL status.
fn fix_for(status: &str) -> &'static str {
    match status {
        "remote_disconnect" => "a peer NIXL agent went away mid-transfer: check the other side's engine for restarts or crashes, and the network between the nodes (`servescope fabric probe --transport nixl`)",
        "backend" => "the backend (UCX/LIBFABRIC) failed transfers: rerun with NIXL_LOG_LEVEL=DEBUG and UCX_LOG_LEVEL=warn in the serving environment and probe the path with `servescope fabric probe --transport nixl`",
        "not_found" | "mismatch" | "invalid_param" => "transfers named memory or agents NIXL does not know: prefill and decode disagree on the KV layout or a peer re-registered; check both sides run the same model config, block size and vLLM version",
        "canceled" => "transfers were cancelled (request aborts or timeouts): check the decode side's KV transfer timeouts against the transfer times above",
        _ => "see the serving engine's NIXL log (NIXL_LOG_LEVEL=DEBUG) for the failing transfers",
    }
}

fn sum(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

fn one(b: &NixlTelemetryBuffer) -> Vec<Finding> {
    use Severity::*;
    if !b.error.is_empty() {
        return vec![f(
            Warn,
            format!("NIXL telemetry of agent {} not read", b.agent),
            format!("{}: {}", b.path, b.error),
            "check the buffer belongs to a NIXL of the same version as the reader",
        )];
    }
    let errors: u64 = b.errors.values().copied().fold(0, sum);
    let mut by_status: Vec<(&String, &u64)> = b.errors.iter().filter(|(_, c)| **c > 0).collect();
    by_status.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    let err_text = if by_status.is_empty() {
        "none".to_string()
    } else {
        by_status
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = vec![f(
        Info,
        format!(
            "NIXL telemetry of agent {}: {} events",
            b.agent, b.events
        ),
        format!(
            "sent (WRITE) {} requests, {}; received (READ) {} requests, {}; transfer time {}; post time {}; errors: {err_text}{}",
            b.tx_requests,
            fmt_size(b.tx_bytes),
            b.rx_requests,
            fmt_size(b.rx_bytes),
            describe_times(b.xfer_time.as_ref()),
            describe_times(b.post_time.as_ref()),
            if b.partial { "; the read stopped inside an event (left out)" } else { "" }
        ),
        "",
    )];
    if errors > 0 {
        let worst = by_status.first().map_or("", |(s, _)| s.as_str());
        out.push(f(
            Error,
            format!("NIXL agent {} counted {errors} transfer errors", b.agent),
            format!(
                "by status: {err_text}; of {} requests ({})",
                sum(b.tx_requests, b.rx_requests),
                b.path
            ),
            fix_for(worst),
        ));
    }
    if b.dropped > 0 {
        out.push(f(
            Warn,
            format!("NIXL agent {} dropped {} telemetry events", b.agent, b.dropped),
            format!("agent_telemetry_events_dropped {} ({})", b.dropped, b.path),
            "the counts above are lower bounds: raise NIXL_TELEMETRY_BUFFER_SIZE in the serving environment or read more often",
        ));
    }
    out
}

/// Findings for the telemetry buffers read on one NIXL check (none when not asked).
pub fn judge(n: &NixlNodeCheck) -> Vec<Finding> {
    let mut out = Vec::new();
    if !n.telemetry_read_error.is_empty() {
        out.push(f(
            Severity::Warn,
            "NIXL telemetry not read",
            n.telemetry_read_error.clone(),
            "set NIXL_TELEMETRY_ENABLE=y and NIXL_TELEMETRY_DIR in the serving environment; the reader comes with the engine's NIXL wheel (nixl_cu13.scripts/telemetry_reader)",
        ));
    }
    for b in &n.telemetry_buffers {
        out.extend(one(b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(count: u64, decades: [u64; 6]) -> Option<NixlTelemetryTimes> {
        Some(NixlTelemetryTimes {
            count,
            avg_us: 2259.39,
            p50_us: 74,
            p99_us: 34868,
            max_us: 34868,
            decades: decades.to_vec(),
        })
    }

    fn healthy() -> NixlTelemetryBuffer {
        NixlTelemetryBuffer {
            agent: "servescope-1".into(),
            path: "/d/servescope-1".into(),
            events: 133,
            tx_requests: 23,
            tx_bytes: 23 << 20,
            rx_requests: 10,
            rx_bytes: 10 << 18,
            xfer_time: times(33, [0, 24, 6, 0, 3, 0]),
            post_time: times(33, [0, 25, 6, 0, 2, 0]),
            ..Default::default()
        }
    }

    #[test]
    fn a_healthy_buffer_is_reported_and_raises_nothing() {
        let n = NixlNodeCheck {
            telemetry_buffers: vec![healthy()],
            ..Default::default()
        };
        let fs = judge(&n);
        assert_eq!(fs.len(), 1, "{fs:?}");
        assert_eq!(fs[0].severity, Severity::Info);
        assert_eq!(
            fs[0].title,
            "NIXL telemetry of agent servescope-1: 133 events"
        );
        let e = &fs[0].evidence;
        assert!(
            e.contains("sent (WRITE) 23 requests") && e.contains("received (READ) 10 requests"),
            "{e}"
        );
        assert!(e.contains("transfer time 33 × avg 2259.4 p50 74 p99 34868 max 34868 µs (10-100µs 24, 0.1-1ms 6, 10-100ms 3)"), "{e}");
        assert!(e.ends_with("errors: none"), "{e}");
        assert_eq!(describe_times(None), "none");
    }

    #[test]
    fn errors_by_status_raise_an_error_with_the_counts_and_a_fix() {
        let mut b = healthy();
        b.errors = [
            ("remote_disconnect".to_string(), 3),
            ("backend".to_string(), 1),
        ]
        .into_iter()
        .collect();
        b.dropped = 5;
        let n = NixlNodeCheck {
            telemetry_buffers: vec![b],
            ..Default::default()
        };
        let fs = judge(&n);
        let err = fs
            .iter()
            .find(|f| f.severity == Severity::Error)
            .expect("error");
        assert_eq!(
            err.title,
            "NIXL agent servescope-1 counted 4 transfer errors"
        );
        assert!(
            err.evidence
                .starts_with("by status: remote_disconnect 3, backend 1; of 33 requests"),
            "{}",
            err.evidence
        );
        assert!(err.fix.contains("peer NIXL agent went away"), "{}", err.fix);
        let drop = fs
            .iter()
            .find(|f| f.title.contains("dropped 5"))
            .expect("dropped");
        assert_eq!(drop.severity, Severity::Warn);
    }

    #[test]
    fn unreadable_buffers_and_nothing_to_read_are_said() {
        let n = NixlNodeCheck {
            telemetry_read_error: "no serving process exports NIXL telemetry to buffers".into(),
            telemetry_buffers: vec![NixlTelemetryBuffer {
                agent: "a".into(),
                path: "/d/a".into(),
                error: "the reader exited (exit status: 1): Version mismatch".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let fs = judge(&n);
        assert_eq!(fs.len(), 2);
        assert!(fs.iter().all(|f| f.severity == Severity::Warn));
        assert!(fs[1].evidence.contains("Version mismatch"));
        assert!(
            judge(&NixlNodeCheck::default()).is_empty(),
            "not asked: nothing"
        );
    }
}
