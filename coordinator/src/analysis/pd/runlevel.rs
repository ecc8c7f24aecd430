//! Run-level TTFT decomposition from engine metrics alone: the mean of each stage
//! over a point's window, from the deltas of vLLM's histograms on the prefill and
//! decode instances (sums and counts are exact over the window, so the means are
//! too; a request in flight at a window edge is the error).
//!
//! ```text
//! client TTFT (mean) = p_queue + p_prefill            (P: request_queue/prefill_time)
//!                    + kv_transfer                    (D: nixl_xfer_time sum ÷ D requests)
//!                    + d_wait                         (D: queue_time − kv_transfer)
//!                    + d_first_step                   (D: request_prefill_time)
//!                    + other                          (client TTFT − the above: client
//!                                                      wait, proxy, network)
//! ```

use serde::Serialize;

use crate::analysis::engine::window::{Delta, EngineWindow, Hist};

/// One stage's mean over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub mean_ms: f64,
    pub source: &'static str,
}

/// The decomposition of one point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLevel {
    pub stages: Vec<Stage>,
    /// Requests the windows counted on P and on D (vs the client's).
    pub p_requests: f64,
    pub d_requests: f64,
    pub uncertainty: String,
}

/// Σ sum and Σ count of one histogram over several instances.
fn pooled(
    ws: &[&EngineWindow],
    f: impl Fn(&EngineWindow) -> Option<&Delta<Hist>>,
) -> Option<(f64, f64)> {
    let mut any = false;
    let (mut s, mut n) = (0.0, 0.0);
    for w in ws {
        if let Some(d) = f(w) {
            any = true;
            s += d.value.sum;
            n += d.value.count;
        }
    }
    any.then_some((s, n))
}

fn mean(p: Option<(f64, f64)>) -> Option<f64> {
    p.and_then(|(s, n)| (n > 0.0).then(|| s / n * 1e3))
}

/// The decomposition of a point with client mean TTFT `client_ttft_ms` and
/// `client_requests` completed requests, from the P and D windows of that point.
pub fn decompose(
    prefill: &[&EngineWindow],
    decode: &[&EngineWindow],
    client_ttft_ms: f64,
    client_requests: u64,
) -> Option<RunLevel> {
    let p_queue = mean(pooled(prefill, |w| w.queue_time.as_ref()));
    let p_prefill = mean(pooled(prefill, |w| w.prefill_time.as_ref()));
    let d_q = pooled(decode, |w| w.queue_time.as_ref());
    let d_queue = mean(d_q);
    let d_step = mean(pooled(decode, |w| w.prefill_time.as_ref()));
    let d_n = d_q.map_or(0.0, |x| x.1);
    // Pure transfer time per request: Σ xfer ÷ D's requests (several handles per
    // request under TP overlap, so this is an upper bound there).
    let xfer = pooled(decode, |w| w.nixl_xfer_time.as_ref())
        .and_then(|(s, _)| (d_n > 0.0).then(|| s / d_n * 1e3));
    d_queue?;
    let mut stages = Vec::new();
    let mut push = |name, v: Option<f64>, source| {
        if let Some(v) = v {
            stages.push(Stage {
                name,
                mean_ms: v,
                source,
            });
        }
    };
    push("p_queue", p_queue, "P vllm:request_queue_time_seconds");
    push(
        "p_prefill",
        p_prefill,
        "P vllm:request_prefill_time_seconds",
    );
    match xfer {
        Some(x) => {
            push(
                "kv_transfer",
                Some(x),
                "D vllm:nixl_xfer_time_seconds sum ÷ D requests",
            );
            push(
                "d_wait",
                d_queue.map(|q| (q - x).max(0.0)),
                "D vllm:request_queue_time_seconds − kv_transfer",
            );
        }
        None => push(
            "d_queue",
            d_queue,
            "D vllm:request_queue_time_seconds (no NIXL metrics)",
        ),
    }
    push(
        "d_first_step",
        d_step,
        "D vllm:request_prefill_time_seconds",
    );
    let known: f64 = stages.iter().map(|s| s.mean_ms).sum();
    stages.push(Stage {
        name: "other",
        mean_ms: client_ttft_ms - known,
        source: "client mean TTFT − the above (client wait, proxy, network)",
    });
    let p_n = pooled(prefill, |w| w.queue_time.as_ref()).map_or(0.0, |x| x.1);
    let c = client_requests as f64;
    let edge = (p_n - c).abs().max((d_n - c).abs());
    Some(RunLevel {
        stages,
        p_requests: p_n,
        d_requests: d_n,
        uncertainty: format!(
            "means from histogram sums over the point's window (exact for the requests inside it); \
             engines counted {p_n:.0} (P) and {d_n:.0} (D) requests vs {c:.0} at the client: \
             {edge:.0} request(s) outside the window or from other clients; \
             kv_transfer is NIXL's pure transfer time (handshakes fall in d_wait)"
        ),
    })
}
