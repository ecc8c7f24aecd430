//! `servescope diagnose RUN`: named findings, each with the evidence that raised it
//! and a fix. Rules read an [`Attribution`]; thresholds are constants below so that
//! a clean run stays silent and each fault is named by exactly its rule.

use super::attribution::{Attribution, Finding, PointAttribution, Severity};
use super::kv::Carrier;
use super::kv_path_rules::{kv_path_emulated, kv_post_dominates, kv_rate_above_line_rate};

/// Effective KV bandwidth below this fraction of the probed capacity is slow.
pub const SLOW_FRACTION: f64 = 0.5;
/// Without a probe, below this (GB/s) no RDMA fabric is carrying the KV cache.
pub const SLOW_ABSOLUTE_GBPS: f64 = 2.0;
/// A stage holding more than this share of TTFT dominates it.
pub const DOMINANT_SHARE: f64 = 0.4;
/// Proxy/ingress overhead worth a finding: above this (ms) and this share of TTFT.
pub const PROXY_MS: f64 = 10.0;
pub const PROXY_SHARE: f64 = 0.2;
/// The client's own lag behind its schedule worth a finding, p99 (ms).
pub const CLIENT_LAG_MS: f64 = 10.0;

/// A P/D rule.
type Rule = fn(&Attribution) -> Option<Finding>;

/// Every P/D rule with the ids its findings carry (`prefill_or_decode_bound`
/// raises either of two).
pub const RULES: &[(&[&str], Rule)] = &[
    (&["kv_slow_transport"], kv_slow_transport),
    (&["kv_path_emulated_over_tcp"], kv_path_emulated),
    (&["kv_post_dominates"], kv_post_dominates),
    (&["kv_rate_above_line_rate"], kv_rate_above_line_rate),
    (&["kv_transfer_failures"], kv_failures),
    (&["kv_serialising"], kv_serialising),
    (&["prefill_bound", "decode_bound"], prefill_or_decode_bound),
    (&["proxy_overhead"], proxy_overhead),
    (&["stream_batching"], stream_batching),
    (&["client_saturation"], client_saturation),
    (&["gibberish_after_transfer"], gibberish_after_transfer),
];

/// Runs every rule.
pub fn diagnose(a: &Attribution) -> Vec<Finding> {
    let mut v: Vec<Finding> = RULES.iter().filter_map(|(_, r)| r(a)).collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity));
    v
}

/// The highest-concurrency point with completed requests (the most loaded).
fn loaded(a: &Attribution) -> Option<&PointAttribution> {
    a.points
        .iter()
        .filter(|p| p.ttft_p50_ms.is_some())
        .max_by(|x, y| {
            x.concurrency
                .unwrap_or(0.0)
                .total_cmp(&y.concurrency.unwrap_or(0.0))
        })
}

fn kv_slow_transport(a: &Attribution) -> Option<Finding> {
    let k = &a.kv;
    let eff = k.effective_gbps?;
    let mut evidence = vec![format!(
        "{:.2} GB/s effective over {:.0} transfers ({:.1} MB each on average), from vllm:nixl_bytes_transferred ÷ vllm:nixl_xfer_time_seconds",
        eff,
        k.transfers,
        if k.transfers > 0.0 { k.bytes / k.transfers / 1e6 } else { 0.0 }
    )];
    let slow_vs_probe = k.capacity_gbps.map(|c| eff < SLOW_FRACTION * c);
    let on_tcp = k.carrier == Some(Carrier::Tcp);
    let slow = match slow_vs_probe {
        Some(s) => s,
        None => eff < SLOW_ABSOLUTE_GBPS,
    };
    if !(slow || on_tcp) {
        return None;
    }
    if let (Some(c), Some(src)) = (k.capacity_gbps, &k.capacity_source) {
        evidence.push(format!(
            "the fabric carries {c:.2} GB/s ({src}): the KV path gets {:.0} %",
            eff / c * 100.0
        ));
    } else {
        evidence.push(format!("below {SLOW_ABSOLUTE_GBPS} GB/s, slower than any RDMA fabric (no fabric probe in this run to compare with)"));
    }
    if let Some(c) = k.carrier {
        let n: Vec<String> = k
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{}: RDMA tx {} B rx {} B, TCP/IP tx {} B rx {} B",
                    n.host, n.rdma_tx_bytes, n.rdma_rx_bytes, n.net_tx_bytes, n.net_rx_bytes
                )
            })
            .collect();
        evidence.push(format!(
            "node counters say the bytes went over {c:?}: {}",
            n.join("; ")
        ));
    }
    Some(Finding {
        rule: "kv_slow_transport",
        severity: Severity::Critical,
        title: "KV transfer runs on a slow transport".into(),
        evidence,
        fix: "Check which transport NIXL really uses (servescope fabric check; UCX_TLS / UCX_NET_DEVICES or FI_PROVIDER=efa in the engines' environment; a UCX built without EFA falls back to TCP or ud_verbs); measure the pair with servescope fabric probe and rerun.".into(),
    })
}

fn kv_failures(a: &Attribution) -> Option<Finding> {
    let k = &a.kv;
    if k.failed <= 0.0 && k.expired <= 0.0 {
        return None;
    }
    Some(Finding {
        rule: "kv_transfer_failures",
        severity: Severity::Critical,
        title: "KV transfers failed or expired".into(),
        evidence: vec![
            format!("{:.0} failed transfers (vllm:nixl_num_failed_transfers on D)", k.failed),
            format!("{:.0} requests whose KV blocks expired on P before D read them (vllm:nixl_num_kv_expired_reqs)", k.expired),
            format!("{:.0} transfers succeeded", k.transfers),
        ],
        fix: "Failed reads are recomputed on D (its prefill cost is paid twice) and expired blocks mean D read too late: look for 'NIXL transfer failure' / 'Releasing expired KV blocks' in the engines' logs, check the side channel (VLLM_NIXL_SIDE_CHANNEL_HOST/PORT) and the fabric, and raise kv_lease_duration if D is merely slow.".into(),
    })
}

fn kv_part(p: &PointAttribution) -> f64 {
    ["kv_handshake", "kv_transfer", "d_wait", "d_queue"]
        .iter()
        .filter_map(|n| p.component(n))
        .sum()
}

fn sweep(a: &Attribution) -> Option<(&PointAttribution, &PointAttribution)> {
    let mut v: Vec<&PointAttribution> = a
        .points
        .iter()
        .filter(|p| p.concurrency.is_some() && p.ttft_mean_ms.is_some())
        .collect();
    if v.len() < 2 {
        return None;
    }
    v.sort_by(|x, y| {
        x.concurrency
            .unwrap_or(0.0)
            .total_cmp(&y.concurrency.unwrap_or(0.0))
    });
    Some((v[0], v[v.len() - 1]))
}

fn kv_serialising(a: &Attribution) -> Option<Finding> {
    let (lo, hi) = sweep(a)?;
    let (t0, t1) = (lo.ttft_mean_ms?, hi.ttft_mean_ms?);
    let (p0, p1) = (lo.tpot_p50_ms?, hi.tpot_p50_ms?);
    let growth = t1 - t0;
    let kv_growth = kv_part(hi) - kv_part(lo);
    // TTFT at least doubles, TPOT stays within 30 %, and the KV stages (not P's
    // queue) took most of the growth while D was not out of capacity.
    let kv_bound = hi.gauges.scrapes == 0
        || hi.gauges.kv_waiting_to_start + hi.gauges.waiting_deferred >= hi.gauges.waiting_capacity;
    if !(t1 > 2.0 * t0 && p1 < 1.3 * p0 && growth > 0.0 && kv_growth > 0.5 * growth && kv_bound) {
        return None;
    }
    let mut evidence = vec![
        format!("mean TTFT {t0:.1} ms at concurrency {} → {t1:.1} ms at {} ({:.1}×) while TPOT p50 stays {p0:.2} → {p1:.2} ms", lo.concurrency.unwrap_or(0.0), hi.concurrency.unwrap_or(0.0), t1 / t0),
        format!("the KV stages (D queue: handshake, transfer, wait) grew {kv_growth:.1} ms of the {growth:.1} ms"),
    ];
    if hi.gauges.scrapes > 0 {
        evidence.push(format!(
            "on D at concurrency {}: {:.1} requests waiting for a KV transfer to start, {:.1} in transfer, {:.1} waiting for capacity (means of vllm:num_requests_kv_fetch_by_stage / waiting_by_reason)",
            hi.concurrency.unwrap_or(0.0), hi.gauges.kv_waiting_to_start, hi.gauges.kv_in_progress, hi.gauges.waiting_capacity
        ));
    }
    Some(Finding {
        rule: "kv_serialising",
        severity: Severity::Warning,
        title: "KV transfers serialise the pipeline".into(),
        evidence,
        fix: "Transfers queue behind each other: spread them over more NICs/rails (UCX_NET_DEVICES with every EFA device, UCX_MAX_RNDV_RAILS), check that NIXL uses several workers/threads, or add decode instances so fewer transfers share one link.".into(),
    })
}

fn prefill_or_decode_bound(a: &Attribution) -> Option<Finding> {
    let p = loaded(a)?;
    let ttft = p.ttft_mean_ms?;
    let pq = p.component("p_queue").unwrap_or(0.0);
    let dq = p.component("d_wait").unwrap_or(0.0);
    let c = p.concurrency.unwrap_or(0.0);
    if pq > DOMINANT_SHARE * ttft && pq > 3.0 * dq {
        return Some(Finding {
            rule: "prefill_bound",
            severity: Severity::Warning,
            title: "Prefill-bound: requests queue on the prefill instances".into(),
            evidence: vec![format!("at concurrency {c}: P queue {pq:.1} ms of {ttft:.1} ms mean TTFT ({:.0} %), D wait {dq:.1} ms", pq / ttft * 100.0)],
            fix: "Add prefill instances (raise P in the P:D ratio) or give P more batch room (--max-num-batched-tokens, chunked prefill).".into(),
        });
    }
    let capacity = p.gauges.scrapes == 0
        || p.gauges.waiting_capacity > p.gauges.kv_waiting_to_start + p.gauges.waiting_deferred;
    if dq > DOMINANT_SHARE * ttft && dq > 3.0 * pq && capacity {
        let mut evidence = vec![format!("at concurrency {c}: D wait {dq:.1} ms of {ttft:.1} ms mean TTFT ({:.0} %), P queue {pq:.1} ms", dq / ttft * 100.0)];
        if p.gauges.scrapes > 0 {
            evidence.push(format!(
                "D had {:.1} requests running and {:.1} waiting for capacity on average",
                p.gauges.running, p.gauges.waiting_capacity
            ));
        }
        return Some(Finding {
            rule: "decode_bound",
            severity: Severity::Warning,
            title: "Decode-bound: requests wait for room on the decode instances".into(),
            evidence,
            fix: "Add decode instances (raise D in the P:D ratio), raise --max-num-seqs on D if KV memory allows, or lower the offered concurrency.".into(),
        });
    }
    None
}

fn proxy_overhead(a: &Attribution) -> Option<Finding> {
    let p = loaded(a)?;
    let ttft = p.ttft_mean_ms?;
    let (over, how) = match (p.component("ingress"), p.component("handoff")) {
        (Some(i), Some(h)) => (i + h, format!("ingress (client → P) {i:.1} ms + handoff (P done → D arrival) {h:.1} ms, from the spans")),
        _ => {
            let o = p.run_level.as_ref()?.stages.iter().find(|s| s.name == "other")?.mean_ms;
            (o, format!("{o:.1} ms of client TTFT not seen by any engine (metrics-only: client wait, proxy, network)"))
        }
    };
    if !(over > PROXY_MS && over > PROXY_SHARE * ttft) {
        return None;
    }
    Some(Finding {
        rule: "proxy_overhead",
        severity: Severity::Warning,
        title: "Proxy / ingress overhead".into(),
        evidence: vec![format!("at concurrency {}: {how}: {over:.1} ms of {ttft:.1} ms mean TTFT ({:.0} %)", p.concurrency.unwrap_or(0.0), over / ttft * 100.0)],
        fix: "The time is spent between the client and the engines: profile the proxy/router (Ray Serve ingress replicas, its event loop, JSON handling of the prefill answer), scale it out, or keep connections alive to P and D.".into(),
    })
}

fn stream_batching(a: &Attribution) -> Option<Finding> {
    let p = a.points.iter().find(|p| {
        let d = &p.decode;
        matches!((d.burst_gap_p50_ms, d.engine_itl_p50_ms, d.tokens_per_burst_mean),
            (Some(g), Some(e), Some(k)) if e > 0.0 && g > 2.0 * e && k > 1.5)
    })?;
    let d = &p.decode;
    Some(Finding {
        rule: "stream_batching",
        severity: Severity::Warning,
        title: "Stream batching inflates ITL".into(),
        evidence: vec![format!(
            "at {}: the client receives {:.1} tokens per burst, bursts {:.1} ms apart (p50), while the engine makes a token every {:.2} ms (D's mean ITL); client TPOT {:.2} ms",
            p.label,
            d.tokens_per_burst_mean.unwrap_or(0.0),
            d.burst_gap_p50_ms.unwrap_or(0.0),
            d.engine_itl_p50_ms.unwrap_or(0.0),
            d.client_tpot_p50_ms.unwrap_or(0.0)
        )],
        fix: "Something between D and the client holds tokens back and releases them in bursts (Ray Serve LLM batches stream output every 50 ms by default): lower or disable the batching interval if per-token latency matters; compare ITL per token, not per chunk.".into(),
    })
}

fn client_saturation(a: &Attribution) -> Option<Finding> {
    let p = a
        .points
        .iter()
        .filter(|p| p.dispatch_lag_p99_ms.is_some_and(|l| l > CLIENT_LAG_MS))
        .max_by(|x, y| x.dispatch_lag_max_ms.total_cmp(&y.dispatch_lag_max_ms))?;
    Some(Finding {
        rule: "client_saturation",
        severity: Severity::Critical,
        title: "The load client lagged its own schedule".into(),
        evidence: vec![format!(
            "at {}: requests left {:.1} ms late (p99; max {:.1} ms) — that lag is the client's, not the servers'",
            p.label,
            p.dispatch_lag_p99_ms.unwrap_or(0.0),
            p.dispatch_lag_max_ms
        )],
        fix: "Run the client on a less loaded machine or split it into shards (servescope load shards on agents), or lower the request rate; results of this point overstate server latency.".into(),
    })
}

fn gibberish_after_transfer(a: &Attribution) -> Option<Finding> {
    // Without a KV transfer there is nothing to blame: a plain run's wrong output is
    // the `wrong_output` rule's (crate::analysis::diagnose).
    if !a.disaggregated {
        return None;
    }
    let bad: Vec<&PointAttribution> = a
        .points
        .iter()
        .filter(|p| {
            p.probe_ok == Some(false)
                || p.errors_by_class
                    .get("wrong_output")
                    .is_some_and(|n| *n > 0)
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    let evidence = bad
        .iter()
        .map(|p| {
            format!(
                "{}: correctness probe {}; {} request(s) with wrong output",
                p.label,
                match (p.probe_ok, &p.probe_detail) {
                    (Some(false), Some(d)) => format!("failed ({d})"),
                    (Some(false), None) => "failed".into(),
                    (Some(true), _) => "passed".into(),
                    (None, _) => "not sent".into(),
                },
                p.errors_by_class.get("wrong_output").copied().unwrap_or(0)
            )
        })
        .collect();
    Some(Finding {
        rule: "gibberish_after_transfer",
        severity: Severity::Critical,
        title: "Output is wrong after the KV transfer".into(),
        evidence,
        fix: "A decode instance that produces gibberish from transferred KV blocks usually has a layout or dtype mismatch between P and D (kv cache layout, TP sizes, block size, kv_cache_dtype), or a transport that corrupts data: compare P's and D's engine configs and rerun with the other transport; throughput numbers of these points are meaningless.".into(),
    })
}
